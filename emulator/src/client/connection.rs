//! One connection of the emulated client through the RDP connection sequence (MS-RDPBCGR
//! 1.3.1.1), the mirror of [`crate::session_host`]'s: X.224 negotiation asking for TLS, TLS,
//! MCS Connect with the client's GCC blocks, channel connection, Client Info, licensing (ours,
//! [`super::licensing`]), capability exchange and finalization ([`super::activation`]), then
//! reading until the server ends the session. The non-licensing PDUs are ironrdp-pdu's.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::Instant;

use ironrdp_core::{decode, encode_vec};
use ironrdp_pdu::gcc;
use ironrdp_pdu::mcs::{self, DisconnectProviderUltimatum, DisconnectReason};
use ironrdp_pdu::nego::{self, SecurityProtocol};
use ironrdp_pdu::rdp::client_info::{
    AddressFamily, ClientInfo, ClientInfoFlags, CompressionType, Credentials, ExtendedClientInfo,
    ExtendedClientOptionalInfo, PerformanceFlags, TimezoneInfo,
};
use ironrdp_pdu::rdp::headers::{BasicSecurityHeader, BasicSecurityHeaderFlags};
use ironrdp_pdu::rdp::ClientInfoPdu;
use ironrdp_pdu::x224::{X224Data, X224};
use rdpele_proto::crypto::{
    derive_rdp_session_keys, EncryptionMethod, LicensingPublicKey, Side, CLIENT_RANDOM_LEN,
};
use rdpele_proto::envelope::{
    McsSendData, RdpSecurityLayer, SecurityExchangePdu, SecurityFlags, SendDataDirection,
};
use rdpele_proto::wire::{CertificateChain, ServerCertificate, Wire};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::activation::{self, Activation, DESKTOP};
use super::error::{encode_error, protocol, timeout, ClientError};
use super::licensing::{self, LicensingRun};
use super::options::{server_keys, ClientOptions, ClientSecurity};
use super::report::{ClientReport, Ending, LicensingOutcome, Timings};
use super::server_pdu::{classify, Phase, ServerPdu};
use super::store::StoreLicense;
use super::tls;
use crate::transport::{
    describe_failure, describe_protocols, queue_io_with_header, Channels, Framed, RdpSecurity,
};
use crate::transport::{Peer, TransportError, TransportErrorKind};

/// Windows 10's client build, as mstsc announces it in the Client Core Data.
const CLIENT_BUILD: u32 = 19041;
/// The keyboard layout (US English) and type (IBM enhanced, 101/102 keys) of the Client Core
/// Data; the host only shows them to the session.
const KEYBOARD_LAYOUT: u32 = 0x0409;
const KEYBOARD_FUNCTION_KEYS: u32 = 12;

/// Connects to the host at `address` as `options` say, licenses with the CALs in `store`
/// (storing what the host issues), activates the session and reads until it ends.
///
/// `Err` means the connection failed before licensing had an outcome; anything after that is
/// in the report ([`Ending`]).
pub async fn connect(
    address: SocketAddr,
    options: &ClientOptions,
    store: &mut (impl StoreLicense + Send),
) -> Result<ClientReport, ClientError> {
    run(address, options, store, true).await
}

/// [`connect`], but a client the host licensed disconnects (MCS Disconnect Provider
/// Ultimatum) as soon as licensing ends instead of activating the session: for `rdpele fleet`,
/// which needs only the licensing outcome. The license server has decided and the CAL is
/// stored by then, so nothing licensing does is skipped; the host sees a client that left
/// before capability exchange. A refused or aborted client still reads the host's Set Error
/// Info, as with [`connect`].
pub async fn connect_through_licensing(
    address: SocketAddr,
    options: &ClientOptions,
    store: &mut (impl StoreLicense + Send),
) -> Result<ClientReport, ClientError> {
    run(address, options, store, false).await
}

/// The connection sequence; `activate` says whether a licensed client goes on to an active
/// session or leaves.
async fn run(
    address: SocketAddr,
    options: &ClientOptions,
    store: &mut (impl StoreLicense + Send),
    activate: bool,
) -> Result<ClientReport, ClientError> {
    let started = Instant::now();
    let tcp = connect_tcp(address, options).await?;
    match negotiate(tcp, options, options.security).await? {
        Negotiated::Tls(framed) => {
            let tls = start_tls(framed, address, options).await?;
            let framed = Framed::new(tls, options.timeout, Peer::Server);
            session(
                framed,
                address,
                options,
                store,
                activate,
                started,
                Layer::Tls,
            )
            .await
        }
        Negotiated::Rdp(framed) => {
            session(
                framed,
                address,
                options,
                store,
                activate,
                started,
                Layer::Rdp,
            )
            .await
        }
        Negotiated::RdpOnNewConnection => {
            // The server takes Standard RDP Security only (SSL_NOT_ALLOWED_BY_SERVER): a
            // new connection asks for it, as mstsc does.
            let tcp = connect_tcp(address, options).await?;
            match negotiate(tcp, options, ClientSecurity::Rdp).await? {
                Negotiated::Rdp(framed) => {
                    session(
                        framed,
                        address,
                        options,
                        store,
                        activate,
                        started,
                        Layer::Rdp,
                    )
                    .await
                }
                Negotiated::Tls(_) | Negotiated::RdpOnNewConnection => Err(protocol(
                    "X.224 Connection Confirm",
                    "the server selected TLS, which the client did not ask for",
                )),
            }
        }
    }
}

/// The security layer a connection runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    Tls,
    Rdp,
}

async fn connect_tcp(
    address: SocketAddr,
    options: &ClientOptions,
) -> Result<TcpStream, ClientError> {
    let tcp = tokio::time::timeout(options.timeout, TcpStream::connect(address))
        .await
        .map_err(|_| timeout("TCP connect", options.timeout))?
        .map_err(|error| ClientError::Connect { address, error })?;
    // Each PDU is a whole request; Nagle would hold the next one back for the server's ACK.
    tcp.set_nodelay(true).map_err(|error| {
        TransportError::new("TCP connect", Peer::Server, TransportErrorKind::Io(error))
    })?;
    Ok(tcp)
}

/// The connection after the security layer is chosen: MCS, channels, the Security Exchange
/// under Standard RDP Security, Client Info, licensing, activation and the end.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    mut framed: Framed<S>,
    address: SocketAddr,
    options: &ClientOptions,
    store: &mut (impl StoreLicense + Send),
    activate: bool,
    started: Instant,
    layer: Layer,
) -> Result<ClientReport, ClientError> {
    let selected = match layer {
        Layer::Tls => SecurityProtocol::SSL,
        Layer::Rdp => SecurityProtocol::empty(),
    };
    let (channels, server_security) = connect_mcs(&mut framed, options, selected).await?;
    if layer == Layer::Rdp {
        exchange_keys(&mut framed, channels, &server_security)?;
    }
    let gcc_server_certificate =
        (!server_security.server_cert.is_empty()).then_some(server_security.server_cert);
    send_client_info(&mut framed, channels, options, address).await?;
    let connected = Instant::now();

    let LicensingRun {
        outcome,
        stored,
        mut error_info,
        disconnected,
        challenged,
    } = licensing::run(
        &mut framed,
        channels,
        options.licensing_config(gcc_server_certificate),
        store,
    )
    .await?;
    let licensed = Instant::now();

    let mut active = false;
    let mut activated = None;
    let ending = if disconnected {
        framed.shutdown().await;
        Ending::ServerDisconnected
    } else {
        match outcome {
            LicensingOutcome::New | LicensingOutcome::Upgraded | LicensingOutcome::Valid
                if !activate =>
            {
                disconnect(&mut framed).await
            }
            LicensingOutcome::New | LicensingOutcome::Upgraded | LicensingOutcome::Valid => {
                match activation::run(&mut framed, channels, &mut error_info).await {
                    Ok(Activation::Active) => {
                        active = true;
                        activated = Some(Instant::now());
                        if options.disconnect_after_activation {
                            disconnect(&mut framed).await
                        } else {
                            read_to_end(
                                &mut framed,
                                &mut error_info,
                                "active session",
                                OnShareControl::Ignore,
                            )
                            .await
                        }
                    }
                    Ok(Activation::Disconnected) => {
                        framed.shutdown().await;
                        Ending::ServerDisconnected
                    }
                    Err(error) => failed(&mut framed, error).await,
                }
            }
            // After a refusal the server says why (Set Error Info) and disconnects.
            LicensingOutcome::Refused { .. } => {
                read_to_end(
                    &mut framed,
                    &mut error_info,
                    "after the refusal",
                    OnShareControl::Ignore,
                )
                .await
            }
            // The client told the server it gives up; a server still in licensing answers with
            // Set Error Info and a disconnect, one that thinks licensing is over goes on to
            // Demand Active — either way the client leaves.
            LicensingOutcome::Aborted { .. } => {
                read_to_end(
                    &mut framed,
                    &mut error_info,
                    "after the client's licensing error",
                    OnShareControl::Leave,
                )
                .await
            }
        }
    };

    let ended = Instant::now();
    Ok(ClientReport {
        licensing: outcome,
        stored,
        challenged,
        active,
        error_info,
        ending,
        timings: Timings {
            connection: connected.duration_since(started),
            licensing: licensed.duration_since(connected),
            activation: activated.map(|at| at.duration_since(licensed)),
            total: ended.duration_since(started),
        },
    })
}

/// What the X.224 negotiation came to.
enum Negotiated {
    /// The server selected TLS: the handshake comes next.
    Tls(Framed<TcpStream>),
    /// The server selected Standard RDP Security.
    Rdp(Framed<TcpStream>),
    /// The server refused TLS with SSL_NOT_ALLOWED_BY_SERVER and the client may try again
    /// without it.
    RdpOnNewConnection,
}

/// X.224 Connection Request / Confirm (MS-RDPBCGR 2.2.1.1, 2.2.1.2): TLS asked for under
/// `Negotiate` and `Tls`, PROTOCOL_RDP under `Rdp`. `Negotiate` takes Standard RDP Security
/// when the server selects it or refuses TLS with SSL_NOT_ALLOWED_BY_SERVER.
async fn negotiate(
    tcp: TcpStream,
    options: &ClientOptions,
    security: ClientSecurity,
) -> Result<Negotiated, ClientError> {
    const CONFIRM: &str = "X.224 Connection Confirm";
    let mut framed = Framed::new(tcp, options.timeout, Peer::Server);
    let asked = match security {
        ClientSecurity::Negotiate | ClientSecurity::Tls => SecurityProtocol::SSL,
        ClientSecurity::Rdp => SecurityProtocol::empty(),
    };
    let request = nego::ConnectionRequest {
        // mstsc's routing cookie, "Cookie: mstshash=USER".
        nego_data: Some(nego::NegoRequestData::cookie(options.user.clone())),
        flags: nego::RequestFlags::empty(),
        protocol: asked,
        correlation_info: None,
    };
    framed
        .send("X.224 Connection Request", &X224(request))
        .await?;
    let confirm_bytes = framed.read_pdu(CONFIRM).await?;
    let confirm = decode::<X224<nego::ConnectionConfirm>>(&confirm_bytes)
        .map_err(|e| protocol(CONFIRM, e))?
        .0;
    let selected = match confirm {
        nego::ConnectionConfirm::Response { protocol, .. } => protocol,
        nego::ConnectionConfirm::Failure { code }
            if security == ClientSecurity::Negotiate
                && code == nego::FailureCode::SSL_NOT_ALLOWED_BY_SERVER =>
        {
            return Ok(Negotiated::RdpOnNewConnection)
        }
        nego::ConnectionConfirm::Failure { code } => {
            return Err(protocol(
                CONFIRM,
                format!(
                    "the server refused {}: {}",
                    describe_protocols(asked),
                    describe_failure(code)
                ),
            ))
        }
    };
    // Under Negotiate the server may also select Standard RDP Security itself (xrdp 0.9.21 set
    // to security_layer=rdp does), as mstsc lets it.
    let rdp_selected = security == ClientSecurity::Negotiate && selected.is_empty();
    if selected != asked && !rdp_selected {
        return Err(protocol(
            CONFIRM,
            format!(
                "the server selected {}; the client asked for {} only",
                describe_protocols(selected),
                describe_protocols(asked)
            ),
        ));
    }
    Ok(if selected == SecurityProtocol::SSL {
        Negotiated::Tls(framed)
    } else {
        Negotiated::Rdp(framed)
    })
}

/// The TLS handshake after the server selected TLS.
async fn start_tls(
    framed: Framed<TcpStream>,
    address: SocketAddr,
    options: &ClientOptions,
) -> Result<TlsStream<TcpStream>, ClientError> {
    if framed.has_buffered() {
        return Err(protocol(
            "TLS handshake",
            "the server sent data before the TLS handshake",
        ));
    }
    let connector = tls::connector().map_err(ClientError::TlsConfig)?;
    tokio::time::timeout(
        options.timeout,
        connector.connect(
            ServerName::IpAddress(address.ip().into()),
            framed.into_inner()?,
        ),
    )
    .await
    .map_err(|_| timeout("TLS handshake", options.timeout))?
    .map_err(ClientError::Tls)
}

/// The Security Exchange (MS-RDPBCGR 2.2.1.10): a client random encrypted with the key of the
/// server's certificate, then Standard RDP Security in force (5.3.5). Nothing to do at
/// encryption level None. The client's licensing PDUs are encrypted too and it asks for the
/// server's (SEC_LICENSE_ENCRYPT_SC), as xfreerdp 2.11.7 does; MACs are plain, which every
/// server checks (xrdp 0.9.21 checks no other).
fn exchange_keys<S>(
    framed: &mut Framed<S>,
    channels: Channels,
    server: &gcc::ServerSecurityData,
) -> Result<(), ClientError> {
    const STAGE: &str = "Security Exchange";
    if server.encryption_method.is_empty() {
        return Ok(());
    }
    let method = EncryptionMethod::from_wire(server.encryption_method.bits()).ok_or_else(|| {
        protocol(
            "MCS Connect Response",
            format!(
                "the server chose encryption method {:#x}, not one of RC4's",
                server.encryption_method.bits()
            ),
        )
    })?;
    let server_random = server.server_random.ok_or_else(|| {
        protocol(
            "MCS Connect Response",
            "Server Security Data without a server random",
        )
    })?;
    let key = server_public_key(&server.server_cert)
        .ok_or_else(|| protocol("MCS Connect Response", "no usable server certificate"))?;
    let mut client_random = [0u8; CLIENT_RANDOM_LEN];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut client_random);
    let encrypted = key
        .encrypt_client_random(&client_random)
        .map_err(|e| encode_error(STAGE, e))?;
    let exchange = SecurityExchangePdu::new(&encrypted, true)
        .to_vec()
        .map_err(|e| encode_error(STAGE, e))?;
    framed.queue(
        STAGE,
        &X224(mcs::SendDataRequest {
            initiator_id: channels.user_id,
            channel_id: channels.io_channel,
            user_data: Cow::Owned(exchange),
        }),
    )?;
    let keys = derive_rdp_session_keys(&client_random, &server_random, method);
    framed.start_rdp_security(RdpSecurity {
        layer: RdpSecurityLayer::new(&keys, Side::Client),
        encrypt_sent: true,
        encrypt_licensing: true,
        licensing_flags: SecurityFlags::default(),
    });
    Ok(())
}

/// The public key of the Server Security Data's certificate: a proprietary one (MS-RDPBCGR
/// 2.2.1.4.3.1.1) or the leaf of an X.509 chain.
fn server_public_key(certificate: &[u8]) -> Option<LicensingPublicKey> {
    match ServerCertificate::decode(certificate).ok()?.chain {
        CertificateChain::Proprietary(cert) => {
            server_keys().from_proprietary(&cert.public_key).ok()
        }
        CertificateChain::X509(chain) => server_keys().from_x509_der(chain.leaf()?.der).ok(),
    }
}

/// MCS Connect Initial / Response with the GCC blocks (2.2.1.3, 2.2.1.4), Erect Domain, Attach
/// User and the channel joins (2.2.1.5 – 2.2.1.9). Returns the channels and the Server Security
/// Data.
async fn connect_mcs<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    options: &ClientOptions,
    selected: SecurityProtocol,
) -> Result<(Channels, gcc::ServerSecurityData), ClientError> {
    const STAGE: &str = "MCS Connect Initial";
    let initial = mcs::ConnectInitial::with_gcc_blocks(client_gcc_blocks(options, selected))
        .map_err(|e| encode_error(STAGE, e))?;
    let initial_bytes = encode_vec(&initial).map_err(|e| encode_error(STAGE, e))?;
    framed
        .send(
            STAGE,
            &X224(X224Data {
                data: Cow::Owned(initial_bytes),
            }),
        )
        .await?;

    const RESPONSE: &str = "MCS Connect Response";
    let response_bytes = framed.read_pdu(RESPONSE).await?;
    let data: X224Data<'_> = decode::<X224<X224Data<'_>>>(&response_bytes)
        .map(|pdu| pdu.0)
        .map_err(|e| protocol(RESPONSE, e))?;
    let response: mcs::ConnectResponse =
        decode(data.data.as_ref()).map_err(|e| protocol(RESPONSE, e))?;
    let blocks = response.conference_create_response.into_gcc_blocks();
    let io_channel = blocks.network.io_channel;
    // Channels the server assigned beyond the I/O channel: none were asked for, but a server
    // that assigns some expects them joined.
    let static_channels = blocks.network.channel_ids;
    let server_security = blocks.security;
    // Both sides announced skip-channel-join (MS-RDPBCGR 3.2.5.3.8): no channel joins.
    let skip_channel_join = blocks
        .core
        .optional_data
        .early_capability_flags
        .is_some_and(|flags| {
            flags.contains(gcc::ServerEarlyCapabilityFlags::SKIP_CHANNELJOIN_SUPPORTED)
        });

    // The Erect Domain Request needs no answer: it leaves with the Attach User Request.
    framed.queue(
        "MCS Erect Domain Request",
        &X224(mcs::ErectDomainPdu {
            sub_height: 0,
            sub_interval: 0,
        }),
    )?;
    framed
        .send("MCS Attach User Request", &X224(mcs::AttachUserRequest))
        .await?;
    const ATTACH: &str = "MCS Attach User Confirm";
    let attach_bytes = framed.read_pdu(ATTACH).await?;
    let attach: mcs::AttachUserConfirm = decode::<X224<mcs::AttachUserConfirm>>(&attach_bytes)
        .map(|pdu| pdu.0)
        .map_err(|e| protocol(ATTACH, e))?;
    if attach.result != 0 {
        return Err(protocol(ATTACH, format!("result {}", attach.result)));
    }
    let user_id = attach.initiator_id;
    // T.125 user ids start at 1001; the Send Data initiator is sent as the id minus that.
    if user_id < McsSendData::USER_ID_BASE {
        return Err(protocol(ATTACH, format!("user id {user_id} below 1001")));
    }
    let channels = Channels {
        user_id,
        io_channel,
    };

    if skip_channel_join {
        return Ok((channels, server_security));
    }
    // One join at a time, as mstsc does.
    const JOIN: &str = "MCS Channel Join Confirm";
    for channel_id in [user_id, io_channel].into_iter().chain(static_channels) {
        framed
            .send(
                "MCS Channel Join Request",
                &X224(mcs::ChannelJoinRequest {
                    initiator_id: user_id,
                    channel_id,
                }),
            )
            .await?;
        let join_bytes = framed.read_pdu(JOIN).await?;
        let join: mcs::ChannelJoinConfirm = decode::<X224<mcs::ChannelJoinConfirm>>(&join_bytes)
            .map(|pdu| pdu.0)
            .map_err(|e| protocol(JOIN, e))?;
        if join.result != 0 || join.channel_id != channel_id {
            return Err(protocol(
                JOIN,
                format!(
                    "channel {channel_id}: result {}, joined {}",
                    join.result, join.channel_id
                ),
            ));
        }
    }
    Ok((channels, server_security))
}

/// The client's GCC blocks: core data (its name, a 1024x768 desktop, the selected protocol),
/// security data (no RDP encryption over TLS, which carries everything; 40-, 56- and 128-bit
/// RC4 under Standard RDP Security) and network data with no static channels.
fn client_gcc_blocks(options: &ClientOptions, selected: SecurityProtocol) -> gcc::ClientGccBlocks {
    use gcc::{
        ClientCoreData, ClientCoreOptionalData, ClientEarlyCapabilityFlags, ClientNetworkData,
        ClientSecurityData, ColorDepth, ConnectionType, EncryptionMethod, HighColorDepth,
        KeyboardType, RdpVersion, SecureAccessSequence, SupportedColorDepths,
    };
    let (desktop_width, desktop_height) = DESKTOP;
    gcc::ClientGccBlocks {
        core: ClientCoreData {
            version: RdpVersion::V5_PLUS,
            desktop_width,
            desktop_height,
            // Superseded by highColorDepth below; kept at the value every client sends.
            color_depth: ColorDepth::Bpp8,
            sec_access_sequence: SecureAccessSequence::Del,
            keyboard_layout: KEYBOARD_LAYOUT,
            client_build: CLIENT_BUILD,
            // ironrdp-pdu cuts it to the field's 15 characters.
            client_name: options.machine.clone(),
            keyboard_type: KeyboardType::IBM_ENHANCED,
            keyboard_subtype: 0,
            keyboard_functional_keys_count: KEYBOARD_FUNCTION_KEYS,
            ime_file_name: String::new(),
            // Every optional field up to serverSelectedProtocol: each one present requires the
            // ones before it (2.2.1.3.2).
            optional_data: ClientCoreOptionalData {
                post_beta2_color_depth: Some(ColorDepth::Bpp8),
                client_product_id: Some(1),
                serial_number: Some(0),
                high_color_depth: Some(HighColorDepth::Bpp24),
                supported_color_depths: Some(
                    SupportedColorDepths::BPP32
                        | SupportedColorDepths::BPP24
                        | SupportedColorDepths::BPP16
                        | SupportedColorDepths::BPP15,
                ),
                // SUPPORT_ERR_INFO_PDU: without it a host need not send Set Error Info, and the
                // report could not say why a session ended.
                early_capability_flags: Some(
                    ClientEarlyCapabilityFlags::SUPPORT_ERR_INFO_PDU
                        | ClientEarlyCapabilityFlags::WANT_32_BPP_SESSION
                        | ClientEarlyCapabilityFlags::STRONG_ASYMMETRIC_KEYS
                        | ClientEarlyCapabilityFlags::VALID_CONNECTION_TYPE
                        | ClientEarlyCapabilityFlags::SUPPORT_SKIP_CHANNELJOIN,
                ),
                dig_product_id: Some(String::new()),
                connection_type: Some(ConnectionType::Lan),
                server_selected_protocol: Some(selected),
                ..ClientCoreOptionalData::default()
            },
        },
        security: ClientSecurityData {
            encryption_methods: if selected.is_empty() {
                EncryptionMethod::BIT_40 | EncryptionMethod::BIT_56 | EncryptionMethod::BIT_128
            } else {
                EncryptionMethod::empty()
            },
            ext_encryption_methods: 0,
        },
        // Present though empty: the specification requires the block; FreeRDP omits it.
        network: Some(ClientNetworkData {
            channels: Vec::new(),
        }),
        cluster: None,
        monitor: None,
        message_channel: None,
        multi_transport_channel: None,
        monitor_extended: None,
    }
}

/// Client Info PDU (2.2.1.11): the credentials, behind a basic security header flagged
/// SEC_INFO_PKT.
async fn send_client_info<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    channels: Channels,
    options: &ClientOptions,
    address: SocketAddr,
) -> Result<(), ClientError> {
    let info = ClientInfoPdu {
        security_header: BasicSecurityHeader {
            flags: BasicSecurityHeaderFlags::INFO_PKT,
        },
        client_info: ClientInfo {
            credentials: Credentials {
                username: options.user.clone(),
                password: options.password.clone(),
                domain: None,
            },
            password_cookie: None,
            // Ignored when the Client Core Data names a keyboard layout.
            code_page: 0,
            flags: ClientInfoFlags::MOUSE
                | ClientInfoFlags::UNICODE
                | ClientInfoFlags::DISABLE_CTRL_ALT_DEL
                | ClientInfoFlags::LOGON_NOTIFY
                | ClientInfoFlags::LOGON_ERRORS
                | ClientInfoFlags::ENABLE_WINDOWS_KEY
                | ClientInfoFlags::MAXIMIZE_SHELL
                | ClientInfoFlags::AUTOLOGON
                | ClientInfoFlags::NO_AUDIO_PLAYBACK,
            compression_type: CompressionType::K8,
            alternate_shell: String::new(),
            work_dir: String::new(),
            extra_info: ExtendedClientInfo {
                address_family: match address {
                    SocketAddr::V4(_) => AddressFamily::INET,
                    SocketAddr::V6(_) => AddressFamily::INET_6,
                },
                address: address.ip().to_string(),
                dir: String::new(),
                optional_data: ExtendedClientOptionalInfo::builder()
                    .timezone(TimezoneInfo::default())
                    .session_id(0)
                    .performance_flags(PerformanceFlags::default())
                    .build(),
            },
        },
    };
    let direction = SendDataDirection::Request;
    queue_io_with_header(framed, "Client Info", direction, channels, &info)?;
    Ok(framed.flush("Client Info").await?)
}

/// What the client does with a share control PDU while it waits for the server to end.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnShareControl {
    /// Read on: an active session's traffic.
    Ignore,
    /// Leave: after the client aborted licensing, a Demand Active means the server thought
    /// licensing was over.
    Leave,
}

/// Reads until the server ends the session (Ultimatum or end of stream), keeping the last Set
/// Error Info code; if it stays silent for the timeout, the client disconnects.
async fn read_to_end<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    error_info: &mut Option<u32>,
    stage: &'static str,
    on_share_control: OnShareControl,
) -> Ending {
    loop {
        let frame = match framed.read_pdu(stage).await {
            Ok(frame) => frame,
            Err(TransportError {
                kind: TransportErrorKind::Closed,
                ..
            }) => return Ending::ServerClosed,
            Err(TransportError {
                kind: TransportErrorKind::Timeout(_),
                stage,
                ..
            }) => {
                disconnect(framed).await;
                return Ending::TimedOut { stage };
            }
            Err(error) => return failed(framed, error.into()).await,
        };
        match classify(stage, &frame, Phase::Session) {
            Ok(ServerPdu::ErrorInfo(code)) => *error_info = Some(code),
            Ok(ServerPdu::Disconnect) => {
                framed.shutdown().await;
                return Ending::ServerDisconnected;
            }
            Ok(ServerPdu::ShareControl(_)) if on_share_control == OnShareControl::Leave => {
                return disconnect(framed).await
            }
            // Output, keep-alives and whatever an active session carries.
            Ok(_) | Err(_) => {}
        }
    }
}

/// The client's own disconnect: MCS Disconnect Provider Ultimatum (user requested), then the
/// end of the stream.
async fn disconnect<S: AsyncRead + AsyncWrite + Unpin>(framed: &mut Framed<S>) -> Ending {
    let ultimatum = X224(DisconnectProviderUltimatum::from_reason(
        DisconnectReason::UserRequested,
    ));
    // The server may be gone already; the client is leaving either way.
    let _ = framed
        .send("Disconnect Provider Ultimatum", &ultimatum)
        .await;
    framed.shutdown().await;
    Ending::ClientDisconnected
}

/// A failure after licensing: recorded, and the connection closed.
async fn failed<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    error: ClientError,
) -> Ending {
    framed.shutdown().await;
    Ending::Failed {
        stage: error.stage(),
        detail: error.to_string(),
    }
}

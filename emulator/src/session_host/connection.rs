//! One client connection through the RDP connection sequence (MS-RDPBCGR 1.3.1.1): X.224
//! negotiation, TLS, MCS Connect with GCC blocks, channel connection, Client Info, licensing
//! (ours, [`super::licensing`]), capability exchange and connection finalization, then the
//! end the host chooses. The non-licensing PDUs are ironrdp-pdu's.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ironrdp_core::{decode, encode_vec, Encode};
use ironrdp_pdu::gcc;
use ironrdp_pdu::mcs::{self, DisconnectProviderUltimatum, DisconnectReason};
use ironrdp_pdu::nego::{self, SecurityProtocol};
use ironrdp_pdu::rdp::capability_sets::{self, CapabilitySet, DemandActive, ServerDemandActive};
use ironrdp_pdu::rdp::finalization_messages::{ControlAction, ControlPdu, FontPdu, SynchronizePdu};
use ironrdp_pdu::rdp::headers::{
    CompressionFlags, ShareControlHeader, ShareControlPdu, ShareDataHeader, ShareDataPdu,
    StreamPriority,
};
use ironrdp_pdu::rdp::server_error_info::{
    ErrorInfo, ProtocolIndependentCode, ProtocolIndependentLicensingCode, ServerSetErrorInfoPdu,
};
use ironrdp_pdu::rdp::{client_info::CompressionType, ClientInfoPdu};
use ironrdp_pdu::x224::{X224Data, X224};
use rand::rngs::StdRng;
use rdpele_proto::crypto::{derive_rdp_session_keys, EncryptionMethod, Side, SERVER_RANDOM_LEN};
use rdpele_proto::envelope::{
    RdpSecurityLayer, SecurityExchangePdu, SecurityFlags, SendDataDirection,
};
use rdpele_proto::wire::Wire;
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info, warn};

use super::config::{EncryptionLevel, SecurityLayer};
use super::errinfo::license_error_info;
use super::licensing::{self, LicensingContext, LicensingEnd};
use super::pcap::Tap;
use super::{Randomness, Shared};
use crate::transport::{
    self, Channels, Framed, Peer, RdpSecurity, TransportError, TransportErrorKind,
};

const USER_CHANNEL_ID: u16 = Channels::HOST.user_id;
const IO_CHANNEL_ID: u16 = Channels::HOST.io_channel;
/// Windows' share id (MS-RDPBCGR 2.2.1.13.1.1: the server picks it; clients echo it).
const SHARE_ID: u32 = 0x0001_03EA;
/// Stands for an address the operating system could not tell (the connection is then not
/// captured).
const SOME_ADDRESS: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::UNSPECIFIED,
    0,
));
/// How long a disconnected client gets to close the connection itself.
const LINGER: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnError {
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("session host settings: {0}")]
    Host(#[from] super::issuer::HostSettingsError),
}

fn protocol(stage: &'static str, detail: impl std::fmt::Display) -> ConnError {
    TransportError::protocol(stage, Peer::Client, detail).into()
}

/// Sends `pdu` to the client on the I/O channel (MCS Send Data Indication).
async fn send_io<S, T>(
    framed: &mut Framed<S>,
    stage: &'static str,
    pdu: &T,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    T: Encode,
{
    let direction = SendDataDirection::Indication;
    Ok(transport::send_io(framed, stage, direction, Channels::HOST, pdu).await?)
}

async fn send_share_data<S>(
    framed: &mut Framed<S>,
    stage: &'static str,
    pdu: ShareDataPdu,
) -> Result<(), ConnError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    queue_share_data(framed, stage, pdu)?;
    Ok(framed.flush(stage).await?)
}

/// [`send_share_data`] without the write: the PDU leaves with the next send, or before the next
/// read that waits for the client (the answers to finalization PDUs that came together leave
/// together).
fn queue_share_data<S>(
    framed: &mut Framed<S>,
    stage: &'static str,
    pdu: ShareDataPdu,
) -> Result<(), ConnError> {
    let header = ShareControlHeader {
        share_id: SHARE_ID,
        pdu_source: IO_CHANNEL_ID,
        share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
            share_data_pdu: pdu,
            stream_priority: StreamPriority::Medium,
            compression_flags: CompressionFlags::empty(),
            compression_type: CompressionType::K8,
        }),
    };
    let direction = SendDataDirection::Indication;
    Ok(transport::queue_io(
        framed,
        stage,
        direction,
        Channels::HOST,
        &header,
    )?)
}

/// Reads a slow-path PDU as `T` behind its X.224 Data header.
fn decode_x224<'a, T>(stage: &'static str, bytes: &'a [u8]) -> Result<T, ConnError>
where
    X224<T>: ironrdp_core::Decode<'a>,
{
    decode::<X224<T>>(bytes)
        .map(|pdu| pdu.0)
        .map_err(|e| protocol(stage, e))
}

/// What `read` makes of the user data of `bytes`, if `bytes` is an MCS Send Data Request.
fn send_data<T>(bytes: &[u8], read: impl FnOnce(&[u8]) -> Option<T>) -> Option<T> {
    let X224(request) = decode::<X224<mcs::SendDataRequest<'_>>>(bytes).ok()?;
    read(request.user_data.as_ref())
}

/// Whether `bytes` is an MCS Send Data Request (MS-RDPBCGR 2.2.1.11: how a Client Info comes).
fn is_send_data_request(bytes: &[u8]) -> bool {
    send_data(bytes, |_| Some(())).is_some()
}

/// PDUTYPE_CONFIRMACTIVEPDU, the low 4 bits of a Share Control Header's pduType
/// (MS-RDPBCGR 2.2.8.1.1.1.1).
const PDUTYPE_CONFIRM_ACTIVE: u8 = 0x3;

/// Whether `bytes` is a Confirm Active PDU (MS-RDPBCGR 2.2.1.13.2), known by its Share Control
/// Header alone: the host needs nothing from the client's capability sets, and Windows
/// activates clients whose capability sets a strict decoder refuses — rdesktop 1.9.0 sends
/// four capability sets of types ironrdp-pdu does not know (observed here: its Confirm Active
/// was dropped as unreadable and the session never became active).
fn is_confirm_active(bytes: &[u8]) -> bool {
    send_data(bytes, |data| {
        Some(data.get(2)? & 0x0F == PDUTYPE_CONFIRM_ACTIVE)
    })
    .unwrap_or(false)
}

/// Writes the T.124 ConferenceCreateResponse's PER length as Windows does: one byte, 0x2a,
/// whatever the length of what follows (xrdp 0.9.21 copies it; its Connect Response in
/// `proto/tests/vectors/rdp_security` reads `00 05 00 14 7c 00 01 2a 14 76 …`). rdesktop 1.9.0
/// depends on it: it skips a fixed 21-byte header to reach the GCC blocks, so a correct
/// two-byte length (the GCC data of Standard RDP Security, with its certificate, is over 127
/// bytes) puts it one byte off ("Unhandled response tag", then a stream overrun, observed
/// here). The enclosing BER lengths of `mcs_response` (an encoded MCS Connect-Response) shrink
/// with it; other clients read the GCC blocks by their own lengths.
fn windows_t124_length(mcs_response: &mut Vec<u8>) {
    /// The T.124 object identifier of the user data: the ConferenceCreateResponse follows.
    const T124_KEY: [u8; 7] = [0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01];
    const WINDOWS_LENGTH: u8 = 0x2a;
    let Some(key_at) = mcs_response
        .windows(T124_KEY.len())
        .position(|window| window == T124_KEY)
    else {
        return;
    };
    let length_at = key_at + T124_KEY.len();
    let Some(&first) = mcs_response.get(length_at) else {
        return;
    };
    let old_len = if first & 0x80 != 0 { 2 } else { 1 };
    mcs_response.splice(length_at..length_at + old_len, [WINDOWS_LENGTH]);
    if old_len == 1 {
        return;
    }
    // The Connect-Response's own length (after its two-byte tag 7f 66) and the user data
    // OCTET STRING's (tag 04 just before the key) each lose the byte.
    shrink_ber_length(mcs_response, 2);
    let header = |back: usize| key_at.checked_sub(back).and_then(|at| mcs_response.get(at));
    let length_form_at = match (header(4), header(3), header(2)) {
        (Some(0x04), Some(0x82), _) => key_at.checked_sub(3),
        (_, Some(0x04), Some(0x81)) => key_at.checked_sub(2),
        (_, _, Some(0x04)) => key_at.checked_sub(1),
        _ => None,
    };
    if let Some(at) = length_form_at {
        shrink_ber_length(mcs_response, at);
    }
}

/// Decrements by one the BER length at `at` (short form or 0x81 / 0x82 long form).
fn shrink_ber_length(bytes: &mut [u8], at: usize) {
    match bytes.get(at).copied() {
        Some(0x81) => {
            if let Some(byte) = bytes.get_mut(at + 1) {
                *byte = byte.saturating_sub(1);
            }
        }
        Some(0x82) => {
            if let Some(field) = bytes.get_mut(at + 1..at + 3) {
                if let Ok(pair) = <[u8; 2]>::try_from(&*field) {
                    let value = u16::from_be_bytes(pair).saturating_sub(1);
                    field.copy_from_slice(&value.to_be_bytes());
                }
            }
        }
        Some(short) if short < 0x80 => {
            if let Some(byte) = bytes.get_mut(at) {
                *byte = short.saturating_sub(1);
            }
        }
        _ => {}
    }
}

/// Whether a Confirm Active's General Capability Set (MS-RDPBCGR 2.2.7.1.1) has
/// ENC_SALTED_CHECKSUM in its extraFlags: the client can check salted MACs.
fn client_salted_checksums(confirm_active: &[u8]) -> bool {
    /// Share Control Header (6), shareId (4), originatorId (2): where lengthSourceDescriptor is.
    const SOURCE_DESCRIPTOR_LENGTH_OFFSET: usize = 12;
    const CAPSTYPE_GENERAL: u16 = 0x0001;
    /// capabilitySetType, lengthCapability, osMajorType, osMinorType, protocolVersion,
    /// pad2octetsA, generalCompressionTypes: where extraFlags is in the set.
    const EXTRA_FLAGS_OFFSET: usize = 14;
    const ENC_SALTED_CHECKSUM: u16 = 0x0010;
    let u16_at = |data: &[u8], at: usize| -> Option<u16> {
        Some(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]))
    };
    send_data(confirm_active, |data| {
        let source_len = usize::from(u16_at(data, SOURCE_DESCRIPTOR_LENGTH_OFFSET)?);
        // lengthCombinedCapabilities (2), the source descriptor, numberCapabilities (2) and
        // pad2Octets (2).
        let sets_start = SOURCE_DESCRIPTOR_LENGTH_OFFSET + 4 + source_len;
        let count = u16_at(data, sets_start.checked_sub(4)?)?;
        let mut at = sets_start;
        for _ in 0..count {
            let kind = u16_at(data, at)?;
            let len = usize::from(u16_at(data, at + 2)?);
            if kind == CAPSTYPE_GENERAL {
                let flags = u16_at(data, at + EXTRA_FLAGS_OFFSET)?;
                return Some(flags & ENC_SALTED_CHECKSUM != 0);
            }
            if len < 4 {
                return None;
            }
            at += len;
        }
        None
    })
    .unwrap_or(false)
}

/// The client's connection finalization PDUs the host answers (MS-RDPBCGR 2.2.1.14 –
/// 2.2.1.18), known by their Share Data Header's pduType2 (and a Control PDU's action) alone:
/// aardwolf 0.2.16 writes a Share Control Header totalLength 6 bytes over its PDUs (observed
/// here: 28 for a 22-byte Synchronize), which ironrdp-pdu refuses and Windows, which
/// activates aardwolf, does not (issue #11).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ClientFinalization {
    Synchronize,
    Cooperate,
    RequestControl,
    FontList,
}

impl ClientFinalization {
    /// PDUTYPE_DATAPDU, the low 4 bits of a Share Control Header's pduType.
    const PDUTYPE_DATA: u8 = 0x7;
    /// Share Control Header (6 bytes) and Share Data Header up to pduType2 (8 bytes).
    const PDU_TYPE2_OFFSET: usize = 14;
    /// The PDU after the Share Data Header (18 bytes).
    const BODY_OFFSET: usize = 18;
    const PDUTYPE2_CONTROL: u8 = 0x14;
    const PDUTYPE2_SYNCHRONIZE: u8 = 0x1F;
    const PDUTYPE2_FONTLIST: u8 = 0x27;
    const CTRLACTION_REQUEST_CONTROL: u16 = 0x0001;
    const CTRLACTION_COOPERATE: u16 = 0x0004;

    fn of(bytes: &[u8]) -> Option<Self> {
        send_data(bytes, Self::of_share_pdu)
    }

    fn of_share_pdu(data: &[u8]) -> Option<Self> {
        if data.get(2)? & 0x0F != Self::PDUTYPE_DATA {
            return None;
        }
        let action = || {
            let body = data.get(Self::BODY_OFFSET..Self::BODY_OFFSET + 2)?;
            Some(u16::from_le_bytes([*body.first()?, *body.get(1)?]))
        };
        match *data.get(Self::PDU_TYPE2_OFFSET)? {
            Self::PDUTYPE2_SYNCHRONIZE => Some(Self::Synchronize),
            Self::PDUTYPE2_FONTLIST => Some(Self::FontList),
            Self::PDUTYPE2_CONTROL => match action()? {
                Self::CTRLACTION_COOPERATE => Some(Self::Cooperate),
                Self::CTRLACTION_REQUEST_CONTROL => Some(Self::RequestControl),
                _ => None,
            },
            _ => None,
        }
    }
}

/// Which of the host's Control PDUs of the finalization have been sent; each goes once.
#[derive(Debug, Default)]
struct Finalization {
    cooperate: bool,
    granted: bool,
}

impl Finalization {
    fn cooperate<S>(&mut self, framed: &mut Framed<S>) -> Result<(), ConnError> {
        if std::mem::replace(&mut self.cooperate, true) {
            return Ok(());
        }
        queue_share_data(
            framed,
            "Control Cooperate",
            ShareDataPdu::Control(ControlPdu {
                action: ControlAction::Cooperate,
                grant_id: 0,
                control_id: 0,
            }),
        )
    }

    fn grant_control<S>(&mut self, framed: &mut Framed<S>) -> Result<(), ConnError> {
        if std::mem::replace(&mut self.granted, true) {
            return Ok(());
        }
        queue_share_data(
            framed,
            "Control Granted",
            ShareDataPdu::Control(ControlPdu {
                action: ControlAction::GrantedControl,
                grant_id: USER_CHANNEL_ID,
                control_id: u32::from(capability_sets::SERVER_CHANNEL_ID),
            }),
        )
    }
}

/// Who the client says it is, for the log.
#[derive(Clone, Debug, Default)]
struct ClientIdentity {
    machine: String,
    user: String,
}

/// How a connection ended, for the log.
#[derive(Debug)]
pub enum ConnectionEnd {
    /// The session reached the active state and the host ended it.
    Active,
    Refused(ErrorInfo),
    ClientAborted,
    /// The client left once licensing was over (a licensing probe, such as `rdpele fleet`).
    ClientLeftAfterLicensing,
}

/// Runs one connection to its end on `stream`, whose (client, host) addresses, when known,
/// name it in a `--pcap` capture (a connection without them is not captured).
pub async fn serve_connection<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    addresses: Option<(SocketAddr, SocketAddr)>,
    shared: Arc<Shared>,
    peer: String,
    index: u64,
) -> Result<ConnectionEnd, ConnError> {
    let timeout = shared.options.step_timeout;
    let stream = match addresses {
        Some((client, host)) => Tap::new(stream, shared.pcap.as_ref(), client, host),
        None => Tap::new(stream, None, SOME_ADDRESS, SOME_ADDRESS),
    };
    let mut framed = Framed::new(stream, timeout, Peer::Client);

    // X.224 Connection Request / Confirm (MS-RDPBCGR 2.2.1.1, 2.2.1.2).
    let request_bytes = framed.read_pdu("X.224 Connection Request").await?;
    let request: nego::ConnectionRequest = decode_x224("X.224 Connection Request", &request_bytes)?;
    let requested = request.protocol;
    let layer = match choose_layer(shared.config.security, requested) {
        Ok(layer) => layer,
        Err(code) => {
            let failure = nego::ConnectionConfirm::Failure { code };
            framed
                .send("X.224 Connection Confirm", &X224(failure))
                .await?;
            return Err(protocol(
                "X.224 negotiation",
                format!(
                    "the client offered {}, which the host's security layer {:?} does not take; answered {}",
                    transport::describe_protocols(requested),
                    shared.config.security,
                    transport::describe_failure(code),
                ),
            ));
        }
    };
    let confirm = nego::ConnectionConfirm::Response {
        flags: nego::ResponseFlags::EXTENDED_CLIENT_DATA_SUPPORTED,
        protocol: match layer {
            Layer::Tls => SecurityProtocol::SSL,
            Layer::Rdp => SecurityProtocol::empty(),
        },
    };
    framed
        .send("X.224 Connection Confirm", &X224(confirm))
        .await?;
    if layer == Layer::Rdp {
        return serve_session(framed, shared, peer, index, requested, layer).await;
    }
    if framed.has_buffered() {
        return Err(protocol(
            "TLS",
            "the client sent data before the TLS handshake",
        ));
    }
    let tls = tokio::time::timeout(timeout, shared.tls.accept(framed.into_inner()?))
        .await
        .map_err(|_| {
            TransportError::new(
                "TLS handshake",
                Peer::Client,
                TransportErrorKind::Timeout(timeout),
            )
        })?
        .map_err(ConnError::Tls)?;
    let framed = Framed::new(tls, timeout, Peer::Client);
    serve_session(framed, shared, peer, index, requested, layer).await
}

/// The security layer a connection runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layer {
    /// Enhanced RDP Security with TLS (MS-RDPBCGR 5.4).
    Tls,
    /// Standard RDP Security (MS-RDPBCGR 5.3).
    Rdp,
}

/// The security layer the host selects for what the client requested (MS-RDPBCGR 3.3.5.3.1),
/// or the failure code it answers with. Under "negotiate", as Windows' default does: TLS when
/// offered, Standard RDP Security for a client that requests nothing else (PROTOCOL_RDP).
fn choose_layer(
    setting: SecurityLayer,
    requested: SecurityProtocol,
) -> Result<Layer, nego::FailureCode> {
    let offers_tls = requested.contains(SecurityProtocol::SSL);
    match setting {
        SecurityLayer::Negotiate | SecurityLayer::Tls if offers_tls => Ok(Layer::Tls),
        SecurityLayer::Negotiate if requested.is_empty() => Ok(Layer::Rdp),
        SecurityLayer::Negotiate | SecurityLayer::Tls => {
            Err(nego::FailureCode::SSL_REQUIRED_BY_SERVER)
        }
        SecurityLayer::Rdp if requested.is_empty() => Ok(Layer::Rdp),
        SecurityLayer::Rdp => Err(nego::FailureCode::SSL_NOT_ALLOWED_BY_SERVER),
    }
}

/// What Standard RDP Security the host chose for a connection (MS-RDPBCGR 5.3.2): the level
/// the host is configured with and the strongest method the client offers, with the server
/// random the keys come from.
#[derive(Clone, Copy, Debug)]
struct Standard {
    level: EncryptionLevel,
    /// The client takes a server key over 512 bits (RNS_UD_CS_STRONG_ASYMMETRIC_KEYS).
    strong_keys: bool,
    /// `None` at encryption level None: nothing to encrypt, no Security Exchange.
    method: Option<EncryptionMethod>,
    server_random: [u8; SERVER_RANDOM_LEN],
}

impl Standard {
    fn choose(
        level: EncryptionLevel,
        client: &gcc::ClientSecurityData,
        strong_keys: bool,
        rng: &mut StdRng,
    ) -> Result<Self, ConnError> {
        const STAGE: &str = "MCS Connect Initial";
        // The first draw of its randomness: the fuzz harness's client derives its keys from it.
        let mut server_random = [0u8; SERVER_RANDOM_LEN];
        rand::Rng::fill_bytes(rng, &mut server_random);
        if level == EncryptionLevel::None {
            return Ok(Self {
                level,
                strong_keys,
                method: None,
                server_random,
            });
        }
        // French-locale clients put their methods in extEncryptionMethods and leave
        // encryptionMethods 0 (MS-RDPBCGR 2.2.1.3.3).
        let offered = match client.encryption_methods.bits() {
            0 => client.ext_encryption_methods,
            methods => methods,
        };
        let method = match (level, EncryptionMethod::strongest_of(offered)) {
            (_, None) => {
                return Err(protocol(
                    STAGE,
                    format!("the client offers no RC4 encryption method (encryptionMethods {offered:#x}), which Standard RDP Security at level {level:?} needs"),
                ))
            }
            (EncryptionLevel::High, Some(method)) if method != EncryptionMethod::Bits128 => {
                return Err(protocol(
                    STAGE,
                    format!("the client offers {method} at best; encryption level High requires 128-bit RC4"),
                ))
            }
            (_, Some(method)) => method,
        };
        Ok(Self {
            level,
            strong_keys,
            method: Some(method),
            server_random,
        })
    }

    /// The Server Security Data (MS-RDPBCGR 2.2.1.4.3): the method, the level, the server
    /// random and the host's proprietary certificate for this client.
    fn server_data(&self, certificate: &[u8]) -> gcc::ServerSecurityData {
        let Some(method) = self.method else {
            return gcc::ServerSecurityData::no_security();
        };
        gcc::ServerSecurityData {
            encryption_method: gcc::EncryptionMethod::from_bits_retain(method.wire()),
            encryption_level: match self.level {
                EncryptionLevel::None => gcc::EncryptionLevel::None,
                EncryptionLevel::Low => gcc::EncryptionLevel::Low,
                EncryptionLevel::ClientCompatible => gcc::EncryptionLevel::ClientCompatible,
                EncryptionLevel::High => gcc::EncryptionLevel::High,
            },
            server_random: Some(self.server_random),
            server_cert: certificate.to_vec(),
        }
    }
}

/// Reads the client's Security Exchange PDU (MS-RDPBCGR 2.2.1.10), decrypts its client random
/// with the host's key and puts Standard RDP Security in force on `framed`.
fn start_standard_security<S>(
    framed: &mut Framed<S>,
    shared: &Shared,
    standard: &Standard,
    method: EncryptionMethod,
    exchange_bytes: &[u8],
    rng: &mut StdRng,
) -> Result<(), ConnError> {
    const STAGE: &str = "Security Exchange";
    let request: mcs::SendDataRequest<'_> = decode_x224(STAGE, exchange_bytes)?;
    let exchange =
        SecurityExchangePdu::decode(&request.user_data).map_err(|e| protocol(STAGE, e))?;
    let client_random = shared
        .rdp_security
        .for_client(standard.strong_keys)
        .key
        .decrypt_client_random(exchange.encrypted_client_random, rng)
        .map_err(|e| protocol(STAGE, format!("the encrypted client random: {e}")))?;
    let keys = derive_rdp_session_keys(&client_random, &standard.server_random, method);
    framed.start_rdp_security(RdpSecurity {
        layer: RdpSecurityLayer::new(&keys, Side::Server),
        encrypt_sent: standard.level >= EncryptionLevel::ClientCompatible,
        encrypt_licensing: exchange.license_encrypt(),
        licensing_flags: SecurityFlags::SEC_LICENSE_ENCRYPT_CS,
    });
    Ok(())
}

/// The connection after the security layer is in place: MCS, channels, Client Info,
/// licensing, capability exchange and finalization.
async fn serve_session<S: AsyncRead + AsyncWrite + Unpin>(
    mut framed: Framed<S>,
    shared: Arc<Shared>,
    peer: String,
    index: u64,
    requested: SecurityProtocol,
    layer: Layer,
) -> Result<ConnectionEnd, ConnError> {
    let mut rng = shared.connection_rng(Randomness::StandardSecurity);
    // MCS Connect Initial / Response with the GCC blocks (2.2.1.3, 2.2.1.4).
    let initial_bytes = framed.read_pdu("MCS Connect Initial").await?;
    let initial: mcs::ConnectInitial = {
        let data: X224Data<'_> = decode_x224("MCS Connect Initial", &initial_bytes)?;
        decode(data.data.as_ref()).map_err(|e| protocol("MCS Connect Initial", e))?
    };
    let blocks = initial.conference_create_request.into_gcc_blocks();
    let client_flags = blocks
        .core
        .optional_data
        .early_capability_flags
        .unwrap_or_else(gcc::ClientEarlyCapabilityFlags::empty);
    let standard = match layer {
        Layer::Tls => None,
        Layer::Rdp => Some(Standard::choose(
            shared.config.encryption_level,
            &blocks.security,
            client_flags.contains(gcc::ClientEarlyCapabilityFlags::STRONG_ASYMMETRIC_KEYS),
            &mut rng,
        )?),
    };
    let mut identity = ClientIdentity {
        machine: blocks.core.client_name.clone(),
        user: String::new(),
    };
    let desktop = (blocks.core.desktop_width, blocks.core.desktop_height);
    // MS-RDPBCGR 2.2.1.3.2 / 2.2.1.4.2: a client that can skip the channel joins is told the
    // host can too (as IronRDP's acceptor does, only to a client that asks: rdesktop and
    // aardwolf never see a Server Core Data longer than before), and may then go from Attach
    // User Confirm straight to its Security Exchange or Client Info (3.2.5.3.8).
    let skip_channel_join =
        client_flags.contains(gcc::ClientEarlyCapabilityFlags::SUPPORT_SKIP_CHANNELJOIN);
    let channel_count = blocks.network.as_ref().map_or(0, |n| n.channels.len());
    let channel_ids: Vec<u16> = (1..=channel_count)
        .map(|i| IO_CHANNEL_ID.saturating_add(u16::try_from(i).unwrap_or(u16::MAX)))
        .collect();
    let server_blocks = gcc::ServerGccBlocks {
        core: gcc::ServerCoreData {
            version: gcc::RdpVersion::V5_PLUS,
            optional_data: gcc::ServerCoreOptionalData {
                client_requested_protocols: Some(requested),
                early_capability_flags: skip_channel_join
                    .then_some(gcc::ServerEarlyCapabilityFlags::SKIP_CHANNELJOIN_SUPPORTED),
            },
        },
        network: gcc::ServerNetworkData {
            channel_ids: channel_ids.clone(),
            io_channel: IO_CHANNEL_ID,
        },
        security: match &standard {
            Some(standard) => standard.server_data(
                &shared
                    .rdp_security
                    .for_client(standard.strong_keys)
                    .certificate,
            ),
            None => gcc::ServerSecurityData::no_security(),
        },
        message_channel: None,
        multi_transport_channel: None,
    };
    let response = mcs::ConnectResponse {
        conference_create_response: gcc::ConferenceCreateResponse::new(
            USER_CHANNEL_ID,
            server_blocks,
        )
        .map_err(|e| protocol("MCS Connect Response", e))?,
        called_connect_id: 1,
        domain_parameters: mcs::DomainParameters::target(),
    };
    let mut response_bytes =
        encode_vec(&response).map_err(|e| protocol("MCS Connect Response", e))?;
    windows_t124_length(&mut response_bytes);
    framed
        .send(
            "MCS Connect Response",
            &X224(X224Data {
                data: Cow::Owned(response_bytes),
            }),
        )
        .await?;

    // Channel connection (2.2.1.5 – 2.2.1.9).
    let erect = framed.read_pdu("MCS Erect Domain Request").await?;
    let _: mcs::ErectDomainPdu = decode_x224("MCS Erect Domain Request", &erect)?;
    let attach = framed.read_pdu("MCS Attach User Request").await?;
    let _: mcs::AttachUserRequest = decode_x224("MCS Attach User Request", &attach)?;
    framed
        .send(
            "MCS Attach User Confirm",
            &X224(mcs::AttachUserConfirm {
                result: 0,
                initiator_id: USER_CHANNEL_ID,
            }),
        )
        .await?;
    // Every channel must be joined but the user channel: Windows admits a client that sends
    // its Client Info without joining it (aardwolf 0.2.16 joins the I/O and static channels
    // only; issue #11), so the host takes the Send Data Request that comes instead as the
    // Client Info. After skip-channel-join was agreed none need be, but a client that joins
    // anyway is answered.
    let mut to_join: Vec<u16> = [USER_CHANNEL_ID, IO_CHANNEL_ID]
        .into_iter()
        .chain(channel_ids)
        .collect();
    let mut client_info_first = None;
    while !to_join.is_empty() {
        let join_bytes = framed.read_pdu("MCS Channel Join Request").await?;
        if (skip_channel_join || to_join == [USER_CHANNEL_ID]) && is_send_data_request(&join_bytes)
        {
            debug!(peer, unjoined = ?to_join, skip_channel_join, "the client did not join every channel");
            client_info_first = Some(join_bytes);
            break;
        }
        let join: mcs::ChannelJoinRequest = decode_x224("MCS Channel Join Request", &join_bytes)?;
        let Some(position) = to_join.iter().position(|&id| id == join.channel_id) else {
            return Err(protocol(
                "MCS Channel Join Request",
                format!("channel {} was not offered", join.channel_id),
            ));
        };
        to_join.swap_remove(position);
        framed
            .send(
                "MCS Channel Join Confirm",
                &X224(mcs::ChannelJoinConfirm {
                    result: 0,
                    initiator_id: USER_CHANNEL_ID,
                    requested_channel_id: join.channel_id,
                    channel_id: join.channel_id,
                }),
            )
            .await?;
    }

    // Standard RDP Security: the Security Exchange (2.2.1.10), then everything encrypted.
    let mut next = client_info_first;
    if let Some((standard, method)) = standard
        .as_ref()
        .and_then(|standard| Some((standard, standard.method?)))
    {
        let exchange = match next.take() {
            Some(bytes) => bytes,
            None => framed.read_pdu("Security Exchange").await?,
        };
        start_standard_security(&mut framed, &shared, standard, method, &exchange, &mut rng)?;
        let key_bits = shared
            .rdp_security
            .for_client(standard.strong_keys)
            .key
            .public_key()
            .modulus_bits();
        info!(peer, %method, level = ?standard.level, key_bits, "Standard RDP Security");
    } else if let Some(standard) = &standard {
        info!(peer, level = ?standard.level, "Standard RDP Security without encryption");
    }

    // Client Info (2.2.1.11).
    let info_bytes = match next {
        Some(bytes) => bytes,
        None => framed.read_pdu("Client Info").await?,
    };
    let info_request: mcs::SendDataRequest<'_> = decode_x224("Client Info", &info_bytes)?;
    let client_info: ClientInfoPdu =
        decode(info_request.user_data.as_ref()).map_err(|e| protocol("Client Info", e))?;
    identity.user = client_info.client_info.credentials.username.clone();
    debug!(peer, machine = %identity.machine, user = %identity.user, "client info");

    // Licensing (2.2.1.12): ours.
    let context = LicensingContext {
        backend: Arc::clone(&shared.backend),
        machine_config: shared.machine_config.clone(),
        product_version: shared.config.product.version,
        faults: shared.config.faults.clone(),
        peer: format!("{peer} ({})", identity.machine),
        rng: shared.connection_rng(Randomness::Licensing),
        record: shared
            .options
            .record
            .as_ref()
            .map(|dir| dir.join(format!("connection-{index:04}"))),
    };
    let temporary = match licensing::run(&mut framed, context).await? {
        LicensingEnd::Licensed { temporary } => {
            shared.backend.record_first_use().await;
            temporary
        }
        LicensingEnd::Refused { refusal, reason } => {
            let code = license_error_info(refusal.error_code, reason);
            let error_info = ErrorInfo::ProtocolIndependentLicensingCode(code);
            end_session(&mut framed, error_info).await?;
            info!(peer, machine = %identity.machine, error = %refusal.error_code, errinfo = ?code, "licensing refused; connection closed");
            return Ok(ConnectionEnd::Refused(error_info));
        }
        LicensingEnd::ClientAborted { error_code } => {
            warn!(peer, machine = %identity.machine, error = %error_code, "the client ended licensing with an error");
            let error_info = ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::ClientEndedProtocol,
            );
            end_session(&mut framed, error_info).await?;
            return Ok(ConnectionEnd::ClientAborted);
        }
    };

    // Capability exchange (2.2.1.13).
    let demand = ShareControlHeader {
        share_id: SHARE_ID,
        pdu_source: IO_CHANNEL_ID,
        share_control_pdu: ShareControlPdu::ServerDemandActive(ServerDemandActive {
            pdu: DemandActive {
                source_descriptor: "RDP".to_owned(),
                capability_sets: capabilities(desktop),
            },
        }),
    };
    send_io(&mut framed, "Demand Active", &demand).await?;
    loop {
        let bytes = match framed.read_pdu("Confirm Active").await {
            Ok(bytes) => bytes,
            Err(TransportError {
                kind: TransportErrorKind::Closed,
                ..
            }) => {
                debug!(peer, machine = %identity.machine, "the client left after licensing");
                return Ok(ConnectionEnd::ClientLeftAfterLicensing);
            }
            Err(error) => return Err(error.into()),
        };
        if decode_x224::<DisconnectProviderUltimatum>("Confirm Active", &bytes).is_ok() {
            debug!(peer, machine = %identity.machine, "the client disconnected after licensing");
            framed.shutdown().await;
            return Ok(ConnectionEnd::ClientLeftAfterLicensing);
        }
        // A client that could not use its New / Upgrade License (a bad MAC, a CAL it cannot
        // store) says so with a Licensing Error Message instead of confirming.
        if let Some(error_code) = licensing::client_error_alert(&bytes) {
            warn!(peer, machine = %identity.machine, error = %error_code, "the client rejected the license it was sent");
            let error_info = ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::ClientEndedProtocol,
            );
            end_session(&mut framed, error_info).await?;
            return Ok(ConnectionEnd::ClientAborted);
        }
        if is_confirm_active(&bytes) {
            // Both ends advertise salted MACs (the host in its General Capability Set): the
            // host's PDUs carry them from here on (MS-RDPBCGR 5.3.6.1.1).
            if client_salted_checksums(&bytes) {
                if let Some(security) = framed.rdp_security() {
                    security.layer.use_salted_checksums(true);
                }
            }
            break;
        }
    }

    // Connection finalization (2.2.1.14 – 2.2.1.22): the host's Synchronize goes as soon as
    // the Confirm Active is in (aardwolf 0.2.16 waits for it before it sends anything more);
    // each of the client's Control Cooperate and Control Request Control is answered as it
    // arrives (rdesktop 1.9.0 waits for the host's three PDUs before it sends its Font List;
    // xfreerdp and IronRDP send all four at once), and its Font List with the Font Map, after
    // whichever of the two Control PDUs the client left out. Anything else on the way (input,
    // refresh requests) is read and dropped.
    queue_share_data(
        &mut framed,
        "Synchronize",
        ShareDataPdu::Synchronize(SynchronizePdu {
            target_user_id: USER_CHANNEL_ID,
        }),
    )?;
    let mut answered = Finalization::default();
    loop {
        let bytes = framed.read_pdu("connection finalization").await?;
        match ClientFinalization::of(&bytes) {
            // The host's own went with the Confirm Active.
            Some(ClientFinalization::Synchronize) | None => {}
            Some(ClientFinalization::Cooperate) => answered.cooperate(&mut framed)?,
            Some(ClientFinalization::RequestControl) => answered.grant_control(&mut framed)?,
            Some(ClientFinalization::FontList) => {
                answered.cooperate(&mut framed)?;
                answered.grant_control(&mut framed)?;
                break;
            }
        }
    }
    send_share_data(
        &mut framed,
        "Font Map",
        ShareDataPdu::FontMap(FontPdu::default()),
    )
    .await?;
    info!(peer, machine = %identity.machine, user = %identity.user, "session active");
    // The user is signed in: the temporary CAL this session was licensed with is validated,
    // and the license server may upgrade it at the device's next logon.
    if let Some(temporary) = temporary {
        shared.backend.validate(&temporary, &peer).await;
    }

    if let Some(seconds) = shared.options.session_seconds {
        hold_session(&mut framed, Duration::from_secs(seconds)).await;
    }
    end_session(
        &mut framed,
        ErrorInfo::ProtocolIndependentCode(ProtocolIndependentCode::LogoffByUser),
    )
    .await?;
    Ok(ConnectionEnd::Active)
}

/// Keeps an active session open for `duration`, dropping what the client sends, or until it
/// leaves.
async fn hold_session<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    duration: Duration,
) {
    let deadline = crate::transport::deadline_after(duration);
    loop {
        match tokio::time::timeout_at(deadline, framed.read_pdu("active session")).await {
            Ok(Ok(_)) => {}
            Ok(Err(TransportError {
                kind: TransportErrorKind::Timeout(_),
                ..
            })) => {}
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// Tells the client why the session ends (Set Error Info, 2.2.5.1), disconnects it (MCS
/// Disconnect Provider Ultimatum), and lets it close first: a host that closes at once makes
/// the client's own in-flight writes fail, and the client then reports a network error
/// instead of the reason it was given.
async fn end_session<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    error_info: ErrorInfo,
) -> Result<(), ConnError> {
    let goodbye = async {
        queue_share_data(
            framed,
            "Set Error Info",
            ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(error_info)),
        )?;
        framed
            .send(
                "Disconnect Provider Ultimatum",
                &X224(DisconnectProviderUltimatum::from_reason(
                    DisconnectReason::ProviderInitiated,
                )),
            )
            .await?;
        Ok::<(), ConnError>(())
    };
    // A client that has left already cannot be told why; that is not the host's failure.
    if let Err(error) = goodbye.await {
        debug!(%error, "the client left before the end of its session was sent");
        return Ok(());
    }
    let linger = tokio::time::Instant::now() + LINGER;
    while let Ok(Ok(_)) = tokio::time::timeout_at(linger, framed.read_pdu("disconnecting")).await {}
    framed.shutdown().await;
    Ok(())
}

/// The capability sets a host must send for clients to activate (MS-RDPBCGR 2.2.1.13.1.1.1):
/// the mandatory ones, for a desktop of the size the client asked for.
fn capabilities((width, height): (u16, u16)) -> Vec<CapabilitySet> {
    use capability_sets::{
        Bitmap, BitmapDrawingFlags, General, Input, InputFlags, MultifragmentUpdate, Order,
        OrderFlags, OrderSupportExFlags, Pointer, VirtualChannel, VirtualChannelFlags,
    };
    vec![
        // ENC_SALTED_CHECKSUM, as Windows hosts advertise it: a client that can, checks the
        // host's salted MACs under Standard RDP Security.
        CapabilitySet::General(General {
            extra_flags: capability_sets::GeneralExtraFlags::ENC_SALTED_CHECKSUM,
            ..General::default()
        }),
        CapabilitySet::Bitmap(Bitmap {
            pref_bits_per_pix: 32,
            desktop_width: width,
            desktop_height: height,
            desktop_resize_flag: true,
            drawing_flags: BitmapDrawingFlags::empty(),
        }),
        CapabilitySet::Order(Order::new(
            OrderFlags::NEGOTIATE_ORDER_SUPPORT | OrderFlags::ZERO_BOUNDS_DELTAS_SUPPORT,
            OrderSupportExFlags::empty(),
            0,
            0,
        )),
        CapabilitySet::Pointer(Pointer {
            color_pointer_cache_size: 25,
            pointer_cache_size: 25,
        }),
        CapabilitySet::Input(Input {
            input_flags: InputFlags::SCANCODES | InputFlags::MOUSEX | InputFlags::UNICODE,
            keyboard_layout: 0,
            keyboard_type: None,
            keyboard_subtype: 0,
            keyboard_function_key: 0,
            keyboard_ime_filename: String::new(),
        }),
        CapabilitySet::VirtualChannel(VirtualChannel {
            flags: VirtualChannelFlags::NO_COMPRESSION,
            chunk_size: Some(1600),
        }),
        CapabilitySet::MultiFragmentUpdate(MultifragmentUpdate {
            max_request_size: 0x0026_0000,
        }),
    ]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A Connect Response whose GCC data needs a two-byte PER length gets Windows' one-byte
    /// 0x2a, its BER lengths follow, and ironrdp-pdu (the emulated client's and IronRDP's
    /// reader) still reads the same blocks; a short one gets 0x2a too.
    #[test]
    fn the_t124_length_is_windows_one_byte_and_the_response_still_decodes() {
        for cert_len in [300, 10] {
            let blocks = gcc::ServerGccBlocks {
                core: gcc::ServerCoreData {
                    version: gcc::RdpVersion::V5_PLUS,
                    optional_data: gcc::ServerCoreOptionalData::default(),
                },
                network: gcc::ServerNetworkData {
                    channel_ids: vec![1004, 1005],
                    io_channel: IO_CHANNEL_ID,
                },
                security: gcc::ServerSecurityData {
                    encryption_method: gcc::EncryptionMethod::BIT_128,
                    encryption_level: gcc::EncryptionLevel::ClientCompatible,
                    server_random: Some([9; 32]),
                    server_cert: vec![7; cert_len],
                },
                message_channel: None,
                multi_transport_channel: None,
            };
            let response = mcs::ConnectResponse {
                conference_create_response: gcc::ConferenceCreateResponse::new(
                    USER_CHANNEL_ID,
                    blocks.clone(),
                )
                .unwrap(),
                called_connect_id: 1,
                domain_parameters: mcs::DomainParameters::target(),
            };
            let mut bytes = encode_vec(&response).unwrap();
            let before = bytes.len();
            windows_t124_length(&mut bytes);
            let key = [0x00, 0x05, 0x00, 0x14, 0x7c, 0x00, 0x01, 0x2a, 0x14];
            assert!(bytes.windows(key.len()).any(|w| w == key), "{cert_len}");
            assert_eq!(before - bytes.len(), usize::from(cert_len > 100));
            let decoded: mcs::ConnectResponse = decode(&bytes).unwrap();
            assert_eq!(
                decoded
                    .conference_create_response
                    .into_gcc_blocks()
                    .security,
                blocks.security
            );
        }
    }

    /// aardwolf 0.2.16's finalization PDUs as the host received them (TLS, recorded here),
    /// each with a totalLength 6 bytes over its length, then the Shutdown Request it sends on
    /// leaving.
    #[test]
    fn aardwolfs_finalization_pdus_are_known_despite_their_overstated_length() {
        let cases = [
            (
                "0300002402f08064000103eb70161c001700eb03ea03010000021c001f0000000100eb03",
                Some(ClientFinalization::Synchronize),
            ),
            (
                "0300002802f08064000103eb701a20001700eb03ea03010000022000140000000400000000000000",
                Some(ClientFinalization::Cooperate),
            ),
            (
                "0300002802f08064000103eb701a20001700eb03ea03010000022000140000000100000000000000",
                Some(ClientFinalization::RequestControl),
            ),
            (
                "0300002802f08064000103eb701a20001700eb03ea03010000022000270000000000000003003200",
                Some(ClientFinalization::FontList),
            ),
            (
                "0300002402f08064000103eb70161c001700eb03ea03010000021c002400000001000000",
                None,
            ),
        ];
        for (frame, expected) in cases {
            let bytes = hex::decode(frame).unwrap();
            assert_eq!(ClientFinalization::of(&bytes), expected, "{frame}");
            assert!(!is_confirm_active(&bytes));
            assert!(is_send_data_request(&bytes));
        }
    }
}

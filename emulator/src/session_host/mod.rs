//! `rdpele serve`: an emulated RD Session Host that real clients connect to over TLS, licensed
//! through [`rdpele_proto::machine::ServerMachine`] by the license server — embedded over the
//! same data directory, or remote over HTTP.

pub mod config;
mod connection;
mod errinfo;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod issuer;
mod licensing;
mod pcap;
mod source_limit;
pub mod tls;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_proto::cal::LicenseServerIdentity;
use rdpele_proto::crypto::{proprietary_certificate, LicensingPrivateKey};
use rdpele_proto::machine::ServerConfig;
use rdpele_proto::wire::{
    CertBlob, CertificateChain, PreambleFlags, ServerCertificate, Wire, X509CertificateChain,
};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use config::{CertificateKind, HostConfig};
pub use connection::ConnectionEnd;
use issuer::{Backend, HostReads, Source};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::decider::Decider;
use rdpele_license_server::remote::RemoteIssuer;
use rdpele_license_server::server::{
    load_or_create_key, load_or_create_key_bits, product_version, LicenseServer,
};
use rdpele_license_server::store::Store;
use rdpele_license_server::token::Token;
use source_limit::SourceLimit;

/// The host's own licensing key (the one its License Request certificate holds), beside the
/// license server's in the data directory.
pub const LICENSING_KEY_FILE: &str = "host_licensing_key.pem";
/// The key that signs the host's certificate in an X.509 chain: the license server's, in an
/// embedded setup (the same file).
const CHAIN_ISSUER_KEY_FILE: &str = rdpele_license_server::server::KEY_FILE;
/// Validity of the X.509 licensing certificate: as the license server's (UTCTime ends 2049).
const CERT_NOT_BEFORE: Duration = Duration::from_secs(946_684_800);
const CERT_NOT_AFTER: Duration = Duration::from_secs(2_524_607_999);

/// A connection's deadline in step timeouts: the sequence has about twenty client PDUs, but a
/// client that waits the full timeout before each one is not one to keep.
const CONNECTION_STEPS: u32 = 10;

/// What `rdpele serve` was asked to do.
#[derive(Clone, Debug)]
pub struct Options {
    pub data: PathBuf,
    pub config: HostConfig,
    /// A remote license server instead of the embedded one.
    pub license_server: Option<RemoteLicenseServer>,
    /// Keep each session open this long after activation; `None` ends it at once.
    pub session_seconds: Option<u64>,
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections served at once from one source address; more from it are closed at once.
    pub max_connections_per_source: usize,
    /// The longest the host waits for any one client PDU or write.
    pub step_timeout: Duration,
    /// Record each connection's licensing PDUs under this directory.
    pub record: Option<PathBuf>,
    /// Write every connection's bytes to this libpcap file.
    pub pcap: Option<PathBuf>,
    /// The host name in its TLS certificate and licensing certificate.
    pub host_name: String,
}

/// Where a host's remote license server (`rdpele license-server`) is and how to reach it.
#[derive(Clone, Debug)]
pub struct RemoteLicenseServer {
    /// `http://HOST:PORT` or `https://HOST:PORT`.
    pub url: String,
    pub token: Token,
    /// A PEM file of certificates an https:// license server's may chain to, trusted besides
    /// the system's roots (its self-signed certificate, for `rdpele license-server --tls`).
    pub trust: Option<PathBuf>,
}

/// What every connection shares.
pub struct Shared {
    options: Options,
    config: HostConfig,
    tls: tokio_rustls::TlsAcceptor,
    machine_config: ServerConfig,
    /// The host's identities for Standard RDP Security (MS-RDPBCGR 5.3.3).
    rdp_security: RdpSecurityIdentities,
    /// `--pcap`: where every connection's bytes go.
    pcap: Option<Arc<pcap::PcapFile>>,
    backend: Arc<Backend>,
    /// Seeds every connection's randomness alike (server randoms, the License Request's random,
    /// RSA blinding), so that a fuzz input replays; `None`: the system's randomness.
    seed: Option<u64>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Why the host could not start: the step that failed, and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{step}: {cause}")]
pub struct StartError {
    pub step: String,
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

/// A licensing key file that holds a key of another size than the config asks for.
#[derive(Debug, thiserror::Error)]
#[error(
    "{path} holds a {held}-bit key, the config asks for {bits} bits (delete the file to make a \
     new key)"
)]
pub struct KeySizeMismatch {
    pub path: String,
    pub held: usize,
    pub bits: usize,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Shared {
    /// Prepares the host: applies the config to the data directory's settings, loads or makes
    /// the TLS and licensing identities, and opens the license server.
    pub fn open(options: Options) -> Result<Arc<Self>, StartError> {
        Self::open_with_seed(options, None)
    }

    /// A host whose every connection draws the same randomness from `seed`: the same client
    /// bytes get the same answers, as a fuzz target needs to replay an input (never for
    /// serving: every client would see the same server random).
    #[cfg(feature = "fuzzing")]
    pub fn open_seeded(options: Options, seed: u64) -> Result<Arc<Self>, StartError> {
        Self::open_with_seed(options, Some(seed))
    }

    fn open_with_seed(options: Options, seed: Option<u64>) -> Result<Arc<Self>, StartError> {
        fn error<E: Into<BoxError>>(step: &str, cause: E) -> StartError {
            StartError {
                step: step.to_owned(),
                cause: cause.into(),
            }
        }
        rdpele_license_server::private_files::create_private_dir(&options.data)
            .map_err(|e| error(&format!("creating {}", options.data.display()), e))?;
        let config = options.config.clone();
        let local =
            Store::open(&options.data).map_err(|e| error("opening the data directory", e))?;
        let current = local
            .session_host()
            .map_err(|e| error("reading the session host settings", e))?;
        local
            .set_session_host(
                config.mode.unwrap_or(current.licensing_mode),
                config.version.unwrap_or(current.version),
            )
            .map_err(|e| error("writing the session host settings", e))?;
        if let Some(start) = config.grace_period_start {
            local
                .set_host_first_use(start)
                .map_err(|e| error("setting the grace period start", e))?;
        }
        let settings = local
            .session_host()
            .map_err(|e| error("reading the session host settings", e))?;
        let first_use_recorded = settings.first_use.is_some();
        let host = settings.info();

        let tls =
            tls::server_config(&options.data, &options.host_name).map_err(|e| error("TLS", e))?;
        let key = licensing_key(
            &options.data.join(LICENSING_KEY_FILE),
            config.licensing_key_bits,
        )
        .and_then(|key| Ok(key.with_backend(config.rsa_backend)?))
        .map_err(|e| error("licensing key", e))?;
        let certificate =
            licensing_certificate(&options.data, &key, config.certificate, &options.host_name)
                .map_err(|e| error("licensing certificate", e))?;
        let pcap = options
            .pcap
            .as_deref()
            .map(pcap::PcapFile::create)
            .transpose()
            .map_err(|e| error("the pcap capture", e))?;
        let rdp_security = RdpSecurityIdentities::open(&options.data, &key, config.rsa_backend)
            .map_err(|e| error("Standard RDP Security certificates", e))?;
        let machine_config = ServerConfig {
            preamble_flags: PreambleFlags(PreambleFlags::PREAMBLE_VERSION_3_0),
            product_version: config
                .product
                .version
                .unwrap_or_else(|| product_version(host.version).as_dword()),
            company_name: config.product.company_name.clone(),
            product_id: config.product.product_id.clone(),
            scopes: vec![config.product.scope.clone()],
            certificate,
            private_key: key,
            challenge_check: config.challenge_check,
            challenge: config.challenge,
            cals: Arc::default(),
        };

        let source = match &options.license_server {
            None => {
                let mut server = LicenseServer::open(&options.data, host)
                    .and_then(|server| server.with_rsa_backend(config.rsa_backend))
                    .map_err(|e| error("opening the license server", e))?;
                server.set_pool_exhausted(config.faults.pool_exhausted);
                Source::Embedded(
                    Decider::spawn(server)
                        .map_err(|e| error("starting the license server's thread", e))?,
                )
            }
            Some(remote) => {
                let mut issuer = RemoteIssuer::new(
                    &remote.url,
                    remote.token.expose(),
                    host,
                    options.step_timeout,
                )
                .map_err(|e| error("the license server's URL or token", e))?;
                if let Some(path) = &remote.trust {
                    let step = format!("the certificates to trust in {}", path.display());
                    let pem = std::fs::read(path).map_err(|e| error(&step, e))?;
                    issuer = issuer.trusting(&pem).map_err(|e| error(&step, e))?;
                }
                Source::Remote(Box::new(issuer))
            }
        };
        let backend = Arc::new(Backend {
            source,
            reads: HostReads::open(&options.data, Clock::system(), config.faults.pool_exhausted)
                .map_err(|e| error("opening the data directory for reading", e))?,
            grace_period: Mutex::new(local),
            clock: Clock::system(),
            first_use_recorded: AtomicBool::new(first_use_recorded),
            unreachable: config.faults.license_server_unreachable,
        });
        Ok(Arc::new(Self {
            tls: tokio_rustls::TlsAcceptor::from(tls),
            config,
            machine_config,
            rdp_security,
            pcap,
            backend,
            options,
            seed,
        }))
    }

    /// One connection's randomness for `purpose`. A seeded host gives each purpose a stream
    /// of its own, so that what one consumes does not shift the other's: RSA blinding draws
    /// differently on each RSA backend, and a recorded input must replay on both.
    fn connection_rng(&self, purpose: Randomness) -> StdRng {
        match self.seed {
            Some(seed) => purpose.seeded(seed),
            None => StdRng::from_rng(&mut rand::rng()),
        }
    }
}

impl Shared {
    /// Asks a remote license server for its health with the host's token, so a host that
    /// could not license anyone (server down, wrong token, a URL that is not the API) says so
    /// before it listens. Nothing to check for an embedded one.
    pub async fn check_license_server(&self) -> Result<(), StartError> {
        let Source::Remote(remote) = &self.backend.source else {
            return Ok(());
        };
        let url = self
            .options
            .license_server
            .as_ref()
            .map_or_else(String::new, |remote| remote.url.clone());
        let health = remote.check_health().await.map_err(|cause| StartError {
            step: format!("checking the license server at {url}"),
            cause: cause.into(),
        })?;
        info!(license_server = %url, version = %health.version, "license server answers");
        Ok(())
    }
}

/// What a connection draws randomness for.
#[derive(Clone, Copy, Debug)]
enum Randomness {
    /// The server random of Standard RDP Security (first), then the client random's blinding.
    StandardSecurity,
    /// Licensing: the License Request's server random (first), then the premaster's blinding.
    Licensing,
}

impl Randomness {
    /// This purpose's stream on a host seeded with `seed`.
    fn seeded(self, seed: u64) -> StdRng {
        let stream = match self {
            Self::StandardSecurity => 0,
            Self::Licensing => 1,
        };
        StdRng::seed_from_u64(seed ^ stream)
    }
}

/// The key of the host's 512-bit proprietary certificate, made on first use.
const RDP_SECURITY_WEAK_KEY_FILE: &str = "host_rdp_security_512.pem";

/// A key and the proprietary certificate of its public key (MS-RDPBCGR 2.2.1.4.3.1.1, signed
/// with the Terminal Services key as Windows signs its own).
struct RdpSecurityIdentity {
    key: LicensingPrivateKey,
    certificate: Vec<u8>,
}

/// The two certificates a Windows host offers in its Server Security Data (MS-RDPBCGR
/// 2.2.1.3.2): a 512-bit one for clients that do not announce RNS_UD_CS_STRONG_ASYMMETRIC_KEYS
/// ("supports asymmetric keys larger than 512 bits"; rdesktop 1.9.0, xfreerdp 2.11.7 and
/// aardwolf 0.2.16 do not), and the licensing key's for those that do (the emulated client).
struct RdpSecurityIdentities {
    weak: RdpSecurityIdentity,
    strong: RdpSecurityIdentity,
}

impl RdpSecurityIdentities {
    fn open(
        dir: &std::path::Path,
        licensing: &LicensingPrivateKey,
        backend: rdpele_proto::crypto::RsaBackend,
    ) -> Result<Self, BoxError> {
        let identity = |key: LicensingPrivateKey| -> Result<RdpSecurityIdentity, BoxError> {
            let certificate = proprietary_certificate(&key.public_key())?;
            Ok(RdpSecurityIdentity { key, certificate })
        };
        let weak = licensing_key(&dir.join(RDP_SECURITY_WEAK_KEY_FILE), Some(512))?
            .with_backend(backend)?;
        Ok(Self {
            weak: identity(weak)?,
            strong: identity(licensing.clone())?,
        })
    }

    /// The identity for a client that does (`strong`) or does not take keys over 512 bits.
    fn for_client(&self, strong: bool) -> &RdpSecurityIdentity {
        if strong {
            &self.strong
        } else {
            &self.weak
        }
    }
}

/// The host's licensing key: made on first use with `bits` (2048 by default), then read from
/// `path`. A key of another size than `bits` asks for is an error, not replaced: licensing
/// PDUs recorded with it (`--record`) need it to be decrypted.
fn licensing_key(
    path: &std::path::Path,
    bits: Option<usize>,
) -> Result<LicensingPrivateKey, BoxError> {
    let key = match bits {
        Some(bits) => load_or_create_key_bits(path, bits)?,
        None => load_or_create_key(path)?,
    };
    let held = key.public_key().modulus_bits();
    match bits {
        Some(bits) if held != bits => Err(KeySizeMismatch {
            path: path.display().to_string(),
            held,
            bits,
        }
        .into()),
        _ => Ok(key),
    }
}

/// The SERVER_CERTIFICATE of the License Request, for `key`.
fn licensing_certificate(
    dir: &std::path::Path,
    key: &LicensingPrivateKey,
    kind: CertificateKind,
    host_name: &str,
) -> Result<Vec<u8>, BoxError> {
    match kind {
        CertificateKind::Proprietary => Ok(proprietary_certificate(&key.public_key())?),
        CertificateKind::X509 => {
            // MS-RDPELE 2.2.1.4.2: at least two certificates, the license server's (self-signed
            // here) and the host's, issued by it; clients take the last one's key.
            let issuer_key = load_or_create_key(&dir.join(CHAIN_ISSUER_KEY_FILE))?;
            let identity = LicenseServerIdentity::self_signed(
                "RDPELE-LS",
                "WORKGROUP",
                "00000-000-0000000-00000",
                issuer_key.to_rsa_private_key().clone(),
                SystemTime::UNIX_EPOCH + CERT_NOT_BEFORE,
                SystemTime::UNIX_EPOCH + CERT_NOT_AFTER,
            )?;
            let host = identity.issue_host_certificate(
                host_name,
                key.public_key().to_rsa_public_key(),
                SystemTime::UNIX_EPOCH + CERT_NOT_BEFORE,
                SystemTime::UNIX_EPOCH + CERT_NOT_AFTER,
            )?;
            let blobs = identity
                .certificates()
                .iter()
                .chain([&host])
                .map(|der| CertBlob { der })
                .collect();
            Ok(ServerCertificate {
                temporarily_issued: false,
                chain: CertificateChain::X509(X509CertificateChain::new(blobs)),
            }
            .to_vec()?)
        }
    }
}

/// Accepts connections on `listener` until `shutdown` resolves, serving at most
/// `max_connections` at once and `max_connections_per_source` of them from one address (a
/// connection over that is closed as soon as it is accepted); each connection runs in its own
/// task, so one client's failure ends only its own connection.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let limit = Arc::new(Semaphore::new(shared.options.max_connections.max(1)));
    let sources = SourceLimit::new(shared.options.max_connections_per_source);
    let mut index: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => return Ok(()),
            permit = Arc::clone(&limit).acquire_owned() => permit,
        };
        let Ok(permit) = permit else { return Ok(()) };
        let (tcp, address) = tokio::select! {
            () = &mut shutdown => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    warn!(%error, "accept failed");
                    continue;
                }
            },
        };
        let Some(source_slot) = sources.try_acquire(address.ip()) else {
            warn!(
                peer = %address,
                limit = sources.limit(),
                "connection closed: its address has as many open as --max-connections-per-source"
            );
            continue;
        };
        index += 1;
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let peer = address.to_string();
            let _ = tcp.set_nodelay(true);
            // Per-read timeouts alone let a client that sends a byte now and then hold a slot
            // for ever; the whole connection gets a deadline too.
            // Saturating: a library caller's huge timeout means "no deadline", not a panic.
            let deadline = shared
                .options
                .step_timeout
                .saturating_mul(CONNECTION_STEPS)
                .saturating_add(Duration::from_secs(
                    shared.options.session_seconds.unwrap_or(0),
                ));
            let addresses = tcp.peer_addr().ok().zip(tcp.local_addr().ok());
            let served = connection::serve_connection(tcp, addresses, shared, peer.clone(), index);
            match tokio::time::timeout(deadline, served).await {
                Ok(Ok(ending)) => tracing::debug!(peer, ?ending, "connection ended"),
                Ok(Err(error)) => warn!(peer, %error, "connection closed"),
                Err(_) => warn!(peer, ?deadline, "connection closed: over its deadline"),
            }
            drop(source_slot);
            drop(permit);
        });
    }
}

/// Logs where the host listens and how it licenses.
pub fn announce(shared: &Shared, address: std::net::SocketAddr) {
    let license_server = match &shared.options.license_server {
        Some(remote) => remote.url.clone(),
        None => format!("embedded ({})", shared.options.data.display()),
    };
    info!(%address, license_server, "rdpele session host listening");
}

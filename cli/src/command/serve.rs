//! `rdpele serve` (the emulated RD Session Host) and `rdpele license-server` (the license
//! server alone, for several session hosts over HTTP).

use rdpele_proto::crypto::RsaBackend;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::net::TcpListener;

use rdpele_emulator::session_host::config::HostConfig;
use rdpele_emulator::session_host::{self, Options, RemoteLicenseServer, Shared};
use rdpele_license_server::remote;
use rdpele_license_server::token::Token;

/// The longest --session-seconds: a week keeps any deadline arithmetic far from overflow.
const MAX_SESSION_SECONDS: u64 = 7 * 24 * 3600;
/// The longest --timeout, an hour: ten of them are a connection's deadline.
const MAX_TIMEOUT_SECONDS: u64 = 3600;

/// The token given by --token (or RDPELE_TOKEN) or --token-file; clap allows only one.
fn token(token: Option<&Token>, file: Option<&std::path::Path>) -> anyhow::Result<Option<Token>> {
    match file {
        Some(path) => Ok(Some(Token::from_file(path)?)),
        None => Ok(token.cloned()),
    }
}

/// Run an emulated RD Session Host that real RDP clients (xfreerdp, mstsc, IronRDP) connect to
/// over TLS and get licensed by.
///
/// Each connection goes through the RDP connection sequence up to an active session: X.224
/// (TLS selected), MCS/GCC, channel joins, Client Info, licensing (MS-RDPELE, by the license
/// server), capability exchange and finalization. The host then ends the session with a Set
/// Error Info logoff (clients exit by themselves) unless --session-seconds keeps it open.
/// A refused client gets the Licensing Error Message and an ERRINFO_LICENSE_* code.
///
/// The license server is embedded over --data unless --license-server names a remote one.
/// `rdpele admin ... --data DIR` works on the same directory while the host runs: installed
/// packs, revocations and `admin clock advance` apply to the next connection.
///
/// Logs go to stderr, one line per licensing decision (client, user, HWID, outcome, expiry) at
/// the default level; RDPELE_LOG=debug (tracing directives) shows more. The bound address is
/// printed on stdout as `listening on ADDR` (useful with --listen 127.0.0.1:0). Exit status: 0
/// after Ctrl-C, 1 if the host cannot start (the reason on stderr).
#[derive(Debug, Args)]
#[command(
    group(clap::ArgGroup::new("credentials").args(["token", "token_file"])),
    after_help = "Example:\n  rdpele serve --listen 127.0.0.1:3389 --data ./host\n  \
    xfreerdp /v:127.0.0.1:3389 /u:alice /p:x /cert:ignore /sec:tls /client-hostname:pc-01\n  \
    rdpele cal inspect ~/.config/freerdp/licenses/<sha1 of pc-01>.cal"
)]
pub struct ServeArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:3389")]
    listen: SocketAddr,
    /// Data directory: license store, keys, TLS certificate (created if missing).
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Host configuration (TOML): version, licensing mode, product, certificate, faults. See
    /// examples/serve.toml.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// A remote license server (`rdpele license-server`), e.g. http://127.0.0.1:4000, or
    /// https://NAME:4000 for one started with --tls. The host checks it (and the token) before
    /// it listens and exits 1 if it turns the host away.
    #[arg(long, value_name = "URL", requires = "credentials")]
    license_server: Option<String>,
    /// PEM certificates to trust for an https:// --license-server besides the system's roots:
    /// the DATA/license_server_tls_cert.pem that `rdpele license-server --tls` made.
    #[arg(long, value_name = "FILE", requires = "license_server")]
    license_server_ca: Option<PathBuf>,
    /// Bearer token for --license-server (or RDPELE_TOKEN). On the command line it is visible
    /// to every user of the machine (`ps`): prefer RDPELE_TOKEN or --token-file.
    #[arg(
        long,
        env = "RDPELE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<Token>,
    /// File whose first line is the bearer token for --license-server (keep it chmod 600).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Keep each session open this many seconds after it becomes active (at most a week).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(0..=MAX_SESSION_SECONDS))]
    session_seconds: Option<u64>,
    /// Connections served at once; further clients wait in the listen backlog.
    #[arg(long, value_name = "N", default_value = "256")]
    max_connections: NonZeroUsize,
    /// Connections served at once from one client address (default: half of
    /// --max-connections); a further one from that address is closed as soon as it arrives, so
    /// one address cannot take every slot.
    #[arg(long, value_name = "N")]
    max_connections_per_source: Option<NonZeroUsize>,
    /// Seconds the host waits for any one client PDU before closing the connection (1 to 3600);
    /// a whole connection gets ten times this, plus --session-seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 15,
          value_parser = clap::value_parser!(u64).range(1..=MAX_TIMEOUT_SECONDS))]
    timeout: u64,
    /// Record each connection's licensing PDUs (TPKT frames) under DIR/connection-NNNN/.
    #[arg(long, value_name = "DIR")]
    record: Option<PathBuf>,
    /// Write every connection's bytes, as they crossed the wire, to FILE as a libpcap capture
    /// (for tshark, Wireshark and `rdpele decode`). Over TLS that shows the handshake only;
    /// under Standard RDP Security (`xfreerdp /sec:rdp`, `[host] security = "rdp"`) `rdpele
    /// decode --server-key DATA/host_licensing_key.pem --server-key
    /// DATA/host_rdp_security_512.pem FILE` decrypts every licensing message and checks its MACs.
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Host name in the TLS and licensing certificates.
    #[arg(long, default_value = "rdpele-host")]
    host_name: String,
}

/// Run the license server alone, for session hosts started with --license-server.
///
/// Serves a small HTTP+JSON API (POST /v1/new_license, /v1/assess_license,
/// /v1/upgrade_license; GET /v1/health) that requires `Authorization: Bearer TOKEN`; HTTPS
/// with --tls. Decisions use the virtual clock of --data, so `rdpele admin clock advance
/// --data DIR` applies to every host. A request head (or TLS handshake) must arrive within
/// 10 s, which is also how long an idle connection stays open, and its body within 10 s
/// more; at most 512 connections are served at once.
#[derive(Debug, Args)]
pub struct LicenseServerArgs {
    /// Address to listen on (loopback by default).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4000")]
    listen: SocketAddr,
    /// Data directory of the license server.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Bearer token session hosts must present (or RDPELE_TOKEN). On the command line it is
    /// visible to every user of the machine (`ps`): prefer RDPELE_TOKEN or --token-file.
    #[arg(
        long,
        env = "RDPELE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        required_unless_present = "token_file"
    )]
    token: Option<Token>,
    /// File whose first line is the bearer token (keep it chmod 600).
    #[arg(long, value_name = "FILE", conflicts_with = "token")]
    token_file: Option<PathBuf>,
    /// Serve HTTPS: a self-signed certificate made on first use in
    /// DATA/license_server_tls_cert.pem (give it to hosts with --license-server-ca) for the
    /// --tls-name names.
    #[arg(long)]
    tls: bool,
    /// A DNS name or IP address hosts use in their https:// URL, in the certificate made by
    /// --tls (repeatable; default: localhost and the --listen address).
    #[arg(long, value_name = "NAME", requires = "tls")]
    tls_name: Vec<String>,
    /// Who signs the CALs: "openssl" (native; the default in builds with the `openssl`
    /// feature) or "rust" (the pure-Rust `rsa` crate). The signatures are the same bytes.
    #[arg(long, value_name = "BACKEND", default_value_t = RsaBackend::default())]
    rsa_backend: RsaBackend,
}

pub fn init_logging() {
    let directives = std::env::var("RDPELE_LOG").unwrap_or_else(|_| "info".to_owned());
    // rustls warns about every client that sends an IP address as SNI (xfreerdp does).
    let quiet_rustls = if directives.contains("rustls") {
        ""
    } else {
        ",rustls=error"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!("{directives}{quiet_rustls}"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rustls=error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Connections the kernel queues before the host accepts them. tokio's default (128) drops
/// SYNs when a few hundred clients connect at once (seen in the serve bench at 256).
const LISTEN_BACKLOG: u32 = 1024;

fn listen(address: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

async fn ctrl_c() {
    let _ = tokio::signal::ctrl_c().await;
}

pub fn run_serve(args: &ServeArgs) -> ExitCode {
    init_logging();
    match serve(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rdpele serve: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = match &args.config {
        Some(path) => HostConfig::load(path)?,
        None => HostConfig::default(),
    };
    let options = Options {
        data: args.data.clone(),
        config,
        license_server: match &args.license_server {
            Some(url) => {
                let token = token(args.token.as_ref(), args.token_file.as_deref())?
                    .context("--license-server needs --token, RDPELE_TOKEN or --token-file")?;
                Some(RemoteLicenseServer {
                    url: url.clone(),
                    token,
                    trust: args.license_server_ca.clone(),
                })
            }
            None => None,
        },
        session_seconds: args.session_seconds,
        max_connections: args.max_connections.get(),
        max_connections_per_source: args
            .max_connections_per_source
            .map_or((args.max_connections.get() / 2).max(1), NonZeroUsize::get),
        step_timeout: Duration::from_secs(args.timeout),
        record: args.record.clone(),
        pcap: args.pcap.clone(),
        host_name: args.host_name.clone(),
    };
    let shared = Shared::open(options)?;
    runtime()?.block_on(async {
        shared.check_license_server().await?;
        let listener =
            listen(args.listen).with_context(|| format!("cannot listen on {}", args.listen))?;
        let address = listener.local_addr()?;
        session_host::announce(&shared, address);
        // Scripts and tests read the bound address (with --listen 127.0.0.1:0) from here.
        super::print_out(&format!("listening on {address}\n"));
        session_host::serve(listener, shared, ctrl_c()).await?;
        Ok(())
    })
}

pub fn run_license_server(args: &LicenseServerArgs) -> ExitCode {
    init_logging();
    let result = token(args.token.as_ref(), args.token_file.as_deref()).and_then(|token| {
        let token = token.context("needs --token, RDPELE_TOKEN or --token-file")?;
        let tls = if args.tls {
            let names = if args.tls_name.is_empty() {
                vec!["localhost".to_owned(), args.listen.ip().to_string()]
            } else {
                args.tls_name.clone()
            };
            Some(remote::tls::server_config(&args.data, &names)?)
        } else {
            None
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        let runtime = runtime()?;
        runtime.block_on(async {
            let listener = TcpListener::bind(args.listen)
                .await
                .with_context(|| format!("cannot listen on {}", args.listen))?;
            let address = listener.local_addr()?;
            tracing::info!(url = %format!("{scheme}://{address}"), data = %args.data.display(), "rdpele license server listening");
            super::print_out(&format!("listening on {address}\n"));
            remote::serve(
                listener,
                args.data.clone(),
                token.expose().to_owned(),
                args.rsa_backend,
                tls,
                ctrl_c(),
            )
                .await
                .map_err(anyhow::Error::from)
        })
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rdpele license-server: {error:#}");
            ExitCode::from(1)
        }
    }
}

//! `rdpele client`: the emulated RDP client from the command line — one connection through
//! licensing with an mstsc-like license store — and `rdpele client store` to show, export and
//! import that store.

mod store;

use std::cell::Cell;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rdpele_proto::cal::{parse_cal, Cal, CalKind};
use rdpele_proto::envelope::ErrorInfo;
use rdpele_proto::machine::{LicenseStore, ProductKey};
use rdpele_proto::wire::ErrorCode;
use serde_json::{json, Value};

use super::print_out;
use crate::inspect::cal_view::CalReceived;
use rdpele_emulator::client::{
    connect, ClientOptions, ClientReport, ClientSecurity, Ending, Layout, LicenseDir,
    LicenseDirError, LicensingOutcome, StoreLicense,
};
use rdpele_license_server::clock::format_instant;

/// The RDP port a HOST without one gets.
const DEFAULT_PORT: u16 = 3389;

const EXIT_ERROR: u8 = 1;
const EXIT_REFUSED: u8 = 3;
const EXIT_ABORTED: u8 = 4;

/// Connect to an RDP server as an emulated Windows client and report how licensing went.
///
/// One connection through the RDP connection sequence: X.224 (TLS or Standard RDP Security,
/// --security), MCS/GCC, the Security Exchange under RDP security, Client Info,
/// licensing (MS-RDPELE) with the CALs in the license store, and, where the server goes on,
/// capability exchange up to an active session — then the client disconnects. A CAL the
/// server issues is stored before the connection goes on, as mstsc does.
///
/// The store (--store DIR) is laid out like mstsc's registry key
/// HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing:
///   DIR/HardwareID/ClientHWID   the client's 20-byte HWID, made once per store (random)
///   DIR/Store/LICENSE000, ...   one CAL each, with the product it is filed under, as the
///                               NEW_LICENSE_INFO structure (`rdpele cal inspect` reads it)
/// --layout freerdp lays it out as xfreerdp does instead: DIR/licenses/<sha1(machine)>.cal
/// holding the CAL, with xfreerdp's HWID (0x04010000, then MD5 of the machine name). Point
/// --store at HOME/.config/freerdp and xfreerdp with that HOME presents the same CAL.
///
/// The first line names the outcome:
///   temporary / permanent   a New or Upgrade License with a CAL of that kind
///   renewed                 an Upgrade License replacing a permanent CAL
///   returned                an Upgrade License carrying the CAL presented, unchanged (a host
///                           that cannot reach its license server, MS-RDPELE 3.2.5.5 case 1)
///   valid                   the server accepted the CAL presented, or admitted the client
///                           without one (STATUS_VALID_CLIENT; xrdp always does)
///   refused (ERR_…, ERRINFO_…)   the server's Licensing Error Message and Set Error Info
///   aborted (ERR_…: reason)      the client gave up (e.g. a server certificate whose
///                                signature does not verify)
/// then the CAL's expiry (for valid, the presented CAL's), the client and the store.
///
/// Exit status: 0 licensed (temporary, permanent, renewed, returned, valid); 3 refused; 4 aborted by the
/// client; 1 the connection or the store failed (one line on stderr); 2 usage.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    subcommand_negates_reqs = true,
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  \
    rdpele client --connect 127.0.0.1:3389 --store ./pc-01 --machine pc-01 --user alice\n  \
    rdpele client --connect 127.0.0.1:3389 --store ./pc-01 --machine pc-01 --reset --json\n  \
    rdpele client --connect 127.0.0.1:3389 --store ./pc-01 --machine pc-01 --security rdp\n  \
    rdpele client store export --store ./pc-01 --reg pc-01.reg\n  \
    rdpele client --connect 127.0.0.1:3389 --store ~/.config/freerdp --layout freerdp --machine pc-02"
)]
pub struct ClientArgs {
    #[command(subcommand)]
    command: Option<ClientCommand>,
    /// The server: HOST:PORT (HOST alone means port 3389).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    connect: Option<String>,
    /// The license store directory (created if missing).
    #[arg(long, value_name = "DIR", required = true)]
    store: Option<PathBuf>,
    /// The client machine name (Client Core Data, New License Request); this computer's host
    /// name by default.
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// The user name (Client Info, New License Request); $USER by default.
    #[arg(long, value_name = "NAME")]
    user: Option<String>,
    /// The password sent in the Client Info PDU (or RDPELE_PASSWORD).
    #[arg(
        long,
        value_name = "P",
        default_value = "",
        env = "RDPELE_PASSWORD",
        hide_env_values = true,
        hide_default_value = true
    )]
    password: String,
    /// How the store is laid out: mstsc's registry key, or xfreerdp's licenses directory.
    #[arg(long, value_enum, default_value_t = LayoutArg::Mstsc)]
    layout: LayoutArg,
    /// Delete the store's HardwareID and Store first, the documented workaround for a corrupt
    /// client license store: the client gets a new HWID and no CAL, so a license server sees a
    /// new device. (freerdp layout: only the CAL; xfreerdp's HWID follows from the name.)
    #[arg(long)]
    reset: bool,
    /// Print one JSON object: outcome, expires_at, error, error_info, machine, user, hwid,
    /// store, and more.
    #[arg(long)]
    json: bool,
    /// The security layer to ask for: negotiate (TLS, then Standard RDP Security on a new
    /// connection if the server answers SSL_NOT_ALLOWED_BY_SERVER, as mstsc does), tls (TLS
    /// only), or rdp (Standard RDP Security only: RC4 at 40, 56 or 128 bits as the server
    /// picks, every PDU after the Security Exchange encrypted and MAC'd; licensing PDUs cross
    /// the wire encrypted too).
    #[arg(long, value_enum, default_value_t = SecurityArg::Negotiate)]
    security: SecurityArg,
    /// Seconds the client waits for any one server PDU.
    #[arg(long, value_name = "SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
}

#[derive(Debug, Subcommand)]
enum ClientCommand {
    Store(store::StoreArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum SecurityArg {
    Negotiate,
    Tls,
    Rdp,
}

impl From<SecurityArg> for ClientSecurity {
    fn from(arg: SecurityArg) -> Self {
        match arg {
            SecurityArg::Negotiate => Self::Negotiate,
            SecurityArg::Tls => Self::Tls,
            SecurityArg::Rdp => Self::Rdp,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    Mstsc,
    Freerdp,
}

impl LayoutArg {
    fn layout(self, machine: &str) -> Layout {
        match self {
            Self::Mstsc => Layout::Mstsc,
            Self::Freerdp => Layout::Freerdp {
                client_hostname: machine.to_owned(),
            },
        }
    }
}

pub fn run(args: &ClientArgs) -> ExitCode {
    let result = match &args.command {
        Some(ClientCommand::Store(args)) => store::run(args),
        None => return run_connect(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rdpele client: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn run_connect(args: &ClientArgs) -> ExitCode {
    let machine = args.machine.clone().unwrap_or_else(local_hostname);
    let user = args.user.clone().unwrap_or_else(local_user);
    match connect_once(args, &machine, &user) {
        Ok(connection) => {
            let text = if args.json {
                format!("{}\n", connection.to_json())
            } else {
                connection.to_text()
            };
            print_out(&text);
            ExitCode::from(connection.outcome.exit)
        }
        Err(error) => {
            if args.json {
                let failed = json!({
                    "outcome": "error",
                    "error": format!("{error:#}"),
                    "machine": machine,
                    "user": user,
                    "store": args.store.as_deref().map(Path::display).map(|p| p.to_string()),
                });
                print_out(&format!("{failed}\n"));
            }
            eprintln!("rdpele client: {error:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// One connection and what the client knows afterwards.
#[derive(Debug)]
struct Connection {
    report: ClientReport,
    outcome: Outcome,
    machine: String,
    user: String,
    store: LicenseDir,
}

fn connect_once(args: &ClientArgs, machine: &str, user: &str) -> Result<Connection> {
    // clap requires both without a subcommand.
    let (Some(server), Some(root)) = (&args.connect, &args.store) else {
        return Err(anyhow!("--connect and --store are required"));
    };
    let address = resolve(server)?;
    let layout = args.layout.layout(machine);
    if args.reset {
        LicenseDir::reset(root, &layout).context("resetting the license store")?;
    }
    let mut store = LicenseDir::open_as(root, layout).context("opening the license store")?;
    let options = ClientOptions {
        machine: machine.to_owned(),
        user: user.to_owned(),
        password: args.password.clone(),
        hwid: store.hwid(),
        timeout: Duration::from_secs(args.timeout),
        disconnect_after_activation: true,
        security: args.security.into(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut presenting = Presenting {
        store: &mut store,
        presented: Cell::new(None),
    };
    let report = runtime.block_on(connect(address, &options, &mut presenting))?;
    let presented = presenting.presented.take();
    let outcome = Outcome::of(&report, presented.as_deref());
    Ok(Connection {
        report,
        outcome,
        machine: machine.to_owned(),
        user: user.to_owned(),
        store,
    })
}

/// HOST:PORT, or HOST with the RDP port, to the first address it names.
fn resolve(server: &str) -> Result<SocketAddr> {
    let with_port = if server.parse::<SocketAddr>().is_ok() || server.contains(':') {
        server.to_owned()
    } else {
        format!("{server}:{DEFAULT_PORT}")
    };
    with_port
        .to_socket_addrs()
        .with_context(|| format!("--connect {server}"))?
        .next()
        .ok_or_else(|| anyhow!("--connect {server}: no address"))
}

/// The license store as the licensing machine reads it, remembering the CAL the client
/// presented: an Upgrade License is a renewal only if that CAL was permanent.
struct Presenting<'a> {
    store: &'a mut LicenseDir,
    presented: Cell<Option<Vec<u8>>>,
}

impl LicenseStore for Presenting<'_> {
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>> {
        let found = self.store.find(product);
        self.presented.set(found.clone());
        found
    }
}

impl StoreLicense for Presenting<'_> {
    type Error = LicenseDirError;

    fn store_license(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), LicenseDirError> {
        self.store.store_license(product, license_info)
    }
}

/// The outcome as `rdpele client` names it.
#[derive(Debug)]
struct Outcome {
    /// temporary, permanent, renewed, valid, refused, aborted (or new / upgraded when the CAL
    /// issued does not parse).
    name: &'static str,
    /// The CAL the client holds for this server now: the one issued, or the one presented.
    cal: Option<Cal>,
    /// Why a CAL the client holds could not be read.
    cal_error: Option<String>,
    /// The Licensing Error Message's code (refused, aborted).
    error: Option<String>,
    /// Why the client aborted.
    reason: Option<&'static str>,
    exit: u8,
}

impl Outcome {
    fn of(report: &ClientReport, presented: Option<&[u8]>) -> Self {
        let (name, held, exit) = match &report.licensing {
            LicensingOutcome::New | LicensingOutcome::Upgraded => {
                let issued = report.stored.as_deref().map(parse_cal);
                let was_permanent = presented
                    .and_then(|cal| parse_cal(cal).ok())
                    .is_some_and(|cal| cal.kind == CalKind::Permanent);
                let returned = matches!(
                    (&report.licensing, report.stored.as_deref(), presented),
                    (LicensingOutcome::Upgraded, Some(stored), Some(presented)) if stored == presented
                );
                let name = match (&issued, &report.licensing) {
                    (Some(Ok(_)), _) if returned => "returned",
                    (Some(Ok(cal)), _) if cal.kind == CalKind::Temporary => "temporary",
                    (Some(Ok(_)), _) if was_permanent => "renewed",
                    (Some(Ok(_)), _) => "permanent",
                    (_, LicensingOutcome::New) => "new",
                    _ => "upgraded",
                };
                (name, issued, 0)
            }
            LicensingOutcome::Valid => ("valid", presented.map(parse_cal), 0),
            LicensingOutcome::Refused { .. } => ("refused", None, EXIT_REFUSED),
            LicensingOutcome::Aborted { .. } => ("aborted", None, EXIT_ABORTED),
        };
        let (error, reason) = match &report.licensing {
            LicensingOutcome::Refused { error_code, .. } => (Some(code_name(*error_code)), None),
            LicensingOutcome::Aborted { error_code, reason } => {
                (Some(code_name(*error_code)), Some(*reason))
            }
            _ => (None, None),
        };
        let (cal, cal_error) = match held {
            Some(Ok(cal)) => (Some(cal), None),
            Some(Err(error)) => (None, Some(error.to_string())),
            None => (None, None),
        };
        Self {
            name,
            cal,
            cal_error,
            error,
            reason,
            exit,
        }
    }

    fn expires(&self) -> Option<SystemTime> {
        self.cal.as_ref().map(|cal| cal.client_license.not_after)
    }

    /// `refused (ERR_NO_LICENSE, ERRINFO_LICENSE_NO_LICENSE)`, `aborted (ERR_…: reason)`, or
    /// the name alone.
    fn label(&self, error_info: Option<u32>) -> String {
        match (&self.error, self.reason) {
            (Some(error), Some(reason)) => format!("{} ({error}: {reason})", self.name),
            (Some(error), None) => match error_info {
                Some(code) => format!("{} ({error}, {})", self.name, error_info_text(code)),
                None => format!("{} ({error})", self.name),
            },
            _ => self.name.to_owned(),
        }
    }
}

impl Connection {
    fn to_text(&self) -> String {
        let report = &self.report;
        let mut out = format!("outcome: {}\n", self.outcome.label(report.error_info));
        match (self.outcome.expires(), &self.outcome.cal_error) {
            (Some(expires), _) => out.push_str(&format!("expires: {}\n", instant(expires))),
            (None, Some(error)) => out.push_str(&format!("expires: unknown (CAL: {error})\n")),
            (None, None) if self.outcome.exit == 0 => out.push_str("expires: none (no CAL)\n"),
            (None, None) => {}
        }
        out.push_str(&format!(
            "client: {} (user {}), HWID {}\n",
            self.machine,
            self.user,
            hex::encode(self.store.hwid().to_bytes())
        ));
        out.push_str(&format!(
            "store: {} ({} layout)\n",
            self.store.root().display(),
            self.store.layout().name()
        ));
        let ending = ending_text(&report.ending);
        let ending = match report.error_info {
            Some(code) => format!("{ending} ({})", error_info_text(code)),
            None => ending,
        };
        let session = if report.active { "active, then " } else { "" };
        out.push_str(&format!("session: {session}{ending}\n"));
        out
    }

    fn to_json(&self) -> Value {
        let report = &self.report;
        let outcome = &self.outcome;
        json!({
            "outcome": outcome.name,
            "expires_at": outcome.expires().map(instant),
            "error": outcome.error,
            "reason": outcome.reason,
            "error_info": report.error_info.map(error_info_text),
            "error_info_code": report.error_info,
            "cal": outcome.cal.as_ref().map(CalReceived::of),
            "cal_error": outcome.cal_error,
            "machine": self.machine,
            "user": self.user,
            "hwid": hex::encode(self.store.hwid().to_bytes()),
            "store": self.store.root().display().to_string(),
            "layout": self.store.layout().name(),
            "stored": report.stored.is_some(),
            "challenged": report.challenged,
            "active": report.active,
            "ending": ending_text(&report.ending),
        })
    }
}

fn ending_text(ending: &Ending) -> String {
    match ending {
        Ending::ServerDisconnected => "ended by the server".to_owned(),
        Ending::ServerClosed => "closed by the server".to_owned(),
        Ending::ClientDisconnected => "the client disconnected".to_owned(),
        Ending::TimedOut { stage } => format!("timed out ({stage})"),
        Ending::Failed { stage, detail } => format!("failed at {stage}: {detail}"),
    }
}

fn instant(time: SystemTime) -> String {
    format_instant(time).unwrap_or_else(|| "?".to_owned())
}

fn code_name(code: ErrorCode) -> String {
    code.name()
        .map_or_else(|| format!("{:#010x}", code.0), str::to_owned)
}

/// A Set Error Info code by its MS-RDPBCGR 2.2.5.1.1 name, or in hex.
fn error_info_text(code: u32) -> String {
    ErrorInfo(code).to_string()
}

/// This computer's host name, as mstsc and xfreerdp name the client by default.
fn local_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "rdpele-client".to_owned())
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "rdpele".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_without_a_port_gets_rdps() {
        assert_eq!(
            resolve("127.0.0.1").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 3389)))
        );
        assert_eq!(
            resolve("127.0.0.1:4000").ok(),
            Some(SocketAddr::from(([127, 0, 0, 1], 4000)))
        );
        assert_eq!(
            resolve("[::1]:4000").ok(),
            Some(SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, 4000)))
        );
    }

    #[test]
    fn error_info_codes_are_named_as_the_specification_spells_them() {
        assert_eq!(error_info_text(0x102), "ERRINFO_LICENSE_NO_LICENSE");
        assert_eq!(error_info_text(0xC), "ERRINFO_LOGOFF_BY_USER");
        assert_eq!(error_info_text(0x4321), "ERRINFO 0x00004321");
    }
}

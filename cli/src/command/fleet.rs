//! `rdpele fleet`: a fleet of emulated clients over virtual days ([`crate::fleet`]).

use std::io::IsTerminal;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Context};
use clap::Args;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::fleet::device::Identities;
use crate::fleet::schedule::Pattern;
use crate::fleet::summary::{date_text, FleetReport};
use crate::fleet::{plot, FleetOptions, Progress, MAX_DAYS, MAX_DEVICES};

/// Run a fleet of emulated clients against a session host over virtual days.
///
/// Devices are named PREFIX-0001 … and sign in as user-0001 … (with --users M, device n as
/// user ((n-1) mod M)+1); each has its own license store in memory and a hardware id derived
/// from --seed and its number, so the same seed is the same fleet. On each virtual day the
/// devices the pattern names connect (at most --concurrency at once), sign in (the session
/// becomes active) and disconnect; then the fleet moves the virtual clock of --data one day
/// on, as `rdpele admin clock advance 1d` does. The sign-in is what validates a temporary CAL,
/// and only a validated one is upgraded: with --licensing-only the devices leave once
/// licensing ends, never sign in, and keep their temporary CALs until day 90.
///
/// --data must be the data directory of the host at --connect (the one `rdpele serve --data`
/// uses; with `--license-server`, give the host's and the license server's, --data twice): its
/// clock is the one that moves, and its report is the one the totals reconcile with. The fleet
/// checks that the first CAL issued (or user recorded) is there and stops if it is not.
///
/// Patterns: daily (every device every day), weekdays (Monday to Friday of the virtual
/// calendar; the default), random (each device each day with probability 0.7, from the seed).
///
/// Output: a line per day (connections; new temporary, permanent, renewed, valid, refused and
/// failed; CALs held and users recorded once the day is over), refusals by Licensing Error
/// Message code and Set Error Info, and the CALs held at the end beside `rdpele admin
/// report`'s totals: per-device permanent = issued + revoked, per-device temporary =
/// temporary, per-user recorded = issued + overused. A per-user host stores no CAL on the
/// devices: the fleet counts a user from a connection that presented no CAL and was admitted
/// after a challenge (a per-device host answers that with a CAL), for the 60 days Windows shows the record (renewed by a sign-in in its last 7).
/// A host in its grace period admits clients the same way and records nothing, so such a run
/// does not reconcile. --json prints one JSON document instead
/// ({"per_day": [...], "totals", "held", "server", "reconciled", "run": {wall-clock fields}}).
///
/// Exit status: 0 when every connection had a licensing outcome, 1 when some failed or the run
/// could not go on (host unreachable, wrong --data), 2 for bad arguments.
#[derive(Debug, Args)]
#[command(
    verbatim_doc_comment,
    after_help = "Example (a pool of 800 CALs for 1,000 devices over four months):\n  \
    rdpele admin --data ./host server set --activated true --host-version 2022\n  \
    rdpele admin --data ./host install --type per-device --version 2022 --count 800\n  \
    rdpele serve --listen 127.0.0.1:3389 --data ./host 2>serve.log &\n  \
    rdpele fleet --connect 127.0.0.1:3389 --data ./host --devices 1000 --days 120 --plot fleet.svg\n\n\
    A host with `licensing-key-bits = 512` under [host] in its --config (a fresh data directory) \
    serves a fleet about twice as fast: see BENCHMARKS.md, \"Fleet\"."
)]
pub struct FleetArgs {
    /// The session host, HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    connect: String,
    /// The host's data directory (repeat for a remote license server's).
    #[arg(long, value_name = "DIR", required = true)]
    data: Vec<PathBuf>,
    /// Number of devices.
    #[arg(long, value_name = "N")]
    devices: u32,
    /// Number of users the devices share (default: one per device).
    #[arg(long, value_name = "M")]
    users: Option<u32>,
    /// Number of virtual days.
    #[arg(long, value_name = "D")]
    days: u32,
    /// daily, weekdays or random.
    #[arg(long, value_name = "PATTERN", default_value = "weekdays")]
    pattern: String,
    /// Seed of the hardware ids and of the random pattern.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Connections in flight at once.
    #[arg(long, value_name = "C", default_value_t = 64)]
    concurrency: usize,
    /// Seconds a client waits for any one server PDU.
    #[arg(long, value_name = "SECONDS", default_value_t = 30)]
    timeout: u64,
    /// Leave as soon as licensing ends instead of signing in (faster): no temporary CAL is
    /// validated, so none is upgraded, as for Windows clients whose logon never completes.
    #[arg(long)]
    licensing_only: bool,
    /// Machine name prefix.
    #[arg(long, default_value = "fleet")]
    prefix: String,
    /// Print a JSON document instead of the tables.
    #[arg(long)]
    json: bool,
    /// Draw CALs held by kind and refusals per day into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// A failure and the exit status it calls for.
struct Failure {
    status: u8,
    error: anyhow::Error,
}

impl Failure {
    fn usage(error: anyhow::Error) -> Self {
        Self { status: 2, error }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Self {
        Self { status: 1, error }
    }
}

pub fn run(args: &FleetArgs) -> ExitCode {
    match fleet(args) {
        Ok(code) => code,
        Err(Failure { status, error }) => {
            eprintln!("rdpele fleet: {error:#}");
            ExitCode::from(status)
        }
    }
}

fn fleet(args: &FleetArgs) -> Result<ExitCode, Failure> {
    let options = options(args).map_err(Failure::usage)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let mut progress = Bar::new();
    let result = runtime.block_on(crate::fleet::run(&options, &mut progress));
    progress.finish();
    let report = result.map_err(anyhow::Error::from)?;
    if let Some(path) = &args.plot {
        let document = plot::svg(&report).map_err(anyhow::Error::from)?;
        std::fs::write(path, document)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        super::print_out(&format!("{}\n", report.json()));
    } else {
        super::print_out(&report.text());
        if let Some(path) = &args.plot {
            super::print_out(&format!("plot written to {}\n", path.display()));
        }
    }
    failed_connections(&report)
}

/// Exit 1 when a connection had no licensing outcome: the totals may then not reconcile.
fn failed_connections(report: &FleetReport) -> Result<ExitCode, Failure> {
    match report.totals.failed {
        0 => Ok(ExitCode::SUCCESS),
        failed => Err(anyhow!(
            "{failed} of {} connections failed (see \"failures\")",
            report.totals.connections
        )
        .into()),
    }
}

/// The arguments checked; every mistake is one line naming the option.
fn options(args: &FleetArgs) -> anyhow::Result<FleetOptions> {
    let address = resolve(&args.connect)?;
    if !(1..=MAX_DEVICES).contains(&args.devices) {
        return Err(anyhow!("--devices must be between 1 and {MAX_DEVICES}"));
    }
    if !(1..=MAX_DAYS).contains(&args.days) {
        return Err(anyhow!("--days must be between 1 and {MAX_DAYS}"));
    }
    let users = args.users.unwrap_or(args.devices);
    if !(1..=args.devices).contains(&users) {
        return Err(anyhow!(
            "--users must be between 1 and --devices ({})",
            args.devices
        ));
    }
    let pattern: Pattern = args.pattern.parse()?;
    if args.concurrency == 0 {
        return Err(anyhow!("--concurrency must be at least 1"));
    }
    if args.timeout == 0 {
        return Err(anyhow!("--timeout must be at least 1 second"));
    }
    if args.prefix.is_empty() {
        return Err(anyhow!("--prefix must not be empty"));
    }
    Ok(FleetOptions {
        address,
        data: args.data.clone(),
        identities: Identities {
            prefix: args.prefix.clone(),
            devices: args.devices,
            users,
            seed: args.seed,
        },
        days: args.days,
        pattern,
        concurrency: args.concurrency,
        timeout: Duration::from_secs(args.timeout),
        activate: !args.licensing_only,
    })
}

/// HOST:PORT to an address (the first the name resolves to).
fn resolve(text: &str) -> anyhow::Result<SocketAddr> {
    text.to_socket_addrs()
        .map_err(|e| anyhow!("--connect {text:?}: {e}"))?
        .next()
        .ok_or_else(|| anyhow!("--connect {text:?}: no address"))
}

/// An indicatif bar over all the run's connections, when stderr is a terminal.
struct Bar(Option<ProgressBar>);

impl Bar {
    fn new() -> Self {
        if !std::io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:28} [{bar:32}] {pos}/{len} connections, {elapsed} elapsed, eta {eta}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        Self(Some(bar))
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn begin(&mut self, connections: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(connections);
        }
    }

    fn day(&mut self, day: u32, date: time::Date, devices: usize) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("day {day} ({}): {devices}", date_text(date)));
        }
    }

    fn connected(&mut self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }
}

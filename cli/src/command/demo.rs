//! `rdpele demo`: the whole life of CALs in seconds. One process runs a session host with its
//! license server on a free loopback port over a temporary data directory, and emulated
//! clients connect to it over TCP and TLS, through licensing, while the demo moves the virtual
//! clock and administers the license server between logons.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Context};
use clap::Args;
use rand::RngExt;
use rdpele_proto::cal::{parse_cal, CalKind};
use rdpele_proto::wire::ClientHardwareId;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::admin::revoke;
use rdpele_emulator::client::{
    self, ClientOptions, ClientSecurity, LicensingOutcome, MemoryLicenses,
};
use rdpele_emulator::session_host::config::HostConfig;
use rdpele_emulator::session_host::{self, Options, Shared};
use rdpele_license_server::clock::{format_instant, Clock};
use rdpele_license_server::model::{LicensingMode, WindowsVersion};
use rdpele_license_server::store::{NewKeyPack, RevokeTarget, Store};
use rdpele_license_server::{private_files, server};

/// Show the life of Client Access Licenses in seconds, end to end over the network.
///
/// A session host and its license server (Windows Server 2022, per device, an activated
/// license server with a pack of 5 CALs) run in this process on a free loopback port, with a
/// temporary data directory. Emulated clients connect to it over TCP and TLS and go through
/// licensing as mstsc would, while the demo moves the virtual clock: first logons get
/// temporary CALs, the next ones permanent CALs; the sixth device stays temporary until a CAL
/// is revoked; CALs are renewed within 7 days of their expiry; a device whose temporary CAL
/// expires with none free is refused; a client that resets its license store starts over with
/// a new temporary CAL; a per-user host shows over-allocation in its report.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// One JSON object per line (day, client, outcome, expires_at, and error when refused)
    /// instead of the timeline.
    #[arg(long)]
    json: bool,
    /// Keep the data directories here instead of a temporary directory (to look at them with
    /// `rdpele admin --data DIR/per-device report` afterwards).
    #[arg(long, value_name = "DIR")]
    keep: Option<std::path::PathBuf>,
}

pub fn run(args: &DemoArgs) -> ExitCode {
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|runtime| runtime.block_on(demo(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rdpele demo: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// An emulated client machine: its name, user, HWID and license store.
struct Device {
    name: String,
    user: String,
    hwid: ClientHardwareId,
    licenses: MemoryLicenses,
}

impl Device {
    fn new(name: &str, user: &str) -> Self {
        Self {
            name: name.to_owned(),
            user: user.to_owned(),
            hwid: fresh_hwid(),
            licenses: MemoryLicenses::default(),
        }
    }

    /// The kind of the CAL it holds, if any.
    fn held(&self) -> Option<CalKind> {
        self.licenses
            .cals()
            .next()
            .and_then(|cal| parse_cal(cal).ok())
            .map(|cal| cal.kind)
    }

    /// The documented fix for a damaged license store: delete HardwareID and Store; the client
    /// is then a new device.
    fn reset(&mut self) {
        self.hwid = fresh_hwid();
        self.licenses = MemoryLicenses::default();
    }
}

fn fresh_hwid() -> ClientHardwareId {
    ClientHardwareId {
        platform_id: client::PLATFORM_ID,
        data: rand::rng().random(),
    }
}

/// One host, its data directory and where it listens.
struct Host {
    data: std::path::PathBuf,
    address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    clock: Clock,
    start: SystemTime,
}

impl Host {
    async fn start(data: &Path, mode: LicensingMode, pack: u32) -> anyhow::Result<Self> {
        private_files::create_private_dir(data)?;
        let store = Store::open(data)?;
        let mut settings = store.settings()?;
        settings.activated = true;
        store.set_settings(&settings)?;
        store.set_session_host(mode, WindowsVersion::V2022)?;
        let clock = Clock::system();
        let start = clock.now(&store)?;
        store.install_pack(&NewKeyPack {
            key_pack_type: mode,
            product_version: WindowsVersion::V2022,
            total_licenses: pack,
            installed_at: start,
        })?;
        let options = Options {
            data: data.to_owned(),
            config: HostConfig::default(),
            license_server: None,
            session_seconds: None,
            max_connections: 64,
            max_connections_per_source: 64,
            step_timeout: Duration::from_secs(10),
            record: None,
            pcap: None,
            host_name: "rdpele-demo".to_owned(),
        };
        let shared = tokio::task::spawn_blocking(move || Shared::open(options)).await??;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(session_host::serve(listener, shared, async {
            let _ = stopped.await;
        }));
        Ok(Self {
            data: data.to_owned(),
            address,
            stop: Some(stop),
            clock,
            start,
        })
    }

    fn store(&self) -> anyhow::Result<Store> {
        Ok(Store::open(&self.data)?)
    }

    fn now(&self) -> anyhow::Result<SystemTime> {
        Ok(self.clock.now(&self.store()?)?)
    }

    fn day(&self) -> anyhow::Result<u64> {
        Ok(self
            .now()?
            .duration_since(self.start)
            .unwrap_or_default()
            .as_secs()
            / 86_400)
    }

    fn advance_to_day(&self, day: u64) -> anyhow::Result<()> {
        let at = self.start + Duration::from_secs(day * 86_400);
        self.clock.set(&self.store()?, at)?;
        Ok(())
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Prints events as a timeline or as JSON lines.
struct Timeline {
    json: bool,
}

/// One line of the timeline.
struct Event<'a> {
    day: u64,
    client: &'a str,
    outcome: &'a str,
    expires_at: Option<SystemTime>,
    /// The Licensing Error Message's code, and the ERRINFO that followed, when refused.
    error: Option<(String, Option<String>)>,
    note: Option<String>,
}

impl Timeline {
    fn event(&self, event: &Event<'_>) {
        let expires = event.expires_at.and_then(format_instant);
        if self.json {
            let mut line = json!({
                "day": event.day,
                "client": event.client,
                "outcome": event.outcome,
                "expires_at": expires,
            });
            if let Some(map) = line.as_object_mut() {
                if let Some((error, error_info)) = &event.error {
                    map.insert("error".to_owned(), json!(error));
                    map.insert("error_info".to_owned(), json!(error_info));
                }
                if let Some(note) = &event.note {
                    map.insert("note".to_owned(), json!(note));
                }
            }
            super::print_out(&format!("{line}\n"));
        } else {
            let expires = expires
                .map(|at| format!("  expires {at}"))
                .unwrap_or_default();
            let error = match &event.error {
                Some((error, Some(info))) => format!("  {error}, then {info}"),
                Some((error, None)) => format!("  {error}"),
                None => String::new(),
            };
            let note = event
                .note
                .as_ref()
                .map(|n| format!("  ({n})"))
                .unwrap_or_default();
            super::print_out(&format!(
                "day {:>3}  {:<8} {:<10}{expires}{error}{note}\n",
                event.day, event.client, event.outcome
            ));
        }
    }

    fn note(&self, text: &str) {
        if !self.json {
            super::print_out(&format!("\n{text}\n"));
        }
    }
}

/// One logon of `device`: what happened, as the timeline says it.
async fn logon(host: &Host, device: &mut Device, timeline: &Timeline) -> anyhow::Result<String> {
    let before = device.held();
    let options = ClientOptions {
        machine: device.name.clone(),
        user: device.user.clone(),
        password: "demo".to_owned(),
        hwid: device.hwid,
        timeout: Duration::from_secs(10),
        disconnect_after_activation: true,
        security: ClientSecurity::default(),
    };
    let report = client::connect(host.address, &options, &mut device.licenses)
        .await
        .with_context(|| format!("{} connecting", device.name))?;
    let cal = report.stored.as_deref().and_then(|cal| parse_cal(cal).ok());
    let mut error = None;
    let mut note = None;
    let outcome = match (&report.licensing, cal.as_ref().map(|cal| cal.kind), before) {
        (LicensingOutcome::New, Some(CalKind::Temporary), _) => "temporary",
        (LicensingOutcome::New, _, _) => "permanent",
        (LicensingOutcome::Upgraded, _, Some(CalKind::Permanent)) => "renewed",
        (LicensingOutcome::Upgraded, _, _) => "permanent",
        (LicensingOutcome::Valid, _, Some(CalKind::Temporary)) => {
            note = Some("kept: no permanent CAL free".to_owned());
            "temporary"
        }
        (LicensingOutcome::Valid, None, None) if report.challenged => {
            // A per-user host records the user on the license server and stores nothing on
            // the client.
            note = Some("no CAL stored: the user is recorded on the license server".to_owned());
            "valid"
        }
        (LicensingOutcome::Valid, _, _) => "valid",
        (LicensingOutcome::Refused { error_code, .. }, _, _) => {
            error = Some((error_code.to_string(), report.error_info.map(errinfo_name)));
            "refused"
        }
        (LicensingOutcome::Aborted { error_code, reason }, _, _) => {
            error = Some((format!("{error_code}: {reason}"), None));
            "aborted"
        }
    };
    let expires_at = match outcome {
        "refused" | "aborted" => None,
        _ => expiry(device),
    };
    timeline.event(&Event {
        day: host.day()?,
        client: &device.name,
        outcome,
        expires_at,
        error,
        note,
    });
    Ok(outcome.to_owned())
}

fn errinfo_name(code: u32) -> String {
    rdpele_proto::envelope::ErrorInfo(code).to_string()
}

/// The expiry of the CAL `device` holds.
fn expiry(device: &Device) -> Option<SystemTime> {
    device
        .licenses
        .cals()
        .next()
        .and_then(|cal| parse_cal(cal).ok())
        .map(|cal| cal.client_license.not_after)
}

async fn demo(args: &DemoArgs) -> anyhow::Result<()> {
    let temporary = tempfile_dir()?;
    let root = args.keep.clone().unwrap_or_else(|| temporary.clone());
    let result = storyline(&root, &Timeline { json: args.json }).await;
    if args.keep.is_none() {
        let _ = std::fs::remove_dir_all(&temporary);
    }
    result
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "rdpele-demo-{}-{}",
        std::process::id(),
        rand::rng().random::<u32>()
    ));
    private_files::create_private_dir(&dir)?;
    Ok(dir)
}

async fn storyline(root: &Path, timeline: &Timeline) -> anyhow::Result<()> {
    let per_device = root.join("per-device");
    timeline.note(
        "Windows Server 2022 session host, per device; license server activated with 5 CALs.",
    );
    let host = Host::start(&per_device, LicensingMode::PerDevice, 5).await?;
    let mut devices: Vec<Device> = (1..=7)
        .map(|i| Device::new(&format!("pc-{i:02}"), &format!("user{i}")))
        .collect();

    timeline.note("First logons: temporary CALs (90 days).");
    for device in devices.iter_mut().take(6) {
        logon(&host, device, timeline).await?;
    }

    timeline
        .note("Next logons: permanent CALs (52-89 days); the sixth device finds the pool empty.");
    host.advance_to_day(1)?;
    for device in devices.iter_mut().take(6) {
        logon(&host, device, timeline).await?;
    }

    timeline.note("pc-01's CAL is revoked; the waiting device gets it at its next logon.");
    host.advance_to_day(2)?;
    revoke_machine(&host, "pc-01", timeline)?;
    if let Some(device) = devices.get_mut(5) {
        logon(&host, device, timeline).await?;
    }
    host.advance_to_day(3)?;
    if let Some(device) = devices.get_mut(6) {
        logon(&host, device, timeline).await?;
    }

    timeline.note("Daily logons for three months: renewals within 7 days of expiry; pc-07's temporary CAL expires with none free.");
    let mut refused = false;
    for day in 4..=95 {
        host.advance_to_day(day)?;
        let now = host.now()?;
        for device in devices.iter_mut().skip(1) {
            let due = match device.held() {
                // Holders log on when renewal is due (within 7 days of expiry); pc-07 tries
                // again the day after its temporary CAL has expired.
                Some(CalKind::Permanent) => {
                    expiry(device).is_some_and(|at| at <= now + Duration::from_secs(7 * 86_400))
                }
                Some(CalKind::Temporary) => expiry(device).is_some_and(|at| at <= now),
                None => false,
            };
            if due && !refused {
                let outcome = logon(&host, device, timeline).await?;
                refused |= outcome == "refused";
            }
        }
        if refused {
            break;
        }
    }

    timeline.note("pc-01 resets its license store (HardwareID and Store deleted): a new device.");
    if let Some(device) = devices.first_mut() {
        device.reset();
        logon(&host, device, timeline).await?;
    }

    let report = host.store()?.pool_report(host.now()?)?;
    let pack = report.packs.first().ok_or_else(|| anyhow!("no pack"))?;
    let temporary: u32 = report.temporary.iter().map(|c| c.issued).sum();
    timeline.note(&format!(
        "Per-device report: {} of {} CALs issued, {} available, {} temporary CALs outstanding.",
        pack.issued, pack.installed, pack.available, temporary
    ));
    let day = host.day()?;
    drop(host);

    per_user(root, &per_device, day, timeline).await
}

/// A second host, per user, with 2 CALs and three users: per-user CALs are not enforced, so all
/// three get in and the report shows one over-allocated.
async fn per_user(
    root: &Path,
    keys_from: &Path,
    day: u64,
    timeline: &Timeline,
) -> anyhow::Result<()> {
    let data = root.join("per-user");
    private_files::create_private_dir(&data)?;
    // The same keys as the first host: making 2048-bit RSA keys is the slowest step of a start.
    for file in [server::KEY_FILE, session_host::LICENSING_KEY_FILE] {
        let from = keys_from.join(file);
        if from.exists() {
            std::fs::copy(&from, data.join(file))?;
        }
    }
    timeline.note("A per-user host with 2 per-user CALs and three users.");
    let host = Host::start(&data, LicensingMode::PerUser, 2).await?;
    host.advance_to_day(day)?;
    for i in 1..=3 {
        let mut device = Device::new(&format!("kiosk-{i}"), &format!("staff{i}"));
        logon(&host, &mut device, timeline).await?;
    }
    let report = host.store()?.pool_report(host.now()?)?;
    let overused: u32 = report.overused.iter().map(|c| c.issued).sum();
    let issued: u32 = report.packs.iter().map(|p| p.issued).sum();
    let installed: u32 = report.packs.iter().map(|p| p.installed).sum();
    timeline.event(&Event {
        day: host.day()?,
        client: "per-user",
        outcome: "report",
        expires_at: None,
        error: None,
        note: Some(format!(
            "{issued} of {installed} CALs issued, {overused} over-allocated"
        )),
    });
    Ok(())
}

fn revoke_machine(host: &Host, machine: &str, timeline: &Timeline) -> anyhow::Result<()> {
    let store = host.store()?;
    let now = host.now()?;
    let answer = store.revoke(
        &RevokeTarget::Machine(machine.to_owned()),
        now,
        revoke::decide,
    )?;
    if answer.revoked.is_empty() {
        return Err(anyhow!("the license server did not revoke {machine}'s CAL"));
    }
    timeline.event(&Event {
        day: host.day()?,
        client: machine,
        outcome: "revoked",
        expires_at: None,
        error: None,
        note: Some("rdpele admin revoke".to_owned()),
    });
    Ok(())
}

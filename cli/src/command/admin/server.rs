//! `rdpele admin server show|set`: the license server's settings (Win32_TSLicenseServer) and
//! the emulated session host's.

use std::fmt::Write as _;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{anyhow, Context as _};
use clap::{ArgAction, ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

use super::args::instant;
use super::{answer, CommandResult, Context, Failure};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{LicensingMode, ServerSettings, WindowsVersion};
use rdpele_license_server::policy::{self, grace_period, GraceState};
use rdpele_license_server::server::{cal_product_id, KEY_FILE};
use rdpele_license_server::store::{SessionHost, Store};
use rdpele_proto::crypto::LicensingPrivateKey;

/// Show or change the license server and the session host it serves.
#[derive(Debug, Subcommand)]
pub(super) enum ServerCommand {
    /// Show the license server and the session host.
    ///
    /// The license server: Windows version, activation, name, domain or workgroup, product id,
    /// and the product id its CALs carry (cal_product_id: an activated server still holding the
    /// default product id writes one of the Windows 2019 format, derived from its signing key;
    /// null until that key exists, made with the first CAL). The session host: licensing mode, Windows version, first use and 120-day grace period
    /// (which matters only to a host that cannot reach its license server).
    Show,
    Set(SetArgs),
}

/// Change the license server or the session host; what is not given stays as it is.
///
/// The license server's version decides which CAL packs it accepts (its own version or
/// older); it cannot be set below a pack already installed. An unactivated license server
/// issues temporary CALs only. The session host runs in one licensing mode and has a version
/// of its own: a CAL opens hosts of its version or older.
///
/// Answers as `server show` does, after the change.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
#[command(group(
    ArgGroup::new("change")
        .required(true)
        .multiple(true)
        .args(["version", "mode", "activated", "host_version"])
))]
pub(super) struct SetArgs {
    /// The license server's Windows version.
    #[arg(long, value_enum)]
    version: Option<WindowsVersion>,
    /// The session host's licensing mode: per device (temporary, then permanent CALs bound to
    /// the device's HWID) or per user (recorded against the user account, not enforced).
    #[arg(long, value_enum)]
    mode: Option<LicensingMode>,
    /// Whether the license server is activated.
    #[arg(long, value_name = "true|false", action = ArgAction::Set)]
    activated: Option<bool>,
    /// The session host's Windows version (`request --host-version` overrides it for one
    /// request).
    #[arg(long, value_enum)]
    host_version: Option<WindowsVersion>,
}

pub(super) fn run(context: &Context<'_>, command: &ServerCommand) -> CommandResult {
    let store = Store::open(context.data)?;
    if let ServerCommand::Set(args) = command {
        set(&store, args)?;
    }
    let now = Clock::system().now(&store)?;
    let settings = store.settings()?;
    let host = store.session_host()?;
    let cal_product_id = cal_product_id_of(context.data, &settings)?;
    answer(
        context,
        &document(&settings, cal_product_id.as_deref(), &host, now),
        || text(&settings, cal_product_id.as_deref(), &host, now),
    );
    Ok(())
}

/// The product id the license server's CALs carry; `None` for an activated server whose
/// signing key is not made yet (the id derives from it).
fn cal_product_id_of(data: &Path, settings: &ServerSettings) -> Result<Option<String>, Failure> {
    let key_path = data.join(KEY_FILE);
    if !key_path.exists() {
        return Ok((!settings.activated).then(|| settings.product_id.clone()));
    }
    let pem = std::fs::read_to_string(&key_path)
        .with_context(|| format!("cannot read {}", key_path.display()))?;
    let key = LicensingPrivateKey::from_pem(&pem)
        .with_context(|| format!("{} is not a private key", key_path.display()))?;
    Ok(Some(cal_product_id(settings, &key)?))
}

fn set(store: &Store, args: &SetArgs) -> CommandResult {
    let mut settings = store.settings()?;
    let before = settings.clone();
    if let Some(version) = args.version {
        settings.version = version;
    }
    if let Some(activated) = args.activated {
        settings.activated = activated;
    }
    if settings.version != before.version {
        // The packs it holds must stay packs it could install.
        let now = Clock::system().now(store)?;
        for usage in store.packs(now)? {
            policy::install_pack(&settings, &usage.pack).map_err(|error| {
                Failure::refused(anyhow!(
                    "cannot make the license server {}: key pack {} is installed ({error})",
                    policy::versions::version_name(settings.version),
                    usage.pack.key_pack_id
                ))
            })?;
        }
    }
    if settings != before {
        store.set_settings(&settings)?;
    }
    if args.mode.is_some() || args.host_version.is_some() {
        let host = store.session_host()?;
        store.set_session_host(
            args.mode.unwrap_or(host.licensing_mode),
            args.host_version.unwrap_or(host.version),
        )?;
    }
    Ok(())
}

fn grace(host: &SessionHost, now: SystemTime) -> Value {
    match host.first_use.map(|first_use| grace_period(first_use, now)) {
        None => json!({ "state": "not started", "ends_at": null }),
        Some(GraceState::Within { ends_at }) => {
            json!({ "state": "within", "ends_at": instant(ends_at) })
        }
        Some(GraceState::Over { ended_at }) => {
            json!({ "state": "over", "ends_at": instant(ended_at) })
        }
    }
}

fn document(
    settings: &ServerSettings,
    cal_product_id: Option<&str>,
    host: &SessionHost,
    now: SystemTime,
) -> Value {
    json!({
        "now": instant(now),
        "license_server": {
            "version": settings.version.as_str(),
            "activated": settings.activated,
            "name": settings.name,
            "domain_or_workgroup": settings.domain_or_workgroup,
            "product_id": settings.product_id,
            "cal_product_id": cal_product_id,
        },
        "session_host": {
            "licensing_mode": host.licensing_mode.as_str(),
            "version": host.version.as_str(),
            "first_use": host.first_use.map(instant),
            "grace_period": grace(host, now),
        },
    })
}

fn text(
    settings: &ServerSettings,
    cal_product_id: Option<&str>,
    host: &SessionHost,
    now: SystemTime,
) -> String {
    let name = policy::versions::version_name;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "license server  {} ({}), {}, {}",
        settings.name,
        settings.domain_or_workgroup,
        name(settings.version),
        if settings.activated {
            "activated"
        } else {
            "not activated: temporary CALs only"
        }
    );
    let _ = writeln!(
        out,
        "product id      {} (in its CALs: {})",
        settings.product_id,
        cal_product_id.unwrap_or("derived from its signing key, made with the first CAL")
    );
    let mode = match host.licensing_mode {
        LicensingMode::PerDevice => "per device",
        LicensingMode::PerUser => "per user",
    };
    let grace = match host.first_use.map(|first_use| grace_period(first_use, now)) {
        None => "not used yet".to_owned(),
        Some(GraceState::Within { ends_at }) => format!(
            "first used {}, grace period until {}",
            instant(host.first_use.unwrap_or(now)),
            instant(ends_at)
        ),
        Some(GraceState::Over { ended_at }) => format!(
            "first used {}, grace period over since {}",
            instant(host.first_use.unwrap_or(now)),
            instant(ended_at)
        ),
    };
    let _ = writeln!(
        out,
        "session host    {mode}, {}, {grace}",
        name(host.version)
    );
    let _ = writeln!(out, "virtual now     {}", instant(now));
    out
}

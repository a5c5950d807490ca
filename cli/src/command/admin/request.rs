//! `rdpele admin request`: one client connection's licensing, decided and recorded by the
//! license server exactly as the session host has it decided — through the same
//! [`LicenseServer`] the protocol state machine asks as its `LicenseIssuer` — minus the
//! encryption.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::{anyhow, Context as _};
use clap::Args;
use rdpele_proto::cal::parse_cal_container;
use serde_json::{json, Value};

use super::args::{instant, parse_hwid, parse_name};
use super::{CommandResult, Context, Failure};
use rdpele_license_server::model::{
    HostInfo, LicenseRefusal, LicenseRequest, LicensingMode, PresentedCal, RequestOutcome,
    WindowsVersion,
};
use rdpele_license_server::server::{presented_cal, Granted, LicenseServer};
use rdpele_license_server::store::{Holder, Store};

/// CAL files are a few KB; anything this large is not one.
const MAX_CAL_BYTES: u64 = 1 << 20;

/// Connect a client: the license server's answer now (virtual time), recorded.
///
/// The decision is the one the session host gets for a real connection, through the same
/// code, and it is recorded the same way.
///
/// Without --cal the client sends a New License Request (a first connection, or one that
/// lost its CAL); with --cal FILE it presents that CAL in a License Info (FILE: the CAL's
/// PKCS#7, e.g. what --out wrote, or a NEW_LICENSE_INFO holding one). As the session host
/// does, a CAL bound to another HWID is refused (reason "hwid_mismatch"), a presented CAL
/// that is valid as it is or refused changes nothing, and an upgrade, a renewal or a new CAL
/// is recorded in the store.
///
/// The session host is the one `server set` configured (licensing mode and version);
/// --host-version stands for a host of another version for this request.
///
/// An admitted client then signs in, as a real connection's user does once the session is
/// active: the session host reports it and a temporary CAL the client holds is validated,
/// so the license server may upgrade it at the next request. --no-sign-in is a client that
/// leaves before (a failed logon): its temporary CAL stays unvalidated and is not upgraded.
///
/// Always answers one JSON object: {"outcome": "temporary"|"permanent"|"renewed"|"valid"|
/// "refused", "expires_at": RFC 3339 or null, "reason": null or why it was refused
/// ("temporary_expired_none_free", "temporary_expired_not_validated", "grace_period_over",
/// "wrong_license_type", "expired", "hwid_mismatch"), "license_id": the license the client
/// holds or null, "validated": whether this sign-in validated a temporary CAL, "now",
/// "cal_file": FILE when --out was written}.
///
/// The first request creates the license server's 2048-bit signing key in the data
/// directory (license_server_key.pem) if there is none, which takes a moment.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(super) struct RequestArgs {
    /// The client's CLIENT_HARDWARE_ID: 20 bytes in hex (`:` or spaces between bytes
    /// allowed). Per device, this is the client's identity.
    #[arg(long, value_name = "HEX", value_parser = parse_hwid)]
    hwid: [u8; 20],
    /// The client's machine name. With --cal, defaults to the name in the CAL (a License
    /// Info carries none).
    #[arg(long, value_name = "M", value_parser = parse_name, required_unless_present = "cal")]
    machine: Option<String>,
    /// The user signing in (per user, the identity). With --cal, defaults to the user in the
    /// CAL.
    #[arg(long, value_name = "U", value_parser = parse_name, required_unless_present = "cal")]
    user: Option<String>,
    /// The session host's Windows version for this request (default: the configured host's).
    #[arg(long, value_enum, value_name = "V")]
    host_version: Option<WindowsVersion>,
    /// The CAL the client presents.
    #[arg(long, value_name = "FILE")]
    cal: Option<PathBuf>,
    /// Where to write the CAL the client receives (its PKCS#7 DER, the bytes the protocol
    /// carries as pbLicenseInfo), when one is issued; left alone otherwise.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// The client leaves before signing in: its temporary CAL is not validated.
    #[arg(long)]
    no_sign_in: bool,
}

/// A presented CAL as the session host reads it from a License Info.
struct Presented {
    cal: PresentedCal,
    hwid: [u8; 20],
    machine: String,
    user: String,
}

pub(super) fn run(context: &Context<'_>, args: &RequestArgs) -> CommandResult {
    let presented = args.cal.as_deref().map(read_cal).transpose()?;
    if let Some(out) = &args.out {
        check_writable(out)?;
    }
    let named = |given: &Option<String>, from_cal: Option<&String>| {
        given.clone().or_else(|| from_cal.cloned()).ok_or_else(|| {
            Failure::invalid(anyhow!("--machine and --user are required without --cal"))
        })
    };
    let machine = named(&args.machine, presented.as_ref().map(|p| &p.machine))?;
    let user = named(&args.user, presented.as_ref().map(|p| &p.user))?;

    let host = {
        let store = Store::open(context.data)?;
        let configured = store.session_host()?;
        HostInfo {
            version: args.host_version.unwrap_or(configured.version),
            mode: configured.licensing_mode,
        }
    };
    let mut server = LicenseServer::open(context.data, host)?;
    let now = server.now()?;
    server.store().record_host_first_use(now)?;

    let (outcome, cal) = match &presented {
        // The protocol checks the CAL's HWID against the one the client sent before the
        // license server sees it.
        Some(presented) if presented.hwid != args.hwid => (Answered::HwidMismatch, None),
        _ => {
            let request = LicenseRequest {
                host,
                hardware_id: args.hwid,
                machine,
                user: user.clone(),
                presented: presented.as_ref().map(|p| p.cal.clone()),
            };
            let granted = decide(&mut server, &request, now)?;
            (Answered::RequestOutcome(granted.outcome), granted.cal)
        }
    };

    let written = match (&args.out, cal) {
        (Some(out), Some(cal)) => {
            std::fs::write(out, cal).with_context(|| {
                format!(
                    "the decision is recorded, but {} could not be written",
                    out.display()
                )
            })?;
            Some(out.display().to_string())
        }
        _ => None,
    };
    let license_id = match &outcome {
        Answered::RequestOutcome(RequestOutcome::Valid { expires_at }) => {
            let holder = match host.mode {
                LicensingMode::PerDevice => Holder::HardwareId(args.hwid),
                LicensingMode::PerUser => Holder::User(user),
            };
            held_license(&server, &holder, *expires_at)?
                .or_else(|| presented.as_ref().and_then(|p| p.cal.license_id))
        }
        _ => None,
    };
    let validated = match (&outcome, host.mode) {
        (Answered::RequestOutcome(admitted), LicensingMode::PerDevice) if !args.no_sign_in => {
            match license_to_validate(admitted, license_id) {
                Some(license_id) => server.record_validation(license_id, &args.hwid)?,
                None => false,
            }
        }
        _ => false,
    };
    super::super::print_out(&format!(
        "{}\n",
        document(&outcome, license_id, validated, now, written)
    ));
    Ok(())
}

/// What the client is answered: the license server's outcome, or the protocol's own refusal.
enum Answered {
    RequestOutcome(RequestOutcome),
    HwidMismatch,
}

/// The session host's path: a New License Request is decided and recorded at once; a
/// presented CAL is first assessed without writing (valid as it is, or refused: nothing is
/// recorded), and only an upgrade or renewal is decided and recorded — after the platform
/// challenge, in the protocol.
fn decide(
    server: &mut LicenseServer,
    request: &LicenseRequest,
    now: SystemTime,
) -> Result<Granted, Failure> {
    if request.presented.is_some() {
        let assessed = server.assess(request, now)?;
        if matches!(
            assessed,
            RequestOutcome::Valid { .. } | RequestOutcome::Refused { .. }
        ) {
            return Ok(Granted {
                outcome: assessed,
                cal: None,
            });
        }
    }
    Ok(server.decide(request, now)?)
}

/// The license a sign-in after `outcome` may validate: the temporary CAL just issued, or the
/// license a client answered "valid" holds (`valid_license`), which the store validates only if
/// it is a temporary CAL. A new permanent CAL needs no validation.
fn license_to_validate(outcome: &RequestOutcome, valid_license: Option<u32>) -> Option<u32> {
    match *outcome {
        RequestOutcome::Temporary { license_id, .. } => Some(license_id),
        RequestOutcome::Valid { .. } => valid_license,
        _ => None,
    }
}

/// The license a client answered "valid" holds: the holder's newest license expiring then.
fn held_license(
    server: &LicenseServer,
    holder: &Holder,
    expires_at: SystemTime,
) -> Result<Option<u32>, Failure> {
    Ok(server
        .store()
        .holder_licenses(holder)?
        .iter()
        .find(|row| row.expiration_date == expires_at)
        .map(|row| row.license_id))
}

fn read_cal(path: &Path) -> Result<Presented, Failure> {
    let bytes = crate::command::read_input(path, MAX_CAL_BYTES)?;
    let (_, cal) = parse_cal_container(&bytes)
        .map_err(|error| Failure::invalid(anyhow!("{}: not a CAL: {error}", path.display())))?;
    Ok(Presented {
        cal: presented_cal(&cal),
        hwid: cal.client_license.hwid.to_bytes(),
        machine: cal.client_license.machine,
        user: cal.client_license.user,
    })
}

/// Refuses an --out whose directory does not exist before anything is recorded.
fn check_writable(out: &Path) -> Result<(), Failure> {
    let parent = out
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if parent.is_dir() {
        Ok(())
    } else {
        Err(Failure::invalid(anyhow!(
            "--out {}: no directory {}",
            out.display(),
            parent.display()
        )))
    }
}

fn reason_code(reason: LicenseRefusal) -> &'static str {
    match reason {
        LicenseRefusal::TemporaryExpiredNoneFree => "temporary_expired_none_free",
        LicenseRefusal::TemporaryExpiredNotValidated => "temporary_expired_not_validated",
        LicenseRefusal::GracePeriodOver => "grace_period_over",
        LicenseRefusal::WrongLicenseType => "wrong_license_type",
        LicenseRefusal::Expired => "expired",
    }
}

fn document(
    outcome: &Answered,
    valid_license: Option<u32>,
    validated: bool,
    now: SystemTime,
    cal_file: Option<String>,
) -> Value {
    let (name, expires_at, reason, license_id) = match outcome {
        Answered::HwidMismatch => ("refused", None, Some("hwid_mismatch"), None),
        Answered::RequestOutcome(outcome) => match *outcome {
            RequestOutcome::Temporary {
                license_id,
                expires_at,
            } => ("temporary", Some(expires_at), None, Some(license_id)),
            RequestOutcome::Permanent {
                license_id,
                expires_at,
            } => ("permanent", Some(expires_at), None, Some(license_id)),
            RequestOutcome::Renewed {
                license_id,
                expires_at,
            } => ("renewed", Some(expires_at), None, Some(license_id)),
            RequestOutcome::Valid { expires_at } => {
                ("valid", Some(expires_at), None, valid_license)
            }
            RequestOutcome::Refused { reason } => {
                ("refused", None, Some(reason_code(reason)), None)
            }
        },
    };
    json!({
        "outcome": name,
        "expires_at": expires_at.map(instant),
        "reason": reason,
        "license_id": license_id,
        "validated": validated,
        "now": instant(now),
        "cal_file": cal_file,
    })
}

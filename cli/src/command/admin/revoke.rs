//! `rdpele admin revoke`: Win32_TSIssuedLicense.Revoke — give a device's permanent CAL back to
//! the pool, within the 20 % rule ([`revocation`]).

use std::fmt::Write as _;
use std::time::SystemTime;

use anyhow::anyhow;
use clap::{ArgGroup, Args};
use serde_json::json;

use super::args::{instant, parse_hwid, parse_name};
use super::{answer, CommandResult, Context, Failure};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{IssuedLicense, LicenseStatus, WindowsVersion};
use rdpele_license_server::policy::revocation::{self, revocation_headroom, RevokeRefusal};
use rdpele_license_server::store::{self, RevokeTarget, Store};

/// Revoke a device's per-device CAL.
///
/// The license goes back to the pool at once, while the device keeps using the CAL it holds
/// until that expires.
///
/// The device is named by its HWID or by the machine name its CAL was first issued to (as
/// RD Licensing Manager lists it; a name may cover several devices). Only an active,
/// unexpired permanent per-device CAL can be revoked, and at most 20 % of the installed
/// per-device CALs of its version (at least one) may be revoked at a time: the next can be
/// revoked when one of those expires (NextRevokeAllowedOn).
///
/// Answers the revoked license ids, RevokableCals (how many more CALs of that version can be
/// revoked now) and NextRevokeAllowedOn (now while RevokableCals is above 0). Refused (exit 3)
/// when nothing could be revoked, with the reason.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
#[command(group(ArgGroup::new("target").required(true).args(["hwid", "machine"])))]
pub(super) struct RevokeArgs {
    /// The device's CLIENT_HARDWARE_ID: 20 bytes in hex (`:` or spaces between bytes allowed).
    #[arg(long, value_name = "HEX", value_parser = parse_hwid)]
    hwid: Option<[u8; 20]>,
    /// The machine name the CAL was first issued to (case-insensitive).
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    machine: Option<String>,
}

/// What one revocation did.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    /// The target's licenses (any status).
    found: usize,
    pub(crate) revoked: Vec<IssuedLicense>,
    refused: Vec<(u32, RevokeRefusal)>,
    /// RevokableCals and NextRevokeAllowedOn, for the version of the revoked CALs.
    limit: Option<(WindowsVersion, u32, SystemTime)>,
}

pub(super) fn run(context: &Context<'_>, args: &RevokeArgs) -> CommandResult {
    let (target, named) = match (&args.hwid, &args.machine) {
        (Some(hwid), _) => (
            RevokeTarget::HardwareId(*hwid),
            format!("HWID {}", hex::encode(hwid)),
        ),
        (None, Some(machine)) => (
            RevokeTarget::Machine(machine.clone()),
            format!("machine {machine}"),
        ),
        (None, None) => {
            return Err(Failure::invalid(anyhow!("give --hwid or --machine")));
        }
    };
    let store = Store::open(context.data)?;
    let now = Clock::system().now(&store)?;
    let answer_of = store.revoke(&target, now, decide)?;
    if answer_of.revoked.is_empty() {
        return Err(Failure::refused(refusal(&answer_of, &named)));
    }
    let (version, revokable, next) = answer_of
        .limit
        .ok_or_else(|| anyhow!("the revocation limit was not computed"))?;
    let ids: Vec<u32> = answer_of.revoked.iter().map(|row| row.license_id).collect();
    let not_revoked: Vec<_> = answer_of
        .refused
        .iter()
        .map(|(license_id, why)| json!({ "license_id": license_id, "reason": why.to_string() }))
        .collect();
    let document = json!({
        "revoked": ids,
        "product_version": version.as_str(),
        "RevokableCals": revokable,
        "NextRevokeAllowedOn": instant(next),
        "not_revoked": not_revoked,
    });
    answer(context, &document, || {
        let mut out = String::new();
        for row in &answer_of.revoked {
            let _ = writeln!(
                out,
                "revoked license {} ({}, HWID {}), held until {}",
                row.license_id,
                row.issued_to_computer,
                hex::encode(row.hardware_id),
                instant(row.expiration_date)
            );
        }
        for (license_id, why) in &answer_of.refused {
            let _ = writeln!(out, "not revoked: license {license_id}: {why}");
        }
        let _ = writeln!(
            out,
            "RevokableCals {revokable} ({} per-device), NextRevokeAllowedOn {}",
            version.as_str(),
            instant(next)
        );
        out
    });
    Ok(())
}

/// The revocation, inside the store's transaction: every active CAL of the target is offered
/// to the policy in turn (each one revoked counting against the next), or, if it has none,
/// its newest license, so the refusal says why.
pub(crate) fn decide(snapshot: &store::RevocationSnapshot) -> store::Revocation<Answer> {
    let mut policy_snapshot = revocation::RevocationLimitSnapshot {
        now: snapshot.now,
        packs: snapshot
            .packs
            .iter()
            .map(|usage| usage.pack.clone())
            .collect(),
        revoked: snapshot.revoked.clone(),
    };
    let active: Vec<&IssuedLicense> = snapshot
        .targets
        .iter()
        .filter(|row| row.status == LicenseStatus::Active)
        .collect();
    let candidates = if active.is_empty() {
        snapshot.targets.iter().take(1).collect()
    } else {
        active
    };
    let mut answer = Answer {
        found: snapshot.targets.len(),
        ..Answer::default()
    };
    let mut changes = Vec::new();
    for license in candidates {
        match revocation::revoke(license, &policy_snapshot) {
            Ok(granted) => {
                changes.push(granted.change());
                let mut row = license.clone();
                granted.apply(&mut row);
                policy_snapshot.revoked.push(row.clone());
                answer.revoked.push(row);
            }
            Err(refusal) => answer.refused.push((license.license_id, refusal)),
        }
    }
    answer.limit = answer
        .revoked
        .first()
        .map(|row| limit(&policy_snapshot, row.product_version));
    store::Revocation { answer, changes }
}

/// RevokableCals and NextRevokeAllowedOn for per-device CALs of `version`, once the
/// revocation is applied.
fn limit(
    snapshot: &revocation::RevocationLimitSnapshot,
    version: WindowsVersion,
) -> (WindowsVersion, u32, SystemTime) {
    let (revokable, next) = revocation_headroom(snapshot, version);
    (version, revokable, next)
}

/// Why nothing was revoked, in one line.
fn refusal(answer: &Answer, named: &str) -> anyhow::Error {
    match answer.refused.first() {
        None if answer.found == 0 => anyhow!("no CAL was ever issued to {named}"),
        None => anyhow!("{named} holds no CAL that can be revoked"),
        Some((license_id, why)) => match why {
            RevokeRefusal::LimitReached {
                next_revoke_allowed_on,
                ..
            } => anyhow!(
                "license {license_id} of {named}: {why}; NextRevokeAllowedOn {}",
                instant(*next_revoke_allowed_on)
            ),
            _ => anyhow!("license {license_id} of {named}: {why}"),
        },
    }
}

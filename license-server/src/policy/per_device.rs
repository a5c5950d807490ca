//! The per-device rules: what the license server answers a device.
//!
//! # Rules
//!
//! Quotes are from *[CAL]* unless another page is named.
//!
//! - **First logon → temporary CAL, 90 days, unlimited.** "A temporary license is issued the
//!   first time a device connects to a session host"; "Temporary RDS CALs are assigned on first
//!   sign-in per device and are valid for 90 days." It is taken from no pack (`key_pack_id`
//!   `None`), so there is no limit on how many are issued, and it carries the host's version.
//!   [`TEMPORARY_LIFETIME`].
//! - **Next logon → permanent CAL, if the license server is activated and one is free.** "The
//!   next time that device connects, as long as the license server is activated and there are
//!   available RDS CALs, the license server upgrades the temporary RDS CAL token to a full RDS
//!   CAL token and issues a permanent per device RDS CAL." The temporary row becomes Superseded.
//!   The protocol has validated the presented temporary CAL (its MAC and HWID) before the policy
//!   sees it. A compatible pack is one of type per device whose version serves the host
//!   ([`super::versions`]) with a free license.
//! - **Only a validated temporary CAL is upgraded.** The session host reports a sign-in
//!   completed with a temporary CAL (the session reached the active state) and the license
//!   server marks it validated ([`IssuedLicense::validated_at`]); a device whose temporary CAL
//!   was never validated keeps it at its next logon. "After a user has provided valid
//!   credentials resulting in a successful logon, the terminal server instructs the license
//!   server to mark the issued temporary token as validated" ("How Terminal Services
//!   Licensing Works", exchadtech.blogspot.com, 2011; likewise B. Tritsch, "Windows Server 2003
//!   Terminal Services Licensing", wtstek.com, 2006: "only temporary licenses that are not
//!   marked valid behave like standard 90-day temporary licenses"); DESIGN §5. *Choice:* a
//!   temporary CAL the license server has no row for (another license server's) has no
//!   validation to check and is upgraded as before; one never validated by its day 90 is
//!   refused ([`LicenseRefusal::TemporaryExpiredNotValidated`]), as any temporary CAL that
//!   could not be upgraded.
//! - **Otherwise the temporary CAL goes on until day 90, then the client is refused.** "If no RDS
//!   CAL tokens are available, the temporary RDS CAL token continues to function for 90 days":
//!   [`RequestOutcome::Valid`] until its expiry, then [`LicenseRefusal::TemporaryExpiredNoneFree`]
//!   (Windows: event 1011, "disconnected because its temporary license has expired"). The upgrade
//!   is tried first on every connection, so the client is refused only when none is free.
//! - **Permanent lifetime: random 52–89 days.** "Permanent RDS CALs are valid for a random period
//!   of 52–89 days before renewal" (also "Manual Revocation of Client Access Licenses", Microsoft
//!   Enterprise Mobility blog, 2008: "issued licenses would automatically expire after a random
//!   period between 52-89 days"). Whole days drawn uniformly from the caller's RNG.
//!   [`PERMANENT_LIFETIME_DAYS`].
//! - **Renewal within 7 days of expiry.** "If the expiration date of the certificate is within
//!   seven days of the current date, the session host connects to the license server to renew
//!   the license for another random period of 52 to 89 days." The renewed CAL comes from the
//!   same pack when it can (the holder's own license counts as free for it), else from any
//!   compatible pack; the old row becomes Superseded; the outcome is
//!   [`RequestOutcome::Renewed`]. When no license is free the CAL stays valid until it expires.
//!   [`RENEWAL_WINDOW`].
//! - **Cannot be over-allocated.** A permanent CAL is only taken from a pack whose Active,
//!   unexpired licenses (the store's `in_use`) are fewer than its total.
//! - **Expired CALs return to the pool.** A permanent CAL past its expiration date no longer
//!   counts (the store counts Active *and unexpired* rows); the policy marks the holder's
//!   expired rows Expired when it sees them. A device presenting an expired permanent CAL gets a
//!   new permanent one if one is free, else [`LicenseRefusal::Expired`]. *Choice:* it gets no
//!   second temporary CAL — that is the first logon's alone.
//! - **Revoked CALs.** "After you have revoked the RDS Per Device CAL, that RDS Per Device CAL
//!   is immediately available to be issued to another client" (Windows Server 2008 R2 TechNet,
//!   "Revoke an RDS Per Device CAL"), while the device keeps the CAL it was given: DESIGN §5 "the
//!   client keeps its CAL until it expires (100 CALs can briefly have 120 holders)". A revoked
//!   row (status Revoked) does not count against its pack; its holder is answered
//!   [`RequestOutcome::Valid`] until the expiration date, renewed within 7 days of it only if a
//!   license is free, and refused ([`LicenseRefusal::Expired`]) after it unless one is free.
//! - **Identity: the HWID, not the computer name.** The snapshot's holder rows are the device's
//!   by hardware id; `issued_to_computer` is copied from the holder's earliest row, so Licensing
//!   Manager keeps showing the name the device had when it was first licensed, even after a
//!   rename (DESIGN §5). A device that deletes its MSLicensing keys has a new HWID: a new device.
//! - **Per product version.** Only the holder's CALs that serve the host count
//!   ([`super::versions`]): a presented CAL older than the host is looked up as no CAL, a device
//!   whose CALs on record are all older is on its first logon for the host's version, and a
//!   new CAL supersedes only the holder's CALs of versions from the host's up to its own, so a
//!   CAL an older host gave stays live for it, and so does a newer CAL a newer host gave.
//! - **A device that presents no CAL but is known by its HWID** (it lost its stored CAL) is
//!   answered from its record, as if it had presented its newest CAL: an unexpired temporary or
//!   permanent CAL is issued again with the *same* expiration date (a fresh row, the old one
//!   Superseded — no new lifetime, no extra license), after the upgrade or renewal rule had its
//!   chance; an expired record is refused as above. *Choice:* a New License Request cannot reset
//!   the 90 days, which is what "identity by HWID" means for a license server.
//!
//! [CAL]: https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license
//! [`RequestOutcome::Valid`]: crate::model::RequestOutcome::Valid
//! [`RequestOutcome::Renewed`]: crate::model::RequestOutcome::Renewed
//! [`LicenseRefusal::TemporaryExpiredNoneFree`]: crate::model::LicenseRefusal::TemporaryExpiredNoneFree
//! [`LicenseRefusal::Expired`]: crate::model::LicenseRefusal::Expired
//! [`LicenseRefusal::TemporaryExpiredNotValidated`]: crate::model::LicenseRefusal::TemporaryExpiredNotValidated
//! [`IssuedLicense::validated_at`]: crate::model::IssuedLicense::validated_at

use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime};

use rand::{Rng, RngExt};

use super::versions::{choose_pack, serves};
use super::{days, expires_within, has_expired, holder_rows, later, newest, Plan};
use crate::decision::{PolicyDecision, Snapshot};
use crate::model::{
    IssuedLicense, LicenseRefusal, LicenseRequest, LicenseStatus, LicensingMode, RequestOutcome,
};

/// How long a temporary CAL lasts.
pub const TEMPORARY_LIFETIME: Duration = days(90);

/// The lifetime of a permanent CAL, in whole days, drawn uniformly.
pub const PERMANENT_LIFETIME_DAYS: RangeInclusive<u64> = 52..=89;

/// A permanent CAL presented this close to its expiry is renewed.
pub const RENEWAL_WINDOW: Duration = days(7);

const MODE: LicensingMode = LicensingMode::PerDevice;

/// The CAL a decision is about: the one presented if it serves the host, or else the holder's
/// newest on record that does.
struct Held<'a> {
    temporary: bool,
    expires_at: SystemTime,
    /// The row it is, if it is on record.
    row: Option<&'a IssuedLicense>,
    /// Presented by the client (false: reconstructed from the record).
    presented: bool,
}

/// The per-device answer to `request` (whose host must be in per-device mode).
pub fn decide<R: Rng + ?Sized>(
    request: &LicenseRequest,
    snapshot: &Snapshot,
    rng: &mut R,
) -> PolicyDecision {
    let now = snapshot.now;
    let mut plan = Plan::new(snapshot, MODE, Some(request.host.version));
    if request
        .presented
        .as_ref()
        .is_some_and(|presented| presented.license_type != MODE)
    {
        return plan.finish(refused(LicenseRefusal::WrongLicenseType));
    }
    let Some(held) = held(request, snapshot) else {
        return first_logon(plan, request, snapshot);
    };
    if held.temporary {
        let validated = held.row.is_none_or(|row| row.validated_at.is_some());
        if validated {
            if let Some((license_id, expires_at)) =
                issue_permanent(&mut plan, request, snapshot, rng, None)
            {
                return plan.finish(RequestOutcome::Permanent {
                    license_id,
                    expires_at,
                });
            }
        }
        if has_expired(held.expires_at, now) {
            return plan.finish(refused(if validated {
                LicenseRefusal::TemporaryExpiredNoneFree
            } else {
                LicenseRefusal::TemporaryExpiredNotValidated
            }));
        }
        return keep(plan, request, snapshot, &held);
    }
    if has_expired(held.expires_at, now) {
        return match issue_permanent(&mut plan, request, snapshot, rng, None) {
            Some((license_id, expires_at)) => plan.finish(RequestOutcome::Permanent {
                license_id,
                expires_at,
            }),
            None => plan.finish(refused(LicenseRefusal::Expired)),
        };
    }
    if expires_within(held.expires_at, now, RENEWAL_WINDOW) {
        let same_pack = held.row.and_then(|row| row.key_pack_id);
        if let Some((license_id, expires_at)) =
            issue_permanent(&mut plan, request, snapshot, rng, same_pack)
        {
            return plan.finish(RequestOutcome::Renewed {
                license_id,
                expires_at,
            });
        }
    }
    keep(plan, request, snapshot, &held)
}

fn refused(reason: LicenseRefusal) -> RequestOutcome {
    RequestOutcome::Refused { reason }
}

/// The CAL the decision is about, or `None` for a device with no CAL on record for a version
/// that serves the host (its first logon there).
fn held<'a>(request: &LicenseRequest, snapshot: &'a Snapshot) -> Option<Held<'a>> {
    let host = request.host.version;
    match &request.presented {
        Some(presented) if serves(presented.product_version, host) => {
            let row = presented.license_id.and_then(|license_id| {
                holder_rows(snapshot, MODE).find(|row| row.license_id == license_id)
            });
            Some(Held {
                temporary: presented.temporary,
                expires_at: row.map_or(presented.not_after, |row| row.expiration_date),
                row,
                presented: true,
            })
        }
        _ => {
            let row = newest(holder_rows(snapshot, MODE), |row| {
                row.status != LicenseStatus::Superseded && serves(row.product_version, host)
            })?;
            Some(Held {
                temporary: row.key_pack_id.is_none(),
                expires_at: row.expiration_date,
                row: Some(row),
                presented: false,
            })
        }
    }
}

/// The name the device had when first licensed (its earliest row), else the one it gives now.
fn first_issue_name(request: &LicenseRequest, snapshot: &Snapshot) -> String {
    holder_rows(snapshot, MODE)
        .min_by_key(|row| (row.issue_date, row.license_id))
        .map_or_else(
            || request.machine.clone(),
            |row| row.issued_to_computer.clone(),
        )
}

/// A device never seen: a 90-day temporary CAL from no pack.
fn first_logon(
    mut plan: Plan<'_>,
    request: &LicenseRequest,
    snapshot: &Snapshot,
) -> PolicyDecision {
    let now = snapshot.now;
    let expires_at = later(now, TEMPORARY_LIFETIME);
    let license_id = plan.issue(IssuedLicense {
        license_id: 0,
        key_pack_id: None,
        license_type: MODE,
        issued_to_user: request.user.clone(),
        issued_to_computer: first_issue_name(request, snapshot),
        hardware_id: request.hardware_id,
        issue_date: now,
        expiration_date: expires_at,
        status: LicenseStatus::Temporary,
        revoked_at: None,
        product_version: request.host.version,
        validated_at: None,
    });
    plan.finish(RequestOutcome::Temporary {
        license_id,
        expires_at,
    })
}

/// Takes a permanent CAL with a random 52–89-day lifetime from a compatible pack with a free
/// license (`prefer` first), superseding the holder's live CALs; `None` if none is free or the
/// license server is unactivated. The RNG is drawn from only when a CAL is issued.
fn issue_permanent<R: Rng + ?Sized>(
    plan: &mut Plan<'_>,
    request: &LicenseRequest,
    snapshot: &Snapshot,
    rng: &mut R,
    prefer: Option<u32>,
) -> Option<(u32, SystemTime)> {
    let pack = choose_pack(snapshot, MODE, request.host.version, prefer)?;
    let now = snapshot.now;
    let lifetime = days(rng.random_range(PERMANENT_LIFETIME_DAYS));
    let expires_at = later(now, lifetime);
    let license_id = plan.issue(IssuedLicense {
        license_id: 0,
        key_pack_id: Some(pack.key_pack_id),
        license_type: MODE,
        issued_to_user: request.user.clone(),
        issued_to_computer: first_issue_name(request, snapshot),
        hardware_id: request.hardware_id,
        issue_date: now,
        expiration_date: expires_at,
        status: LicenseStatus::Active,
        revoked_at: None,
        product_version: pack.product_version,
        validated_at: None,
    });
    Some((license_id, expires_at))
}

/// The held CAL stays as it is: [`RequestOutcome::Valid`] if the client presented it; if it
/// presented none, the live CAL on record is issued again with the same expiration date (a
/// revoked one is not: its holder is admitted without a new CAL until it expires).
fn keep(
    mut plan: Plan<'_>,
    request: &LicenseRequest,
    snapshot: &Snapshot,
    held: &Held<'_>,
) -> PolicyDecision {
    let valid = RequestOutcome::Valid {
        expires_at: held.expires_at,
    };
    if held.presented {
        return plan.finish(valid);
    }
    let Some(row) = held.row else {
        return plan.finish(valid);
    };
    if !matches!(row.status, LicenseStatus::Temporary | LicenseStatus::Active) {
        return plan.finish(valid);
    }
    let expires_at = row.expiration_date;
    let license_id = plan.issue(IssuedLicense {
        license_id: 0,
        issued_to_user: request.user.clone(),
        issued_to_computer: first_issue_name(request, snapshot),
        hardware_id: request.hardware_id,
        issue_date: snapshot.now,
        revoked_at: None,
        ..row.clone()
    });
    let outcome = if row.status == LicenseStatus::Temporary {
        RequestOutcome::Temporary {
            license_id,
            expires_at,
        }
    } else {
        RequestOutcome::Permanent {
            license_id,
            expires_at,
        }
    };
    plan.finish(outcome)
}

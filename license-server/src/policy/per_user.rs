//! The per-user rules: what the license server records for a user.
//!
//! # Rules
//!
//! Quotes are from *[CAL]* unless another page is named.
//!
//! - **Nothing on the client.** Per-user CALs are not issued to the device (DESIGN §5): the
//!   record lives on the license server only, and the session host answers the user with
//!   STATUS_VALID_CLIENT, leaving whatever CAL the device holds untouched
//!   (`crate::server`, which hands CALs out only for per-device rows).
//! - **No temporary CALs.** "Temporary RDS CALs aren't available" per user: the first sign-in
//!   records the user at once.
//! - **Not enforced: from the pool, or OverUsed.** "When you use the per user model, licensing
//!   isn't enforced … The license server issues an RDS CAL from the available pool or the
//!   overused RDS CAL pool." A user is recorded against a per-user pack that serves the host and
//!   has a free license; when none has, the record is OverUsed: an Active row with
//!   `key_pack_id` `None` (reports count those as the OverUsed pool). A per-user request is never
//!   refused for lack of CALs — nor for their version, which is a lack of CALs of the right
//!   version ([`super::versions`]).
//! - **Shown as 60 days, extended at sign-in.** "Per user RDS CALs show as expiring 60 days after
//!   they're issued. Shortly before their expiration date, when the user signs in, the date is
//!   extended another 60 days." *Choice:* "shortly before" is the per-device renewal window,
//!   7 days ([`EXTENSION_WINDOW`]); the extension is a new record dated from the sign-in
//!   (expiring 60 days after it, so every record shows 60 days from its issue), the old one
//!   Superseded; it keeps its pack when it can, and an OverUsed user moves into a pack if one has
//!   a free license by then (the outcome is [`RequestOutcome::Renewed`]). Between those times a
//!   sign-in is [`RequestOutcome::Valid`] until the record's expiry. [`SHOWN_LIFETIME`].
//! - **A lapsed user drops off and reappears.** "If a user doesn't sign in before the expiration
//!   date, they drop off the list, but the next time they sign in they show up again with a new
//!   expiration date." The lapsed record is marked Expired (its license back in the pool) and the
//!   next sign-in records the user anew ([`RequestOutcome::Permanent`]).
//! - **No revocation.** "You can't revoke any RDS CALs" per user; see [`super::revocation`].
//! - **90 days before reassignment.** "For most license agreements, 90 days is the more relevant
//!   time period, because it's the minimum time required before a license can be reassigned to a
//!   different user, except under special circumstances." [`REASSIGNMENT_MINIMUM`]. What it means
//!   for the pool: nothing the license server enforces. It is a term of the licence agreement,
//!   and the server's pool follows the 60-day records — a lapsed user's license is free again
//!   the moment the record expires ("expired licenses are placed back into the CAL pool and
//!   allocated to the next user that needs one", MicrosoftDocs/windowsserverdocs#3371), so a
//!   pack can show a license free up to 30 days before the agreement allows giving it to someone
//!   else. Staying within the agreement (enough CALs, zero OverUsed) is the administrator's job,
//!   which is why the reports show the OverUsed count. The emulator reproduces the server.
//! - **Unactivated license server.** *Choice:* an unactivated license server issues no CAL from
//!   its packs ("You must activate a license server before it can issue RDS CALs", Microsoft
//!   Activation FAQ, <https://activate.microsoft.com/Faq.aspx>; while waiting it "can issue
//!   temporary CALs", which per-user licensing does not have). Because per-user licensing is not
//!   enforced the user is still admitted, recorded as OverUsed.
//! - **Identity: the user account** (the snapshot's holder rows are the user's, by name). The
//!   record carries the machine and HWID of the sign-in that created it. A CAL the device
//!   presents plays no part (Windows tracks per-user CALs on the user object in Active
//!   Directory, `msTSExpireDate`/`msTSLicenseVersion`, not on the device).
//!
//! [CAL]: https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license
//! [`RequestOutcome::Valid`]: crate::model::RequestOutcome::Valid
//! [`RequestOutcome::Renewed`]: crate::model::RequestOutcome::Renewed
//! [`RequestOutcome::Permanent`]: crate::model::RequestOutcome::Permanent

use std::time::{Duration, SystemTime};

use super::versions::{choose_pack, serves};
use super::{days, expires_within, has_expired, holder_rows, later, newest, Plan};
use crate::decision::{PolicyDecision, Snapshot};
use crate::model::{IssuedLicense, LicenseRequest, LicenseStatus, LicensingMode, RequestOutcome};

/// How long a per-user record is shown as valid from its issue.
pub const SHOWN_LIFETIME: Duration = days(60);

/// A sign-in this close to the record's expiry extends it.
pub const EXTENSION_WINDOW: Duration = days(7);

/// The licence agreement's minimum before a per-user CAL may be reassigned to another user
/// (documentation only: the license server does not enforce it).
pub const REASSIGNMENT_MINIMUM: Duration = days(90);

const MODE: LicensingMode = LicensingMode::PerUser;

/// The per-user answer to `request` (whose host must be in per-user mode). Never a refusal.
pub fn decide(request: &LicenseRequest, snapshot: &Snapshot) -> PolicyDecision {
    let now = snapshot.now;
    let mut plan = Plan::new(snapshot, MODE, None);
    let current = newest(holder_rows(snapshot, MODE), |row| {
        row.status == LicenseStatus::Active && !has_expired(row.expiration_date, now)
    });
    match current {
        Some(row) if serves(row.product_version, request.host.version) => {
            if !expires_within(row.expiration_date, now, EXTENSION_WINDOW) {
                return plan.finish(RequestOutcome::Valid {
                    expires_at: row.expiration_date,
                });
            }
            let (license_id, expires_at) = record(&mut plan, request, snapshot, row.key_pack_id);
            plan.finish(RequestOutcome::Renewed {
                license_id,
                expires_at,
            })
        }
        _ => {
            let (license_id, expires_at) = record(&mut plan, request, snapshot, None);
            plan.finish(RequestOutcome::Permanent {
                license_id,
                expires_at,
            })
        }
    }
}

/// Records the user for 60 days against a free compatible pack (`prefer` first), else as
/// OverUsed, superseding the user's live record.
fn record(
    plan: &mut Plan<'_>,
    request: &LicenseRequest,
    snapshot: &Snapshot,
    prefer: Option<u32>,
) -> (u32, SystemTime) {
    let now = snapshot.now;
    let pack = choose_pack(snapshot, MODE, request.host.version, prefer);
    let expires_at = later(now, SHOWN_LIFETIME);
    let license_id = plan.issue(IssuedLicense {
        license_id: 0,
        key_pack_id: pack.map(|pack| pack.key_pack_id),
        license_type: MODE,
        issued_to_user: request.user.clone(),
        issued_to_computer: request.machine.clone(),
        hardware_id: request.hardware_id,
        issue_date: now,
        expiration_date: expires_at,
        status: LicenseStatus::Active,
        revoked_at: None,
        product_version: pack.map_or(request.host.version, |pack| pack.product_version),
        validated_at: None,
    });
    (license_id, expires_at)
}

//! Revocation of per-device CALs (Win32_TSIssuedLicense.Revoke).
//!
//! # Rules
//!
//! - **Only per-device CALs.** "Only RDS Per Device CALs can be revoked" (Revoke method of the
//!   Win32_TSIssuedLicense class,
//!   <https://learn.microsoft.com/windows/win32/termserv/revoke-win32-tsissuedlicense>); "You
//!   can't revoke any RDS CALs" per user (*[CAL]*). Only a permanent CAL that holds a license —
//!   Active and unexpired — can be revoked: a temporary CAL holds none, and an expired,
//!   superseded or already revoked one is already back in the pool.
//! - **At most 20 % of the installed per-device CALs of one version at a time, at least one.**
//!   "You can only revoke 20% of a specific version of a CAL or one CAL, whichever is more. So,
//!   for example, if there are 100 Windows Server 2003 per-device CALs installed, you can revoke
//!   only 20 of them" ("Manual Revocation of Client Access Licenses (CALs)", Microsoft Enterprise
//!   Mobility blog, 2008-02-15,
//!   <https://cloudblogs.microsoft.com/enterprisemobility/2008/02/15/manual-revocation-of-client-access-licenses-cals/>);
//!   "You can only revoke up to twenty percent of the number of RDS Per Device CALs of a
//!   particular version installed on your license server … if you also have 200 Windows Server
//!   2008 R2 RDS Per Device CALs installed …, you can revoke up to 40 of those … in addition to"
//!   the 20 older ones (Windows Server 2008 R2 TechNet, "Revoke an RDS Per Device CAL", read in
//!   a copy of that page). So the limit is **per type and version** — per-device CALs of the
//!   revoked license's version, summed over every pack of that version — not per pack; WMI's
//!   `RevokableCals` is "the number of RDS CALs of the same type as the current object that can
//!   be revoked", type meaning product type and version as the key packs name them. The limit
//!   is ⌊20 % × installed⌋, or 1 if that is 0.
//! - **The window: until a revoked CAL expires.** The limit counts CALs *in the revoked state*:
//!   "Once 20% of the totals CAL are revoked, Admin will have to wait till any of the revoked CAL
//!   expires, so that he can revoke more" (the 2008 blog), and "at any given time" (TechNet). A
//!   revoked CAL stays revoked until its expiration date (its holder keeps using it until then),
//!   so the window is no fixed length: `NextRevokeAllowedOn` is the earliest expiration date
//!   among the revoked, unexpired CALs of that version — the moment one of them leaves the
//!   count. At most 89 days after a revocation, then, as a permanent CAL lives at most 89 days.
//! - **What revocation does.** The row becomes Revoked with `revoked_at` = now: its license is
//!   free again at once (the store's `in_use` counts Active rows only), while the device keeps
//!   being admitted until the CAL's expiration date ([`super::per_device`]).
//!
//! [CAL]: https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license

use std::fmt;
use std::time::SystemTime;

use super::has_expired;
use crate::decision::Change;
use crate::model::{IssuedLicense, KeyPack, LicenseStatus, LicensingMode, WindowsVersion};

/// The share of installed per-device CALs of one version that may be revoked at a time.
pub const REVOCABLE_PERCENT: u32 = 20;

/// What a revocation decision reads (loaded inside the revoking transaction, like a
/// [`Snapshot`](crate::decision::Snapshot)).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationLimitSnapshot {
    pub now: SystemTime,
    /// The installed packs (any type and version; the ones that count are picked here).
    pub packs: Vec<KeyPack>,
    /// The licenses in the revoked state: status Revoked and expiration date still ahead. Rows
    /// outside that (or of another type or version) may be included; they are ignored.
    pub revoked: Vec<IssuedLicense>,
}

/// A granted revocation: the store sets the row's status to Revoked and its `revoked_at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantedRevocation {
    pub license_id: u32,
    pub revoked_at: SystemTime,
    /// RevokableCals: how many more CALs of the same type and version may be revoked now.
    pub revokable_cals: u32,
}

impl GrantedRevocation {
    /// The change for a store applying [`Change`]s: status Revoked, which the store stamps with
    /// the deciding transaction's time — `revoked_at`, the snapshot's `now`.
    pub fn change(&self) -> Change {
        Change::SetStatus {
            license_id: self.license_id,
            status: LicenseStatus::Revoked,
        }
    }

    /// Applies the revocation to the license's row.
    pub fn apply(&self, license: &mut IssuedLicense) {
        license.status = LicenseStatus::Revoked;
        license.revoked_at = Some(self.revoked_at);
    }
}

/// Why a license cannot be revoked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RevokeRefusal {
    /// Per-user CALs cannot be revoked.
    PerUser,
    /// Only an Active permanent CAL holds a license to give back (temporary, superseded and
    /// expired ones do not; a revoked one already has).
    NotActive { status: LicenseStatus },
    /// Its expiration date has passed: it is back in the pool already.
    Expired { expired_at: SystemTime },
    /// 20 % of the installed CALs of its version are revoked: NextRevokeAllowedOn is when the
    /// first of them expires.
    LimitReached {
        version: WindowsVersion,
        limit: u32,
        next_revoke_allowed_on: SystemTime,
    },
}

impl fmt::Display for RevokeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PerUser => write!(f, "per-user CALs cannot be revoked"),
            Self::NotActive { status } => write!(
                f,
                "only an active permanent CAL can be revoked; this one is {status:?}"
            ),
            Self::Expired { .. } => write!(f, "the CAL has expired and is back in the pool"),
            Self::LimitReached { version, limit, .. } => write!(
                f,
                "{limit} {} per-device CALs are already revoked ({REVOCABLE_PERCENT} % of those \
                 installed); the next can be revoked when one of them expires",
                super::versions::version_name(*version)
            ),
        }
    }
}

impl std::error::Error for RevokeRefusal {}

/// Whether `license` may be revoked now, under the 20 % rule for its type and version.
pub fn revoke(
    license: &IssuedLicense,
    snapshot: &RevocationLimitSnapshot,
) -> Result<GrantedRevocation, RevokeRefusal> {
    let now = snapshot.now;
    if license.license_type != LicensingMode::PerDevice {
        return Err(RevokeRefusal::PerUser);
    }
    if license.status != LicenseStatus::Active || license.key_pack_id.is_none() {
        return Err(RevokeRefusal::NotActive {
            status: license.status,
        });
    }
    if has_expired(license.expiration_date, now) {
        return Err(RevokeRefusal::Expired {
            expired_at: license.expiration_date,
        });
    }
    let version = license.product_version;
    let limit = revocation_limit(snapshot, version);
    let revoked: Vec<SystemTime> = in_revoked_state(snapshot, version)
        .filter(|row| row.license_id != license.license_id)
        .map(|row| row.expiration_date)
        .collect();
    let revoked_count = u32::try_from(revoked.len()).unwrap_or(u32::MAX);
    if revoked_count >= limit {
        return Err(RevokeRefusal::LimitReached {
            version,
            limit,
            next_revoke_allowed_on: revoked.into_iter().min().unwrap_or(now),
        });
    }
    Ok(GrantedRevocation {
        license_id: license.license_id,
        revoked_at: now,
        revokable_cals: limit.saturating_sub(revoked_count).saturating_sub(1),
    })
}

/// The per-device CALs of `version` in the revoked state at the snapshot's `now`: revoked and
/// not yet expired, so still counting against the limit.
fn in_revoked_state(
    snapshot: &RevocationLimitSnapshot,
    version: WindowsVersion,
) -> impl Iterator<Item = &IssuedLicense> {
    snapshot.revoked.iter().filter(move |row| {
        row.license_type == LicensingMode::PerDevice
            && row.status == LicenseStatus::Revoked
            && row.product_version == version
            && !has_expired(row.expiration_date, snapshot.now)
    })
}

/// RevokableCals and NextRevokeAllowedOn for per-device CALs of `version`: how many more may
/// be revoked now, and when the next may be (`now` if one may; else when the first revoked
/// one expires).
pub fn revocation_headroom(
    snapshot: &RevocationLimitSnapshot,
    version: WindowsVersion,
) -> (u32, SystemTime) {
    let now = snapshot.now;
    let held: Vec<SystemTime> = in_revoked_state(snapshot, version)
        .map(|row| row.expiration_date)
        .collect();
    let revoked = u32::try_from(held.len()).unwrap_or(u32::MAX);
    let revokable = revocation_limit(snapshot, version).saturating_sub(revoked);
    let next = if revokable > 0 {
        now
    } else {
        held.into_iter().min().unwrap_or(now)
    };
    (revokable, next)
}

/// How many per-device CALs of `version` may be in the revoked state at once: 20 % of those
/// installed (every per-device pack of that version), at least one.
pub fn revocation_limit(snapshot: &RevocationLimitSnapshot, version: WindowsVersion) -> u32 {
    let installed: u64 = snapshot
        .packs
        .iter()
        .filter(|pack| {
            pack.key_pack_type == LicensingMode::PerDevice && pack.product_version == version
        })
        .map(|pack| u64::from(pack.total_licenses))
        .sum();
    let share = installed.saturating_mul(u64::from(REVOCABLE_PERCENT)) / 100;
    u32::try_from(share).unwrap_or(u32::MAX).max(1)
}

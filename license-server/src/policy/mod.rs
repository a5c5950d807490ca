//! The Windows RD Licensing rules, as a pure function of a [`Snapshot`]: no I/O, no clock (`now`
//! is the snapshot's), randomness from the caller's RNG (seed it and every decision replays).
//!
//! [`decide`] answers one client: the session host's licensing mode picks the rule book
//! ([`per_device`] or [`per_user`]), and the answer is a [`PolicyDecision`] — the
//! [`RequestOutcome`] the client sees and the [`Change`]s that make it true, which the store
//! applies in the transaction that loaded the snapshot. Around it: [`install_pack`] (which
//! packs a license server accepts), [`revoke`] (the 20 % rule) and [`grace_period`] (the
//! session host's 120 days without a license server).
//!
//! # The rules and where they come from
//!
//! The rule book is DESIGN §5; each topic module states its rules and cites the Microsoft page
//! they come from. The main source, quoted as *CAL* below and in the modules, is "License
//! Remote Desktop Services with Client Access Licenses (CALs)",
//! <https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license>.
//!
//! - [`per_device`]: temporary CAL on first logon, upgrade, 52–89-day lifetime, renewal within
//!   7 days, no over-allocation, identity by HWID, expired and revoked CALs back in the pool.
//! - [`per_user`]: no temporary CALs, not enforced (OverUsed), 60 days shown, extended at
//!   sign-in, lapsed users drop off, 90 days before reassignment.
//! - [`versions`]: a CAL serves hosts of its version or older; a license server holds packs up
//!   to its own version; which pack a CAL is taken from.
//! - [`revocation`]: at most 20 % of the installed per-device CALs of one version revoked at a
//!   time, the window closing as the revoked CALs expire; per-user CALs cannot be revoked.
//! - [`grace`]: 120 days without a license server, then refusal.
//!
//! Rules common to both modes, decided here:
//! - **One licensing mode per session host** ([`HostInfo::mode`], DESIGN §5: "a session host runs
//!   in one mode only"). A per-device host presented with a CAL that is not a per-device CAL
//!   refuses it with [`LicenseRefusal::WrongLicenseType`]: Windows logs event 1004
//!   (EVENT_CANNOT_ISSUE_LICENSE, "a changed (mismatched) client license … the licensing mode for
//!   the terminal server does not match the type of TS CALs") and the client is not licensed —
//!   <https://technet.microsoft.com/library/cc775148(v=ws.10).aspx>. A per-user host does not look
//!   at the device's CAL at all: per-user CALs are tracked against the user account (in Active
//!   Directory on Windows), so whatever CAL the device carries plays no part.
//! - **Housekeeping**: every decision marks the holder's Temporary/Active rows whose expiration
//!   date has passed as [`LicenseStatus::Expired`] ("expired licenses are placed back into the
//!   pool"), and whenever a holder is given a new CAL its other live CALs (Temporary or Active,
//!   unexpired; per device, those of versions from the host's up to the new CAL's, since the
//!   client keeps one CAL per product version — [`versions`]) become
//!   [`LicenseStatus::Superseded`] in the same decision — a holder never holds two licenses of a
//!   pack, so a client that lost or never stored its CAL cannot drain the pool.
//! - **At most one insert per decision**, with the snapshot's `next_license_id`.
//!
//! [`Snapshot`]: super::decision::Snapshot
//! [`PolicyDecision`]: super::decision::PolicyDecision
//! [`Change`]: super::decision::Change
//! [`RequestOutcome`]: super::model::RequestOutcome
//! [`HostInfo::mode`]: super::model::HostInfo::mode
//! [`LicenseRefusal::WrongLicenseType`]: super::model::LicenseRefusal::WrongLicenseType
//! [`LicenseStatus::Expired`]: super::model::LicenseStatus::Expired
//! [`LicenseStatus::Superseded`]: super::model::LicenseStatus::Superseded

pub mod grace;
pub mod per_device;
pub mod per_user;
pub mod revocation;
pub mod versions;

use std::time::{Duration, SystemTime};

use rand::Rng;

use super::decision::{Change, PolicyDecision, Snapshot};
use super::model::{
    IssuedLicense, LicenseRequest, LicenseStatus, LicensingMode, RequestOutcome, WindowsVersion,
};

pub use grace::{
    admit_without_license_server, grace_period, returns_old_license, GraceState, GRACE_PERIOD,
};
pub use revocation::{
    revoke, GrantedRevocation, RevocationLimitSnapshot, RevokeRefusal, REVOCABLE_PERCENT,
};
pub use versions::{install_pack, serves, InstallError};

/// One day, the unit every licensing period is counted in.
pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// `days` days.
pub const fn days(days: u64) -> Duration {
    Duration::from_secs(days * 24 * 60 * 60)
}

/// What the license server answers `request`, given everything `snapshot` holds. The host's
/// licensing mode picks the rules ([`per_device::decide`] or [`per_user::decide`]).
pub fn decide<R: Rng + ?Sized>(
    request: &LicenseRequest,
    snapshot: &Snapshot,
    rng: &mut R,
) -> PolicyDecision {
    match request.host.mode {
        LicensingMode::PerDevice => per_device::decide(request, snapshot, rng),
        LicensingMode::PerUser => per_user::decide(request, snapshot),
    }
}

/// `time + span`, or `time` itself if that is past what `SystemTime` can hold (never for a real
/// date: the latest licensing period is 90 days).
fn later(time: SystemTime, span: Duration) -> SystemTime {
    time.checked_add(span).unwrap_or(time)
}

/// Whether a CAL expiring at `expires_at` has expired at `now` (its last instant is excluded).
fn has_expired(expires_at: SystemTime, now: SystemTime) -> bool {
    expires_at <= now
}

/// Whether a CAL expiring at `expires_at` is still valid at `now` but within `window` of its
/// end.
fn expires_within(expires_at: SystemTime, now: SystemTime, window: Duration) -> bool {
    !has_expired(expires_at, now) && expires_at <= later(now, window)
}

/// Whether a row holds a license right now: Temporary or Active and not yet expired (Revoked,
/// Expired and Superseded rows hold nothing; Revoked ones are still honoured, see
/// [`per_device`]).
fn is_live(row: &IssuedLicense, now: SystemTime) -> bool {
    matches!(row.status, LicenseStatus::Temporary | LicenseStatus::Active)
        && !has_expired(row.expiration_date, now)
}

/// The holder's rows of one licensing mode (the snapshot's holder list may, depending on the
/// store's query, carry rows of the other mode for the same HWID or user).
fn holder_rows(snapshot: &Snapshot, mode: LicensingMode) -> impl Iterator<Item = &IssuedLicense> {
    snapshot
        .holder
        .iter()
        .filter(move |row| row.license_type == mode)
}

/// The holder's newest row (latest issue date, then highest id) satisfying `keep`.
fn newest<'a>(
    rows: impl Iterator<Item = &'a IssuedLicense>,
    keep: impl Fn(&IssuedLicense) -> bool,
) -> Option<&'a IssuedLicense> {
    rows.filter(|row| keep(row))
        .max_by_key(|row| (row.issue_date, row.license_id))
}

/// The decision being assembled: the changes in order, the single insert's id.
struct Plan<'a> {
    snapshot: &'a Snapshot,
    mode: LicensingMode,
    /// Per device, the host version a new CAL is for: the client files CALs per product
    /// version and keeps the others, so only the holder's CALs that serve this version and are
    /// no newer than the new one are superseded — a newer CAL the device holds for a newer
    /// host stays live for it.
    serving: Option<WindowsVersion>,
    changes: Vec<Change>,
}

impl<'a> Plan<'a> {
    /// A plan that starts with the holder's housekeeping: live-looking rows past their
    /// expiration date become Expired.
    fn new(snapshot: &'a Snapshot, mode: LicensingMode, serving: Option<WindowsVersion>) -> Self {
        let changes = holder_rows(snapshot, mode)
            .filter(|row| {
                matches!(row.status, LicenseStatus::Temporary | LicenseStatus::Active)
                    && has_expired(row.expiration_date, snapshot.now)
            })
            .map(|row| Change::SetStatus {
                license_id: row.license_id,
                status: LicenseStatus::Expired,
            })
            .collect();
        Self {
            snapshot,
            mode,
            serving,
            changes,
        }
    }

    /// Give the holder `license` (its `license_id` is overwritten with the snapshot's
    /// `next_license_id`): every other live row of the holder (per device: of a version from
    /// the host's up to the new CAL's) becomes Superseded, then the row is inserted. Returns
    /// the new id.
    fn issue(&mut self, mut license: IssuedLicense) -> u32 {
        let license_id = self.snapshot.next_license_id;
        let now = self.snapshot.now;
        let superseded: Vec<Change> = holder_rows(self.snapshot, self.mode)
            .filter(|row| is_live(row, now) && self.supersedes(row, license.product_version))
            .map(|row| Change::SetStatus {
                license_id: row.license_id,
                status: LicenseStatus::Superseded,
            })
            .collect();
        self.changes.extend(superseded);
        license.license_id = license_id;
        self.changes.push(Change::Insert(license));
        license_id
    }

    /// Whether a new CAL of version `version` supersedes the holder's live `row`: always, but
    /// per device only a row of a version from the host's up to `version`.
    fn supersedes(&self, row: &IssuedLicense, version: WindowsVersion) -> bool {
        self.serving.is_none_or(|host| {
            versions::serves(row.product_version, host) && row.product_version <= version
        })
    }

    fn finish(self, outcome: RequestOutcome) -> PolicyDecision {
        PolicyDecision {
            outcome,
            changes: self.changes,
        }
    }
}

/// How many licenses of pack `key_pack_id` the holder frees by being given a new CAL: its live
/// rows from that pack, which [`Plan::issue`] supersedes in the same transaction (the store's
/// `in_use` still counts them). Per device too: a row from the pack has the pack's version,
/// the new CAL's, which serves the host ([`Plan::supersedes`]).
fn own_slots(snapshot: &Snapshot, mode: LicensingMode, key_pack_id: u32) -> u32 {
    let count = holder_rows(snapshot, mode)
        .filter(|row| row.key_pack_id == Some(key_pack_id) && is_live(row, snapshot.now))
        .count();
    u32::try_from(count).unwrap_or(u32::MAX)
}

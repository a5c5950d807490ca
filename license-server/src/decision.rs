//! The contract between the policy (pure: decides) and the store (durable: reads and writes).
//!
//! The store opens one write transaction (SQLite `BEGIN IMMEDIATE`), loads a [`Snapshot`] of
//! everything the decision depends on, hands it to the policy, applies the [`PolicyDecision`]'s
//! [`Change`]s and commits. Because the snapshot is read inside the same transaction that
//! applies the changes, two session hosts deciding at once are serialised by SQLite and a pack
//! is never over-allocated.

use std::time::SystemTime;

use super::model::{IssuedLicense, KeyPack, LicenseStatus, RequestOutcome, ServerSettings};

/// A pack and how many of its licenses are held right now (Active and not yet expired;
/// revoked and expired licenses are back in the pool).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackUsage {
    pub pack: KeyPack,
    pub in_use: u32,
}

impl PackUsage {
    pub fn available(&self) -> u32 {
        self.pack.total_licenses.saturating_sub(self.in_use)
    }
}

/// Everything one decision reads, loaded inside the deciding transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub now: SystemTime,
    pub settings: ServerSettings,
    pub packs: Vec<PackUsage>,
    /// Every license ever issued to this holder: per device, by hardware id; per user, by user
    /// name (any status, newest first).
    pub holder: Vec<IssuedLicense>,
    /// The id the next inserted license gets.
    pub next_license_id: u32,
}

/// What the policy wants written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// A new license row; its `license_id` is the snapshot's `next_license_id` (or the next
    /// ones, in order, for several inserts).
    Insert(IssuedLicense),
    /// A license changes status (an upgraded temporary or a renewed permanent becomes
    /// Superseded; an expired one Expired).
    SetStatus {
        license_id: u32,
        status: LicenseStatus,
    },
}

/// The policy's answer: what the client gets, and the changes that make it true.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDecision {
    pub outcome: RequestOutcome,
    pub changes: Vec<Change>,
}

//! The contract between the policy (pure: decides) and the store (durable: reads and writes).
//!
//! The store opens one write transaction (SQLite `BEGIN IMMEDIATE`), loads a [`Snapshot`] of
//! everything the decision depends on, hands it to the policy, applies the [`PolicyDecision`]'s
//! [`Change`]s and commits. Because the snapshot is read inside the same transaction that
//! applies the changes, two session hosts deciding at once are serialised by SQLite and a pack
//! is never over-allocated.

use std::cell::Cell;
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

/// The installed packs with their licenses in use, or not read at all.
///
/// Counting a pack's licenses in use walks the index entries of every active one (SQLite has no
/// range count in O(log n)), so it grows with the pool; and an assessment of a CAL inside its
/// validity never looks at the pool. So the store reads an assessment's snapshot without the
/// packs, lets the policy decide, and reads them and lets it decide again only if it asked for
/// them ([`Packs::asked_unread`]). A decision that writes always has them read: its changes are
/// checked against them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packs {
    usage: Option<Vec<PackUsage>>,
    /// Set by [`Packs::usage`] on unread packs. A clone notes its own asks, not the original's.
    asked_unread: Cell<bool>,
}

impl Packs {
    pub fn read(usage: Vec<PackUsage>) -> Packs {
        Packs {
            usage: Some(usage),
            asked_unread: Cell::new(false),
        }
    }

    pub fn unread() -> Packs {
        Packs::default()
    }

    /// The packs as read. Unread packs show none, and note that they were asked for: an answer
    /// given on them may be wrong, and [`Packs::asked_unread`] says so.
    pub fn usage(&self) -> &[PackUsage] {
        match &self.usage {
            Some(usage) => usage,
            None => {
                self.asked_unread.set(true);
                &[]
            }
        }
    }

    /// The packs as read, to change; `None` when not read.
    pub fn usage_mut(&mut self) -> Option<&mut Vec<PackUsage>> {
        self.usage.as_mut()
    }

    pub fn is_read(&self) -> bool {
        self.usage.is_some()
    }

    /// Whether a decision asked for these packs while they were not read: its answer holds only
    /// if decided again on read packs.
    pub fn asked_unread(&self) -> bool {
        self.asked_unread.get()
    }
}

/// Everything one decision reads, loaded inside the deciding transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub now: SystemTime,
    pub settings: ServerSettings,
    pub packs: Packs,
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

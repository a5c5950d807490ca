//! The license server's durable store: one SQLite database, `license_server.sqlite`, in a data
//! directory that the admin CLI and a running server share.
//!
//! # Transactions
//!
//! Every decision is one transaction ([`Store::decide`]): `BEGIN IMMEDIATE` takes SQLite's write
//! lock, the [`Snapshot`] is read under it, the policy's closure decides, the store applies each
//! [`Change`], recounts every key pack the changes touched (the guard: whatever the closure
//! decided, a change that puts a pack over its total is refused), and commits. Two session
//! hosts (or threads, or processes) deciding at once are therefore serialised, and a decision
//! never acts on a pool another one has just emptied. If anything fails — a change the
//! database refuses, the over-allocation guard, the closure panicking — the whole transaction
//! is rolled back.
//!
//! The database runs in WAL mode with `synchronous = FULL` (a commit is on disk before
//! `decide` returns: a CAL a client was given is never forgotten, even on power loss), with
//! foreign keys enforced and a busy timeout of [`BUSY_TIMEOUT`], so a process waiting for
//! another's transaction waits rather than failing. Readers (reports, `clock show`) never wait
//! for a writer. Each handle keeps a page cache of up to 64 MiB, so a long-running server holds
//! the indexes of a million licenses in memory.
//!
//! # Schema
//!
//! Created by migration 1 (`schema.rs`) and extended by migration 2 (`session_host`);
//! `PRAGMA user_version` is the number of migrations applied, `PRAGMA application_id` is
//! `0x52444C53` ("RDLS"). Tables are `STRICT`. Times are
//! integer seconds since the Unix epoch (UTC) on the [virtual clock](super::clock); enums are
//! lowercase text. Names follow the Windows license server's WMI classes, given in brackets.
//!
//! `server_settings` — one row (`id` = 1) `Win32_TSLicenseServer`; a new store holds version
//! 2022, not activated, name `RDPELE-LS`, workgroup `WORKGROUP`:
//! - `version` — the license server's Windows version (`2008R2`, `2012`, `2016`, `2019`, `2022`,
//!   `2025`); it accepts packs up to this version.
//! - `activated` — 0 or 1; an unactivated server issues temporary CALs only.
//! - `name`, `domain_or_workgroup`, `product_id` — the license server's identity, as its CALs
//!   carry it (MS_LICENSE_SERVER_INFO).
//!
//! `key_packs` — installed CAL packs `Win32_TSLicenseKeyPack`:
//! - `key_pack_id` `KeyPackId` — 1, 2, … in installation order.
//! - `key_pack_type` `ProductType` — `per-device` or `per-user`.
//! - `product_version` `ProductVersion` — as `server_settings.version`.
//! - `total_licenses` `TotalLicenses` — how many CALs the pack holds. `IssuedLicenses` and
//!   `AvailableLicenses` are not stored: they depend on the time and are counted from
//!   `issued_licenses` (see [`Store::packs`]).
//! - `installed_at` — when the pack was installed.
//!
//! `issued_licenses` — every CAL issued, and every per-user record `Win32_TSIssuedLicense`; rows
//! are never deleted, only their status changes:
//! - `license_id` `LicenseId` — 1, 2, … in issue order, the serial number the CAL carries.
//! - `key_pack_id` `KeyPackId` — the pack it holds a license of; NULL for temporary CALs and
//!   for per-user records counted as OverUsed (a temporary CAL's serial number names the
//!   built-in temporary pool, [`TEMPORARY_KEY_PACK_ID`](crate::server::TEMPORARY_KEY_PACK_ID)).
//! - `license_type` — `per-device` or `per-user`.
//! - `issued_to_user` `sIssuedToUser`, `issued_to_computer` `sIssuedToComputer` — as the client
//!   sent them at first issue; compared case-insensitively (ASCII), as Windows compares account
//!   and computer names.
//! - `hardware_id` `sHardwareId` — the client's 20-byte CLIENT_HARDWARE_ID.
//! - `issue_date` `IssueDate`, `expiration_date` `ExpirationDate`.
//! - `license_status` `LicenseStatus` — `temporary`, `active`, `revoked`, `expired` or
//!   `superseded` (see [`LicenseStatus`](super::model::LicenseStatus)).
//! - `revoked_at` — when an administrator revoked it; set by the store when a change makes the
//!   license `revoked`, required for that status.
//! - `product_version` — the CAL's version (a temporary CAL: the requesting host's).
//! - `validated_at` — a temporary CAL: when a session host reported a sign-in completed with
//!   it ([`Store::record_validation`]); NULL until then, and for every other license.
//!
//! Indexes on `issued_licenses`, one per question a decision or a report asks, so both stay
//! index lookups however long the history grows: `hardware_id` (a device's licenses),
//! `issued_to_user` (a user's), `issued_to_computer` (revocation by machine name),
//! `(key_pack_id, license_status, expiration_date)` (a pack's licenses in use at a time: a
//! range over the pack's unexpired active rows, never its history), and `revoked_at` where
//! set (recent revocations, for the revocation limit). `license_id` is the rowid, so "newest
//! first" and the next id come from the table's own order.
//!
//! `license_events` — every status a license took, with the virtual time, so reports can show
//! the pool over time (a renewal supersedes a CAL before its expiration date; only the log
//! knows when):
//! - `event_id` — 1, 2, … in commit order.
//! - `license_id` — the license (references `issued_licenses`).
//! - `at` — the virtual time of the decision.
//! - `license_status` — the status it took (its first status when it was issued).
//!
//! `clock` — one row (`id` = 1): `offset_seconds`, the virtual clock's offset from real time
//! (see [`clock`](super::clock)); 0 in a new store.
//!
//! `session_host` (migration 2) — one row (`id` = 1): the emulated session host, as
//! [`SessionHost`] reads it; a new store (or one migrated from version 1) holds per device,
//! 2022, not used yet:
//! - `licensing_mode` — `per-device` or `per-user`: the one mode the host runs in.
//! - `version` — the host's Windows version, spelled as `server_settings.version`; a CAL opens
//!   hosts of its version or older.
//! - `first_use` — when the host first asked for a client's CAL (NULL until then): the start
//!   of its 120-day grace period.

mod changes;
mod columns;
mod error;
mod host;
mod report;
mod schema;
mod snapshot;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::{
    params, Connection, OpenFlags, OptionalExtension, Transaction, TransactionBehavior,
};

use self::changes::{apply, check_pools, insert_license};
pub(crate) use self::columns::system_time;
pub use self::columns::unix_seconds;
use self::columns::{license_columns, whole_seconds, RawLicense};
pub use self::error::StoreError;
pub use self::host::SessionHost;
pub use self::report::{BuiltInCount, LicenseEvent, PackReport, PoolReport, QueryPlan};
use self::snapshot::{
    load_holder, load_packs, load_settings, next_license_id, query_licenses, SELECT_BY_COMPUTER,
    SELECT_BY_HARDWARE_ID, SELECT_REVOKED,
};
use super::decision::{Change, PackUsage, Packs, PolicyDecision, Snapshot};
use super::model::{IssuedLicense, KeyPack, LicensingMode, ServerSettings, WindowsVersion};

/// The schema version this build creates and expects (`PRAGMA user_version`): the number of
/// migrations.
pub const SCHEMA_VERSION: usize = schema::MIGRATIONS.len();

/// The database's file name inside the data directory.
pub const DATABASE_FILE: &str = "license_server.sqlite";

/// How long a transaction waits for another connection's write lock before failing with
/// "database is locked". Decisions hold the lock for well under a millisecond; this covers an
/// administrator's bulk operation or a slow disk.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Each connection's SQLite page cache, in KiB.
const PAGE_CACHE_KIB: i64 = 64 * 1024;

/// Whose licenses a decision reads: per device, a client's hardware id; per user, the user name
/// (compared case-insensitively).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Holder {
    HardwareId([u8; 20]),
    User(String),
}

/// Whose CALs an administrator revokes: the client's hardware id, or the machine name it was
/// first issued to (case-insensitive), as RD Licensing Manager lists them.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RevokeTarget {
    HardwareId([u8; 20]),
    Machine(String),
}

/// A key pack to install; the store gives it the next [`KeyPack::key_pack_id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewKeyPack {
    pub key_pack_type: LicensingMode,
    pub product_version: WindowsVersion,
    pub total_licenses: u32,
    pub installed_at: SystemTime,
}

/// What a revocation reads, inside its transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevocationSnapshot {
    pub now: SystemTime,
    pub settings: ServerSettings,
    pub packs: Vec<PackUsage>,
    /// The target's licenses, any status, newest first.
    pub targets: Vec<IssuedLicense>,
    /// Every license ever revoked (`revoked_at` set), most recently revoked first: what the
    /// revocation limit counts.
    pub revoked: Vec<IssuedLicense>,
}

/// A revocation's answer (whatever the policy reports: how many were revoked, how many more
/// may be, NextRevokeAllowedOn…) and the changes that make it true (usually `SetStatus` to
/// `Revoked`; the store records `revoked_at`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Revocation<T> {
    pub answer: T,
    pub changes: Vec<Change>,
}

/// A handle on the store. Each handle is one SQLite connection: cheap to open, `Send` but not
/// `Sync` — give each thread or task its own, or share one behind a mutex.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

/// Switches a new database to WAL. Two handles doing it at once on a fresh file can get
/// SQLITE_BUSY at once, without the busy handler (SQLite skips it where waiting could
/// deadlock), so the switch is retried until the busy timeout has passed.
fn enable_wal(conn: &Connection) -> Result<String, StoreError> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(failure, _))
                if failure.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            result => return Ok(result?),
        }
    }
}

impl Store {
    /// Opens the store in `dir` (creating the directory 0700, the database and its schema if
    /// needed, and running any migration the database lacks).
    pub fn open(dir: impl AsRef<Path>) -> Result<Store, StoreError> {
        let dir = dir.as_ref();
        crate::private_files::create_private_dir(dir).map_err(|source| StoreError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DATABASE_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(32);
        let mode = enable_wal(&conn)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(mode));
        }
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // The page cache, in KiB (negative): enough for the indexes of a million licenses, so
        // a long-running server reads them from memory. SQLite allocates it only as it fills.
        conn.pragma_update(None, "cache_size", -PAGE_CACHE_KIB)?;
        schema::migrate(&conn, &path)?;
        Ok(Store { conn, path })
    }

    /// This handle, answering SQLITE_BUSY at once where it would wait up to the busy timeout
    /// for another connection's lock: for a caller that must not block and has somewhere else
    /// to go when the store is busy.
    pub fn without_waiting(self) -> Result<Store, StoreError> {
        self.conn.busy_timeout(std::time::Duration::ZERO)?;
        Ok(self)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version: how many migrations the database has had.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?)
    }

    /// The license server's settings.
    pub fn settings(&self) -> Result<ServerSettings, StoreError> {
        load_settings(&self.conn)
    }

    /// Replaces the license server's settings.
    pub fn set_settings(&self, settings: &ServerSettings) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE server_settings SET version = ?1, activated = ?2, name = ?3, \
             domain_or_workgroup = ?4, product_id = ?5 WHERE id = 1",
            params![
                settings.version.as_str(),
                settings.activated,
                settings.name,
                settings.domain_or_workgroup,
                settings.product_id,
            ],
        )?;
        if changed != 1 {
            return Err(StoreError::MissingRow("server_settings"));
        }
        tx.commit()?;
        Ok(())
    }

    /// Installs a key pack as it is (whether the server may hold it is the policy's call) and
    /// returns it with its id.
    pub fn install_pack(&self, pack: &NewKeyPack) -> Result<KeyPack, StoreError> {
        let installed_at = whole_seconds(pack.installed_at)?;
        let tx = self.write_transaction()?;
        let key_pack_id: u32 = tx.query_row(
            "INSERT INTO key_packs (key_pack_type, product_version, total_licenses, installed_at) \
             VALUES (?1, ?2, ?3, ?4) RETURNING key_pack_id",
            params![
                pack.key_pack_type.as_str(),
                pack.product_version.as_str(),
                pack.total_licenses,
                unix_seconds(installed_at)?,
            ],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(KeyPack {
            key_pack_id,
            key_pack_type: pack.key_pack_type,
            product_version: pack.product_version,
            total_licenses: pack.total_licenses,
            installed_at,
        })
    }

    /// Every key pack with its licenses in use at `now`, in installation order.
    pub fn packs(&self, now: SystemTime) -> Result<Vec<PackUsage>, StoreError> {
        load_packs(&self.conn, unix_seconds(now)?)
    }

    /// One license, if it exists.
    pub fn license(&self, license_id: u32) -> Result<Option<IssuedLicense>, StoreError> {
        const SELECT_LICENSE: &str = concat!(
            "SELECT ",
            license_columns!(),
            " FROM issued_licenses WHERE license_id = ?1"
        );
        let raw = self
            .conn
            .prepare_cached(SELECT_LICENSE)?
            .query_row([license_id], RawLicense::from_row)
            .optional()?;
        raw.map(RawLicense::into_license).transpose()
    }

    /// One decision for `holder` at `now`, in one write transaction: reads the [`Snapshot`],
    /// calls `decide`, applies the returned changes and commits — or, if a change fails or
    /// would over-allocate a pack, rolls everything back and returns the error.
    ///
    /// `now` is kept to the second (the snapshot's `now` is rounded down). The changes must
    /// insert licenses with consecutive ids from the snapshot's `next_license_id`.
    pub fn decide(
        &self,
        holder: &Holder,
        now: SystemTime,
        decide: impl FnOnce(&Snapshot) -> PolicyDecision,
    ) -> Result<PolicyDecision, StoreError> {
        let tx = self.write_transaction()?;
        let decision = decide_in(&tx, holder, now, decide)?;
        tx.commit()?;
        Ok(decision)
    }

    /// Several decisions in one write transaction, committed together — one fsync for all
    /// (group commit): each request (holder, time, and what `decide` needs of it) reads its
    /// [`Snapshot`] with the earlier
    /// ones' changes applied, as if they had been decided one after the other, and is applied
    /// in a savepoint of its own, so one that fails or would over-allocate a pack is rolled
    /// back alone and reported in its slot. If the transaction itself fails (it cannot begin,
    /// or the commit fails), nothing is recorded and the error is returned.
    pub fn decide_many<T>(
        &self,
        requests: &[(Holder, SystemTime, T)],
        decide: impl FnMut(&T, &Snapshot) -> PolicyDecision,
    ) -> Result<Vec<Result<PolicyDecision, StoreError>>, StoreError> {
        self.decide_many_then(requests, decide, |decided| decided)
    }

    /// [`Store::decide_many`], handing the decisions to `before_commit` while the transaction
    /// is still open: what it starts (signing the CALs granted) runs while the commit waits for
    /// the disk. Its result is returned once the transaction has committed; an error means
    /// none of the decisions hold, whatever `before_commit` was given.
    pub fn decide_many_then<T, R>(
        &self,
        requests: &[(Holder, SystemTime, T)],
        mut decide: impl FnMut(&T, &Snapshot) -> PolicyDecision,
        before_commit: impl FnOnce(Vec<Result<PolicyDecision, StoreError>>) -> R,
    ) -> Result<R, StoreError> {
        let mut tx = self.write_transaction()?;
        let mut decided = Vec::with_capacity(requests.len());
        for (holder, now, request) in requests {
            let savepoint = tx.savepoint()?;
            let result = decide_in(&savepoint, holder, *now, |snapshot| {
                decide(request, snapshot)
            });
            // An uncommitted savepoint rolls back when dropped.
            if result.is_ok() {
                savepoint.commit()?;
            }
            decided.push(result);
        }
        let handed_over = before_commit(decided);
        tx.commit()?;
        Ok(handed_over)
    }

    /// One decision that takes nothing, on a [`Snapshot`] read in a read transaction (see
    /// [`Store::assess_many_then`]), its packs read only if `decide` asks for them ([`Packs`]):
    /// `decide` is then called a second time.
    pub fn assess<R>(
        &self,
        holder: &Holder,
        now: SystemTime,
        mut decide: impl FnMut(&Snapshot) -> R,
    ) -> Result<R, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let answer = assess_in(&tx, holder, now, &mut decide)?;
        tx.commit()?;
        Ok(answer)
    }

    /// Decisions that take nothing (the protocol's assessments before the platform challenge),
    /// each on a [`Snapshot`] read in one read transaction: WAL lets it run while another
    /// connection or process holds the write lock (`rdpele admin`, a host's grace-period
    /// write), so clients with valid CALs are answered meanwhile. What `decide` returns as
    /// changes is not applied: a caller with changes to make uses [`Store::decide_many_then`].
    pub fn assess_many_then<T, R>(
        &self,
        requests: &[(Holder, SystemTime, T)],
        mut decide: impl FnMut(&T, &Snapshot) -> PolicyDecision,
        before_commit: impl FnOnce(Vec<Result<PolicyDecision, StoreError>>) -> R,
    ) -> Result<R, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)?;
        let decided = requests
            .iter()
            .map(|(holder, now, request)| {
                assess_in(&tx, holder, *now, &mut |snapshot| decide(request, snapshot))
            })
            .collect();
        let handed_over = before_commit(decided);
        tx.commit()?;
        Ok(handed_over)
    }

    /// An administrator's revocation at `now`, in one write transaction like [`Store::decide`]:
    /// reads the [`RevocationSnapshot`] for `target`, calls `revoke`, applies its changes (a
    /// license set to `Revoked` gets `revoked_at` = `now`) and commits.
    pub fn revoke<T>(
        &self,
        target: &RevokeTarget,
        now: SystemTime,
        revoke: impl FnOnce(&RevocationSnapshot) -> Revocation<T>,
    ) -> Result<T, StoreError> {
        let now_seconds = unix_seconds(now)?;
        let tx = self.write_transaction()?;
        let targets = match target {
            RevokeTarget::HardwareId(hardware_id) => {
                query_licenses(&tx, SELECT_BY_HARDWARE_ID, [hardware_id.as_slice()])?
            }
            RevokeTarget::Machine(name) => query_licenses(&tx, SELECT_BY_COMPUTER, [name])?,
        };
        let snapshot = RevocationSnapshot {
            now: whole_seconds(now)?,
            settings: load_settings(&tx)?,
            packs: load_packs(&tx, now_seconds)?,
            targets,
            revoked: query_licenses(&tx, SELECT_REVOKED, ())?,
        };
        let next = next_license_id(&tx)?;
        let revocation = revoke(&snapshot);
        apply(&tx, &snapshot.packs, next, now_seconds, &revocation.changes)?;
        tx.commit()?;
        Ok(revocation.answer)
    }

    /// Loads licenses as they are (ids, statuses and dates included) in one transaction, with
    /// one `license_events` row each at its issue date: for seeding test and benchmark stores
    /// and for importing another server's history. The over-allocation guard applies at `now`.
    /// Returns how many were inserted.
    pub fn import_licenses(
        &self,
        now: SystemTime,
        licenses: impl IntoIterator<Item = IssuedLicense>,
    ) -> Result<u64, StoreError> {
        let now_seconds = unix_seconds(now)?;
        let tx = self.write_transaction()?;
        let before = load_packs(&tx, now_seconds)?;
        let mut inserted: u64 = 0;
        for license in licenses {
            let at = unix_seconds(license.issue_date)?;
            insert_license(&tx, &license, at)?;
            inserted = inserted.saturating_add(1);
        }
        let packs: Vec<u32> = before.iter().map(|usage| usage.pack.key_pack_id).collect();
        check_pools(&tx, &before, now_seconds, &packs)?;
        tx.commit()?;
        Ok(inserted)
    }

    /// Records that a sign-in completed with temporary CAL `license_id` of the device
    /// `hardware_id`, at `at`: the session host's report that lets the license server upgrade
    /// it at the device's next logon. True if this validated it; false if it was validated
    /// already, or is not a temporary CAL of that device (a CAL from another license server,
    /// one since superseded, a forged serial number): nothing changes then.
    pub fn record_validation(
        &self,
        license_id: u32,
        hardware_id: &[u8; 20],
        at: SystemTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .record_validations(&[(license_id, *hardware_id)], at)?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// [`Store::record_validation`] for several temporary CALs in one write transaction (one
    /// fsync), in order; the answers in the same order.
    pub fn record_validations(
        &self,
        licenses: &[(u32, [u8; 20])],
        at: SystemTime,
    ) -> Result<Vec<bool>, StoreError> {
        const VALIDATE: &str = "UPDATE issued_licenses SET validated_at = ?3 \
             WHERE license_id = ?1 AND hardware_id = ?2 AND license_status = 'temporary' \
             AND validated_at IS NULL";
        let at = unix_seconds(at)?;
        let tx = self.write_transaction()?;
        let mut validated = Vec::with_capacity(licenses.len());
        for (license_id, hardware_id) in licenses {
            let changed = tx.prepare_cached(VALIDATE)?.execute(params![
                license_id,
                hardware_id.as_slice(),
                at
            ])?;
            validated.push(changed == 1);
        }
        tx.commit()?;
        Ok(validated)
    }

    /// The virtual clock's offset from real time, in seconds.
    pub fn clock_offset(&self) -> Result<i64, StoreError> {
        // Cached: every decision reads the clock, and parsing the SQL each time showed in
        // profiles of the session host.
        self.conn
            .prepare_cached("SELECT offset_seconds FROM clock WHERE id = 1")?
            .query_row([], |row| row.get(0))
            .optional()?
            .ok_or(StoreError::MissingRow("clock"))
    }

    /// Sets the virtual clock's offset from real time, in seconds.
    pub fn set_clock_offset(&self, offset_seconds: i64) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE clock SET offset_seconds = ?1 WHERE id = 1",
            [offset_seconds],
        )?;
        if changed != 1 {
            return Err(StoreError::MissingRow("clock"));
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds `by_seconds` to the virtual clock's offset in one transaction (two processes
    /// advancing at once both count) and returns the new offset.
    pub fn add_clock_offset(&self, by_seconds: i64) -> Result<i64, StoreError> {
        let tx = self.write_transaction()?;
        let offset_seconds: i64 = tx
            .query_row("SELECT offset_seconds FROM clock WHERE id = 1", [], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or(StoreError::MissingRow("clock"))?;
        let offset = offset_seconds
            .checked_add(by_seconds)
            .ok_or(StoreError::ClockOverflow {
                offset_seconds,
                by_seconds,
            })?;
        tx.execute(
            "UPDATE clock SET offset_seconds = ?1 WHERE id = 1",
            [offset],
        )?;
        tx.commit()?;
        Ok(offset)
    }

    /// SQLite's `PRAGMA integrity_check` and `PRAGMA foreign_key_check`: the problems they
    /// find, one per line; empty when the database is sound.
    pub fn check_integrity(&self) -> Result<Vec<String>, StoreError> {
        let mut problems: Vec<String> = Vec::new();
        let mut statement = self.conn.prepare("PRAGMA integrity_check")?;
        for line in statement.query_map([], |row| row.get::<_, String>(0))? {
            let line = line?;
            if line != "ok" {
                problems.push(line);
            }
        }
        let mut statement = self.conn.prepare("PRAGMA foreign_key_check")?;
        let rows = statement.query_map([], |row| {
            Ok(format!(
                "foreign key: {} row {} references a missing {}",
                row.get::<_, String>(0)?,
                row.get::<_, Option<i64>>(1)?.unwrap_or_default(),
                row.get::<_, String>(2)?
            ))
        })?;
        for row in rows {
            problems.push(row?);
        }
        Ok(problems)
    }

    fn write_transaction(&self) -> Result<Transaction<'_>, StoreError> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }
}

/// The [`Snapshot`] for `holder` at `now`, read in `conn`'s transaction.
fn snapshot_in(
    conn: &Connection,
    holder: &Holder,
    now: SystemTime,
    packs: Packs,
) -> Result<Snapshot, StoreError> {
    Ok(Snapshot {
        now: whole_seconds(now)?,
        settings: load_settings(conn)?,
        packs,
        holder: load_holder(conn, holder)?,
        next_license_id: next_license_id(conn)?,
    })
}

/// What `decide` answers on a snapshot read in `conn`'s transaction: first without the packs,
/// then, only if it asked for them, again with them read (see [`Packs`]).
fn assess_in<R>(
    conn: &Connection,
    holder: &Holder,
    now: SystemTime,
    decide: &mut impl FnMut(&Snapshot) -> R,
) -> Result<R, StoreError> {
    let mut snapshot = snapshot_in(conn, holder, now, Packs::unread())?;
    let answer = decide(&snapshot);
    if !snapshot.packs.asked_unread() {
        return Ok(answer);
    }
    snapshot.packs = Packs::read(load_packs(conn, unix_seconds(now)?)?);
    Ok(decide(&snapshot))
}

/// Reads the [`Snapshot`] for `holder` at `now` in `conn`'s transaction, lets `decide` decide
/// and applies its changes there; the caller commits.
fn decide_in(
    conn: &Connection,
    holder: &Holder,
    now: SystemTime,
    decide: impl FnOnce(&Snapshot) -> PolicyDecision,
) -> Result<PolicyDecision, StoreError> {
    let now_seconds = unix_seconds(now)?;
    let packs = Packs::read(load_packs(conn, now_seconds)?);
    let snapshot = snapshot_in(conn, holder, now, packs)?;
    let decision = decide(&snapshot);
    apply(
        conn,
        snapshot.packs.usage(),
        snapshot.next_license_id,
        now_seconds,
        &decision.changes,
    )?;
    Ok(decision)
}

//! The numbered migrations. `PRAGMA user_version` holds how many have run; opening a store runs
//! the missing ones, in order, inside one `BEGIN IMMEDIATE` transaction, so two processes
//! opening a new data directory at once create the schema once. The tables and columns are
//! described in the [module documentation](super).

use std::path::Path;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::StoreError;

/// `PRAGMA application_id` of an rdpele license server database ("RDLS").
pub(crate) const APPLICATION_ID: i32 = 0x5244_4C53;

/// Migration `n` (1-based) is `MIGRATIONS[n - 1]`. Never edit one that has shipped: add the
/// next.
pub(crate) const MIGRATIONS: &[&str] = &[MIGRATION_1, MIGRATION_2, MIGRATION_3];

const MIGRATION_1: &str = "
CREATE TABLE server_settings (
    id                  INTEGER PRIMARY KEY CHECK (id = 1),
    version             TEXT    NOT NULL,
    activated           INTEGER NOT NULL CHECK (activated IN (0, 1)),
    name                TEXT    NOT NULL,
    domain_or_workgroup TEXT    NOT NULL,
    product_id          TEXT    NOT NULL
) STRICT;
INSERT INTO server_settings (id, version, activated, name, domain_or_workgroup, product_id)
    VALUES (1, '2022', 0, 'RDPELE-LS', 'WORKGROUP', '00000-000-0000000-00000');

CREATE TABLE key_packs (
    key_pack_id     INTEGER PRIMARY KEY CHECK (key_pack_id BETWEEN 1 AND 4294967295),
    key_pack_type   TEXT    NOT NULL CHECK (key_pack_type IN ('per-device', 'per-user')),
    product_version TEXT    NOT NULL,
    total_licenses  INTEGER NOT NULL CHECK (total_licenses BETWEEN 0 AND 4294967295),
    installed_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE issued_licenses (
    license_id         INTEGER PRIMARY KEY CHECK (license_id BETWEEN 1 AND 4294967295),
    key_pack_id        INTEGER REFERENCES key_packs (key_pack_id),
    license_type       TEXT    NOT NULL CHECK (license_type IN ('per-device', 'per-user')),
    issued_to_user     TEXT    NOT NULL COLLATE NOCASE,
    issued_to_computer TEXT    NOT NULL COLLATE NOCASE,
    hardware_id        BLOB    NOT NULL CHECK (length(hardware_id) = 20),
    issue_date         INTEGER NOT NULL,
    expiration_date    INTEGER NOT NULL,
    license_status     TEXT    NOT NULL CHECK (license_status IN
                           ('temporary', 'active', 'revoked', 'expired', 'superseded')),
    revoked_at         INTEGER CHECK (license_status <> 'revoked' OR revoked_at IS NOT NULL),
    product_version    TEXT    NOT NULL
) STRICT;
CREATE INDEX issued_licenses_hardware_id ON issued_licenses (hardware_id);
CREATE INDEX issued_licenses_issued_to_user ON issued_licenses (issued_to_user);
CREATE INDEX issued_licenses_issued_to_computer ON issued_licenses (issued_to_computer);
CREATE INDEX issued_licenses_pool
    ON issued_licenses (key_pack_id, license_status, expiration_date);
CREATE INDEX issued_licenses_revoked_at
    ON issued_licenses (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE license_events (
    event_id       INTEGER PRIMARY KEY,
    license_id     INTEGER NOT NULL REFERENCES issued_licenses (license_id),
    at             INTEGER NOT NULL,
    license_status TEXT    NOT NULL CHECK (license_status IN
                       ('temporary', 'active', 'revoked', 'expired', 'superseded'))
) STRICT;

CREATE TABLE clock (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    offset_seconds INTEGER NOT NULL
) STRICT;
INSERT INTO clock (id, offset_seconds) VALUES (1, 0);
";

/// The emulated session host: its licensing mode, its version and its first use (the start of
/// its grace period). A new row says per device, Windows Server 2022, not used yet. Idempotent
/// in itself (`IF NOT EXISTS`, `INSERT OR IGNORE`), like every migration from this one on.
const MIGRATION_2: &str = "
CREATE TABLE IF NOT EXISTS session_host (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    licensing_mode TEXT    NOT NULL CHECK (licensing_mode IN ('per-device', 'per-user')),
    version        TEXT    NOT NULL,
    first_use      INTEGER
) STRICT;
INSERT OR IGNORE INTO session_host (id, licensing_mode, version, first_use)
    VALUES (1, 'per-device', '2022', NULL);
";

/// When a temporary CAL was validated: a session host reported a sign-in completed with it.
/// NULL for every license issued before (none of them validated, as a fresh temporary CAL).
/// Not idempotent in itself (SQLite has no `ADD COLUMN IF NOT EXISTS`): it relies on running
/// once, inside the migration's transaction, as every migration does.
const MIGRATION_3: &str = "
ALTER TABLE issued_licenses ADD COLUMN validated_at INTEGER;
";

/// Brings the schema of `conn` up to date. A database already at [`MIGRATIONS`]`.len()` is only
/// read (no write lock), so opening the store while a server writes to it does not wait.
pub(crate) fn migrate(conn: &Connection, path: &Path) -> Result<(), StoreError> {
    if !needs_migration(conn, path)? {
        return Ok(());
    }
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    // Read again under the write lock: another process may have migrated in between.
    if needs_migration(&tx, path)? {
        let done = user_version(&tx)?;
        let done = usize::try_from(done).unwrap_or(0);
        if done == 0 {
            tx.pragma_update(None, "application_id", APPLICATION_ID)?;
        }
        for (index, sql) in MIGRATIONS.iter().enumerate().skip(done) {
            tx.execute_batch(sql)?;
            let number = index.saturating_add(1);
            tx.pragma_update(
                None,
                "user_version",
                i64::try_from(number).unwrap_or(i64::MAX),
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

fn user_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

fn needs_migration(conn: &Connection, path: &Path) -> Result<bool, StoreError> {
    let application_id: i32 = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
    let version = user_version(conn)?;
    if application_id != APPLICATION_ID && (application_id != 0 || version != 0) {
        return Err(StoreError::NotLicenseServerDatabase {
            path: path.to_path_buf(),
            found: application_id,
        });
    }
    let supported = MIGRATIONS.len();
    match usize::try_from(version) {
        Ok(done) if done == supported => Ok(false),
        Ok(done) if done < supported => Ok(true),
        _ => Err(StoreError::SchemaTooNew {
            found: version,
            supported,
        }),
    }
}

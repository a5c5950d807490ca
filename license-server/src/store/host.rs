//! The emulated session host's settings (migration 2): the licensing mode it runs in, its
//! Windows version, and when it first accepted a client — the start of its 120-day grace
//! period ([`grace_period`](crate::policy::grace_period)). Kept beside the
//! license server's, so `rdpele admin server set --mode per-user` and a running server on the
//! same data directory agree on what the host is.

use std::time::SystemTime;

use rusqlite::{params, Connection, OptionalExtension};

use super::columns::whole_seconds;
use super::columns::{parse_column, system_time, unix_seconds};
use super::{Store, StoreError};
use crate::model::{HostInfo, LicensingMode, WindowsVersion};

const T: &str = "session_host";

/// The `session_host` row: what the emulated session host is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionHost {
    /// The one licensing mode the host runs in.
    pub licensing_mode: LicensingMode,
    /// The host's Windows version: a CAL must be of this version or newer to open it.
    pub version: WindowsVersion,
    /// When the host first asked the license server for a client's CAL (virtual time), if it
    /// has: the start of its grace period.
    pub first_use: Option<SystemTime>,
}

impl SessionHost {
    /// What the policy needs of the host.
    pub fn info(&self) -> HostInfo {
        HostInfo {
            version: self.version,
            mode: self.licensing_mode,
        }
    }
}

impl Store {
    /// The emulated session host's settings.
    pub fn session_host(&self) -> Result<SessionHost, StoreError> {
        load_session_host(&self.conn)
    }

    /// Sets the session host's licensing mode and version (its first use is kept).
    pub fn set_session_host(
        &self,
        licensing_mode: LicensingMode,
        version: WindowsVersion,
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE session_host SET licensing_mode = ?1, version = ?2 WHERE id = 1",
            params![licensing_mode.as_str(), version.as_str()],
        )?;
        if changed != 1 {
            return Err(StoreError::MissingRow(T));
        }
        tx.commit()?;
        Ok(())
    }

    /// Records `now` as the session host's first use unless one is recorded already, and
    /// returns the recorded one. Once it is recorded this only reads, so it does not wait for
    /// the write lock that another connection or process may hold.
    pub fn record_host_first_use(&self, now: SystemTime) -> Result<SystemTime, StoreError> {
        let now_seconds = unix_seconds(whole_seconds(now)?)?;
        if let Some(first_use) = load_session_host(&self.conn)?.first_use {
            return Ok(first_use);
        }
        // The first one: under the write lock, recorded only if no one has in the meantime.
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE session_host SET first_use = ?1 WHERE id = 1 AND first_use IS NULL",
            [now_seconds],
        )?;
        let host = load_session_host(&tx)?;
        tx.commit()?;
        match host.first_use {
            Some(first_use) => Ok(first_use),
            None if changed == 0 => Err(StoreError::MissingRow(T)),
            None => Err(StoreError::InvalidColumn {
                table: T,
                column: "first_use",
                value: "NULL".into(),
            }),
        }
    }
}

impl Store {
    /// Sets the session host's first use (the start of its grace period), replacing any
    /// recorded one: `grace-period-start` in `rdpele serve --config`.
    pub fn set_host_first_use(&self, first_use: SystemTime) -> Result<(), StoreError> {
        let seconds = unix_seconds(whole_seconds(first_use)?)?;
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE session_host SET first_use = ?1 WHERE id = 1",
            [seconds],
        )?;
        if changed != 1 {
            return Err(StoreError::MissingRow(T));
        }
        tx.commit()?;
        Ok(())
    }
}

fn load_session_host(conn: &Connection) -> Result<SessionHost, StoreError> {
    let row = conn
        .prepare_cached("SELECT licensing_mode, version, first_use FROM session_host WHERE id = 1")?
        .query_row([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })
        .optional()?;
    let (mode, version, first_use) = row.ok_or(StoreError::MissingRow(T))?;
    let first_use = first_use
        .map(|seconds| {
            system_time(seconds).ok_or_else(|| StoreError::InvalidColumn {
                table: T,
                column: "first_use",
                value: seconds.to_string(),
            })
        })
        .transpose()?;
    Ok(SessionHost {
        licensing_mode: parse_column(T, "licensing_mode", &mode)?,
        version: parse_column(T, "version", &version)?,
        first_use,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use std::time::Duration;

    use super::super::schema::MIGRATIONS;
    use super::super::DATABASE_FILE;
    use super::*;

    fn latest() -> i64 {
        i64::try_from(MIGRATIONS.len()).unwrap()
    }

    fn at(seconds: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// A database as rdpele wrote it before migration 2: migration 1 only, with a pack and a
    /// changed license server in it.
    fn version_1_database(dir: &std::path::Path) {
        let conn = Connection::open(dir.join(DATABASE_FILE)).unwrap();
        conn.pragma_update(None, "application_id", super::super::schema::APPLICATION_ID)
            .unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute_batch(
            "UPDATE server_settings SET version = '2019', activated = 1;
             INSERT INTO key_packs (key_pack_type, product_version, total_licenses, installed_at)
                 VALUES ('per-device', '2019', 7, 1000);",
        )
        .unwrap();
    }

    #[test]
    fn migration_2_adds_the_session_host_to_a_version_1_store_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        version_1_database(dir.path());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest());
        assert_eq!(
            store.session_host().unwrap(),
            SessionHost {
                licensing_mode: LicensingMode::PerDevice,
                version: WindowsVersion::V2022,
                first_use: None,
            }
        );
        let settings = store.settings().unwrap();
        assert_eq!(settings.version, WindowsVersion::V2019);
        assert!(settings.activated);
        let packs = store.packs(at(2000)).unwrap();
        assert_eq!(packs.len(), 1);
        assert_eq!(packs[0].pack.total_licenses, 7);
    }

    #[test]
    fn migration_3_leaves_the_licenses_of_a_version_2_store_unvalidated() {
        let dir = tempfile::tempdir().unwrap();
        version_1_database(dir.path());
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute_batch(
            "INSERT INTO issued_licenses (license_id, key_pack_id, license_type, issued_to_user,
                 issued_to_computer, hardware_id, issue_date, expiration_date, license_status,
                 revoked_at, product_version)
             VALUES (1, NULL, 'per-device', 'alice', 'WS-01', zeroblob(20), 1000, 8000,
                 'temporary', NULL, '2019');",
        )
        .unwrap();
        drop(conn);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest());
        let license = store.license(1).unwrap().unwrap();
        assert_eq!(license.issued_to_computer, "WS-01");
        assert_eq!(license.validated_at, None);
        assert!(store.record_validation(1, &[0; 20], at(2000)).unwrap());
        assert_eq!(
            store.license(1).unwrap().unwrap().validated_at,
            Some(at(2000))
        );
    }

    #[test]
    fn reopening_runs_migration_2_once_and_keeps_the_host() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.schema_version().unwrap(), latest());
        store
            .set_session_host(LicensingMode::PerUser, WindowsVersion::V2019)
            .unwrap();
        assert_eq!(store.record_host_first_use(at(5000)).unwrap(), at(5000));
        drop(store);
        for _ in 0..2 {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.schema_version().unwrap(), latest());
            let host = store.session_host().unwrap();
            assert_eq!(host.licensing_mode, LicensingMode::PerUser);
            assert_eq!(host.version, WindowsVersion::V2019);
            assert_eq!(host.first_use, Some(at(5000)));
        }
        // Migration 2's SQL is idempotent in itself: run again, it changes nothing.
        let conn = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
        conn.execute_batch(MIGRATIONS[1]).unwrap();
        let rows: i64 = conn
            .query_row("SELECT COUNT(*) FROM session_host", [], |row| row.get(0))
            .unwrap();
        assert_eq!(rows, 1);
        let mode: String = conn
            .query_row("SELECT licensing_mode FROM session_host", [], |row| {
                row.get(0)
            })
            .unwrap();
        assert_eq!(mode, "per-user");
    }

    #[test]
    fn a_recorded_first_use_is_read_while_another_connection_holds_the_write_lock() {
        let dir = tempfile::tempdir().unwrap();
        // Waiting for the lock would fail at once instead of after the busy timeout.
        let store = Store::open(dir.path()).unwrap().without_waiting().unwrap();
        let other = Connection::open(dir.path().join(DATABASE_FILE)).unwrap();

        // Not recorded yet: recording it needs the write lock the other connection holds.
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        let error = store.record_host_first_use(at(100)).unwrap_err();
        assert!(error.is_busy(), "{error}");
        other.execute_batch("ROLLBACK").unwrap();
        assert_eq!(store.record_host_first_use(at(100)).unwrap(), at(100));

        // Recorded: read without the lock.
        other.execute_batch("BEGIN IMMEDIATE").unwrap();
        assert_eq!(store.record_host_first_use(at(900)).unwrap(), at(100));
        assert_eq!(store.session_host().unwrap().first_use, Some(at(100)));
        other.execute_batch("ROLLBACK").unwrap();
    }

    #[test]
    fn the_first_use_is_recorded_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.record_host_first_use(at(100)).unwrap(), at(100));
        assert_eq!(store.record_host_first_use(at(900)).unwrap(), at(100));
        // Changing the mode and version keeps it.
        store
            .set_session_host(LicensingMode::PerDevice, WindowsVersion::V2025)
            .unwrap();
        assert_eq!(store.session_host().unwrap().first_use, Some(at(100)));
        assert_eq!(
            store.session_host().unwrap().info(),
            HostInfo {
                version: WindowsVersion::V2025,
                mode: LicensingMode::PerDevice
            }
        );
    }
}

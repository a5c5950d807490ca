//! What can go wrong in the store: one enum, one line per message.

use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

/// A store failure. Every write that fails is rolled back as a whole: nothing of it stays in
/// the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot create the data directory {path}: {source}")]
    CreateDir { path: PathBuf, source: io::Error },
    /// SQLite refused; a lock held longer than the busy timeout shows up here as "database is
    /// locked".
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{path} is not an rdpele license server database (application_id {found:#010x})")]
    NotLicenseServerDatabase { path: PathBuf, found: i32 },
    #[error("database schema version {found} is newer than this rdpele supports ({supported})")]
    SchemaTooNew { found: i64, supported: usize },
    #[error("the database refused WAL mode (journal_mode is {0})")]
    NotWal(String),
    #[error("column {table}.{column} holds {value}, which is not a valid value")]
    InvalidColumn {
        table: &'static str,
        column: &'static str,
        value: String,
    },
    #[error("table {0} has no row")]
    MissingRow(&'static str),
    #[error("time {0:?} is outside what the store can hold (i64 seconds since the epoch)")]
    TimeOutOfRange(SystemTime),
    #[error("license ids are exhausted (the last one is u32::MAX)")]
    LicenseIdsExhausted,
    #[error("inserted license id {found} is not the next id {expected}")]
    LicenseIdOutOfSequence { expected: u32, found: u32 },
    #[error("no license {license_id} to change")]
    UnknownLicense { license_id: u32 },
    /// The store's own guard, whatever the policy decided: a change would have put a pack over
    /// its total.
    #[error(
        "key pack {key_pack_id} would have {in_use} licenses in use out of {total}; rolled back"
    )]
    OverAllocated {
        key_pack_id: u32,
        in_use: u32,
        total: u32,
    },
    #[error("clock offset {offset_seconds} s plus {by_seconds} s overflows")]
    ClockOverflow {
        offset_seconds: i64,
        by_seconds: i64,
    },
}

impl StoreError {
    /// Whether this is SQLite giving up on a lock after the busy timeout (another process held
    /// the database for longer).
    pub fn is_busy(&self) -> bool {
        use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
        matches!(
            self,
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, DatabaseBusy | DatabaseLocked)
        )
    }
}

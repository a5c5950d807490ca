//! Read-only queries for reports (RD Licensing Manager's views) and diagnostics. They read a
//! consistent snapshot without taking the write lock, so they never hold up a decision.

use std::time::SystemTime;

use super::changes::UPDATE_STATUS;
use super::columns::{count, license_columns, parse_column, system_time, unix_seconds};
use super::snapshot::{
    load_holder, load_packs, query_licenses, SELECT_BY_COMPUTER, SELECT_BY_HARDWARE_ID,
    SELECT_BY_USER, SELECT_MAX_LICENSE_ID, SELECT_PACK_USAGE, SELECT_REVOKED,
};
use super::{Holder, Store, StoreError};
use crate::decision::PackUsage;
use crate::model::{IssuedLicense, KeyPack, LicenseStatus, LicensingMode, WindowsVersion};

/// One key pack as RD Licensing Manager lists it, at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackReport {
    pub pack: KeyPack,
    /// TotalLicenses.
    pub installed: u32,
    /// IssuedLicenses: active and not expired.
    pub issued: u32,
    /// AvailableLicenses: `installed − issued`, never below 0.
    pub available: u32,
    /// Revoked and not yet expired: back in the pool, while their holders keep using them.
    pub revoked: u32,
}

/// Licenses held outside any pack, per type and version: Windows's built-in "Temporary" and
/// "OverUsed" key packs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltInCount {
    pub license_type: LicensingMode,
    pub product_version: WindowsVersion,
    /// Unexpired licenses with this status and no pack.
    pub issued: u32,
}

/// The pools at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolReport {
    pub now: SystemTime,
    pub packs: Vec<PackReport>,
    /// Unexpired temporary CALs.
    pub temporary: Vec<BuiltInCount>,
    /// Unexpired active licenses taken from no pack (per user, pool exhausted).
    pub overused: Vec<BuiltInCount>,
}

/// One row of `license_events`: a license took `status` at `at`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseEvent {
    pub event_id: u64,
    pub license_id: u32,
    pub at: SystemTime,
    pub status: LicenseStatus,
}

/// SQLite's plan for one of the statements a decision runs (`EXPLAIN QUERY PLAN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryPlan {
    pub name: &'static str,
    pub sql: &'static str,
    /// The plan's lines, e.g. `SEARCH issued_licenses USING INDEX issued_licenses_hardware_id
    /// (hardware_id=?)`.
    pub plan: Vec<String>,
}

const SELECT_PACK_REVOKED: &str = "SELECT COUNT(*) FROM issued_licenses \
     WHERE key_pack_id = ?1 AND license_status = 'revoked' AND expiration_date > ?2";

const SELECT_BUILT_IN: &str = "SELECT license_type, product_version, COUNT(*) \
     FROM issued_licenses WHERE key_pack_id IS NULL AND license_status = ?1 \
     AND expiration_date > ?2 GROUP BY license_type, product_version \
     ORDER BY license_type, product_version";

impl Store {
    /// Per pack installed / issued / available / revoked, and the temporary and OverUsed
    /// licenses outside packs, at `now`.
    pub fn pool_report(&self, now: SystemTime) -> Result<PoolReport, StoreError> {
        let now_seconds = unix_seconds(now)?;
        // One read transaction, so the counts agree with each other.
        let tx = self.conn.unchecked_transaction()?;
        let mut packs = Vec::new();
        for usage in load_packs(&tx, now_seconds)? {
            let revoked: i64 = tx.prepare_cached(SELECT_PACK_REVOKED)?.query_row(
                rusqlite::params![usage.pack.key_pack_id, now_seconds],
                |row| row.get(0),
            )?;
            packs.push(pack_report(usage, count("revoked", revoked)?));
        }
        let temporary = built_in(&tx, LicenseStatus::Temporary, now_seconds)?;
        let overused = built_in(&tx, LicenseStatus::Active, now_seconds)?;
        tx.commit()?;
        Ok(PoolReport {
            now,
            packs,
            temporary,
            overused,
        })
    }

    /// Every license ever issued, by id: the per-holder view (machine, user, HWID, kind,
    /// issued, expires, revoked).
    pub fn issued_licenses(&self) -> Result<Vec<IssuedLicense>, StoreError> {
        const SELECT_ALL: &str = concat!(
            "SELECT ",
            license_columns!(),
            " FROM issued_licenses ORDER BY license_id"
        );
        query_licenses(&self.conn, SELECT_ALL, ())
    }

    /// A device's (per device) or a user's (per user) licenses, newest first, as a decision sees
    /// them.
    pub fn holder_licenses(&self, holder: &Holder) -> Result<Vec<IssuedLicense>, StoreError> {
        load_holder(&self.conn, holder)
    }

    /// The event log, in commit order: for plotting the pools over virtual time.
    pub fn license_events(&self) -> Result<Vec<LicenseEvent>, StoreError> {
        const T: &str = "license_events";
        let mut statement = self.conn.prepare(
            "SELECT event_id, license_id, at, license_status FROM license_events \
             ORDER BY event_id",
        )?;
        let rows = statement.query_map([], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        let mut events = Vec::new();
        for row in rows {
            let (event_id, license_id, at, status) = row?;
            let invalid = |column: &'static str, value: i64| StoreError::InvalidColumn {
                table: T,
                column,
                value: value.to_string(),
            };
            events.push(LicenseEvent {
                event_id: u64::try_from(event_id).map_err(|_| invalid("event_id", event_id))?,
                license_id: u32::try_from(license_id)
                    .map_err(|_| invalid("license_id", license_id))?,
                at: system_time(at).ok_or_else(|| invalid("at", at))?,
                status: parse_column(T, "license_status", &status)?,
            });
        }
        Ok(events)
    }

    /// `EXPLAIN QUERY PLAN` of every statement a decision or a revocation runs, so tests and
    /// BENCHMARKS.md can show they are index lookups, not scans of `issued_licenses`.
    pub fn query_plans(&self) -> Result<Vec<QueryPlan>, StoreError> {
        let statements: [(&'static str, &'static str); 7] = [
            ("pack usage", SELECT_PACK_USAGE),
            ("holder by hardware id", SELECT_BY_HARDWARE_ID),
            ("holder by user", SELECT_BY_USER),
            ("licenses by machine", SELECT_BY_COMPUTER),
            ("revoked licenses", SELECT_REVOKED),
            ("next license id", SELECT_MAX_LICENSE_ID),
            ("set status", UPDATE_STATUS),
        ];
        let mut plans = Vec::new();
        for (name, sql) in statements {
            let mut statement = self.conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
            // The parameters stay unbound (NULL): the plan does not depend on their values.
            let mut rows = statement.raw_query();
            let mut plan = Vec::new();
            while let Some(row) = rows.next()? {
                plan.push(row.get::<_, String>(3)?);
            }
            plans.push(QueryPlan { name, sql, plan });
        }
        Ok(plans)
    }
}

fn pack_report(usage: PackUsage, revoked: u32) -> PackReport {
    PackReport {
        installed: usage.pack.total_licenses,
        issued: usage.in_use,
        available: usage.available(),
        revoked,
        pack: usage.pack,
    }
}

fn built_in(
    conn: &rusqlite::Connection,
    status: LicenseStatus,
    now_seconds: i64,
) -> Result<Vec<BuiltInCount>, StoreError> {
    const T: &str = "issued_licenses";
    let mut statement = conn.prepare_cached(SELECT_BUILT_IN)?;
    let rows = statement.query_map(rusqlite::params![status.as_str(), now_seconds], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    let mut counts = Vec::new();
    for row in rows {
        let (license_type, product_version, issued) = row?;
        counts.push(BuiltInCount {
            license_type: parse_column(T, "license_type", &license_type)?,
            product_version: parse_column(T, "product_version", &product_version)?,
            issued: count("issued", issued)?,
        });
    }
    Ok(counts)
}

//! The reads a decision or a revocation makes inside its transaction, and the same queries for
//! reports: each one an index lookup (see [`Store::query_plans`](super::Store::query_plans)).

use rusqlite::{Connection, OptionalExtension};

use super::columns::{count, license_columns, parse_column, RawKeyPack, RawLicense};
use super::{Holder, StoreError};
use crate::decision::PackUsage;
use crate::model::{IssuedLicense, ServerSettings};

pub(super) const SELECT_SETTINGS: &str =
    "SELECT version, activated, name, domain_or_workgroup, product_id \
     FROM server_settings WHERE id = 1";

/// A pack and its licenses in use at `?1`: active and not yet expired.
pub(super) const SELECT_PACK_USAGE: &str =
    "SELECT p.key_pack_id, p.key_pack_type, p.product_version, \
     p.total_licenses, p.installed_at, \
     (SELECT COUNT(*) FROM issued_licenses AS l WHERE l.key_pack_id = p.key_pack_id \
      AND l.license_status = 'active' AND l.expiration_date > ?1) \
     FROM key_packs AS p ORDER BY p.key_pack_id";

pub(super) const SELECT_BY_HARDWARE_ID: &str = concat!(
    "SELECT ",
    license_columns!(),
    " FROM issued_licenses WHERE hardware_id = ?1 ORDER BY license_id DESC"
);

pub(super) const SELECT_BY_USER: &str = concat!(
    "SELECT ",
    license_columns!(),
    " FROM issued_licenses WHERE issued_to_user = ?1 ORDER BY license_id DESC"
);

pub(super) const SELECT_BY_COMPUTER: &str = concat!(
    "SELECT ",
    license_columns!(),
    " FROM issued_licenses WHERE issued_to_computer = ?1 ORDER BY license_id DESC"
);

pub(super) const SELECT_REVOKED: &str = concat!(
    "SELECT ",
    license_columns!(),
    " FROM issued_licenses WHERE revoked_at IS NOT NULL ORDER BY revoked_at DESC, license_id DESC"
);

pub(super) const SELECT_MAX_LICENSE_ID: &str = "SELECT MAX(license_id) FROM issued_licenses";

pub(super) fn load_settings(conn: &Connection) -> Result<ServerSettings, StoreError> {
    const T: &str = "server_settings";
    let row = conn
        .prepare_cached(SELECT_SETTINGS)?
        .query_row([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, bool>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let (version, activated, name, domain_or_workgroup, product_id) =
        row.ok_or(StoreError::MissingRow(T))?;
    Ok(ServerSettings {
        version: parse_column(T, "version", &version)?,
        activated,
        name,
        domain_or_workgroup,
        product_id,
    })
}

pub(super) fn load_packs(
    conn: &Connection,
    now_seconds: i64,
) -> Result<Vec<PackUsage>, StoreError> {
    let mut statement = conn.prepare_cached(SELECT_PACK_USAGE)?;
    let rows = statement.query_map([now_seconds], |row| {
        Ok((RawKeyPack::from_row(row)?, row.get::<_, i64>(5)?))
    })?;
    let mut packs = Vec::new();
    for row in rows {
        let (raw, in_use) = row?;
        packs.push(PackUsage {
            pack: raw.into_pack()?,
            in_use: count("in_use", in_use)?,
        });
    }
    Ok(packs)
}

pub(super) fn load_holder(
    conn: &Connection,
    holder: &Holder,
) -> Result<Vec<IssuedLicense>, StoreError> {
    match holder {
        Holder::HardwareId(hardware_id) => {
            query_licenses(conn, SELECT_BY_HARDWARE_ID, [hardware_id.as_slice()])
        }
        Holder::User(user) => query_licenses(conn, SELECT_BY_USER, [user]),
    }
}

pub(super) fn query_licenses(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<IssuedLicense>, StoreError> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement.query_map(params, RawLicense::from_row)?;
    let mut licenses = Vec::new();
    for row in rows {
        licenses.push(row?.into_license()?);
    }
    Ok(licenses)
}

pub(super) fn next_license_id(conn: &Connection) -> Result<u32, StoreError> {
    let max: Option<i64> = conn
        .prepare_cached(SELECT_MAX_LICENSE_ID)?
        .query_row([], |row| row.get(0))?;
    let Some(max) = max else { return Ok(1) };
    let max = u32::try_from(max).map_err(|_| StoreError::InvalidColumn {
        table: "issued_licenses",
        column: "license_id",
        value: max.to_string(),
    })?;
    max.checked_add(1).ok_or(StoreError::LicenseIdsExhausted)
}

//! Applying a decision's [`Change`]s inside its transaction, and the store's own guard against
//! over-allocation.

use rusqlite::{params, Connection, OptionalExtension};

use super::columns::{count, license_columns, unix_seconds};
use super::StoreError;
use crate::decision::{Change, PackUsage};
use crate::model::{IssuedLicense, LicenseStatus};

pub(super) const INSERT_LICENSE: &str = concat!(
    "INSERT INTO issued_licenses (",
    license_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
);

pub(super) const UPDATE_STATUS: &str = "UPDATE issued_licenses SET license_status = ?2, \
     revoked_at = CASE WHEN ?2 = 'revoked' THEN coalesce(revoked_at, ?3) ELSE revoked_at END \
     WHERE license_id = ?1 RETURNING key_pack_id";

/// A pack's total and its licenses in use at `?2`, for the guard.
const SELECT_POOL: &str = "SELECT p.total_licenses, \
     (SELECT COUNT(*) FROM issued_licenses AS l WHERE l.key_pack_id = p.key_pack_id \
      AND l.license_status = 'active' AND l.expiration_date > ?2) \
     FROM key_packs AS p WHERE p.key_pack_id = ?1";

pub(super) const INSERT_EVENT: &str =
    "INSERT INTO license_events (license_id, at, license_status) VALUES (?1, ?2, ?3)";

/// Applies `changes` in order, then the over-allocation guard on every pack they touched (the
/// pack of each inserted license and of each license whose status changed), against the pools
/// as they were (`before`).
pub(super) fn apply(
    tx: &Connection,
    before: &[PackUsage],
    next_license_id: u32,
    now_seconds: i64,
    changes: &[Change],
) -> Result<(), StoreError> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut expected = Some(next_license_id);
    let mut touched: Vec<u32> = Vec::new();
    for change in changes {
        match change {
            Change::Insert(license) => {
                let next = expected.ok_or(StoreError::LicenseIdsExhausted)?;
                if license.license_id != next {
                    return Err(StoreError::LicenseIdOutOfSequence {
                        expected: next,
                        found: license.license_id,
                    });
                }
                insert_license(tx, license, now_seconds)?;
                touched.extend(license.key_pack_id);
                expected = next.checked_add(1);
            }
            Change::SetStatus { license_id, status } => {
                touched.extend(set_status(tx, *license_id, *status, now_seconds)?);
            }
        }
    }
    touched.sort_unstable();
    touched.dedup();
    check_pools(tx, before, now_seconds, &touched)
}

pub(super) fn insert_license(
    tx: &Connection,
    license: &IssuedLicense,
    at: i64,
) -> Result<(), StoreError> {
    let revoked_at = license.revoked_at.map(unix_seconds).transpose()?;
    let validated_at = license.validated_at.map(unix_seconds).transpose()?;
    tx.prepare_cached(INSERT_LICENSE)?.execute(params![
        license.license_id,
        license.key_pack_id,
        license.license_type.as_str(),
        license.issued_to_user,
        license.issued_to_computer,
        license.hardware_id.as_slice(),
        unix_seconds(license.issue_date)?,
        unix_seconds(license.expiration_date)?,
        license.status.as_str(),
        revoked_at,
        license.product_version.as_str(),
        validated_at,
    ])?;
    tx.prepare_cached(INSERT_EVENT)?.execute(params![
        license.license_id,
        at,
        license.status.as_str()
    ])?;
    Ok(())
}

/// Sets a license's status; returns its pack.
fn set_status(
    tx: &Connection,
    license_id: u32,
    status: LicenseStatus,
    now_seconds: i64,
) -> Result<Option<u32>, StoreError> {
    let key_pack_id: Option<u32> = tx
        .prepare_cached(UPDATE_STATUS)?
        .query_row(params![license_id, status.as_str(), now_seconds], |row| {
            row.get(0)
        })
        .optional()?
        .ok_or(StoreError::UnknownLicense { license_id })?;
    tx.prepare_cached(INSERT_EVENT)?
        .execute(params![license_id, now_seconds, status.as_str()])?;
    Ok(key_pack_id)
}

/// The store's own guard: after the changes, no pack may hold more licenses than its total —
/// unless it already did before them and they did not add to it (a clock set back can bring
/// expired licenses back into the count; the store does not refuse unrelated decisions for
/// that).
pub(super) fn check_pools(
    tx: &Connection,
    before: &[PackUsage],
    now_seconds: i64,
    packs: &[u32],
) -> Result<(), StoreError> {
    for &key_pack_id in packs {
        let (total, in_use): (u32, i64) = tx
            .prepare_cached(SELECT_POOL)?
            .query_row(params![key_pack_id, now_seconds], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
        let in_use = count("in_use", in_use)?;
        if in_use <= total {
            continue;
        }
        let was = before
            .iter()
            .find(|usage| usage.pack.key_pack_id == key_pack_id)
            .map_or(0, |usage| usage.in_use);
        if in_use > was {
            return Err(StoreError::OverAllocated {
                key_pack_id,
                in_use,
                total,
            });
        }
    }
    Ok(())
}

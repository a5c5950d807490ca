//! How model values are spelled in the database: enums as short lowercase text (readable with
//! the `sqlite3` shell), times as integer seconds since the Unix epoch, ids as integers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::Row;

use super::StoreError;
use crate::model::{IssuedLicense, KeyPack};

/// A model value from its column's text, or an error naming the column.
pub(crate) fn parse_column<T: std::str::FromStr>(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| invalid(table, column, format!("{text:?}")))
}

fn invalid(table: &'static str, column: &'static str, value: String) -> StoreError {
    StoreError::InvalidColumn {
        table,
        column,
        value,
    }
}

/// Seconds since the epoch, rounded down (times before 1970 are negative).
pub fn unix_seconds(time: SystemTime) -> Result<i64, StoreError> {
    let out_of_range = || StoreError::TimeOutOfRange(time);
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).map_err(|_| out_of_range()),
        Err(before) => {
            let before = before.duration();
            let whole = i64::try_from(before.as_secs()).map_err(|_| out_of_range())?;
            let rounded_down = if before.subsec_nanos() > 0 {
                whole.checked_add(1)
            } else {
                Some(whole)
            };
            rounded_down
                .and_then(i64::checked_neg)
                .ok_or_else(out_of_range)
        }
    }
}

/// The instant `seconds` after (or, negative, before) the epoch.
pub(crate) fn system_time(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// `time` rounded down to whole seconds: what the store keeps of it.
pub(crate) fn whole_seconds(time: SystemTime) -> Result<SystemTime, StoreError> {
    let seconds = unix_seconds(time)?;
    system_time(seconds).ok_or(StoreError::TimeOutOfRange(time))
}

fn time_column(
    table: &'static str,
    column: &'static str,
    seconds: i64,
) -> Result<SystemTime, StoreError> {
    system_time(seconds).ok_or_else(|| invalid(table, column, seconds.to_string()))
}

fn id_column(table: &'static str, column: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| invalid(table, column, value.to_string()))
}

/// A count SQLite computed, as the model's `u32`.
pub(crate) fn count(what: &'static str, value: i64) -> Result<u32, StoreError> {
    id_column("(count)", what, value)
}

/// The columns of `issued_licenses`, in the order [`RawLicense::from_row`] reads them (a macro,
/// for `concat!` into the queries).
macro_rules! license_columns {
    () => {
        "license_id, key_pack_id, license_type, issued_to_user, issued_to_computer, \
         hardware_id, issue_date, expiration_date, license_status, revoked_at, product_version, \
         validated_at"
    };
}
pub(crate) use license_columns;

/// An `issued_licenses` row as SQLite holds it, before its values are checked.
pub(crate) struct RawLicense {
    license_id: i64,
    key_pack_id: Option<i64>,
    license_type: String,
    issued_to_user: String,
    issued_to_computer: String,
    hardware_id: Vec<u8>,
    issue_date: i64,
    expiration_date: i64,
    license_status: String,
    revoked_at: Option<i64>,
    product_version: String,
    validated_at: Option<i64>,
}

impl RawLicense {
    /// Reads [`license_columns!`] from the start of `row`.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawLicense {
            license_id: row.get(0)?,
            key_pack_id: row.get(1)?,
            license_type: row.get(2)?,
            issued_to_user: row.get(3)?,
            issued_to_computer: row.get(4)?,
            hardware_id: row.get(5)?,
            issue_date: row.get(6)?,
            expiration_date: row.get(7)?,
            license_status: row.get(8)?,
            revoked_at: row.get(9)?,
            product_version: row.get(10)?,
            validated_at: row.get(11)?,
        })
    }

    pub(crate) fn into_license(self) -> Result<IssuedLicense, StoreError> {
        const T: &str = "issued_licenses";
        let hardware_id = <[u8; 20]>::try_from(self.hardware_id.as_slice())
            .map_err(|_| invalid(T, "hardware_id", hex::encode(&self.hardware_id)))?;
        Ok(IssuedLicense {
            license_id: id_column(T, "license_id", self.license_id)?,
            key_pack_id: self
                .key_pack_id
                .map(|id| id_column(T, "key_pack_id", id))
                .transpose()?,
            license_type: parse_column(T, "license_type", &self.license_type)?,
            issued_to_user: self.issued_to_user,
            issued_to_computer: self.issued_to_computer,
            hardware_id,
            issue_date: time_column(T, "issue_date", self.issue_date)?,
            expiration_date: time_column(T, "expiration_date", self.expiration_date)?,
            status: parse_column(T, "license_status", &self.license_status)?,
            revoked_at: self
                .revoked_at
                .map(|t| time_column(T, "revoked_at", t))
                .transpose()?,
            product_version: parse_column(T, "product_version", &self.product_version)?,
            validated_at: self
                .validated_at
                .map(|t| time_column(T, "validated_at", t))
                .transpose()?,
        })
    }
}

/// A `key_packs` row as SQLite holds it.
pub(crate) struct RawKeyPack {
    key_pack_id: i64,
    key_pack_type: String,
    product_version: String,
    total_licenses: i64,
    installed_at: i64,
}

impl RawKeyPack {
    /// Reads `key_pack_id, key_pack_type, product_version, total_licenses, installed_at` from
    /// the start of `row`.
    pub(crate) fn from_row(row: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(RawKeyPack {
            key_pack_id: row.get(0)?,
            key_pack_type: row.get(1)?,
            product_version: row.get(2)?,
            total_licenses: row.get(3)?,
            installed_at: row.get(4)?,
        })
    }

    pub(crate) fn into_pack(self) -> Result<KeyPack, StoreError> {
        const T: &str = "key_packs";
        Ok(KeyPack {
            key_pack_id: id_column(T, "key_pack_id", self.key_pack_id)?,
            key_pack_type: parse_column(T, "key_pack_type", &self.key_pack_type)?,
            product_version: parse_column(T, "product_version", &self.product_version)?,
            total_licenses: id_column(T, "total_licenses", self.total_licenses)?,
            installed_at: time_column(T, "installed_at", self.installed_at)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LicenseStatus, LicensingMode, WindowsVersion};

    #[test]
    fn unix_seconds_round_down_on_both_sides_of_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(unix_seconds(t).unwrap(), 1);
        let t = UNIX_EPOCH - Duration::from_millis(1_500);
        assert_eq!(unix_seconds(t).unwrap(), -2);
        assert_eq!(
            unix_seconds(UNIX_EPOCH - Duration::from_secs(3)).unwrap(),
            -3
        );
        assert_eq!(system_time(-3), Some(UNIX_EPOCH - Duration::from_secs(3)));
    }

    #[test]
    fn enum_spellings_round_trip() {
        for &v in WindowsVersion::ALL {
            assert_eq!(
                parse_column::<WindowsVersion>("t", "c", v.as_str()).unwrap(),
                v
            );
        }
        for &m in LicensingMode::ALL {
            assert_eq!(
                parse_column::<LicensingMode>("t", "c", m.as_str()).unwrap(),
                m
            );
        }
        for &s in LicenseStatus::ALL {
            assert_eq!(
                parse_column::<LicenseStatus>("t", "c", s.as_str()).unwrap(),
                s
            );
        }
        assert!(parse_column::<LicenseStatus>("t", "c", "upgrade").is_err());
    }
}

//! The values the admin commands accept — Windows versions, licensing modes, HWIDs, counts,
//! names — and how each is written back in their answers. Every parser fails with one line
//! naming what was wrong, which clap prefixes with the argument.

use std::time::SystemTime;

use rdpele_license_server::clock::format_instant;

/// The length of a CLIENT_HARDWARE_ID: PlatformId and Data1..Data4.
const HWID_LEN: usize = 20;

/// A client's CLIENT_HARDWARE_ID: 20 bytes in hex, as on the wire and as `rdpele cal inspect`
/// shows it; `:` or whitespace between bytes is allowed.
pub(super) fn parse_hwid(input: &str) -> Result<[u8; HWID_LEN], String> {
    let digits: String = input
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&digits).map_err(|error| format!("not hexadecimal: {error}"))?;
    let found = bytes.len();
    <[u8; HWID_LEN]>::try_from(bytes).map_err(|_| {
        format!(
            "a HWID is {HWID_LEN} bytes ({} hex digits), this is {found}",
            HWID_LEN * 2
        )
    })
}

/// The number of CALs in a pack: a whole number from 1 to 4294967295.
pub(super) fn parse_count(input: &str) -> Result<u32, String> {
    let text = input.trim();
    if text.starts_with('-') {
        return Err("a CAL count cannot be negative".into());
    }
    let count: u64 = text
        .parse()
        .map_err(|_| "a CAL count is a whole number, e.g. 25".to_owned())?;
    if count == 0 {
        return Err("a CAL pack holds at least one CAL".into());
    }
    u32::try_from(count).map_err(|_| format!("at most {} CALs in one pack", u32::MAX))
}

/// The longest machine or user name accepted (Windows account names are at most 256
/// characters with their domain).
const MAX_NAME_CHARS: usize = 256;

/// A machine or user name: not empty, at most 256 characters, no control characters.
pub(super) fn parse_name(input: &str) -> Result<String, String> {
    if input.trim().is_empty() {
        return Err("a name cannot be empty".into());
    }
    if input.chars().count() > MAX_NAME_CHARS {
        return Err(format!("a name is at most {MAX_NAME_CHARS} characters"));
    }
    if input.chars().any(char::is_control) {
        return Err("a name cannot hold control characters".into());
    }
    Ok(input.to_owned())
}

/// `time` as the answers write it: RFC 3339 in UTC, whole seconds. A time RFC 3339 cannot
/// write (outside the years 0000–9999) is given as seconds since the Unix epoch.
pub(super) fn instant(time: SystemTime) -> String {
    format_instant(time).unwrap_or_else(|| match time.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => format!("@{}", after.as_secs()),
        Err(before) => format!("@-{}", before.duration().as_secs()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_hwid_is_20_bytes_of_hex_with_optional_separators() {
        let hwid = parse_hwid("00000104686c821a80914aef822465b48019cd34").unwrap();
        assert_eq!(hwid[3], 0x04);
        assert_eq!(
            parse_hwid("00:00:01:04 68:6c:82:1a:80:91:4a:ef:82:24:65:b4:80:19:cd:34").unwrap(),
            hwid
        );
        assert!(parse_hwid("zz000104686c821a80914aef822465b48019cd34")
            .unwrap_err()
            .contains("not hexadecimal"));
        assert!(parse_hwid("0001").unwrap_err().contains("this is 2"));
        assert!(parse_hwid("").unwrap_err().contains("this is 0"));
    }

    #[test]
    fn a_count_is_positive() {
        assert_eq!(parse_count("25").unwrap(), 25);
        assert_eq!(parse_count("4294967295").unwrap(), u32::MAX);
        assert!(parse_count("0").unwrap_err().contains("at least one"));
        assert!(parse_count("-5").unwrap_err().contains("negative"));
        assert!(parse_count("ten").unwrap_err().contains("whole number"));
        assert!(parse_count("4294967296").unwrap_err().contains("at most"));
    }

    #[test]
    fn names_are_not_empty() {
        assert_eq!(parse_name("WS-01").unwrap(), "WS-01");
        assert!(parse_name(" ").is_err());
        assert!(parse_name("a\nb").is_err());
        assert!(parse_name(&"x".repeat(257)).is_err());
    }
}

//! Reading a `.reg` file of the store (see [`super::reg_file`] for its layout): what regedit
//! and hand edits produce — UTF-16LE with a byte order mark, UTF-8, or ASCII `REGEDIT4`; `\`
//! line continuations; `;` comment lines; `hex:`, `hex(3):`, `dword:` and string values. Keys
//! and values outside the store are ignored. Errors name the line (or, for bad text encoding,
//! the byte offset). Deletions (`[-KEY]`, `"name"=-`) are refused rather than half-applied.

use std::collections::BTreeMap;

use rdpele_proto::wire::ClientHardwareId;

use super::reg_file::{
    RegLicense, RegStore, BOM_UTF16LE, BOM_UTF8, HARDWARE_ID, HEADER_4, HEADER_5, ROOT, STORE,
};
use super::{LICENSE_PREFIX, MAX_LICENSE_LEN};

/// Bytes any one value may hold: a CAL at most.
const MAX_VALUE_LEN: usize = MAX_LICENSE_LEN;

/// What is wrong with a `.reg` file, by line (or byte offset, for bad text encoding).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegFileError {
    #[error("byte offset {offset}: not UTF-16LE text")]
    NotUtf16 { offset: usize },
    #[error("byte offset {offset}: not UTF-8 text")]
    NotUtf8 { offset: usize },
    #[error("line {line}: expected \"{HEADER_5}\" or \"{HEADER_4}\"")]
    Header { line: usize },
    #[error("line {line}: expected {expected}")]
    Syntax { line: usize, expected: &'static str },
    #[error("line {line}: {what} is not supported by import")]
    Unsupported { line: usize, what: &'static str },
    #[error("line {line}: {value} must be {expected}")]
    WrongType {
        line: usize,
        value: &'static str,
        expected: &'static str,
    },
    #[error("line {line}: {value} holds {found} byte(s), expected {expected}")]
    WrongLength {
        line: usize,
        value: &'static str,
        found: usize,
        expected: usize,
    },
    #[error("line {line}: a value of more than {max} bytes")]
    TooLarge { line: usize, max: usize },
    #[error("line {line}: [{key}] has no {value} value")]
    Missing {
        line: usize,
        key: String,
        value: &'static str,
    },
}

/// Reads a `.reg` file's bytes.
pub(super) fn parse(bytes: &[u8]) -> Result<RegStore, RegFileError> {
    let text = decode_text(bytes)?;
    let mut lines = logical_lines(&text);
    match lines.next() {
        Some((_, header)) if header == HEADER_5 || header == HEADER_4 => {}
        Some((line, _)) => return Err(RegFileError::Header { line }),
        None => return Err(RegFileError::Header { line: 1 }),
    }
    let mut hwid = None;
    let mut licenses: BTreeMap<u32, Partial> = BTreeMap::new();
    let mut key = Key::Other;
    for (line, content) in lines {
        if content.is_empty() || content.starts_with(';') {
            continue;
        }
        if let Some(header) = content.strip_prefix('[') {
            let path = header.strip_suffix(']').ok_or(RegFileError::Syntax {
                line,
                expected: "a key name ending with ']'",
            })?;
            if path.starts_with('-') {
                return Err(RegFileError::Unsupported {
                    line,
                    what: "deleting a key",
                });
            }
            key = Key::of(path);
            if let Key::License(slot) = key {
                licenses.entry(slot).or_insert_with(|| Partial {
                    line,
                    key: path.to_owned(),
                    ..Partial::default()
                });
            }
            continue;
        }
        let (name, data) = parse_value(line, &content)?;
        match key {
            Key::HardwareId if name.eq_ignore_ascii_case("ClientHWID") => {
                let bytes = data.binary(line, "ClientHWID")?;
                let found = bytes.len();
                hwid = Some(bytes.try_into().map_err(|_| RegFileError::WrongLength {
                    line,
                    value: "ClientHWID",
                    found,
                    expected: ClientHardwareId::LEN,
                })?);
            }
            Key::License(slot) => {
                if let Some(partial) = licenses.get_mut(&slot) {
                    partial.set(line, &name, data)?;
                }
            }
            Key::HardwareId | Key::Other => {}
        }
    }
    let licenses = licenses
        .into_iter()
        .map(|(slot, partial)| partial.finish(slot))
        .collect::<Result<_, _>>()?;
    Ok(RegStore { hwid, licenses })
}

/// The text of a `.reg` file: UTF-16LE after its byte order mark, else UTF-8 (with or without
/// one; plain ASCII `REGEDIT4` files are UTF-8).
pub(super) fn decode_text(bytes: &[u8]) -> Result<String, RegFileError> {
    if let Some(body) = bytes.strip_prefix(&BOM_UTF16LE) {
        let (units, odd) = body.as_chunks::<2>();
        if !odd.is_empty() {
            return Err(RegFileError::NotUtf16 {
                offset: bytes.len() - 1,
            });
        }
        let mut text = String::with_capacity(units.len());
        for (index, unit) in
            char::decode_utf16(units.iter().map(|pair| u16::from_le_bytes(*pair))).enumerate()
        {
            let offset = BOM_UTF16LE.len() + 2 * index;
            // An unpaired surrogate: its position counts units, so it is exact up to there.
            text.push(unit.map_err(|_| RegFileError::NotUtf16 { offset })?);
        }
        return Ok(text);
    }
    let (body, skipped) = match bytes.strip_prefix(&BOM_UTF8) {
        Some(body) => (body, BOM_UTF8.len()),
        None => (bytes, 0),
    };
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|error| RegFileError::NotUtf8 {
            offset: skipped + error.valid_up_to(),
        })
}

/// Lines with their `\` continuations joined, each with the number of its first line, trimmed.
fn logical_lines(text: &str) -> impl Iterator<Item = (usize, String)> + '_ {
    let mut physical = text
        .split('\n')
        .enumerate()
        .map(|(index, line)| (index + 1, line.strip_suffix('\r').unwrap_or(line).trim()));
    std::iter::from_fn(move || {
        let (number, first) = physical.next()?;
        let mut joined = first.to_owned();
        while let Some(continued) = joined.strip_suffix('\\') {
            // A comment line is whole: a backslash ending it continues nothing.
            if joined.starts_with(';') {
                break;
            }
            joined.truncate(continued.len());
            match physical.next() {
                Some((_, next)) => joined.push_str(next),
                None => break,
            }
        }
        Some((number, joined))
    })
}

/// Which key of the store a `[...]` header opens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    HardwareId,
    License(u32),
    /// The root, `Store`, or anything outside the store: values there are ignored.
    Other,
}

impl Key {
    fn of(path: &str) -> Self {
        let Some(below) = strip_prefix_ignore_case(path, ROOT) else {
            return Self::Other;
        };
        let mut parts = below.split('\\').filter(|part| !part.is_empty());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(part), None, None) if part.eq_ignore_ascii_case(HARDWARE_ID) => Self::HardwareId,
            (Some(store), Some(license), None) if store.eq_ignore_ascii_case(STORE) => {
                strip_prefix_ignore_case(license, LICENSE_PREFIX)
                    .filter(|digits| {
                        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
                    })
                    .and_then(|digits| digits.parse().ok())
                    .map_or(Self::Other, Self::License)
            }
            _ => Self::Other,
        }
    }
}

/// `text` without `prefix`, compared ignoring ASCII case as the registry does.
fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| text.get(prefix.len()..))
        .flatten()
}

/// A value's data.
#[derive(Debug, PartialEq, Eq)]
enum Data {
    /// `hex:` or `hex(N):` with its type N (3, REG_BINARY, for `hex:`).
    Hex {
        kind: u32,
        bytes: Vec<u8>,
    },
    Dword(u32),
    String(String),
}

const REG_BINARY: u32 = 3;

impl Data {
    fn binary(self, line: usize, value: &'static str) -> Result<Vec<u8>, RegFileError> {
        match self {
            Self::Hex {
                kind: REG_BINARY,
                bytes,
            } => Ok(bytes),
            _ => Err(RegFileError::WrongType {
                line,
                value,
                expected: "binary (hex: or hex(3):)",
            }),
        }
    }
}

/// `"name"=data` or `@=data`.
fn parse_value(line: usize, content: &str) -> Result<(String, Data), RegFileError> {
    let syntax = |expected| RegFileError::Syntax { line, expected };
    let (name, rest) = if let Some(rest) = content.strip_prefix('@') {
        (String::new(), rest)
    } else {
        let quoted = content
            .strip_prefix('"')
            .ok_or(syntax("a key, a value (\"name\"=...) or a comment"))?;
        parse_quoted(quoted).ok_or(syntax("a closing '\"' after the value name"))?
    };
    let data = rest
        .trim_start()
        .strip_prefix('=')
        .ok_or(syntax("'=' after the value name"))?
        .trim_start();
    if data == "-" {
        return Err(RegFileError::Unsupported {
            line,
            what: "deleting a value",
        });
    }
    if let Some(string) = data.strip_prefix('"') {
        return match parse_quoted(string) {
            Some((text, rest)) if rest.trim().is_empty() => Ok((name, Data::String(text))),
            _ => Err(syntax("a string ending with '\"'")),
        };
    }
    if let Some(digits) = strip_prefix_ignore_case(data, "dword:") {
        let value = (digits.len() <= 8)
            .then(|| u32::from_str_radix(digits, 16).ok())
            .flatten()
            .ok_or(syntax("dword: and up to 8 hex digits"))?;
        return Ok((name, Data::Dword(value)));
    }
    let (kind, list) = if let Some(list) = strip_prefix_ignore_case(data, "hex:") {
        (REG_BINARY, list)
    } else if let Some(typed) = strip_prefix_ignore_case(data, "hex(") {
        let (kind, list) = typed
            .split_once("):")
            .ok_or(syntax("hex(N): with N in hex"))?;
        let kind = u32::from_str_radix(kind, 16).map_err(|_| syntax("hex(N): with N in hex"))?;
        (kind, list)
    } else {
        return Err(syntax("a string, dword: or hex: value"));
    };
    Ok((
        name,
        Data::Hex {
            kind,
            bytes: parse_hex_list(line, list)?,
        },
    ))
}

/// The text of a quoted string (after its opening quote) with `\"` and `\\` unescaped, and
/// what follows the closing quote.
fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((index, c)) = chars.next() {
        match c {
            '"' => return Some((out, text.get(index + 1..)?)),
            '\\' => out.push(chars.next()?.1),
            _ => out.push(c),
        }
    }
    None
}

/// `aa,bb,…` (whitespace allowed around bytes; a trailing comma is tolerated).
fn parse_hex_list(line: usize, list: &str) -> Result<Vec<u8>, RegFileError> {
    let list = list.trim();
    let list = list.strip_suffix(',').unwrap_or(list);
    if list.is_empty() {
        return Ok(Vec::new());
    }
    let mut bytes = Vec::new();
    for item in list.split(',') {
        let item = item.trim();
        if item.is_empty() || item.len() > 2 {
            return Err(RegFileError::Syntax {
                line,
                expected: "hex bytes separated by commas",
            });
        }
        let byte = u8::from_str_radix(item, 16).map_err(|_| RegFileError::Syntax {
            line,
            expected: "hex bytes separated by commas",
        })?;
        if bytes.len() == MAX_VALUE_LEN {
            return Err(RegFileError::TooLarge {
                line,
                max: MAX_VALUE_LEN,
            });
        }
        bytes.push(byte);
    }
    Ok(bytes)
}

/// A `LICENSEnnn` key's values as they are read.
#[derive(Debug, Default)]
struct Partial {
    /// The key's header line, for a missing value.
    line: usize,
    key: String,
    license_info: Option<Vec<u8>>,
    company_name: Option<Vec<u8>>,
    scope: Option<Vec<u8>>,
    product_id: Option<Vec<u8>>,
    version: Option<u32>,
}

impl Partial {
    fn set(&mut self, line: usize, name: &str, data: Data) -> Result<(), RegFileError> {
        let slot = if name.eq_ignore_ascii_case("ClientLicense") {
            &mut self.license_info
        } else if name.eq_ignore_ascii_case("CompanyName") {
            &mut self.company_name
        } else if name.eq_ignore_ascii_case("LicScope") {
            &mut self.scope
        } else if name.eq_ignore_ascii_case("ProductID") {
            &mut self.product_id
        } else if name.eq_ignore_ascii_case("Version") {
            self.version = Some(match data {
                Data::Dword(version) => version,
                // The same DWORD as 4 little-endian bytes.
                other => {
                    let bytes = other.binary(line, "Version")?;
                    let found = bytes.len();
                    let le: [u8; 4] = bytes.try_into().map_err(|_| RegFileError::WrongLength {
                        line,
                        value: "Version",
                        found,
                        expected: 4,
                    })?;
                    u32::from_le_bytes(le)
                }
            });
            return Ok(());
        } else {
            return Ok(());
        };
        *slot = Some(data.binary(line, "a license value")?);
        Ok(())
    }

    fn finish(self, slot: u32) -> Result<RegLicense, RegFileError> {
        let missing = |value| RegFileError::Missing {
            line: self.line,
            key: self.key.clone(),
            value,
        };
        Ok(RegLicense {
            slot,
            version: self.version.ok_or_else(|| missing("Version"))?,
            scope: self.scope.clone().ok_or_else(|| missing("LicScope"))?,
            company_name: self
                .company_name
                .clone()
                .ok_or_else(|| missing("CompanyName"))?,
            product_id: self
                .product_id
                .clone()
                .ok_or_else(|| missing("ProductID"))?,
            license_info: self
                .license_info
                .clone()
                .ok_or_else(|| missing("ClientLicense"))?,
        })
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::super::reg_file::utf16le_with_bom;
    use super::*;

    fn utf8(text: &str) -> Vec<u8> {
        text.as_bytes().to_vec()
    }

    #[test]
    fn import_reads_hand_edited_regedit4_with_comments_and_continuations() {
        let text = "REGEDIT4\n\n; exported by hand\n\
            [HKEY_LOCAL_MACHINE\\Software\\Microsoft\\MSLicensing\\HardwareID]\n\
            \"ClientHWID\"=hex:00,00,01,04,01,02,03,04,05,06,07,08,09,0a,\\\n  0b,0c,0d,0e,0f,10\n\
            [HKEY_CURRENT_USER\\Software\\Other]\n\"x\"=\"y\"\n\
            [HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing\\Store\\license007]\r\n\
            \"ClientLicense\"=hex(3):30,82\n\"CompanyName\"=hex:41,00,00,00\n\
            \"LicScope\"=hex:73,00\n\"ProductID\"=hex:\n\"Version\"=hex:00,00,0a,00\n";
        let parsed = parse(&utf8(text)).unwrap();
        assert_eq!(parsed.hwid.unwrap()[..4], [0, 0, 1, 4]);
        assert_eq!(parsed.licenses.len(), 1);
        let license = &parsed.licenses[0];
        assert_eq!(license.slot, 7);
        assert_eq!(license.license_info, [0x30, 0x82]);
        assert_eq!(license.product_id, Vec::<u8>::new());
        assert_eq!(license.version, 0x000A_0000);
    }

    #[test]
    fn errors_name_the_line() {
        let header = "Windows Registry Editor Version 5.00\n\n";
        let key = "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing\\HardwareID]\n";
        let cases: [(String, RegFileError); 5] = [
            ("REGEDIT5\n".to_owned(), RegFileError::Header { line: 1 }),
            (
                format!("{header}{key}\"ClientHWID\"=hex:00,zz\n"),
                RegFileError::Syntax {
                    line: 4,
                    expected: "hex bytes separated by commas",
                },
            ),
            (
                format!("{header}{key}\"ClientHWID\"=hex:00,01,\\\n  02\n"),
                RegFileError::WrongLength {
                    line: 4,
                    value: "ClientHWID",
                    found: 3,
                    expected: 20,
                },
            ),
            (
                format!("{header}[-{}]\n", &key[1..key.len() - 2]),
                RegFileError::Unsupported {
                    line: 3,
                    what: "deleting a key",
                },
            ),
            (
                format!("{header}{key}\"ClientHWID\"=dword:00000001\n"),
                RegFileError::WrongType {
                    line: 4,
                    value: "ClientHWID",
                    expected: "binary (hex: or hex(3):)",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(&utf8(&text)).unwrap_err(), expected, "{text}");
        }
        let missing = format!(
            "{header}\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing\\Store\\LICENSE000]\n\"ClientLicense\"=hex:30\n"
        );
        let error = parse(&utf8(&missing)).unwrap_err();
        assert!(
            matches!(
                error,
                RegFileError::Missing {
                    line: 4,
                    value: "Version",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn text_encodings_are_checked_with_offsets() {
        assert_eq!(
            decode_text(&[0xFF, 0xFE, 0x41, 0x00, 0x00]),
            Err(RegFileError::NotUtf16 { offset: 4 })
        );
        assert_eq!(
            decode_text(&[0xFF, 0xFE, 0x41, 0x00, 0x00, 0xD8]),
            Err(RegFileError::NotUtf16 { offset: 4 })
        );
        assert_eq!(
            decode_text(b"\xEF\xBB\xBFREG\xFF"),
            Err(RegFileError::NotUtf8 { offset: 6 })
        );
        assert_eq!(
            decode_text(&utf16le_with_bom("REGEDIT4")).unwrap(),
            "REGEDIT4"
        );
    }
}

//! The license store as a regedit `.reg` file of `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing`,
//! the form administrators export mstsc's store in before deleting it.
//!
//! Known (public administrator write-ups of the MSLicensing key, e.g. "Troubleshooting
//! Terminal Server Licensing Issues, part 4" on techgenix and datadr.net's "How do I remove a
//! TS CAL from a client machine?"): the key has two subkeys, `HardwareID` with the binary
//! value `ClientHWID`, and `Store` with one subkey per CAL, `LICENSE000`, `LICENSE001`, …;
//! deleting the whole key deletes the HWID, and the client then makes a new `ClientHWID` and
//! gets a new 90-day temporary CAL. Regedit writes "Windows Registry Editor Version 5.00" files
//! in UTF-16LE with a byte order mark and CRLF line ends, binary values as `hex:` byte lists
//! wrapped with `\` continuations and two-space indents.
//!
//! Chosen (no source at hand shows a real export's values): `ClientHWID` holds the 20-byte
//! CLIENT_HARDWARE_ID as it travels (PlatformId LE32 first); each `LICENSEnnn` holds the five
//! NEW_LICENSE_INFO fields as binary values — `ClientLicense` (pbLicenseInfo, the CAL),
//! `CompanyName` and `ProductID` (UTF-16LE with their NUL), `LicScope` (8-bit with its NUL) —
//! and `Version` as a DWORD. The value names other than `ClientLicense` are recalled from
//! regedit views of real clients, not confirmed here.
//!
//! Reading such a file back is [`super::reg_import`].

use rdpele_proto::wire::{ClientHardwareId, NewLicenseInfo, Wire};

use super::{LicenseDir, LicenseDirError, LICENSE_PREFIX};

pub(super) const HEADER_5: &str = "Windows Registry Editor Version 5.00";
pub(super) const HEADER_4: &str = "REGEDIT4";
pub(super) const ROOT: &str = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing";
pub(super) const HARDWARE_ID: &str = "HardwareID";
pub(super) const STORE: &str = "Store";
/// Regedit's line width: at most 77 characters before a continuation's backslash.
const LINE_WIDTH: usize = 77;
pub(super) const BOM_UTF16LE: [u8; 2] = [0xFF, 0xFE];
pub(super) const BOM_UTF8: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// The store a `.reg` file describes: raw field bytes, so an import writes back exactly what
/// was exported.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RegStore {
    pub hwid: Option<[u8; ClientHardwareId::LEN]>,
    pub licenses: Vec<RegLicense>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct RegLicense {
    pub slot: u32,
    pub version: u32,
    pub scope: Vec<u8>,
    pub company_name: Vec<u8>,
    pub product_id: Vec<u8>,
    pub license_info: Vec<u8>,
}

/// The store as regedit would export it, encoded as regedit writes it.
pub(super) fn export(store: &LicenseDir) -> Result<Vec<u8>, LicenseDirError> {
    let mut text = Text::default();
    text.line(HEADER_5);
    text.line("");
    text.line(&format!("[{ROOT}]"));
    text.line("");
    text.line(&format!(r"[{ROOT}\{HARDWARE_ID}]"));
    text.hex("ClientHWID", &store.hwid.to_bytes());
    text.line("");
    text.line(&format!(r"[{ROOT}\{STORE}]"));
    text.line("");
    for license in &store.licenses {
        let info =
            NewLicenseInfo::decode(&license.file).map_err(|error| LicenseDirError::Malformed {
                path: license.path.clone(),
                error,
            })?;
        text.line(&format!(
            r"[{ROOT}\{STORE}\{LICENSE_PREFIX}{:03}]",
            license.slot
        ));
        text.hex("ClientLicense", info.license_info);
        text.hex("CompanyName", info.company_name.0);
        text.hex("LicScope", info.scope.0);
        text.hex("ProductID", info.product_id.0);
        text.line(&format!("\"Version\"=dword:{:08x}", info.version));
        text.line("");
    }
    Ok(utf16le_with_bom(&text.0))
}

/// Regedit's text: CRLF line ends.
#[derive(Default)]
struct Text(String);

impl Text {
    fn line(&mut self, line: &str) {
        self.0.push_str(line);
        self.0.push_str("\r\n");
    }

    /// `"name"=hex:xx,xx,…` wrapped as regedit wraps it.
    fn hex(&mut self, name: &str, bytes: &[u8]) {
        let mut line = format!("\"{name}\"=hex:");
        let mut rest = bytes.iter().peekable();
        while let Some(byte) = rest.next() {
            if line.len() + 3 > LINE_WIDTH {
                line.push('\\');
                self.line(&line);
                line = "  ".to_owned();
            }
            line.push_str(&format!("{byte:02x}"));
            if rest.peek().is_some() {
                line.push(',');
            }
        }
        self.line(&line);
    }
}

pub(super) fn utf16le_with_bom(text: &str) -> Vec<u8> {
    BOM_UTF16LE
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use rdpele_proto::machine::ProductKey;

    use super::super::reg_import::{decode_text, parse};
    use super::super::Layout;
    use super::*;
    use crate::client::StoreLicense;

    #[test]
    fn export_is_regedits_utf16_with_wrapped_hex() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LicenseDir::open(dir.path()).unwrap();
        let product = ProductKey {
            version: 0x000A_0000,
            company_name: "Microsoft Corporation".to_owned(),
            product_id: "A02".to_owned(),
            scope: "microsoft.com".to_owned(),
        };
        store.store_license(&product, &[0x30; 100]).unwrap();
        let bytes = export(&store).unwrap();
        assert_eq!(bytes[..2], BOM_UTF16LE);
        let text = decode_text(&bytes).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], HEADER_5);
        assert!(text.contains("[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing\\Store\\LICENSE000]\r\n\"ClientLicense\"=hex:30,30,"));
        assert!(text.contains("\"Version\"=dword:000a0000\r\n"));
        assert!(
            lines.iter().all(|line| line.len() <= LINE_WIDTH + 1),
            "{text}"
        );
        assert!(lines
            .iter()
            .any(|line| line.starts_with("  30,") && line.ends_with(",\\")));

        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.hwid, Some(store.hwid().to_bytes()));
        let license = &parsed.licenses[0];
        assert_eq!(license.license_info, [0x30; 100]);
        assert_eq!(license.scope, b"microsoft.com\0");
        assert_eq!(license.version, 0x000A_0000);
        assert_eq!(store.layout(), &Layout::Mstsc);
    }
}

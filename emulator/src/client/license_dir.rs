//! The emulated client's license store on disk: laid out like mstsc's registry key
//! `HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing`, or like FreeRDP's license directory so
//! the same store can be handed to xfreerdp.
//!
//! # mstsc layout ([`Layout::Mstsc`])
//!
//! ```text
//! DIR/HardwareID/ClientHWID   the 20-byte CLIENT_HARDWARE_ID (MS-RDPELE 2.2.2.3.1) as it travels:
//!                             PlatformId 0x04010000 (LE32), then 16 bytes from a CSPRNG,
//!                             made once per store
//! DIR/Store/LICENSE000        one file per CAL: a NEW_LICENSE_INFO (MS-RDPELE 2.2.2.6.1)
//! DIR/Store/LICENSE001        …
//! ```
//!
//! Each `LICENSEnnn` file is the NEW_LICENSE_INFO structure, little-endian: dwVersion (product
//! version), cbScope + pbScope (8-bit, NUL-terminated), cbCompanyName + pbCompanyName and
//! cbProductId + pbProductId (UTF-16LE, NUL-terminated), cbLicenseInfo + pbLicenseInfo (the
//! CAL). It is the specification's own record of "a CAL and the product it is for" — exactly
//! what a client files a CAL under — so it needs no format of ours, and `rdpele cal inspect`
//! reads the file as it is. The same five fields are the values of mstsc's
//! `Store\LICENSEnnn` registry keys (`reg_file`).
//!
//! A CAL is found as the client state machine files it: by equal product version, company
//! name, product id and scope (proto's [`ProductKey`]). Storing a CAL for a product already
//! held rewrites that product's file (an Upgrade License supersedes the CAL presented);
//! another product gets the next `LICENSEnnn`. Files in `Store` not named `LICENSE` + digits
//! are not the store's and are left alone.
//!
//! # FreeRDP layout ([`Layout::Freerdp`])
//!
//! `DIR/licenses/<sha1hex(client hostname)>.cal` holding exactly pbLicenseInfo, where DIR is
//! what xfreerdp calls `$XDG_CONFIG_HOME/freerdp` (`$HOME/.config/freerdp`). FreeRDP files one
//! CAL per client hostname whatever the server's product, so [`LicenseStore::find`] returns it
//! for any product. Its HWID is FreeRDP's too, LE32(0x04010000) ‖ MD5(client hostname): a
//! per-device license server binds the CAL to the HWID it was issued to, so only a CAL issued
//! to xfreerdp's own HWID is one xfreerdp can present. (FreeRDP 2.x `license_generate_hwid` and
//! `computeCalHash`, without `+old-license`.)
//!
//! Writes go to a temporary file in the same directory, are synced, then renamed over the
//! target, so a crash leaves the old file or the new one, never half of one. Reads are bounded.
//! Two processes writing one store at once are not coordinated (mstsc does not either).

mod files;
mod reg_file;
mod reg_import;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use md5::Md5;
use rand::Rng;
use rdpele_proto::machine::{LicenseStore, ProductKey};
use rdpele_proto::wire::{
    Ascii, ClientHardwareId, EncodeError, NewLicenseInfo, Utf16, Wire, WireError,
};
use sha1::{Digest, Sha1};

pub use reg_import::RegFileError;

use files::{read_bounded, remove, write_atomic};

use super::options::PLATFORM_ID;
use super::store::StoreLicense;

/// The largest CAL (pbLicenseInfo) the store keeps: Windows' are 2–6 KB.
pub const MAX_LICENSE_LEN: usize = 64 * 1024;
/// Room for a LICENSEnnn file's other fields (five length/version words, scope, company name,
/// product id; Windows' are tens of bytes).
const MAX_PRODUCT_FIELDS_LEN: usize = 4 * 1024;

const HARDWARE_ID_DIR: &str = "HardwareID";
const CLIENT_HWID: &str = "ClientHWID";
const STORE_DIR: &str = "Store";
const LICENSE_PREFIX: &str = "LICENSE";
const FREERDP_LICENSES_DIR: &str = "licenses";

/// How the store is laid out on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// mstsc's registry key as directories and files.
    Mstsc,
    /// xfreerdp's `licenses/` directory; CALs and the HWID follow from the client hostname.
    Freerdp { client_hostname: String },
}

impl Layout {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Mstsc => "mstsc",
            Self::Freerdp { .. } => "freerdp",
        }
    }
}

/// A license store that cannot be read or written; each variant names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LicenseDirError {
    #[error("{}: {error}", path.display())]
    Io { path: PathBuf, error: io::Error },
    #[error("{}: larger than {max} bytes", path.display())]
    TooLarge { path: PathBuf, max: usize },
    /// A `LICENSEnnn` file that is not a NEW_LICENSE_INFO (the error names field and offset).
    #[error("{}: {error}", path.display())]
    Malformed { path: PathBuf, error: WireError },
    /// A `ClientHWID` file shorter than a CLIENT_HARDWARE_ID (a longer one is `TooLarge`).
    #[error("{}: CLIENT_HARDWARE_ID ends at byte offset {len}, expected 20 bytes", path.display())]
    HwidLength { path: PathBuf, len: usize },
    #[error("{}: a {len}-byte CAL (pbLicenseInfo), more than {max}", path.display())]
    LicenseTooLarge {
        path: PathBuf,
        len: usize,
        max: usize,
    },
    #[error("encoding NEW_LICENSE_INFO: {0}")]
    Encode(EncodeError),
    /// Import refuses to mix a .reg file's store with the one already in the directory.
    #[error("{}: already holds a license store (HardwareID or Store); reset it first", path.display())]
    NotEmpty { path: PathBuf },
    #[error("{}: {error}", path.display())]
    RegFile { path: PathBuf, error: RegFileError },
    #[error("the {0} layout has no registry form; export and import work on the mstsc layout")]
    NotMstsc(&'static str),
}

/// One stored CAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLicense {
    /// `nnn` of `Store/LICENSEnnn`; 0 for FreeRDP's single file.
    pub slot: u32,
    pub path: PathBuf,
    /// The product it is filed under; `None` in the FreeRDP layout, which files by hostname.
    pub product: Option<ProductKey>,
    /// The CAL, pbLicenseInfo.
    pub license_info: Vec<u8>,
    /// The file's bytes: a NEW_LICENSE_INFO (mstsc) or the CAL itself (FreeRDP).
    file: Vec<u8>,
}

/// A license store in a directory.
#[derive(Debug)]
pub struct LicenseDir {
    root: PathBuf,
    layout: Layout,
    hwid: ClientHardwareId,
    /// In slot order.
    licenses: Vec<StoredLicense>,
}

impl LicenseDir {
    /// Opens (creating if need be) an mstsc-layout store at `root`; a store without
    /// `HardwareID/ClientHWID` gets a new random HWID.
    pub fn open(root: &Path) -> Result<Self, LicenseDirError> {
        Self::open_as(root, Layout::Mstsc)
    }

    /// Opens the store at `root` laid out as `layout`.
    pub fn open_as(root: &Path, layout: Layout) -> Result<Self, LicenseDirError> {
        fs::create_dir_all(root).map_err(|source| io_error(root, source))?;
        let (hwid, licenses) = match &layout {
            Layout::Mstsc => (read_or_make_hwid(root)?, read_store(&root.join(STORE_DIR))?),
            Layout::Freerdp { client_hostname } => {
                let path = freerdp_license_path(root, client_hostname);
                let licenses = read_bounded(&path, MAX_LICENSE_LEN)?
                    .map(|cal| StoredLicense {
                        slot: 0,
                        path,
                        product: None,
                        license_info: cal.clone(),
                        file: cal,
                    })
                    .into_iter()
                    .collect();
                (freerdp_hwid(client_hostname), licenses)
            }
        };
        Ok(Self {
            root: root.to_owned(),
            layout,
            hwid,
            licenses,
        })
    }

    /// The documented workaround for a corrupt client license store: mstsc's `HardwareID` and
    /// `Store` deleted, so the next open makes a new HWID and the client has no CAL — to a
    /// license server, a new device. Works on a store that no longer opens. In the FreeRDP
    /// layout only the CAL goes: xfreerdp's HWID follows from the hostname and cannot change.
    pub fn reset(root: &Path, layout: &Layout) -> Result<(), LicenseDirError> {
        let removed = match layout {
            Layout::Mstsc => [HARDWARE_ID_DIR, STORE_DIR]
                .into_iter()
                .try_for_each(|name| remove(&root.join(name), |path| fs::remove_dir_all(path))),
            Layout::Freerdp { client_hostname } => {
                remove(&freerdp_license_path(root, client_hostname), |path| {
                    fs::remove_file(path)
                })
            }
        };
        removed.map_err(|(path, error)| LicenseDirError::Io { path, error })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The HWID the client proves itself with.
    pub fn hwid(&self) -> ClientHardwareId {
        self.hwid
    }

    /// The stored CALs, in `LICENSEnnn` order.
    pub fn licenses(&self) -> &[StoredLicense] {
        &self.licenses
    }

    /// Writes the store as a regedit `.reg` file (UTF-16LE with a byte order mark, as regedit
    /// writes); see `reg_file` for what is mstsc's and what is chosen.
    pub fn export_reg(&self, path: &Path) -> Result<(), LicenseDirError> {
        if self.layout != Layout::Mstsc {
            return Err(LicenseDirError::NotMstsc(self.layout.name()));
        }
        write_atomic(path, &reg_file::export(self)?)
    }

    /// Makes an mstsc-layout store at `root` from a `.reg` file's bytes (`reg_path` names it in
    /// errors). `root` must hold no store yet; the HWID and every CAL come out byte for byte as
    /// exported, in the same `LICENSEnnn` slots.
    pub fn import_reg(root: &Path, reg_path: &Path, reg: &[u8]) -> Result<Self, LicenseDirError> {
        let imported = reg_import::parse(reg).map_err(|error| LicenseDirError::RegFile {
            path: reg_path.to_owned(),
            error,
        })?;
        for name in [HARDWARE_ID_DIR, STORE_DIR] {
            if root.join(name).exists() {
                return Err(LicenseDirError::NotEmpty {
                    path: root.to_owned(),
                });
            }
        }
        if let Some(hwid) = imported.hwid {
            write_atomic(&root.join(HARDWARE_ID_DIR).join(CLIENT_HWID), &hwid)?;
        }
        for license in &imported.licenses {
            let file = NewLicenseInfo {
                version: license.version,
                scope: Ascii(&license.scope),
                company_name: Utf16(&license.company_name),
                product_id: Utf16(&license.product_id),
                license_info: &license.license_info,
            }
            .to_vec()
            .map_err(LicenseDirError::Encode)?;
            write_atomic(&license_path(root, license.slot), &file)?;
        }
        Self::open(root)
    }

    fn store_mstsc(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), LicenseDirError> {
        let scope = Ascii::encode_nul_terminated(&product.scope);
        let company_name = Utf16::encode_nul_terminated(&product.company_name);
        let product_id = Utf16::encode_nul_terminated(&product.product_id);
        let file = NewLicenseInfo {
            version: product.version,
            scope: Ascii(&scope),
            company_name: Utf16(&company_name),
            product_id: Utf16(&product_id),
            license_info,
        }
        .to_vec()
        .map_err(LicenseDirError::Encode)?;
        let held = self.position(product);
        let slot = match held.and_then(|index| self.licenses.get(index)) {
            Some(license) => license.slot,
            None => self
                .licenses
                .iter()
                .map(|license| license.slot)
                .max()
                .map_or(0, |last| last.saturating_add(1)),
        };
        let path = license_path(&self.root, slot);
        write_atomic(&path, &file)?;
        let stored = StoredLicense {
            slot,
            path,
            product: Some(product.clone()),
            license_info: license_info.to_vec(),
            file,
        };
        match held.and_then(|index| self.licenses.get_mut(index)) {
            Some(license) => *license = stored,
            None => self.licenses.push(stored),
        }
        Ok(())
    }

    fn store_freerdp(
        &mut self,
        client_hostname: &str,
        license_info: &[u8],
    ) -> Result<(), LicenseDirError> {
        let path = freerdp_license_path(&self.root, client_hostname);
        write_atomic(&path, license_info)?;
        self.licenses = vec![StoredLicense {
            slot: 0,
            path,
            product: None,
            license_info: license_info.to_vec(),
            file: license_info.to_vec(),
        }];
        Ok(())
    }

    /// The index of the CAL filed under `product`.
    fn position(&self, product: &ProductKey) -> Option<usize> {
        self.licenses
            .iter()
            .position(|held| held.product.as_ref() == Some(product))
    }
}

impl LicenseStore for LicenseDir {
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>> {
        let found = match self.layout {
            Layout::Mstsc => self.position(product).and_then(|i| self.licenses.get(i)),
            Layout::Freerdp { .. } => self.licenses.first(),
        };
        found.map(|held| held.license_info.clone())
    }
}

impl StoreLicense for LicenseDir {
    type Error = LicenseDirError;

    fn store_license(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), LicenseDirError> {
        if license_info.len() > MAX_LICENSE_LEN {
            return Err(LicenseDirError::LicenseTooLarge {
                path: self.root.clone(),
                len: license_info.len(),
                max: MAX_LICENSE_LEN,
            });
        }
        match self.layout.clone() {
            Layout::Mstsc => self.store_mstsc(product, license_info),
            Layout::Freerdp { client_hostname } => {
                self.store_freerdp(&client_hostname, license_info)
            }
        }
    }
}

/// xfreerdp's HWID for `client_hostname`: LE32(0x04010000) ‖ MD5(hostname).
pub fn freerdp_hwid(client_hostname: &str) -> ClientHardwareId {
    ClientHardwareId {
        platform_id: PLATFORM_ID,
        data: Md5::digest(client_hostname.as_bytes()).into(),
    }
}

/// Where xfreerdp keeps the CAL of `client_hostname`, under its `freerdp` config directory.
pub fn freerdp_license_path(root: &Path, client_hostname: &str) -> PathBuf {
    let name = hex::encode(Sha1::digest(client_hostname.as_bytes()));
    root.join(FREERDP_LICENSES_DIR).join(format!("{name}.cal"))
}

fn license_path(root: &Path, slot: u32) -> PathBuf {
    root.join(STORE_DIR)
        .join(format!("{LICENSE_PREFIX}{slot:03}"))
}

/// The slot of a `LICENSEnnn` name.
fn license_slot(name: &str) -> Option<u32> {
    let digits = name.strip_prefix(LICENSE_PREFIX)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn read_or_make_hwid(root: &Path) -> Result<ClientHardwareId, LicenseDirError> {
    let path = root.join(HARDWARE_ID_DIR).join(CLIENT_HWID);
    match read_bounded(&path, ClientHardwareId::LEN)? {
        Some(bytes) => {
            let hwid: [u8; ClientHardwareId::LEN] =
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| LicenseDirError::HwidLength {
                        path: path.clone(),
                        len: bytes.len(),
                    })?;
            Ok(ClientHardwareId::from_bytes(hwid))
        }
        None => {
            // ThreadRng is a CSPRNG (ChaCha12 seeded and reseeded from the OS).
            let mut data = [0u8; 16];
            rand::rng().fill_bytes(&mut data);
            let hwid = ClientHardwareId {
                platform_id: PLATFORM_ID,
                data,
            };
            write_atomic(&path, &hwid.to_bytes())?;
            Ok(hwid)
        }
    }
}

fn read_store(dir: &Path) -> Result<Vec<StoredLicense>, LicenseDirError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io_error(dir, source)),
    };
    let mut licenses = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| io_error(dir, source))?;
        let Some(slot) = entry.file_name().to_str().and_then(license_slot) else {
            continue;
        };
        let path = entry.path();
        let Some(file) = read_bounded(&path, MAX_LICENSE_LEN + MAX_PRODUCT_FIELDS_LEN)? else {
            continue;
        };
        let info = NewLicenseInfo::decode(&file).map_err(|error| LicenseDirError::Malformed {
            path: path.clone(),
            error,
        })?;
        if info.license_info.len() > MAX_LICENSE_LEN {
            return Err(LicenseDirError::LicenseTooLarge {
                path,
                len: info.license_info.len(),
                max: MAX_LICENSE_LEN,
            });
        }
        // As the client state machine builds the key from a NEW_LICENSE_INFO.
        let product = ProductKey {
            version: info.version,
            company_name: info.company_name.to_string_lossy(),
            product_id: info.product_id.to_string_lossy(),
            scope: info.scope.to_string_lossy().into_owned(),
        };
        let license_info = info.license_info.to_vec();
        licenses.push(StoredLicense {
            slot,
            path,
            product: Some(product),
            license_info,
            file,
        });
    }
    licenses.sort_by_key(|held| held.slot);
    Ok(licenses)
}

fn io_error(path: &Path, source: io::Error) -> LicenseDirError {
    LicenseDirError::Io {
        path: path.to_owned(),
        error: source,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn product(version: u32, scope: &str) -> ProductKey {
        ProductKey {
            version,
            company_name: "Microsoft Corporation".to_owned(),
            product_id: "A02".to_owned(),
            scope: scope.to_owned(),
        }
    }

    #[test]
    fn the_hwid_is_made_once_per_store_with_windows_platform_id() {
        let dir = tempfile::tempdir().unwrap();
        let first = LicenseDir::open(dir.path()).unwrap().hwid();
        assert_eq!(first.platform_id, 0x0401_0000);
        let bytes = fs::read(dir.path().join("HardwareID/ClientHWID")).unwrap();
        assert_eq!(bytes, first.to_bytes());
        assert_eq!(LicenseDir::open(dir.path()).unwrap().hwid(), first);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(LicenseDir::open(other.path()).unwrap().hwid(), first);
    }

    #[test]
    fn cals_are_filed_by_product_and_scope_and_replaced_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LicenseDir::open(dir.path()).unwrap();
        let a = product(0x000A_0000, "microsoft.com");
        let b = product(0x000A_0000, "example.org");
        store.store_license(&a, b"\x30temporary").unwrap();
        store.store_license(&b, b"\x30other").unwrap();
        store.store_license(&a, b"\x30permanent").unwrap();
        assert_eq!(store.find(&a).unwrap(), b"\x30permanent");
        assert_eq!(store.find(&product(0x0006_0000, "microsoft.com")), None);

        let reopened = LicenseDir::open(dir.path()).unwrap();
        assert_eq!(reopened.find(&a).unwrap(), b"\x30permanent");
        assert_eq!(reopened.find(&b).unwrap(), b"\x30other");
        let slots: Vec<u32> = reopened.licenses().iter().map(|l| l.slot).collect();
        assert_eq!(slots, [0, 1]);
        assert!(dir.path().join("Store/LICENSE000").is_file());
        // The file is the NEW_LICENSE_INFO of the product and the CAL.
        let file = fs::read(dir.path().join("Store/LICENSE001")).unwrap();
        let info = NewLicenseInfo::decode(&file).unwrap();
        assert_eq!(info.scope.to_string_lossy(), "example.org");
        assert_eq!(info.license_info, b"\x30other");
    }

    #[test]
    fn a_malformed_license_file_is_named_with_field_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LicenseDir::open(dir.path()).unwrap();
        store
            .store_license(&product(1, "microsoft.com"), b"\x30cal")
            .unwrap();
        let path = dir.path().join("Store/LICENSE000");
        let mut bytes = fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 1);
        fs::write(&path, &bytes).unwrap();
        let error = LicenseDir::open(dir.path()).unwrap_err().to_string();
        assert!(error.contains("LICENSE000"), "{error}");
        assert!(error.contains("NEW_LICENSE_INFO.pbLicenseInfo"), "{error}");
        assert!(error.contains("byte offset"), "{error}");
    }

    #[test]
    fn a_hwid_of_the_wrong_length_and_an_oversized_file_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("HardwareID")).unwrap();
        fs::write(dir.path().join("HardwareID/ClientHWID"), [1u8; 7]).unwrap();
        let error = LicenseDir::open(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains("ClientHWID") && error.contains("offset 7"),
            "{error}"
        );

        LicenseDir::reset(dir.path(), &Layout::Mstsc).unwrap();
        fs::create_dir_all(dir.path().join("Store")).unwrap();
        fs::write(
            dir.path().join("Store/LICENSE000"),
            vec![0u8; MAX_LICENSE_LEN + MAX_PRODUCT_FIELDS_LEN + 1],
        )
        .unwrap();
        let error = LicenseDir::open(dir.path()).unwrap_err();
        assert!(matches!(error, LicenseDirError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn reset_gives_a_new_hwid_and_no_cals_even_for_a_corrupt_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LicenseDir::open(dir.path()).unwrap();
        let before = store.hwid();
        store.store_license(&product(1, "s"), b"\x30cal").unwrap();
        fs::write(dir.path().join("Store/LICENSE000"), b"junk").unwrap();
        assert!(LicenseDir::open(dir.path()).is_err());
        LicenseDir::reset(dir.path(), &Layout::Mstsc).unwrap();
        let after = LicenseDir::open(dir.path()).unwrap();
        assert_ne!(after.hwid(), before);
        assert!(after.licenses().is_empty());
    }

    #[test]
    fn the_freerdp_layout_is_xfreerdps() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::Freerdp {
            client_hostname: "ubuntu2".to_owned(),
        };
        let mut store = LicenseDir::open_as(dir.path(), layout.clone()).unwrap();
        // The HWID of the 2019 CAL in captures/, issued to xfreerdp on "ubuntu2".
        let cal = rdpele_proto::cal::parse_cal(include_bytes!(
            "../../../captures/windows2019_cal_temporary.p7b"
        ))
        .unwrap();
        assert_eq!(store.hwid(), cal.client_license.hwid);
        store
            .store_license(&product(1, "microsoft.com"), b"\x30cal")
            .unwrap();
        let path = dir
            .path()
            .join("licenses/10cbcce48010ffa5dcd4752290bc80ddb35dfa57.cal");
        assert_eq!(freerdp_license_path(dir.path(), "ubuntu2"), path);
        assert_eq!(fs::read(&path).unwrap(), b"\x30cal");
        // One CAL per hostname, whatever the product.
        let reopened = LicenseDir::open_as(dir.path(), layout.clone()).unwrap();
        assert_eq!(reopened.find(&product(7, "x")).unwrap(), b"\x30cal");
        LicenseDir::reset(dir.path(), &layout).unwrap();
        assert!(!path.exists());
    }

    #[test]
    fn license_slots_are_license_and_digits() {
        assert_eq!(license_slot("LICENSE000"), Some(0));
        assert_eq!(license_slot("LICENSE012"), Some(12));
        assert_eq!(license_slot("LICENSE1000"), Some(1000));
        assert_eq!(license_slot(".LICENSE000.1.tmp"), None);
        assert_eq!(license_slot("LICENSE"), None);
        assert_eq!(license_slot("LICENSE00x"), None);
    }
}

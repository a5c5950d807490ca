//! A file-backed [`LicenseCache`]: one file per CAL, holding the `pbLicenseInfo` bytes exactly as
//! the server sent them in its New/Upgrade License, so other tools can parse the file directly.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use ironrdp_connector::{ConnectorError, ConnectorErrorExt as _, ConnectorResult, LicenseCache};
use ironrdp_pdu::rdp::server_license::LicenseInformation;
use sha2::{Digest as _, Sha256};
use tracing::debug;

/// What IronRDP asked of the cache during one connection; the connector itself reports none of it.
#[derive(Debug, Default, Clone)]
pub struct CacheActivity {
    /// `get_license` was called, i.e. the server sent a Server License Request.
    pub looked_up: bool,
    /// The file handed back to IronRDP, which it then sent in a Client License Info.
    pub presented: Option<PathBuf>,
    /// The file written from a Server New License or Server Upgrade License.
    pub stored: Option<PathBuf>,
}

impl CacheActivity {
    /// One-phrase summary for the JSON report.
    pub fn summary(&self) -> &'static str {
        match (self.looked_up, &self.presented, &self.stored) {
            (_, Some(_), Some(_)) => "license presented and replaced",
            (_, None, Some(_)) => "license stored",
            (_, Some(_), None) => "license presented",
            (true, None, None) => "no license stored",
            (false, None, None) => "license cache not consulted",
        }
    }
}

/// Stores CALs as `<dir>/<sha256 hex of the key>.cal`.
///
/// The key is the client machine name plus the server's company name, product id and scope, which
/// is what IronRDP passes to both `get_license` (from PRODUCT_INFO and each scope of the Server
/// License Request) and `store_license` (from the decrypted NEW_LICENSE_INFO). `dwVersion` is left
/// out on purpose: a server of a newer version must still find the older CAL, because presenting it
/// is what triggers the Upgrade License flow, and the upgraded CAL then overwrites the same file.
/// The machine name is in the key because a CAL belongs to one client device, so two `--machine`
/// values sharing a directory behave as two separate clients. The key is hashed because company
/// name and scope come from the server and could otherwise make an over-long or unsafe file name.
#[derive(Debug)]
pub struct FileLicenseCache {
    dir: PathBuf,
    machine: String,
    activity: Mutex<CacheActivity>,
}

impl FileLicenseCache {
    pub fn new(dir: PathBuf, machine: String) -> Self {
        Self {
            dir,
            machine,
            activity: Mutex::new(CacheActivity::default()),
        }
    }

    pub fn activity(&self) -> CacheActivity {
        self.lock_activity().clone()
    }

    /// A panic while holding the lock cannot leave `CacheActivity` half-updated (each update is a
    /// single assignment), so a poisoned lock is still safe to read.
    fn lock_activity(&self) -> MutexGuard<'_, CacheActivity> {
        self.activity
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn path_for(&self, info: &LicenseInformation) -> PathBuf {
        let mut hasher = Sha256::new();
        // NUL separators keep ("ab", "c") and ("a", "bc") apart; none of the fields can contain NUL
        // after IronRDP's null-terminated string decoding.
        for field in [
            self.machine.as_str(),
            info.company_name.as_str(),
            info.product_id.as_str(),
            info.scope.as_str(),
        ] {
            hasher.update(field.as_bytes());
            hasher.update([0u8]);
        }
        let name: String = hasher
            .finalize()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        self.dir.join(format!("{name}.cal"))
    }
}

impl LicenseCache for FileLicenseCache {
    fn get_license(&self, license_info: LicenseInformation) -> ConnectorResult<Option<Vec<u8>>> {
        self.lock_activity().looked_up = true;
        let path = self.path_for(&license_info);
        debug!(
            company_name = license_info.company_name,
            product_id = license_info.product_id,
            scope = license_info.scope,
            version = format_args!("{:#010x}", license_info.version),
            path = %path.display(),
            "license cache lookup"
        );
        match fs::read(&path) {
            Ok(bytes) => {
                self.lock_activity().presented = Some(path);
                Ok(Some(bytes))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(ConnectorError::custom("read cached license", error)),
        }
    }

    fn store_license(&self, license_info: LicenseInformation) -> ConnectorResult<()> {
        let path = self.path_for(&license_info);
        debug!(
            company_name = license_info.company_name,
            product_id = license_info.product_id,
            scope = license_info.scope,
            version = format_args!("{:#010x}", license_info.version),
            path = %path.display(),
            "license cache store"
        );
        write_atomically(&path, &license_info.license_info)
            .map_err(|error| ConnectorError::custom("store license", error))?;
        self.lock_activity().stored = Some(path);
        Ok(())
    }
}

/// Writes through a temporary file and a rename, so a reader (or a crash mid-write) never sees a
/// truncated CAL under the final name.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let temporary = path.with_extension("cal.tmp");
    fs::write(&temporary, bytes)?;
    fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(scope: &str, license: &[u8]) -> LicenseInformation {
        LicenseInformation {
            version: 0x000A_0000,
            scope: scope.to_owned(),
            company_name: "Microsoft Corporation".to_owned(),
            product_id: "A02".to_owned(),
            license_info: license.to_vec(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "rdpele-ironrdp-cache-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn stored_license_is_found_again_with_exact_bytes() {
        let dir = temp_dir("roundtrip");
        let cache = FileLicenseCache::new(dir.clone(), "CLIENT1".to_owned());
        assert_eq!(cache.get_license(info("microsoft.com", &[])).unwrap(), None);
        assert_eq!(cache.activity().summary(), "no license stored");

        let cal = [0x30, 0x82, 0x01, 0x00, 0xff];
        cache.store_license(info("microsoft.com", &cal)).unwrap();
        let stored = cache.activity().stored.unwrap();
        assert_eq!(fs::read(&stored).unwrap(), cal);

        let next_run = FileLicenseCache::new(dir.clone(), "CLIENT1".to_owned());
        assert_eq!(
            next_run.get_license(info("microsoft.com", &[])).unwrap(),
            Some(cal.to_vec())
        );
        assert_eq!(next_run.activity().summary(), "license presented");
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_machine_or_scope_does_not_see_the_license() {
        let dir = temp_dir("isolation");
        let cache = FileLicenseCache::new(dir.clone(), "CLIENT1".to_owned());
        cache
            .store_license(info("microsoft.com", &[1, 2, 3]))
            .unwrap();

        let other_machine = FileLicenseCache::new(dir.clone(), "CLIENT2".to_owned());
        assert_eq!(
            other_machine
                .get_license(info("microsoft.com", &[]))
                .unwrap(),
            None
        );
        assert_eq!(cache.get_license(info("example.org", &[])).unwrap(), None);
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn version_is_not_part_of_the_key() {
        let dir = temp_dir("version");
        let cache = FileLicenseCache::new(dir.clone(), "CLIENT1".to_owned());
        cache.store_license(info("microsoft.com", &[7])).unwrap();
        let mut newer = info("microsoft.com", &[]);
        newer.version = 0x000B_0000;
        assert_eq!(cache.get_license(newer).unwrap(), Some(vec![7]));
        fs::remove_dir_all(dir).unwrap();
    }
}

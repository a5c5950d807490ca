//! The write side of the client's license store. [`LicenseStore`] is what the licensing machine
//! reads (MS-RDPELE 3.3.5.1); storing a New or Upgrade License is an event the caller carries
//! out (3.3.5.5, 3.3.5.6) — this trait is how the emulated client carries it out.

use std::collections::HashMap;
use std::convert::Infallible;

use rdpele_proto::machine::{LicenseStore, ProductKey};

/// A license store the emulated client can write: mstsc's registry layout, FreeRDP's files,
/// or memory.
pub trait StoreLicense: LicenseStore {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Files `license_info` (`pbLicenseInfo`, the CAL) under `product`, replacing what was
    /// there: an Upgrade License supersedes the CAL presented for the same product.
    fn store_license(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), Self::Error>;
}

/// A license store in memory: one CAL per product and scope, as mstsc files them. What the
/// fleet's and the demo's devices keep.
#[derive(Clone, Debug, Default)]
pub struct MemoryLicenses {
    licenses: HashMap<ProductKey, Vec<u8>>,
}

impl MemoryLicenses {
    /// Every CAL held (`pbLicenseInfo`), in no particular order.
    pub fn cals(&self) -> impl Iterator<Item = &[u8]> {
        self.licenses.values().map(Vec::as_slice)
    }
}

impl LicenseStore for MemoryLicenses {
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>> {
        self.licenses.get(product).cloned()
    }
}

impl StoreLicense for MemoryLicenses {
    type Error = Infallible;

    fn store_license(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), Infallible> {
        self.licenses.insert(product.clone(), license_info.to_vec());
        Ok(())
    }
}

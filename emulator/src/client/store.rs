//! The write side of the client's license store. [`LicenseStore`] is what the licensing machine
//! reads (MS-RDPELE 3.3.5.1); storing a New or Upgrade License is an event the caller carries
//! out (3.3.5.5, 3.3.5.6) — this trait is how the emulated client carries it out.

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

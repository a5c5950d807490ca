//! The emulated client (`rdpele client`): an mstsc-like RDP client that connects over TLS,
//! licenses through [`rdpele_proto::machine::ClientMachine`] with a license store of the
//! caller's, activates the session and reports what the host decided — the other half of
//! interop testing, against `rdpele serve` or a real host (xrdp, Windows RDS).

mod activation;
mod connection;
mod error;
mod license_dir;
mod licensing;
mod options;
mod report;
mod server_pdu;
mod store;
mod tls;

pub use connection::{connect, connect_through_licensing};
pub use error::ClientError;
pub use license_dir::{
    freerdp_hwid, freerdp_license_path, Layout, LicenseDir, LicenseDirError, RegFileError,
    StoredLicense, MAX_LICENSE_LEN,
};
pub use options::{ClientOptions, ClientSecurity, PLATFORM_ID};
pub use report::{ClientReport, Ending, LicensingOutcome, Timings};
pub use store::{MemoryLicenses, StoreLicense};

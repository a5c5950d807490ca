//! rdpele-proto: the RDP licensing protocol (MS-RDPELE over MS-RDPBCGR 2.2.1.12) without I/O.
//!
//! - [`wire`]: every licensing structure, parsed (nom, borrowing) and encoded byte for byte.
//! - [`envelope`]: TPKT, X.224, MCS Send Data and security headers around licensing PDUs.
//! - [`crypto`]: licensing key derivation, RC4, MACs, the RSA premaster exchange and
//!   proprietary certificates (MS-RDPELE 5.1).

pub mod crypto;
pub mod envelope;
pub mod wire;

#[cfg(feature = "arbitrary")]
pub mod fuzzing;

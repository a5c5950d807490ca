//! rdpele-proto: the RDP licensing protocol (MS-RDPELE over MS-RDPBCGR 2.2.1.12) without I/O.
//!
//! - [`wire`]: every licensing structure, parsed (nom, borrowing) and encoded byte for byte.
//! - [`envelope`]: TPKT, X.224, MCS Send Data and security headers around licensing PDUs.

pub mod envelope;
pub mod wire;

#[cfg(feature = "arbitrary")]
pub mod fuzzing;

#![doc = include_str!("../README.md")]
//!
//! # Modules
//!
//! - [`wire`]: every licensing structure ([MS-RDPELE] 2.2), parsed and encoded byte for byte.
//! - [`envelope`]: TPKT, X.224, MCS Send Data and security headers around licensing PDUs
//!   ([MS-RDPBCGR] 2.2.1.12), and the Set Error Info PDU that ends a refused session.
//! - [`crypto`]: licensing key derivation, RC4, MACs, the RSA premaster exchange and
//!   proprietary certificates ([MS-RDPELE] 5.1).
//! - [`cal`]: Client Access Licenses — reading Windows' and building CALs of the same shape.
//! - [`machine`]: the sans-IO client and server licensing state machines ([MS-RDPELE] 3).

pub mod cal;
pub mod crypto;
pub mod envelope;
pub mod machine;
pub mod wire;

#[cfg(feature = "arbitrary")]
pub mod fuzzing;

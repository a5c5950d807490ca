//! Licensing cryptography ([MS-RDPELE] 5.1, and the parts of [MS-RDPBCGR] 5.3 it reuses):
//!
//! - [`derive_session_keys`]: the master secret, session key blob, MAC salt key and licensing
//!   encryption key from the premaster secret and the two randoms (MS-RDPELE 5.1.2).
//! - [`rc4()`](fn@rc4): licensing blob encryption, a fresh RC4 state per blob (5.1.3, 5.1.4).
//! - [`mac_data`], [`verify_mac`]: MACData over the unencrypted data, verified in constant time
//!   (5.1.5).
//! - [`LicensingPrivateKey`], [`LicensingPublicKey`]: the raw little-endian RSA premaster
//!   exchange (MS-RDPBCGR 5.3.4.1), keys from proprietary certificates and X.509 chains, and
//!   RSA-SHA1 CAL signatures.
//! - [`proprietary_certificate`], [`verify_proprietary_certificate`]: proprietary certificates
//!   signed with the published Terminal Services key (MS-RDPBCGR 5.3.3.1).
//! - [`Secret`]: secrets that never print and are wiped on drop.
//!
//! [MS-RDPELE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpele/3d3f160a-3ab3-4dfb-ba4e-47c27cd79409
//! [MS-RDPBCGR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/c330f4c8-896f-4d41-983c-aec97fbdbb90
//!
//! Nothing here reads a clock or the operating system's RNG: randomness (key generation, RSA
//! blinding) always comes from the caller, through the [`rand_core`] traits re-exported here.
//!
//! # RSA backend and RUSTSEC-2023-0071 ("Marvin")
//! RSA is RustCrypto `rsa` 0.10.0 (released 2026-11-08), built on `crypto-bigint` 0.7. Its
//! changelog replaces `num-bigint-dig` with constant-time modular exponentiation, hardens the
//! private-key path after draft-irtf-cfrg-rsa-guidance and adds implicit rejection for PKCS#1
//! v1.5 decryption; its README says the crate "was previously vulnerable to the Marvin Attack"
//! and tells users to move to 0.10. The RustSec advisory was last seen (September 2026, before
//! 0.10.0 was released) with no patched version and 0.10.0-rc.18 listed as affected; whether it
//! now names 0.10.0 as patched could not be checked from here. What matters for licensing: the
//! premaster is raw RSA without PKCS#1 v1.5 padding, so there is no padding oracle to begin
//! with, and the private-key exponentiation (unblinded unless the caller passes an RNG) is
//! crypto-bigint's constant-time one. The 0.9 series that DESIGN.md measured (1.4–1.7 ms per
//! RSA-2048 private operation) is the one the advisory was written against.
//!
//! Cost, measured once on the shared 2-core development machine (release build): an RSA-2048
//! private operation takes about 0.87 ms unblinded and 1.5 ms blinded, RSA-512 about 34 µs and
//! 114 µs; `openssl speed` on the same machine gave 0.21 ms and 24 µs. A public-key operation
//! (encrypting a premaster) is 41 µs (2048) or 4 µs (512); key derivation is about 2 µs.
//!
//! The `getrandom` feature of `rsa` stays off: with it, `rsa`'s convenience signing and
//! decryption paths blind with the OS RNG. This module uses only the hazmat primitives with an
//! explicit (possibly absent) RNG, so it behaves the same even if another crate in the build
//! turns that feature on.

mod error;
mod keys;
mod mac;
mod proprietary;
mod rc4;
mod rsa;
mod rsa_backend;
mod secret;

pub use error::CryptoError;
pub use keys::{
    derive_session_keys, SessionKeys, CLIENT_RANDOM_LEN, MASTER_SECRET_LEN, PREMASTER_SECRET_LEN,
    SERVER_RANDOM_LEN, SESSION_KEY_LEN,
};
pub use mac::{mac_data, verify_mac, MAC_LEN};
pub use proprietary::{
    proprietary_certificate, verify_proprietary_certificate, verify_server_certificate,
    TS_SIGNING_KEY_MODULUS, TS_SIGNING_KEY_PRIVATE_EXPONENT, TS_SIGNING_KEY_PUBLIC_EXPONENT,
};
pub use rc4::rc4;
pub use rsa::{
    LicensingPrivateKey, LicensingPublicKey, RsaPublicKeyBlob, MAX_MODULUS_BITS, MIN_MODULUS_BITS,
    WIRE_PADDING_LEN,
};
pub use rsa_backend::RsaBackend;
pub use secret::Secret;

/// The RNG traits this module's functions take (the version the `rsa` crate uses).
pub use ::rsa::rand_core;

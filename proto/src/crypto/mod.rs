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
//! - [`derive_rdp_session_keys`], [`RdpCipher`], [`rdp_mac`]: Standard RDP Security's session
//!   keys, RC4 keystreams, MACs (plain and salted) and key updates (MS-RDPBCGR 5.3.5 – 5.3.7).
//! - [`Secret`]: secrets that never print and are wiped on drop.
//!
//! [MS-RDPELE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpele/3d3f160a-3ab3-4dfb-ba4e-47c27cd79409
//! [MS-RDPBCGR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/c330f4c8-896f-4d41-983c-aec97fbdbb90
//!
//! Nothing here reads a clock or the operating system's RNG: randomness (key generation, RSA
//! blinding) comes from the caller, through the [`rand_core`] traits re-exported here — except
//! on the OpenSSL backend, whose blinding draws from OpenSSL's own DRBG.
//!
//! # RSA backends and RUSTSEC-2023-0071 ("Marvin")
//! Public-key operations and key handling are RustCrypto `rsa` 0.10.0 (released 2026-11-08),
//! built on `crypto-bigint` 0.7. The two private-key operations on the hot path — premaster
//! decryption and CAL signatures — run on the key's [`RsaBackend`]: `rsa`, or the system's
//! OpenSSL through the `openssl` crate with this crate's `openssl` feature (the default backend
//! when the feature is on). Both backends blind every private-key operation, and give the same
//! bytes and the same typed errors; the trait behind them (crypto/rsa_backend.rs) says how each
//! blinds.
//!
//! `rsa` 0.10's changelog replaces `num-bigint-dig` with constant-time modular exponentiation and
//! hardens the private-key path after draft-irtf-cfrg-rsa-guidance; its README says the crate
//! "was previously vulnerable to the Marvin Attack". The RustSec advisory was last seen
//! (September 2026) with no patched version; whether it now names 0.10.0 as patched could not
//! be checked from here. What matters for licensing: the premaster is raw RSA without PKCS#1
//! v1.5 padding, so there is no padding oracle to begin with; the server hides a failed
//! decryption behind implicit rejection; and the exponentiation is blinded on both backends.
//!
//! Cost, measured on the shared 2-core development machine (release build; BENCHMARKS.md, "RSA
//! backends"): a blinded RSA-2048 private operation takes about 2.25 ms with `rsa` (its blinding
//! costs more than the unblinded 0.87 ms operation) against 0.25 ms with OpenSSL, as fast as
//! `openssl speed` in the same run; at 512 bits 160 µs against 32 µs. A public-key operation
//! (encrypting a premaster) is 41 µs (2048) or 4 µs (512); key derivation is about 2 µs.
//!
//! The `getrandom` feature of `rsa` stays off: with it, `rsa`'s convenience signing and
//! decryption paths blind with the OS RNG. This module uses only the hazmat primitives with an
//! explicit RNG, so it behaves the same even if another crate in the build turns that feature
//! on.

mod error;
mod keys;
mod mac;
mod proprietary;
mod rc4;
mod rdp_security;
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
pub use rdp_security::{
    derive_rdp_session_keys, rdp_mac, EncryptionMethod, RdpCipher, RdpSessionKeys, Side,
    KEY_UPDATE_INTERVAL, RDP_MAC_LEN,
};
pub use rsa::{
    LicensingPrivateKey, LicensingPublicKey, PublicKeyCache, RsaPublicKeyBlob, MAX_MODULUS_BITS,
    MIN_MODULUS_BITS, WIRE_PADDING_LEN,
};
pub use rsa_backend::RsaBackend;
pub use secret::Secret;

/// The RNG traits this module's functions take (the version the `rsa` crate uses).
pub use ::rsa::rand_core;

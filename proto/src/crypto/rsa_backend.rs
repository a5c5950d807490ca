//! The two private-key operations licensing does on its hot path — recovering a premaster
//! secret (RSADP, RFC 8017 5.1.2, as MS-RDPBCGR 5.3.4.1 uses it) and signing a CAL certificate
//! (RSASSA-PKCS1-v1_5, RFC 8017 8.2.1: with SHA-1 for what a license server signs, with SHA-256
//! for what an activated server's certificate authorities sign) — behind one trait, implemented
//! by RustCrypto `rsa` and, with the `openssl` feature, by the system's OpenSSL. A
//! [`LicensingPrivateKey`](super::LicensingPrivateKey) picks one at run time
//! ([`RsaBackend`]); both give byte-identical results, because RSADP and PKCS#1 v1.5 signatures
//! are deterministic.

use ::rsa::hazmat::rsa_decrypt_and_check;
use ::rsa::rand_core::{CryptoRng, SeedableRng};
use ::rsa::traits::{PrivateKeyParts, PublicKeyParts};
use ::rsa::{BoxedUint, PrivateKey};
use hmac::{Hmac, KeyInit, Mac};
use rand_chacha::ChaCha20Rng;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::error::CryptoError;

/// Which implementation does a [`LicensingPrivateKey`](super::LicensingPrivateKey)'s
/// private-key operations. Spelled `rust` and `openssl` ([`FromStr`](core::str::FromStr),
/// [`Display`](core::fmt::Display)), for configuration files and command lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RsaBackend {
    /// RustCrypto `rsa`: always available.
    Rust,
    /// The system's OpenSSL through the `openssl` crate: needs this crate's `openssl` feature.
    OpenSsl,
}

impl RsaBackend {
    /// Every backend, available in this build or not.
    pub const ALL: [Self; 2] = [Self::Rust, Self::OpenSsl];

    /// Whether this build can use the backend.
    pub fn is_available(self) -> bool {
        match self {
            Self::Rust => true,
            Self::OpenSsl => cfg!(feature = "openssl"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::OpenSsl => "openssl",
        }
    }
}

/// The fastest backend in the build: OpenSSL when the `openssl` feature is on (about four times
/// faster per RSA-2048 private-key operation here; BENCHMARKS.md), else `rsa`.
impl Default for RsaBackend {
    fn default() -> Self {
        if cfg!(feature = "openssl") {
            Self::OpenSsl
        } else {
            Self::Rust
        }
    }
}

impl core::fmt::Display for RsaBackend {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for RsaBackend {
    type Err = CryptoError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|backend| backend.name() == name)
            .ok_or_else(|| CryptoError::UnknownRsaBackend {
                name: name.to_owned(),
            })
    }
}

/// The private-key operations a licensing key performs, one implementation per [`RsaBackend`].
///
/// # Blinding (RUSTSEC-2023-0071, "Marvin")
/// Every implementation blinds every private-key operation: the exponentiation runs on
/// `c·rᵉ mod n` for a fresh secret `r`, so its timing does not depend on the value the peer
/// chose. That matters for [`Self::rsadp`], whose input is a client's encrypted premaster: a
/// host decrypts ciphertexts from anyone who connects, which is the setting of the Marvin
/// timing attack. Raw RSA (no padding) gives no padding oracle to begin with, and the caller
/// hides a bad premaster behind implicit rejection (the session keys come out wrong, not an
/// error), so the exponentiation's timing is the channel left, and blinding closes it.
///
/// - `rsa`: `rsa::hazmat::rsa_decrypt_and_check` with `Some(rng)` blinds (and checks the result
///   with the public key, against fault attacks); `crypto-bigint`'s exponentiation is
///   constant-time as well. Decryption blinds with the caller's RNG. Signing has no RNG in the
///   CAL builder's deterministic API, so its blinding factor comes from a ChaCha20 stream keyed
///   by HMAC-SHA256(d, EM) — secret (it needs d), fresh per message, as RFC 6979 derives its
///   nonces; the signature itself does not depend on `r`.
/// - OpenSSL: `RSA_private_decrypt` and `EVP_PKEY_sign` end in `rsa_ossl_private_decrypt` /
///   `rsa_ossl_private_encrypt` (crypto/rsa/rsa_ossl.c), which blind unless the key carries
///   `RSA_FLAG_NO_BLINDING`. Only `RSA_blinding_off` sets it, and neither this crate nor the
///   `openssl` crate calls it, so OpenSSL blinds with its own DRBG; the caller's RNG is not used.
pub(crate) trait PrivateKeyOperations {
    /// RSADP: `c^d mod n` for a big-endian `ciphertext` of exactly the modulus length whose
    /// value is below n (the caller checks both), big-endian in the modulus length.
    fn rsadp<R: CryptoRng + ?Sized>(
        &self,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError>;

    /// RSASSA-PKCS1-v1_5-SIGN with `hash`, big-endian in the modulus length (the caller has
    /// checked that the modulus is long enough for the encoding).
    fn sign(&self, hash: SignatureHash, data: &[u8]) -> Result<Vec<u8>, CryptoError>;
}

/// The hash of a PKCS#1 v1.5 signature: SHA-1 for the certificates a license server signs
/// (OIW sha1RSA, MS-RDPELE 2.2.2.9), SHA-256 for the sha256WithRSAEncryption certificates of an
/// activated server's chain (captures/windows2019_cal_temporary.p7b, offsets 76, 1600, 2982).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SignatureHash {
    Sha1,
    Sha256,
}

/// DigestInfo prefix of a SHA-1 hash in an EMSA-PKCS1-v1_5 encoding (RFC 8017 9.2 note 1).
const SHA1_DIGEST_INFO: [u8; 15] = [
    0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04, 0x14,
];
/// DigestInfo prefix of a SHA-256 hash (RFC 8017 9.2 note 1).
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];
/// PKCS#1 v1.5 needs at least 8 bytes of 0xFF padding plus 0x00 0x01 … 0x00.
const EMSA_MIN_OVERHEAD: usize = 11;

impl SignatureHash {
    fn name(self) -> &'static str {
        match self {
            Self::Sha1 => "RSA-SHA1",
            Self::Sha256 => "RSA-SHA256",
        }
    }

    fn digest_info(self) -> &'static [u8] {
        match self {
            Self::Sha1 => &SHA1_DIGEST_INFO,
            Self::Sha256 => &SHA256_DIGEST_INFO,
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
        }
    }

    fn digest_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }

    /// The shortest modulus, in bytes, a PKCS#1 v1.5 signature with this hash fits in.
    pub(crate) fn min_modulus_len(self) -> usize {
        self.digest_info().len() + self.digest_len() + EMSA_MIN_OVERHEAD
    }

    /// [`CryptoError::ModulusTooSmallForSignature`] for a key of `bits` bits.
    pub(crate) fn too_small(self, bits: usize) -> CryptoError {
        CryptoError::ModulusTooSmallForSignature {
            bits,
            signature: self.name(),
        }
    }
}

impl PrivateKeyOperations for PrivateKey {
    fn rsadp<R: CryptoRng + ?Sized>(
        &self,
        ciphertext: &[u8],
        rng: &mut R,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        private_operation(self, ciphertext, rng)
    }

    fn sign(&self, hash: SignatureHash, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let encoded = emsa_pkcs1_v1_5(hash, data, self.size())
            .ok_or_else(|| hash.too_small(super::rsa::modulus_bits(self)))?;
        let d = Zeroizing::new(self.d().to_be_bytes());
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&d)
            .map_err(|_| CryptoError::PrivateKeyOperation)?;
        mac.update(&encoded);
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(mac.finalize().into_bytes().into());
        let mut rng = ChaCha20Rng::from_seed(*seed);
        private_operation(self, &encoded, &mut rng).map(|signature| signature.to_vec())
    }
}

/// The blinded private-key operation on a big-endian input, big-endian in the modulus length.
fn private_operation<R: CryptoRng + ?Sized>(
    key: &PrivateKey,
    input: &[u8],
    rng: &mut R,
) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
    let k = key.size();
    let x = BoxedUint::from_be_slice(input, key.n_bits_precision())
        .map_err(|_| CryptoError::PrivateKeyOperation)?;
    let y =
        rsa_decrypt_and_check(key, Some(rng), &x).map_err(|_| CryptoError::PrivateKeyOperation)?;
    let bytes = Zeroizing::new(y.to_be_bytes());
    // The integer's storage may be wider than k bytes; the extra high-order bytes are zero.
    bytes
        .get(bytes.len().saturating_sub(k)..)
        .map(|tail| Zeroizing::new(tail.to_vec()))
        .ok_or(CryptoError::PrivateKeyOperation)
}

/// EM = 0x00 0x01 0xFF… 0x00 DigestInfo(hash, H) in `k` bytes, or `None` if `k` is too small.
fn emsa_pkcs1_v1_5(hash: SignatureHash, data: &[u8], k: usize) -> Option<Zeroizing<Vec<u8>>> {
    if k < hash.min_modulus_len() {
        return None;
    }
    let digest = hash.digest(data);
    let digest_info = hash.digest_info();
    let padding = k.checked_sub(digest_info.len() + digest.len() + 3)?;
    let mut em = Zeroizing::new(Vec::with_capacity(k));
    em.extend_from_slice(&[0x00, 0x01]);
    em.resize(padding.saturating_add(2), 0xff);
    em.push(0x00);
    em.extend_from_slice(digest_info);
    em.extend_from_slice(&digest);
    Some(em)
}

#[cfg(feature = "openssl")]
pub(crate) use self::openssl_backend::{OpenSslKey, OpenSslPublicKey};

#[cfg(feature = "openssl")]
mod openssl_backend {
    use ::rsa::pkcs1::EncodeRsaPrivateKey;
    use ::rsa::rand_core::CryptoRng;
    use ::rsa::PrivateKey;
    use openssl::bn::BigNum;
    use openssl::hash::MessageDigest;
    use openssl::pkey::{PKey, Private, Public};
    use openssl::rsa::{Padding, Rsa};
    use openssl::sign::Signer;
    use zeroize::Zeroizing;

    use super::{PrivateKeyOperations, SignatureHash};
    use crate::crypto::CryptoError;

    /// The same key material as the `rsa` key it was built from, held by OpenSSL.
    #[derive(Clone)]
    pub(crate) struct OpenSslKey {
        /// For RSADP: the legacy `RSA_private_decrypt` is the one entry point that takes
        /// `RSA_NO_PADDING` without a provider context per call.
        rsa: Rsa<Private>,
        /// For signing through EVP, which does the PKCS#1 v1.5 encoding itself.
        pkey: PKey<Private>,
    }

    impl OpenSslKey {
        /// Hands OpenSSL the key as PKCS#1 DER (n, e, d, p, q and the CRT values), so both
        /// backends compute with the same numbers.
        pub(crate) fn new(key: &PrivateKey) -> Result<Self, CryptoError> {
            let native = |reason: String| CryptoError::NativeKey { reason };
            let der = key
                .to_pkcs1_der()
                .map_err(|error| native(error.to_string()))?;
            let rsa = Rsa::private_key_from_der(der.as_bytes())
                .map_err(|error| native(error.to_string()))?;
            let pkey = PKey::from_rsa(rsa.clone()).map_err(|error| native(error.to_string()))?;
            Ok(Self { rsa, pkey })
        }
    }

    /// A public key held by OpenSSL, for RSAEP (RFC 8017 5.1.1). OpenSSL computes the
    /// modulus' Montgomery parameters at the first operation and keeps them in the key.
    pub(crate) struct OpenSslPublicKey {
        rsa: Rsa<Public>,
    }

    impl OpenSslPublicKey {
        pub(crate) fn new(n_be: &[u8], e_be: &[u8]) -> Result<Self, CryptoError> {
            let n = BigNum::from_slice(n_be).map_err(|_| rejected())?;
            let e = BigNum::from_slice(e_be).map_err(|_| rejected())?;
            let rsa = Rsa::from_public_components(n, e).map_err(|_| rejected())?;
            Ok(Self { rsa })
        }

        /// `block` (big-endian, the modulus' length) raised to e mod n, big-endian in as many
        /// bytes.
        pub(crate) fn encrypt_raw(&self, block: &[u8]) -> Result<Vec<u8>, CryptoError> {
            let mut out = vec![0u8; block.len()];
            let written = self
                .rsa
                .public_encrypt(block, &mut out, Padding::NONE)
                .map_err(|_| rejected())?;
            if written != out.len() {
                return Err(rejected());
            }
            Ok(out)
        }
    }

    fn rejected() -> CryptoError {
        CryptoError::InvalidPublicKey("rejected by the RSA implementation")
    }

    impl PrivateKeyOperations for OpenSslKey {
        fn rsadp<R: CryptoRng + ?Sized>(
            &self,
            ciphertext: &[u8],
            _rng: &mut R,
        ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
            let k = self.rsa.size();
            let mut out = Zeroizing::new(vec![0u8; usize::try_from(k).unwrap_or(usize::MAX)]);
            let written = self
                .rsa
                .private_decrypt(ciphertext, &mut out, Padding::NONE)
                .map_err(|_| CryptoError::PrivateKeyOperation)?;
            // RSA_NO_PADDING writes the whole k-byte block, leading zeros included.
            if written != out.len() {
                return Err(CryptoError::PrivateKeyOperation);
            }
            Ok(out)
        }

        fn sign(&self, hash: SignatureHash, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
            let digest = match hash {
                SignatureHash::Sha1 => MessageDigest::sha1(),
                SignatureHash::Sha256 => MessageDigest::sha256(),
            };
            // RSA keys sign PKCS#1 v1.5 unless told otherwise.
            Signer::new(digest, &self.pkey)
                .and_then(|mut signer| signer.sign_oneshot_to_vec(data))
                .map_err(|_| CryptoError::PrivateKeyOperation)
        }
    }
}

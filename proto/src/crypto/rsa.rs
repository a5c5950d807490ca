//! RSA as licensing uses it: the premaster secret travels raw-RSA-encrypted in little-endian
//! byte order (MS-RDPELE 5.1.1.1, which defers to MS-RDPBCGR 5.3.4.1), public keys arrive as
//! CryptoAPI RSA1 blobs (proprietary certificates) or in X.509 certificates whose key algorithm
//! OID is the legacy OIW one, and CALs are signed RSA-SHA1 (PKCS#1 v1.5).
//!
//! Licensing keys are small by today's standards — 512-bit proprietary keys are what xrdp,
//! xfreerdp and older Windows use — so keys are built with explicit size limits
//! ([`MIN_MODULUS_BITS`]..=[`MAX_MODULUS_BITS`]) instead of the `rsa` crate's 1024-bit floor.

use std::collections::VecDeque;
#[cfg(feature = "openssl")]
use std::sync::OnceLock;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use ::rsa::hazmat::rsa_encrypt;
use ::rsa::pkcs1::der::{self, Decode, Reader, SliceReader};
use ::rsa::pkcs1::{DecodeRsaPrivateKey, RsaPublicKeyRef};
use ::rsa::pkcs8::spki::SubjectPublicKeyInfoRef;
use ::rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding, ObjectIdentifier};
use ::rsa::rand_core::CryptoRng;
use ::rsa::traits::PublicKeyParts;
use ::rsa::{BoxedUint, PrivateKey, PublicKey};
use sha1::Sha1;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::error::CryptoError;
use super::keys::{CLIENT_RANDOM_LEN, PREMASTER_SECRET_LEN};
#[cfg(feature = "openssl")]
use super::rsa_backend::{OpenSslKey, OpenSslPublicKey};
use super::rsa_backend::{PrivateKeyOperations, RsaBackend, SignatureHash};
use crate::wire::RsaPublicKey;

/// Smallest modulus accepted or generated: the 512-bit (64-byte) keys of proprietary
/// certificates. Accepted keys are measured in whole bytes, so a 64-byte modulus with fewer
/// significant bits is a 512-bit key too.
pub const MIN_MODULUS_BITS: usize = 512;
/// Largest modulus accepted or generated (the `rsa` crate's default ceiling).
pub const MAX_MODULUS_BITS: usize = 8192;
/// The same limits in the `rsa` crate's terms, which count significant bits.
const RSA_SIZE_LIMITS: core::ops::RangeInclusive<usize> = (MIN_MODULUS_BITS - 7)..=MAX_MODULUS_BITS;
/// Zero bytes that follow the modulus, the encrypted premaster secret and the proprietary
/// signature on the wire (MS-RDPBCGR 2.2.1.4.3.1.1.1, 5.3.4.1).
pub const WIRE_PADDING_LEN: usize = 8;

/// rsaEncryption (PKCS#1).
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// OIW shaWithRSASignature: Windows' license server puts it in its certificates'
/// SubjectPublicKeyInfo (captures/server_license_request.bin; IronRDP's Windows test data too).
const OIW_SHA_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.15");
/// OIW sha1WithRSASignature: the signature algorithm of the same certificates, accepted as a key
/// algorithm for the same reason.
const OIW_SHA1_WITH_RSA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.29");

/// An RSA public key as licensing uses it: the server's key exchange key, or a license server's
/// signing key. Clones share the key (and OpenSSL's form of it, once built).
#[derive(Clone)]
pub struct LicensingPublicKey {
    inner: Arc<PublicKeyInner>,
}

struct PublicKeyInner {
    key: PublicKey,
    /// Built at the first encryption on the OpenSSL backend and kept, so OpenSSL's Montgomery
    /// setup for the modulus is paid once per key, not once per connection.
    #[cfg(feature = "openssl")]
    openssl: OnceLock<OpenSslPublicKey>,
}

impl PartialEq for LicensingPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.inner.key == other.inner.key
    }
}

impl Eq for LicensingPublicKey {}

/// The fields of an RSA_PUBLIC_KEY (MS-RDPBCGR 2.2.1.4.3.1.1.1), owned, for building a
/// [`wire::RsaPublicKey`](crate::wire::RsaPublicKey) with [`RsaPublicKeyBlob::as_wire`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RsaPublicKeyBlob {
    /// Modulus length in bits, as Windows writes it: the byte length times 8.
    pub bit_len: u32,
    /// The most bytes one RSA block carries: the modulus length minus 1.
    pub data_len: u32,
    pub public_exponent: u32,
    /// Little-endian modulus followed by [`WIRE_PADDING_LEN`] zero bytes.
    pub modulus: Vec<u8>,
}

impl RsaPublicKeyBlob {
    pub fn as_wire(&self) -> RsaPublicKey<'_> {
        RsaPublicKey {
            bit_len: self.bit_len,
            data_len: self.data_len,
            public_exponent: self.public_exponent,
            modulus: &self.modulus,
        }
    }
}

impl LicensingPublicKey {
    /// The key in a proprietary certificate. The modulus is little-endian and carries zero
    /// padding (8 bytes on every key seen); zero high-order bytes are ignored rather than
    /// checked against `bitlen`/`keylen`, which the codec already keeps as sent.
    pub fn from_proprietary(key: &RsaPublicKey<'_>) -> Result<Self, CryptoError> {
        let (modulus, exponent) = proprietary_components(key);
        Self::from_be_components(&modulus, &exponent)
    }

    /// The subject public key of a DER X.509 certificate (give it the leaf of a server's chain:
    /// the last certificate, MS-RDPELE 2.2.1.4.2).
    ///
    /// Only the SubjectPublicKeyInfo is interpreted, so the rest of the certificate may use
    /// whatever Windows puts there. Its algorithm may be rsaEncryption or one of the legacy OIW
    /// RSA identifiers (1.3.14.3.2.15, 1.3.14.3.2.29) that Windows' license server uses and that
    /// OpenSSL refuses; the key itself is a PKCS#1 RSAPublicKey either way.
    pub fn from_x509_der(certificate_der: &[u8]) -> Result<Self, CryptoError> {
        let (modulus, exponent) = x509_components(certificate_der)?;
        Self::from_be_components(modulus, exponent)
    }

    /// Wraps an `rsa` public key, applying this module's size limits.
    pub fn from_rsa_public_key(key: PublicKey) -> Result<Self, CryptoError> {
        check_modulus_bits(modulus_bits(&key))?;
        Ok(Self::wrap(key))
    }

    fn wrap(key: PublicKey) -> Self {
        Self {
            inner: Arc::new(PublicKeyInner {
                key,
                #[cfg(feature = "openssl")]
                openssl: OnceLock::new(),
            }),
        }
    }

    fn from_be_components(modulus: &[u8], exponent: &[u8]) -> Result<Self, CryptoError> {
        let modulus = trim_leading_zeros(modulus);
        let exponent = trim_leading_zeros(exponent);
        let bits = be_bit_width(modulus);
        check_modulus_bits(bits)?;
        if exponent.is_empty() {
            return Err(CryptoError::InvalidPublicKey("public exponent is zero"));
        }
        let n = BoxedUint::from_be_slice_vartime(modulus);
        let e = BoxedUint::from_be_slice_vartime(exponent);
        PublicKey::new_with_size_limits(n, e, RSA_SIZE_LIMITS)
            .map(Self::wrap)
            .map_err(|error| match error {
                ::rsa::Error::InvalidModulus => {
                    CryptoError::InvalidPublicKey("modulus is even or not above the exponent")
                }
                ::rsa::Error::InvalidExponent => {
                    CryptoError::InvalidPublicKey("public exponent is even")
                }
                ::rsa::Error::PublicExponentTooSmall | ::rsa::Error::PublicExponentTooLarge => {
                    CryptoError::InvalidPublicKey("public exponent is out of range")
                }
                _ => CryptoError::InvalidPublicKey("rejected by the RSA implementation"),
            })
    }

    /// The modulus length in bytes (k in RFC 8017): 64 for a 512-bit key.
    pub fn modulus_len(&self) -> usize {
        self.key().size()
    }

    /// The modulus length in bits.
    pub fn modulus_bits(&self) -> usize {
        modulus_bits(self.key())
    }

    /// MS-RDPBCGR 5.3.4.1, as MS-RDPELE 5.1.1.1 uses it: the premaster secret read as a
    /// little-endian integer, raised to e mod n with no padding scheme, written back
    /// little-endian in [`Self::modulus_len`] bytes, then 8 zero bytes: the result is the
    /// EncryptedPreMasterSecret blob's data (72 bytes for a 512-bit key).
    ///
    /// The premaster is below 2^384 and every accepted modulus is at least 2^511, so the
    /// integer is always in range.
    pub fn encrypt_premaster(
        &self,
        premaster: &[u8; PREMASTER_SECRET_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_premaster_with(premaster, RsaBackend::default())
    }

    /// [`Self::encrypt_premaster`] on a chosen backend (the public-key operation has no
    /// secret to protect; OpenSSL's is just faster). Both give the same bytes.
    pub fn encrypt_premaster_with(
        &self,
        premaster: &[u8; PREMASTER_SECRET_LEN],
        backend: RsaBackend,
    ) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_le_secret(premaster, backend)
    }

    /// MS-RDPBCGR 5.3.4.1: the client random encrypted for a Security Exchange PDU, laid out
    /// as [`Self::encrypt_premaster`] lays out a premaster (modulus length + 8 bytes).
    pub fn encrypt_client_random(
        &self,
        client_random: &[u8; CLIENT_RANDOM_LEN],
    ) -> Result<Vec<u8>, CryptoError> {
        self.encrypt_le_secret(client_random, RsaBackend::default())
    }

    fn encrypt_le_secret<const N: usize>(
        &self,
        secret: &[u8; N],
        backend: RsaBackend,
    ) -> Result<Vec<u8>, CryptoError> {
        let k = self.modulus_len();
        #[cfg(feature = "openssl")]
        if backend == RsaBackend::OpenSsl {
            // Big-endian for OpenSSL: the secret's bytes reversed at the block's end.
            let mut block = vec![0u8; k];
            let tail = block
                .len()
                .checked_sub(N)
                .and_then(|start| block.get_mut(start..))
                .ok_or(CryptoError::InvalidPublicKey(
                    "modulus is smaller than the secret",
                ))?;
            tail.copy_from_slice(secret);
            tail.reverse();
            let openssl = match self.inner.openssl.get() {
                Some(key) => key,
                None => {
                    let built =
                        OpenSslPublicKey::new(&self.key().n_bytes(), &self.key().e_bytes())?;
                    self.inner.openssl.get_or_init(|| built)
                }
            };
            let mut out = openssl.encrypt_raw(&block)?;
            out.reverse();
            out.resize(k.saturating_add(WIRE_PADDING_LEN), 0);
            return Ok(out);
        }
        if !backend.is_available() {
            return Err(CryptoError::RsaBackendUnavailable { backend });
        }
        let m = BoxedUint::from_le_slice(secret, self.key().n_bits_precision())
            .map_err(|_| CryptoError::InvalidPublicKey("modulus is smaller than the secret"))?;
        let c = rsa_encrypt(self.key(), &m)
            .map_err(|_| CryptoError::InvalidPublicKey("rejected by the RSA implementation"))?;
        let mut out = c.to_le_bytes().into_vec();
        // c < n < 2^(8k): the bytes beyond k are the integer's zero high-order limbs.
        out.resize(k, 0);
        out.resize(k.saturating_add(WIRE_PADDING_LEN), 0);
        Ok(out)
    }

    /// The key as an RSA_PUBLIC_KEY for a proprietary certificate: `bitlen` = 8 × k,
    /// `datalen` = k − 1 and `keylen` = k + 8, as Windows and xrdp write them.
    pub fn to_rsa_public_key_blob(&self) -> Result<RsaPublicKeyBlob, CryptoError> {
        let k = self.modulus_len();
        let exponent = self.key().e_bytes();
        let mut exponent_be = [0u8; 4];
        let offset = exponent_be
            .len()
            .checked_sub(exponent.len())
            .ok_or(CryptoError::PublicExponentTooLarge)?;
        if let Some(tail) = exponent_be.get_mut(offset..) {
            tail.copy_from_slice(&exponent);
        }
        let bit_len = k
            .checked_mul(8)
            .and_then(|bits| u32::try_from(bits).ok())
            .ok_or(CryptoError::ModulusSize {
                bits: self.modulus_bits(),
                min: MIN_MODULUS_BITS,
                max: MAX_MODULUS_BITS,
            })?;
        let data_len = u32::try_from(k.saturating_sub(1)).unwrap_or(u32::MAX);
        let mut modulus = self.key().n().to_le_bytes().into_vec();
        modulus.resize(k, 0);
        modulus.resize(k.saturating_add(WIRE_PADDING_LEN), 0);
        Ok(RsaPublicKeyBlob {
            bit_len,
            data_len,
            public_exponent: u32::from_be_bytes(exponent_be),
            modulus,
        })
    }

    /// Whether `signature` (big-endian, as X.509 carries it) is a PKCS#1 v1.5 RSA-SHA1 signature
    /// of `data` by this key: how a CAL's certificates are signed.
    pub fn verify_sha1(&self, data: &[u8], signature: &[u8]) -> bool {
        self.key().pkcs1v15_verify::<Sha1>(data, signature).is_ok()
    }

    /// The key identifier of RFC 5280 4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT
    /// STRING's value (the PKCS#1 RSAPublicKey DER). Every subject key identifier in the 2019
    /// sample's chain is this (captures/windows2019_cal_temporary.p7b, offsets 992, 2182, 3388).
    pub fn key_identifier(&self) -> Result<[u8; 20], CryptoError> {
        use ::rsa::pkcs1::EncodeRsaPublicKey;
        use sha1::Digest;
        let der = self
            .key()
            .to_pkcs1_der()
            .map_err(|error| CryptoError::PublicKeyEncoding {
                reason: error.to_string(),
            })?;
        Ok(Sha1::digest(der.as_bytes()).into())
    }

    /// The underlying `rsa` key, for building certificates.
    pub fn to_rsa_public_key(&self) -> &PublicKey {
        self.key()
    }

    fn key(&self) -> &PublicKey {
        &self.inner.key
    }
}

impl core::fmt::Debug for LicensingPublicKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LicensingPublicKey")
            .field("modulus_bits", &self.modulus_bits())
            .finish_non_exhaustive()
    }
}

/// An RSA private key as licensing uses it: the session host's key exchange key (it decrypts
/// premaster secrets) or the license server's signing key (it signs CALs).
///
/// The key material is always held by the `rsa` crate (PEM encoding, the public key); the
/// private-key operations run on the selected [`RsaBackend`], which holds its own copy of the
/// same key. Both backends blind every private-key operation (see the trait in
/// `crypto/rsa_backend.rs` for how and why).
#[derive(Clone)]
pub struct LicensingPrivateKey {
    /// Shared by clones: a session host hands each connection's state machine a copy of its
    /// configuration, and copying the key's numbers (the CRT and Montgomery values) showed in
    /// profiles.
    key: Arc<PrivateKey>,
    backend: Backend,
}

/// The selected backend, with whatever it needs besides the `rsa` key.
#[derive(Clone)]
enum Backend {
    Rust,
    #[cfg(feature = "openssl")]
    OpenSsl(OpenSslKey),
}

impl core::fmt::Debug for LicensingPrivateKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LicensingPrivateKey")
            .field("modulus_bits", &modulus_bits(&*self.key))
            .field("backend", &self.backend())
            .finish_non_exhaustive()
    }
}

impl TryFrom<PrivateKey> for LicensingPrivateKey {
    type Error = CryptoError;

    /// [`LicensingPrivateKey::from_rsa_private_key`].
    fn try_from(key: PrivateKey) -> Result<Self, Self::Error> {
        Self::from_rsa_private_key(key)
    }
}

impl LicensingPrivateKey {
    /// Generates a key of `bits` bits (public exponent 65537) from the caller's RNG, on the
    /// default [`RsaBackend`]. Sizes below the `rsa` crate's 1024-bit floor are allowed down to
    /// [`MIN_MODULUS_BITS`], because proprietary certificates carry 512-bit keys.
    pub fn generate<R: CryptoRng + ?Sized>(bits: usize, rng: &mut R) -> Result<Self, CryptoError> {
        check_modulus_bits(bits)?;
        let key =
            PrivateKey::new_unchecked(rng, bits).map_err(|error| CryptoError::KeyGeneration {
                reason: error.to_string(),
            })?;
        Self::from_rsa_private_key(key)
    }

    /// Reads a PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM key, on the
    /// default [`RsaBackend`].
    pub fn from_pem(pem: &str) -> Result<Self, CryptoError> {
        let key = if pem.contains("-----BEGIN RSA PRIVATE KEY-----") {
            PrivateKey::from_pkcs1_pem(pem).map_err(|error| error.to_string())
        } else {
            PrivateKey::from_pkcs8_pem(pem).map_err(|error| error.to_string())
        }
        .map_err(|reason| CryptoError::PrivateKeyPem { reason })?;
        Self::from_rsa_private_key(key)
    }

    /// Wraps an `rsa` private key, applying this module's size limits, on the default
    /// [`RsaBackend`].
    pub fn from_rsa_private_key(key: PrivateKey) -> Result<Self, CryptoError> {
        check_modulus_bits(modulus_bits(&key))?;
        Self {
            key: Arc::new(key),
            backend: Backend::Rust,
        }
        .with_backend(RsaBackend::default())
    }

    /// The same key with its private-key operations on `backend`: the backend gets its copy of
    /// the key material now, so a key that OpenSSL refuses fails here, not mid-handshake.
    /// [`CryptoError::RsaBackendUnavailable`] if this build lacks the backend's feature.
    pub fn with_backend(self, backend: RsaBackend) -> Result<Self, CryptoError> {
        let selected = match backend {
            RsaBackend::Rust => Backend::Rust,
            #[cfg(feature = "openssl")]
            RsaBackend::OpenSsl => Backend::OpenSsl(OpenSslKey::new(&self.key)?),
            #[cfg(not(feature = "openssl"))]
            RsaBackend::OpenSsl => return Err(CryptoError::RsaBackendUnavailable { backend }),
        };
        Ok(Self {
            key: self.key,
            backend: selected,
        })
    }

    /// Which backend does the private-key operations.
    pub fn backend(&self) -> RsaBackend {
        match self.backend {
            Backend::Rust => RsaBackend::Rust,
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(_) => RsaBackend::OpenSsl,
        }
    }

    /// The key as PKCS#8 PEM (`BEGIN PRIVATE KEY`), LF line endings.
    pub fn to_pkcs8_pem(&self) -> Result<String, CryptoError> {
        let pem: Zeroizing<String> = self.key.to_pkcs8_pem(LineEnding::LF).map_err(|error| {
            CryptoError::PrivateKeyEncoding {
                reason: error.to_string(),
            }
        })?;
        Ok(pem.as_str().to_owned())
    }

    pub fn public_key(&self) -> LicensingPublicKey {
        LicensingPublicKey::wrap(self.key.to_public_key())
    }

    /// The modulus length in bytes.
    pub fn modulus_len(&self) -> usize {
        self.key.size()
    }

    /// Reverses [`LicensingPublicKey::encrypt_premaster`]: takes the EncryptedPreMasterSecret
    /// blob's data and returns the 48-byte premaster secret.
    ///
    /// The blob is read as Windows reads it: one little-endian integer, whatever its length up
    /// to the modulus length + 8 (MS-RDPELE 2.2.2.2 says modulus length + 8, the last 8 bytes
    /// zero). So a peer that drops the ciphertext's zero high-order bytes (IronRDP 0.12: about
    /// one premaster in 128 arrives a byte short) sends the same value, and rdesktop 1.9.0's
    /// 72 zero bytes, sent whatever the host's key size, are the integer 0, whose raw RSA
    /// decryption is 0: a zero premaster, which is what rdesktop derives its keys from (issue
    /// #11, observed against Windows). Non-zero bytes beyond the modulus length make the value
    /// at least the modulus: out of range, as any value ≥ n.
    ///
    /// The private-key operation is blinded, by the caller's `rng` on the `rsa` backend and by
    /// OpenSSL's own DRBG on the OpenSSL one: the ciphertext comes from an untrusted client
    /// (RUSTSEC-2023-0071, the Marvin attack).
    ///
    /// [`CryptoError::PremasterOutOfRange`] (non-zero bytes above the 48th) tells a wrong key or
    /// a corrupted blob apart in tests; a server must not let a peer observe it as a different
    /// outcome from a bad MAC, or it becomes a decryption oracle.
    pub fn decrypt_premaster<R: CryptoRng + ?Sized>(
        &self,
        encrypted: &[u8],
        rng: &mut R,
    ) -> Result<[u8; PREMASTER_SECRET_LEN], CryptoError> {
        self.decrypt_le_secret(encrypted, rng)
    }

    /// MS-RDPBCGR 5.3.4.1 and 2.2.1.10.1: the client random of a Security Exchange PDU
    /// (Standard RDP Security), read and decrypted exactly as [`Self::decrypt_premaster`] reads
    /// a premaster — one little-endian integer of up to the modulus length + 8 bytes, blinded —
    /// and returned as its 32 bytes.
    pub fn decrypt_client_random<R: CryptoRng + ?Sized>(
        &self,
        encrypted: &[u8],
        rng: &mut R,
    ) -> Result<[u8; CLIENT_RANDOM_LEN], CryptoError> {
        self.decrypt_le_secret(encrypted, rng)
    }

    /// Raw little-endian RSA decryption of a secret of `N` bytes: the premaster (48) or the
    /// client random (32).
    fn decrypt_le_secret<const N: usize, R: CryptoRng + ?Sized>(
        &self,
        encrypted: &[u8],
        rng: &mut R,
    ) -> Result<[u8; N], CryptoError> {
        let k = self.modulus_len();
        if encrypted.len() > k.saturating_add(WIRE_PADDING_LEN) {
            return Err(CryptoError::EncryptedPremasterLength {
                actual: encrypted.len(),
                modulus_len: k,
            });
        }
        let (low, beyond_modulus) = encrypted.split_at(encrypted.len().min(k));
        if beyond_modulus.iter().any(|byte| *byte != 0) {
            return Err(CryptoError::CiphertextOutOfRange);
        }
        let mut ciphertext = vec![0u8; k];
        ciphertext
            .get_mut(..low.len())
            .ok_or(CryptoError::PrivateKeyOperation)?
            .copy_from_slice(low);
        // Checked here, once for every backend, so the error is the same typed one on each
        // (OpenSSL would refuse with its own "data too large for modulus").
        let c = BoxedUint::from_le_slice(&ciphertext, self.key.n_bits_precision())
            .map_err(|_| CryptoError::CiphertextOutOfRange)?;
        if c >= *self.key.n().as_ref() {
            return Err(CryptoError::CiphertextOutOfRange);
        }
        let ciphertext_be: Vec<u8> = ciphertext.iter().rev().copied().collect();
        let plaintext_be = match &self.backend {
            Backend::Rust => self.key.rsadp(&ciphertext_be, rng),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(native) => native.rsadp(&ciphertext_be, rng),
        }?;
        // Little-endian, the secret is the last N bytes of the big-endian block.
        let (high, secret_be) = plaintext_be
            .split_at_checked(k.saturating_sub(N))
            .ok_or(CryptoError::PrivateKeyOperation)?;
        // Fold every high byte in, then decide once: no early exit on the first non-zero byte.
        let high_bits = high.iter().fold(0u8, |acc, byte| acc | byte);
        if !bool::from(high_bits.ct_eq(&0)) {
            return Err(CryptoError::PremasterOutOfRange);
        }
        let mut out = [0u8; N];
        for (out, byte) in out.iter_mut().zip(secret_be.iter().rev()) {
            *out = *byte;
        }
        Ok(out)
    }

    /// PKCS#1 v1.5 RSA-SHA1 signature of `data` (RFC 8017 8.2.1), big-endian in
    /// [`Self::modulus_len`] bytes as X.509 carries it: how CALs are signed (sha1WithRSA).
    /// Blinded on both backends without an RNG from the caller (the signature is deterministic
    /// either way; see `crypto/rsa_backend.rs` for where the blinding factor comes from).
    pub fn sign_sha1(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign(SignatureHash::Sha1, data)
    }

    /// PKCS#1 v1.5 RSA-SHA256 signature of `data`, as [`Self::sign_sha1`]: how the certificate
    /// authorities of an activated license server's chain sign (sha256WithRSAEncryption).
    pub fn sign_sha256(&self, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.sign(SignatureHash::Sha256, data)
    }

    fn sign(&self, hash: SignatureHash, data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if self.modulus_len() < hash.min_modulus_len() {
            return Err(hash.too_small(modulus_bits(&*self.key)));
        }
        match &self.backend {
            // Through the trait: `rsa::PrivateKey` has an inherent `sign` of its own.
            Backend::Rust => PrivateKeyOperations::sign(&*self.key, hash, data),
            #[cfg(feature = "openssl")]
            Backend::OpenSsl(native) => native.sign(hash, data),
        }
    }

    /// The underlying `rsa` key, for building certificates.
    pub fn to_rsa_private_key(&self) -> &PrivateKey {
        &self.key
    }
}

/// The big-endian modulus and exponent of a proprietary certificate's key (read as
/// [`LicensingPublicKey::from_proprietary`] says).
fn proprietary_components(key: &RsaPublicKey<'_>) -> (Vec<u8>, [u8; 4]) {
    let significant = key
        .modulus
        .iter()
        .rposition(|byte| *byte != 0)
        .map_or(0, |last| last.saturating_add(1));
    let modulus_le = key.modulus.get(..significant).unwrap_or_default();
    let modulus_be = modulus_le.iter().rev().copied().collect();
    (modulus_be, key.public_exponent.to_be_bytes())
}

/// The big-endian modulus and exponent of a DER certificate's subject public key (see
/// [`LicensingPublicKey::from_x509_der`] for which algorithms are accepted).
fn x509_components(certificate_der: &[u8]) -> Result<(&[u8], &[u8]), CryptoError> {
    let certificate = |error: der::Error| CryptoError::Certificate {
        reason: error.to_string(),
    };
    let spki = subject_public_key_info(certificate_der).map_err(certificate)?;
    let oid = spki.algorithm.oid;
    if ![RSA_ENCRYPTION, OIW_SHA_WITH_RSA, OIW_SHA1_WITH_RSA].contains(&oid) {
        return Err(CryptoError::UnsupportedKeyAlgorithm {
            oid: oid.to_string(),
        });
    }
    let key_der = spki
        .subject_public_key
        .as_bytes()
        .ok_or(CryptoError::InvalidPublicKey(
            "subjectPublicKey is not a whole number of bytes",
        ))?;
    let key = RsaPublicKeyRef::from_der(key_der).map_err(certificate)?;
    Ok((key.modulus.as_bytes(), key.public_exponent.as_bytes()))
}

/// Public keys already built, found again by their modulus and exponent: a client that meets
/// the same hosts over and over (a fleet, a benchmark) would otherwise pay for each connection
/// the `rsa` crate's Montgomery precomputation and OpenSSL's, which cost more than the one
/// encryption a connection needs. Building a key is a function of its two numbers alone, so a
/// key found here is the key building would give. Holds the last [`PublicKeyCache::CAPACITY`]
/// keys built; refused keys are not kept.
#[derive(Default)]
pub struct PublicKeyCache {
    keys: Mutex<VecDeque<CachedPublicKey>>,
}

struct CachedPublicKey {
    modulus: Box<[u8]>,
    exponent: Box<[u8]>,
    key: LicensingPublicKey,
}

impl PublicKeyCache {
    /// Keys kept: more hosts than one emulated client process meets in any test or fleet.
    pub const CAPACITY: usize = 16;

    /// [`LicensingPublicKey::from_x509_der`], through the cache.
    pub fn from_x509_der(&self, certificate_der: &[u8]) -> Result<LicensingPublicKey, CryptoError> {
        let (modulus, exponent) = x509_components(certificate_der)?;
        self.get_or_build(modulus, exponent)
    }

    /// [`LicensingPublicKey::from_proprietary`], through the cache.
    pub fn from_proprietary(
        &self,
        key: &RsaPublicKey<'_>,
    ) -> Result<LicensingPublicKey, CryptoError> {
        let (modulus, exponent) = proprietary_components(key);
        self.get_or_build(&modulus, &exponent)
    }

    /// Keys held now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn get_or_build(
        &self,
        modulus: &[u8],
        exponent: &[u8],
    ) -> Result<LicensingPublicKey, CryptoError> {
        let modulus = trim_leading_zeros(modulus);
        let exponent = trim_leading_zeros(exponent);
        let found =
            |cached: &CachedPublicKey| *cached.modulus == *modulus && *cached.exponent == *exponent;
        if let Some(cached) = self.lock().iter().find(|cached| found(cached)) {
            return Ok(cached.key.clone());
        }
        // Built outside the lock: two connections meeting a new key at once both build it,
        // and the second to finish finds the first's entry and keeps only one.
        let key = LicensingPublicKey::from_be_components(modulus, exponent)?;
        let mut keys = self.lock();
        if !keys.iter().any(found) {
            keys.push_front(CachedPublicKey {
                modulus: modulus.into(),
                exponent: exponent.into(),
                key: key.clone(),
            });
            keys.truncate(Self::CAPACITY);
        }
        Ok(key)
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<CachedPublicKey>> {
        // A panic while holding the lock cannot leave the list half-changed (each change is one
        // VecDeque call), so a poisoned lock's list is still sound.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl core::fmt::Debug for PublicKeyCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PublicKeyCache")
            .field("keys", &self.len())
            .finish()
    }
}

/// Walks a DER certificate to its SubjectPublicKeyInfo, skipping every other field without
/// interpreting it: version, serialNumber, signature, issuer, validity, subject before it; the
/// unique ids and extensions after it; the outer signature.
fn subject_public_key_info(certificate_der: &[u8]) -> der::Result<SubjectPublicKeyInfoRef<'_>> {
    let mut reader = SliceReader::new(certificate_der)?;
    let spki = reader.sequence(|certificate| {
        let spki = certificate.sequence(|tbs| {
            if der::Tag::peek(tbs)?.is_context_specific() {
                tbs.tlv_bytes()?; // [0] EXPLICIT version
            }
            for _field in ["serialNumber", "signature", "issuer", "validity", "subject"] {
                tbs.tlv_bytes()?;
            }
            let spki = SubjectPublicKeyInfoRef::decode(tbs)?;
            tbs.drain(tbs.remaining_len())?;
            Ok::<_, der::Error>(spki)
        })?;
        certificate.drain(certificate.remaining_len())?;
        Ok::<_, der::Error>(spki)
    })?;
    reader.finish()?;
    Ok(spki)
}

/// Sizes are checked on whole bytes: a "512-bit" key may have its top bit clear (xrdp's has 511
/// significant bits), and what licensing cares about is the 64-byte block.
fn check_modulus_bits(bits: usize) -> Result<(), CryptoError> {
    if (MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits.div_ceil(8).saturating_mul(8)) {
        Ok(())
    } else {
        Err(CryptoError::ModulusSize {
            bits,
            min: MIN_MODULUS_BITS,
            max: MAX_MODULUS_BITS,
        })
    }
}

pub(super) fn modulus_bits(key: &impl PublicKeyParts) -> usize {
    usize::try_from(key.n().bit_width_vartime()).unwrap_or(usize::MAX)
}

fn trim_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|byte| *byte != 0)
        .unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Bit width of a big-endian integer without leading zero bytes.
fn be_bit_width(bytes: &[u8]) -> usize {
    let top_bits = bytes.first().map_or(0, |byte| {
        8usize.saturating_sub(usize::try_from(byte.leading_zeros()).unwrap_or(8))
    });
    bytes
        .len()
        .saturating_sub(1)
        .saturating_mul(8)
        .saturating_add(top_bits)
}

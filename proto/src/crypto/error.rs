//! Errors of the crypto layer: what was wrong with a key, a ciphertext or a certificate.

use super::rsa_backend::RsaBackend;
use crate::wire::EncodeError;

/// A licensing crypto failure. Messages name what was wrong; none of them carries secret bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CryptoError {
    #[error("modulus of {bits} bits is outside the supported {min}..={max} bits")]
    ModulusSize { bits: usize, min: usize, max: usize },
    #[error("public key is invalid ({0})")]
    InvalidPublicKey(&'static str),
    #[error("public exponent does not fit RSA_PUBLIC_KEY's 32-bit pubExp field")]
    PublicExponentTooLarge,
    #[error("certificate is not a DER X.509 certificate ({reason})")]
    Certificate { reason: String },
    #[error("certificate subject key algorithm {oid} is not RSA")]
    UnsupportedKeyAlgorithm { oid: String },
    #[error(
        "encrypted secret (premaster or client random) is {actual} bytes, more than {} (modulus length + 8)",
        modulus_len + 8
    )]
    EncryptedPremasterLength { actual: usize, modulus_len: usize },
    #[error("encrypted secret (premaster or client random) is not smaller than the modulus")]
    CiphertextOutOfRange,
    #[error(
        "decrypted secret has non-zero bytes beyond its length (48 for a premaster, 32 for a client random)"
    )]
    PremasterOutOfRange,
    #[error("private-key operation failed")]
    PrivateKeyOperation,
    #[error("modulus of {bits} bits is too small for an {signature} signature")]
    ModulusTooSmallForSignature {
        bits: usize,
        /// `RSA-SHA1` or `RSA-SHA256`.
        signature: &'static str,
    },
    #[error("private key is not a PKCS#8 or PKCS#1 PEM RSA key ({reason})")]
    PrivateKeyPem { reason: String },
    #[error("private key cannot be encoded as PKCS#8 PEM ({reason})")]
    PrivateKeyEncoding { reason: String },
    #[error("public key cannot be encoded as PKCS#1 DER ({reason})")]
    PublicKeyEncoding { reason: String },
    #[error("key generation failed ({reason})")]
    KeyGeneration { reason: String },
    #[error("unknown RSA backend {name:?} (expected \"rust\" or \"openssl\")")]
    UnknownRsaBackend { name: String },
    #[error(
        "RSA backend {backend} is not in this build (rdpele-proto's `openssl` feature is off)"
    )]
    RsaBackendUnavailable { backend: RsaBackend },
    #[error("the native RSA backend refused the key ({reason})")]
    NativeKey { reason: String },
    #[error("encoding the proprietary certificate failed: {0}")]
    Encode(#[from] EncodeError),
}

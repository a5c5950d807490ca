//! MS-RDPBCGR 5.3.3.1 Proprietary Certificates: signed with the Terminal Services signing key,
//! a 512-bit RSA key whose private half the specification publishes (5.3.3.1.1) — so the
//! signature proves nothing about the server; clients check it because the format says so.

use ::rsa::hazmat::rsa_encrypt;
use ::rsa::traits::PublicKeyParts;
use ::rsa::{BoxedUint, PublicKey};
use md5::{Digest, Md5};
use subtle::ConstantTimeEq;

use super::error::CryptoError;
use super::rsa::{LicensingPublicKey, WIRE_PADDING_LEN};
use crate::wire::{
    BlobType, CertificateChain, LicenseBinaryBlob, ProprietaryCertificate, ServerCertificate, Wire,
};
use crate::wire::{KEY_EXCHANGE_ALG_RSA, SIGNATURE_ALG_RSA};

/// MS-RDPBCGR 5.3.3.1.1: the Terminal Services signing key's 64-byte modulus n, little-endian.
pub const TS_SIGNING_KEY_MODULUS: [u8; 64] = [
    0x3d, 0x3a, 0x5e, 0xbd, 0x72, 0x43, 0x3e, 0xc9, 0x4d, 0xbb, 0xc1, 0x1e, 0x4a, 0xba, 0x5f, 0xcb,
    0x3e, 0x88, 0x20, 0x87, 0xef, 0xf5, 0xc1, 0xe2, 0xd7, 0xb7, 0x6b, 0x9a, 0xf2, 0x52, 0x45, 0x95,
    0xce, 0x63, 0x65, 0x6b, 0x58, 0x3a, 0xfe, 0xef, 0x7c, 0xe7, 0xbf, 0xfe, 0x3d, 0xf6, 0x5c, 0x7d,
    0x6c, 0x5e, 0x06, 0x09, 0x1a, 0xf5, 0x61, 0xbb, 0x20, 0x93, 0x09, 0x5f, 0x05, 0x6d, 0xea, 0x87,
];

/// MS-RDPBCGR 5.3.3.1.1: the private exponent d, little-endian.
pub const TS_SIGNING_KEY_PRIVATE_EXPONENT: [u8; 64] = [
    0x87, 0xa7, 0x19, 0x32, 0xda, 0x11, 0x87, 0x55, 0x58, 0x00, 0x16, 0x16, 0x25, 0x65, 0x68, 0xf8,
    0x24, 0x3e, 0xe6, 0xfa, 0xe9, 0x67, 0x49, 0x94, 0xcf, 0x92, 0xcc, 0x33, 0x99, 0xe8, 0x08, 0x60,
    0x17, 0x9a, 0x12, 0x9f, 0x24, 0xdd, 0xb1, 0x24, 0x99, 0xc7, 0x3a, 0xb8, 0x0a, 0x7b, 0x0d, 0xdd,
    0x35, 0x07, 0x79, 0x17, 0x0b, 0x51, 0x9b, 0xb3, 0xc7, 0x10, 0x01, 0x13, 0xe7, 0x3f, 0xf3, 0x5f,
];

/// MS-RDPBCGR 5.3.3.1.1: the public exponent e (the bytes 0x5b 0x7b 0x88 0xc0, little-endian).
pub const TS_SIGNING_KEY_PUBLIC_EXPONENT: u32 = 0xc088_7b5b;

/// Bytes of the signed block and of the signature: the signing key's modulus length.
const SIGNATURE_LEN: usize = 64;

/// MS-RDPBCGR 5.3.3.1.2: builds and signs a proprietary certificate for `key`, returning the
/// encoded SERVER_CERTIFICATE (dwVersion CERT_CHAIN_VERSION_1, SIGNATURE_ALG_RSA,
/// KEY_EXCHANGE_ALG_RSA, a BB_RSA_KEY_BLOB holding the RSA1 key, and a BB_RSA_SIGNATURE_BLOB of
/// 64 signature bytes plus 8 zero bytes) — what goes into a License Request's
/// BB_CERTIFICATE_BLOB or the Server Security Data.
pub fn proprietary_certificate(key: &LicensingPublicKey) -> Result<Vec<u8>, CryptoError> {
    let blob = key.to_rsa_public_key_blob()?;
    let certificate = |signature| ServerCertificate {
        temporarily_issued: false,
        chain: CertificateChain::Proprietary(ProprietaryCertificate {
            sig_alg_id: SIGNATURE_ALG_RSA,
            key_alg_id: KEY_EXCHANGE_ALG_RSA,
            public_key_blob_type: BlobType::BB_RSA_KEY_BLOB,
            public_key: blob.as_wire(),
            signature_blob_type: BlobType::BB_RSA_SIGNATURE_BLOB,
            signature,
        }),
    };
    let hash = signed_fields_hash(&certificate(&[]))?;
    let signature = sign(&hash).ok_or(CryptoError::PrivateKeyOperation)?;
    Ok(certificate(&signature).to_vec()?)
}

/// MS-RDPBCGR 5.3.3.1.3: whether `cert` carries a valid Terminal Services signature, taking
/// dwVersion to be CERT_CHAIN_VERSION_1 (what every peer sends with a proprietary certificate).
/// Use [`verify_server_certificate`] to honour a set temporarily-issued bit.
pub fn verify_proprietary_certificate(cert: &ProprietaryCertificate<'_>) -> bool {
    verify(false, cert)
}

/// [`verify_proprietary_certificate`] over a whole SERVER_CERTIFICATE, whose dwVersion is part
/// of the signed data. An X.509 chain is not a proprietary certificate: `false`.
pub fn verify_server_certificate(cert: &ServerCertificate<'_>) -> bool {
    match &cert.chain {
        CertificateChain::Proprietary(proprietary) => verify(cert.temporarily_issued, proprietary),
        CertificateChain::X509(_) => false,
    }
}

fn verify(temporarily_issued: bool, cert: &ProprietaryCertificate<'_>) -> bool {
    let unsigned = ServerCertificate {
        temporarily_issued,
        chain: CertificateChain::Proprietary(ProprietaryCertificate {
            signature: &[],
            ..*cert
        }),
    };
    let Ok(hash) = signed_fields_hash(&unsigned) else {
        return false;
    };
    // 64 signature bytes, then padding that must be zero (8 bytes from every signer seen).
    let Some((signature, padding)) = cert.signature.split_at_checked(SIGNATURE_LEN) else {
        return false;
    };
    if padding.iter().any(|byte| *byte != 0) {
        return false;
    }
    let Ok(s) = BoxedUint::from_le_slice(signature, 512) else {
        return false;
    };
    let key = ts_key(&TS_SIGNING_KEY_PUBLIC_EXPONENT.to_le_bytes());
    if s >= *key.n().as_ref() {
        return false;
    }
    let Ok(m) = rsa_encrypt(&key, &s) else {
        return false;
    };
    // The recovered block, as a 64-byte little-endian integer: the 63-byte block of 5.3.3.1.2
    // and a zero top byte.
    let mut expected = [0u8; SIGNATURE_LEN];
    if let Some(low) = expected.get_mut(..SIGNATURE_LEN - 1) {
        low.copy_from_slice(&signature_block(&hash));
    }
    m.to_le_bytes().ct_eq(&expected).into()
}

/// MD5 over the first six fields of the certificate (MS-RDPBCGR 5.3.3.1.2): dwVersion,
/// dwSigAlgId, dwKeyAlgId, wPublicKeyBlobType, wPublicKeyBlobLen and PublicKeyBlob, as encoded
/// — i.e. everything before the (here empty) signature blob's 4-byte header.
fn signed_fields_hash(unsigned: &ServerCertificate<'_>) -> Result<[u8; 16], CryptoError> {
    let encoded = unsigned.to_vec()?;
    let signed_len = encoded.len().saturating_sub(LicenseBinaryBlob::HEADER_LEN);
    let signed = encoded.get(..signed_len).unwrap_or_default();
    Ok(Md5::digest(signed).into())
}

/// MS-RDPBCGR 5.3.3.1.2: the 63-byte little-endian block that is signed — the hash in the first
/// 16 bytes, 0x00, 45 bytes of 0xFF, and 0x01 (the largest value a 64-byte modulus encodes
/// safely).
fn signature_block(hash: &[u8; 16]) -> [u8; SIGNATURE_LEN - 1] {
    let mut block = [0xff; SIGNATURE_LEN - 1];
    let (head, tail) = block.split_at_mut(hash.len());
    head.copy_from_slice(hash);
    if let Some(separator) = tail.first_mut() {
        *separator = 0x00;
    }
    if let Some(last) = tail.last_mut() {
        *last = 0x01;
    }
    block
}

/// s = m^d mod n over the signature block, little-endian, plus the 8 zero bytes of padding.
/// (`None` cannot happen: the block is 63 bytes and the modulus 64.)
fn sign(hash: &[u8; 16]) -> Option<Vec<u8>> {
    // The private exponent is published, so it is used like a public one: a plain modular
    // exponentiation, with none of the care a real private key needs.
    let key = ts_key(&TS_SIGNING_KEY_PRIVATE_EXPONENT);
    let m = BoxedUint::from_le_slice(&signature_block(hash), 512).ok()?;
    let mut out = rsa_encrypt(&key, &m).ok()?.to_le_bytes().into_vec();
    out.resize(SIGNATURE_LEN + WIRE_PADDING_LEN, 0);
    Some(out)
}

/// The signing key's modulus with `exponent` (little-endian) as the exponent of a public-key
/// operation: the public exponent verifies, the published private exponent signs.
fn ts_key(exponent: &[u8]) -> PublicKey {
    PublicKey::new_unchecked(
        BoxedUint::from_le_slice_vartime(&TS_SIGNING_KEY_MODULUS),
        BoxedUint::from_le_slice_vartime(exponent),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-RDPBCGR 5.3.3.1.2's worked example: the hash f5cc18ee… copied into the 63-byte
    /// array, then 0x00, 45 × 0xFF and 0x01 (5.3.3.1.3 restates the same layout).
    #[test]
    fn signature_block_matches_the_specification_example() {
        let hash: [u8; 16] = [
            0xf5, 0xcc, 0x18, 0xee, 0x45, 0xe9, 0x4d, 0xa6, 0x79, 0x02, 0xca, 0x76, 0x51, 0x33,
            0xe1, 0x7f,
        ];
        let mut expected = hash.to_vec();
        expected.push(0x00);
        expected.extend_from_slice(&[0xff; 45]);
        expected.push(0x01);
        assert_eq!(signature_block(&hash).to_vec(), expected);
    }

    /// The published exponents are inverse: signing then verifying the example block gives it
    /// back, so the key constants were transcribed correctly.
    #[test]
    fn published_key_halves_are_inverse() {
        let hash = [0x42; 16];
        let signature = sign(&hash).unwrap();
        assert_eq!(signature.len(), 72);
        let (s, padding) = signature.split_at(64);
        assert_eq!(padding, [0u8; 8]);
        let key = ts_key(&TS_SIGNING_KEY_PUBLIC_EXPONENT.to_le_bytes());
        let m = rsa_encrypt(&key, &BoxedUint::from_le_slice(s, 512).unwrap()).unwrap();
        let mut expected = signature_block(&hash).to_vec();
        expected.push(0);
        assert_eq!(m.to_le_bytes().to_vec(), expected);
    }
}

//! Every RSA backend in the build gives the same bytes and the same typed errors: premasters and
//! RSA-SHA1 signatures byte-identical across backends for 512-, 1024- and 2048-bit keys and
//! equal to the `openssl` CLI's answers, the same rejections of malformed encrypted premasters,
//! and PEM round trips that do not depend on the backend. With `--all-features` both backends
//! run in the same test binary, selected at run time with `with_backend`.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand_chacha::ChaCha20Rng;
use rdpele_proto::crypto::rand_core::{Rng, SeedableRng};
use rdpele_proto::crypto::*;
use rsa::traits::PublicKeyParts;

#[path = "vectors/openssl_rsa.rs"]
mod openssl_rsa;
use openssl_rsa::*;

/// The backends this build has: both with the `openssl` feature, `rust` alone without it.
fn backends() -> Vec<RsaBackend> {
    let available: Vec<RsaBackend> = RsaBackend::ALL
        .into_iter()
        .filter(|backend| backend.is_available())
        .collect();
    assert_eq!(
        available.len(),
        if cfg!(feature = "openssl") { 2 } else { 1 }
    );
    available
}

/// The same key on each backend.
fn on_each_backend(key: &LicensingPrivateKey) -> Vec<LicensingPrivateKey> {
    backends()
        .into_iter()
        .map(|backend| {
            let key = key.clone().with_backend(backend).unwrap();
            assert_eq!(key.backend(), backend);
            key
        })
        .collect()
}

/// 512 (PKCS#1 PEM and generated), 1024 (generated) and 2048 bits (PKCS#8 PEM).
fn keys() -> Vec<LicensingPrivateKey> {
    let mut rng = ChaCha20Rng::seed_from_u64(1024);
    vec![
        LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap(),
        LicensingPrivateKey::generate(512, &mut rng).unwrap(),
        LicensingPrivateKey::generate(1024, &mut rng).unwrap(),
        LicensingPrivateKey::from_pem(KEY_2048_PKCS8).unwrap(),
    ]
}

#[test]
fn backend_names_round_trip_and_the_default_is_the_fastest_in_the_build() {
    for backend in RsaBackend::ALL {
        assert_eq!(backend.to_string().parse::<RsaBackend>(), Ok(backend));
    }
    assert_eq!("rust".parse(), Ok(RsaBackend::Rust));
    assert_eq!("openssl".parse(), Ok(RsaBackend::OpenSsl));
    assert_eq!(
        "OpenSSL".parse::<RsaBackend>(),
        Err(CryptoError::UnknownRsaBackend {
            name: "OpenSSL".into()
        })
    );
    let expected = if cfg!(feature = "openssl") {
        RsaBackend::OpenSsl
    } else {
        RsaBackend::Rust
    };
    assert_eq!(RsaBackend::default(), expected);
    let key = LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap();
    assert_eq!(key.backend(), expected);
}

#[cfg(not(feature = "openssl"))]
#[test]
fn openssl_without_the_feature_is_a_typed_error() {
    let key = LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap();
    assert_eq!(
        key.with_backend(RsaBackend::OpenSsl).unwrap_err(),
        CryptoError::RsaBackendUnavailable {
            backend: RsaBackend::OpenSsl
        }
    );
}

#[test]
fn premasters_are_byte_identical_on_every_backend() {
    let mut rng = ChaCha20Rng::seed_from_u64(48);
    for key in keys() {
        let public = key.public_key();
        for _ in 0..8 {
            let mut premaster = [0u8; 48];
            rng.fill_bytes(&mut premaster);
            let encrypted = public.encrypt_premaster(&premaster).unwrap();
            for key in on_each_backend(&key) {
                let backend = key.backend();
                assert_eq!(
                    key.decrypt_premaster(&encrypted, &mut rng).unwrap(),
                    premaster,
                    "{backend}, {} bits",
                    public.modulus_bits()
                );
                // Without the 8 bytes of padding, as some peers send it.
                let k = key.modulus_len();
                assert_eq!(
                    key.decrypt_premaster(&encrypted[..k], &mut rng).unwrap(),
                    premaster
                );
            }
        }
    }
}

#[test]
fn the_openssl_cli_premaster_decrypts_on_every_backend() {
    let mut rng = ChaCha20Rng::seed_from_u64(2048);
    let premaster: [u8; 48] = core::array::from_fn(|i| 0x30 + u8::try_from(i).unwrap());
    let from_openssl = [
        hex::decode(OPENSSL_ENCRYPTED_PREMASTER_LE).unwrap(),
        vec![0; 8],
    ]
    .concat();
    let key = LicensingPrivateKey::from_pem(KEY_2048_PKCS8).unwrap();
    for key in on_each_backend(&key) {
        assert_eq!(
            key.decrypt_premaster(&from_openssl, &mut rng).unwrap(),
            premaster,
            "{}",
            key.backend()
        );
    }
}

#[test]
fn signatures_are_byte_identical_on_every_backend_and_match_the_openssl_cli() {
    for (pem, expected) in [
        (KEY_2048_PKCS8, OPENSSL_SHA1_SIGNATURE_2048),
        (KEY_512_PKCS1, OPENSSL_SHA1_SIGNATURE_512),
    ] {
        let key = LicensingPrivateKey::from_pem(pem).unwrap();
        for key in on_each_backend(&key) {
            let signature = key.sign_sha1(SIGNED_MESSAGE).unwrap();
            assert_eq!(hex::encode(&signature), expected, "{}", key.backend());
        }
    }
    let messages: [&[u8]; 4] = [b"", b"a", &[0u8; 1000], SIGNED_MESSAGE];
    for key in keys() {
        let public = key.public_key();
        for message in messages {
            let signatures: Vec<Vec<u8>> = on_each_backend(&key)
                .iter()
                .map(|key| key.sign_sha1(message).unwrap())
                .collect();
            for signature in &signatures {
                assert_eq!(signature, &signatures[0]);
                assert_eq!(signature.len(), key.modulus_len());
                assert!(public.verify_sha1(message, signature));
            }
        }
    }
}

/// The activated chain's certificate authorities sign sha256WithRSAEncryption: the same bytes
/// as `openssl dgst -sha256 -sign` on every backend.
#[test]
fn sha256_signatures_are_byte_identical_on_every_backend_and_match_the_openssl_cli() {
    for (pem, expected) in [
        (KEY_2048_PKCS8, OPENSSL_SHA256_SIGNATURE_2048),
        (KEY_512_PKCS1, OPENSSL_SHA256_SIGNATURE_512),
    ] {
        let key = LicensingPrivateKey::from_pem(pem).unwrap();
        for key in on_each_backend(&key) {
            let signature = key.sign_sha256(SIGNED_MESSAGE).unwrap();
            assert_eq!(hex::encode(&signature), expected, "{}", key.backend());
        }
    }
}

#[test]
fn malformed_premasters_are_the_same_typed_errors_on_every_backend() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for key in keys() {
        let public = key.public_key();
        let k = key.modulus_len();
        let encrypted = public.encrypt_premaster(&[7; 48]).unwrap();
        let padded = [encrypted.clone(), vec![0; 2 * k]].concat();
        // n itself, little-endian: the smallest ciphertext that is out of range.
        let n_le = public.to_rsa_public_key_blob().unwrap().modulus;
        // A well-formed block whose plaintext has bytes beyond the 48th: the raw public
        // operation on n with its (non-zero) top byte lowered by one.
        let mut plaintext = n_le[..k].to_vec();
        plaintext[k - 1] -= 1;
        let m = ::rsa::BoxedUint::from_le_slice(
            &plaintext,
            public.to_rsa_public_key().n_bits_precision(),
        )
        .unwrap();
        let c = ::rsa::hazmat::rsa_encrypt(public.to_rsa_public_key(), &m).unwrap();
        let mut high_bytes = c.to_le_bytes().to_vec();
        high_bytes.resize(k + 8, 0);

        let cases: Vec<(Vec<u8>, CryptoError)> = [k + 9, 2 * k]
            .into_iter()
            .map(|len| {
                (
                    padded[..len].to_vec(),
                    CryptoError::EncryptedPremasterLength {
                        actual: len,
                        modulus_len: k,
                    },
                )
            })
            .chain([
                (vec![0xff; k + 8], CryptoError::CiphertextOutOfRange),
                (n_le.clone(), CryptoError::CiphertextOutOfRange),
                (high_bytes, CryptoError::PremasterOutOfRange),
            ])
            .collect();
        for key in on_each_backend(&key) {
            for (blob, error) in &cases {
                assert_eq!(
                    key.decrypt_premaster(blob, &mut rng).as_ref(),
                    Err(error),
                    "{}, {} bits, {} bytes",
                    key.backend(),
                    public.modulus_bits(),
                    blob.len()
                );
            }
            // Zero bytes, however many up to k + 8, are the value 0: a zero premaster on
            // every backend (rdesktop 1.9.0's blob).
            for len in [0, 48, k - 1, k, k + 8] {
                assert_eq!(
                    key.decrypt_premaster(&vec![0; len], &mut rng),
                    Ok([0; 48]),
                    "{}, {} zero bytes",
                    key.backend(),
                    len
                );
            }
        }
    }
}

#[test]
fn pem_round_trips_on_every_backend() {
    for key in keys() {
        let pem = key.to_pkcs8_pem().unwrap();
        for on_backend in on_each_backend(&key) {
            assert_eq!(on_backend.to_pkcs8_pem().unwrap(), pem);
            assert_eq!(on_backend.public_key(), key.public_key());
            let again = LicensingPrivateKey::from_pem(&pem)
                .unwrap()
                .with_backend(on_backend.backend())
                .unwrap();
            assert_eq!(
                again.sign_sha1(SIGNED_MESSAGE).unwrap(),
                on_backend.sign_sha1(SIGNED_MESSAGE).unwrap()
            );
        }
    }
}

/// The client's public-key side: every backend encrypts a premaster to the same bytes, and
/// every backend decrypts them back.
#[test]
fn premaster_encryption_is_byte_identical_on_every_backend() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for key in keys() {
        let public = key.public_key();
        let mut premaster = [0u8; 48];
        rng.fill_bytes(&mut premaster);
        let encrypted: Vec<Vec<u8>> = backends()
            .into_iter()
            .map(|backend| public.encrypt_premaster_with(&premaster, backend).unwrap())
            .collect();
        assert!(encrypted.windows(2).all(|pair| pair[0] == pair[1]));
        assert_eq!(encrypted[0].len(), public.modulus_len() + 8);
        assert_eq!(public.encrypt_premaster(&premaster).unwrap(), encrypted[0]);
        for key in on_each_backend(&key) {
            assert_eq!(
                key.decrypt_premaster(&encrypted[0], &mut rng).unwrap(),
                premaster
            );
        }
    }
}

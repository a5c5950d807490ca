//! Licensing crypto against answers computed elsewhere: a real Windows licensing session
//! recorded in FreeRDP's early unit tests, IronRDP's licensing test data, MS-RDPBCGR 5.3.3.1's
//! published Terminal Services key and xrdp's certificate signed with it, the Windows X.509
//! chain in captures/, and OpenSSL (signatures and raw RSA computed with the `openssl` CLI).
//! Where a vector was computed here with another tool, the test says so.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand_chacha::ChaCha20Rng;
use rdpele_proto::crypto::rand_core::SeedableRng;
use rdpele_proto::crypto::*;
use rdpele_proto::wire::*;

#[path = "vectors/openssl_rsa.rs"]
mod openssl_rsa;
use openssl_rsa::*;

const WINDOWS_LICENSE_REQUEST: &[u8] = include_bytes!("../../captures/server_license_request.bin");
const XRDP_REQUEST: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_license_request.bin");
const XF_NLR: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_new_license_request.bin");

fn bytes<const N: usize>(hex: &str) -> [u8; N] {
    hex::decode(hex).unwrap().try_into().unwrap()
}

/// A Windows licensing session (FreeRDP's cunit/test_license.c, 2011: `client_random`,
/// `test_server_random`, `premaster_secret` and the keys FreeRDP checked against).
mod windows_session {
    pub const CLIENT_RANDOM: &str =
        "dc73a0c869256b18af0b947aa9a520af8bbc0dcca395b7b9eb815dbe0a109cd8";
    pub const SERVER_RANDOM: &str =
        "167ef87148161a4fa52ccd736360a6c3b9191b4b6bb20ab8ecf18d954ea821c5";
    pub const PREMASTER: &str = "cf7adbcbfb0e1523871c8481ba9d4e15bbd256bdd8f7f316cc353be1934278dd\
                                 929ae47ae299d473b1aa6f55943bc9bc";
    pub const MASTER_SECRET: &str =
        "be51ee632390d0f43ace3a3765c3ddcfedf0c819ed77334efd2b7d5ae2caf30a\
                                     f116e50c78597ed44b57ce17603a5ab3";
    pub const SESSION_KEY_BLOB: &str =
        "074fa02eeec45a46218cae01450226e4546b5910cc5bd196d05cebc2969b447b\
                                        1cd966b19e24aa604f89d14ef8b9553b";
    pub const MAC_SALT_KEY: &str = "074fa02eeec45a46218cae01450226e4";
    pub const LICENSING_ENCRYPTION_KEY: &str = "f3b1e03bfeb4f2c528a948cd90f193e5";
    /// The server's 512-bit key, little-endian as in its proprietary certificate; e = 65537.
    pub const MODULUS_LE: &str = "23c9ec0e9f1e0e1a78afa514d4f545e4046ef401e9df45d1c2aef47fd3b9cbf3\
                                  1a23a10d4bd4d14ad2d1c97cab248bb15a93ca344417b5e4fef79aaa720d4195";
    pub const ENCRYPTED_PREMASTER: &str = "6bbc779f200c9839c18577c81987d88293bd21695f87e0d64ead5e2313808c63\
                                           3ed66e60c940e986088cd5aaa954fe274c1f8757decad4c71e469e007adb4723";
    pub const ENCRYPTED_PLATFORM_CHALLENGE: &str = "840a4250ad5ec12930bd";
}

/// "TEST\0" in UTF-16LE: the platform challenge Windows sends.
const TEST_CHALLENGE: &[u8] = b"T\0E\0S\0T\0\0\0";

#[test]
fn windows_session_derives_every_key() {
    use windows_session::*;
    let keys = derive_session_keys(
        &bytes(PREMASTER),
        &bytes(CLIENT_RANDOM),
        &bytes(SERVER_RANDOM),
    );
    assert_eq!(hex::encode(keys.master_secret.expose()), MASTER_SECRET);
    assert_eq!(
        hex::encode(keys.session_key_blob.expose()),
        SESSION_KEY_BLOB
    );
    assert_eq!(hex::encode(keys.mac_salt_key.expose()), MAC_SALT_KEY);
    assert_eq!(
        hex::encode(keys.licensing_encryption_key.expose()),
        LICENSING_ENCRYPTION_KEY
    );
}

#[test]
fn windows_session_platform_challenge_decrypts_to_test() {
    use windows_session::*;
    let key = bytes(LICENSING_ENCRYPTION_KEY);
    let challenge = rc4(&key, &hex::decode(ENCRYPTED_PLATFORM_CHALLENGE).unwrap());
    assert_eq!(challenge, TEST_CHALLENGE);
    assert_eq!(
        hex::encode(rc4(&key, &challenge)),
        ENCRYPTED_PLATFORM_CHALLENGE
    );
}

/// The client's RSA encryption of the premaster secret with the server's 512-bit proprietary
/// key, byte for byte (raw RSA is deterministic), and 72 bytes with the padding — the length
/// xfreerdp sends for a 512-bit key.
#[test]
fn windows_session_premaster_encrypts_to_the_recorded_blob() {
    use windows_session::*;
    let modulus = [hex::decode(MODULUS_LE).unwrap(), vec![0; 8]].concat();
    let key = LicensingPublicKey::from_proprietary(&RsaPublicKey {
        bit_len: 512,
        data_len: 63,
        public_exponent: 0x0001_0001,
        modulus: &modulus,
    })
    .unwrap();
    assert_eq!(key.modulus_len(), 64);
    let encrypted = key.encrypt_premaster(&bytes(PREMASTER)).unwrap();
    assert_eq!(hex::encode(&encrypted[..64]), ENCRYPTED_PREMASTER);
    assert_eq!(&encrypted[64..], [0u8; 8]);

    let pdu = LicensingPdu::decode(&XF_NLR[4..]).unwrap();
    let LicensingMessage::NewLicenseRequest(request) = pdu.message else {
        panic!("not a new license request")
    };
    assert_eq!(
        request.encrypted_premaster_secret.data.len(),
        encrypted.len()
    );
}

/// IronRDP's licensing test data (ironrdp-pdu server_license/client_new_license_request):
/// randoms, premaster, master secret, session key blob and licensing key.
#[test]
fn ironrdp_vector_derives_every_key() {
    let keys = derive_session_keys(
        &bytes(
            "1428dafbb9ea38ab5ea2f904f7899c983d504577bf17811c3787c24813e8c920\
             4ddff327bdb6987e64dafe1d312f62ca",
        ),
        &bytes("4b5b7b43638a08fed17abaf5918577fe3936f6d778ec6acc894a90412cac5a49"),
        &bytes("5c81f011ebcfd10eb41fb3ba93a2d73909aa99e910d4d795ddad916905266b6a"),
    );
    assert_eq!(
        hex::encode(keys.master_secret.expose()),
        "fedc519adb3ac961040724945d0c43a770e3f30050d7a8723eab7e1be464e5c5\
         74aeed1072962a4c65094f6012a912a1"
    );
    assert_eq!(
        hex::encode(keys.session_key_blob.expose()),
        "f70375b95fdad0beb42af5c13d98857ad6c5394ce3cb7661aa4ab6157e89213d\
         df5b2532ee05060d5baa6314afa5460f"
    );
    assert_eq!(
        hex::encode(keys.mac_salt_key.expose()),
        "f70375b95fdad0beb42af5c13d98857a"
    );
    assert_eq!(
        hex::encode(keys.licensing_encryption_key.expose()),
        "fa44e878d82b3f1d4d00a0a655ce8ab7"
    );
}

/// IronRDP's platform challenge test (client_platform_challenge_response): the challenge
/// decrypts to "TEST", and the server's MAC is over the decrypted bytes (MS-RDPELE 5.1.5).
#[test]
fn ironrdp_platform_challenge_decrypts_and_its_mac_verifies() {
    let mac_salt_key = bytes("015b9e5f06977158c3b88b8c6e772137");
    let licensing_key = bytes("e178e4a02ac5cab8a2d153b80723f3d2");
    let encrypted = hex::decode("26388877cbe8bfce2c51").unwrap();
    let mac = bytes("514a272c7418ec8895ddac103e3f0a72");

    let challenge = rc4(&licensing_key, &encrypted);
    assert_eq!(challenge, TEST_CHALLENGE);
    assert_eq!(mac_data(&mac_salt_key, &challenge), mac);
    assert!(verify_mac(&mac_salt_key, &challenge, &mac));
    // The MAC is not over the ciphertext, and any flipped bit fails it.
    assert!(!verify_mac(&mac_salt_key, &encrypted, &mac));
    let mut tampered = challenge.clone();
    tampered[0] ^= 0x01;
    assert!(!verify_mac(&mac_salt_key, &tampered, &mac));
}

fn xrdp_certificate() -> ServerCertificate<'static> {
    let pdu = LicensingPdu::decode(&XRDP_REQUEST[4..]).unwrap();
    let LicensingMessage::LicenseRequest(request) = pdu.message else {
        panic!("not a license request")
    };
    request.server_certificate.certificate.unwrap()
}

fn proprietary<'a>(certificate: &ServerCertificate<'a>) -> ProprietaryCertificate<'a> {
    match &certificate.chain {
        CertificateChain::Proprietary(cert) => *cert,
        CertificateChain::X509(_) => panic!("not a proprietary certificate"),
    }
}

/// xrdp signs its certificate with the real Terminal Services key (MS-RDPBCGR 5.3.3.1.1).
#[test]
fn xrdp_proprietary_certificate_verifies_with_the_terminal_services_key() {
    let certificate = xrdp_certificate();
    let cert = proprietary(&certificate);
    assert!(verify_proprietary_certificate(&cert));
    assert!(verify_server_certificate(&certificate));

    // dwVersion is signed: the same bytes with the temporarily-issued bit do not verify.
    let temporary = ServerCertificate {
        temporarily_issued: true,
        ..certificate.clone()
    };
    assert!(!verify_server_certificate(&temporary));

    for index in 0..cert.public_key.modulus.len() {
        let mut modulus = cert.public_key.modulus.to_vec();
        modulus[index] ^= 0x01;
        let mut flipped = cert;
        flipped.public_key.modulus = &modulus;
        assert!(
            !verify_proprietary_certificate(&flipped),
            "modulus byte {index}"
        );
    }
    let mut flipped = cert;
    flipped.public_key.public_exponent ^= 0x0100;
    assert!(!verify_proprietary_certificate(&flipped), "exponent");
    for index in 0..cert.signature.len() {
        let mut signature = cert.signature.to_vec();
        signature[index] ^= 0x80;
        let mut flipped = cert;
        flipped.signature = &signature;
        assert!(
            !verify_proprietary_certificate(&flipped),
            "signature byte {index}"
        );
    }
    let mut short = cert;
    short.signature = &cert.signature[..63];
    assert!(!verify_proprietary_certificate(&short));
}

/// The key from xrdp's certificate, turned back into an RSA1 blob, gives xrdp's bytes.
#[test]
fn xrdp_public_key_round_trips_through_the_rsa1_blob() {
    let certificate = xrdp_certificate();
    let wire_key = proprietary(&certificate).public_key;
    let key = LicensingPublicKey::from_proprietary(&wire_key).unwrap();
    assert_eq!(key.modulus_len(), 64);
    // xrdp's modulus has its top bit clear; bitlen still says 512, as Windows writes it.
    assert_eq!(key.modulus_bits(), 511);
    let blob = key.to_rsa_public_key_blob().unwrap();
    assert_eq!(blob.bit_len, 512);
    assert_eq!(blob.as_wire(), wire_key);
    assert_eq!(key.encrypt_premaster(&[0x5a; 48]).unwrap().len(), 72);
}

/// MS-RDPBCGR 5.3.3.1.2's example public key (magic RSA1, 512 bits, e = 65537, modulus
/// 0xaffe36f2…) in a certificate built here, compared with the whole certificate computed
/// independently with Python (hashlib.md5 and pow() with the published n and d).
#[test]
fn certificate_for_the_specification_example_key_matches_an_independent_computation() {
    let modulus = [
        hex::decode(
            "affe36f2c5a1442e47c131a7dbc6670264715c00c9b6b304d0899fe76b24e8e8\
             e52d0b13a90c6d4d915ee8f6b31717e39fc54d4abafab92a1bfb10dd918c60b7",
        )
        .unwrap(),
        vec![0; 8],
    ]
    .concat();
    let key = LicensingPublicKey::from_proprietary(&RsaPublicKey {
        bit_len: 512,
        data_len: 63,
        public_exponent: 0x0001_0001,
        modulus: &modulus,
    })
    .unwrap();
    let encoded = proprietary_certificate(&key).unwrap();
    assert_eq!(
        hex::encode(&encoded),
        "01000000010000000100000006005c005253413148000000000200003f000000\
         01000100affe36f2c5a1442e47c131a7dbc6670264715c00c9b6b304d0899fe7\
         6b24e8e8e52d0b13a90c6d4d915ee8f6b31717e39fc54d4abafab92a1bfb10dd\
         918c60b7000000000000000008004800b8ae2db837f6b40da4e340c68a67f9ef\
         08c20517b772fec30638b1908089de579ed4747abcaf0cfe2d487fde5cdee4d9\
         f9c49633b940afa8963f1996bef589290000000000000000"
    );
    let certificate = ServerCertificate::decode(&encoded).unwrap();
    assert!(verify_server_certificate(&certificate));
}

/// Certificates built for generated and loaded keys parse with the wire codec, carry the key,
/// and verify; FreeRDP and mstsc accept exactly this layout.
#[test]
fn generated_certificates_verify() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let keys = [
        LicensingPrivateKey::generate(512, &mut rng).unwrap(),
        LicensingPrivateKey::from_pem(KEY_2048_PKCS8).unwrap(),
    ];
    for private in keys {
        let public = private.public_key();
        let encoded = proprietary_certificate(&public).unwrap();
        let certificate = ServerCertificate::decode(&encoded).unwrap();
        assert!(!certificate.temporarily_issued);
        let cert = proprietary(&certificate);
        assert_eq!(cert.sig_alg_id, 1);
        assert_eq!(cert.key_alg_id, 1);
        assert_eq!(cert.public_key_blob_type, BlobType::BB_RSA_KEY_BLOB);
        assert_eq!(cert.signature_blob_type, BlobType::BB_RSA_SIGNATURE_BLOB);
        assert_eq!(cert.signature.len(), 72);
        assert_eq!(&cert.signature[64..], [0u8; 8]);
        assert_eq!(
            cert.public_key.modulus.len(),
            public.modulus_len() + WIRE_PADDING_LEN
        );
        assert_eq!(
            LicensingPublicKey::from_proprietary(&cert.public_key).unwrap(),
            public
        );
        assert!(verify_proprietary_certificate(&cert));

        let mut modulus = cert.public_key.modulus.to_vec();
        modulus[3] ^= 0x10;
        let mut flipped = cert;
        flipped.public_key.modulus = &modulus;
        assert!(!verify_proprietary_certificate(&flipped));
    }
}

fn windows_chain() -> Vec<Vec<u8>> {
    let pdu = LicensingPdu::decode(WINDOWS_LICENSE_REQUEST).unwrap();
    let LicensingMessage::LicenseRequest(request) = pdu.message else {
        panic!("not a license request")
    };
    let certificate = request.server_certificate.certificate.unwrap();
    let CertificateChain::X509(chain) = certificate.chain else {
        panic!("not an X.509 chain")
    };
    chain.certificates.iter().map(|c| c.der.to_vec()).collect()
}

/// The leaf of Windows' chain names its key with OIW shaWithRSASignature (1.3.14.3.2.15), which
/// OpenSSL cannot load; the key is a 2048-bit RSAPublicKey all the same. The issuer's uses
/// rsaEncryption. Both moduli as `openssl asn1parse` shows them.
#[test]
fn windows_x509_chain_keys_load() {
    let chain = windows_chain();
    assert_eq!(chain.len(), 2);
    let leaf_der = &chain[1];
    // The SubjectPublicKeyInfo's algorithm really is the legacy OID.
    let oiw = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x0f];
    assert!(leaf_der.windows(oiw.len()).any(|w| w == oiw));

    let leaf = LicensingPublicKey::from_x509_der(leaf_der).unwrap();
    assert_eq!(leaf.modulus_bits(), 2048);
    let blob = leaf.to_rsa_public_key_blob().unwrap();
    assert_eq!(blob.public_exponent, 65537);
    assert_eq!(blob.bit_len, 2048);
    assert_eq!(blob.data_len, 255);
    let modulus_be: Vec<u8> = blob.modulus[..256].iter().rev().copied().collect();
    assert!(hex::encode(&modulus_be).starts_with("c8906bf0c65881a6891c0ef2f6d98212"));
    assert!(hex::encode(&modulus_be).ends_with("34eb97af656ddfbf6f5b"));
    // 256 + 8 bytes: the length of the EncryptedPreMasterSecret mstsc sent this server
    // (FreeRDP's recording of that session: a 0x0108-byte BB_RANDOM_BLOB).
    assert_eq!(leaf.encrypt_premaster(&[1; 48]).unwrap().len(), 0x108);

    let issuer = LicensingPublicKey::from_x509_der(&chain[0]).unwrap();
    assert_eq!(issuer.modulus_bits(), 2048);
    let issuer_modulus_be: Vec<u8> = issuer.to_rsa_public_key_blob().unwrap().modulus[..256]
        .iter()
        .rev()
        .copied()
        .collect();
    assert!(hex::encode(issuer_modulus_be).starts_with("88ad7c8f8b82765abd8f6f6218e1d9aa"));
}

/// The cache gives the key building gives: equal keys, byte-identical premaster ciphertexts
/// on every backend (the OpenSSL form is built at the first encryption and reused after); a
/// certificate seen again adds no key; a refused key gives building's error and is not kept;
/// and it never holds more than its capacity.
#[test]
fn public_key_cache_gives_the_key_building_gives() {
    let chain = windows_chain();
    let xrdp = xrdp_certificate();
    let xrdp_key = proprietary(&xrdp).public_key;
    let cache = PublicKeyCache::default();
    assert!(cache.is_empty());

    let cached = [
        cache.from_x509_der(&chain[1]).unwrap(),
        cache.from_x509_der(&chain[0]).unwrap(),
        cache.from_proprietary(&xrdp_key).unwrap(),
    ];
    let built = [
        LicensingPublicKey::from_x509_der(&chain[1]).unwrap(),
        LicensingPublicKey::from_x509_der(&chain[0]).unwrap(),
        LicensingPublicKey::from_proprietary(&xrdp_key).unwrap(),
    ];
    assert_eq!(cache.len(), 3);
    assert_eq!(cached, built);
    let premaster = [0x5a; 48];
    for backend in RsaBackend::ALL.into_iter().filter(|b| b.is_available()) {
        for (cached, built) in cached.iter().zip(&built) {
            let expected = built.encrypt_premaster_with(&premaster, backend).unwrap();
            for _ in 0..2 {
                assert_eq!(
                    cached.encrypt_premaster_with(&premaster, backend).unwrap(),
                    expected,
                    "{backend}"
                );
            }
        }
    }

    assert_eq!(cache.from_x509_der(&chain[1]).unwrap(), built[0]);
    assert_eq!(cache.from_proprietary(&xrdp_key).unwrap(), built[2]);
    assert_eq!(cache.len(), 3);

    let leaf = &chain[1];
    assert_eq!(
        cache.from_x509_der(&leaf[..100]),
        LicensingPublicKey::from_x509_der(&leaf[..100])
    );
    let mut even = xrdp_key.modulus.to_vec();
    even[0] &= 0xfe;
    let even_key = RsaPublicKey {
        modulus: &even,
        ..xrdp_key
    };
    assert_eq!(
        cache.from_proprietary(&even_key),
        Err(CryptoError::InvalidPublicKey(
            "modulus is even or not above the exponent"
        ))
    );
    assert_eq!(cache.len(), 3);

    let mut modulus = xrdp_key.modulus.to_vec();
    for step in 1..=PublicKeyCache::CAPACITY {
        modulus[1] = u8::try_from(step).unwrap();
        let key = RsaPublicKey {
            modulus: &modulus,
            ..xrdp_key
        };
        assert_eq!(
            cache.from_proprietary(&key).unwrap(),
            LicensingPublicKey::from_proprietary(&key).unwrap()
        );
    }
    assert_eq!(cache.len(), PublicKeyCache::CAPACITY);
}

#[test]
fn x509_rejects_garbage_and_non_rsa_keys() {
    let chain = windows_chain();
    let leaf = &chain[1];
    for len in [0, 1, 4, 100, leaf.len() - 1] {
        assert!(
            matches!(
                LicensingPublicKey::from_x509_der(&leaf[..len]),
                Err(CryptoError::Certificate { .. })
            ),
            "prefix of {len} bytes"
        );
    }
    let mut trailing = leaf.clone();
    trailing.push(0);
    assert!(matches!(
        LicensingPublicKey::from_x509_der(&trailing),
        Err(CryptoError::Certificate { .. })
    ));

    // Same length, another OID (1.3.14.3.2.16): not an RSA key algorithm.
    let oiw = [0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x0f];
    let at = leaf.windows(oiw.len()).position(|w| w == oiw).unwrap();
    let mut other = leaf.clone();
    other[at + oiw.len() - 1] = 0x10;
    assert_eq!(
        LicensingPublicKey::from_x509_der(&other),
        Err(CryptoError::UnsupportedKeyAlgorithm {
            oid: "1.3.14.3.2.16".into()
        })
    );
}

#[test]
fn premaster_round_trip_with_a_512_bit_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(512);
    let private = LicensingPrivateKey::generate(512, &mut rng).unwrap();
    let public = private.public_key();
    assert_eq!(public.modulus_bits(), 512);
    for seed in 0u8..4 {
        let premaster = [seed.wrapping_mul(37).wrapping_add(1); 48];
        let encrypted = public.encrypt_premaster(&premaster).unwrap();
        assert_eq!(encrypted.len(), 72);
        assert_eq!(&encrypted[64..], [0u8; 8]);
        assert_eq!(
            private.decrypt_premaster(&encrypted, &mut rng).unwrap(),
            premaster
        );
        // A peer that leaves the 8 bytes of padding out is understood too.
        assert_eq!(
            private
                .decrypt_premaster(&encrypted[..64], &mut rng)
                .unwrap(),
            premaster
        );
    }
}

/// A 2048-bit key (generated by `openssl genpkey`), and a premaster encrypted by
/// `openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:none` from the byte-reversed premaster
/// (OpenSSL is big-endian; licensing is little-endian).
#[test]
fn premaster_round_trip_with_a_2048_bit_key_and_openssl() {
    let mut rng = ChaCha20Rng::seed_from_u64(2048);
    let private = LicensingPrivateKey::from_pem(KEY_2048_PKCS8).unwrap();
    let public = private.public_key();
    assert_eq!(public.modulus_len(), 256);
    let premaster: [u8; 48] = core::array::from_fn(|i| 0x30 + u8::try_from(i).unwrap());
    let from_openssl = [
        hex::decode(OPENSSL_ENCRYPTED_PREMASTER_LE).unwrap(),
        vec![0; 8],
    ]
    .concat();
    assert_eq!(
        private.decrypt_premaster(&from_openssl, &mut rng).unwrap(),
        premaster
    );
    assert_eq!(public.encrypt_premaster(&premaster).unwrap(), from_openssl);
}

#[test]
fn premaster_decryption_rejects_wrong_lengths_and_out_of_range_values() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let private = LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap();
    let public = private.public_key();
    let encrypted = public.encrypt_premaster(&[7; 48]).unwrap();
    for len in [73, 128] {
        let blob = [encrypted.clone(), vec![0; 128]].concat();
        assert_eq!(
            private.decrypt_premaster(&blob[..len], &mut rng),
            Err(CryptoError::EncryptedPremasterLength {
                actual: len,
                modulus_len: 64
            }),
            "{len} bytes"
        );
    }
    // A blob of any length up to k + 8 is one little-endian integer: zero bytes are the value
    // 0, whose decryption is a zero premaster (rdesktop 1.9.0 sends 72 zero bytes whatever
    // the key size).
    for len in [0, 1, 48, 63, 64, 72] {
        assert_eq!(
            private.decrypt_premaster(&vec![0; len], &mut rng),
            Ok([0; 48]),
            "{len} zero bytes"
        );
    }
    // A ciphertext cut short is another, smaller value: not the premaster.
    assert!(private
        .decrypt_premaster(&encrypted[..48], &mut rng)
        .is_err());
    // A non-zero byte beyond the modulus length puts the value above the modulus.
    assert_eq!(encrypted.len(), 72, "modulus length + 8");
    let mut padded = encrypted.clone();
    padded[70] = 1;
    assert_eq!(
        private.decrypt_premaster(&padded, &mut rng),
        Err(CryptoError::CiphertextOutOfRange)
    );
    // Every length from k to k + 8 is the same value: IronRDP drops the ciphertext's zero
    // high-order bytes before its padding.
    for len in 64..=72 {
        let blob = [encrypted.clone(), vec![0; 128]].concat();
        assert_eq!(
            private.decrypt_premaster(&blob[..len], &mut rng).unwrap(),
            [7; 48]
        );
    }
    // All ones is above any 512-bit modulus.
    assert_eq!(
        private.decrypt_premaster(&[0xff; 72], &mut rng),
        Err(CryptoError::CiphertextOutOfRange)
    );
    // A well-formed RSA block whose plaintext has bytes beyond the 48th: a 64-byte value
    // encrypted with the raw public operation.
    let mut plaintext = [0x11u8; 64];
    plaintext[63] = 0x00; // keep it below the modulus
    let m = ::rsa::BoxedUint::from_le_slice(&plaintext, 512).unwrap();
    let c = ::rsa::hazmat::rsa_encrypt(public.to_rsa_public_key(), &m).unwrap();
    let mut blob = c.to_le_bytes().to_vec();
    blob.resize(72, 0);
    assert_eq!(
        private.decrypt_premaster(&blob, &mut rng),
        Err(CryptoError::PremasterOutOfRange)
    );
}

/// PKCS#1 v1.5 RSA-SHA1 (how CALs are signed) compared with `openssl dgst -sha1 -sign` over
/// the same message with the same keys; PKCS#1 v1.5 signatures are deterministic.
#[test]
fn sha1_signatures_match_openssl() {
    let message = SIGNED_MESSAGE;
    for (pem, expected) in [
        (KEY_2048_PKCS8, OPENSSL_SHA1_SIGNATURE_2048),
        (KEY_512_PKCS1, OPENSSL_SHA1_SIGNATURE_512),
    ] {
        let private = LicensingPrivateKey::from_pem(pem).unwrap();
        let signature = private.sign_sha1(message).unwrap();
        assert_eq!(hex::encode(&signature), expected);
        let public = private.public_key();
        assert!(public.verify_sha1(message, &signature));
        assert!(!public.verify_sha1(b"another message", &signature));
        let mut tampered = signature.clone();
        tampered[10] ^= 1;
        assert!(!public.verify_sha1(message, &tampered));
    }
}

/// PKCS#1 v1.5 RSA-SHA256 (how an activated server's certificate authorities sign) compared
/// with `openssl dgst -sha256 -sign`; not a SHA-1 signature of the same message.
#[test]
fn sha256_signatures_match_openssl() {
    for (pem, expected) in [
        (KEY_2048_PKCS8, OPENSSL_SHA256_SIGNATURE_2048),
        (KEY_512_PKCS1, OPENSSL_SHA256_SIGNATURE_512),
    ] {
        let private = LicensingPrivateKey::from_pem(pem).unwrap();
        let signature = private.sign_sha256(SIGNED_MESSAGE).unwrap();
        assert_eq!(hex::encode(&signature), expected);
        assert!(!private.public_key().verify_sha1(SIGNED_MESSAGE, &signature));
    }
}

#[test]
fn pem_round_trips_and_key_limits() {
    let private = LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap();
    let pem = private.to_pkcs8_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----\n"));
    let again = LicensingPrivateKey::from_pem(&pem).unwrap();
    assert_eq!(again.public_key(), private.public_key());
    assert!(matches!(
        LicensingPrivateKey::from_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
        ),
        Err(CryptoError::PrivateKeyPem { .. })
    ));
    assert!(matches!(
        LicensingPrivateKey::from_pem("not a key"),
        Err(CryptoError::PrivateKeyPem { .. })
    ));

    let mut rng = ChaCha20Rng::seed_from_u64(3);
    assert_eq!(
        LicensingPrivateKey::generate(256, &mut rng).unwrap_err(),
        CryptoError::ModulusSize {
            bits: 256,
            min: 512,
            max: 8192
        }
    );
    let small = [vec![0xffu8; 31], vec![0x7f], vec![0; 8]].concat();
    assert_eq!(
        LicensingPublicKey::from_proprietary(&RsaPublicKey {
            bit_len: 256,
            data_len: 31,
            public_exponent: 65537,
            modulus: &small,
        }),
        Err(CryptoError::ModulusSize {
            bits: 255,
            min: 512,
            max: 8192
        })
    );
    let even = [vec![0x10u8; 64], vec![0; 8]].concat();
    assert!(matches!(
        LicensingPublicKey::from_proprietary(&RsaPublicKey {
            bit_len: 512,
            data_len: 63,
            public_exponent: 65537,
            modulus: &even,
        }),
        Err(CryptoError::InvalidPublicKey(_))
    ));
}

#[test]
fn secrets_never_print() {
    use windows_session::*;
    let keys = derive_session_keys(
        &bytes(PREMASTER),
        &bytes(CLIENT_RANDOM),
        &bytes(SERVER_RANDOM),
    );
    let debug = format!(
        "{keys:?} {:?}",
        LicensingPrivateKey::from_pem(KEY_512_PKCS1).unwrap()
    );
    assert!(debug.contains("[redacted]"));
    for secret in [MASTER_SECRET, SESSION_KEY_BLOB, LICENSING_ENCRYPTION_KEY] {
        assert!(!debug.contains(&secret[..8]), "{debug}");
    }
}

//! Standard RDP Security (MS-RDPBCGR 5.3) on real bytes: xfreerdp 2.11.7 `/sec:rdp` against
//! xrdp 0.9.21 `security_layer=rdp`, both directions recorded on loopback, with xrdp's RSA key
//! (its rsakeys.ini as PKCS#8). See vectors/rdp_security/README.md for how they were made.
//!
//! The client random comes out of the Security Exchange with xrdp's key; the keys derived from
//! it open every encrypted PDU of both directions in order, slow-path and fast-path, with the
//! MAC each peer computed; and sealing the client's plaintexts again gives xfreerdp's bytes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rand_chacha::rand_core::SeedableRng;
use rdpele_proto::crypto::{
    derive_rdp_session_keys, EncryptionMethod, LicensingPrivateKey, RdpSessionKeys, Side,
};
use rdpele_proto::envelope::{
    walk, RdpSecurityLayer, SecurityExchangePdu, SecurityFlags, ServerSecurityData, StreamPdu,
};
use rdpele_proto::wire::{LicensingMessage, LicensingPdu, Wire};

const KEY: &str = include_str!("vectors/rdp_security/xrdp-0.9.21_rsakeys.pem");

struct Capture {
    client_to_server: &'static [u8],
    server_to_client: &'static [u8],
}

const HIGH_128: Capture = Capture {
    client_to_server: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_128bit_client_to_server.bin"
    ),
    server_to_client: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_128bit_server_to_client.bin"
    ),
};

const MEDIUM_40: Capture = Capture {
    client_to_server: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_40bit_client_to_server.bin"
    ),
    server_to_client: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_40bit_server_to_client.bin"
    ),
};

const SALTED: Capture = Capture {
    client_to_server: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_salted_client_to_server.bin"
    ),
    server_to_client: include_bytes!(
        "vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_salted_server_to_client.bin"
    ),
};

/// The Server Security Data (MS-RDPBCGR 2.2.1.4.3) in the MCS Connect Response: its header
/// type SC_SECURITY (0x0C02), then encryptionMethod, encryptionLevel, serverRandomLen (32),
/// serverCertLen and the server random.
fn server_security(server_to_client: &[u8]) -> (u32, u32, [u8; 32]) {
    let u32_at = |at: usize| u32::from_le_bytes(server_to_client[at..at + 4].try_into().unwrap());
    let start = (0..server_to_client.len() - 48)
        .find(|&at| server_to_client[at..at + 2] == [0x02, 0x0C] && u32_at(at + 12) == 32)
        .expect("no Server Security Data");
    let random = server_to_client[start + 20..start + 52].try_into().unwrap();
    (u32_at(start + 4), u32_at(start + 8), random)
}

/// The keys both ends derived: the client random decrypted from the Security Exchange with
/// xrdp's key, and the server random of the Server Security Data.
fn session(capture: &Capture, method: EncryptionMethod) -> (RdpSessionKeys, [u8; 32], bool) {
    let (wire_method, _, server_random) = server_security(capture.server_to_client);
    assert_eq!(EncryptionMethod::from_wire(wire_method), Some(method));
    let exchange = walk(capture.client_to_server)
        .map(Result::unwrap)
        .find_map(|item| match item.pdu {
            StreamPdu::SendData(data) => SecurityExchangePdu::decode(data.user_data).ok(),
            _ => None,
        })
        .expect("no Security Exchange PDU");
    // xfreerdp: the modulus length (256) and 8 zero bytes.
    assert_eq!(exchange.encrypted_client_random.len(), 264);
    let key = LicensingPrivateKey::from_pem(KEY).unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let client_random = key
        .decrypt_client_random(exchange.encrypted_client_random, &mut rng)
        .unwrap();
    (
        derive_rdp_session_keys(&client_random, &server_random, method),
        client_random,
        exchange.license_encrypt(),
    )
}

/// What one end read: the flags and plain data of each encrypted PDU, in order.
fn open_all(stream: &[u8], layer: &mut RdpSecurityLayer) -> Vec<(SecurityFlags, Vec<u8>)> {
    let mut opened = Vec::new();
    let mut exchanged = false;
    for item in walk(stream) {
        let item = item.unwrap();
        match item.pdu {
            StreamPdu::SendData(data) | StreamPdu::EncryptedLicensing(data) => {
                if !exchanged && SecurityExchangePdu::decode(data.user_data).is_ok() {
                    exchanged = true;
                    continue;
                }
                let pdu = layer
                    .open(data.user_data)
                    .unwrap_or_else(|e| panic!("PDU at {}: {e}", item.offset));
                if pdu.was_encrypted() {
                    opened.push((pdu.flags, pdu.data.into_owned()));
                }
            }
            StreamPdu::FastPath(fast_path) if fast_path.header & 0x80 != 0 => {
                let (header, data) = layer
                    .open_fast_path(&fast_path)
                    .unwrap_or_else(|e| panic!("fast-path PDU at {}: {e}", item.offset));
                assert_eq!(header & 0xC0, 0);
                opened.push((SecurityFlags(0), data.into_owned()));
            }
            _ => {}
        }
    }
    opened
}

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn the_server_security_data_is_found_in_xrdps_connect_response() {
    for (capture, method) in [
        (&HIGH_128, EncryptionMethod::Bits128),
        (&MEDIUM_40, EncryptionMethod::Bits40),
        (&SALTED, EncryptionMethod::Bits128),
    ] {
        let (wire_method, _, server_random) = server_security(capture.server_to_client);
        assert_eq!(EncryptionMethod::from_wire(wire_method), Some(method));
        assert_eq!(
            ServerSecurityData::find(capture.server_to_client),
            Some(ServerSecurityData {
                method,
                server_random
            })
        );
        // The client's stream has no Connect Response.
        assert_eq!(ServerSecurityData::find(capture.client_to_server), None);
    }
}

#[test]
fn xrdps_key_opens_the_client_random_and_128_bit_keys_open_every_pdu_both_ways() {
    let (keys, client_random, license_encrypt) = session(&HIGH_128, EncryptionMethod::Bits128);
    assert_eq!(
        hex(&client_random),
        "972882814b5a35fab29557f1f227d936128f5ac45986f4d54abda63609953b88"
    );
    assert!(license_encrypt, "xfreerdp sets SEC_LICENSE_ENCRYPT_SC");
    assert_eq!(
        hex(keys.mac_key.expose()),
        "4eb328f87f27e15226a3ef3d7c8eaf91"
    );
    assert_eq!(
        hex(keys.client_encrypt_key.expose()),
        "d809db850be57926c2d07978c0051b44"
    );

    // The server's reading of the client: Client Info, the New License Request (encrypted,
    // SEC_LICENSE_ENCRYPT_CS), capability and finalization PDUs, four fast-path inputs and a
    // virtual channel PDU: 12 PDUs on one keystream, every MAC xfreerdp's.
    let mut server = RdpSecurityLayer::new(&keys, Side::Server);
    let from_client = open_all(HIGH_128.client_to_server, &mut server);
    assert_eq!(from_client.len(), 12);
    let (info_flags, info) = &from_client[0];
    assert_eq!(info_flags.0, 0x0048, "SEC_INFO_PKT | SEC_ENCRYPT");
    let alice = utf16("alice");
    assert!(info.windows(alice.len()).any(|w| w == alice));
    let (license_flags, license) = &from_client[1];
    assert_eq!(license_flags.0, 0x0288);
    let request = LicensingPdu::decode(license).unwrap();
    assert!(
        matches!(request.message, LicensingMessage::NewLicenseRequest(_)),
        "{request:?}"
    );
    // Two identical inputs: the same plain MAC (no counter in it), different ciphertext.
    assert_eq!(from_client[7].1, from_client[9].1);

    // The client's reading of the server: xrdp's licensing PDUs are in clear (flags 0x0080,
    // the message size in flagsHi), the rest encrypted, fast-path output included.
    let mut client = RdpSecurityLayer::new(&keys, Side::Client);
    let from_server = open_all(HIGH_128.server_to_client, &mut client);
    assert_eq!(from_server.len(), 11);
    // The Demand Active: a Share Control Header of type PDUTYPE_DEMANDACTIVEPDU.
    assert_eq!(from_server[0].1[2] & 0x0F, 0x1);

    // Sealing the client's plaintexts again, with its flags, gives its bytes on the wire.
    let mut resealing = RdpSecurityLayer::new(&keys, Side::Client);
    let sent: Vec<&[u8]> = walk(HIGH_128.client_to_server)
        .map(Result::unwrap)
        .filter_map(|item| match item.pdu {
            StreamPdu::SendData(data) | StreamPdu::EncryptedLicensing(data) => Some(data.user_data),
            _ => None,
        })
        .skip(1)
        .take(7)
        .collect();
    for ((flags, plain), wire) in from_client.iter().zip(sent) {
        let mut sealed = Vec::new();
        let flags = SecurityFlags(flags.0 & !SecurityFlags::SEC_ENCRYPT.0);
        resealing.seal_into(flags, plain, &mut sealed);
        assert_eq!(sealed, wire);
    }
}

#[test]
fn forty_bit_keys_carry_the_salt_and_open_every_pdu_both_ways() {
    let (keys, _, _) = session(&MEDIUM_40, EncryptionMethod::Bits40);
    assert_eq!(hex(&keys.mac_key.expose()[..8]), "d1269e8ae3afa510");
    assert_eq!(
        hex(&keys.client_encrypt_key.expose()[..8]),
        "d1269e3e4108b8cb"
    );
    assert_eq!(
        hex(&keys.client_decrypt_key.expose()[..8]),
        "d1269e8813219175"
    );
    let mut server = RdpSecurityLayer::new(&keys, Side::Server);
    assert_eq!(open_all(MEDIUM_40.client_to_server, &mut server).len(), 12);
    let mut client = RdpSecurityLayer::new(&keys, Side::Client);
    assert_eq!(open_all(MEDIUM_40.server_to_client, &mut client).len(), 9);
}

/// xfreerdp signs with salted MACs by default (SEC_SECURE_CHECKSUM from its Client Info on):
/// the MAC takes the count of PDUs encrypted before it (0 for the Client Info).
#[test]
fn a_salted_mac_verifies_as_salted_and_only_so() {
    let (keys, _, _) = session(&SALTED, EncryptionMethod::Bits128);
    let mut server = RdpSecurityLayer::new(&keys, Side::Server);
    let opened = open_all(SALTED.client_to_server, &mut server);
    assert_eq!(
        opened[0].0 .0, 0x0848,
        "SEC_SECURE_CHECKSUM | SEC_INFO_PKT | SEC_ENCRYPT"
    );

    // The same PDU read with its checksum flag cleared: the plain MAC does not match.
    let info = walk(SALTED.client_to_server)
        .map(Result::unwrap)
        .filter_map(|item| match item.pdu {
            StreamPdu::SendData(data) => Some(data.user_data),
            _ => None,
        })
        .nth(1)
        .unwrap();
    let mut unsalted = info.to_vec();
    unsalted[1] &= !0x08;
    let mut fresh = RdpSecurityLayer::new(&keys, Side::Server);
    let error = fresh.open(&unsalted).unwrap_err();
    assert!(error.to_string().contains("plain MAC"), "{error}");
}

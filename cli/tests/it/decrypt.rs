//! `rdpele decode` with the licensing session keys: a recorded Windows session's platform
//! challenge decrypts to "TEST" and its MAC verifies (FreeRDP's cunit/test_license.c), and a
//! whole session built here with rdpele's crypto — License Request, New License Request with a
//! premaster encrypted to a generated key, Platform Challenge and Response, New License holding
//! the real 2019 Windows CAL, then a second session presenting it in a License Info — decodes
//! with every blob decrypted, in TPKT frames and in a pcap.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use etherparse::PacketBuilder;
use pcap_parser::{LegacyPcapBlock, Linktype, PcapHeader, ToVec};
use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_proto::crypto::{
    derive_session_keys, mac_data, proprietary_certificate, rc4, LicensingPrivateKey, SessionKeys,
};
use rdpele_proto::wire::*;
use serde_json::Value;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures");

/// A Windows licensing session from FreeRDP's licensing unit tests (cunit/test_license.c,
/// 2011): `test_client_random`, `test_server_random`, `test_premaster_secret`, and
/// `test_encrypted_platform_challenge`, which FreeRDP checks decrypts to `test_platform_challenge`
/// ("TEST\0" in UTF-16LE) with `test_licensing_encryption_key`.
mod freerdp {
    pub const CLIENT_RANDOM: &str =
        "dc73a0c869256b18af0b947aa9a520af8bbc0dcca395b7b9eb815dbe0a109cd8";
    pub const SERVER_RANDOM: &str =
        "167ef87148161a4fa52ccd736360a6c3b9191b4b6bb20ab8ecf18d954ea821c5";
    pub const PREMASTER: &str = "cf7adbcbfb0e1523871c8481ba9d4e15bbd256bdd8f7f316cc353be1934278dd\
                                 929ae47ae299d473b1aa6f55943bc9bc";
    pub const ENCRYPTED_PLATFORM_CHALLENGE: &str = "840a4250ad5ec12930bd";
    /// MACData of "TEST\0" under that session's MAC salt key (074fa02e…, FreeRDP's
    /// `test_mac_salt_key`), computed with Python's hashlib from MS-RDPELE 5.1.5 — the file
    /// has no MAC for this challenge.
    pub const CHALLENGE_MAC: &str = "5589db925f65d52ccfb72e96b5f3c120";
    /// The Server Platform Challenge of the file's recorded session (`server_platform_challenge`)
    /// with that session's ConnectFlags 0xFFFFFFFF and junk wBlobType 0xF750, carrying the
    /// challenge and MAC above.
    pub const PLATFORM_CHALLENGE: &str = "02032600ffffffff50f70a00840a4250ad5ec12930bd\
                                          5589db925f65d52ccfb72e96b5f3c120";
    /// The file's `client_new_license_request` (341 bytes): ClientRandom as above, a 264-byte
    /// premaster blob for the license server's 2048-bit key, user Administrator, machine RODENT.
    pub const NEW_LICENSE_REQUEST: &str = "\
        138355010100000000000104dc73a0c869256b18af0b947aa9a520af8bbc0dcc\
        a395b7b9eb815dbe0a109cd802000801da9c5da6689da3906724f33aeaa1e268\
        ad12f5f60b7aac92b1696f42558aa0e29b2cd0c7ee336c4779c31ebf038b9570\
        07a2beee540268f890d7fe2c08e16b2dff9476725f7a76753255cc586163a564\
        f16ec30781826f887362fc286591c2c89f05b0d39312bf6a5018992d4dc47f74\
        d3309f1678a5dfaa83654f773042e0d769c84da573115935b9a7e2b0f6e3b939\
        c3d4e46bca409aac66e61aa41b397e09e37299dd90625597a904c751aaa201cb\
        5a634d1ae599c3b12a73e89a0046925939a380a1ac9052ea6381497df32d5cc3\
        199fedfe811d8c041cd923d26d8084f300f2b1692fcdb39f69ee603e4bb5be5a\
        09830bbc3d3e05476596318c6bc5e6a000000000000000000f000e0041646d69\
        6e6973747261746f720010000700524f44454e5400";
}

/// "TEST\0" in UTF-16LE, the challenge Windows sends.
const TEST_CHALLENGE: &[u8] = b"T\0E\0S\0T\0\0\0";

fn rdpele(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A command refusing its options exits without reading standard input.
    if let Err(error) = child.stdin.take().unwrap().write_all(stdin) {
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
    }
    child.wait_with_output().unwrap()
}

/// `rdpele decode --json <args> -`: the documents and stderr, asserting exit 0.
fn decode_json(args: &[&str], input: &[u8]) -> (Vec<Value>, String) {
    let mut all = vec!["decode", "--json"];
    all.extend_from_slice(args);
    all.push("-");
    let out = rdpele(&all, input);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    let documents = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (documents, stderr)
}

fn decode_tree(args: &[&str], input: &[u8]) -> String {
    let mut all = vec!["decode"];
    all.extend_from_slice(args);
    all.push("-");
    let out = rdpele(&all, input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn field_names(document: &Value) -> Vec<&str> {
    document["fields"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect()
}

fn freerdp_keys() -> [&'static str; 6] {
    [
        "--client-random",
        freerdp::CLIENT_RANDOM,
        "--server-random",
        freerdp::SERVER_RANDOM,
        "--premaster",
        freerdp::PREMASTER,
    ]
}

#[test]
fn a_windows_platform_challenge_decrypts_to_test_and_its_mac_verifies() {
    let input = hex::decode(freerdp::PLATFORM_CHALLENGE).unwrap();
    let (documents, stderr) = decode_json(&freerdp_keys(), &input);
    assert!(stderr.is_empty(), "{stderr}");
    let fields = &documents[0]["fields"];
    assert_eq!(
        fields["encrypted_platform_challenge"]["data"]["hex"],
        freerdp::ENCRYPTED_PLATFORM_CHALLENGE
    );
    assert_eq!(
        fields["platform_challenge"]["hex"],
        hex::encode(TEST_CHALLENGE)
    );
    assert_eq!(fields["platform_challenge_text"], "TEST");
    assert_eq!(fields["mac_data"]["hex"], freerdp::CHALLENGE_MAC);
    assert_eq!(fields["mac_valid"], true);
    // Each decrypted value right after what it decrypts; mac_valid right after mac_data.
    assert_eq!(
        field_names(&documents[0]),
        [
            "connect_flags",
            "encrypted_platform_challenge",
            "platform_challenge",
            "platform_challenge_text",
            "mac_data",
            "mac_valid"
        ]
    );

    // One changed MAC byte: the challenge still decrypts, the MAC no longer verifies.
    let mut tampered = input.clone();
    *tampered.last_mut().unwrap() ^= 0x01;
    let (documents, _) = decode_json(&freerdp_keys(), &tampered);
    assert_eq!(documents[0]["fields"]["platform_challenge_text"], "TEST");
    assert_eq!(documents[0]["fields"]["mac_valid"], false);

    let tree = decode_tree(&freerdp_keys(), &input);
    for line in [
        "  encrypted_platform_challenge: unknown (0xf750), 10 bytes: 840a4250ad5ec12930bd\n",
        "  platform_challenge: 10 bytes: 54004500530054000000\n",
        "  platform_challenge_text: \"TEST\"\n",
        "  mac_valid: true\n",
    ] {
        assert!(tree.contains(line), "{line:?} not in:\n{tree}");
    }
}

#[test]
fn without_keys_the_output_is_unchanged() {
    let input = hex::decode(freerdp::PLATFORM_CHALLENGE).unwrap();
    let (documents, stderr) = decode_json(&[], &input);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(
        field_names(&documents[0]),
        ["connect_flags", "encrypted_platform_challenge", "mac_data"]
    );
    assert!(!decode_tree(&[], &input).contains("mac_valid"));
}

/// TPKT + X.224 Data + MCS Send Data (Indication from the server, Request from the client)
/// around a basic security header (SEC_LICENSE_PKT) and the licensing PDU.
fn tpkt(pdu: &[u8], from_server: bool) -> Vec<u8> {
    let payload = [&[0x80, 0x00, 0x00, 0x00][..], pdu].concat();
    let mut mcs = vec![
        if from_server { 0x68 } else { 0x64 },
        0x00,
        0x06,
        0x03,
        0xeb,
        0x70,
    ];
    mcs.extend((u16::try_from(payload.len()).unwrap() | 0x8000).to_be_bytes());
    mcs.extend(payload);
    let mut frame = vec![0x03, 0x00];
    frame.extend(u16::try_from(7 + mcs.len()).unwrap().to_be_bytes());
    frame.extend([0x02, 0xf0, 0x80]);
    frame.extend(mcs);
    frame
}

#[test]
fn client_random_comes_from_the_new_license_request_before_the_challenge() {
    let request = hex::decode(freerdp::NEW_LICENSE_REQUEST).unwrap();
    let challenge = hex::decode(freerdp::PLATFORM_CHALLENGE).unwrap();
    let stream = [tpkt(&request, false), tpkt(&challenge, true)].concat();
    let partial = [
        "--server-random",
        freerdp::SERVER_RANDOM,
        "--premaster",
        freerdp::PREMASTER,
    ];
    let (documents, stderr) = decode_json(&partial, &stream);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(documents[0]["fields"]["user_name"], "Administrator");
    assert_eq!(documents[0]["fields"]["machine_name"], "RODENT");
    assert_eq!(
        documents[0]["fields"]["client_random"]["hex"],
        freerdp::CLIENT_RANDOM
    );
    assert_eq!(documents[1]["fields"]["platform_challenge_text"], "TEST");
    assert_eq!(documents[1]["fields"]["mac_valid"], true);

    // A ClientRandom on the command line wins over the message's.
    let mut other = partial.to_vec();
    let zeros = "00".repeat(32);
    other.extend(["--client-random", zeros.as_str()]);
    let (documents, _) = decode_json(&other, &stream);
    assert_eq!(documents[1]["fields"]["mac_valid"], false);
    assert!(documents[1]["fields"]
        .get("platform_challenge_text")
        .is_none());

    // The challenge alone: ClientRandom is not known, and a note says so.
    let (documents, stderr) = decode_json(&partial, &tpkt(&challenge, true));
    assert!(documents[0]["fields"].get("mac_valid").is_none());
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("1 message(s) with encrypted data not decrypted; not known: ClientRandom"),
        "{stderr}"
    );
    assert!(!stderr.contains("ServerRandom"), "{stderr}");
}

/// One licensing session's values.
struct Session {
    server_random: [u8; 32],
    client_random: [u8; 32],
    premaster: [u8; 48],
}

impl Session {
    fn new(seed: u8) -> Self {
        Self {
            server_random: std::array::from_fn(|i| seed ^ u8::try_from(i).unwrap()),
            client_random: std::array::from_fn(|i| seed.wrapping_add(u8::try_from(i).unwrap())),
            premaster: std::array::from_fn(|i| seed.wrapping_mul(u8::try_from(i).unwrap() | 1)),
        }
    }

    fn keys(&self) -> SessionKeys {
        derive_session_keys(&self.premaster, &self.client_random, &self.server_random)
    }

    fn seal(&self, plain: &[u8]) -> (Vec<u8>, [u8; 16]) {
        let keys = self.keys();
        (
            rc4(keys.licensing_encryption_key.expose(), plain),
            mac_data(keys.mac_salt_key.expose(), plain),
        )
    }
}

fn encode(message: LicensingMessage<'_>) -> Vec<u8> {
    LicensingPdu {
        flags: PreambleFlags(PreambleFlags::PREAMBLE_VERSION_3_0),
        message,
    }
    .to_vec()
    .unwrap()
}

fn license_request(session: &Session, key: &LicensingPrivateKey) -> Vec<u8> {
    let certificate = proprietary_certificate(&key.public_key()).unwrap();
    let company = Utf16::encode_nul_terminated("Microsoft Corporation");
    let product = Utf16::encode_nul_terminated("A02");
    encode(LicensingMessage::LicenseRequest(ServerLicenseRequest {
        server_random: session.server_random,
        product_info: ProductInfo {
            version: 0x000A_0001,
            company_name: Utf16(&company),
            product_id: Utf16(&product),
        },
        key_exchange_list: KeyExchangeList::RSA,
        server_certificate: ServerCertificateBlob {
            blob_type: BlobType::BB_CERTIFICATE_BLOB,
            certificate: Some(ServerCertificate::decode(&certificate).unwrap()),
        },
        scope_list: ScopeList {
            scopes: vec![Scope::new(b"microsoft.com\0")].into(),
        },
    }))
}

/// The client's HWID in the 2019 CAL: xfreerdp on ubuntu2.
const HWID: ClientHardwareId = ClientHardwareId {
    platform_id: 0x0401_0000,
    data: [
        0x88, 0xfa, 0x3f, 0xe1, 0xdd, 0xb1, 0x5d, 0x82, 0x8e, 0xb8, 0xb1, 0x22, 0x2a, 0xf4, 0x75,
        0x5a,
    ],
};

/// A first session that ends with the 2019 CAL issued, and a second in which the client
/// presents it; client messages are marked `false`.
fn two_sessions(key: &LicensingPrivateKey) -> Vec<(bool, Vec<u8>)> {
    let public = key.public_key();
    let first = Session::new(0x11);
    let premaster = public.encrypt_premaster(&first.premaster).unwrap();
    let request = encode(LicensingMessage::NewLicenseRequest(
        ClientNewLicenseRequest {
            preferred_key_exchange_alg: 1,
            platform_id: HWID.platform_id,
            client_random: first.client_random,
            encrypted_premaster_secret: LicenseBinaryBlob::new(
                BlobType::BB_RANDOM_BLOB,
                &premaster,
            ),
            client_user_name: LicenseBinaryBlob::new(
                BlobType::BB_CLIENT_USER_NAME_BLOB,
                b"Administrator\0",
            ),
            client_machine_name: LicenseBinaryBlob::new(
                BlobType::BB_CLIENT_MACHINE_NAME_BLOB,
                b"ubuntu2\0",
            ),
        },
    ));
    let (challenge, challenge_mac) = first.seal(TEST_CHALLENGE);
    let platform_challenge = encode(LicensingMessage::PlatformChallenge(
        ServerPlatformChallenge {
            connect_flags: 0,
            encrypted_platform_challenge: LicenseBinaryBlob::new(
                BlobType::BB_ENCRYPTED_DATA_BLOB,
                &challenge,
            ),
            mac_data: challenge_mac,
        },
    ));
    let response_data = PlatformChallengeResponseData {
        version: 0x0100,
        client_type: ClientType::WIN32_PLATFORMCHALLENGE_TYPE,
        license_detail_level: LicenseDetailLevel::LICENSE_DETAIL_DETAIL,
        challenge: TEST_CHALLENGE,
    }
    .to_vec()
    .unwrap();
    let (response, _) = first.seal(&response_data);
    let (hwid, _) = first.seal(&HWID.to_bytes());
    let (_, response_mac) = first.seal(&[response_data, HWID.to_bytes().to_vec()].concat());
    let challenge_response = encode(LicensingMessage::PlatformChallengeResponse(
        ClientPlatformChallengeResponse {
            // As mstsc types it.
            encrypted_platform_challenge_response: LicenseBinaryBlob::new(
                BlobType::BB_DATA_BLOB,
                &response,
            ),
            encrypted_hwid: LicenseBinaryBlob::new(BlobType::BB_ENCRYPTED_DATA_BLOB, &hwid),
            mac_data: response_mac,
        },
    ));
    let info = std::fs::read(format!("{CAPTURES}/windows2019_new_license_info.bin")).unwrap();
    let (license, license_mac) = first.seal(&info);
    let new_license = encode(LicensingMessage::NewLicense(ServerNewLicense {
        encrypted_license_info: LicenseBinaryBlob::new(BlobType::BB_ENCRYPTED_DATA_BLOB, &license),
        mac_data: license_mac,
    }));

    let second = Session::new(0x77);
    let premaster = public.encrypt_premaster(&second.premaster).unwrap();
    let cal = std::fs::read(format!("{CAPTURES}/windows2019_cal_temporary.p7b")).unwrap();
    let (hwid, hwid_mac) = second.seal(&HWID.to_bytes());
    let license_info = encode(LicensingMessage::LicenseInfo(ClientLicenseInfo {
        preferred_key_exchange_alg: 1,
        platform_id: HWID.platform_id,
        client_random: second.client_random,
        encrypted_premaster_secret: LicenseBinaryBlob::new(BlobType::BB_RANDOM_BLOB, &premaster),
        license_info: LicenseBinaryBlob::new(BlobType::BB_DATA_BLOB, &cal),
        encrypted_hwid: LicenseBinaryBlob::new(BlobType::BB_ENCRYPTED_DATA_BLOB, &hwid),
        mac_data: hwid_mac,
    }));

    vec![
        (true, license_request(&first, key)),
        (false, request),
        (true, platform_challenge),
        (false, challenge_response),
        (true, new_license),
        (true, license_request(&second, key)),
        (false, license_info),
    ]
}

fn generated_key(seed: u64) -> LicensingPrivateKey {
    LicensingPrivateKey::generate(512, &mut StdRng::seed_from_u64(seed)).unwrap()
}

fn write_pem(dir: &Path, name: &str, key: &LicensingPrivateKey) -> String {
    let path = dir.join(name);
    std::fs::write(&path, key.to_pkcs8_pem().unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// What the two sessions decode to with the server's key, whatever the framing.
fn assert_decrypted(documents: &[Value]) {
    let types: Vec<&str> = documents
        .iter()
        .map(|d| d["message_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "SERVER_LICENSE_REQUEST",
            "CLIENT_NEW_LICENSE_REQUEST",
            "SERVER_PLATFORM_CHALLENGE",
            "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
            "SERVER_NEW_LICENSE",
            "SERVER_LICENSE_REQUEST",
            "CLIENT_LICENSE_INFO",
        ]
    );
    let first = Session::new(0x11);
    let request = &documents[1]["fields"];
    assert_eq!(
        request["premaster_secret"]["hex"],
        hex::encode(first.premaster)
    );
    assert_eq!(
        &field_names(&documents[1])[3..5],
        ["encrypted_premaster_secret", "premaster_secret"]
    );

    let challenge = &documents[2]["fields"];
    assert_eq!(challenge["platform_challenge_text"], "TEST");
    assert_eq!(challenge["mac_valid"], true);

    let response = &documents[3]["fields"];
    let data = &response["platform_challenge_response"];
    assert_eq!(data["version"], 0x0100);
    assert_eq!(data["client_type"]["name"], "WIN32_PLATFORMCHALLENGE_TYPE");
    assert_eq!(
        data["license_detail_level"]["name"],
        "LICENSE_DETAIL_DETAIL"
    );
    assert_eq!(data["challenge_text"], "TEST");
    assert_eq!(response["hwid"]["platform_id"], 0x0401_0000);
    assert_eq!(response["hwid"]["data"]["hex"], hex::encode(HWID.data));
    assert_eq!(response["mac_valid"], true);
    assert_eq!(
        field_names(&documents[3]),
        [
            "encrypted_platform_challenge_response",
            "platform_challenge_response",
            "encrypted_hwid",
            "hwid",
            "mac_data",
            "mac_valid"
        ]
    );

    let license = &documents[4]["fields"];
    assert_eq!(license["mac_valid"], true);
    let info = &license["license_info"];
    assert_eq!(info["version"], 0x000A_0001);
    assert_eq!(info["scope"], "microsoft.com");
    assert_eq!(info["company_name"], "Microsoft Corporation");
    assert_eq!(info["product_id"], "A02");
    assert_eq!(info["license_info"]["length"], 5112);
    let cal = &info["cal"];
    assert_eq!(cal["machine"], "ubuntu2");
    assert_eq!(cal["user"], "Administrator");
    assert_eq!(cal["hwid"], hex::encode(HWID.to_bytes()));
    assert_eq!(cal["kind"], "temporary");
    assert_eq!(cal["cal_type"], "per_device");
    assert_eq!(cal["product"], "A02-10.01-S");
    assert_eq!(cal["license_server"]["name"], "WIN-4L4L6AMBCSQ");
    assert_eq!(cal["license_server"]["domain"], "WORKGROUP");
    assert!(
        cal["not_before"]
            .as_str()
            .unwrap()
            .starts_with("2019-10-27T"),
        "{cal}"
    );
    assert!(
        cal["not_after"]
            .as_str()
            .unwrap()
            .starts_with("2020-01-25T"),
        "{cal}"
    );

    // The second session's keys, from its own License Request and License Info.
    let second = Session::new(0x77);
    let presented = &documents[6]["fields"];
    assert_eq!(
        presented["premaster_secret"]["hex"],
        hex::encode(second.premaster)
    );
    assert_eq!(presented["hwid"]["platform_id"], 0x0401_0000);
    assert_eq!(presented["mac_valid"], true);
}

#[test]
fn the_server_key_decrypts_a_whole_session_in_tpkt_frames() {
    let dir = tempfile::tempdir().unwrap();
    let key = generated_key(1);
    let pem = write_pem(dir.path(), "key.pem", &key);
    let messages = two_sessions(&key);
    let stream: Vec<u8> = messages
        .iter()
        .flat_map(|(from_server, pdu)| tpkt(pdu, *from_server))
        .collect();

    let (documents, stderr) = decode_json(&["--server-key", &pem, "--roundtrip"], &stream);
    assert!(stderr.is_empty(), "{stderr}");
    assert_decrypted(&documents);
    assert!(documents.iter().all(|d| d["roundtrip_identical"] == true));

    let tree = decode_tree(&["--server-key", &pem], &stream);
    for line in [
        "  platform_challenge_text: \"TEST\"\n",
        "  platform_challenge_response:\n    version: 256 (0x100)\n",
        "    challenge_text: \"TEST\"\n",
        "  hwid:\n    platform_id: 67174400 (0x4010000)\n",
        "  license_info:\n    version: 655361 (0xa0001)\n",
        "    cal:\n      machine: \"ubuntu2\"\n      user: \"Administrator\"\n",
        "        name: \"WIN-4L4L6AMBCSQ\"\n",
        "  mac_valid: true\n",
    ] {
        assert!(tree.contains(line), "{line:?} not in:\n{tree}");
    }
    assert!(!tree.contains("mac_valid: false"), "{tree}");

    // A changed byte in the New License's MAC: the license still decrypts, the MAC fails.
    let mut tampered = messages.clone();
    *tampered[4].1.last_mut().unwrap() ^= 0x80;
    let stream: Vec<u8> = tampered
        .iter()
        .flat_map(|(from_server, pdu)| tpkt(pdu, *from_server))
        .collect();
    let (documents, _) = decode_json(&["--server-key", &pem], &stream);
    assert_eq!(documents[4]["fields"]["mac_valid"], false);
    assert_eq!(
        documents[4]["fields"]["license_info"]["cal"]["machine"],
        "ubuntu2"
    );
    assert_eq!(documents[2]["fields"]["mac_valid"], true);
}

#[test]
fn the_wrong_server_key_decrypts_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let key = generated_key(1);
    let wrong = write_pem(dir.path(), "wrong.pem", &generated_key(2));
    let stream: Vec<u8> = two_sessions(&key)
        .iter()
        .flat_map(|(from_server, pdu)| tpkt(pdu, *from_server))
        .collect();
    let (documents, stderr) = decode_json(&["--server-key", &wrong], &stream);
    assert_eq!(documents.len(), 7);
    assert!(documents
        .iter()
        .all(|d| d["fields"].get("mac_valid").is_none()));
    assert!(
        stderr.contains("offset ") && stderr.contains("does not decrypt with --server-key"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "4 message(s) with encrypted data not decrypted; not known: the premaster secret"
        ),
        "{stderr}"
    );
}

/// A pcap holding the sessions on one TCP connection: the server's and the client's directions
/// are reassembled separately, so the keys must follow packet order, not stream order.
fn pcap(messages: &[(bool, Vec<u8>)]) -> Vec<u8> {
    let client = (Ipv4Addr::new(10, 0, 0, 1), 50200u16);
    let server = (Ipv4Addr::new(10, 0, 0, 2), 3389u16);
    let mut seq = (1000u32, 9000u32);
    let mut header = PcapHeader::new();
    header.network = Linktype::ETHERNET;
    let mut out = header.to_vec().unwrap();
    for (index, (from_server, pdu)) in messages.iter().enumerate() {
        let frame = tpkt(pdu, *from_server);
        let (from, to, seq) = if *from_server {
            (server, client, &mut seq.1)
        } else {
            (client, server, &mut seq.0)
        };
        let mut packet = Vec::new();
        PacketBuilder::ethernet2([0; 6], [0; 6])
            .ipv4(from.0.octets(), to.0.octets(), 64)
            .tcp(from.1, to.1, *seq, 65535)
            .ack(1)
            .write(&mut packet, &frame)
            .unwrap();
        *seq += u32::try_from(frame.len()).unwrap();
        let len = u32::try_from(packet.len()).unwrap();
        let mut block = LegacyPcapBlock {
            ts_sec: 1_700_000_000,
            ts_usec: u32::try_from(index).unwrap(),
            caplen: len,
            origlen: len,
            data: &packet,
        };
        out.extend(block.to_vec().unwrap());
    }
    out
}

#[test]
fn the_server_key_decrypts_a_whole_session_in_a_pcap() {
    let dir = tempfile::tempdir().unwrap();
    let key = generated_key(1);
    let pem = write_pem(dir.path(), "key.pem", &key);
    let (documents, stderr) = decode_json(&["--server-key", &pem], &pcap(&two_sessions(&key)));
    assert!(stderr.is_empty(), "{stderr}");
    assert!(documents.iter().all(|d| d["framing"] == "pcap"));
    assert_decrypted(&documents);
}

#[test]
fn an_upgrade_license_decrypts_like_a_new_license() {
    let session = Session::new(0x42);
    let info = std::fs::read(format!("{CAPTURES}/new_license_info.bin")).unwrap();
    let (license, mac) = session.seal(&info);
    let input = encode(LicensingMessage::UpgradeLicense(ServerUpgradeLicense {
        encrypted_license_info: LicenseBinaryBlob::new(BlobType::BB_ENCRYPTED_DATA_BLOB, &license),
        mac_data: mac,
    }));
    let (client_random, server_random, premaster) = (
        hex::encode(session.client_random),
        hex::encode(session.server_random),
        hex::encode(session.premaster),
    );
    let (documents, _) = decode_json(
        &[
            "--client-random",
            &client_random,
            "--server-random",
            &server_random,
            "--premaster",
            &premaster,
        ],
        &input,
    );
    assert_eq!(documents[0]["message_type"], "SERVER_UPGRADE_LICENSE");
    let fields = &documents[0]["fields"];
    assert_eq!(fields["mac_valid"], true);
    assert_eq!(fields["license_info"]["version"], 0x0006_0000);
    assert_eq!(fields["license_info"]["cal"]["machine"], "RODENT");
    assert_eq!(
        fields["license_info"]["cal"]["not_before"],
        "2007-06-20T14:51:35Z"
    );
}

#[test]
fn bad_key_options_exit_2_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "not a key\n").unwrap();
    let not_pem = not_pem.to_str().unwrap();
    let input = hex::decode(freerdp::PLATFORM_CHALLENGE).unwrap();
    let short = &freerdp::CLIENT_RANDOM[..62];
    let long = format!("{}00", freerdp::PREMASTER);
    let not_pem_message =
        format!("--server-key {not_pem}: private key is not a PKCS#8 or PKCS#1 PEM");
    let cases: [(&[&str], &str); 6] = [
        (
            &["--client-random", short],
            "--client-random: expected 32 bytes",
        ),
        (&["--server-random", "xyzw"], "--server-random: not hex"),
        (&["--premaster", &long], "--premaster: expected 48 bytes"),
        (&["--premaster", "abc"], "--premaster: odd number"),
        (
            &["--server-key", "/nonexistent/key.pem"],
            "--server-key: cannot read /nonexistent/key.pem",
        ),
        (&["--server-key", not_pem], &not_pem_message),
    ];
    for (options, message) in cases {
        let mut args = vec!["decode"];
        args.extend_from_slice(options);
        args.push("-");
        let out = rdpele(&args, &input);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{options:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{options:?}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("rdpele decode: {message}")),
            "{options:?}: {stderr}"
        );
    }
}

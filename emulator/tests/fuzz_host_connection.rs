//! The `host_connection` fuzz target's harness (`session_host::fuzzing`) on its seeds: xfreerdp
//! 2.11.7's `/sec:rdp` sessions with xrdp 0.9.21 (proto/tests/vectors/rdp_security), replayed in
//! the harness's layout to the host's own connection sequence. The seeds are committed under
//! fuzz/harness-seeds/ (fuzz/make-seeds.sh copies them into the corpus); this test makes them
//! again from the vectors and fails if they differ (`RDPELE_WRITE_SEEDS=1` writes them).

#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Once;

use ironrdp_pdu::rdp::server_error_info::ErrorInfo;
use rdpele_emulator::session_host::fuzzing::{self, seed_from_capture};
use rdpele_emulator::session_host::ConnectionEnd;
use rdpele_proto::crypto::EncryptionMethod;

const XRDP_KEY: &str =
    include_str!("../../proto/tests/vectors/rdp_security/xrdp-0.9.21_rsakeys.pem");
const HIGH_128: (&[u8], &[u8]) = (
    include_bytes!(
        "../../proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_128bit_client_to_server.bin"
    ),
    include_bytes!(
        "../../proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_128bit_server_to_client.bin"
    ),
);
const SALTED: (&[u8], &[u8]) = (
    include_bytes!(
        "../../proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_salted_client_to_server.bin"
    ),
    include_bytes!(
        "../../proto/tests/vectors/rdp_security/xfreerdp-2.11.7_to_xrdp-0.9.21_salted_server_to_client.bin"
    ),
);

/// The harness serving `input`, its hosts' data in cargo's directory for this test's files
/// (the harness reads RDPELE_FUZZ_DATA once, when it makes its hosts).
fn run(input: &[u8]) -> Result<ConnectionEnd, impl std::fmt::Display + std::fmt::Debug> {
    static DATA: Once = Once::new();
    DATA.call_once(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz_host_connection");
        std::env::set_var("RDPELE_FUZZ_DATA", dir);
    });
    fuzzing::run(input)
}

const LICENSING: u8 = 0;
const ADMITTING: u8 = 1;

/// The server random of the Server Security Data (MS-RDPBCGR 2.2.1.4.3) in xrdp's MCS Connect
/// Response: header type SC_SECURITY (0x0C02), then encryptionMethod, encryptionLevel,
/// serverRandomLen (32), serverCertLen and the random.
fn server_random(server_to_client: &[u8]) -> [u8; 32] {
    let u32_at = |at: usize| u32::from_le_bytes(server_to_client[at..at + 4].try_into().unwrap());
    let start = (0..server_to_client.len() - 48)
        .find(|&at| server_to_client[at..at + 2] == [0x02, 0x0C] && u32_at(at + 12) == 32)
        .expect("no Server Security Data");
    server_to_client[start + 20..start + 52].try_into().unwrap()
}

fn seed(host: u8, (client, server): (&[u8], &[u8])) -> Vec<u8> {
    seed_from_capture(
        host,
        client,
        XRDP_KEY,
        &server_random(server),
        EncryptionMethod::Bits128,
    )
    .unwrap()
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("licensing_xfreerdp_128bit", seed(LICENSING, HIGH_128)),
        ("admitting_xfreerdp_128bit", seed(ADMITTING, HIGH_128)),
        ("licensing_xfreerdp_salted", seed(LICENSING, SALTED)),
        ("admitting_xfreerdp_salted", seed(ADMITTING, SALTED)),
    ]
}

#[test]
fn the_committed_seeds_are_the_xfreerdp_sessions_in_the_harness_layout() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/harness-seeds/host_connection");
    let write = std::env::var_os("RDPELE_WRITE_SEEDS").is_some();
    if write {
        std::fs::create_dir_all(&dir).unwrap();
    }
    for (name, bytes) in seeds() {
        let path = dir.join(name);
        if write {
            std::fs::write(&path, &bytes).unwrap();
        }
        let committed = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (RDPELE_WRITE_SEEDS=1 writes it)", path.display()));
        assert!(
            committed == bytes,
            "{} is stale: RDPELE_WRITE_SEEDS=1 cargo test --features fuzzing --test \
             fuzz_host_connection rewrites it",
            path.display()
        );
    }
}

#[test]
fn xfreerdps_session_through_the_admitting_host_reaches_an_active_session() {
    // Client Info, New License Request (answered STATUS_VALID_CLIENT), Confirm Active and the
    // four finalization PDUs, each encrypted by the harness and opened by the host.
    let ended = run(&seed(ADMITTING, HIGH_128)).unwrap();
    assert!(matches!(ended, ConnectionEnd::Active), "{ended:?}");
}

#[test]
fn xfreerdps_session_through_the_licensing_host_is_refused_in_licensing() {
    // xfreerdp's premaster was encrypted to xrdp's licensing key: the host decrypts another
    // one (implicit rejection), challenges, and takes the Confirm Active that comes instead of
    // a Platform Challenge Response as a malformed licensing message.
    let ended = run(&seed(LICENSING, HIGH_128)).unwrap();
    assert!(
        matches!(
            ended,
            ConnectionEnd::Refused(ErrorInfo::ProtocolIndependentLicensingCode(_))
        ),
        "{ended:?}"
    );
}

#[test]
fn a_salted_client_info_opens_and_the_connection_ends_in_licensing() {
    // xrdp dropped xfreerdp after its salted Client Info, so the seed ends there: the host
    // opened it (its salted MAC verified) and waited for licensing when the input ended.
    let error = run(&seed(ADMITTING, SALTED)).unwrap_err().to_string();
    assert!(error.contains("licensing"), "{error}");
}

#[test]
fn keys_derived_for_another_method_than_the_hosts_fail_at_the_client_info_mac() {
    let mut input = seed(ADMITTING, HIGH_128);
    // The first operation-1 record: its options byte asks for 56-bit keys (method index 1).
    let exchange = find_exchange(&input);
    input[exchange] |= 0b010;
    let error = run(&input).unwrap_err().to_string();
    assert!(
        error.contains("Client Info") && error.contains("MAC"),
        "{error}"
    );
}

/// The offset of the options byte of the input's Security Exchange record.
fn find_exchange(input: &[u8]) -> usize {
    let mut at = 1;
    loop {
        let len = usize::from(u16::from_le_bytes([input[at + 1], input[at + 2]]));
        if input[at] % 3 == 1 {
            return at + 3;
        }
        at += 3 + len;
    }
}

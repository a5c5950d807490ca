//! The `host_connection` fuzz target's harness (`session_host::fuzzing`) on its seeds, replayed
//! in the harness's layout to the host's own connection sequence:
//! - xfreerdp 2.11.7's `/sec:rdp` sessions with xrdp 0.9.21 (proto/tests/vectors/rdp_security),
//!   which this test makes again from the vectors and fails if they differ;
//! - the emulated client's first logon, recorded against the harness's licensing host (its
//!   licensing messages are genuine, so a replay gets a CAL issued): a recording, checked by
//!   replaying it.
//!
//! The seeds are committed under fuzz/harness-seeds/ (fuzz/make-seeds.sh copies them into the
//! corpus); `RDPELE_WRITE_SEEDS=1` writes them (and records the first logon again).

#![cfg(feature = "fuzzing")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::{Path, PathBuf};
use std::sync::Once;

use ironrdp_pdu::rdp::server_error_info::ErrorInfo;
use rdpele_emulator::client::{
    self, ClientOptions, ClientSecurity, LicensingOutcome, MemoryLicenses, PLATFORM_ID,
};
use rdpele_emulator::session_host::fuzzing::{self, seed_from_capture};
use rdpele_emulator::session_host::{self as host, ConnectionEnd};
use rdpele_proto::wire::ClientHardwareId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

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

fn seed(host: u8, (client, server): (&[u8], &[u8])) -> Vec<u8> {
    seed_from_capture(host, client, server, XRDP_KEY).unwrap()
}

fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("licensing_xfreerdp_128bit", seed(LICENSING, HIGH_128)),
        ("admitting_xfreerdp_128bit", seed(ADMITTING, HIGH_128)),
        ("licensing_xfreerdp_salted", seed(LICENSING, SALTED)),
        ("admitting_xfreerdp_salted", seed(ADMITTING, SALTED)),
    ]
}

fn seeds_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/harness-seeds/host_connection")
}

fn write_seeds() -> bool {
    std::env::var_os("RDPELE_WRITE_SEEDS").is_some()
}

#[test]
fn the_committed_seeds_are_the_xfreerdp_sessions_in_the_harness_layout() {
    let dir = seeds_dir();
    let write = write_seeds();
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
    // The Security Exchange record's options byte asks for 56-bit keys.
    let exchange = find_exchange(&input);
    input[exchange] |= 0b01;
    let error = run(&input).unwrap_err().to_string();
    assert!(
        error.contains("Client Info") && error.contains("MAC"),
        "{error}"
    );
}

/// The offset of the options byte of the input's Security Exchange record.
fn find_exchange(input: &[u8]) -> usize {
    fuzzing::records(input)
        .find(|&(op, _)| op % 3 == 1)
        .expect("a Security Exchange record")
        .1
        .start
}

const FIRST_LOGON: &str = "licensing_rdpele_client_first_logon";

#[test]
fn the_emulated_clients_first_logon_replays_to_an_issued_cal_and_an_active_session() {
    let path = seeds_dir().join(FIRST_LOGON);
    if write_seeds() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        std::fs::write(&path, runtime.block_on(record_first_logon())).unwrap();
    }
    let input = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (RDPELE_WRITE_SEEDS=1 records it)", path.display()));
    // New License Request, a Platform Challenge Response whose MAC verifies, a temporary CAL
    // issued and recorded, then capability exchange and finalization. Again: the license
    // server knows the device by then, and the replay still gets a CAL.
    for replay in 0..2 {
        let ended = run(&input).unwrap();
        assert!(
            matches!(ended, ConnectionEnd::Active),
            "replay {replay}: {ended:?}"
        );
    }
    // What got it there is the genuine licensing: the Platform Challenge Response (the
    // client's second licensing PDU) with a byte of its MAC changed is refused.
    let (_, response) = fuzzing::records(&input)
        .filter(|(op, record)| op % 3 == 2 && flags(&input[record.clone()]) & SEC_LICENSE_PKT != 0)
        .nth(1)
        .expect("two licensing PDUs in the first logon");
    let mut tampered = input.clone();
    tampered[response.end - 1] ^= 0x01;
    let ended = run(&tampered).unwrap();
    assert!(
        matches!(
            ended,
            ConnectionEnd::Refused(ErrorInfo::ProtocolIndependentLicensingCode(_))
        ),
        "{ended:?}"
    );
}

const SEC_LICENSE_PKT: u16 = 0x0080;

/// An operation-2 record's security flags.
fn flags(record: &[u8]) -> u16 {
    u16::from_le_bytes([record[0], record[1]])
}

/// The emulated client (`--security rdp`) licensed by the harness's licensing host on a fresh
/// data directory, through a proxy that keeps both directions; the client's in the harness's
/// layout.
async fn record_first_logon() -> Vec<u8> {
    let data = tempfile::tempdir().unwrap();
    let shared = fuzzing::open_host(data.path(), false);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host_address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(host::serve(listener, shared, async {
        let _ = stopped.await;
    }));
    let proxy = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_address = proxy.local_addr().unwrap();
    let recording = tokio::spawn(async move {
        let (client, _) = proxy.accept().await.unwrap();
        let server = TcpStream::connect(host_address).await.unwrap();
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        tokio::join!(
            relay(client_read, server_write),
            relay(server_read, client_write)
        )
    });
    let options = ClientOptions {
        machine: "FUZZ-SEED".to_owned(),
        user: "seed".to_owned(),
        password: "secret".to_owned(),
        hwid: ClientHardwareId {
            platform_id: PLATFORM_ID,
            data: [0x5E; 16],
        },
        timeout: std::time::Duration::from_secs(10),
        disconnect_after_activation: true,
        security: ClientSecurity::Rdp,
    };
    let report = client::connect(proxy_address, &options, &mut MemoryLicenses::default())
        .await
        .unwrap();
    assert!(
        matches!(report.licensing, LicensingOutcome::New) && report.active,
        "{report:?}"
    );
    let (sent, received) = recording.await.unwrap();
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    seed_from_capture(0, &sent, &received, fuzzing::HOST_KEY).unwrap()
}

/// Copies `from` to `to` until `from` ends, then shuts `to` down; what it copied.
async fn relay(mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> Vec<u8> {
    let mut copied = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let read = from.read(&mut buffer).await.unwrap_or(0);
        if read == 0 || to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
        copied.extend_from_slice(&buffer[..read]);
    }
    let _ = to.shutdown().await;
    copied
}

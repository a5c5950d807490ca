// Test code: unwrap/expect/panic/indexing are fine here.
//! The emulated client (`rdpele_emulator::client`) against `rdpele serve` run in-process on a
//! loopback port: the whole CAL life (temporary → permanent → valid → renewed) with the X.509
//! licensing chain and with a proprietary certificate, refusals with their Set Error Info, a
//! corrupted MAC the client must refuse, and servers that misbehave.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rdpele_emulator::client::{
    connect, connect_through_licensing, ClientError, ClientOptions, ClientReport, ClientSecurity,
    Ending, LicensingOutcome, StoreLicense,
};
use rdpele_emulator::session_host::config::HostConfig;
use rdpele_emulator::session_host::{serve, Options, Shared};
use rdpele_emulator::transport::{TransportError, TransportErrorKind};
use rdpele_license_server::clock::format_instant;
use rdpele_proto::cal::{parse_cal, Cal, CalKind};
use rdpele_proto::machine::testing::MemoryStore;
use rdpele_proto::machine::{LicenseStore, ProductKey};
use rdpele_proto::wire::{ClientHardwareId, ErrorCode, StateTransition};
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::support::{admin, provision, set_clock_before};

/// ERRINFO_LOGOFF_BY_USER: how `rdpele serve` ends an active session.
const ERRINFO_LOGOFF_BY_USER: u32 = 0x0C;
const ERRINFO_LICENSE_NO_LICENSE_SERVER: u32 = 0x101;
const ERRINFO_LICENSE_NO_LICENSE: u32 = 0x102;

/// `rdpele serve` in this process, stopped on drop.
struct Host {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Host {
    async fn start(data: &Path, config: &str) -> Host {
        let options = Options {
            data: data.to_owned(),
            config: HostConfig::parse(config).unwrap(),
            license_server: None,
            session_seconds: None,
            max_connections: 16,
            max_connections_per_source: 16,
            step_timeout: Duration::from_secs(10),
            record: None,
            pcap: None,
            host_name: "rdpele-test-host".to_owned(),
        };
        let shared = tokio::task::spawn_blocking(move || Shared::open(options))
            .await
            .unwrap()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(serve(listener, shared, async {
            let _ = stopped.await;
        }));
        Host {
            address,
            _stop: stop,
        }
    }
}

/// A license store in memory, as proto's testing `MemoryStore` files CALs.
#[derive(Debug, Default)]
struct Store(MemoryStore);

impl LicenseStore for Store {
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>> {
        self.0.find(product)
    }
}

impl StoreLicense for Store {
    type Error = Infallible;

    fn store_license(
        &mut self,
        product: &ProductKey,
        license_info: &[u8],
    ) -> Result<(), Infallible> {
        self.0
            .licenses
            .insert(product.clone(), license_info.to_vec());
        Ok(())
    }
}

impl Store {
    /// The one CAL held (every test talks to one host, so one product).
    fn only(&self) -> Option<Cal> {
        assert!(self.0.licenses.len() <= 1, "{:?}", self.0.licenses.keys());
        self.0
            .licenses
            .values()
            .next()
            .map(|der| parse_cal(der).unwrap())
    }
}

fn options(machine: &str, user: &str, seed: u8) -> ClientOptions {
    ClientOptions {
        machine: machine.to_owned(),
        user: user.to_owned(),
        password: "secret".to_owned(),
        hwid: ClientHardwareId {
            platform_id: 0x0401_0000,
            data: [seed; 16],
        },
        timeout: Duration::from_secs(10),
        disconnect_after_activation: false,
        security: ClientSecurity::default(),
    }
}

async fn run(host: &Host, options: &ClientOptions, store: &mut Store) -> ClientReport {
    connect(host.address, options, store)
        .await
        .unwrap_or_else(|error| panic!("{} ({error:?})", error))
}

/// Runs the admin CLI off the async workers.
async fn admin_async(data: &Path, args: &[&str]) {
    let data = data.to_owned();
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        admin(&data, &args);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporary_then_permanent_then_valid_then_renewed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, "").await;
    let client = options("pc-01", "alice", 1);
    let mut store = Store::default();

    // First logon: a New License with a 90-day temporary CAL; the session becomes active and
    // the host logs the user off.
    let first = run(&host, &client, &mut store).await;
    assert_eq!(first.licensing, LicensingOutcome::New);
    assert!(first.active, "{first:?}");
    assert_eq!(first.error_info, Some(ERRINFO_LOGOFF_BY_USER));
    assert_eq!(first.ending, Ending::ServerDisconnected);
    assert!(first.timings.activation.is_some());
    let temporary = store.only().unwrap();
    assert_eq!(temporary.kind, CalKind::Temporary);
    assert_eq!(temporary.client_license.machine, "pc-01");
    assert_eq!(temporary.client_license.user, "alice");
    assert_eq!(
        first.stored.as_deref(),
        store.0.licenses.values().next().map(Vec::as_slice)
    );

    // Second: the temporary CAL presented, an Upgrade License with a permanent one.
    let second = run(&host, &client, &mut store).await;
    assert_eq!(second.licensing, LicensingOutcome::Upgraded);
    assert!(second.active && second.stored.is_some());
    let permanent = store.only().unwrap();
    assert_eq!(permanent.kind, CalKind::Permanent);

    // Third: valid as it is; nothing stored. This one leaves by itself once active.
    let leaving = ClientOptions {
        disconnect_after_activation: true,
        ..client.clone()
    };
    let third = run(&host, &leaving, &mut store).await;
    assert_eq!(third.licensing, LicensingOutcome::Valid);
    assert_eq!(third.stored, None);
    assert!(third.active);
    assert_eq!(third.ending, Ending::ClientDisconnected);
    assert_eq!(store.only().unwrap(), permanent);

    // Five days before it expires, the host renews it.
    let expires = format_instant(permanent.client_license.not_after).unwrap();
    set_clock_before(&data, &expires, 5);
    let fourth = run(&host, &client, &mut store).await;
    assert_eq!(fourth.licensing, LicensingOutcome::Upgraded);
    let renewed = store.only().unwrap();
    assert_eq!(renewed.kind, CalKind::Permanent);
    assert!(renewed.client_license.not_after > permanent.client_license.not_after);
    assert_eq!(
        admin(&data, &["report"])["totals"]["per-device"]["issued"],
        1
    );
}

/// Windows upgrades a temporary CAL only once a sign-in completed with it (DESIGN §5): a
/// client that left after licensing keeps its temporary CAL at its next logon, and the session
/// that becomes active then validates it for the one after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_temporary_cal_is_upgraded_only_after_a_session_with_it_became_active() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, "").await;
    let client = options("pc-01", "alice", 1);
    let mut store = Store::default();

    let first = connect_through_licensing(host.address, &client, &mut store)
        .await
        .unwrap();
    assert_eq!(first.licensing, LicensingOutcome::New);
    assert!(!first.active, "{first:?}");
    let temporary = store.only().unwrap();
    assert_eq!(temporary.kind, CalKind::Temporary);

    let report = admin(&data, &["report"]);
    assert_eq!(report["licenses"][0]["validated"], Value::Null, "{report}");

    let second = run(&host, &client, &mut store).await;
    assert_eq!(
        second.licensing,
        LicensingOutcome::Valid,
        "never signed in with: not upgraded, though 5 CALs are free"
    );
    assert!(second.active, "{second:?}");
    assert_eq!(store.only().unwrap(), temporary);
    // The host queues the sign-in behind the decisions already waiting and does not wait for
    // its commit, so the report may lag the session by a moment; the next decision does not.
    let report = report_once(&data, |report| {
        report["licenses"][0]["validated"].is_string()
    })
    .await;
    assert!(report["licenses"][0]["validated"].is_string(), "{report}");

    let third = run(&host, &client, &mut store).await;
    assert_eq!(third.licensing, LicensingOutcome::Upgraded);
    assert_eq!(store.only().unwrap().kind, CalKind::Permanent);
    let report = admin(&data, &["report", "--all"]);
    let kinds: Vec<&str> = report["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|license| license["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["temporary", "permanent"], "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_license_server_a_cal_due_for_upgrade_comes_back_in_an_upgrade_license() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, "").await;
    // pc-01 holds a temporary CAL, pc-02 a permanent one.
    let temporary_client = options("pc-01", "alice", 1);
    let mut temporary_store = Store::default();
    run(&host, &temporary_client, &mut temporary_store).await;
    let permanent_client = options("pc-02", "bob", 2);
    let mut permanent_store = Store::default();
    run(&host, &permanent_client, &mut permanent_store).await;
    run(&host, &permanent_client, &mut permanent_store).await;
    let permanent = permanent_store.only().unwrap();
    assert_eq!(permanent.kind, CalKind::Permanent);
    drop(host);

    // The license server out of reach, the CALs still valid: MS-RDPELE 3.2.5.5 case 1.
    let host = Host::start(&data, "[[fault]]\nkind = \"license-server-unreachable\"\n").await;
    let held = |store: &Store| store.0.licenses.values().next().unwrap().clone();
    let temporary_cal = held(&temporary_store);
    let report = run(&host, &temporary_client, &mut temporary_store).await;
    assert_eq!(report.licensing, LicensingOutcome::Upgraded, "{report:?}");
    assert!(report.challenged && report.active);
    assert_eq!(report.stored.as_deref(), Some(temporary_cal.as_slice()));
    assert_eq!(held(&temporary_store), temporary_cal);

    // A permanent CAL with more than 7 days left needs no renewal: valid as it is.
    let report = run(&host, &permanent_client, &mut permanent_store).await;
    assert_eq!(report.licensing, LicensingOutcome::Valid, "{report:?}");
    assert!(!report.challenged);
    assert_eq!(report.stored, None);

    // Five days before it expires it is due for renewal: the same CAL comes back.
    let expires = format_instant(permanent.client_license.not_after).unwrap();
    let clock = data.clone();
    tokio::task::spawn_blocking(move || set_clock_before(&clock, &expires, 5))
        .await
        .unwrap();
    let permanent_cal = held(&permanent_store);
    let report = run(&host, &permanent_client, &mut permanent_store).await;
    assert_eq!(report.licensing, LicensingOutcome::Upgraded, "{report:?}");
    assert_eq!(report.stored.as_deref(), Some(permanent_cal.as_slice()));
    assert_eq!(held(&permanent_store), permanent_cal);
    // Nothing was issued while the license server was away.
    assert_eq!(
        admin(&data, &["report"])["totals"]["per-device"]["issued"],
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_with_a_proprietary_certificate_licenses_too() {
    // The client checks the Terminal Services signature of a proprietary certificate (as
    // mstsc does); the X.509 chain of the default config has no such check.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, "[host]\ncertificate = \"proprietary\"\n").await;
    let client = options("pc-06", "frank", 6);
    let mut store = Store::default();
    let first = run(&host, &client, &mut store).await;
    assert_eq!(first.licensing, LicensingOutcome::New);
    assert!(first.active);
    let second = run(&host, &client, &mut store).await;
    assert_eq!(second.licensing, LicensingOutcome::Upgraded);
    assert_eq!(store.only().unwrap().kind, CalKind::Permanent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_temporary_cal_with_no_cal_free_is_refused_with_errinfo_no_license() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, "[[fault]]\nkind = \"pool-exhausted\"\n").await;
    let client = options("pc-02", "bob", 2);
    let mut store = Store::default();

    assert_eq!(
        run(&host, &client, &mut store).await.licensing,
        LicensingOutcome::New
    );
    let temporary = store.only().unwrap();
    // No CAL free: the temporary one goes on.
    assert_eq!(
        run(&host, &client, &mut store).await.licensing,
        LicensingOutcome::Valid
    );

    admin_async(&data, &["clock", "advance", "91d"]).await;
    let refused = run(&host, &client, &mut store).await;
    assert_eq!(
        refused.licensing,
        LicensingOutcome::Refused {
            error_code: ErrorCode::ERR_INVALID_CLIENT,
            state_transition: StateTransition::ST_TOTAL_ABORT,
        },
        "{refused:?}"
    );
    assert_eq!(refused.error_info, Some(ERRINFO_LICENSE_NO_LICENSE));
    assert!(!refused.active);
    assert_eq!(refused.stored, None);
    assert_eq!(refused.ending, Ending::ServerDisconnected);
    assert_eq!(store.only().unwrap(), temporary, "the CAL is kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_licensing_error_reaches_the_report_with_its_errinfo() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(
        &data,
        "[[fault]]\nkind = \"error\"\nstep = \"new-license-request\"\n\
         error-code = \"ERR_NO_LICENSE_SERVER\"\n",
    )
    .await;
    let mut store = Store::default();
    let report = run(&host, &options("pc-03", "carol", 3), &mut store).await;
    assert_eq!(
        report.licensing,
        LicensingOutcome::Refused {
            error_code: ErrorCode::ERR_NO_LICENSE_SERVER,
            state_transition: StateTransition::ST_TOTAL_ABORT,
        }
    );
    assert_eq!(report.error_info, Some(ERRINFO_LICENSE_NO_LICENSE_SERVER));
    assert!(store.only().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_new_license_mac_is_refused_by_the_client_and_nothing_is_stored() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(
        &data,
        "[[fault]]\nkind = \"corrupt-mac\"\nstep = \"new-license\"\n",
    )
    .await;
    let mut store = Store::default();
    let report = run(&host, &options("pc-04", "dave", 4), &mut store).await;
    let LicensingOutcome::Aborted { error_code, reason } = report.licensing else {
        panic!("{report:?}")
    };
    assert_eq!(error_code, ErrorCode::ERR_INVALID_MAC);
    assert!(reason.contains("MAC"), "{reason}");
    assert_eq!(report.stored, None);
    assert!(store.0.licenses.is_empty());
    assert!(!report.active);
    // The host had finished licensing when it sent the New License, so it went on to Demand
    // Active, and the client left.
    assert_eq!(report.ending, Ending::ClientDisconnected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_that_misbehave_give_typed_errors() {
    let options = ClientOptions {
        timeout: Duration::from_millis(300),
        ..options("pc-05", "eve", 5)
    };

    // Garbage instead of an X.224 Connection Confirm.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(&[3, 0, 0, 9, 0xde, 0xad, 0xbe, 0xef, 0])
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let error = connect(address, &options, &mut Store::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Transport(TransportError {
                stage: "X.224 Connection Confirm",
                kind: TransportErrorKind::Protocol(_),
                ..
            })
        ),
        "{error:?}"
    );

    // A TPKT length the client will not buffer.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        tcp.write_all(&[3, 0, 0, 2]).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    });
    let error = connect(address, &options, &mut Store::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Transport(TransportError {
                kind: TransportErrorKind::Protocol(_),
                ..
            })
        ),
        "{error:?}"
    );

    // Silence.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let silent = Arc::new(tokio::sync::Notify::new());
    let done = Arc::clone(&silent);
    tokio::spawn(async move {
        let (_tcp, _) = listener.accept().await.unwrap();
        done.notified().await;
    });
    let error = connect(address, &options, &mut Store::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            ClientError::Transport(TransportError {
                stage: "X.224 Connection Confirm",
                kind: TransportErrorKind::Timeout(_),
                ..
            })
        ),
        "{error:?}"
    );
    assert_eq!(error.stage(), "X.224 Connection Confirm");
    silent.notify_one();

    // Nobody listening.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let error = connect(address, &options, &mut Store::default())
        .await
        .unwrap_err();
    assert!(matches!(error, ClientError::Connect { .. }), "{error:?}");
}

/// `[host] rsa-backend = "rust"` keeps the pure-Rust backend selectable end to end: the host
/// decrypts premasters and its embedded license server signs CALs with it, and a client goes
/// temporary → permanent as with the default (native) backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pure_rust_rsa_backend_licenses_as_the_default_does() {
    for backend in ["rust", "openssl"] {
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        provision(&data, "per-device", "2022", "2022", 5);
        let host = Host::start(&data, &format!("[host]\nrsa-backend = \"{backend}\"")).await;
        let client = options("pc-01", "alice", 1);
        let mut store = Store::default();
        let first = run(&host, &client, &mut store).await;
        assert_eq!(first.licensing, LicensingOutcome::New, "{backend}");
        assert_eq!(store.only().unwrap().kind, CalKind::Temporary, "{backend}");
        let second = run(&host, &client, &mut store).await;
        assert_eq!(second.licensing, LicensingOutcome::Upgraded, "{backend}");
        assert_eq!(store.only().unwrap().kind, CalKind::Permanent, "{backend}");
    }
}

/// `admin report` once `ready` holds for it, or as it is after five seconds.
async fn report_once(data: &Path, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let report = admin(data, &["report"]);
        if ready(&report) || tokio::time::Instant::now() >= deadline {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

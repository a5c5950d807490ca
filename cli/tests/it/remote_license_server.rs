// Test code: unwrap/expect/panic/indexing are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

//! The license server served over HTTP ([`serve`]) and asked by session hosts through
//! [`RemoteIssuer`]: full protocol exchanges over loopback, the bearer token, an unreachable
//! server, two hosts of different versions and modes on one server, malformed requests, and
//! the server's own virtual clock deciding a renewal.

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use rdpele_license_server::model::{HostInfo, LicensingMode, WindowsVersion};
use rdpele_license_server::remote::{serve, RemoteIssuer, MAX_BODY_BYTES};
use rdpele_license_server::server::{LicenseServer, KEY_FILE};
use rdpele_license_server::store::{NewKeyPack, Store};
use rdpele_proto::cal::{self, CalKind, CalType, ProductVersion};
use rdpele_proto::crypto::RsaBackend;
use rdpele_proto::machine::testing::{client_config, MemoryStore, Pair, DAY};
use rdpele_proto::machine::{
    Assessment, ClientEvent, ClientInfo, Decision, LicenseIssuer, PresentedLicense, Refusal,
    ServerEvent,
};
use rdpele_proto::wire::{ClientHardwareId, ErrorCode};
use serde_json::{json, Value};

const TEST_KEY: &str = include_str!("../../../proto/src/cal/testdata/license_server_test_key.pem");
const TOKEN: &str = "s3cret-token";
const TIMEOUT: Duration = Duration::from_secs(5);

const HOST_2019_DEVICE: HostInfo = HostInfo {
    version: WindowsVersion::V2019,
    mode: LicensingMode::PerDevice,
};
const HOST_2022_USER: HostInfo = HostInfo {
    version: WindowsVersion::V2022,
    mode: LicensingMode::PerUser,
};

/// ERR_NO_LICENSE_SERVER / ST_TOTAL_ABORT: what a session host answers without its license
/// server.
fn unavailable() -> Refusal {
    Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER)
}

/// A license server on 127.0.0.1 over a temporary data directory: activated, version 2022,
/// with 5 per-device 2019 CALs and 5 per-user 2022 CALs.
struct RemoteServer {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl RemoteServer {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(KEY_FILE), TEST_KEY).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut settings = store.settings().unwrap();
        settings.activated = true;
        settings.version = WindowsVersion::V2022;
        store.set_settings(&settings).unwrap();
        let installed_at = SystemTime::now() - DAY;
        for (key_pack_type, product_version) in [
            (LicensingMode::PerDevice, WindowsVersion::V2019),
            (LicensingMode::PerUser, WindowsVersion::V2022),
        ] {
            store
                .install_pack(&NewKeyPack {
                    key_pack_type,
                    product_version,
                    total_licenses: 5,
                    installed_at,
                })
                .unwrap();
        }
        drop(store);

        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let data = dir.path().to_owned();
        let served = runtime.spawn(async move {
            serve(
                listener,
                data,
                TOKEN.into(),
                RsaBackend::default(),
                None,
                async {
                    let _ = stop.await;
                },
            )
            .await
            .unwrap();
        });
        let server = Self {
            dir,
            addr,
            runtime,
            shutdown: Some(shutdown),
            served: Some(served),
        };
        server.wait_healthy();
        server
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn issuer(&self, host: HostInfo) -> RemoteIssuer {
        RemoteIssuer::new(&self.url(), TOKEN, host, TIMEOUT).unwrap()
    }

    fn wait_healthy(&self) {
        let issuer = self.issuer(HOST_2019_DEVICE);
        let deadline = Instant::now() + Duration::from_secs(30);
        while issuer.health().is_err() {
            assert!(Instant::now() < deadline, "the server never answered");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops serving and waits until the server has ended.
    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(served) = self.served.take() {
            self.runtime.block_on(served).unwrap();
        }
    }

    /// `rdpele admin --data DIR ARGS…` on the server's data directory.
    fn admin(&self, args: &[&str]) -> Value {
        let output = Command::new(env!("CARGO_BIN_EXE_rdpele"))
            .arg("admin")
            .arg("--data")
            .arg(self.dir.path())
            .arg("--json")
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn in_use(&self, mode: LicensingMode) -> u32 {
        let store = Store::open(self.dir.path()).unwrap();
        store
            .packs(SystemTime::now())
            .unwrap()
            .iter()
            .filter(|usage| usage.pack.key_pack_type == mode)
            .map(|usage| usage.in_use)
            .sum()
    }
}

impl Drop for RemoteServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// A plain HTTP client that reports every status instead of failing on it.
fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(TIMEOUT))
        .build()
        .into()
}

/// POSTs `body` (raw bytes) with `authorization`, and returns the status and the JSON answer.
fn post_raw(url: &str, authorization: Option<&str>, body: &[u8]) -> (u16, Value) {
    let mut request = http().post(url).header("Content-Type", "application/json");
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

fn post(server: &RemoteServer, endpoint: &str, body: &Value) -> (u16, Value) {
    post_raw(
        &format!("{}/v1/{endpoint}", server.url()),
        Some(&format!("Bearer {TOKEN}")),
        body.to_string().as_bytes(),
    )
}

fn hwid(seed: u8) -> ClientHardwareId {
    client_config(seed, "WS", "alice").hwid
}

fn client(seed: u8, user: &str) -> ClientInfo {
    let config = client_config(seed, &format!("WS-{seed:02}"), user);
    ClientInfo {
        hwid: config.hwid,
        platform_id: config.platform_id,
        user_name: config.user_name,
        machine_name: config.machine_name,
    }
}

/// The CAL a decision issued, parsed.
fn issued(decision: &Decision) -> (Vec<u8>, cal::Cal) {
    match decision {
        Decision::Issue(bytes) => (bytes.clone(), cal::parse_cal(bytes).unwrap()),
        other => panic!("expected a CAL, got {other:?}"),
    }
}

/// `license_info` presented again by the device it was issued to.
fn presented(license_info: &[u8]) -> PresentedLicense {
    let cal = cal::parse_cal(license_info).unwrap();
    PresentedLicense {
        hwid: cal.client_license.hwid,
        platform_id: cal.client_license.hwid.platform_id,
        license_info: license_info.to_vec(),
        cal: cal.into(),
    }
}

fn lifetime_days(cal: &cal::Cal) -> u64 {
    let license = &cal.client_license;
    license
        .not_after
        .duration_since(license.not_before)
        .unwrap()
        .as_secs()
        / 86_400
}

/// One licensing exchange of device `seed` through the real protocol machines, the remote
/// license server as their issuer.
/// An admitted client's user signs in, which the session host reports.
fn connect(
    server: &RemoteServer,
    issuer: &mut RemoteIssuer,
    store: &mut MemoryStore,
    seed: u64,
    device: u8,
    user: &str,
) -> Pair {
    let config = client_config(device, &format!("WS-{device:02}"), user);
    let mut pair = Pair::seeded(seed, config, SystemTime::now()).unwrap();
    pair.run(issuer, store).unwrap();
    assert!(pair.server.is_finished() && pair.client.is_finished());
    let admitted = pair
        .server_events
        .iter()
        .any(|event| matches!(event, ServerEvent::Licensed(_)));
    if let (true, Some(held)) = (admitted, store.licenses.values().next()) {
        sign_in(server, issuer, held);
    }
    pair
}

/// The session host's report that a sign-in completed with `license_info`, through
/// [`RemoteIssuer::validate_license`]; true if that validated a temporary CAL.
fn sign_in(server: &RemoteServer, issuer: &RemoteIssuer, license_info: &[u8]) -> bool {
    let cal = cal::parse_cal(license_info).unwrap();
    let license_id = cal.client_license.serial().unwrap().license_id;
    server
        .runtime
        .block_on(issuer.validate_license(license_id, &cal.client_license.hwid.to_bytes()))
        .unwrap()
}

fn stored_cal(store: &MemoryStore) -> cal::Cal {
    assert_eq!(store.licenses.len(), 1);
    cal::parse_cal(store.licenses.values().next().unwrap()).unwrap()
}

#[test]
fn a_device_goes_temporary_then_permanent_then_valid_over_http() {
    let server = RemoteServer::start();
    let mut issuer = server.issuer(HOST_2019_DEVICE);
    let mut store = MemoryStore::default();

    connect(&server, &mut issuer, &mut store, 1, 7, "alice");
    let temporary = stored_cal(&store);
    assert_eq!(temporary.kind, CalKind::Temporary);
    assert_eq!(temporary.client_license.machine, "WS-07");
    assert_eq!(lifetime_days(&temporary), 90);
    assert_eq!(server.in_use(LicensingMode::PerDevice), 0);

    let pair = connect(&server, &mut issuer, &mut store, 2, 7, "alice");
    assert!(matches!(
        pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: true, .. }
    ));
    let permanent = stored_cal(&store);
    assert_eq!(permanent.kind, CalKind::Permanent);
    assert_eq!(permanent.cal_type, CalType::PerDevice);
    assert!((52..=89).contains(&lifetime_days(&permanent)));
    assert_eq!(server.in_use(LicensingMode::PerDevice), 1);

    let pair = connect(&server, &mut issuer, &mut store, 3, 7, "alice");
    assert_eq!(
        pair.transcript.len(),
        3,
        "License Request, License Info, STATUS_VALID_CLIENT"
    );
    assert_eq!(
        server.in_use(LicensingMode::PerDevice),
        1,
        "nothing more taken"
    );
}

/// The median of `rounds` timings of `call` (the median, as other work on the machine makes
/// the mean jump).
fn median(rounds: u16, mut call: impl FnMut(u16)) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|round| {
            let started = Instant::now();
            call(round);
            started.elapsed()
        })
        .collect();
    times.sort();
    times[times.len() / 2]
}

/// Figures, printed and not asserted: one decision over loopback HTTP against the same
/// decision by the embedded license server on the same data directory, and a whole exchange.
#[test]
fn figures_one_remote_decision_against_the_embedded_server() {
    let server = RemoteServer::start();
    let mut remote = server.issuer(HOST_2019_DEVICE);
    let mut embedded = LicenseServer::open(server.dir.path(), HOST_2019_DEVICE).unwrap();
    let mut store = MemoryStore::default();
    connect(&server, &mut remote, &mut store, 1, 7, "alice");
    connect(&server, &mut remote, &mut store, 2, 7, "alice");
    let presented = presented(store.licenses.values().next().unwrap());
    assert_eq!(stored_cal(&store).kind, CalKind::Permanent);

    let rounds = 50;
    let health = median(rounds, |_| {
        remote.health().unwrap();
    });
    let assess = |issuer: &mut dyn LicenseIssuer| {
        median(rounds, |_| {
            let assessment = issuer.assess_license(SystemTime::now(), &presented);
            assert_eq!(assessment, Assessment::Valid);
        })
    };
    let (remote_assess, embedded_assess) = (assess(&mut remote), assess(&mut embedded));
    // Each call a new device: a temporary CAL signed and recorded.
    let new_license = |issuer: &mut dyn LicenseIssuer, devices: u16| {
        median(rounds, |round| {
            let device = u8::try_from(devices + round).unwrap();
            issued(&issuer.new_license(SystemTime::now(), &client(device, "bob")));
        })
    };
    let (remote_new, embedded_new) = (
        new_license(&mut remote, 20),
        new_license(&mut embedded, 100),
    );
    let exchange = median(rounds, |round| {
        connect(
            &server,
            &mut remote,
            &mut store,
            u64::from(round) + 10,
            7,
            "alice",
        );
    });
    println!(
        "median of {rounds}: GET /v1/health {health:?}; assess_license (valid, nothing \
         written): remote {remote_assess:?}, embedded {embedded_assess:?}; new_license \
         (temporary CAL signed and recorded): remote {remote_new:?}, embedded \
         {embedded_new:?}; a whole exchange with a valid CAL, remote {exchange:?}"
    );
}

#[test]
fn a_missing_or_wrong_token_is_401_and_the_issuer_refuses_with_err_no_license_server() {
    let server = RemoteServer::start();
    let url = format!("{}/v1/new_license", server.url());
    let body = json!({
        "host": {"version": "2019", "mode": "per-device"},
        "client": {"hwid": hex::encode(hwid(1).to_bytes()), "platform_id": 0x0401_0000,
                   "user_name": "alice", "machine_name": "WS-01"},
    })
    .to_string();

    for authorization in [
        None,
        Some("Bearer wrong-token"),
        Some("Bearer s3cret-toke"),
        Some("Bearer s3cret-token-and-more"),
        Some("Basic czNjcmV0LXRva2Vu"),
        Some(TOKEN),
    ] {
        let (status, answer) = post_raw(&url, authorization, body.as_bytes());
        assert_eq!(status, 401, "{authorization:?}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let response = http().post(&url).send(body.as_bytes()).unwrap();
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    // The scheme is case-insensitive (RFC 7235); the token is not.
    let (status, answer) = post_raw(&url, Some(&format!("bearer {TOKEN}")), body.as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["decision"], "issue");

    let mut wrong =
        RemoteIssuer::new(&server.url(), "wrong-token", HOST_2019_DEVICE, TIMEOUT).unwrap();
    assert_eq!(
        wrong.new_license(SystemTime::now(), &client(2, "alice")),
        Decision::Refuse(unavailable())
    );
    let failure = wrong.take_failure().unwrap();
    assert!(failure.contains("401"), "{failure}");
    assert_eq!(wrong.take_failure(), None, "reading the failure clears it");
    let license_info = match server
        .issuer(HOST_2019_DEVICE)
        .new_license(SystemTime::now(), &client(3, "alice"))
    {
        Decision::Issue(cal) => cal,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        wrong.assess_license(SystemTime::now(), &presented(&license_info)),
        Assessment::Refuse(unavailable())
    );
    assert_eq!(
        wrong.upgrade_license(SystemTime::now(), &presented(&license_info)),
        Decision::Refuse(unavailable())
    );
    // A whole exchange through the wrong token ends in the Licensing Error Message.
    let mut store = MemoryStore::default();
    let config = client_config(4, "WS-04", "alice");
    let mut pair = Pair::seeded(9, config, SystemTime::now()).unwrap();
    pair.run(&mut wrong, &mut store).unwrap();
    assert!(store.licenses.is_empty());
    assert!(
        format!("{:?}", pair.server_events).contains("ERR_NO_LICENSE_SERVER"),
        "{:?}",
        pair.server_events
    );

    // The health check carries the token too, so a host finds out at startup; a refusal is
    // not the license server being unreachable (the host fails closed on it).
    let error = wrong.health().unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");
    assert!(!error.is_unreachable(), "{error}");
    assert_eq!(
        server.issuer(HOST_2019_DEVICE).health().unwrap().version,
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn urls_the_issuer_cannot_call_are_refused_when_it_is_made() {
    for (url, reason) in [
        ("127.0.0.1:4000", "not a URL the client can call"),
        ("ftp://127.0.0.1:4000", "ftp:// scheme is not supported"),
        ("http://127.0.0.1:4000/?x=1", "a query"),
        ("http://", "not a URL the client can call"),
    ] {
        let error = RemoteIssuer::new(url, TOKEN, HOST_2019_DEVICE, TIMEOUT).unwrap_err();
        assert!(error.to_string().contains(reason), "{url}: {error}");
    }
    let error =
        RemoteIssuer::new("http://127.0.0.1:4000", "a\nb", HOST_2019_DEVICE, TIMEOUT).unwrap_err();
    assert!(error.to_string().contains("token"), "{error}");
}

#[test]
fn an_unreachable_license_server_is_refused_within_the_timeout() {
    let timeout = Duration::from_millis(300);
    let client = client(1, "alice");

    // Nobody listening: the connection is refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let mut issuer = RemoteIssuer::new(
        &format!("http://{closed_addr}"),
        TOKEN,
        HOST_2019_DEVICE,
        timeout,
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        issuer.new_license(SystemTime::now(), &client),
        Decision::Refuse(unavailable())
    );
    let refused_in = started.elapsed();
    assert!(issuer.take_failure().is_some());
    // Unreachable: the grace period's case, not a misconfiguration.
    assert!(issuer.health().unwrap_err().is_unreachable());

    // A server that accepts and never answers: the timeout ends the call.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut issuer = RemoteIssuer::new(
        &format!("http://{}", silent.local_addr().unwrap()),
        TOKEN,
        HOST_2019_DEVICE,
        timeout,
    )
    .unwrap();
    let started = Instant::now();
    assert_eq!(
        issuer.new_license(SystemTime::now(), &client),
        Decision::Refuse(unavailable())
    );
    let timed_out_in = started.elapsed();
    assert!(issuer.take_failure().is_some());
    assert!(issuer.health().unwrap_err().is_unreachable());
    assert!(timed_out_in >= timeout, "{timed_out_in:?}");
    assert!(
        timed_out_in < timeout + Duration::from_secs(10),
        "{timed_out_in:?}"
    );
    drop(silent);

    // A server that answers, but not the API: as good as none.
    let impostor = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let impostor_addr = impostor.local_addr().unwrap();
    let answering = std::thread::spawn(move || {
        for _ in 0..2 {
            let (mut stream, _) = impostor.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = std::io::Read::read(&mut stream, &mut request).unwrap();
            let response = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
                            Content-Length: 8\r\nConnection: close\r\n\r\nnot json";
            std::io::Write::write_all(&mut stream, response.as_bytes()).unwrap();
        }
    });
    let mut issuer = RemoteIssuer::new(
        &format!("http://{impostor_addr}"),
        TOKEN,
        HOST_2019_DEVICE,
        timeout,
    )
    .unwrap();
    assert_eq!(
        issuer.new_license(SystemTime::now(), &client),
        Decision::Refuse(unavailable())
    );
    let failure = issuer.take_failure().unwrap();
    assert!(failure.contains("unreadable answer"), "{failure}");
    // Reached, and not the API: a misconfiguration, which the host fails closed on.
    assert!(!issuer.health().unwrap_err().is_unreachable());
    answering.join().unwrap();

    // A server that stopped: what worked a moment ago is refused.
    let mut server = RemoteServer::start();
    let mut issuer = RemoteIssuer::new(&server.url(), TOKEN, HOST_2019_DEVICE, timeout).unwrap();
    let (license_info, _) = issued(&issuer.new_license(SystemTime::now(), &client));
    server.stop();
    let started = Instant::now();
    assert_eq!(
        issuer.assess_license(SystemTime::now(), &presented(&license_info)),
        Assessment::Refuse(unavailable())
    );
    let stopped_in = started.elapsed();
    assert!(issuer.take_failure().is_some());
    assert!(issuer.health().is_err());
    println!(
        "unreachable license server answered ERR_NO_LICENSE_SERVER after: connection refused \
         {refused_in:?}, silent server {timed_out_in:?} (timeout {timeout:?}), stopped server \
         {stopped_in:?}"
    );
}

#[test]
fn two_hosts_on_one_server_are_each_decided_by_their_own_host_info() {
    let server = RemoteServer::start();
    let mut device_host = server.issuer(HOST_2019_DEVICE);
    let mut user_host = server.issuer(HOST_2022_USER);

    // The 2019 per-device host: a temporary CAL of its own version, nothing from the packs.
    let mut device_store = MemoryStore::default();
    connect(&server, &mut device_host, &mut device_store, 1, 1, "alice");
    let device_cal = stored_cal(&device_store);
    assert_eq!(device_cal.kind, CalKind::Temporary);
    assert_eq!(device_cal.cal_type, CalType::PerDevice);
    assert_eq!(
        device_cal.product.version,
        ProductVersion {
            major: 10,
            minor: 1
        }
    );

    // The 2022 per-user host: the user recorded at once from the 2022 pack, no temporary CAL,
    // and nothing stored on the device (per-user CALs are not issued to the device).
    let mut user_store = MemoryStore::default();
    connect(&server, &mut user_host, &mut user_store, 2, 2, "bob");
    assert!(user_store.licenses.is_empty());
    assert_eq!(server.in_use(LicensingMode::PerUser), 1);
    assert_eq!(server.in_use(LicensingMode::PerDevice), 0);

    // The device's per-device CAL at the per-user host: its user is recorded, the CAL is not
    // replaced; at its own host it is still what it was.
    let device_info = device_store.licenses.values().next().unwrap().clone();
    assert_eq!(
        user_host.upgrade_license(SystemTime::now(), &presented(&device_info)),
        Decision::Valid
    );
    assert_eq!(server.in_use(LicensingMode::PerUser), 2);
    assert_eq!(
        device_host.assess_license(SystemTime::now(), &presented(&device_info)),
        Assessment::Upgrade
    );
    assert_eq!(
        device_host.take_failure(),
        None,
        "an answer the license server decided is not a failure"
    );

    // Both hosts at once, from several threads: each answer is for its own host.
    std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for index in 0..8u8 {
            let host = if index % 2 == 0 {
                HOST_2019_DEVICE
            } else {
                HOST_2022_USER
            };
            let mut issuer = server.issuer(host);
            threads.push(scope.spawn(move || {
                let user = format!("user{index}");
                let decision = issuer.new_license(SystemTime::now(), &client(20 + index, &user));
                (host, decision)
            }));
        }
        for thread in threads {
            let (host, decision) = thread.join().unwrap();
            match host.mode {
                LicensingMode::PerDevice => {
                    let cal = issued(&decision).1;
                    assert_eq!(
                        (cal.kind, cal.cal_type),
                        (CalKind::Temporary, CalType::PerDevice)
                    );
                }
                LicensingMode::PerUser => assert_eq!(decision, Decision::Valid),
            }
        }
    });
    // bob, the device's user and four more, on a pack of five: the last one OverUsed.
    assert_eq!(server.in_use(LicensingMode::PerUser), 5);
    assert_eq!(server.in_use(LicensingMode::PerDevice), 0);
}

#[test]
fn malformed_requests_are_400_naming_the_field() {
    let server = RemoteServer::start();
    let client = json!({"hwid": hex::encode(hwid(1).to_bytes()), "platform_id": 0x0401_0000,
                        "user_name": "alice", "machine_name": "WS-01"});
    let host = json!({"version": "2019", "mode": "per-device"});
    let with = |mut body: Value, path: &[&str], value: Option<Value>| {
        let (last, parents) = path.split_last().unwrap();
        let mut object = &mut body;
        for parent in parents {
            object = &mut object[*parent];
        }
        match value {
            Some(value) => object[*last] = value,
            None => {
                object.as_object_mut().unwrap().remove(*last);
            }
        }
        body
    };
    let good = json!({"host": host, "client": client});
    let cases = [
        (with(good.clone(), &["host"], None), "host"),
        (with(good.clone(), &["host"], Some(json!("2019"))), "host"),
        (
            with(good.clone(), &["host", "version"], Some(json!("2020"))),
            "host.version",
        ),
        (
            with(good.clone(), &["host", "version"], Some(json!(2019))),
            "host.version",
        ),
        (
            with(good.clone(), &["host", "mode"], Some(json!("per-seat"))),
            "host.mode",
        ),
        (with(good.clone(), &["client"], None), "client"),
        (
            with(good.clone(), &["client", "hwid"], Some(json!("zz"))),
            "client.hwid",
        ),
        (
            with(good.clone(), &["client", "hwid"], Some(json!("0102"))),
            "client.hwid",
        ),
        (
            with(good.clone(), &["client", "platform_id"], Some(json!(-1))),
            "client.platform_id",
        ),
        (
            with(
                good.clone(),
                &["client", "platform_id"],
                Some(json!(4_294_967_296_u64)),
            ),
            "client.platform_id",
        ),
        (
            with(good.clone(), &["client", "user_name"], None),
            "client.user_name",
        ),
        (
            with(good.clone(), &["client", "machine_name"], Some(json!(7))),
            "client.machine_name",
        ),
        (json!([1, 2]), "body"),
    ];
    for (body, field) in &cases {
        let (status, answer) = post(&server, "new_license", body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["field"], *field, "{body}: {answer}");
        assert!(answer["error"].is_string(), "{answer}");
    }
    let (status, answer) = post(&server, "new_license", &good);
    assert_eq!(
        (status, &answer["decision"]),
        (200, &json!("issue")),
        "{answer}"
    );

    // Not JSON at all.
    let url = format!("{}/v1/new_license", server.url());
    let bearer = format!("Bearer {TOKEN}");
    let (status, answer) = post_raw(&url, Some(&bearer), b"{\"host\": ");
    assert_eq!(
        (status, &answer["field"]),
        (400, &json!("body")),
        "{answer}"
    );

    // A presented CAL that is not a CAL, or not the device's.
    // (A device new to the server, so that its CAL is a temporary one to upgrade.)
    let fresh = with(
        good.clone(),
        &["client", "hwid"],
        Some(json!(hex::encode(hwid(9).to_bytes()))),
    );
    let license_info = hex::decode(answer_cal(&answer_of(&server, &fresh))).unwrap();
    let license = json!({"hwid": hex::encode(hwid(9).to_bytes()), "platform_id": 0x0401_0000,
                         "license_info": hex::encode(&license_info)});
    let good = json!({"host": host, "license": license});
    // The report of a sign-in with it, which lets it be upgraded: each field checked, and
    // repeating it changes nothing.
    let license_id = cal::parse_cal(&license_info)
        .unwrap()
        .client_license
        .serial()
        .unwrap()
        .license_id;
    let validation = json!({"license_id": license_id, "hwid": hex::encode(hwid(9).to_bytes())});
    for (body, field) in [
        (
            with(validation.clone(), &["license_id"], None),
            "license_id",
        ),
        (
            with(validation.clone(), &["license_id"], Some(json!(-1))),
            "license_id",
        ),
        (
            with(validation.clone(), &["hwid"], Some(json!("0102"))),
            "hwid",
        ),
        (json!("validated"), "body"),
    ] {
        let (status, answer) = post(&server, "validate_license", &body);
        assert_eq!(status, 400, "{body}: {answer}");
        assert_eq!(answer["field"], field, "{body}: {answer}");
    }
    let (status, answer) = post(&server, "assess_license", &good);
    assert_eq!(
        (status, &answer["assessment"]),
        (200, &json!("valid")),
        "{answer}"
    );
    for validated in [true, false] {
        let (status, answer) = post(&server, "validate_license", &validation);
        assert_eq!(
            (status, &answer["validated"]),
            (200, &json!(validated)),
            "{answer}"
        );
    }
    for endpoint in ["assess_license", "upgrade_license"] {
        for (body, field) in [
            (
                with(
                    good.clone(),
                    &["license", "license_info"],
                    Some(json!("00ff")),
                ),
                "license.license_info",
            ),
            (
                with(
                    good.clone(),
                    &["license", "license_info"],
                    Some(json!("not hex")),
                ),
                "license.license_info",
            ),
            (
                with(
                    good.clone(),
                    &["license", "hwid"],
                    Some(json!(hex::encode(hwid(2).to_bytes()))),
                ),
                "license.hwid",
            ),
            (with(good.clone(), &["license"], None), "license"),
        ] {
            let (status, answer) = post(&server, endpoint, &body);
            assert_eq!(status, 400, "{endpoint} {body}: {answer}");
            assert_eq!(answer["field"], field, "{endpoint}: {answer}");
        }
    }
    let (status, answer) = post(&server, "assess_license", &good);
    assert_eq!(
        (status, &answer["assessment"]),
        (200, &json!("upgrade")),
        "{answer}"
    );

    // Too large a body: 413, before any of it is parsed.
    let huge = format!("{{\"padding\": \"{}\"}}", "x".repeat(MAX_BODY_BYTES + 1));
    let (status, answer) = post_raw(&url, Some(&bearer), huge.as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["field"], "body");

    // An unknown endpoint is a JSON 404; the server is still answering after all of that.
    let (status, answer) = post(&server, "old_license", &good);
    assert_eq!(status, 404, "{answer}");
    server.issuer(HOST_2019_DEVICE).health().unwrap();
}

fn answer_of(server: &RemoteServer, body: &Value) -> Value {
    let (status, answer) = post(server, "new_license", body);
    assert_eq!(status, 200, "{answer}");
    answer
}

fn answer_cal(answer: &Value) -> String {
    answer["cal"].as_str().unwrap().to_owned()
}

#[test]
fn the_servers_virtual_clock_decides_not_the_callers() {
    let server = RemoteServer::start();
    let mut issuer = server.issuer(HOST_2019_DEVICE);
    // The session host's own clock is far off; the license server's is what counts.
    let far_past = SystemTime::UNIX_EPOCH + Duration::from_secs(86_400);
    let far_future = SystemTime::now() + DAY * 3650;

    let (temporary, cal) = issued(&issuer.new_license(far_past, &client(5, "alice")));
    assert_eq!(cal.kind, CalKind::Temporary);
    assert!(sign_in(&server, &issuer, &temporary));
    assert_eq!(
        issuer.assess_license(far_future, &presented(&temporary)),
        Assessment::Upgrade
    );
    let (permanent, cal) = issued(&issuer.upgrade_license(far_future, &presented(&temporary)));
    assert_eq!(cal.kind, CalKind::Permanent);
    assert_eq!(
        issuer.assess_license(far_future, &presented(&permanent)),
        Assessment::Valid
    );

    // Move the server's clock to 3 days before the CAL expires: now it is due for renewal.
    let before = issuer.health().unwrap().now;
    let expiry = cal.client_license.not_after;
    let days_left = expiry.duration_since(before).unwrap().as_secs() / 86_400;
    let advance = format!("{}d", days_left - 3);
    server.admin(&["clock", "advance", &advance]);
    let after = issuer.health().unwrap().now;
    let moved = after.duration_since(before).unwrap();
    assert!(
        moved >= DAY * (u32::try_from(days_left).unwrap() - 3),
        "{moved:?}"
    );
    assert!(expiry.duration_since(after).unwrap() <= DAY * 7);

    assert_eq!(
        issuer.assess_license(far_past, &presented(&permanent)),
        Assessment::Upgrade
    );
    let (renewed_info, renewed) = issued(&issuer.upgrade_license(far_past, &presented(&permanent)));
    assert_eq!(renewed.kind, CalKind::Permanent);
    assert!(renewed.client_license.not_after > expiry + DAY * 40);
    assert!(renewed.client_license.not_before >= after);

    // The renewed CAL is valid on the server's clock, whatever the caller's says.
    assert_eq!(
        issuer.assess_license(far_future, &presented(&renewed_info)),
        Assessment::Valid
    );
}

/// A session host's connection tasks hold the issuer across awaits: it must move between
/// threads.
const _: fn() = || {
    fn send<T: Send>() {}
    send::<RemoteIssuer>();
};

/// A new_license body for the device of `seed`, with `request_id` when given.
fn new_license_body(seed: u8, request_id: Option<&str>) -> Value {
    let client = client(seed, "alice");
    let mut body = json!({
        "host": {"version": "2019", "mode": "per-device"},
        "client": {
            "hwid": hex::encode(client.hwid.to_bytes()),
            "platform_id": client.platform_id,
            "user_name": client.user_name,
            "machine_name": client.machine_name,
        },
    });
    if let Some(id) = request_id {
        body["request_id"] = Value::from(id);
    }
    body
}

#[test]
fn a_repeated_request_id_gets_the_first_decision_not_a_second() {
    let server = RemoteServer::start();
    let first = post(
        &server,
        "new_license",
        &new_license_body(1, Some("retry-1")),
    );
    let again = post(
        &server,
        "new_license",
        &new_license_body(1, Some("retry-1")),
    );
    assert_eq!(first.0, 200, "{}", first.1);
    assert_eq!(first.1["decision"], "issue", "{}", first.1);
    assert_eq!(first, again, "the same CAL, not a second decision");

    // Without an id, asking twice is deciding twice: the device's record answers with a new
    // CAL (same expiry, another serial and signature).
    let one = post(&server, "new_license", &new_license_body(2, None));
    let two = post(&server, "new_license", &new_license_body(2, None));
    assert_eq!(one.1["decision"], "issue");
    assert_ne!(one.1["cal"], two.1["cal"]);

    // The id names one request: another body under it is refused, and so is a malformed id.
    let (status, answer) = post(
        &server,
        "new_license",
        &new_license_body(3, Some("retry-1")),
    );
    assert_eq!(status, 409, "{answer}");
    assert_eq!(answer["field"], "request_id");
    for bad in [
        json!(""),
        json!("has space"),
        json!(7),
        json!("x".repeat(65)),
    ] {
        let mut body = new_license_body(3, None);
        body["request_id"] = bad.clone();
        let (status, answer) = post(&server, "new_license", &body);
        assert_eq!(status, 400, "{bad}: {answer}");
        assert_eq!(answer["field"], "request_id", "{bad}");
    }
}

/// A proxy to `upstream` that keeps the first connection's answer from its client (and
/// records it), and passes every later connection through.
fn proxy_holding_the_first_answer(
    upstream: SocketAddr,
) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};

    fn pass(mut from: TcpStream, mut to: TcpStream) {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(std::net::Shutdown::Write);
        });
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (held_tx, held) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (index, client) in listener.incoming().enumerate() {
            let Ok(client) = client else { return };
            let server = TcpStream::connect(upstream).unwrap();
            pass(client.try_clone().unwrap(), server.try_clone().unwrap());
            if index == 0 {
                let held_tx = held_tx.clone();
                std::thread::spawn(move || {
                    let mut server = server;
                    server
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut answer = Vec::new();
                    let mut buffer = [0u8; 16 * 1024];
                    while let Ok(read @ 1..) = server.read(&mut buffer) {
                        answer.extend_from_slice(&buffer[..read]);
                    }
                    let _ = held_tx.send(answer);
                    drop(client);
                });
            } else {
                pass(server, client);
            }
        }
    });
    (address, held)
}

#[test]
fn a_host_that_gave_up_waiting_gets_the_recorded_cal_when_it_asks_again() {
    let server = RemoteServer::start();
    let (proxy, held) = proxy_holding_the_first_answer(server.addr);
    let mut issuer = RemoteIssuer::new(
        &format!("http://{proxy}"),
        TOKEN,
        HOST_2019_DEVICE,
        Duration::from_millis(500),
    )
    .unwrap();
    let decision = issuer.new_license(SystemTime::now(), &client(1, "alice"));
    let Decision::Issue(cal) = decision else {
        panic!("{decision:?}: {:?}", issuer.take_failure());
    };
    // The answer the host never saw carried this very CAL: one decision, delivered on the
    // retry, not a second CAL recorded beside one that nobody received.
    let held = String::from_utf8(held.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap();
    assert!(held.starts_with("HTTP/1.1 200"), "{held}");
    assert!(held.contains(&hex::encode(&cal)), "{held}");
}

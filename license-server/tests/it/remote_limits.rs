//! The remote license server under slow and hostile clients: connections that never finish
//! their request head or body, or sit idle, are closed after the [`Limits`]' timeouts; the
//! connection cap holds the others back; a real session host keeps getting its decisions
//! meanwhile; and the health check answers without waiting for decisions, checking a token
//! when one is presented.
//!
//! Only behaviour is asserted (open at first, closed later, answered or not), never speed:
//! each "still open" check comes well before the timeout, each "closed" one waits far past it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, SystemTime};

use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{HostInfo, LicensingMode, WindowsVersion};
use rdpele_license_server::remote::{serve_with_limits, Limits, RemoteIssuer};
use rdpele_license_server::server::{LicenseServer, KEY_FILE};
use rdpele_license_server::store::{NewKeyPack, DATABASE_FILE};
use rdpele_proto::machine::testing::client_config;
use rdpele_proto::machine::{ClientInfo, Decision, LicenseIssuer};

const TEST_KEY: &str = include_str!("../../../proto/src/cal/testdata/license_server_test_key.pem");
const TOKEN: &str = "limits-test-token";
const HOST: HostInfo = HostInfo {
    version: WindowsVersion::V2019,
    mode: LicensingMode::PerDevice,
};
/// The timeout the tests that wait for one use: long enough that a check at
/// [`STILL_OPEN_AT`] comes well before it on a loaded machine.
const SHORT: Duration = Duration::from_secs(1);
const STILL_OPEN_AT: Duration = Duration::from_millis(300);
/// Far past every timeout a test sets: a connection still open then was never closed.
const CLOSED_WITHIN: Duration = Duration::from_secs(5);
/// What a real session host gives each call.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// A request head cut short: no blank line ends it.
const PARTIAL_HEAD: &[u8] = b"POST /v1/new_license HTTP/1.1\r\nHost: x\r\n";

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// A remote license server on 127.0.0.1, activated, with 100 per-device 2019 CALs, on a
/// clock frozen at `epoch()`, served under `limits`.
struct Served {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    runtime: tokio::runtime::Runtime,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

impl Served {
    fn start(limits: Limits) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = license_server(dir.path());
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
        let served = runtime.spawn(async move {
            serve_with_limits(listener, server, TOKEN.into(), limits, None, async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        Self {
            dir,
            addr,
            runtime,
            shutdown: Some(shutdown),
            served: Some(served),
        }
    }

    fn issuer(&self) -> RemoteIssuer {
        RemoteIssuer::new(&format!("http://{}", self.addr), TOKEN, HOST, CALL_TIMEOUT).unwrap()
    }

    fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).unwrap()
    }

    /// Stops serving and waits until the server has ended (its connections closed).
    fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(served) = self.served.take() {
            self.runtime.block_on(served).unwrap();
        }
    }
}

fn license_server(dir: &Path) -> LicenseServer {
    std::fs::write(dir.join(KEY_FILE), TEST_KEY).unwrap();
    let server = LicenseServer::open(dir, HOST)
        .unwrap()
        .with_clock_and_seed(Clock::frozen(epoch()), 7);
    let mut settings = server.store().settings().unwrap();
    settings.activated = true;
    settings.version = WindowsVersion::V2022;
    server.store().set_settings(&settings).unwrap();
    server
        .store()
        .install_pack(&NewKeyPack {
            key_pack_type: LicensingMode::PerDevice,
            product_version: WindowsVersion::V2019,
            total_licenses: 100,
            installed_at: epoch(),
        })
        .unwrap();
    server
}

fn client(seed: u8) -> ClientInfo {
    let config = client_config(seed, &format!("WS-{seed:02}"), "alice");
    ClientInfo {
        hwid: config.hwid,
        platform_id: config.platform_id,
        user_name: config.user_name,
        machine_name: config.machine_name,
    }
}

/// Asks a new license for the device `seed` and expects a CAL.
fn assert_issued(issuer: &mut RemoteIssuer, seed: u8) {
    let decision = issuer.new_license(epoch(), &client(seed));
    assert!(
        matches!(decision, Decision::Issue(_)),
        "device {seed}: {decision:?} ({:?})",
        issuer.take_failure()
    );
}

/// A connection that has sent `bytes` and nothing more.
fn sent(served: &Served, bytes: &[u8]) -> TcpStream {
    let mut stream = served.connect();
    stream.write_all(bytes).unwrap();
    stream
}

/// Whether the server has neither answered nor closed `stream` within `wait`.
fn still_open(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0; 1];
    match stream.read(&mut byte) {
        Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => true,
        Ok(_) | Err(_) => false,
    }
}

/// Everything the server sends on `stream` until it closes it; fails if it is still open
/// after [`CLOSED_WITHIN`].
fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    stream.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return received,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::ConnectionReset => return received,
            Err(error) => panic!(
                "still open after {CLOSED_WITHIN:?} ({error}), having sent {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
}

/// One whole response on a kept-alive `stream`: its status and body.
fn read_response(stream: &mut TcpStream) -> (u16, String) {
    stream.set_read_timeout(Some(CLOSED_WITHIN)).unwrap();
    let mut received = Vec::new();
    let mut buffer = [0; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a content-length");
            if body.len() >= length {
                let status = head.split(' ').nth(1).unwrap().parse().unwrap();
                return (status, body.to_owned());
            }
        }
        let read = stream.read(&mut buffer).unwrap();
        assert_ne!(read, 0, "closed mid-response: {text:?}");
        received.extend_from_slice(&buffer[..read]);
    }
}

/// `GET /v1/health` on a connection of its own, with `authorization` if given.
fn health(served: &Served, authorization: Option<&str>) -> (u16, String) {
    let authorization = authorization
        .map(|value| format!("Authorization: {value}\r\n"))
        .unwrap_or_default();
    let request =
        format!("GET /v1/health HTTP/1.1\r\nHost: x\r\n{authorization}Connection: close\r\n\r\n");
    read_response(&mut sent(served, request.as_bytes()))
}

#[test]
fn a_request_head_never_finished_is_closed_after_the_header_timeout() {
    let served = Served::start(Limits {
        header_timeout: SHORT,
        ..Limits::default()
    });
    let mut slow = sent(&served, PARTIAL_HEAD);
    assert!(still_open(&mut slow, STILL_OPEN_AT), "closed too early");
    read_until_closed(&mut slow);
    // The server is still answering.
    assert_eq!(health(&served, None).0, 200);
    served.stop();
}

#[test]
fn a_request_body_never_finished_is_answered_408_and_closed_after_the_body_timeout() {
    let served = Served::start(Limits {
        body_timeout: SHORT,
        ..Limits::default()
    });
    let head = format!(
        "POST /v1/new_license HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
    );
    let mut slow = sent(&served, head.as_bytes());
    slow.write_all(b"{\"host\": {").unwrap();
    assert!(still_open(&mut slow, STILL_OPEN_AT), "answered too early");
    let answer = String::from_utf8(read_until_closed(&mut slow)).unwrap();
    assert!(answer.starts_with("HTTP/1.1 408 "), "{answer}");
    assert!(answer.contains("\"field\":\"body\""), "{answer}");
    served.stop();
}

#[test]
fn a_kept_alive_connection_left_idle_is_closed_after_the_header_timeout() {
    let served = Served::start(Limits {
        header_timeout: SHORT,
        ..Limits::default()
    });
    let mut idle = sent(&served, b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n");
    let (status, body) = read_response(&mut idle);
    assert_eq!(status, 200, "{body}");
    // Kept alive after its answer, then closed for waiting too long for the next request:
    // hyper's header timer also runs while the connection sits idle between requests.
    assert!(still_open(&mut idle, STILL_OPEN_AT), "not kept alive");
    assert_eq!(read_until_closed(&mut idle), b"", "nothing more is sent");
    served.stop();
}

#[test]
fn past_the_connection_cap_a_request_waits_until_a_slow_connection_times_out() {
    const CAP: usize = 8;
    let served = Served::start(Limits {
        header_timeout: SHORT * 2,
        max_connections: CAP,
        ..Limits::default()
    });
    let mut slow: Vec<TcpStream> = (0..CAP).map(|_| sent(&served, PARTIAL_HEAD)).collect();
    let mut waiting = sent(
        &served,
        b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(
        still_open(&mut waiting, STILL_OPEN_AT),
        "answered while {CAP} connections held every slot"
    );
    let (status, body) = read_response(&mut waiting);
    assert_eq!(status, 200, "{body}");
    for stream in &mut slow {
        read_until_closed(stream);
    }
    served.stop();
}

#[test]
fn a_session_host_keeps_getting_decisions_while_many_slow_connections_are_held() {
    const SLOW: usize = 64;
    let limits = Limits {
        // Longer than the whole test, so every slow connection is still held at its end.
        header_timeout: Duration::from_secs(120),
        ..Limits::default()
    };
    assert!(
        limits.max_connections >= 4 * SLOW,
        "the default cap is well above {SLOW}"
    );
    let served = Served::start(limits);
    let mut issuer = served.issuer();
    let mut slow = std::thread::scope(|scope| {
        let opening = scope.spawn(|| {
            (0..SLOW)
                .map(|_| {
                    let stream = sent(&served, PARTIAL_HEAD);
                    std::thread::sleep(Duration::from_millis(5));
                    stream
                })
                .collect::<Vec<_>>()
        });
        for seed in 1..=8 {
            assert_issued(&mut issuer, seed);
        }
        opening.join().unwrap()
    });
    // With every slow connection open at once, a new device still gets its CAL.
    assert_issued(&mut issuer, 9);
    for stream in &mut slow {
        assert!(still_open(stream, Duration::from_millis(10)));
    }
    drop(slow);
    served.stop();
}

#[test]
fn health_needs_no_token_but_refuses_a_wrong_one() {
    let served = Served::start(Limits::default());
    let (status, body) = health(&served, None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"status\":\"ok\""), "{body}");
    let (status, body) = health(&served, Some("Bearer not-the-token"));
    assert_eq!(status, 401, "{body}");
    let (status, body) = health(&served, Some("Basic bGltaXRz"));
    assert_eq!(
        status, 401,
        "a header without the bearer token is a wrong token: {body}"
    );
    let (status, body) = health(&served, Some(&format!("Bearer {TOKEN}")));
    assert_eq!(status, 200, "{body}");
    served.stop();
}

#[test]
fn health_answers_while_a_decision_holds_the_license_server() {
    let served = Served::start(Limits::default());
    // Another process's write transaction: the next decision waits for it inside the store,
    // holding the license server all the while.
    let blocker = rusqlite::Connection::open(served.dir.path().join(DATABASE_FILE)).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut issuer = served.issuer();
    let deciding = std::thread::spawn(move || {
        assert_issued(&mut issuer, 1);
    });
    std::thread::sleep(STILL_OPEN_AT);

    let checking = RemoteIssuer::new(
        &format!("http://{}", served.addr),
        TOKEN,
        HOST,
        CLOSED_WITHIN,
    )
    .unwrap();
    let health = checking.health().unwrap();
    assert_eq!(health.now, epoch(), "the server's own frozen clock");
    assert!(!deciding.is_finished(), "the decision was still waiting");

    blocker.execute_batch("COMMIT").unwrap();
    deciding.join().unwrap();
    served.stop();
}

// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele serve` while another process holds its store's write lock: a client whose licensing
//! has to write to the store waits for the lock, and the other clients' connections go on
//! meanwhile, however many runtime threads the host has; a client presenting a valid CAL is
//! licensed meanwhile.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdpele_license_server::store::DATABASE_FILE;
use serde_json::Value;

use crate::support::{admin, provision, Host, RDPELE};

/// How long the clients get to reach licensing while the lock is held: under the store's 30 s
/// busy timeout, until which a host whose runtime threads wait for the lock gets nowhere (and
/// after which the first client's write fails).
const WHILE_LOCKED: Duration = Duration::from_secs(20);
/// How long a raw connection gets for its X.224 Connection Confirm while the lock is held.
const CONFIRM_WITHIN: Duration = Duration::from_secs(5);
/// How long a new device's connection gets to reach its decision before another client
/// connects.
const QUEUED_WITHIN: Duration = Duration::from_secs(3);
/// Longest a client may take once the lock is released.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// X.224 Connection Request (TPKT 19 bytes, CR TPDU, RDP_NEG_REQ asking for TLS).
const CONNECTION_REQUEST: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
    0x00, 0x00, 0x00,
];

/// Holds the write lock of the database at `path` and sleeps until it is killed.
const HOLD_WRITE_LOCK: &str = "import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute('BEGIN IMMEDIATE')
print('locked', flush=True)
time.sleep(3600)
";

/// Another process (python3's sqlite3) holding a database's write lock until dropped.
struct WriteLock(Child);

impl WriteLock {
    fn hold(database: &Path) -> WriteLock {
        let mut child = Command::new("python3")
            .args(["-c", HOLD_WRITE_LOCK])
            .arg(database)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 must be installed");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked", "python3 could not take the lock");
        WriteLock(child)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `rdpele client --json` as machine `machine`, its store under `root`, in the background.
fn spawn_client(root: &Path, host: &Host, machine: &str) -> Child {
    Command::new(RDPELE)
        .args(["client", "--connect", &host.address(), "--store"])
        .arg(root.join(machine))
        .args(["--machine", machine, "--user", "alice", "--json"])
        // The client waits for the host's answer while the lock is held.
        .args(["--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The client's JSON report, once it exits with `0`; it is killed if it takes longer than
/// [`CLIENT_DEADLINE`].
fn licensed(mut client: Child, host: &Host) -> Value {
    let started = Instant::now();
    let status = loop {
        if let Some(status) = client.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > CLIENT_DEADLINE {
            let _ = client.kill();
            let _ = client.wait();
            panic!(
                "a client did not finish within {CLIENT_DEADLINE:?}\n{}",
                host.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    client
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    assert!(status.success(), "{status:?}: {stdout}\n{}", host.log());
    serde_json::from_str(stdout.trim()).unwrap()
}

/// How many connections have reached the rules without a license server.
fn at_the_grace_period(host: &Host) -> usize {
    host.log()
        .lines()
        .filter(|line| line.contains("applying the grace-period rules"))
        .count()
}

/// Waits until `count` connections have reached the rules without a license server, at most
/// until `deadline`.
fn wait_for_grace_period(host: &Host, count: usize, deadline: Instant, why: &str) {
    while at_the_grace_period(host) < count {
        assert!(
            Instant::now() < deadline,
            "{why}: {} of {count} connections reached licensing\n{}",
            at_the_grace_period(host),
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_client_waiting_for_the_store_write_lock_stalls_no_other_connection() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    // No license server: the grace-period rules decide, and the first decision records the
    // start of the grace period, a write to the store.
    let config = root.path().join("serve.toml");
    std::fs::write(
        &config,
        "[[fault]]\nkind = \"license-server-unreachable\"\n",
    )
    .unwrap();
    let host = Host::start(&data, &["--config", config.to_str().unwrap()]);
    let shown = admin(&data, &["server", "show"]);
    assert_eq!(shown["session_host"]["first_use"], Value::Null, "{shown}");

    let lock = WriteLock::hold(&data.join(DATABASE_FILE));
    // The first client's decision waits for the lock, on the host's blocking pool.
    let first = spawn_client(root.path(), &host, "pc-00");
    let deadline = Instant::now() + WHILE_LOCKED;
    wait_for_grace_period(&host, 1, deadline, "the first client");

    // More clients than the host has runtime threads (one each per CPU): each reads the
    // host's settings when licensing begins. A host that read them on a runtime thread, behind
    // the first client's write, would have none left for anything.
    let others = std::thread::available_parallelism().unwrap().get() + 1;
    let clients: Vec<Child> = (1..=others)
        .map(|n| spawn_client(root.path(), &host, &format!("pc-{n:02}")))
        .collect();
    let deadline = Instant::now() + WHILE_LOCKED;
    wait_for_grace_period(
        &host,
        others + 1,
        deadline,
        "while the lock is held, every client gets through TLS and MCS to licensing",
    );
    // New connections are still accepted and answered.
    for _ in 0..3 {
        let mut raw = TcpStream::connect(host.address()).unwrap();
        raw.write_all(&CONNECTION_REQUEST).unwrap();
        raw.set_read_timeout(Some(CONFIRM_WITHIN)).unwrap();
        let mut confirm = [0u8; 19];
        raw.read_exact(&mut confirm).unwrap_or_else(|error| {
            panic!(
                "no X.224 Connection Confirm within {CONFIRM_WITHIN:?} ({error})\n{}",
                host.log()
            )
        });
        // TPKT, CC TPDU; RDP_NEG_RSP selecting PROTOCOL_SSL.
        assert_eq!(&confirm[..6], &[0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0]);
        assert_eq!(confirm[11], 0x02);
        assert_eq!(&confirm[15..], &[0x01, 0x00, 0x00, 0x00]);
    }
    assert!(
        host.decisions().is_empty(),
        "no decision before the first use is recorded\n{}",
        host.log()
    );

    // Released: the first use is recorded, and every client is admitted through the grace
    // period.
    drop(lock);
    for client in std::iter::once(first).chain(clients) {
        let report = licensed(client, &host);
        assert_eq!(report["outcome"], "valid", "{report}\n{}", host.log());
    }
    let decisions = host.decisions();
    assert_eq!(decisions.len(), others + 1, "{}", host.log());
    assert!(
        decisions
            .iter()
            .all(|decision| decision.contains("outcome=\"valid\"")),
        "{}",
        host.log()
    );
    let shown = admin(&data, &["server", "show"]);
    assert_ne!(shown["session_host"]["first_use"], Value::Null, "{shown}");
}

/// A new device's decision waits for the write lock on the embedded license server's thread;
/// a device presenting a valid permanent CAL meanwhile is assessed on the connection's own
/// read-only handle and licensed (STATUS_VALID_CLIENT) before the lock is released, instead of
/// queueing behind that decision. The new device is licensed once it is.
#[test]
fn a_valid_cal_is_honoured_while_a_new_devices_decision_waits_for_the_write_lock() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    for outcome in ["temporary", "permanent"] {
        let report = licensed(spawn_client(root.path(), &host, "pc-valid"), &host);
        assert_eq!(report["outcome"], outcome, "{report}\n{}", host.log());
    }

    let lock = WriteLock::hold(&data.join(DATABASE_FILE));
    let mut new_device = spawn_client(root.path(), &host, "pc-new");
    // Time for its connection to reach the decision (tens of milliseconds here), which the
    // host does not log until it is made.
    std::thread::sleep(QUEUED_WITHIN);
    let valid = spawn_client(root.path(), &host, "pc-valid");
    let started = Instant::now();
    let report = licensed(valid, &host);
    assert!(
        started.elapsed() < WHILE_LOCKED,
        "the valid CAL was honoured only after {:?}",
        started.elapsed()
    );
    assert_eq!(report["outcome"], "valid", "{report}\n{}", host.log());
    assert!(
        new_device.try_wait().unwrap().is_none(),
        "the new device was not waiting for its decision\n{}",
        host.log()
    );
    assert!(
        host.decisions().iter().all(|line| !line.contains("pc-new")),
        "the new device was decided while the lock was held\n{}",
        host.log()
    );

    drop(lock);
    let report = licensed(new_device, &host);
    assert_eq!(report["outcome"], "temporary", "{report}\n{}", host.log());
}

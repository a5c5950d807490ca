// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele serve` under hostile clients: IronRDP with `--mutate-licensing SEED` (every licensing
//! PDU it sends damaged, differently per seed) while real clients license on the same host, and
//! raw sockets that send nothing or hold the only connection slot.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{inspect, provision, Host, Xfreerdp};
use serde_json::Value;

/// Hostile connections run at once.
const HOSTILE: u64 = 40;
/// Longest the hostile connections may take together; each ends within the host's `--timeout`
/// (3 s here) or at once, so this only catches hangs.
const HOSTILE_DEADLINE: Duration = Duration::from_secs(120);

/// X.224 Connection Request (TPKT 19 bytes, CR TPDU, RDP_NEG_REQ asking for TLS).
const CONNECTION_REQUEST: [u8; 19] = [
    0x03, 0x00, 0x00, 0x13, 0x0e, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08, 0x00, 0x01,
    0x00, 0x00, 0x00,
];

/// Starts the IronRDP client as device `machine` with its cache under `root`.
fn spawn_ironrdp(root: &Path, host: &Host, machine: &str, extra: &[&str]) -> Child {
    Command::new(crate::support::ironrdp_client())
        .args(["--connect", &host.address(), "--cache"])
        .arg(root.join(format!("ironrdp-{machine}")))
        .args([
            "--user",
            "eve",
            "--password",
            "secret",
            "--machine",
            machine,
        ])
        .args(["--timeout-secs", "30"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits for `child` until `deadline`, then kills it; returns its JSON report, or `None` if it
/// had to be killed.
fn finish(mut child: Child, deadline: Instant) -> Option<Value> {
    loop {
        if child.try_wait().unwrap().is_some() {
            let mut stdout = String::new();
            child
                .stdout
                .take()
                .unwrap()
                .read_to_string(&mut stdout)
                .unwrap();
            return Some(
                serde_json::from_str(stdout.trim())
                    .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout:?}")),
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn count<'a>(values: impl IntoIterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for value in values {
        *counts.entry(value).or_default() += 1;
    }
    counts
}

#[test]
fn hostile_licensing_pdus_are_refused_while_good_clients_license() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let mut host = Host::start(&data, &["--timeout", "3"]);

    // The hostile connections and two good clients, all at once; each IronRDP run is waited for
    // on its own thread, so its time is its own.
    let started = Instant::now();
    let deadline = started + HOSTILE_DEADLINE;
    let run = |machine: String, extra: Vec<String>| {
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let child = spawn_ironrdp(root.path(), &host, &machine, &extra);
        let spawned = Instant::now();
        std::thread::spawn(move || {
            let report = finish(child, deadline);
            (report, spawned.elapsed())
        })
    };
    let hostile: Vec<_> = (0..HOSTILE)
        .map(|seed| {
            let extra = vec!["--mutate-licensing".to_owned(), seed.to_string()];
            (seed, run(format!("hostile-{seed}"), extra))
        })
        .collect();
    let good_ironrdp = run("good-ironrdp".to_owned(), Vec::new());
    let xfreerdp = Xfreerdp::new(root.path(), "good-xfreerdp", "alice");
    xfreerdp.connect(&host);
    eprintln!("good xfreerdp: licensed in {:?}", started.elapsed());
    let (good, took) = good_ironrdp.join().unwrap();
    let good = good.expect("the good IronRDP client hung");
    eprintln!("good IronRDP: licensed in {took:?}");
    let mut durations = Vec::new();
    let reports: Vec<(u64, Option<Value>)> = hostile
        .into_iter()
        .map(|(seed, thread)| {
            let (report, took) = thread.join().unwrap();
            durations.push(took);
            (seed, report)
        })
        .collect();
    durations.sort();
    eprintln!(
        "{HOSTILE} hostile connections: all ended {:?} after the start; each took {:?} (min), \
         {:?} (median), {:?} (max)",
        started.elapsed(),
        durations[0],
        durations[durations.len() / 2],
        durations[durations.len() - 1]
    );

    // The good clients got their temporary CALs.
    let cal = xfreerdp.cal().unwrap_or_else(|| panic!("{}", host.log()));
    assert_eq!(inspect(&cal)["kind"], "temporary");
    assert_eq!(good["connected"], true, "{good}\n{}", host.log());
    assert_eq!(good["licensing"], "license stored", "{good}");
    let good_cal = PathBuf::from(good["stored_license"].as_str().unwrap());
    assert_eq!(inspect(&good_cal)["kind"], "temporary");

    // Every hostile connection ended, refused.
    let hung: Vec<u64> = reports
        .iter()
        .filter(|(_, report)| report.is_none())
        .map(|(seed, _)| *seed)
        .collect();
    assert!(
        hung.is_empty(),
        "hostile seeds {hung:?} hung\n{}",
        host.log()
    );
    let reports: Vec<(u64, Value)> = reports
        .into_iter()
        .map(|(seed, report)| (seed, report.unwrap()))
        .collect();
    for (seed, report) in &reports {
        assert_eq!(report["connected"], false, "seed {seed}: {report}");
        let mutations = report["mutations"].as_array().unwrap();
        assert!(!mutations.is_empty(), "seed {seed}: {report}");
        // A Licensing Error Message is followed by the ERRINFO_LICENSE_* the host chose.
        if report["server_error"].is_object() {
            let info = report["server_error_info"].as_str().unwrap_or_default();
            assert!(
                info.starts_with("ERRINFO_LICENSE_"),
                "seed {seed}: {report}"
            );
        }
    }

    // What the hostile connections met, for the record.
    let kinds = count(
        reports
            .iter()
            .map(|(_, r)| r["mutations"][0]["mutation"].as_str().unwrap()),
    );
    let codes = count(
        reports
            .iter()
            .map(|(_, r)| r["server_error"]["code"].as_str().unwrap_or("(none)")),
    );
    let infos = count(
        reports
            .iter()
            .map(|(_, r)| r["server_error_info"].as_str().unwrap_or("(none)")),
    );
    let failures = count(reports.iter().map(|(_, r)| {
        let error = r["error"].as_str().unwrap_or_default();
        error
            .strip_prefix("connection sequence: [")
            .and_then(|rest| rest.split(']').next())
            .unwrap_or(error)
    }));
    eprintln!("first mutation: {kinds:#?}");
    eprintln!("Licensing Error Messages: {codes:#?}");
    eprintln!("Set Error Info: {infos:#?}");
    eprintln!("where IronRDP stopped: {failures:#?}");

    // The host lives, logged each hostile connection's end, and still licenses.
    assert!(host.alive(), "{}", host.log());
    let log = host.log();
    let refused = log
        .lines()
        .filter(|l| l.contains("licensing refused"))
        .count();
    let closed = log
        .lines()
        .filter(|l| l.contains("connection closed"))
        .count();
    eprintln!("host log: {refused} \"licensing refused\", {closed} \"connection closed\"");
    assert!(refused > 0, "{log}");
    assert!(closed >= reports.len(), "{closed} closings\n{log}");
    xfreerdp.connect(&host);
    assert_eq!(inspect(&cal)["kind"], "permanent", "{}", host.log());
    let again = finish(
        spawn_ironrdp(root.path(), &host, "good-ironrdp", &[]),
        Instant::now() + HOSTILE_DEADLINE,
    )
    .unwrap();
    assert_eq!(again["connected"], true, "{again}");
    assert_eq!(again["licensing"], "license presented and replaced");
    assert_eq!(inspect(&good_cal)["kind"], "permanent");
    assert!(host.alive());
}

/// Reads at most `len` bytes, waiting up to `wait`; `None` if nothing came.
fn read_within(stream: &mut TcpStream, len: usize, wait: Duration) -> Option<Vec<u8>> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buf = vec![0; len];
    match stream.read(&mut buf) {
        Ok(read) => Some(buf[..read].to_vec()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => Some(Vec::new()),
        Err(e) => panic!("read: {e}"),
    }
}

/// Asserts `bytes` is an X.224 Connection Confirm selecting TLS.
fn assert_connection_confirm(bytes: &[u8]) {
    assert_eq!(bytes.len(), 19, "{bytes:02x?}");
    assert_eq!(
        &bytes[..6],
        &[0x03, 0x00, 0x00, 0x13, 0x0e, 0xd0],
        "{bytes:02x?}"
    );
    // RDP_NEG_RSP, PROTOCOL_SSL.
    assert_eq!(bytes[11], 0x02, "{bytes:02x?}");
    assert_eq!(&bytes[15..], &[0x01, 0x00, 0x00, 0x00], "{bytes:02x?}");
}

/// Sends the Connection Request and reads the whole confirm, waiting up to `wait`.
fn connection_confirm(stream: &mut TcpStream, wait: Duration) -> Vec<u8> {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut confirm = [0u8; 19];
    stream.read_exact(&mut confirm).unwrap();
    confirm.to_vec()
}

#[test]
fn a_silent_connection_is_closed_after_the_timeout() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 1);
    let host = Host::start(&data, &["--timeout", "1"]);

    let started = Instant::now();
    let mut silent = TcpStream::connect(host.address()).unwrap();
    let answer = read_within(&mut silent, 64, Duration::from_secs(30));
    eprintln!(
        "silent connection closed by the host after {:?}",
        started.elapsed()
    );
    assert_eq!(
        answer,
        Some(Vec::new()),
        "the host closes a silent connection without a word"
    );
    let logged = Instant::now();
    while !host.log().contains("no data from the client") {
        assert!(logged.elapsed() < Duration::from_secs(30), "{}", host.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(host
        .log()
        .contains("X.224 Connection Request: no data from the client"));
}

#[test]
fn with_one_slot_a_silent_connection_holds_off_the_next_until_it_ends() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 1);
    let host = Host::start(&data, &["--max-connections", "1", "--timeout", "5"]);

    // A takes the only slot and says nothing; B's Connection Request waits unanswered.
    let silent = TcpStream::connect(host.address()).unwrap();
    let mut second = TcpStream::connect(host.address()).unwrap();
    second.write_all(&CONNECTION_REQUEST).unwrap();
    assert_eq!(
        read_within(&mut second, 19, Duration::from_millis(1500)),
        None,
        "no answer while the slot is held"
    );
    // A closes: B is served.
    let closed = Instant::now();
    drop(silent);
    assert_connection_confirm(&connection_confirm(&mut second, Duration::from_secs(30)));
    eprintln!("B answered {:?} after A closed", closed.elapsed());

    // Now B holds the slot (the host awaits its TLS handshake) and stays silent; C waits until
    // the host times B out.
    let mut third = TcpStream::connect(host.address()).unwrap();
    let sent = Instant::now();
    third.write_all(&CONNECTION_REQUEST).unwrap();
    assert_eq!(
        read_within(&mut third, 19, Duration::from_millis(1500)),
        None,
        "no answer while the slot is held"
    );
    assert_connection_confirm(&connection_confirm(&mut third, Duration::from_secs(60)));
    eprintln!(
        "C answered {:?} after its request, once B timed out",
        sent.elapsed()
    );
    assert!(
        host.log()
            .contains("TLS handshake: no data from the client"),
        "{}",
        host.log()
    );
    drop(second);
}

/// A TCP connection to `host` from the loopback address `source` (127.0.0.0/8 is all loopback,
/// so each address is another client machine as far as the host can tell).
fn connect_from(source: [u8; 4], host: &Host) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let from = std::net::SocketAddr::from((source, 0));
    socket.bind(&from.into()).unwrap();
    let to: std::net::SocketAddr = host.address().parse().unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

#[test]
fn one_address_holding_its_slots_does_not_keep_other_addresses_out() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 1);
    let host = Host::start(
        &data,
        &[
            "--max-connections",
            "4",
            "--max-connections-per-source",
            "2",
            "--timeout",
            "30",
        ],
    );

    // 127.0.0.2 takes its two slots and says nothing.
    let held: Vec<TcpStream> = (0..2)
        .map(|_| connect_from([127, 0, 0, 2], &host))
        .collect();
    // Its third connection is closed at once, before a word.
    let mut third = connect_from([127, 0, 0, 2], &host);
    let _ = third.write_all(&CONNECTION_REQUEST);
    assert_eq!(
        read_within(&mut third, 19, Duration::from_secs(10)),
        Some(Vec::new()),
        "{}",
        host.log()
    );
    assert!(
        host.log().contains("--max-connections-per-source"),
        "{}",
        host.log()
    );
    // Another address is answered, and a client from a third one is licensed end to end.
    let mut other = connect_from([127, 0, 0, 3], &host);
    other.write_all(&CONNECTION_REQUEST).unwrap();
    assert_connection_confirm(&connection_confirm(&mut other, Duration::from_secs(10)));
    drop(other);
    let store = root.path().join("client");
    let out = Command::new(crate::support::RDPELE)
        .args([
            "client",
            "--connect",
            &host.address(),
            "--machine",
            "pc-01",
            "--user",
            "alice",
        ])
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(host.decisions().len(), 1, "{}", host.log());
    drop(held);
}

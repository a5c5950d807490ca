// Test code: unwrap/expect/panic/indexing are fine here.
//! Licensing in the clear, where a capture shows it: xfreerdp 2.11.7 `/sec:rdp` captured on
//! loopback by tshark, and `rdpele serve --pcap`'s own capture of emulated clients, each decoded
//! by `rdpele decode --server-key`: every licensing message decrypted from Standard RDP
//! Security, its MACs (the transport's and licensing's) valid.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{provision, Host, Xfreerdp, RDPELE};

/// `rdpele decode --json` of `capture` with the host's two keys: the documents, and stderr.
fn decode(capture: &Path, data: &Path, with_keys: bool) -> (Vec<Value>, String, Option<i32>) {
    let mut command = Command::new(RDPELE);
    command.args(["decode", "--json"]).arg(capture);
    if with_keys {
        for key in ["host_licensing_key.pem", "host_rdp_security_512.pem"] {
            command.arg("--server-key").arg(data.join(key));
        }
    }
    let output = command.output().unwrap();
    let documents = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (
        documents,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.code(),
    )
}

/// Every `mac_valid` anywhere in `document`.
fn mac_checks(document: &Value, out: &mut Vec<bool>) {
    match document {
        Value::Object(map) => {
            for (key, value) in map {
                if key == "mac_valid" {
                    out.push(value.as_bool().unwrap());
                }
                mac_checks(value, out);
            }
        }
        Value::Array(values) => values.iter().for_each(|value| mac_checks(value, out)),
        _ => {}
    }
}

/// tshark's one-line summary of each packet in `capture`, the host's `port` dissected as RDP
/// (TPKT, X.224, T.125: "channelJoinRequest 1002", ...).
fn t125_summary(capture: &Path, port: u16) -> String {
    let tshark = Command::new("tshark")
        .arg("-r")
        .arg(capture)
        .args(["-d", &format!("tcp.port=={port},tpkt")])
        .output()
        .expect("tshark must be installed (./scripts/test installs it)");
    assert!(tshark.status.success(), "{tshark:?}");
    String::from_utf8(tshark.stdout).unwrap()
}

fn message_types(documents: &[Value]) -> Vec<&str> {
    documents
        .iter()
        .map(|document| document["message_type"].as_str().unwrap())
        .collect()
}

#[test]
fn an_xfreerdp_session_captured_by_tshark_decodes_with_valid_macs() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let capture = root.path().join("xfreerdp.pcap");

    // tshark on the loopback, this host's port only; it says when it is capturing.
    let mut tshark = Command::new("tshark")
        .args(["-i", "lo", "-f", &format!("tcp port {}", host.port), "-w"])
        .arg(&capture)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tshark must be installed (./scripts/test installs it)");
    let mut stderr = BufReader::new(tshark.stderr.take().unwrap());
    let started = Instant::now();
    let mut line = String::new();
    while !line.contains("Capturing on") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "tshark ended");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "tshark did not start"
        );
    }

    let client = Xfreerdp::new(root.path(), "pc-tshark", "alice");
    let run = client.connect_with(&host, "/sec:rdp");
    assert!(client.cal().is_some(), "{}\n{}", run.output, host.log());

    // dumpcap hands packets over in blocks and does not drain the kernel's last one when told
    // to stop (CI lost everything after the License Request that way), but it flushes the file
    // as it goes: wait until the whole exchange is on disk, then stop it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while message_types(&decode(&capture, &data, true).0).len() < 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGINT: tshark writes out what it has and ends.
    Command::new("kill")
        .args(["-INT", &tshark.id().to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while tshark.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "tshark did not stop");
        std::thread::sleep(Duration::from_millis(50));
    }

    // xfreerdp 2.11.7 does not announce skip-channel-join: it joins the user and I/O
    // channels, and the host answers each join.
    let t125 = t125_summary(&capture, host.port);
    assert!(t125.matches("channelJoinConfirm").count() >= 2, "{t125}");

    let (documents, notes, status) = decode(&capture, &data, true);
    assert_eq!(status, Some(0), "{notes}");
    assert_eq!(
        message_types(&documents),
        [
            "SERVER_LICENSE_REQUEST",
            "CLIENT_NEW_LICENSE_REQUEST",
            "SERVER_PLATFORM_CHALLENGE",
            "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
            "SERVER_NEW_LICENSE",
        ],
        "{notes}"
    );
    for document in &documents {
        // xfreerdp asks for encrypted licensing (SEC_LICENSE_ENCRYPT_SC): every message was
        // under RC4, and its Standard RDP Security MAC verified.
        assert_eq!(document["rdp_security"]["decrypted"], true, "{document}");
    }
    let mut macs = Vec::new();
    documents
        .iter()
        .for_each(|document| mac_checks(document, &mut macs));
    // One Standard RDP Security MAC per message, and licensing's own (MS-RDPELE 5.1.5) in the
    // challenge, the response and the new license.
    assert_eq!(macs.len(), 5 + 3, "{macs:?}");
    assert!(macs.iter().all(|valid| *valid), "{macs:?}");
    let challenge = &documents[2];
    assert_eq!(
        challenge["fields"]["platform_challenge_text"], "TEST",
        "{challenge}"
    );

    // Without the keys: the capture says what it holds and what would open it.
    let (documents, notes, status) = decode(&capture, &data, false);
    assert!(documents.is_empty());
    assert_eq!(status, Some(2));
    assert!(notes.contains("--server-key"), "{notes}");
}

#[test]
fn serve_pcap_writes_a_capture_tshark_reads_and_rdpele_decode_opens() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let capture = root.path().join("serve.pcap");
    let host = Host::start(&data, &["--pcap", capture.to_str().unwrap()]);
    let port = host.port;
    let store = root.path().join("pc-pcap");
    for _ in 0..2 {
        let output = Command::new(RDPELE)
            .args(["client", "--connect", &host.address(), "--store"])
            .arg(&store)
            .args(["--machine", "pc-pcap", "--security", "rdp", "--json"])
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
    }
    drop(host);

    let tshark = Command::new("tshark")
        .args(["-r"])
        .arg(&capture)
        .args(["-Y", "tcp.len > 0", "-T", "fields", "-e", "tcp.stream"])
        .output()
        .expect("tshark must be installed (./scripts/test installs it)");
    assert!(tshark.status.success(), "{tshark:?}");
    let streams: std::collections::BTreeSet<String> = String::from_utf8(tshark.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(streams.len(), 2, "two connections: {streams:?}");

    // The emulated client announces skip-channel-join and the host offers it back (MS-RDPBCGR
    // 3.2.5.3.8), so each connection goes from Attach User Confirm to its Security Exchange.
    let t125 = t125_summary(&capture, port);
    assert_eq!(t125.matches("attachUserConfirm").count(), 2, "{t125}");
    assert_eq!(t125.matches("channelJoinRequest").count(), 0, "{t125}");

    let (documents, notes, status) = decode(&capture, &data, true);
    assert_eq!(status, Some(0), "{notes}");
    assert_eq!(
        message_types(&documents),
        [
            "SERVER_LICENSE_REQUEST",
            "CLIENT_NEW_LICENSE_REQUEST",
            "SERVER_PLATFORM_CHALLENGE",
            "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
            "SERVER_NEW_LICENSE",
            "SERVER_LICENSE_REQUEST",
            "CLIENT_LICENSE_INFO",
            "SERVER_PLATFORM_CHALLENGE",
            "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
            "SERVER_UPGRADE_LICENSE",
        ],
        "{notes}"
    );
    let mut macs = Vec::new();
    documents
        .iter()
        .for_each(|document| mac_checks(document, &mut macs));
    // The second connection's License Info carries a licensing MAC too.
    assert_eq!(macs.len(), 10 + 7, "{macs:?}");
    assert!(macs.iter().all(|valid| *valid), "{macs:?}");
}

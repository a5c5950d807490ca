// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele demo`: the storyline the README leads with, over the real network stack, checked
//! event by event from its JSON lines.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;

use serde_json::Value;

fn demo(args: &[&str]) -> (std::process::Output, Vec<Value>) {
    let output = Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let events = String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    (output, events)
}

fn outcomes<'a>(events: &'a [Value], client: &str) -> Vec<&'a str> {
    events
        .iter()
        .filter(|event| event["client"] == client)
        .map(|event| event["outcome"].as_str().unwrap())
        .collect()
}

#[test]
fn the_storyline_happens_in_order() {
    let (_, events) = demo(&["--json"]);
    for event in &events {
        for key in ["day", "client", "outcome", "expires_at"] {
            assert!(event.get(key).is_some(), "{key} missing: {event}");
        }
    }
    // Day 0: six first logons, six temporary CALs.
    let day0: Vec<&Value> = events.iter().filter(|e| e["day"] == 0).collect();
    assert_eq!(day0.len(), 6);
    assert!(day0
        .iter()
        .all(|e| e["outcome"] == "temporary" && e["expires_at"].is_string()));

    // Five permanent CALs from the pack of five; the sixth device stays temporary until pc-01
    // is revoked, then gets one.
    for pc in ["pc-02", "pc-03", "pc-04", "pc-05"] {
        assert_eq!(
            outcomes(&events, pc)[..2],
            ["temporary", "permanent"],
            "{pc}"
        );
        assert!(
            outcomes(&events, pc).contains(&"renewed"),
            "{pc}: {events:#?}"
        );
    }
    assert_eq!(
        outcomes(&events, "pc-06")[..3],
        ["temporary", "temporary", "permanent"]
    );
    let pc01 = outcomes(&events, "pc-01");
    assert_eq!(pc01, ["temporary", "permanent", "revoked", "temporary"]);

    // pc-07's temporary CAL expires with none free: refused with its ERRINFO.
    let refusal = events
        .iter()
        .find(|e| e["outcome"] == "refused")
        .expect("a refusal");
    assert_eq!(refusal["client"], "pc-07");
    assert!(refusal["error"]
        .as_str()
        .unwrap()
        .starts_with("ERR_INVALID_CLIENT"));
    assert_eq!(refusal["error_info"], "ERRINFO_LICENSE_NO_LICENSE");
    assert!(refusal["day"].as_u64().unwrap() >= 90);

    // Renewals keep their device licensed: a new expiry after the old one.
    let renewed = events.iter().find(|e| e["outcome"] == "renewed").unwrap();
    let permanent = events
        .iter()
        .find(|e| e["outcome"] == "permanent" && e["client"] == renewed["client"])
        .unwrap();
    assert!(renewed["expires_at"].as_str().unwrap() > permanent["expires_at"].as_str().unwrap());

    // The per-user host admits its users without storing a CAL on their devices, and
    // over-allocates.
    let kiosks: Vec<_> = events
        .iter()
        .filter(|e| e["client"].as_str().unwrap().starts_with("kiosk-"))
        .collect();
    assert_eq!(kiosks.len(), 3, "{events:#?}");
    for kiosk in kiosks {
        assert_eq!(kiosk["outcome"], "valid", "{kiosk}");
        assert_eq!(kiosk["expires_at"], Value::Null, "{kiosk}");
    }
    let report = events.iter().find(|e| e["client"] == "per-user").unwrap();
    assert_eq!(report["note"], "2 of 2 CALs issued, 1 over-allocated");
}

#[test]
fn the_timeline_is_one_line_per_event_with_its_day() {
    let (output, _) = demo(&[]);
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(
        text.contains("day   0  pc-01    temporary   expires "),
        "{text}"
    );
    assert!(
        text.contains("refused     ERR_INVALID_CLIENT (0x8), then ERRINFO_LICENSE_NO_LICENSE"),
        "{text}"
    );
    assert!(text.contains("revoked"), "{text}");
}

#[test]
fn keep_leaves_data_directories_the_admin_cli_reads() {
    let root = tempfile::tempdir().unwrap();
    let keep = root.path().join("demo");
    demo(&["--json", "--keep", keep.to_str().unwrap()]);
    let output = Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .args(["admin", "--json", "--data"])
        .arg(keep.join("per-device"))
        .arg("report")
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["totals"]["per-device"]["installed"], 5);
    assert_eq!(report["totals"]["per-device"]["issued"], 5);
}

// Test code: unwrap/expect/panic/indexing are fine here.
//! aardwolf 0.2.16 (PyPI; `interop/aardwolf/connect.py` in the virtualenv `./scripts/test`
//! makes) against `rdpele serve` at its default settings, over TLS and over Standard RDP
//! Security (its 128-bit RC4, asked for with PROTOCOL_RDP only). aardwolf does not join the
//! MCS user channel and overstates its finalization PDUs' totalLength, as Windows lets it; it
//! keeps no CAL, so its second connection is a New License Request from a device the license
//! server knows by its HWID, whose validated temporary CAL is then upgraded.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

use crate::support::{admin, provision, Host};

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../interop/aardwolf")
}

/// One connection over `security` (tls or rdp); the JSON line `connect.py` prints.
fn connect(host: &Host, security: &str) -> Value {
    let python = interop_dir().join("venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: ./scripts/test makes it (python3 -m venv, pip install aardwolf==0.2.16)",
        python.display()
    );
    let output = Command::new(python)
        .arg(interop_dir().join("connect.py"))
        .args([
            host.address().as_str(),
            "alice",
            "secret",
            "--security",
            security,
        ])
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|_| {
        panic!(
            "connect.py printed {line:?}\n{}\n{}",
            String::from_utf8_lossy(&output.stderr),
            host.log()
        )
    })
}

#[test]
fn a_client_that_skips_the_user_channel_goes_temporary_then_permanent() {
    temporary_then_permanent("tls");
}

#[test]
fn over_standard_rdp_security_it_goes_temporary_then_permanent() {
    temporary_then_permanent("rdp");
}

fn temporary_then_permanent(security: &str) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);

    // First logon: a temporary CAL, validated when the session becomes active. Second: the
    // device, known by its HWID, gets a permanent CAL. Third: that permanent CAL issued again
    // with its expiry (no second license taken).
    for expected in ["temporary", "permanent", "permanent"] {
        let result = connect(&host, security);
        assert_eq!(result["connected"], true, "{result}\n{}", host.log());
        let decision = host.decisions().last().cloned().unwrap_or_default();
        assert!(
            decision.contains(&format!("outcome=\"{expected}\"")),
            "{expected}: {decision}\n{}",
            host.log()
        );
    }
    assert_eq!(host.log().matches("session active").count(), 3);
    let secured = host.log().matches("Standard RDP Security peer=").count();
    assert_eq!(
        secured,
        if security == "rdp" { 3 } else { 0 },
        "{}",
        host.log()
    );
    let report = admin(&data, &["report"]);
    assert_eq!(report["totals"]["per-device"]["issued"], 1, "{report}");
}

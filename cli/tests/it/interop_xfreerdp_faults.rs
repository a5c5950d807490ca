// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele serve --config` with xfreerdp 2.11.7: each injected fault as a real client sees it,
//! and the proprietary licensing certificate (the default is an X.509 chain).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::Duration;

use rdpele_license_server::clock::parse_instant;
use serde_json::Value;

use crate::support::{admin, inspect, provision, Host, Xfreerdp};

/// A host on a fresh per-device 2022 license server with `config` as its TOML.
fn host_with(root: &Path, config: &str) -> Host {
    let data = root.join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let path = root.join("serve.toml");
    std::fs::write(&path, config).unwrap();
    Host::start(&data, &["--config", path.to_str().unwrap()])
}

#[test]
fn an_exhausted_pool_fault_keeps_a_device_temporary() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(root.path(), "[[fault]]\nkind = \"pool-exhausted\"\n");
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    client.connect(&host);
    assert_eq!(inspect(&client.cal().unwrap())["kind"], "temporary");
    let report = admin(&host.data, &["report"]);
    assert_eq!(report["packs"][0]["issued"], 0, "{report}");
}

#[test]
fn an_error_answer_aborts_licensing_with_its_code() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(
        root.path(),
        "[[fault]]\nkind = \"error\"\nstep = \"new-license-request\"\nerror-code = \"ERR_NO_LICENSE_SERVER\"\n",
    );
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    let run = client.connect(&host);
    assert!(!run.status.success());
    assert!(
        run.output.contains("license connection sequence aborted"),
        "{}",
        run.output
    );
    assert!(client.cal().is_none());
    host.log_once_it_holds("errinfo=NoLicenseServer");
    // Nothing was decided, so nothing was taken.
    assert_eq!(
        admin(&host.data, &["report"])["licenses"],
        serde_json::json!([])
    );
}

#[test]
fn a_corrupted_new_license_mac_is_rejected_by_the_client() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(
        root.path(),
        "[[fault]]\nkind = \"corrupt-mac\"\nstep = \"new-license\"\n",
    );
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    let run = client.connect(&host);
    assert!(!run.status.success(), "{}", run.output);
    assert!(
        client.cal().is_none(),
        "xfreerdp must not keep a CAL whose MAC is wrong"
    );
}

#[test]
fn a_delayed_license_request_still_licenses() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(
        root.path(),
        "[[fault]]\nkind = \"delay\"\nstep = \"license-request\"\ndelay-ms = 1500\n",
    );
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    assert_eq!(inspect(&client.cal().unwrap())["kind"], "temporary");
    assert!(
        host.log()
            .contains("fault: delaying the host's message step=\"license-request\" delay=1.5s"),
        "{}",
        host.log()
    );
}

#[test]
fn without_a_license_server_the_grace_period_admits_then_refuses() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(
        root.path(),
        "[[fault]]\nkind = \"license-server-unreachable\"\n",
    );
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    assert!(client.cal().is_none(), "admitted without a CAL");
    assert!(
        host.decisions()
            .last()
            .unwrap()
            .contains("outcome=\"valid\""),
        "{}",
        host.log()
    );
    drop(host);

    // The same host 121 days after its first use: the grace period is over.
    let data = root.path().join("data");
    admin(&data, &["clock", "advance", "121d"]);
    let path = root.path().join("serve.toml");
    let host = Host::start(&data, &["--config", path.to_str().unwrap()]);
    let run = client.connect(&host);
    assert!(!run.status.success());
    host.log_once_it_holds("errinfo=NoLicenseServer");
}

#[test]
fn the_grace_period_runs_from_the_hosts_first_client_not_from_the_outage() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(root.path(), "");
    let data = root.path().join("data");
    let shown = admin(&data, &["server", "show"]);
    assert_eq!(shown["session_host"]["first_use"], Value::Null, "{shown}");
    let first = Xfreerdp::new(root.path(), "pc-01", "alice");
    first.connect(&host);
    assert_eq!(inspect(&first.cal().unwrap())["kind"], "temporary");
    // Licensed by the license server, and still the grace period's start.
    let shown = admin(&data, &["server", "show"]);
    let first_use = shown["session_host"]["first_use"]
        .as_str()
        .unwrap_or_else(|| panic!("{shown}\n{}", host.log()));
    let since = parse_instant(shown["now"].as_str().unwrap())
        .unwrap()
        .duration_since(parse_instant(first_use).unwrap())
        .unwrap();
    assert!(since < Duration::from_secs(60), "{shown}");
    drop(host);

    // 121 days later the license server is out of reach: the grace period is already over,
    // so a device without a CAL is refused at once.
    admin(&data, &["clock", "advance", "121d"]);
    let path = root.path().join("serve.toml");
    std::fs::write(&path, "[[fault]]\nkind = \"license-server-unreachable\"\n").unwrap();
    let host = Host::start(&data, &["--config", path.to_str().unwrap()]);
    let second = Xfreerdp::new(root.path(), "pc-02", "bob");
    let run = second.connect(&host);
    assert!(!run.status.success(), "{}", host.log());
    assert!(second.cal().is_none());
    host.log_once_it_holds("errinfo=NoLicenseServer");
}

#[test]
fn a_proprietary_licensing_certificate_licenses_like_an_x509_chain() {
    let root = tempfile::tempdir().unwrap();
    let host = host_with(root.path(), "[host]\ncertificate = \"proprietary\"\n");
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    client.connect(&host);
    assert_eq!(
        inspect(&client.cal().unwrap())["kind"],
        "permanent",
        "{}",
        host.log()
    );
}

#[test]
fn a_bad_config_names_the_key_and_the_host_does_not_start() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("serve.toml");
    std::fs::write(&path, "[host]\nversion = \"2020\"\n").unwrap();
    let output = std::process::Command::new(crate::support::RDPELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(root.path().join("data"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("host.version"), "{stderr}");
    assert!(stderr.contains("2022"), "lists what it accepts: {stderr}");
}

// Test code: unwrap/expect/panic/indexing are fine here.
//! xfreerdp 2.11.7 (Debian 12) against `rdpele serve`: the whole CAL life with a real client
//! that stores the CAL it gets and presents it on its next connection.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{
    admin, days_between, inspect, provision, set_clock_before, Host, RemoteLicenseServer, Xfreerdp,
};

/// xfreerdp 2.11.7 with `/sec:rdp` (Standard RDP Security: RC4 128-bit, salted MACs from its
/// Client Info on, licensing PDUs encrypted both ways) against `rdpele serve` at its default
/// settings: the same CAL life as over TLS.
#[test]
fn over_standard_rdp_security_temporary_then_permanent_then_renewed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let client = Xfreerdp::new(root.path(), "pc-rdp", "alice");

    let first = client.connect_with(&host, "/sec:rdp");
    let cal = client.cal().unwrap_or_else(|| {
        panic!(
            "no CAL stored ({:?})\n{}\n{}",
            first.status,
            first.output,
            host.log()
        )
    });
    assert_eq!(inspect(&cal)["kind"], "temporary");
    client.connect_with(&host, "/sec:rdp");
    let permanent = inspect(&cal);
    assert_eq!(permanent["kind"], "permanent", "{}", host.log());
    let expires = permanent["client_license"]["not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    set_clock_before(&data, &expires, 5);
    client.connect_with(&host, "/sec:rdp");
    let renewed = inspect(&cal);
    let new_expiry = renewed["client_license"]["not_after"].as_str().unwrap();
    assert!(
        days_between(&expires, new_expiry) > 40,
        "{expires} -> {new_expiry}"
    );

    let log = host.log();
    let secured = log
        .lines()
        .filter(|line| {
            // xfreerdp 2.11.7 does not announce RNS_UD_CS_STRONG_ASYMMETRIC_KEYS: the host's
            // 512-bit certificate, as Windows'.
            line.contains("Standard RDP Security")
                && line.contains("128-bit RC4")
                && line.contains("key_bits=512")
        })
        .count();
    assert_eq!(secured, 3, "{log}");
    assert_eq!(
        log.matches("session active").count(),
        3,
        "every session became active: {log}"
    );
    assert!(!log.contains("WARN"), "{log}");
}

#[test]
fn temporary_then_permanent_then_renewed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");

    // First logon: a 90-day temporary CAL, stored by xfreerdp.
    let first = client.connect(&host);
    let cal = client.cal().unwrap_or_else(|| {
        panic!(
            "no CAL stored ({:?})\n{}\n{}",
            first.status,
            first.output,
            host.log()
        )
    });
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["validity_days"], 90);
    assert_eq!(temporary["client_license"]["machine"], "pc-01");
    assert_eq!(temporary["client_license"]["user"], "alice");
    let temporary_bytes = std::fs::read(&cal).unwrap();

    // Second logon: it presents the temporary CAL, an Upgrade License replaces it with a
    // permanent one of 52-89 days.
    client.connect(&host);
    let permanent = inspect(&cal);
    assert_eq!(permanent["kind"], "permanent", "{}", host.log());
    let days = permanent["client_license"]["validity_days"]
        .as_i64()
        .unwrap();
    assert!((52..=89).contains(&days), "{days} days");
    assert_ne!(std::fs::read(&cal).unwrap(), temporary_bytes);
    assert_eq!(
        permanent["client_license"]["hwid"],
        temporary["client_license"]["hwid"]
    );

    // Within 7 days of expiry: the third logon renews it.
    let expires = permanent["client_license"]["not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    set_clock_before(&data, &expires, 5);
    client.connect(&host);
    let renewed = inspect(&cal);
    assert_eq!(renewed["kind"], "permanent");
    let new_expiry = renewed["client_license"]["not_after"].as_str().unwrap();
    assert!(
        days_between(&expires, new_expiry) > 40,
        "{expires} -> {new_expiry}"
    );

    // The host logged one decision per logon, and the license server holds one active CAL.
    let decisions = host.decisions();
    let outcomes: Vec<&str> = ["temporary", "permanent", "renewed"].to_vec();
    for (line, outcome) in decisions.iter().zip(&outcomes) {
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
        assert!(line.contains("client=\"pc-01\""), "{line}");
        assert!(line.contains("hwid="), "{line}");
        assert!(line.contains("expires="), "{line}");
    }
    assert_eq!(decisions.len(), 3, "{decisions:#?}");
    let report = admin(&data, &["report"]);
    assert_eq!(report["totals"]["per-device"]["issued"], 1);
}

#[test]
fn an_exhausted_pool_leaves_the_next_device_temporary_until_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 1);
    let host = Host::start(&data, &[]);

    let first = Xfreerdp::new(root.path(), "pc-01", "alice");
    first.connect(&host);
    first.connect(&host);
    assert_eq!(inspect(&first.cal().unwrap())["kind"], "permanent");

    // The only CAL is taken: the second device keeps its temporary CAL.
    let second = Xfreerdp::new(root.path(), "pc-02", "bob");
    second.connect(&host);
    let cal = second.cal().unwrap();
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    second.connect(&host);
    assert_eq!(inspect(&cal)["kind"], "temporary");
    let before = std::fs::read(&cal).unwrap();

    // The first device renews within its last week, so its CAL is still held when the second
    // device's temporary CAL (90 days, longer than any permanent one) expires.
    let held = inspect(&first.cal().unwrap());
    set_clock_before(
        &data,
        held["client_license"]["not_after"].as_str().unwrap(),
        5,
    );
    first.connect(&host);
    assert_eq!(inspect(&first.cal().unwrap())["kind"], "permanent");

    // Its temporary CAL expires with none free: refused. xfreerdp stops at the Licensing Error
    // Message (ST_TOTAL_ABORT) and says so; the Set Error Info the host sends after it
    // (ERRINFO_LICENSE_NO_LICENSE) is for clients that read on, like mstsc.
    let expires = temporary["client_license"]["not_after"].as_str().unwrap();
    set_clock_before(&data, expires, 0);
    admin(&data, &["clock", "advance", "1d"]);
    let refused = second.connect(&host);
    assert!(!refused.status.success());
    assert!(
        refused
            .output
            .contains("license connection sequence aborted"),
        "xfreerdp output:\n{}\nhost:\n{}",
        refused.output,
        host.log()
    );
    assert_eq!(std::fs::read(&cal).unwrap(), before, "the CAL is kept");
    let last = host.decisions().pop().unwrap();
    assert!(last.contains("outcome=\"refused\""), "{last}");
    assert!(last.contains("client=\"pc-02\""), "{last}");
    assert!(last.contains("ERR_INVALID_CLIENT"), "{last}");
    // The host follows with ERRINFO_LICENSE_NO_LICENSE.
    host.log_once_it_holds("errinfo=NoLicense");
}

#[test]
fn a_2019_pack_on_a_2022_host_yields_no_permanent_cal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2019", 5);
    let host = Host::start(&data, &[]);
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    client.connect(&host);
    let cal = inspect(&client.cal().unwrap());
    assert_eq!(cal["kind"], "temporary", "{}", host.log());
    let report = admin(&data, &["report"]);
    assert_eq!(report["packs"][0]["issued"], 0);
}

#[test]
fn a_per_user_host_admits_and_records_the_user() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-user", "2022", "2022", 1);
    let host = Host::start(&data, &[]);
    for (hostname, user) in [("pc-01", "alice"), ("pc-02", "bob")] {
        let client = Xfreerdp::new(root.path(), hostname, user);
        client.connect(&host);
        client.connect(&host);
        // Per-user CALs are not issued to the device (DESIGN §5): nothing is stored.
        assert_eq!(client.cal(), None, "{}", host.log());
    }
    let decisions = host.decisions();
    assert_eq!(decisions.len(), 4, "{decisions:#?}");
    assert!(
        decisions
            .iter()
            .all(|line| line.contains("outcome=\"valid\"") && line.contains("expires=none")),
        "{decisions:#?}"
    );
    // Two users on a one-CAL per-user pack, each recorded once: one from the pack, one
    // over-allocated.
    let report = admin(&data, &["report"]);
    let per_user = &report["totals"]["per-user"];
    assert_eq!(per_user["installed"], 1, "{report}");
    assert_eq!(per_user["issued"], 1, "{report}");
    assert_eq!(per_user["overused"], 1, "{report}");
}

#[test]
fn a_device_that_visits_a_per_user_host_keeps_its_per_device_cal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    let cal = client
        .cal()
        .expect("a temporary CAL on the per-device host");
    let device_cal = std::fs::read(&cal).unwrap();
    assert_eq!(inspect(&cal)["kind"], "temporary");

    // The host turns per user (read at each connection): the user is recorded, the device's
    // per-device CAL is neither replaced nor refused.
    admin(&data, &["server", "set", "--mode", "per-user"]);
    client.connect(&host);
    assert_eq!(host.decisions().len(), 2, "{}", host.log());
    assert!(
        host.decisions()[1].contains("outcome=\"valid\""),
        "{}",
        host.log()
    );
    assert_eq!(std::fs::read(&cal).unwrap(), device_cal, "{}", host.log());
    let report = admin(&data, &["report"]);
    assert_eq!(report["totals"]["per-user"]["overused"], 1, "{report}");

    // Back per device: the temporary CAL it kept is upgraded, not refused as the wrong type.
    admin(&data, &["server", "set", "--mode", "per-device"]);
    client.connect(&host);
    assert_eq!(inspect(&cal)["kind"], "permanent", "{}", host.log());
    let decisions = host.decisions();
    assert!(
        decisions.iter().all(|line| !line.contains("refused")),
        "{decisions:#?}"
    );
}

#[test]
fn a_remote_license_server_licenses_and_its_absence_falls_back_to_the_grace_period() {
    let root = tempfile::tempdir().unwrap();
    let license_data = root.path().join("license-server");
    provision(&license_data, "per-device", "2022", "2022", 5);
    let license_server = RemoteLicenseServer::start(&license_data, "s3cret");
    let host = Host::start(
        &root.path().join("host"),
        &["--license-server", &license_server.url, "--token", "s3cret"],
    );

    let client = Xfreerdp::new(root.path(), "pc-01", "alice");
    client.connect(&host);
    assert_eq!(
        inspect(&client.cal().unwrap())["kind"],
        "temporary",
        "{}",
        host.log()
    );
    client.connect(&host);
    assert_eq!(
        inspect(&client.cal().unwrap())["kind"],
        "permanent",
        "{}",
        host.log()
    );
    // The CALs are the remote license server's.
    let report = admin(&license_data, &["report"]);
    assert_eq!(report["totals"]["per-device"]["issued"], 1, "{report}");

    // License server gone: within its grace period the host admits a new device without a CAL.
    drop(license_server);
    let newcomer = Xfreerdp::new(root.path(), "pc-02", "bob");
    newcomer.connect(&host);
    assert!(newcomer.cal().is_none());
    let log = host.log();
    assert!(log.contains("no license server"), "{log}");
    assert!(
        host.decisions()
            .last()
            .unwrap()
            .contains("outcome=\"valid\""),
        "{log}"
    );
}

// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele fleet` against `rdpele serve`: a small fleet's totals equal the license server's
//! report, the pool's story shows (devices left temporary, renewals, refusals once temporary
//! CALs expire), the same seed gives the same run, and mistakes are one-line errors. Also the
//! host's `licensing-key-bits` setting, which the fleet's benchmark relies on.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use rdpele_emulator::session_host::config::HostConfig;
use rdpele_emulator::session_host::{Options, Shared, LICENSING_KEY_FILE};
use rdpele_proto::crypto::LicensingPrivateKey;
use serde_json::Value;

use crate::support::{admin, provision, Host, RDPELE};

/// A Monday: the weekday pattern's weeks start on day 0.
const START: &str = "2026-03-02T08:00:00Z";

/// A host with a 512-bit licensing key (as proprietary certificates hold; the fleet's speed
/// setting), over a fresh activated license server with a per-device pack of `pack` CALs.
fn host(data: &Path, mode: &str, pack: u32) -> Host {
    provision(data, mode, "2022", "2022", pack);
    admin(data, &["clock", "set", START]);
    let config = data.with_extension("toml");
    std::fs::write(&config, "[host]\nlicensing-key-bits = 512\n").unwrap();
    Host::start(data, &["--config", config.to_str().unwrap()])
}

fn fleet(args: &[&str]) -> Output {
    Command::new(RDPELE)
        .arg("fleet")
        .args(args)
        .output()
        .unwrap()
}

/// Runs a fleet that must succeed, and returns its JSON document.
fn fleet_json(host: &Host, args: &[&str]) -> Value {
    let address = host.address();
    let data = host.data.to_str().unwrap();
    let mut all = vec!["--connect", &address, "--data", data, "--json"];
    all.extend_from_slice(args);
    let output = fleet(&all);
    assert!(
        output.status.success(),
        "fleet {args:?}: {}\n{}",
        String::from_utf8_lossy(&output.stderr),
        host.log()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn count(value: &Value) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("not a count: {value}"))
}

#[test]
fn a_small_fleets_totals_equal_the_license_servers_report() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = host(&data, "per-device", 8);
    let plot = dir.path().join("fleet.svg");
    let json = fleet_json(
        &host,
        &[
            "--devices",
            "12",
            "--users",
            "3",
            "--days",
            "100",
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    let totals = &json["totals"];
    let held = &json["held"]["per-device"];

    // The fleet's own definitions against `admin report`, run after it.
    let report = admin(&data, &["report"]);
    let server = &report["totals"]["per-device"];
    assert_eq!(
        count(&held["permanent"]),
        count(&server["issued"]) + count(&server["revoked"]),
        "{json}\n{report}"
    );
    assert_eq!(count(&held["temporary"]), count(&server["temporary"]));
    assert_eq!(json["reconciled"], true);
    // The same from the licenses the report lists: one permanent CAL per holding device.
    let listed = report["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|license| license["kind"] == "permanent")
        .count();
    assert_eq!(u64::try_from(listed).unwrap(), count(&held["permanent"]));

    // The story: 12 first logons, 8 upgrades from a pool of 8, the other 4 left temporary
    // until their CALs end on day 90 and refused from then on; each permanent CAL (52–89
    // days) renewed at least once in 100 days.
    assert_eq!(count(&totals["temporary"]), 12);
    assert_eq!(count(&totals["permanent"]), 8);
    assert!(count(&totals["renewed"]) >= 8, "{totals}");
    assert_eq!(count(&totals["failed"]), 0, "{totals}");
    assert_eq!(count(&held["permanent"]), 8);
    assert_eq!(count(&held["temporary"]), 0);
    let day_50 = &json["per_day"][50]["held"]["per-device"];
    assert_eq!(
        (count(&day_50["permanent"]), count(&day_50["temporary"])),
        (8, 4)
    );
    let refused = count(&totals["refused"]);
    assert!(refused > 0, "{totals}");
    assert_eq!(
        count(&totals["refusals"]["ERR_INVALID_CLIENT / ERRINFO_LICENSE_NO_LICENSE"]),
        refused
    );
    let first_refusal = json["per_day"]
        .as_array()
        .unwrap()
        .iter()
        .find(|day| count(&day["outcomes"]["refused"]) > 0)
        .unwrap();
    assert!(count(&first_refusal["day"]) >= 90, "{first_refusal}");
    // Weekdays: 100 days from a Monday hold 72 weekdays.
    assert_eq!(count(&totals["connections"]), 72 * 12);
    assert_eq!(json["per_day"][5]["weekday"], "Sat");
    assert_eq!(count(&json["per_day"][5]["outcomes"]["connections"]), 0);

    let svg = std::fs::read_to_string(&plot).unwrap();
    assert!(svg.starts_with("<svg"));
    assert!(svg.contains("CALs held by 12 devices") && svg.contains("Refusals per virtual day"));
}

/// Devices that leave once licensing ends never sign in, so none of their temporary CALs is
/// validated and none is upgraded, though the pool has a CAL for each of them.
#[test]
fn a_fleet_that_never_signs_in_stays_temporary() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let host = host(&data, "per-device", 8);
    let json = fleet_json(
        &host,
        &["--devices", "4", "--days", "5", "--licensing-only"],
    );
    let totals = &json["totals"];
    assert_eq!(count(&totals["temporary"]), 4, "{totals}");
    assert_eq!(count(&totals["permanent"]), 0, "{totals}");
    assert_eq!(count(&totals["valid"]), 4 * 4, "{totals}");
    assert_eq!(count(&json["held"]["per-device"]["temporary"]), 4);
    assert_eq!(json["reconciled"], true);
}

#[test]
fn per_user_records_count_each_user_once_and_no_device_holds_a_cal() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Three users on six devices, two per-user CALs: the third user is OverUsed. 70 days of
    // daily sign-ins: each record is renewed in its last 7 days (day 53), none lapses.
    let host = host(&data, "per-user", 2);
    let json = fleet_json(
        &host,
        &[
            "--devices",
            "6",
            "--users",
            "3",
            "--days",
            "70",
            "--pattern",
            "daily",
        ],
    );
    // Per-user CALs are not issued to the device: every connection is admitted without one.
    let totals = &json["totals"];
    assert_eq!(totals["connections"], 420, "{json}");
    assert_eq!(totals["valid"], 420, "{json}");
    assert_eq!(json["held"]["per-device"]["permanent"], 0);
    assert_eq!(json["held"]["per-device"]["temporary"], 0);
    assert_eq!(json["held"]["per-user"]["recorded"], 3, "{json}");
    let report = admin(&data, &["report"]);
    let server = &report["totals"]["per-user"];
    assert_eq!(
        (count(&server["issued"]), count(&server["overused"])),
        (2, 1),
        "{report}"
    );
    assert_eq!(json["reconciled"], true);
    // Each user was recorded on day 0 and renewed once, on day 53: 3 × 2 records, the
    // first three Superseded.
    let all = admin(&data, &["report", "--all"]);
    let statuses: Vec<&str> = all["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.len(), 6, "{all}");
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == "superseded")
            .count(),
        3,
        "{all}"
    );
}

/// The JSON without what depends on when and where it ran.
fn comparable(mut json: Value) -> Value {
    let object = json.as_object_mut().unwrap();
    object.remove("run");
    object.remove("connect");
    json
}

#[test]
fn the_same_seed_gives_the_same_run() {
    // Two fresh servers at the same virtual date. Kept within 45 days: the license server
    // draws each permanent CAL's lifetime (52–89 days) from its own unseeded RNG, so renewal
    // days differ between servers from day 46 on; until then every count follows from the
    // seed (which devices get the pool's CALs depends on arrival order, how many does not).
    let args = [
        "--devices",
        "12",
        "--users",
        "3",
        "--days",
        "40",
        "--pattern",
        "random",
        "--seed",
        "7",
    ];
    let runs: Vec<Value> = (0..2)
        .map(|run| {
            let dir = tempfile::tempdir().unwrap();
            let host = host(&dir.path().join(format!("data-{run}")), "per-device", 8);
            comparable(fleet_json(&host, &args))
        })
        .collect();
    assert_eq!(runs[0], runs[1]);
    // Devices whose temporary CAL could not be upgraded (8 CALs for 12) are challenged and
    // admitted as they are: that is not a per-user record.
    assert_eq!(runs[0]["held"]["per-device"]["temporary"], 4);
    assert_eq!(runs[0]["held"]["per-user"]["recorded"], 0);

    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir.path().join("data"), "per-device", 8);
    let mut other_seed = args;
    other_seed[9] = "8";
    let other = comparable(fleet_json(&host, &other_seed));
    let connections = |json: &Value| -> Vec<u64> {
        json["per_day"]
            .as_array()
            .unwrap()
            .iter()
            .map(|day| count(&day["outcomes"]["connections"]))
            .collect()
    };
    assert_ne!(connections(&runs[0]), connections(&other));
}

/// One line on stderr, no panic, the given status.
fn assert_one_line_error(output: &Output, status: i32, expected: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(status), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(output.stdout.is_empty());
}

#[test]
fn mistakes_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    provision(&data, "per-device", "2022", "2022", 8);
    let data = data.to_str().unwrap();
    // A valid run but for `replaced` (option, value).
    let run = |replaced: &[&str]| {
        let mut args = vec![
            "--connect",
            "127.0.0.1:1",
            "--data",
            data,
            "--devices",
            "3",
            "--days",
            "2",
        ];
        if let [option, value] = replaced {
            match args.iter().position(|arg| arg == option) {
                Some(at) => args[at + 1] = value,
                None => args.extend_from_slice(replaced),
            }
        }
        fleet(&args)
    };
    let cases: [(&[&str], &str); 5] = [
        (&["--devices", "0"], "--devices"),
        (&["--days", "0"], "--days"),
        (&["--pattern", "hourly"], "unknown pattern"),
        (&["--users", "4"], "--users"),
        (&["--concurrency", "0"], "--concurrency"),
    ];
    for (extra, expected) in cases {
        assert_one_line_error(&run(extra), 2, expected);
    }
    // Nothing listens on port 1: the run stops before moving the clock.
    let before = admin(Path::new(data), &["clock", "show"]);
    assert_one_line_error(&run(&[]), 1, "cannot connect to");
    let after = admin(Path::new(data), &["clock", "show"]);
    assert_eq!(before["offset_seconds"], after["offset_seconds"]);

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let output = fleet(&[
        "--connect",
        "127.0.0.1:1",
        "--data",
        empty.to_str().unwrap(),
        "--devices",
        "3",
        "--days",
        "2",
    ]);
    assert_one_line_error(&output, 1, "no license server store");
}

#[test]
fn a_data_directory_that_is_not_the_hosts_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir.path().join("data"), "per-device", 8);
    let other = dir.path().join("other");
    provision(&other, "per-device", "2022", "2022", 8);
    let output = fleet(&[
        "--connect",
        &host.address(),
        "--data",
        other.to_str().unwrap(),
        "--devices",
        "2",
        "--days",
        "5",
        "--pattern",
        "daily",
    ]);
    assert_one_line_error(&output, 1, "are not recorded in");
    // It stopped after the first day: the other directory's clock moved one day at most.
    let offset = admin(&other, &["clock", "show"])["offset_seconds"]
        .as_i64()
        .unwrap();
    assert!(offset <= 86_400, "{offset}");
}

fn open_host(data: &Path, config: &str) -> Result<(), String> {
    Shared::open(Options {
        data: data.to_owned(),
        config: HostConfig::parse(config).unwrap(),
        license_server: None,
        session_seconds: None,
        max_connections: 1,
        max_connections_per_source: 1,
        step_timeout: Duration::from_secs(1),
        record: None,
        pcap: None,
        host_name: "rdpele-test-host".to_owned(),
    })
    .map(drop)
    .map_err(|e| e.to_string())
}

fn key_bits(data: &Path) -> usize {
    let pem = std::fs::read_to_string(data.join(LICENSING_KEY_FILE)).unwrap();
    LicensingPrivateKey::from_pem(&pem)
        .unwrap()
        .public_key()
        .modulus_bits()
}

#[test]
fn the_host_makes_its_licensing_key_of_the_configured_size_and_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key_512 = "[host]\nlicensing-key-bits = 512\n";
    open_host(&data, key_512).unwrap();
    assert_eq!(key_bits(&data), 512);
    // Kept: by the same setting, and without one.
    open_host(&data, key_512).unwrap();
    open_host(&data, "").unwrap();
    assert_eq!(key_bits(&data), 512);
    // Another size is refused, not replaced.
    let error = open_host(&data, "[host]\nlicensing-key-bits = 1024\n").unwrap_err();
    assert!(error.contains("holds a 512-bit key"), "{error}");
    assert_eq!(key_bits(&data), 512);
    // Without the setting a new host's key is 2048-bit, as before.
    let default = dir.path().join("default");
    open_host(&default, "").unwrap();
    assert_eq!(key_bits(&default), 2048);
}

//! `rdpele admin`, run as the binary on a temporary data directory: a device's temporary →
//! permanent → valid → renewed walk through `request` and the virtual clock, the version rule
//! on `install`, revocation and its 20 % limit, the report reconciling with what was issued
//! (and its plot), every malformed argument refused in one line with the store unchanged, and
//! several `request` processes at once on one directory.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, SystemTime};

use rdpele_license_server::clock::{format_instant, parse_instant};
use rdpele_license_server::server::KEY_FILE;
use rdpele_proto::cal::{parse_cal, CalKind};
use serde_json::{json, Value};

const TEST_KEY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../proto/src/cal/testdata/license_server_test_key.pem"
);
const DAY: Duration = Duration::from_secs(86_400);

/// A data directory with the test signing key in it, so no 2048-bit key is generated.
struct Data {
    dir: tempfile::TempDir,
}

impl Data {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::copy(TEST_KEY, dir.path().join(KEY_FILE)).unwrap();
        Self { dir }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `rdpele admin --data DIR ARGS…`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rdpele"));
        command.arg("admin").arg("--data").arg(self.dir.path());
        command.args(args);
        command
    }

    fn run_args(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    /// Runs a command line (its words separated by spaces).
    fn run(&self, line: &str) -> Output {
        self.run_args(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs a command line with `--json`, asserting success, and returns the document.
    fn json(&self, line: &str) -> Value {
        let output = self.run(&format!("--json {line}"));
        assert!(
            output.status.success(),
            "{line}: exit {:?}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// `request` (always JSON) for device `n` as machine WS-n, presenting `cal` if given,
    /// writing the CAL received to `out` if given.
    fn request(&self, n: u8, cal: Option<&Path>, out: Option<&Path>) -> Value {
        let mut line = format!(
            "request --hwid {} --machine WS-{n:02} --user alice",
            hwid(n)
        );
        if let Some(cal) = cal {
            line.push_str(&format!(" --cal {}", cal.display()));
        }
        if let Some(out) = out {
            line.push_str(&format!(" --out {}", out.display()));
        }
        let output = self.run(&line);
        assert!(
            output.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap()
    }

    /// Everything the store holds, as the commands show it: the report with every license,
    /// the settings and the clock offset, without the times that move with real time.
    fn state(&self) -> Value {
        let mut report = self.json("report --all");
        report.as_object_mut().unwrap().remove("now");
        let mut server = self.json("server show");
        server.as_object_mut().unwrap().remove("now");
        let clock = self.json("clock show");
        json!({ "report": report, "server": server, "offset_seconds": clock["offset_seconds"] })
    }
}

fn time(value: &Value) -> SystemTime {
    parse_instant(value.as_str().unwrap()).unwrap()
}

fn rfc3339(at: SystemTime) -> String {
    format_instant(at).unwrap()
}

/// A HWID whose last byte is `n`.
fn hwid(n: u8) -> String {
    format!("0200000011223344556677889900aabbccddee{n:02x}")
}

/// Asserts a refusal: exit `status`, nothing on stdout, exactly one line on stderr.
fn assert_one_line_error(output: &Output, status: i32, what: &str) -> String {
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    assert_eq!(output.status.code(), Some(status), "{what}: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.is_empty(), "{what}: stdout {stdout:?}");
    assert_eq!(stderr.lines().count(), 1, "{what}: {stderr:?}");
    assert!(stderr.starts_with("rdpele admin"), "{what}: {stderr}");
    stderr
}

#[test]
fn a_device_goes_temporary_then_permanent_then_valid_then_renewed() {
    let data = Data::new();
    data.json("server set --activated true");
    let pack = data.json("install --type per-device --version 2022 --count 2");
    assert_eq!(pack["key_pack_id"], 1);
    let cal = data.file("ws-01.cal");

    // First connection: a New License Request gets a 90-day temporary CAL.
    let first = data.request(1, None, Some(&cal));
    assert_eq!(first["outcome"], "temporary", "{first}");
    assert_eq!(first["license_id"], 1);
    assert_eq!(first["reason"], Value::Null);
    assert_eq!(time(&first["expires_at"]), time(&first["now"]) + DAY * 90);
    let temporary = parse_cal(&std::fs::read(&cal).unwrap()).unwrap();
    assert_eq!(temporary.kind, CalKind::Temporary);
    assert_eq!(temporary.client_license.machine, "WS-01");
    assert_eq!(
        hex::encode(temporary.client_license.hwid.to_bytes()),
        hwid(1)
    );
    assert_eq!(
        temporary.client_license.not_after,
        time(&first["expires_at"])
    );

    // Next day it presents the temporary CAL and gets a permanent one of 52–89 days.
    let clock = data.json("clock advance 1d");
    assert_eq!(clock["offset_seconds"], 86_400);
    let second = data.request(1, Some(&cal), Some(&cal));
    assert_eq!(second["outcome"], "permanent", "{second}");
    assert_eq!(second["license_id"], 2);
    let expires = time(&second["expires_at"]);
    let days = expires
        .duration_since(time(&second["now"]))
        .unwrap()
        .as_secs()
        / 86_400;
    assert!((52..=89).contains(&days), "{days} days");
    let permanent = parse_cal(&std::fs::read(&cal).unwrap()).unwrap();
    assert_eq!(permanent.kind, CalKind::Permanent);
    assert_eq!(permanent.client_license.serial().unwrap().license_id, 2);
    assert_eq!(permanent.client_license.serial().unwrap().key_pack_id, 1);

    // With it, the device is valid as it is: nothing written, nothing taken.
    let unused = data.file("unused.cal");
    let third = data.request(1, Some(&cal), Some(&unused));
    assert_eq!(third["outcome"], "valid", "{third}");
    assert_eq!(third["license_id"], 2);
    assert_eq!(time(&third["expires_at"]), expires);
    assert_eq!(third["cal_file"], Value::Null);
    assert!(!unused.exists());
    let report = data.json("report");
    assert_eq!(report["packs"][0]["issued"], 1);
    assert_eq!(report["packs"][0]["available"], 1);

    // Three days before it expires, the next connection renews it.
    data.json(&format!("clock set {}", rfc3339(expires - DAY * 3)));
    let fourth = data.request(1, Some(&cal), Some(&cal));
    assert_eq!(fourth["outcome"], "renewed", "{fourth}");
    assert_eq!(fourth["license_id"], 3);
    assert!(time(&fourth["expires_at"]) > expires);
    let report = data.json("report --all");
    assert_eq!(
        report["packs"][0]["issued"], 1,
        "the renewal took no second CAL"
    );
    let statuses: Vec<&str> = report["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["superseded", "superseded", "active"]);
    assert_eq!(report["licenses"][0]["kind"], "temporary");
}

#[test]
fn a_request_without_a_sign_in_leaves_the_temporary_cal_unvalidated_and_not_upgraded() {
    let data = Data::new();
    data.json("server set --activated true");
    data.json("install --type per-device --version 2022 --count 5");
    let cal = data.file("t.cal");
    let hwid = hwid(1);
    let request = |extra: &str| {
        let line = format!(
            "request --hwid {hwid} --machine WS-01 --user alice --cal {} --out {} {extra}",
            cal.display(),
            cal.display()
        );
        let output = data.run(&line);
        assert!(output.status.success(), "{line}");
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    let first = data.run(&format!(
        "request --hwid {hwid} --machine WS-01 --user alice --out {} --no-sign-in",
        cal.display()
    ));
    let first: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        (&first["outcome"], &first["validated"]),
        (&json!("temporary"), &json!(false)),
        "{first}"
    );
    let second = request("--no-sign-in");
    assert_eq!(
        (&second["outcome"], &second["validated"]),
        (&json!("valid"), &json!(false)),
        "never signed in with: kept, though 5 CALs are free: {second}"
    );
    let third = request("");
    assert_eq!(
        (&third["outcome"], &third["validated"]),
        (&json!("valid"), &json!(true)),
        "{third}"
    );
    let report = data.json("report");
    assert!(report["licenses"][0]["validated"].is_string(), "{report}");
    let fourth = request("");
    assert_eq!(
        (&fourth["outcome"], &fourth["validated"]),
        (&json!("permanent"), &json!(false)),
        "{fourth}"
    );
}

#[test]
fn an_expired_temporary_cal_with_none_free_is_refused_and_so_is_another_hwid() {
    let data = Data::new();
    let cal = data.file("t.cal");
    assert_eq!(data.request(1, None, Some(&cal))["outcome"], "temporary");
    // Not activated: the temporary CAL goes on, then the client is refused after 90 days.
    data.json("clock advance 30d");
    assert_eq!(data.request(1, Some(&cal), None)["outcome"], "valid");
    data.json("clock advance 61d");
    let refused = data.request(1, Some(&cal), None);
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert_eq!(refused["reason"], "temporary_expired_none_free");
    assert_eq!(refused["expires_at"], Value::Null);

    // A CAL presented with another HWID is refused by the protocol: nothing is recorded.
    let before = data.state();
    let other = data.request(2, Some(&cal), None);
    assert_eq!(other["outcome"], "refused");
    assert_eq!(other["reason"], "hwid_mismatch");
    assert_eq!(data.state(), before);
}

#[test]
fn a_license_server_refuses_packs_newer_than_itself() {
    let data = Data::new();
    data.json("server set --version 2019 --activated true");
    let before = data.state();
    let output = data.run("install --type per-device --version 2022 --count 10");
    let stderr = assert_one_line_error(&output, 3, "2022 pack on 2019");
    assert!(
        stderr.contains(
            "a Windows Server 2022 CAL pack cannot be installed on a Windows Server 2019 \
             license server"
        ),
        "{stderr}"
    );
    assert_eq!(data.state(), before);

    // Its own version and older are accepted; then it cannot be set below them.
    data.json("install --type per-device --version 2019 --count 10");
    data.json("install --type per-user --version 2016 --count 3");
    let before = data.state();
    let output = data.run("server set --version 2016");
    let stderr = assert_one_line_error(&output, 3, "downgrade below a pack");
    assert!(stderr.contains("key pack 1 is installed"), "{stderr}");
    assert_eq!(data.state(), before);
    // Upgrading it lets the 2022 pack in.
    data.json("server set --version 2022");
    let pack = data.json("install --type per-device --version 2022 --count 10");
    assert_eq!(pack["key_pack_id"], 3);
}

#[test]
fn a_2019_cal_at_a_2022_host_is_a_first_logon_for_2022() {
    let data = Data::new();
    data.json("server set --activated true --host-version 2019");
    data.json("install --type per-device --version 2019 --count 3");
    let (cal, _) = permanent_device(&data, 1);
    // A 2022 host: the 2019 CAL does not serve it, so the device gets a 2022 temporary CAL
    // even though no 2022 CAL is installed.
    let cal_2022 = data.file("ws-01-2022.cal");
    let output = data.run(&format!(
        "request --hwid {} --cal {} --host-version 2022 --out {}",
        hwid(1),
        cal.display(),
        cal_2022.display()
    ));
    assert!(output.status.success());
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(answer["outcome"], "temporary", "{answer}");
    let issued = parse_cal(&std::fs::read(&cal_2022).unwrap()).unwrap();
    assert_eq!(issued.kind, CalKind::Temporary);
    assert_eq!(issued.product.version.as_dword(), 0x000A_0002);
    // The 2019 host still takes the 2019 CAL.
    assert_eq!(data.request(1, Some(&cal), None)["outcome"], "valid");
}

/// Device `n` with a permanent CAL: its CAL file and the upgrade's answer.
fn permanent_device(data: &Data, n: u8) -> (PathBuf, Value) {
    let cal = data.file(&format!("ws-{n:02}.cal"));
    assert_eq!(data.request(n, None, Some(&cal))["outcome"], "temporary");
    let upgraded = data.request(n, Some(&cal), Some(&cal));
    assert_eq!(upgraded["outcome"], "permanent", "{upgraded}");
    (cal, upgraded)
}

#[test]
fn revocation_frees_the_cal_within_the_20_percent_limit() {
    let data = Data::new();
    data.json("server set --activated true");
    // 5 CALs: 20 % is one revocation at a time.
    data.json("install --type per-device --version 2022 --count 5");
    let (cal_a, a) = permanent_device(&data, 1);
    permanent_device(&data, 2);

    let revoked = data.json(&format!("revoke --hwid {}", hwid(1)));
    assert_eq!(revoked["revoked"], json!([a["license_id"]]));
    assert_eq!(revoked["RevokableCals"], 0);
    assert_eq!(revoked["NextRevokeAllowedOn"], a["expires_at"]);
    assert_eq!(revoked["product_version"], "2022");

    let report = data.json("report");
    assert_eq!(report["packs"][0]["issued"], 1);
    assert_eq!(report["packs"][0]["available"], 4);
    assert_eq!(report["packs"][0]["revoked"], 1);
    let licenses = report["licenses"].as_array().unwrap();
    let row = licenses
        .iter()
        .find(|row| row["license_id"] == a["license_id"])
        .unwrap();
    assert_eq!(row["status"], "revoked");
    assert!(row["revoked"].is_string());

    // The limit is reached: the second device's CAL cannot be revoked until the first expires.
    let before = data.state();
    let output = data.run("revoke --machine ws-02");
    let stderr = assert_one_line_error(&output, 3, "second revocation");
    let next = a["expires_at"].as_str().unwrap();
    assert!(
        stderr.contains(&format!("NextRevokeAllowedOn {next}")),
        "{stderr}"
    );
    assert_eq!(data.state(), before);

    // The revoked device keeps its CAL until it expires.
    assert_eq!(data.request(1, Some(&cal_a), None)["outcome"], "valid");

    // Once it has expired, another CAL can be revoked.
    let after = time(&a["expires_at"]) + Duration::from_secs(60);
    data.json(&format!("clock set {}", rfc3339(after)));
    let (_, c) = permanent_device(&data, 3);
    let revoked = data.json("revoke --machine WS-03");
    assert_eq!(revoked["revoked"], json!([c["license_id"]]));

    // Nothing to revoke: an unknown device, a temporary CAL.
    let output = data.run(&format!("revoke --hwid {}", hwid(9)));
    assert!(assert_one_line_error(&output, 3, "unknown").contains("no CAL was ever issued"));
    data.request(8, None, None);
    let output = data.run(&format!("revoke --hwid {}", hwid(8)));
    assert!(assert_one_line_error(&output, 3, "temporary").contains("Temporary"));
}

#[test]
fn the_report_reconciles_with_what_was_issued_and_plots_the_pools() {
    let data = Data::new();
    data.json("server set --activated true");
    data.json("install --type per-device --version 2022 --count 2");
    data.json("install --type per-user --version 2022 --count 1");
    // Three devices for two CALs: the third stays temporary.
    for n in 1..=3 {
        let cal = data.file(&format!("{n}.cal"));
        data.request(n, None, Some(&cal));
        data.json("clock advance 1d");
        data.request(n, Some(&cal), Some(&cal));
    }
    // Two users on a per-user host for one CAL: the second is OverUsed.
    data.json("server set --mode per-user");
    data.json("clock advance 2d");
    for user in ["bob", "carol"] {
        let output = data.run(&format!(
            "request --hwid {} --machine KIOSK --user {user}",
            hwid(9)
        ));
        assert!(output.status.success());
        let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(answer["outcome"], "permanent", "{answer}");
    }

    let plot = data.file("pool.svg");
    let report = data.json(&format!("report --plot {}", plot.display()));
    let packs = report["packs"].as_array().unwrap();
    let licenses = report["licenses"].as_array().unwrap();
    let count = |keep: &dyn Fn(&Value) -> bool| licenses.iter().filter(|row| keep(row)).count();
    for pack in packs.iter().filter(|pack| pack["key_pack"] == "installed") {
        let id = &pack["key_pack_id"];
        let issued = count(&|row| &row["key_pack_id"] == id && row["status"] == "active");
        let revoked = count(&|row| &row["key_pack_id"] == id && row["status"] == "revoked");
        assert_eq!(pack["issued"], issued, "{pack}");
        assert_eq!(pack["revoked"], revoked, "{pack}");
        assert_eq!(
            pack["available"].as_u64().unwrap(),
            pack["installed"].as_u64().unwrap() - u64::try_from(issued).unwrap()
        );
    }
    let built_in = |name: &str, mode: &str| {
        packs
            .iter()
            .find(|pack| pack["key_pack"] == name && pack["type"] == mode)
            .map_or(0, |pack| pack["issued"].as_u64().unwrap())
    };
    assert_eq!(built_in("temporary", "per-device"), 1);
    assert_eq!(count(&|row| row["kind"] == "temporary"), 1);
    assert_eq!(built_in("overused", "per-user"), 1);
    let overused = count(&|row| row["type"] == "per-user" && row["key_pack_id"].is_null());
    assert_eq!(overused, 1);
    assert_eq!(report["totals"]["per-device"]["issued"], 2);
    assert_eq!(report["totals"]["per-device"]["available"], 0);
    assert_eq!(report["totals"]["per-user"]["overused"], 1);
    assert_eq!(licenses.len(), 5, "two permanent, one temporary, two users");
    let machines: Vec<&str> = licenses
        .iter()
        .map(|row| row["machine"].as_str().unwrap())
        .collect();
    assert!(
        machines.contains(&"WS-01") && machines.contains(&"KIOSK"),
        "{machines:?}"
    );

    // CSV: the same rows, packs then licenses.
    let csv = data.run("report --csv");
    assert!(csv.status.success());
    let csv = String::from_utf8(csv.stdout).unwrap();
    let (pack_csv, license_csv) = csv.split_once("\n\n").unwrap();
    assert_eq!(pack_csv.lines().count(), packs.len() + 1);
    assert!(pack_csv.starts_with("key_pack_id,key_pack,type,version,installed,issued,available"));
    assert_eq!(license_csv.lines().count(), licenses.len() + 1);
    assert!(license_csv.starts_with("license_id,key_pack_id,type,kind,status,version,machine"));

    // The plot: an SVG document with one chart per type and a line per series.
    assert_eq!(report["plot"], plot.display().to_string());
    let svg = std::fs::read_to_string(&plot).unwrap();
    let document = roxmltree::Document::parse(&svg).unwrap();
    assert_eq!(document.root_element().tag_name().name(), "svg");
    let texts: Vec<String> = document
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .map(|text| text.trim().to_owned())
        .collect();
    for expected in [
        "Per-device CALs over virtual time",
        "Per-user CALs over virtual time",
        "installed",
        "in use",
        "temporary",
        "revoked, still held",
        "OverUsed",
    ] {
        assert!(
            texts.iter().any(|text| text == expected),
            "{expected:?}: {texts:?}"
        );
    }
    // The series are drawn 2 px wide (axes and ticks are 1 px): 7 lines and 7 legend marks.
    let series = document
        .descendants()
        .filter(|node| node.has_tag_name("polyline") && node.attribute("stroke-width") == Some("2"))
        .count();
    assert_eq!(series, 14);
}

#[test]
fn malformed_arguments_get_one_line_and_change_nothing() {
    let data = Data::new();
    data.json("server set --activated true");
    data.json("install --type per-device --version 2022 --count 2");
    data.request(1, None, Some(&data.file("ws-01.cal")));
    let not_a_cal = data.file("not-a-cal.bin");
    std::fs::write(&not_a_cal, b"\x30\x03\x02\x01").unwrap();
    let good = hwid(2);
    let before = data.state();

    let request = format!("request --hwid {good} --machine M --user U");
    // Each line is malformed in one way; the line is the assertion message.
    let cases: Vec<String> = vec![
        format!("request --hwid zz{} --machine M --user U", &good[2..]), // bad HWID hex
        "request --hwid 0011 --machine M --user U".into(),               // short HWID
        format!("request --hwid {good}01 --machine M --user U"),         // long HWID
        "revoke --hwid 020".into(),                                      // odd HWID
        format!("request --hwid {good} --machine M"),                    // no user
        format!("{request} --host-version 2023"),                        // unknown host version
        format!("request --hwid {good} --cal {}", not_a_cal.display()),  // not a CAL
        "install --type per-device --version 2023 --count 5".into(),     // unknown pack version
        "install --type per-seat --version 2022 --count 5".into(),       // unknown pack type
        "install --type per-device --version 2022 --count -5".into(),    // negative count
        "install --type per-device --version 2022 --count 0".into(),     // zero count
        "install --type per-device --version 2022 --count ten".into(),   // non-numeric count
        "install --type per-device --version 2022 --count 4294967296".into(), // huge count
        "clock advance 3x".into(),                                       // bad duration unit
        "clock advance -3d".into(),                                      // negative duration
        "clock advance 30".into(),                                       // duration without unit
        "clock set yesterday".into(),                                    // bad time
        "server set --version 2010".into(),                              // unknown server version
        "server set --mode per-seat".into(),                             // unknown mode
        "server set --activated maybe".into(),                           // not a boolean
        "server set".into(),                                             // nothing to set
        format!("revoke --hwid {good} --machine M"),                     // both hwid and machine
        "--json report --csv".into(),                                    // json and csv
        "frobnicate".into(),                                             // unknown command
    ];
    for line in &cases {
        assert_one_line_error(&data.run(line), 2, line);
    }
    let empty = ["request", "--hwid", &good, "--machine", "", "--user", "U"];
    assert_one_line_error(&data.run_args(&empty), 2, "empty machine");
    assert_eq!(data.state(), before);

    // A malformed command does not even create a new data directory.
    let fresh = data.file("fresh");
    let output = Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .arg("admin")
        .arg("--data")
        .arg(&fresh)
        .args([
            "install",
            "--type",
            "per-device",
            "--version",
            "2022",
            "--count",
            "-1",
        ])
        .output()
        .unwrap();
    assert_one_line_error(&output, 2, "fresh directory");
    assert!(!fresh.exists());
}

#[test]
fn the_clock_is_shown_advanced_and_set() {
    let data = Data::new();
    let shown = data.json("clock show");
    assert_eq!(shown["offset_seconds"], 0);
    assert_eq!(shown["offset"], "0s");
    let set = data.json("clock set 2031-03-01T12:00:00+02:00");
    assert!(
        set["now"].as_str().unwrap().starts_with("2031-03-01T10:00"),
        "{set}"
    );
    let advanced = data.json("clock advance 30d");
    assert!(
        advanced["now"]
            .as_str()
            .unwrap()
            .starts_with("2031-03-31T10:00"),
        "{advanced}"
    );
    let offset = |document: &Value| document["offset_seconds"].as_i64().unwrap();
    assert_eq!(offset(&advanced) - offset(&set), 30 * 86_400);
    let advanced = data.json("clock advance 12h");
    assert!(
        advanced["now"]
            .as_str()
            .unwrap()
            .starts_with("2031-03-31T22:00"),
        "{advanced}"
    );
    // Back before real time is allowed.
    let back = data.json("clock set 2001-01-01T00:00:00Z");
    assert!(offset(&back) < 0);
    // The text form says the same.
    let text = String::from_utf8(data.run("clock show").stdout).unwrap();
    assert!(text.starts_with("virtual now 2001-01-01T00:00"), "{text}");
}

#[test]
fn server_show_and_set_cover_the_license_server_and_the_host() {
    let data = Data::new();
    let shown = data.json("server show");
    assert_eq!(shown["license_server"]["version"], "2022");
    assert_eq!(shown["license_server"]["activated"], false);
    assert_eq!(shown["session_host"]["licensing_mode"], "per-device");
    assert_eq!(shown["session_host"]["first_use"], Value::Null);
    let set =
        data.json("server set --version 2025 --activated true --mode per-user --host-version 2019");
    assert_eq!(set["license_server"]["version"], "2025");
    assert_eq!(set["license_server"]["activated"], true);
    assert_eq!(set["session_host"]["licensing_mode"], "per-user");
    assert_eq!(set["session_host"]["version"], "2019");
    // The first request starts the host's grace period.
    data.request(1, None, None);
    let shown = data.json("server show");
    let host = &shown["session_host"];
    let first_use = time(&host["first_use"]);
    assert_eq!(host["grace_period"]["state"], "within");
    assert_eq!(
        time(&host["grace_period"]["ends_at"]),
        first_use + DAY * 120
    );
}

/// `server show` names the product id the CALs carry: the configured one while unactivated,
/// the Windows 2019-format one derived from the signing key once activated — the one an issued
/// CAL's MS_LICENSE_SERVER_INFO holds.
#[test]
fn server_show_names_the_product_id_the_cals_carry() {
    let data = Data::new();
    let shown = data.json("server show");
    let default = shown["license_server"]["product_id"].clone();
    assert_eq!(shown["license_server"]["cal_product_id"], default);
    data.json("server set --activated true");
    let shown = data.json("server show");
    let derived = shown["license_server"]["cal_product_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        shown["license_server"]["product_id"], default,
        "stored as it was"
    );
    assert!(
        derived.starts_with("00429-00000-") && derived.len() == 23,
        "{derived}"
    );
    let cal = data.file("t.cal");
    data.request(1, None, Some(&cal));
    let issued = parse_cal(&std::fs::read(&cal).unwrap()).unwrap();
    assert_eq!(
        issued.license_server.product_id.as_deref(),
        Some(derived.as_str())
    );
}

/// Starts `request` for device `n`, presenting `cal` if given and writing what it receives
/// to `out`.
fn spawn_request(data: &Data, n: u8, cal: Option<&Path>, out: &Path) -> Child {
    let mut line = format!(
        "request --hwid {} --machine WS-{n:02} --user alice",
        hwid(n)
    );
    if let Some(cal) = cal {
        line.push_str(&format!(" --cal {}", cal.display()));
    }
    line.push_str(&format!(" --out {}", out.display()));
    data.command(&line.split_whitespace().collect::<Vec<_>>())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits for each request and returns its answer.
fn answers(children: Vec<Child>) -> Vec<Value> {
    children
        .into_iter()
        .map(|child| {
            let output = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(output.status.success(), "{stderr}");
            serde_json::from_slice(&output.stdout).unwrap()
        })
        .collect()
}

#[test]
fn requests_run_at_once_on_one_directory_and_never_over_allocate() {
    let data = Data::new();
    data.json("server set --activated true");
    data.json("install --type per-device --version 2022 --count 2");
    let cals: Vec<PathBuf> = (1..=6u8).map(|n| data.file(&format!("{n}.cal"))).collect();

    // Six first connections at once: six temporary CALs, six distinct licenses.
    let children = (1..=6u8)
        .zip(&cals)
        .map(|(n, cal)| spawn_request(&data, n, None, cal))
        .collect();
    let mut ids: Vec<u64> = answers(children)
        .iter()
        .map(|answer| {
            assert_eq!(answer["outcome"], "temporary", "{answer}");
            answer["license_id"].as_u64().unwrap()
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);

    // Six upgrades at once for two CALs, beside a report: two permanent, four go on.
    data.json("clock advance 1d");
    let children = (1..=6u8)
        .zip(&cals)
        .map(|(n, cal)| spawn_request(&data, n, Some(cal), cal))
        .collect();
    let report = data.json("report");
    assert!(report["packs"][0]["issued"].as_u64().unwrap() <= 2);
    let mut outcomes: Vec<String> = answers(children)
        .iter()
        .map(|answer| answer["outcome"].as_str().unwrap().to_owned())
        .collect();
    outcomes.sort();
    assert_eq!(
        outcomes,
        ["permanent", "permanent", "valid", "valid", "valid", "valid"]
    );
    let report = data.json("report");
    assert_eq!(report["packs"][0]["issued"], 2);
    assert_eq!(report["packs"][0]["available"], 0);
}

#[test]
fn help_explains_every_command() {
    let cases: [(&str, &str); 11] = [
        ("admin --help", "Exit status"),
        ("admin server --help", "session host"),
        ("admin server show --help", "grace period"),
        ("admin server set --help", "unactivated license server"),
        ("admin install --help", "a 2022 pack on a 2019"),
        ("admin revoke --help", "20 %"),
        ("admin request --help", "New License Request"),
        ("admin clock advance --help", "30d"),
        ("admin clock set --help", "RFC 3339"),
        ("admin clock show --help", "offset"),
        ("admin report --help", "OverUsed"),
    ];
    for (line, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_rdpele"))
            .args(line.split_whitespace())
            .output()
            .unwrap();
        assert!(output.status.success(), "{line}");
        let help = String::from_utf8(output.stdout).unwrap();
        assert!(help.contains(expected), "{line}: {help}");
    }
}

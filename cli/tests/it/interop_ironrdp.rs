// Test code: unwrap/expect/panic/indexing are fine here.
//! IronRDP (ironrdp-connector 0.12, through `interop/ironrdp-client`) against `rdpele serve`:
//! the CAL life of `interop_xfreerdp.rs` with a second real client, whose license cache is one
//! file per CAL holding the server's `pbLicenseInfo` as received.
//!
//! IronRDP sends its HWID, formatted `XXXXXXXX-XXXXXXXX-XXXXXXXX-XXXXXXXX`, as the client machine
//! name of its New License Request (not the GCC client name), so that is the `machine` its CALs
//! and the host's decisions carry.
//!
//! The flows run IronRDP as it is. It writes the encrypted premaster secret a byte short
//! whenever the ciphertext's top byte is zero (about one connection in 128); rdpele serve reads
//! any length from the modulus length to 8 more, so that is the same value. The last test shows
//! IronRDP's other two licensing bugs, against a host configured away from the defaults.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::support::{admin, days_between, inspect, provision, set_clock_before, Host};
use serde_json::Value;

/// Longest one client run may take; a licensed connection takes about 0.1 s, so this only
/// catches hangs.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// IronRDP as a device named `machine` (GCC client name, and the seed of its HWID) whose license
/// cache is its own directory under the test's root.
struct Ironrdp {
    cache: PathBuf,
    machine: String,
    user: String,
}

/// One client run: its exit status and JSON report.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    json: Value,
    stderr: String,
}

impl Outcome {
    fn connected(&self) -> bool {
        self.json["connected"] == true
    }
}

impl Ironrdp {
    fn new(root: &Path, machine: &str, user: &str) -> Ironrdp {
        Ironrdp {
            cache: root.join(format!("ironrdp-{machine}")),
            machine: machine.to_owned(),
            user: user.to_owned(),
        }
    }

    /// One connection through licensing to the end the host chooses.
    fn connect(&self, host: &Host) -> Outcome {
        self.run(host, &[])
    }

    fn run(&self, host: &Host, extra: &[&str]) -> Outcome {
        let started = Instant::now();
        let mut child = Command::new(crate::support::ironrdp_client())
            .args(["--connect", &host.address(), "--cache"])
            .arg(&self.cache)
            .args(["--user", &self.user, "--password", "secret"])
            .args(["--machine", &self.machine, "--timeout-secs", "30"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > CLIENT_DEADLINE {
                let _ = child.kill();
                let _ = child.wait();
                panic!("rdpele-ironrdp-client did not finish within {CLIENT_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let (mut stdout, mut stderr) = (String::new(), String::new());
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        let json: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("client output is not JSON ({e}): {stdout:?}\n{stderr}"));
        eprintln!(
            "ironrdp {} connection: {:?}, connected={}, licensing={}",
            self.machine,
            started.elapsed(),
            json["connected"],
            json["licensing"]
        );
        Outcome {
            status,
            json,
            stderr,
        }
    }

    /// The one CAL in the cache, if any.
    fn cal(&self) -> Option<PathBuf> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.cache)
            .ok()?
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cal"))
            .collect();
        assert!(files.len() <= 1, "one device, one CAL: {files:?}");
        files.pop()
    }
}

/// The machine name IronRDP sends for the HWID `hwid` (20 bytes in hex: PlatformId, then Data1..4
/// little-endian): `format!("{:X}-{:X}-{:X}-{:X}")` of the four data words.
fn ironrdp_machine_name(hwid: &str) -> String {
    let bytes: Vec<u8> = (0..hwid.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hwid[i..i + 2], 16).unwrap())
        .collect();
    assert_eq!(bytes.len(), 20, "{hwid}");
    bytes[4..]
        .chunks(4)
        .map(|word| format!("{:X}", u32::from_le_bytes(word.try_into().unwrap())))
        .collect::<Vec<_>>()
        .join("-")
}

/// Asserts that a run reached the active session, with everything needed to see why not.
fn assert_connected(outcome: &Outcome, host: &Host) {
    assert!(
        outcome.connected() && outcome.status.success(),
        "client: {}\n{}\nhost:\n{}",
        outcome.json,
        outcome.stderr,
        host.log()
    );
}

#[test]
fn temporary_then_permanent_then_renewed() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let client = Ironrdp::new(root.path(), "pc-01", "alice");

    // First logon: a 90-day temporary CAL, stored by the client.
    let first = client.connect(&host);
    assert_connected(&first, &host);
    assert_eq!(first.json["licensing"], "license stored");
    let cal = client.cal().unwrap();
    assert_eq!(
        Path::new(first.json["stored_license"].as_str().unwrap()),
        cal
    );
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["validity_days"], 90);
    assert_eq!(temporary["client_license"]["user"], "alice");
    let hwid = temporary["client_license"]["hwid"]
        .as_str()
        .unwrap()
        .to_owned();
    let name = ironrdp_machine_name(&hwid);
    assert_eq!(temporary["client_license"]["machine"], name.as_str());
    // rdpele's defaults (an X.509 chain, MAC-only checking) take IronRDP's Platform Challenge
    // Response as it is.
    let temporary_bytes = std::fs::read(&cal).unwrap();

    // Second logon: it presents the temporary CAL, an Upgrade License replaces it with a
    // permanent one of 52-89 days.
    let second = client.connect(&host);
    assert_connected(&second, &host);
    assert_eq!(second.json["licensing"], "license presented and replaced");
    assert_eq!(
        second.json["server_licensing"],
        serde_json::json!(["LICENSE_REQUEST", "PLATFORM_CHALLENGE", "UPGRADE_LICENSE"])
    );
    let permanent = inspect(&cal);
    assert_eq!(permanent["kind"], "permanent", "{}", host.log());
    let days = permanent["client_license"]["validity_days"]
        .as_i64()
        .unwrap();
    assert!((52..=89).contains(&days), "{days} days");
    assert_ne!(std::fs::read(&cal).unwrap(), temporary_bytes);
    assert_eq!(permanent["client_license"]["hwid"], hwid.as_str());

    // Within 7 days of expiry: the third logon renews it.
    let expires = permanent["client_license"]["not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    set_clock_before(&data, &expires, 5);
    let third = client.connect(&host);
    assert_connected(&third, &host);
    assert_eq!(third.json["licensing"], "license presented and replaced");
    let renewed = inspect(&cal);
    assert_eq!(renewed["kind"], "permanent");
    let new_expiry = renewed["client_license"]["not_after"].as_str().unwrap();
    assert!(
        days_between(&expires, new_expiry) > 40,
        "{expires} -> {new_expiry}"
    );

    // A fourth logon presents a CAL with time left: STATUS_VALID_CLIENT, nothing issued.
    let fourth = client.connect(&host);
    assert_connected(&fourth, &host);
    assert_eq!(fourth.json["licensing"], "license presented");
    assert_eq!(
        fourth.json["server_licensing"],
        serde_json::json!(["LICENSE_REQUEST", "ERROR_ALERT"])
    );

    // One decision per logon, each naming the client as IronRDP did.
    let decisions = host.decisions();
    let outcomes = ["temporary", "permanent", "renewed", "valid"];
    for (line, outcome) in decisions.iter().zip(outcomes) {
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
        assert!(line.contains(&format!("client=\"{name}\"")), "{line}");
        assert!(line.contains(&format!("hwid=\"{hwid}\"")), "{line}");
    }
    assert_eq!(decisions.len(), 4, "{decisions:#?}");
    let report = admin(&data, &["report"]);
    assert_eq!(report["totals"]["per-device"]["issued"], 1);
}

#[test]
fn an_exhausted_pool_leaves_the_next_device_temporary_until_it_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 1);
    let host = Host::start(&data, &[]);

    let first = Ironrdp::new(root.path(), "pc-01", "alice");
    assert_connected(&first.connect(&host), &host);
    assert_connected(&first.connect(&host), &host);
    assert_eq!(inspect(&first.cal().unwrap())["kind"], "permanent");

    // The only CAL is taken: the second device keeps its temporary CAL.
    let second = Ironrdp::new(root.path(), "pc-02", "bob");
    assert_connected(&second.connect(&host), &host);
    let cal = second.cal().unwrap();
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    assert_connected(&second.connect(&host), &host);
    assert_eq!(inspect(&cal)["kind"], "temporary");
    let before = std::fs::read(&cal).unwrap();
    let name = ironrdp_machine_name(temporary["client_license"]["hwid"].as_str().unwrap());

    // The first device renews within its last week, so its CAL is still held when the second
    // device's temporary CAL (90 days, longer than any permanent one) expires.
    let held = inspect(&first.cal().unwrap());
    set_clock_before(
        &data,
        held["client_license"]["not_after"].as_str().unwrap(),
        5,
    );
    let renewal = first.connect(&host);
    assert_connected(&renewal, &host);
    assert_eq!(renewal.json["licensing"], "license presented and replaced");
    assert_eq!(inspect(&first.cal().unwrap())["kind"], "permanent");

    // Its temporary CAL expires with none free: refused, with the Licensing Error Message and
    // the ERRINFO_LICENSE_* code the client saw.
    let expires = temporary["client_license"]["not_after"].as_str().unwrap();
    set_clock_before(&data, expires, 0);
    admin(&data, &["clock", "advance", "1d"]);
    let refused = second.connect(&host);
    assert!(
        !refused.status.success(),
        "{}\n{:#?}\n{}",
        refused.json,
        host.decisions(),
        inspect(&cal)
    );
    assert_eq!(refused.json["connected"], false);
    assert_eq!(refused.json["licensing"], "license presented");
    let error = refused.json["error"].as_str().unwrap();
    assert!(
        error.contains("LicensingErrorMessage") && error.contains("InvalidClient"),
        "{error}"
    );
    assert_eq!(
        refused.json["server_error"]["code"], "ERR_INVALID_CLIENT",
        "{}",
        refused.json
    );
    assert_eq!(
        refused.json["server_error_info"], "ERRINFO_LICENSE_NO_LICENSE",
        "{}",
        refused.json
    );
    assert_eq!(std::fs::read(&cal).unwrap(), before, "the CAL is kept");
    let last = host.decisions().pop().unwrap();
    assert!(last.contains("outcome=\"refused\""), "{last}");
    assert!(last.contains(&format!("client=\"{name}\"")), "{last}");
    assert!(last.contains("ERR_INVALID_CLIENT"), "{last}");
}

#[test]
fn a_2019_pack_on_a_2022_host_yields_no_permanent_cal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2019", 5);
    let host = Host::start(&data, &[]);
    let client = Ironrdp::new(root.path(), "pc-01", "alice");
    assert_connected(&client.connect(&host), &host);
    assert_connected(&client.connect(&host), &host);
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
    for (machine, user) in [("pc-01", "alice"), ("pc-02", "bob")] {
        let client = Ironrdp::new(root.path(), machine, user);
        assert_connected(&client.connect(&host), &host);
        assert_connected(&client.connect(&host), &host);
        // Per-user CALs are not issued to the device (DESIGN §5): nothing is stored.
        assert!(client.cal().is_none(), "{}", host.log());
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

/// IronRDP 0.12's two deterministic licensing bugs, as a host configured away from rdpele's
/// defaults shows them, and the client's workarounds that get it through: with a proprietary
/// certificate it encrypts the premaster secret to a byte-reversed key (the host derives other
/// keys and IronRDP rejects the Platform Challenge's MAC); with strict challenge checking its
/// response data, led by 8 zero bytes, is refused.
#[test]
fn ironrdp_needs_its_workarounds_against_a_proprietary_certificate_and_strict_checking() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let config = |name: &str, text: &str| {
        let path = root.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let applied = |outcome: &Outcome| -> Vec<String> {
        outcome.json["workarounds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|name| name.as_str().unwrap().to_owned())
            .collect()
    };

    let proprietary = config(
        "proprietary.toml",
        "[host]\ncertificate = \"proprietary\"\nchallenge-check = \"strict\"\n",
    );
    let host = Host::start(&data, &["--config", &proprietary]);
    let client = Ironrdp::new(root.path(), "pc-01", "alice");
    let plain = client.connect(&host);
    assert_eq!(plain.json["connected"], false, "{}", plain.json);
    let error = plain.json["error"].as_str().unwrap();
    assert!(
        error.contains("ClientPlatformChallengeResponse") && error.contains("MAC checksum"),
        "{error}"
    );
    let fixed = client.run(&host, &["--workaround", "all"]);
    assert_connected(&fixed, &host);
    assert_eq!(fixed.json["licensing"], "license stored");
    assert_eq!(
        applied(&fixed),
        ["proprietary-key", "challenge-response-padding"]
    );
    assert_eq!(inspect(&client.cal().unwrap())["kind"], "temporary");
    drop(host);

    let strict = config("strict.toml", "[host]\nchallenge-check = \"strict\"\n");
    let host = Host::start(&data, &["--config", &strict]);
    let client = Ironrdp::new(root.path(), "pc-02", "bob");
    let plain = client.connect(&host);
    assert_eq!(plain.json["connected"], false, "{}", plain.json);
    assert_eq!(
        plain.json["server_error"]["code"], "ERR_INVALID_MESSAGE_LEN",
        "{}",
        plain.json
    );
    assert_eq!(
        plain.json["server_error_info"],
        "ERRINFO_LICENSE_BAD_CLIENT_MSG"
    );
    let fixed = client.run(&host, &["--workaround", "challenge-response-padding"]);
    assert_connected(&fixed, &host);
    assert_eq!(applied(&fixed), ["challenge-response-padding"]);
}

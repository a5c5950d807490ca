//! `rdpele cal inspect` and `rdpele cal issue`, run as the binary: the Windows samples inspect
//! with their fields, issued CALs inspect back as issued and are readable by OpenSSL, malformed
//! input ends with one line naming the place.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures");
const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/src/cal/testdata");

fn rdpele(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .args(args)
        .output()
        .unwrap()
}

fn inspect_json(path: &Path) -> Value {
    let output = rdpele(&["cal", "inspect", "--json", path.to_str().unwrap()]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn test_key() -> PathBuf {
    Path::new(TESTDATA).join("license_server_test_key.pem")
}

#[test]
fn inspect_shows_the_windows_cal() {
    let json = inspect_json(&Path::new(CAPTURES).join("cal_temporary.p7b"));
    let client = &json["client_license"];
    assert_eq!(client["machine"], "RODENT");
    assert_eq!(client["user"], "Administrator");
    assert_eq!(client["not_before"], "2007-06-20T14:51:35Z");
    assert_eq!(client["not_after"], "2007-09-18T14:51:35Z");
    assert_eq!(client["kind"], "temporary");
    assert_eq!(client["hwid"], "02000000f159873ec9d898af2402f8f3293af026");
    assert_eq!(
        client["encoded_hwid"],
        "d4170a79dcb692b3b8fcc0832c8d401d970f89ab"
    );
    // What the CAL carries for the HWID: masked, not hashed, so the same 20 bytes.
    assert_eq!(
        client["hwid_hash"],
        "d4170a79dcb692b3b8fcc0832c8d401d970f89ab"
    );
    assert_eq!(client["validity_days"], 90);
    assert_eq!(json["license_server"]["name"], "RODENT");
    assert_eq!(json["license_server"]["domain"], "WORKGROUP");
    assert_eq!(
        json["license_server"]["product_id"],
        "78440-006-5867045-70347"
    );
    assert_eq!(json["cal_type"], "per_device");
    assert_eq!(json["kind"], "temporary");
    assert_eq!(json["product"]["product_id"], "A02");
    assert_eq!(json["product"]["sku"], "A02-6.00-S");
    assert_eq!(json["product"]["flags"], 0x8064_8000_u32);
    assert_eq!(json["container"], "pkcs7");
}

#[test]
fn inspect_reads_a_new_license_info_as_the_cal_in_it() {
    let mut direct = inspect_json(&Path::new(CAPTURES).join("cal_temporary.p7b"));
    let mut wrapped = inspect_json(&Path::new(CAPTURES).join("new_license_info.bin"));
    assert_eq!(wrapped["container"], "new_license_info");
    direct["container"] = Value::Null;
    wrapped["container"] = Value::Null;
    assert_eq!(direct, wrapped);
    let json = inspect_json(&Path::new(CAPTURES).join("windows2019_new_license_info.bin"));
    assert_eq!(json["client_license"]["machine"], "ubuntu2");
    // The serialNumber attribute "1hcLfaUVKmyslQWuhjcJzJTBDNc=", base64-decoded.
    assert_eq!(
        json["client_license"]["hwid_hash"],
        "d6170b7da5152a6cac9505ae863709cc94c10cd7"
    );
    assert_eq!(
        json["client_license"]["hwid"],
        "0000010488fa3fe1ddb15d828eb8b1222af4755a"
    );
    assert_eq!(json["product"]["sku"], "A02-10.01-S");
    assert_eq!(json["ms_18_9"], "07000000");
    assert_eq!(json["certificates"].as_array().unwrap().len(), 4);
}

#[test]
fn inspect_prints_a_tree_by_default() {
    let output = rdpele(&[
        "cal",
        "inspect",
        Path::new(CAPTURES)
            .join("cal_temporary.p7b")
            .to_str()
            .unwrap(),
    ]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for line in [
        "kind: \"temporary\"",
        "client_license:\n  machine: \"RODENT\"",
        "  not_before: \"2007-06-20T14:51:35Z\"",
        "license_server:\n  name: \"RODENT\"",
        "  flag_names: [\"TEMPORARY_LICENSE\", \"LICENSE_ENFORCED\"]",
    ] {
        assert!(text.contains(line), "{line:?} not in:\n{text}");
    }
}

#[test]
fn malformed_input_ends_with_one_line_naming_structure_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let cal = std::fs::read(Path::new(CAPTURES).join("cal_temporary.p7b")).unwrap();
    let path = dir.path().join("truncated.p7b");
    std::fs::write(&path, &cal[..1000]).unwrap();
    let output = rdpele(&["cal", "inspect", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("CAL.ContentInfo at byte offset 1: declared length 1941"),
        "{stderr}"
    );
    let output = rdpele(&["cal", "inspect", "/nonexistent/cal.p7b"]);
    assert_eq!(output.status.code(), Some(1));
}

fn issue(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let key = test_key();
    let mut args = vec![
        "cal",
        "issue",
        "--machine",
        "WORKSTATION-7",
        "--user",
        "alice",
        "--hwid",
        "00000104 88fa3fe1 ddb15d82 8eb8b122 2af4755a",
        "--days",
        "60",
        "--server-key",
        key.to_str().unwrap(),
        "--not-before",
        "2024-05-01T12:00:00Z",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = rdpele(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    out
}

#[test]
fn issue_then_inspect_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let path = issue(
        dir.path(),
        "permanent.cal",
        &[
            "--kind",
            "permanent",
            "--type",
            "per-user",
            "--product-version",
            "10.1",
            "--key-pack-id",
            "4",
            "--license-id",
            "99",
        ],
    );
    let json = inspect_json(&path);
    let client = &json["client_license"];
    assert_eq!(client["machine"], "WORKSTATION-7");
    assert_eq!(client["user"], "alice");
    assert_eq!(client["hwid"], "0000010488fa3fe1ddb15d828eb8b1222af4755a");
    assert_eq!(client["not_before"], "2024-05-01T12:00:00Z");
    assert_eq!(client["not_after"], "2024-06-30T12:00:00Z");
    assert_eq!(client["kind"], "permanent");
    assert_eq!(client["key_pack_id"], 4);
    assert_eq!(client["license_id"], 99);
    assert_eq!(json["kind"], "permanent");
    assert_eq!(json["cal_type"], "per_user");
    assert_eq!(json["product"]["sku"], "C50-10.01-S");
    assert_eq!(json["license_server"]["name"], "RDPELE-LS");
    assert_eq!(json["license_server"]["domain"], "WORKGROUP");
    // The same arguments give the same bytes.
    let again = issue(
        dir.path(),
        "again.cal",
        &[
            "--kind",
            "permanent",
            "--type",
            "per-user",
            "--product-version",
            "10.1",
            "--key-pack-id",
            "4",
            "--license-id",
            "99",
        ],
    );
    assert_eq!(std::fs::read(&path).unwrap(), std::fs::read(again).unwrap());
}

#[test]
fn openssl_reads_an_issued_cal() {
    // Needs /usr/bin/openssl (Debian's `openssl` package); fails rather than skips without it.
    let dir = tempfile::tempdir().unwrap();
    let path = issue(dir.path(), "temporary.p7b", &["--kind", "temporary"]);
    let output = Command::new("openssl")
        .args([
            "pkcs7",
            "-inform",
            "DER",
            "-print_certs",
            "-text",
            "-noout",
            "-in",
        ])
        .arg(&path)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        "Not Before: May  1 12:00:00 2024 GMT",
        "Not After : Jun 30 12:00:00 2024 GMT",
        "1.3.6.1.4.1.311.18.5: critical",
        "Signature Algorithm: sha1WithRSA",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn issue_without_a_key_generates_one_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("generated.cal");
    let output = rdpele(&[
        "cal",
        "issue",
        "--machine",
        "M",
        "--user",
        "U",
        "--hwid",
        "0000000000000000000000000000000000000000",
        "--kind",
        "temporary",
        "--days",
        "90",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("generating a 2048-bit RSA key"));
    let json = inspect_json(&out);
    assert_eq!(json["client_license"]["validity_days"], 90);
}

#[test]
fn issue_refuses_bad_arguments_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.cal");
    for (hwid, days, not_before) in [
        ("0102", "90", "2024-05-01T12:00:00Z"),
        (
            "0000000000000000000000000000000000000000",
            "0",
            "2024-05-01T12:00:00Z",
        ),
        (
            "0000000000000000000000000000000000000000",
            "90",
            "yesterday",
        ),
    ] {
        let output = rdpele(&[
            "cal",
            "issue",
            "--machine",
            "M",
            "--user",
            "U",
            "--hwid",
            hwid,
            "--kind",
            "temporary",
            "--days",
            days,
            "--not-before",
            not_before,
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(output.status.code(), Some(2));
        assert_eq!(String::from_utf8_lossy(&output.stderr).lines().count(), 1);
        assert!(!out.exists());
    }
}

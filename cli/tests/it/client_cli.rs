// Test code: unwrap/expect/panic/indexing are fine here.
//! `rdpele client` as a process: the CAL life against `rdpele serve` (temporary, permanent,
//! renewed), `--reset`, the `.reg` export/import round trip, the FreeRDP layout shared with
//! xfreerdp 2.11.7, and licensing against a real server, xrdp 0.9.21, on loopback.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{
    admin, days_between, inspect, openssl, provision, set_clock_before, Host, Xfreerdp, RDPELE,
};

/// One `rdpele client` run.
struct ClientRun {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

impl ClientRun {
    /// The `--json` object.
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: {:?}\nstderr: {}", self.stdout, self.stderr))
    }
}

/// `rdpele client ARGS`.
fn rdpele_client(args: &[&str]) -> ClientRun {
    let output = Command::new(RDPELE)
        .arg("client")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    ClientRun {
        status: output.status,
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// One connection of machine `pc` (user alice) with the store at `store`, printed as JSON;
/// `extra` adds flags. The run must exit 0.
fn connect(address: &str, store: &Path, machine: &str, extra: &[&str]) -> Value {
    let store = store.to_str().unwrap();
    let mut args = vec![
        "--connect",
        address,
        "--store",
        store,
        "--machine",
        machine,
        "--user",
        "alice",
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = rdpele_client(&args);
    assert!(
        run.status.success(),
        "{:?}\n{}\n{}",
        run.status,
        run.stdout,
        run.stderr
    );
    run.json()
}

/// The files of a store directory, relative path → bytes, sorted.
fn files(root: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_owned();
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The names in `Store/`.
fn license_files(store: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(store.join("Store"))
        .map(|entries| {
            entries
                .map(|entry| entry.unwrap().file_name().into_string().unwrap())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn temporary_then_permanent_then_renewed_against_rdpele_serve() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-01");
    let cal = store.join("Store/LICENSE000");

    // First logon: a 90-day temporary CAL in Store/LICENSE000 for this store's HWID.
    let first = connect(&host.address(), &store, "pc-01", &[]);
    assert_eq!(first["outcome"], "temporary", "{first}");
    assert_eq!(first["error"], Value::Null);
    // The session became active; the client then left by itself.
    assert_eq!(first["active"], true);
    assert_eq!(first["ending"], "the client disconnected");
    let hwid = first["hwid"].as_str().unwrap().to_owned();
    assert!(hwid.starts_with("00000104"), "{hwid}");
    assert_eq!(
        hex_file(&store.join("HardwareID/ClientHWID")),
        hwid,
        "the HWID file holds the 20 bytes the client sent"
    );
    let temporary = inspect(&cal);
    assert_eq!(temporary["container"], "new_license_info");
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["validity_days"], 90);
    assert_eq!(temporary["client_license"]["machine"], "pc-01");
    assert_eq!(temporary["client_license"]["user"], "alice");
    assert_eq!(temporary["client_license"]["hwid"], hwid.as_str());
    assert_eq!(
        first["expires_at"],
        temporary["client_license"]["not_after"]
    );

    // Second: the temporary CAL presented, a permanent one replaces it in the same file.
    let second = connect(&host.address(), &store, "pc-01", &[]);
    assert_eq!(second["outcome"], "permanent", "{second}");
    let permanent = inspect(&cal);
    assert_eq!(permanent["kind"], "permanent");
    assert_eq!(license_files(&store), ["LICENSE000"]);
    let expires = permanent["client_license"]["not_after"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(second["expires_at"], expires.as_str());

    // Five days before it expires: renewed.
    set_clock_before(&data, &expires, 5);
    let third = connect(&host.address(), &store, "pc-01", &[]);
    assert_eq!(third["outcome"], "renewed", "{third}");
    let renewed = inspect(&cal);
    assert_eq!(renewed["kind"], "permanent");
    let new_expiry = renewed["client_license"]["not_after"].as_str().unwrap();
    assert!(
        days_between(&expires, new_expiry) > 40,
        "{expires} -> {new_expiry}"
    );
    assert_eq!(third["expires_at"], new_expiry);

    // Next logon, in words: valid as it is, with the CAL's expiry.
    let text = rdpele_client(&[
        "--connect",
        &host.address(),
        "--store",
        store.to_str().unwrap(),
        "--machine",
        "pc-01",
        "--user",
        "alice",
    ]);
    assert!(text.status.success(), "{}", text.stderr);
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines[0], "outcome: valid", "{}", text.stdout);
    assert_eq!(lines[1], format!("expires: {new_expiry}"));
    assert!(text.stdout.contains(&hwid), "{}", text.stdout);

    // The host saw one device throughout.
    let decisions = host.decisions();
    let outcomes = ["temporary", "permanent", "renewed", "valid"];
    assert_eq!(decisions.len(), outcomes.len(), "{decisions:#?}");
    for (line, outcome) in decisions.iter().zip(outcomes) {
        assert!(line.contains(&format!("outcome=\"{outcome}\"")), "{line}");
        assert!(line.contains(&format!("hwid=\"{hwid}\"")), "{line}");
    }
}

/// Standard RDP Security against `rdpele serve` at its default settings (security layer
/// "negotiate", encryption level Client Compatible): a client that asks for PROTOCOL_RDP only
/// goes temporary, permanent, valid as over TLS, with every PDU after the Security Exchange
/// encrypted at the strongest method it offers (128-bit RC4).
#[test]
fn temporary_then_permanent_over_standard_rdp_security_against_rdpele_serve() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-rdp");
    let rdp = ["--security", "rdp"];

    let first = connect(&host.address(), &store, "pc-rdp", &rdp);
    assert_eq!(first["outcome"], "temporary", "{first}");
    assert_eq!(first["active"], true, "{first}");
    let second = connect(&host.address(), &store, "pc-rdp", &rdp);
    assert_eq!(second["outcome"], "permanent", "{second}");
    assert_eq!(
        inspect(&store.join("Store/LICENSE000"))["kind"],
        "permanent"
    );
    let third = connect(&host.address(), &store, "pc-rdp", &rdp);
    assert_eq!(third["outcome"], "valid", "{third}");
    assert_eq!(third["active"], true, "{third}");

    let log = host.log();
    let secured: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Standard RDP Security"))
        .collect();
    assert_eq!(secured.len(), 3, "{log}");
    for line in secured {
        assert!(line.contains("method=128-bit RC4"), "{line}");
        assert!(line.contains("level=ClientCompatible"), "{line}");
        // The emulated client announces RNS_UD_CS_STRONG_ASYMMETRIC_KEYS, as mstsc does.
        assert!(line.contains("key_bits=2048"), "{line}");
    }
    assert!(!log.contains("WARN"), "{log}");
}

/// `[host] security` and `encryption-level` decide what the host takes: "rdp" refuses a
/// client that asks for TLS only with SSL_NOT_ALLOWED_BY_SERVER and takes one that
/// negotiates (it asks again without TLS); "tls" refuses PROTOCOL_RDP with
/// SSL_REQUIRED_BY_SERVER; each encryption level licenses the emulated client.
#[test]
fn the_hosts_security_layer_and_encryption_level_are_what_its_config_says() {
    let root = tempfile::tempdir().unwrap();
    let cases: [(&str, &str, Result<&str, &str>); 6] = [
        (
            "security = \"rdp\"",
            "negotiate",
            Ok("level=ClientCompatible"),
        ),
        (
            "security = \"rdp\"",
            "tls",
            Err("SSL_NOT_ALLOWED_BY_SERVER"),
        ),
        ("security = \"tls\"", "rdp", Err("SSL_REQUIRED_BY_SERVER")),
        ("encryption-level = \"low\"", "rdp", Ok("level=Low")),
        ("encryption-level = \"high\"", "rdp", Ok("level=High")),
        ("encryption-level = \"none\"", "rdp", Ok("level=None")),
    ];
    for (index, (setting, security, expected)) in cases.into_iter().enumerate() {
        let data = root.path().join(format!("data-{index}"));
        provision(&data, "per-device", "2022", "2022", 5);
        let config = root.path().join(format!("serve-{index}.toml"));
        std::fs::write(&config, format!("[host]\n{setting}\n")).unwrap();
        let host = Host::start(&data, &["--config", config.to_str().unwrap()]);
        let store = root.path().join(format!("pc-{index}"));
        let run = rdpele_client(&[
            "--connect",
            &host.address(),
            "--store",
            store.to_str().unwrap(),
            "--machine",
            "pc-cfg",
            "--security",
            security,
            "--json",
        ]);
        match expected {
            Ok(logged) => {
                let report = run.json();
                assert_eq!(report["outcome"], "temporary", "{setting}: {report}");
                assert_eq!(report["active"], true, "{setting}: {report}");
                let log = host.log();
                let secured = log
                    .lines()
                    .find(|line| line.contains("Standard RDP Security"))
                    .unwrap_or_else(|| panic!("{setting}: {log}"));
                assert!(secured.contains(logged), "{setting}: {secured}");
            }
            Err(failure) => {
                assert_eq!(run.status.code(), Some(1), "{setting}: {}", run.stdout);
                let report = run.json();
                let error = report["error"].as_str().unwrap();
                assert!(error.contains(failure), "{setting}: {error}");
                host.log_once_it_holds(failure);
            }
        }
    }
}

/// The PKCS#7 CAL inside a stored `Store/LICENSE000` (a NEW_LICENSE_INFO).
fn stored_cal(path: &Path) -> Vec<u8> {
    use rdpele_proto::wire::{NewLicenseInfo, Wire};
    let bytes = std::fs::read(path).unwrap();
    NewLicenseInfo::decode(&bytes)
        .unwrap()
        .license_info
        .to_vec()
}

#[test]
fn an_activated_license_server_sends_the_four_certificate_chain_and_an_unactivated_one_two() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-09");
    let cal = store.join("Store/LICENSE000");

    for (round, outcome) in ["temporary", "permanent"].into_iter().enumerate() {
        let run = connect(&host.address(), &store, "pc-09", &[]);
        assert_eq!(run["outcome"], outcome, "{run}");
        let shown = inspect(&cal);
        let certificates = shown["certificates"].as_array().unwrap();
        let names: Vec<(&str, &str)> = certificates
            .iter()
            .map(|c| {
                (
                    c["subject"].as_str().unwrap(),
                    c["issuer"].as_str().unwrap(),
                )
            })
            .collect();
        // Chain order, as captures/windows2019_cal_temporary.p7b: root (self-signed),
        // intermediate, the license server's certificate, the client license.
        assert_eq!(names.len(), 4, "{names:?}");
        assert!(
            names[0].0.ends_with("CN=rdpele Clearinghouse Root 2011"),
            "{names:?}"
        );
        assert_eq!(names[0].0, names[0].1);
        assert_eq!(names[1], ("CN=rdpeleLSRAsha2RDSLM", names[0].0));
        assert_eq!(names[2], ("CN=RDPELE-LS", "CN=rdpeleLSRAsha2RDSLM"));
        assert_eq!(names[3].1, "CN=RDPELE-LS");
        let serials: Vec<usize> = certificates
            .iter()
            .map(|c| c["serial_number"].as_str().unwrap().len() / 2)
            .collect();
        assert_eq!(serials, [16, 19, 19, 5], "the sample's serial lengths");
        assert_eq!(shown["ms_18_9"], "07000000");
        let product_id = shown["license_server"]["product_id"].as_str().unwrap();
        assert!(product_id.starts_with("00429-00000-"), "{product_id}");

        // What OpenSSL makes of the chain the client stored: it verifies, key sizes and
        // signature algorithms as the sample's.
        let dir = tempfile::tempdir().unwrap();
        let p7b = dir.path().join("cal.p7b");
        std::fs::write(&p7b, stored_cal(&cal)).unwrap();
        let pem = openssl(&["pkcs7", "-inform", "DER", "-print_certs", "-in"], &p7b);
        let blocks: Vec<String> = pem
            .split_inclusive("-----END CERTIFICATE-----\n")
            .filter(|block| block.contains("BEGIN CERTIFICATE"))
            .map(str::to_owned)
            .collect();
        assert_eq!(blocks.len(), 4, "round {round}");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        let root_pem = write("root.pem", &blocks[0]);
        let intermediate_pem = write("intermediate.pem", &blocks[1]);
        let license_server_pem = write("license_server.pem", &blocks[2]);
        let verified = openssl(
            &[
                "verify",
                "-CAfile",
                root_pem.to_str().unwrap(),
                "-untrusted",
                intermediate_pem.to_str().unwrap(),
            ],
            &license_server_pem,
        );
        assert!(verified.trim_end().ends_with(": OK"), "{verified}");
        let text = openssl(
            &[
                "pkcs7",
                "-inform",
                "DER",
                "-print_certs",
                "-text",
                "-noout",
                "-in",
            ],
            &p7b,
        );
        assert_eq!(
            text.matches("Public-Key: (4096 bit)").count(),
            1,
            "the root"
        );
        assert_eq!(text.matches("Public-Key: (2048 bit)").count(), 3);
        assert_eq!(
            text.matches("Signature Algorithm: sha256WithRSAEncryption")
                .count(),
            6,
            "three certificates, each naming it twice"
        );
        assert_eq!(
            text.matches("Signature Algorithm: sha1WithRSA\n").count(),
            2
        );
        assert!(text.contains("TLS~BASIC"), "{text}");
    }

    // Unactivated: the 2008 shape, a self-signed certificate and the client license.
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    admin(&data, &["server", "set", "--activated", "false"]);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-10");
    let run = connect(&host.address(), &store, "pc-10", &[]);
    assert_eq!(run["outcome"], "temporary", "{run}");
    let shown = inspect(&store.join("Store/LICENSE000"));
    let certificates = shown["certificates"].as_array().unwrap();
    assert_eq!(certificates.len(), 2, "{shown:#}");
    assert_eq!(certificates[0]["subject"], certificates[0]["issuer"]);
    assert_eq!(certificates[1]["issuer"], certificates[0]["subject"]);
    assert_eq!(shown["ms_18_9"], Value::Null);
    assert_eq!(
        certificates[1]["serial_number"].as_str().unwrap().len(),
        10,
        "5 bytes, as the 2008 sample's temporary CAL"
    );
    assert_eq!(
        shown["license_server"]["product_id"],
        "00000-000-0000000-00000"
    );
}

#[test]
fn reset_makes_a_new_device_with_a_new_temporary_cal() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-02");
    connect(&host.address(), &store, "pc-02", &[]);
    let permanent = connect(&host.address(), &store, "pc-02", &[]);
    assert_eq!(permanent["outcome"], "permanent");
    let old_hwid = permanent["hwid"].as_str().unwrap().to_owned();
    let old_cal = std::fs::read(store.join("Store/LICENSE000")).unwrap();

    let reset = connect(&host.address(), &store, "pc-02", &["--reset"]);
    assert_eq!(reset["outcome"], "temporary", "{reset}");
    let new_hwid = reset["hwid"].as_str().unwrap();
    assert_ne!(new_hwid, old_hwid);
    assert_eq!(hex_file(&store.join("HardwareID/ClientHWID")), new_hwid);
    // The old CAL is gone; the one left is a new 90-day temporary CAL for the new HWID.
    assert_eq!(license_files(&store), ["LICENSE000"]);
    let cal = store.join("Store/LICENSE000");
    assert_ne!(std::fs::read(&cal).unwrap(), old_cal);
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["validity_days"], 90);
    assert_eq!(temporary["client_license"]["hwid"], new_hwid);
    let last = host.decisions().pop().unwrap();
    assert!(last.contains("outcome=\"temporary\""), "{last}");
    assert!(last.contains(new_hwid), "{last}");
}

#[test]
fn the_license_request_announces_the_host_version_set_while_serving() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2019", "2022", 5);
    admin(
        &data,
        &[
            "install",
            "--type",
            "per-device",
            "--version",
            "2019",
            "--count",
            "5",
        ],
    );
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-07");
    assert_eq!(
        connect(&host.address(), &store, "pc-07", &[])["outcome"],
        "temporary"
    );
    assert_eq!(license_files(&store), ["LICENSE000"]);

    // The next connection's License Request says 2022 (PRODUCT_INFO dwVersion 0x000A0002):
    // the client has no CAL filed under it and asks for one, keeping its 2019 CAL beside it.
    admin(&data, &["server", "set", "--host-version", "2022"]);
    let second = connect(&host.address(), &store, "pc-07", &[]);
    assert_eq!(second["outcome"], "temporary", "{second}");
    assert_eq!(license_files(&store), ["LICENSE000", "LICENSE001"]);
    let versions: Vec<u32> = ["LICENSE000", "LICENSE001"]
        .iter()
        .map(|name| {
            let file = std::fs::read(store.join("Store").join(name)).unwrap();
            u32::from_le_bytes(file[..4].try_into().unwrap())
        })
        .collect();
    assert_eq!(versions, [0x000A_0001, 0x000A_0002]);
    let cal_2019 = std::fs::read(store.join("Store/LICENSE000")).unwrap();

    // Next logon at 2022: a 2022 permanent CAL replaces the 2022 temporary one; the 2019 CAL
    // is untouched.
    let third = connect(&host.address(), &store, "pc-07", &[]);
    assert_eq!(third["outcome"], "permanent", "{third}");
    assert_eq!(license_files(&store), ["LICENSE000", "LICENSE001"]);
    assert_eq!(
        std::fs::read(store.join("Store/LICENSE000")).unwrap(),
        cal_2019
    );
    assert_eq!(
        inspect(&store.join("Store/LICENSE001"))["kind"],
        "permanent"
    );

    // Back on 2019: its 2019 temporary CAL is upgraded there with a 2019 CAL, and the 2022 CAL
    // stays Active on the license server (two licenses in use, one per version).
    admin(&data, &["server", "set", "--host-version", "2019"]);
    let fourth = connect(&host.address(), &store, "pc-07", &[]);
    assert_eq!(fourth["outcome"], "permanent", "{fourth}");
    assert_eq!(
        inspect(&store.join("Store/LICENSE000"))["kind"],
        "permanent"
    );
    let report = admin(&data, &["report"]);
    let active = report["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|license| license["status"] == "active")
        .count();
    assert_eq!(active, 2, "{report:#}");
}

#[test]
fn a_host_without_its_license_server_returns_a_temporary_cal_unchanged() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let store = root.path().join("pc-08");
    assert_eq!(
        connect(&host.address(), &store, "pc-08", &[])["outcome"],
        "temporary"
    );
    drop(host);
    let cal = store.join("Store/LICENSE000");
    let temporary = std::fs::read(&cal).unwrap();

    let config = root.path().join("serve.toml");
    std::fs::write(
        &config,
        "[[fault]]\nkind = \"license-server-unreachable\"\n",
    )
    .unwrap();
    let host = Host::start(&data, &["--config", config.to_str().unwrap()]);
    let returned = connect(&host.address(), &store, "pc-08", &[]);
    assert_eq!(
        returned["outcome"],
        "returned",
        "{returned}\n{}",
        host.log()
    );
    assert_eq!(returned["cal"]["kind"], "temporary");
    assert_eq!(std::fs::read(&cal).unwrap(), temporary);
    let decision = host.decisions().pop().unwrap();
    assert!(decision.contains("outcome=\"returned\""), "{decision}");
}

#[test]
fn reg_export_and_import_round_trip_byte_for_byte() {
    let root = tempfile::tempdir().unwrap();
    // Two hosts of different scopes: the client files a CAL for each, LICENSE000 and 001.
    let first_data = root.path().join("first");
    provision(&first_data, "per-device", "2022", "2022", 5);
    let first = Host::start(&first_data, &[]);
    let second_data = root.path().join("second");
    provision(&second_data, "per-device", "2022", "2022", 5);
    let config = root.path().join("second.toml");
    std::fs::write(&config, "[product]\nscope = \"example.org\"\n").unwrap();
    let second = Host::start(&second_data, &["--config", config.to_str().unwrap()]);

    let store = root.path().join("pc-03");
    connect(&first.address(), &store, "pc-03", &[]);
    connect(&first.address(), &store, "pc-03", &[]);
    assert_eq!(
        connect(&second.address(), &store, "pc-03", &[])["outcome"],
        "temporary"
    );
    assert_eq!(license_files(&store), ["LICENSE000", "LICENSE001"]);

    let reg = root.path().join("pc-03.reg");
    let export = rdpele_client(&[
        "store",
        "export",
        "--store",
        store.to_str().unwrap(),
        "--reg",
        reg.to_str().unwrap(),
    ]);
    assert!(export.status.success(), "{}", export.stderr);
    let bytes = std::fs::read(&reg).unwrap();
    assert_eq!(bytes[..2], [0xFF, 0xFE], "UTF-16LE with a byte order mark");
    let text = String::from_utf16(
        &bytes[2..]
            .chunks(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n"));
    for key in ["HardwareID]", "Store\\LICENSE000]", "Store\\LICENSE001]"] {
        assert!(
            text.contains(&format!(
                "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Microsoft\\MSLicensing\\{key}"
            )),
            "{key}"
        );
    }
    assert!(text.contains("\"ClientHWID\"=hex:00,00,01,04,"));

    // Into an empty directory: the same files, byte for byte.
    let imported = root.path().join("imported");
    let import = |extra: &[&str]| {
        let mut args = vec![
            "store",
            "import",
            "--store",
            imported.to_str().unwrap(),
            "--reg",
            reg.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        rdpele_client(&args)
    };
    let run = import(&[]);
    assert!(run.status.success(), "{}", run.stderr);
    assert_eq!(files(&imported), files(&store));
    // Not over an existing store, unless asked to replace it.
    let again = import(&[]);
    assert_eq!(again.status.code(), Some(1));
    assert!(again.stderr.contains("already holds"), "{}", again.stderr);
    assert!(import(&["--replace"]).status.success());
    assert_eq!(files(&imported), files(&store));

    // The imported store is the same device to the host: its temporary CAL is upgraded.
    let shown = rdpele_client(&[
        "store",
        "show",
        "--json",
        "--store",
        imported.to_str().unwrap(),
    ]);
    let shown = shown.json();
    assert_eq!(shown["licenses"].as_array().unwrap().len(), 2);
    assert_eq!(shown["licenses"][1]["product"]["scope"], "example.org");
    assert_eq!(shown["licenses"][1]["cal"]["kind"], "temporary");
    let upgraded = connect(&second.address(), &imported, "pc-03", &[]);
    assert_eq!(upgraded["outcome"], "permanent", "{upgraded}");
    assert_eq!(upgraded["hwid"], shown["hwid"]);
}

#[test]
fn the_freerdp_layout_is_shared_with_xfreerdp() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let xfreerdp = Xfreerdp::new(root.path(), "pc-07", "alice");
    // xfreerdp's license directory: $XDG_CONFIG_HOME/freerdp, $HOME/.config/freerdp.
    let store = xfreerdp.home.join(".config/freerdp");

    let first = connect(&host.address(), &store, "pc-07", &["--layout", "freerdp"]);
    assert_eq!(first["outcome"], "temporary", "{first}");
    // xfreerdp's HWID rule: LE32(0x04010000) then MD5 of the client hostname.
    let hwid = first["hwid"].as_str().unwrap().to_owned();
    assert_eq!(hwid, format!("00000104{}", md5_hex("pc-07")));
    // The CAL file is where xfreerdp looks, holding exactly the CAL.
    let cal = xfreerdp
        .cal()
        .expect("a CAL in xfreerdp's license directory");
    assert_eq!(
        cal.file_name().unwrap().to_str().unwrap(),
        format!("{}.cal", sha1_hex("pc-07"))
    );
    let temporary = inspect(&cal);
    assert_eq!(temporary["container"], "pkcs7");
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["hwid"], hwid.as_str());

    // xfreerdp presents it on its next connection, from the same HWID: the host upgrades it.
    let run = xfreerdp.connect(&host);
    let last = host.decisions().pop().unwrap();
    assert!(
        last.contains("outcome=\"permanent\"") && last.contains(&format!("hwid=\"{hwid}\"")),
        "{last}\n{:?}\n{}",
        run.status,
        run.output
    );
    assert_eq!(inspect(&cal)["kind"], "permanent");

    // And back: the emulated client presents the CAL xfreerdp stored.
    let valid = connect(&host.address(), &store, "pc-07", &["--layout", "freerdp"]);
    assert_eq!(valid["outcome"], "valid", "{valid}");
    assert_eq!(
        valid["expires_at"],
        inspect(&cal)["client_license"]["not_after"]
    );
}

#[test]
fn licensing_against_xrdp_ends_valid() {
    let root = tempfile::tempdir().unwrap();
    let xrdp = Xrdp::start(root.path());
    let store = root.path().join("pc-x");
    let address = format!("127.0.0.1:{}", xrdp.port);

    // xrdp sends its fixed License Request (a proprietary certificate signed with the Terminal
    // Services key, which the client checks) and then STATUS_VALID_CLIENT; it never issues a
    // CAL. It then activates the session (its own login screen), and the client leaves.
    let run = rdpele_client(&[
        "--connect",
        &address,
        "--store",
        store.to_str().unwrap(),
        "--machine",
        "pc-x",
        "--user",
        "alice",
        "--json",
    ]);
    assert!(
        run.status.success(),
        "{:?}\n{}\n{}\nxrdp log:\n{}",
        run.status,
        run.stdout,
        run.stderr,
        xrdp.log()
    );
    let report = run.json();
    assert_eq!(report["outcome"], "valid", "{report}");
    assert_eq!(report["error"], Value::Null);
    assert_eq!(report["stored"], false);
    assert_eq!(report["expires_at"], Value::Null);
    assert_eq!(report["active"], true, "{report}\n{}", xrdp.log());
    assert_eq!(report["ending"], "the client disconnected");
    assert!(license_files(&store).is_empty());
    assert!(
        xrdp.log().contains("Connected client computer name: pc-x"),
        "{}",
        xrdp.log()
    );
}

/// xrdp with `security_layer=rdp` at each of its encryption levels: the client exchanges keys,
/// sends its Client Info and licensing PDUs encrypted (RC4 at the method xrdp picks: 128-bit at
/// high, 40-bit at medium and low) and reads xrdp's PDUs, encrypted or, at low, in clear;
/// the session becomes active. xrdp 0.9.21 (Debian's, with the CVE-2026-32105 fix) checks plain
/// MACs only, so a client that signs with salted MACs, as xfreerdp 2.11.7 does by default, is
/// dropped at its Client Info: the emulated client signs plain, which Windows checks too.
#[test]
fn licensing_against_xrdp_over_standard_rdp_security_ends_valid() {
    let root = tempfile::tempdir().unwrap();
    for crypt_level in ["high", "medium", "low"] {
        let xrdp = Xrdp::start_with(root.path(), "rdp", crypt_level);
        let store = root.path().join(format!("pc-{crypt_level}"));
        let address = format!("127.0.0.1:{}", xrdp.port);
        let machine = format!("pc-{crypt_level}");
        let run = rdpele_client(&[
            "--connect",
            &address,
            "--store",
            store.to_str().unwrap(),
            "--machine",
            &machine,
            "--user",
            "alice",
            "--security",
            "rdp",
            "--json",
        ]);
        let log = xrdp.log();
        assert!(
            run.status.success(),
            "{crypt_level}: {:?}\n{}\n{}\nxrdp log:\n{log}",
            run.status,
            run.stdout,
            run.stderr,
        );
        let report = run.json();
        assert_eq!(report["outcome"], "valid", "{crypt_level}: {report}");
        assert_eq!(report["active"], true, "{crypt_level}: {report}\n{log}");
        assert!(
            log.contains(&format!("Connected client computer name: {machine}")),
            "{log}"
        );
        // Asked for TLS, xrdp set to RDP security only selects PROTOCOL_RDP itself, and the
        // emulated client under "negotiate" goes on with it, as mstsc does.
        let negotiated = rdpele_client(&[
            "--connect",
            &address,
            "--store",
            store.to_str().unwrap(),
            "--machine",
            &machine,
            "--json",
        ]);
        assert_eq!(
            negotiated.json()["active"],
            true,
            "{crypt_level}: {}\n{}",
            negotiated.stdout,
            xrdp.log()
        );
    }
}

/// The 20 bytes of a HWID file in hex.
fn hex_file(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(bytes.len(), 20, "{}", path.display());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 and SHA-1 as xfreerdp computes them, by the tools a test machine has (openssl).
fn md5_hex(text: &str) -> String {
    openssl_digest("-md5", text)
}

fn sha1_hex(text: &str) -> String {
    openssl_digest("-sha1", text)
}

fn openssl_digest(algorithm: &str, text: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(["dgst", algorithm, "-r"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl must be installed (./scripts/test installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// xrdp 0.9.21 listening on a loopback port with TLS and a throwaway certificate, in its own
/// process group (it forks a child per connection), all of which are killed on drop.
struct Xrdp {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Xrdp {
    fn start(root: &Path) -> Xrdp {
        Self::start_with(root, "tls", "high")
    }

    /// xrdp with `security_layer` (tls, rdp or negotiate) and `crypt_level` (low, medium,
    /// high: what Standard RDP Security encrypts).
    fn start_with(root: &Path, security_layer: &str, crypt_level: &str) -> Xrdp {
        let binary = ["/usr/sbin/xrdp", "/usr/local/sbin/xrdp"]
            .into_iter()
            .map(PathBuf::from)
            .find(|path| path.is_file())
            .expect("xrdp must be installed (./scripts/test installs it)");
        let dir = root.join(format!("xrdp-{security_layer}-{crypt_level}"));
        std::fs::create_dir_all(&dir).unwrap();
        let (key, certificate) = (dir.join("key.pem"), dir.join("cert.pem"));
        let openssl = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
            .args(["-subj", "/CN=xrdp", "-days", "2", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&certificate)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl must be installed");
        assert!(openssl.success());
        // xrdp's session sockets live here; the Debian package makes it at boot.
        std::fs::create_dir_all("/run/xrdp/sockdir").unwrap();

        let port = free_port();
        let ini = xrdp_ini(
            &std::fs::read_to_string("/etc/xrdp/xrdp.ini").unwrap(),
            XrdpSettings {
                port,
                security_layer,
                crypt_level,
                certificate: &certificate,
                key: &key,
                log: &dir.join("xrdp.log"),
            },
        );
        let config = dir.join("xrdp.ini");
        std::fs::write(&config, ini).unwrap();
        let child = {
            use std::os::unix::process::CommandExt;
            Command::new(binary)
                .arg("--nodaemon")
                .arg("-c")
                .arg(&config)
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(std::fs::File::create(dir.join("stdout.log")).unwrap())
                .stderr(std::fs::File::create(dir.join("stderr.log")).unwrap())
                .spawn()
                .unwrap()
        };
        let mut xrdp = Xrdp { child, port, dir };
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = xrdp.child.try_wait().unwrap() {
                panic!("xrdp exited ({status}):\n{}", xrdp.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "xrdp does not listen on {port}:\n{}",
                xrdp.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        xrdp
    }

    /// xrdp's own log and whatever it printed.
    fn log(&self) -> String {
        ["xrdp.log", "stdout.log", "stderr.log"]
            .iter()
            .map(|name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Xrdp {
    fn drop(&mut self) {
        // The group's id is the first process's id (process_group(0)).
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

/// A loopback port free a moment ago (the listener is closed again for xrdp to bind).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a test's xrdp.ini changes.
struct XrdpSettings<'a> {
    port: u16,
    security_layer: &'a str,
    crypt_level: &'a str,
    certificate: &'a Path,
    key: &'a Path,
    log: &'a Path,
}

/// Debian's xrdp.ini with the first uncommented `port=` on loopback (a commented
/// `;   port=3389` example comes first), the security layer and encryption level asked for,
/// our TLS certificate, and the log in our directory.
fn xrdp_ini(original: &str, settings: XrdpSettings<'_>) -> String {
    let XrdpSettings {
        port,
        security_layer,
        crypt_level,
        certificate,
        key,
        log,
    } = settings;
    let mut replacements = [
        ("port=", format!("port=tcp://127.0.0.1:{port}"), false),
        (
            "security_layer=",
            format!("security_layer={security_layer}"),
            false,
        ),
        ("crypt_level=", format!("crypt_level={crypt_level}"), false),
        (
            "certificate=",
            format!("certificate={}", certificate.display()),
            false,
        ),
        ("key_file=", format!("key_file={}", key.display()), false),
        ("LogFile=", format!("LogFile={}", log.display()), false),
        ("EnableSyslog=", "EnableSyslog=false".to_owned(), false),
    ];
    let mut out = String::new();
    for line in original.lines() {
        let replaced = replacements
            .iter_mut()
            .find(|(prefix, _, done)| !*done && line.starts_with(prefix));
        match replaced {
            Some((_, new, done)) => {
                *done = true;
                out.push_str(new);
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (prefix, _, done) in &replacements {
        assert!(done, "{prefix} not found in /etc/xrdp/xrdp.ini");
    }
    out
}

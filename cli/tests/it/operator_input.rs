//! What `rdpele serve` and `rdpele license-server` make of an operator's arguments: durations
//! that would overflow are refused by the parser, and the bearer token comes from a file as
//! well as from the command line or the environment.

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Output, Stdio};

use crate::support::{Host, RemoteLicenseServer, RDPELE};

fn rdpele(args: &[&str]) -> Output {
    Command::new(RDPELE)
        .args(args)
        .env_remove("RDPELE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn durations_that_would_overflow_are_refused_before_the_host_starts() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    for (flag, value) in [
        ("--session-seconds", "18446744073709551615"),
        ("--session-seconds", "604801"),
        ("--timeout", "18446744073709551615"),
        ("--timeout", "0"),
    ] {
        let out = rdpele(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data,
            flag,
            value,
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("is not in"),
            "{stderr}"
        );
    }
}

#[test]
fn help_says_a_token_on_the_command_line_is_visible_in_ps() {
    for command in ["serve", "license-server"] {
        let out = rdpele(&[command, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{help}");
        assert!(help.contains("(`ps`)"), "{command}: {help}");
        assert!(help.contains("--token-file <FILE>"), "{command}: {help}");
    }
}

#[test]
fn a_token_and_a_token_file_together_are_refused() {
    let out = rdpele(&[
        "license-server",
        "--data",
        "/nonexistent",
        "--token",
        "a",
        "--token-file",
        "/nonexistent/token",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be used with"));
    let out = rdpele(&["license-server", "--data", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn hosts_and_license_servers_read_the_token_from_a_file() {
    let root = tempfile::tempdir().unwrap();
    let token_file = root.path().join("token");
    std::fs::write(&token_file, "s3cret-from-a-file\n").unwrap();
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let token_file = token_file.to_str().unwrap();
    let license_server = RemoteLicenseServer::start_with(
        &root.path().join("license-server"),
        &["--token-file", token_file],
    );
    let host = Host::start(
        &root.path().join("host"),
        &[
            "--license-server",
            &license_server.url,
            "--token-file",
            token_file,
        ],
    );
    let store = root.path().join("client");
    let out = rdpele(&[
        "client",
        "--connect",
        &host.address(),
        "--store",
        store.to_str().unwrap(),
        "--machine",
        "pc-01",
        "--user",
        "alice",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decisions = host.decisions();
    assert_eq!(decisions.len(), 1, "{}", host.log());
    assert!(
        decisions[0].contains("outcome=\"temporary\""),
        "{decisions:?}"
    );
    assert!(!host.log().contains("no license server"), "{}", host.log());
}

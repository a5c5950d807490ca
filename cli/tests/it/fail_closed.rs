//! A session host pointed at a remote license server that turns it away — a wrong token, a URL
//! that is not the API — fails closed: it does not start, and if the license server turns it
//! away later its clients are refused (ERR_NO_LICENSE_SERVER), never admitted through the
//! grace period that only an unreachable license server opens.

use std::process::{Command, Output, Stdio};

use crate::support::{Host, RemoteLicenseServer, RDPELE};

/// `rdpele serve` against `url` with `token`: expected to exit before listening.
fn serve_against(url: &str, token: &str) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(RDPELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--license-server", url, "--token", token])
        .env_remove("RDPELE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_host_its_license_server_would_turn_away_does_not_start() {
    let root = tempfile::tempdir().unwrap();
    let license_server = RemoteLicenseServer::start(&root.path().join("ls"), "right");
    let not_http = Host::start(&root.path().join("host"), &[]);
    let cases = [
        (license_server.url.clone(), "wrong", "401"),
        (
            format!("http://127.0.0.1:{}", free_port()),
            "right",
            "onnect",
        ),
        (
            format!("http://{}", not_http.address()),
            "right",
            "checking the license server",
        ),
        (
            license_server.url.replace("http:", "ftp:"),
            "right",
            "ftp:// scheme",
        ),
        // TLS to a plain HTTP server: the handshake fails, and that is no grace period.
        (
            license_server.url.replace("http:", "https:"),
            "right",
            "TLS",
        ),
    ];
    for (url, token, reason) in cases {
        let out = serve_against(&url, token);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains(reason), "{url}: {stderr}");
        assert!(!stdout.contains("listening on"), "{url}: {stdout}");
    }
}

#[test]
fn clients_are_refused_when_the_license_server_turns_the_host_away_later() {
    let root = tempfile::tempdir().unwrap();
    let ls_data = root.path().join("ls");
    let address = format!("127.0.0.1:{}", free_port());
    let first = RemoteLicenseServer::start_on(&address, &ls_data, &["--token", "before"]);
    let host = Host::start(
        &root.path().join("host"),
        &["--license-server", &first.url, "--token", "before"],
    );
    // The license server comes back on the same address with another token.
    drop(first);
    let _second = RemoteLicenseServer::start_on(&address, &ls_data, &["--token", "after"]);

    let out = Command::new(RDPELE)
        .args(["client", "--connect", &host.address(), "--machine", "pc-01"])
        .args(["--user", "alice", "--store"])
        .arg(root.path().join("client"))
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "admitted: {said}");
    assert!(said.contains("ERR_NO_LICENSE_SERVER"), "{said}");
    let log = host.log();
    assert!(log.contains("refused the host"), "{log}");
    assert!(log.contains("401"), "{log}");
    assert!(!log.contains("applying the grace-period rules"), "{log}");
    let decisions = host.decisions();
    assert_eq!(decisions.len(), 1, "{log}");
    assert!(
        decisions[0].contains("outcome=\"refused\""),
        "{decisions:?}"
    );
}

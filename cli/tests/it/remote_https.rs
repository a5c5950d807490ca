//! A license server off loopback over HTTPS: `rdpele license-server --tls` makes a self-signed
//! certificate in its data directory, and a host given it with `--license-server-ca` licenses
//! through it; a host that cannot verify it does not start.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use rdpele_license_server::model::{HostInfo, LicensingMode, WindowsVersion};
use rdpele_license_server::remote::RemoteIssuer;

use crate::support::{Host, RemoteLicenseServer, RDPELE};

const CERT_FILE: &str = "license_server_tls_cert.pem";

fn serve_against(url: &str, extra: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    Command::new(RDPELE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--license-server", url, "--token", "t"])
        .args(extra)
        .env_remove("RDPELE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_host_licenses_through_an_https_license_server_whose_certificate_it_trusts() {
    let root = tempfile::tempdir().unwrap();
    let ls_data = root.path().join("ls");
    let license_server = RemoteLicenseServer::start_with(&ls_data, &["--token", "t", "--tls"]);
    let url = license_server.url.replace("http://", "https://");
    let cert = ls_data.join(CERT_FILE);
    let cert_arg = cert.to_str().unwrap();

    let host = Host::start(
        &root.path().join("host"),
        &[
            "--license-server",
            &url,
            "--token",
            "t",
            "--license-server-ca",
            cert_arg,
        ],
    );
    let out = Command::new(RDPELE)
        .args(["client", "--connect", &host.address(), "--machine", "pc-01"])
        .args(["--user", "alice", "--store"])
        .arg(root.path().join("client"))
        .output()
        .unwrap();
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

    // Without the certificate to trust, or speaking plain HTTP to it: no start, and the
    // reason says which.
    for (url, extra, reason) in [
        (url.as_str(), &[][..], "certificate"),
        (
            license_server.url.as_str(),
            &["--license-server-ca", cert_arg][..],
            "checking the license server",
        ),
    ] {
        let out = serve_against(url, extra);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{url}: {stderr}");
        assert!(stderr.contains(reason), "{url}: {stderr}");
    }

    // An untrusted certificate is a misconfiguration, not an unreachable license server: the
    // host refuses rather than applying the grace period.
    let host_info = HostInfo {
        version: WindowsVersion::V2022,
        mode: LicensingMode::PerDevice,
    };
    let untrusting = RemoteIssuer::new(&url, "t", host_info, Duration::from_secs(5)).unwrap();
    let error = untrusting.health().unwrap_err();
    assert!(!error.is_unreachable(), "{error}");
    let trusting = untrusting.trusting(&std::fs::read(&cert).unwrap()).unwrap();
    assert_eq!(
        trusting.health().unwrap().version,
        env!("CARGO_PKG_VERSION")
    );
}

#[test]
fn the_tls_key_is_the_owners_only_and_the_certificate_names_the_listen_address() {
    use std::os::unix::fs::PermissionsExt;

    let root = tempfile::tempdir().unwrap();
    let ls_data = root.path().join("ls");
    let _license_server = RemoteLicenseServer::start_with(&ls_data, &["--token", "t", "--tls"]);
    let mode = std::fs::metadata(ls_data.join("license_server_tls_key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(ls_data.join(CERT_FILE))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("DNS:localhost") && text.contains("IP Address:127.0.0.1"),
        "{text}"
    );
}

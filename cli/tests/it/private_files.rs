//! Private keys and data directories on disk: what an operator's `ls -l` shows after the first
//! start, and what the host says about a key others can read.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::support::{Host, RemoteLicenseServer};

const SESSION_HOST_KEYS: [&str; 3] = [
    "license_server_key.pem",
    "host_licensing_key.pem",
    "host_tls_key.pem",
];

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn a_fresh_data_directory_and_its_keys_are_the_owners_only() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("host");
    let host = Host::start(&data, &[]);
    assert_eq!(mode(&data), 0o700);
    for key in SESSION_HOST_KEYS {
        assert_eq!(mode(&data.join(key)), 0o600, "{key}");
    }
    assert!(!host.log().contains("others can read"), "{}", host.log());

    let data = root.path().join("license-server");
    let _server = RemoteLicenseServer::start(&data, "token");
    // It announces its address first, then opens the directory.
    let key = data.join("license_server_key.pem");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !key.exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&key), 0o600);
}

#[test]
fn a_key_others_can_read_is_used_with_a_warning() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("host");
    drop(Host::start(&data, &[]));
    let exposed = data.join("host_tls_key.pem");
    std::fs::set_permissions(&exposed, std::fs::Permissions::from_mode(0o644)).unwrap();
    let host = Host::start(&data, &[]);
    let log = host.log();
    let warning = log
        .lines()
        .find(|line| line.contains("others can read"))
        .unwrap_or_else(|| panic!("no warning:\n{log}"));
    assert!(warning.contains("host_tls_key.pem"), "{warning}");
    assert!(warning.contains("0644"), "{warning}");
}

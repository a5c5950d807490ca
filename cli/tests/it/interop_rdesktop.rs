// Test code: unwrap/expect/panic/indexing are fine here.
//! rdesktop 1.9.0 (Debian 12) against `rdpele serve` at its default settings, over TLS: the
//! CAL life a Windows host gives it. rdesktop is the legacy client of the lot: a zero
//! premaster whatever the host's key size, the encrypted challenge echoed as its challenge
//! response, capability sets a strict decoder refuses, and a finalization that waits for the
//! host's Synchronize and Control PDUs before it sends its Font List.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use crate::support::{inspect, provision, Host, Rdesktop};

/// ERRINFO_LOGOFF_BY_USER, which rdesktop reports as its exit status 12 ("Logout initiated by
/// user"): the session became active and the host logged it off.
const LOGGED_OFF: i32 = 12;

#[test]
fn temporary_then_permanent_then_valid() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let host = Host::start(&data, &[]);
    let client = Rdesktop::new(root.path(), "rdpc-01", "alice");

    // First logon: a 90-day temporary CAL, stored by rdesktop; the session becomes active,
    // which validates the CAL.
    let first = client.connect(&host);
    assert_eq!(
        first.status.code(),
        Some(LOGGED_OFF),
        "{}\n{}",
        first.output,
        host.log()
    );
    let cal = client
        .cal()
        .unwrap_or_else(|| panic!("no CAL stored\n{}\n{}", first.output, host.log()));
    let temporary = inspect(&cal);
    assert_eq!(temporary["kind"], "temporary");
    assert_eq!(temporary["client_license"]["validity_days"], 90);
    assert_eq!(temporary["client_license"]["machine"], "rdpc-01");
    assert_eq!(temporary["client_license"]["user"], "alice");

    // Second logon: it presents the temporary CAL and gets a permanent one.
    let second = client.connect(&host);
    assert_eq!(second.status.code(), Some(LOGGED_OFF), "{}", second.output);
    let permanent = inspect(&cal);
    assert_eq!(permanent["kind"], "permanent", "{}", host.log());
    assert_eq!(
        permanent["client_license"]["hwid"],
        temporary["client_license"]["hwid"]
    );

    // Third: valid as it is.
    let third = client.connect(&host);
    assert_eq!(third.status.code(), Some(LOGGED_OFF), "{}", third.output);
    assert_eq!(inspect(&cal), permanent);
    let outcomes: Vec<String> = host
        .decisions()
        .iter()
        .map(|line| {
            line.split("outcome=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .unwrap_or_default()
                .trim_matches('"')
                .to_owned()
        })
        .collect();
    assert_eq!(
        outcomes,
        ["temporary", "permanent", "valid"],
        "{}",
        host.log()
    );
    assert_eq!(host.log().matches("session active").count(), 3);
}

/// rdesktop against a host set to Standard RDP Security only (`[host] security = "rdp"`): it
/// asks for TLS, gets SSL_NOT_ALLOWED_BY_SERVER, reconnects with plain RDP and licenses as
/// over TLS, its licensing PDUs in clear under the RC4 layer. It does not announce
/// RNS_UD_CS_STRONG_ASYMMETRIC_KEYS, so the host sends its 512-bit certificate; and it reads
/// the GCC blocks after a fixed 21-byte T.124 header, which holds only with Windows' one-byte
/// ConferenceCreateResponse length.
#[test]
fn over_standard_rdp_security_temporary_then_permanent() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    provision(&data, "per-device", "2022", "2022", 5);
    let config = root.path().join("serve.toml");
    std::fs::write(&config, "[host]\nsecurity = \"rdp\"\n").unwrap();
    let host = Host::start(&data, &["--config", config.to_str().unwrap()]);
    let client = Rdesktop::new(root.path(), "rdpc-02", "alice");

    let first = client.connect(&host);
    assert_eq!(
        first.status.code(),
        Some(LOGGED_OFF),
        "{}\n{}",
        first.output,
        host.log()
    );
    assert!(
        first.output.contains("Retrying with plain RDP"),
        "{}",
        first.output
    );
    let cal = client
        .cal()
        .unwrap_or_else(|| panic!("no CAL stored\n{}\n{}", first.output, host.log()));
    assert_eq!(inspect(&cal)["kind"], "temporary");
    let second = client.connect(&host);
    assert_eq!(second.status.code(), Some(LOGGED_OFF), "{}", second.output);
    assert_eq!(inspect(&cal)["kind"], "permanent", "{}", host.log());

    let log = host.log();
    let secured: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("Standard RDP Security"))
        .collect();
    assert_eq!(secured.len(), 2, "{log}");
    for line in secured {
        assert!(line.contains("key_bits=512"), "{line}");
    }
    assert_eq!(log.matches("session active").count(), 2, "{log}");
}

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

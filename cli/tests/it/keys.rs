//! `rdpele keys` on a recorded Windows licensing session: the randoms and premaster secret from
//! FreeRDP's early licensing unit tests (cunit/test_license.c) and the keys they derived.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::{Command, Output};

use serde_json::Value;

const CLIENT_RANDOM: &str = "dc73a0c869256b18af0b947aa9a520af8bbc0dcca395b7b9eb815dbe0a109cd8";
const SERVER_RANDOM: &str = "167ef87148161a4fa52ccd736360a6c3b9191b4b6bb20ab8ecf18d954ea821c5";
const PREMASTER: &str = "cf7adbcbfb0e1523871c8481ba9d4e15bbd256bdd8f7f316cc353be1934278dd\
                         929ae47ae299d473b1aa6f55943bc9bc";

fn rdpele_keys(client_random: &str, server_random: &str, premaster: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .args([
            "keys",
            "--client-random",
            client_random,
            "--server-random",
            server_random,
            "--premaster",
            premaster,
        ])
        .output()
        .unwrap()
}

#[test]
fn derives_the_keys_of_a_windows_session() {
    let out = rdpele_keys(CLIENT_RANDOM, SERVER_RANDOM, PREMASTER);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON document: {stdout}");
    let document: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        document,
        serde_json::json!({
            "master_secret": "be51ee632390d0f43ace3a3765c3ddcfedf0c819ed77334efd2b7d5ae2caf30a\
                              f116e50c78597ed44b57ce17603a5ab3",
            "session_key_blob": "074fa02eeec45a46218cae01450226e4546b5910cc5bd196d05cebc2969b447b\
                                 1cd966b19e24aa604f89d14ef8b9553b",
            "mac_salt_key": "074fa02eeec45a46218cae01450226e4",
            "licensing_encryption_key": "f3b1e03bfeb4f2c528a948cd90f193e5",
        })
    );
    let keys: Vec<&String> = document.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "master_secret",
            "session_key_blob",
            "mac_salt_key",
            "licensing_encryption_key"
        ]
    );
}

/// Upper case and byte separators as Wireshark prints them are the same input.
#[test]
fn accepts_upper_case_and_separators() {
    let spaced: String = CLIENT_RANDOM
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap())
        .collect::<Vec<_>>()
        .join(":");
    let premaster = format!("{} {}", &PREMASTER[..48], &PREMASTER[48..]);
    let out = rdpele_keys(&spaced, SERVER_RANDOM, &premaster);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        out.stdout,
        rdpele_keys(CLIENT_RANDOM, SERVER_RANDOM, PREMASTER).stdout
    );
}

#[test]
fn wrong_lengths_and_bad_hex_exit_2_with_one_line() {
    let short_random = &CLIENT_RANDOM[..62];
    let long_premaster = format!("{PREMASTER}00");
    let cases: [(&str, &str, &str, &str); 5] = [
        (
            short_random,
            SERVER_RANDOM,
            PREMASTER,
            "--client-random: expected 32 bytes",
        ),
        (CLIENT_RANDOM, "zz", PREMASTER, "--server-random: not hex"),
        (
            CLIENT_RANDOM,
            SERVER_RANDOM,
            &long_premaster,
            "--premaster: expected 48 bytes",
        ),
        (
            CLIENT_RANDOM,
            SERVER_RANDOM,
            &PREMASTER[..95],
            "--premaster: odd number",
        ),
        (
            CLIENT_RANDOM,
            SERVER_RANDOM,
            "",
            "--premaster: expected 48 bytes",
        ),
    ];
    for (client_random, server_random, premaster, message) in cases {
        let out = rdpele_keys(client_random, server_random, premaster);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(out.stdout.is_empty());
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with(&format!("rdpele keys: {message}")),
            "{stderr}"
        );
    }
}

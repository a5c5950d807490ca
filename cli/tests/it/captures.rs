//! captures/MANIFEST.toml lists every file in captures/, and every listed file decodes with
//! `rdpele decode` as the framing and message type(s) the manifest states, re-encoding byte for
//! byte.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::process::Command;

use serde_json::Value;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures");

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    capture: Vec<Entry>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    file: String,
    source: String,
    peer: String,
    version: String,
    framing: String,
    direction: String,
    message_type: String,
    shows: String,
}

fn manifest() -> Manifest {
    toml::from_str(&std::fs::read_to_string(format!("{CAPTURES}/MANIFEST.toml")).unwrap()).unwrap()
}

#[test]
fn every_file_is_listed_and_every_listed_file_exists() {
    let listed: BTreeSet<String> = manifest().capture.into_iter().map(|e| e.file).collect();
    let present: BTreeSet<String> = std::fs::read_dir(CAPTURES)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "MANIFEST.toml")
        .collect();
    assert_eq!(listed, present, "captures/ and MANIFEST.toml disagree");
}

#[test]
fn every_entry_is_described() {
    for entry in manifest().capture {
        for (field, value) in [
            ("source", &entry.source),
            ("peer", &entry.peer),
            ("version", &entry.version),
            ("shows", &entry.shows),
        ] {
            assert!(!value.trim().is_empty(), "{}: empty {field}", entry.file);
        }
        assert!(
            ["server_to_client", "client_to_server", "both", "none"]
                .contains(&entry.direction.as_str()),
            "{entry:?}"
        );
    }
}

#[test]
fn every_message_capture_decodes_as_listed_and_round_trips() {
    for entry in manifest().capture.iter().filter(|e| e.framing != "der") {
        let path = format!("{CAPTURES}/{}", entry.file);
        let out = Command::new(env!("CARGO_BIN_EXE_rdpele"))
            .args(["decode", "--json", "--roundtrip", &path])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}: {}",
            entry.file,
            String::from_utf8_lossy(&out.stderr)
        );
        let documents: Vec<Value> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let expected: Vec<&str> = entry.message_type.split(", ").collect();
        let found: Vec<&str> = documents
            .iter()
            .map(|document| document["message_type"].as_str().unwrap())
            .collect();
        assert_eq!(found, expected, "{}", entry.file);
        for document in &documents {
            assert_eq!(
                document["framing"],
                entry.framing.as_str(),
                "{}",
                entry.file
            );
            assert_eq!(document["roundtrip_identical"], true, "{}", entry.file);
        }
    }
}

/// The CAL is not a licensing message: it is checked to be one DER SEQUENCE spanning the file,
/// identical to the pbLicenseInfo of the NEW_LICENSE_INFO it came from.
#[test]
fn der_captures_are_whole_der_sequences_found_in_a_new_license_info() {
    let infos: Vec<Vec<u8>> = manifest()
        .capture
        .iter()
        .filter(|e| e.framing == "new_license_info")
        .map(|e| std::fs::read(format!("{CAPTURES}/{}", e.file)).unwrap())
        .collect();
    for entry in manifest().capture.iter().filter(|e| e.framing == "der") {
        let der = std::fs::read(format!("{CAPTURES}/{}", entry.file)).unwrap();
        assert_eq!(der[0], 0x30, "{}: not a SEQUENCE", entry.file);
        assert_eq!(der[1], 0x82, "{}: expected a two-byte length", entry.file);
        let len = usize::from(u16::from_be_bytes([der[2], der[3]]));
        assert_eq!(
            len + 4,
            der.len(),
            "{}: the SEQUENCE does not span the file",
            entry.file
        );
        assert!(
            infos.iter().any(|info| info.ends_with(&der)),
            "{}: in no NEW_LICENSE_INFO",
            entry.file
        );
    }
}

//! A writer process killed (SIGKILL) at random instants while it issues licenses, many times
//! over, and after each kill the store re-checked: SQLite's integrity check passes, every
//! license the writer reported committed is there, nothing committed before is lost, every row
//! is complete, every decision is there whole or not at all, and no pack is over-allocated.
//!
//! The writer is this test binary itself, re-executed with [`WRITER_ENV`] naming the data
//! directory: its `writer_process` test then issues licenses until it is killed, printing
//! `committed <license id>` on stdout after each commit.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rdpele_license_server::decision::{Change, PolicyDecision, Snapshot};
use rdpele_license_server::model::{
    IssuedLicense, LicenseStatus, LicensingMode, RequestOutcome, WindowsVersion,
};
use rdpele_license_server::store::{Holder, NewKeyPack, Store};

/// Set (to the data directory) in the writer process.
const WRITER_ENV: &str = "RDPELE_STORE_CRASH_WRITER";
const KILLS: usize = 50;
/// The writer runs this long (after its start) before it is killed: from inside process start
/// and schema creation to a few dozen commits in.
const RUN_MILLIS: std::ops::Range<u64> = 1..80;
/// Two per-device packs; the devices outnumber their licenses, so the pools fill up early and
/// the writer goes on renewing and issuing temporary CALs.
const PACK_TOTALS: [u32; 2] = [40, 25];
const DEVICES: u32 = 120;
const DAY: Duration = Duration::from_secs(86_400);

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn hwid(n: u32) -> [u8; 20] {
    let mut id = [0x3C; 20];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

/// The writer's policy: renew an active CAL (supersede it and issue a new one from the same
/// pack: two changes that must land together), else upgrade to a free permanent CAL
/// (superseding a temporary one), else issue a temporary CAL once.
fn decide(snapshot: &Snapshot, device: u32) -> PolicyDecision {
    let new = |id: u32, key_pack_id: Option<u32>, status: LicenseStatus| IssuedLicense {
        license_id: id,
        key_pack_id,
        license_type: LicensingMode::PerDevice,
        issued_to_user: format!("user{device}"),
        issued_to_computer: format!("PC{device:03}"),
        hardware_id: hwid(device),
        issue_date: snapshot.now,
        expiration_date: snapshot.now + 60 * DAY,
        status,
        revoked_at: None,
        product_version: WindowsVersion::V2022,
        validated_at: None,
    };
    let id = snapshot.next_license_id;
    let current = snapshot
        .holder
        .iter()
        .find(|l| matches!(l.status, LicenseStatus::Active | LicenseStatus::Temporary));
    let mut changes = Vec::new();
    let key_pack_id = match current {
        Some(l) if l.status == LicenseStatus::Active => l.key_pack_id,
        _ => snapshot
            .packs
            .usage()
            .iter()
            .find(|p| p.available() > 0)
            .map(|p| p.pack.key_pack_id),
    };
    match (current, key_pack_id) {
        (Some(old), Some(pack)) => {
            changes.push(Change::SetStatus {
                license_id: old.license_id,
                status: LicenseStatus::Superseded,
            });
            changes.push(Change::Insert(new(id, Some(pack), LicenseStatus::Active)));
        }
        (None, Some(pack)) => {
            changes.push(Change::Insert(new(id, Some(pack), LicenseStatus::Active)))
        }
        (None, None) => changes.push(Change::Insert(new(id, None, LicenseStatus::Temporary))),
        (Some(_), None) => {}
    }
    let outcome = RequestOutcome::Valid {
        expires_at: snapshot.now + 60 * DAY,
    };
    PolicyDecision { outcome, changes }
}

/// The writer: runs only in the re-executed process, issuing until it is killed.
#[test]
fn writer_process() {
    let Some(dir) = std::env::var_os(WRITER_ENV) else {
        return;
    };
    let store = Store::open(&dir).unwrap();
    // Installing is its own transaction; count what a killed predecessor left.
    while store.packs(now()).unwrap().len() < PACK_TOTALS.len() {
        let installed = store.packs(now()).unwrap().len();
        store
            .install_pack(&NewKeyPack {
                key_pack_type: LicensingMode::PerDevice,
                product_version: WindowsVersion::V2022,
                total_licenses: PACK_TOTALS[installed],
                installed_at: now(),
            })
            .unwrap();
    }
    let mut rng = StdRng::seed_from_u64(u64::from(std::process::id()));
    let mut stdout = std::io::stdout();
    loop {
        let device = rng.random_range(0..DEVICES);
        let decision = store
            .decide(&Holder::HardwareId(hwid(device)), now(), |s| {
                decide(s, device)
            })
            .unwrap();
        for change in &decision.changes {
            if let Change::Insert(license) = change {
                writeln!(stdout, "committed {}", license.license_id).unwrap();
            }
        }
        stdout.flush().unwrap();
    }
}

#[test]
fn killing_the_writer_at_random_instants_loses_and_breaks_nothing() {
    if std::env::var_os(WRITER_ENV).is_some() {
        return;
    }
    let seed: u64 = std::env::var("RDPELE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::rng().random());
    println!("seed {seed} (RDPELE_CRASH_SEED={seed} to replay the kill instants)");
    let mut rng = StdRng::seed_from_u64(seed);
    let dir = tempfile::tempdir().unwrap();
    let began = Instant::now();
    let mut committed: BTreeSet<u32> = BTreeSet::new();
    let mut kills_after_commits = 0;
    for kill in 0..KILLS {
        let mut writer = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "store_crash::writer_process",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(WRITER_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.random_range(RUN_MILLIS)));
        writer.kill().unwrap();
        let status = writer.wait().unwrap();
        let mut output = String::new();
        writer
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut output)
            .unwrap();
        let mut errors = String::new();
        writer
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut errors)
            .unwrap();
        assert!(
            status.code().is_none(),
            "kill {kill}: the writer ended on its own: {errors}"
        );
        let reported: BTreeSet<u32> = output
            .lines()
            .filter_map(|line| line.strip_prefix("committed "))
            .filter_map(|id| id.parse().ok())
            .collect();
        if !reported.is_empty() {
            kills_after_commits += 1;
        }

        let ids = check(dir.path(), kill);
        assert!(
            reported.is_subset(&ids),
            "kill {kill}: reported committed but missing: {:?}",
            reported.difference(&ids).collect::<Vec<_>>()
        );
        assert!(
            committed.is_subset(&ids),
            "kill {kill}: committed before, missing now: {:?}",
            committed.difference(&ids).collect::<Vec<_>>()
        );
        committed = ids;
    }
    println!(
        "{KILLS} kills ({kills_after_commits} after the writer had committed), \
         {} licenses committed, in {:?}",
        committed.len(),
        began.elapsed()
    );
    assert!(
        kills_after_commits >= KILLS / 2,
        "most kills must land mid-issuance"
    );
    assert!(
        committed.len() > 100,
        "the writer barely wrote: {}",
        committed.len()
    );
}

/// Reopens the store after a kill and checks every invariant; returns the license ids.
fn check(dir: &Path, kill: usize) -> BTreeSet<u32> {
    // (If the writer was killed before it created the database, this creates it.)
    let store = Store::open(dir).unwrap_or_else(|e| panic!("kill {kill}: cannot reopen: {e}"));
    assert_eq!(
        store.check_integrity().unwrap(),
        Vec::<String>::new(),
        "kill {kill}"
    );
    // Every row reads back whole: known statuses, 20-byte hardware ids, valid times.
    let licenses = store.issued_licenses().unwrap();
    let ids: BTreeSet<u32> = licenses.iter().map(|l| l.license_id).collect();
    assert_eq!(ids.len(), licenses.len(), "kill {kill}: duplicate ids");
    // Ids are consecutive from 1: a decision's inserts land together or not at all.
    if let Some(&last) = ids.last() {
        assert_eq!(
            usize::try_from(last).unwrap(),
            ids.len(),
            "kill {kill}: ids have holes"
        );
    }
    for usage in store.packs(now()).unwrap() {
        assert!(
            usage.in_use <= usage.pack.total_licenses,
            "kill {kill}: {usage:?} over-allocated"
        );
    }
    let mut current_per_device: BTreeMap<[u8; 20], u32> = BTreeMap::new();
    for license in &licenses {
        assert_eq!(
            license.issued_to_computer,
            format!(
                "PC{:03}",
                u32::from_be_bytes(license.hardware_id[..4].try_into().unwrap())
            )
        );
        match license.status {
            LicenseStatus::Active => {
                assert!(license.key_pack_id.is_some(), "kill {kill}: {license:?}")
            }
            LicenseStatus::Temporary => {
                assert!(license.key_pack_id.is_none(), "kill {kill}: {license:?}")
            }
            LicenseStatus::Superseded => {}
            other => panic!("kill {kill}: the writer never sets {other:?}"),
        }
        if matches!(
            license.status,
            LicenseStatus::Active | LicenseStatus::Temporary
        ) {
            *current_per_device.entry(license.hardware_id).or_default() += 1;
        }
    }
    // A renewal supersedes and inserts in one transaction: never two current CALs, or none
    // where one was superseded.
    assert!(
        current_per_device.values().all(|&n| n == 1),
        "kill {kill}: {current_per_device:?}"
    );
    let superseded = licenses
        .iter()
        .filter(|l| l.status == LicenseStatus::Superseded)
        .count();
    let devices_with_history = licenses
        .iter()
        .map(|l| l.hardware_id)
        .collect::<BTreeSet<_>>()
        .len();
    assert_eq!(
        devices_with_history,
        current_per_device.len(),
        "kill {kill}"
    );
    assert_eq!(
        superseded + current_per_device.len(),
        licenses.len(),
        "kill {kill}"
    );
    // The event log is written in the same transactions: each license's last event is its
    // status.
    let mut last_event = BTreeMap::new();
    for event in store.license_events().unwrap() {
        last_event.insert(event.license_id, event.status);
    }
    for license in &licenses {
        assert_eq!(
            last_event.get(&license.license_id),
            Some(&license.status),
            "kill {kill}"
        );
    }
    assert_eq!(
        last_event.len(),
        licenses.len(),
        "kill {kill}: events without a license"
    );
    ids
}

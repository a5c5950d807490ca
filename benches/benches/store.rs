//! The license server store's decisions per second with 1 k and with 1 M issued licenses in
//! it: the two should be close, because every query a decision makes is an index lookup (a
//! device's rows, a pack's unexpired active rows), never a scan of the history. See
//! BENCHMARKS.md, "License server store", for how to run and the results.
//!
//! Each size is a store whose pools are the same — pack 1 (per device, 500 CALs) with 400 in
//! use, pack 2 (per user, 150) with 100 in use — and whose other rows are history: expired
//! temporary CALs, superseded, expired, revoked, and active-but-expired CALs (the policy marks
//! those lazily), spread over ~3 rows per past device. The store is built once with
//! [`Store::import_licenses`] (one transaction) and cached under `target/rdpele-bench-store/`
//! (named by size, schema version and [`GENERATION`]); each run works on a copy.
//!
//! Groups, one benchmark per size (`1000`, `1000000`; `--test` runs only `1000`):
//! - `store_decision/valid`: a device presenting its valid permanent CAL: the snapshot (settings,
//!   pack usage, the device's rows, next id) and a commit with nothing to write.
//! - `store_decision/assess_valid`: the same device's assessment (`Store::assess`, a read
//!   transaction, as the host's and the license server's answers to a presented CAL run it):
//!   the snapshot without the packs, which a valid CAL's answer does not ask for.
//! - `store_decision/temporary`: a new device: the snapshot, one insert (plus its event row),
//!   the over-allocation guard and a durable commit (`synchronous = FULL`: an fsync of the WAL).
//! - `store_decision/reissue`: a permanent CAL given back and issued again: the holder's CAL
//!   superseded and a new one from the same pack for a new device (the writes of a renewal:
//!   two changes, the guard, a durable commit; see [`reissue`] for why not a renewal itself).
//!
//! The deciding closures are a few lines written here (not the policy), so the figures are the
//! store's cost. Throughput is one decision per iteration: criterion's `thrpt` is decisions/s.

// A benchmark harness: a fixture that fails to build must stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rdpele_license_server::decision::{Change, PolicyDecision, Snapshot};
use rdpele_license_server::model::{
    IssuedLicense, LicenseStatus, LicensingMode, RequestOutcome, ServerSettings, WindowsVersion,
};
use rdpele_license_server::store::{Holder, NewKeyPack, Store, DATABASE_FILE, SCHEMA_VERSION};

const DAY: Duration = Duration::from_secs(86_400);
/// Bump when the generated data changes, so a stale cached store is not reused.
const GENERATION: u32 = 1;
const PER_DEVICE_TOTAL: u32 = 500;
const PER_DEVICE_IN_USE: u32 = 400;
const PER_USER_TOTAL: u32 = 150;
const PER_USER_IN_USE: u32 = 100;
/// Device numbers of devices that come new during the benchmark start here.
const NEW_DEVICES: u64 = 1 << 40;

/// The benchmark's virtual now: 2026-01-01T00:00:00Z.
fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

/// A device's 20-byte hardware id, spread like real ones (splitmix64 of the device number).
fn hwid(device: u64) -> [u8; 20] {
    let mut state = device;
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)).to_le_bytes()
    };
    let (a, b, c) = (next(), next(), next());
    let mut id = [0; 20];
    id[..8].copy_from_slice(&a);
    id[8..16].copy_from_slice(&b);
    id[16..].copy_from_slice(&c[..4]);
    id
}

fn license(id: u32, device: u64, pack: Option<u32>, status: LicenseStatus) -> IssuedLicense {
    IssuedLicense {
        license_id: id,
        key_pack_id: pack,
        license_type: LicensingMode::PerDevice,
        issued_to_user: format!("user{}", device % 10_000),
        issued_to_computer: format!("PC{device:07}"),
        hardware_id: hwid(device),
        issue_date: now() - 30 * DAY,
        expiration_date: now() + 30 * DAY,
        status,
        revoked_at: None,
        product_version: WindowsVersion::V2022,
        validated_at: None,
    }
}

/// The `n` licenses of a store of size `n`: history first (ids 1…), the licenses in use last.
fn generated(n: u32) -> impl Iterator<Item = IssuedLicense> {
    let current = PER_DEVICE_IN_USE + PER_USER_IN_USE;
    let history = n.checked_sub(current).expect("size below the pools in use");
    let past = (0..history).map(|i| {
        let id = i + 1;
        // ~3 rows per past device, numbered after the current ones.
        let device = 1_000_000 + u64::from(i / 3);
        let age = DAY * (100 + i % 600);
        let (pack, status) = match i % 5 {
            0 => (None, LicenseStatus::Temporary),
            1 => (Some(1), LicenseStatus::Superseded),
            2 => (Some(1), LicenseStatus::Expired),
            3 => (Some(1), LicenseStatus::Active),
            _ => (Some(1), LicenseStatus::Revoked),
        };
        let mut row = license(id, device, pack, status);
        row.issue_date = now() - age;
        row.expiration_date = now() - age + 60 * DAY;
        if status == LicenseStatus::Revoked {
            row.revoked_at = Some(now() - age + DAY);
        }
        if i % 10 == 9 {
            row.license_type = LicensingMode::PerUser;
            row.key_pack_id = if status == LicenseStatus::Temporary {
                None
            } else {
                Some(2)
            };
            row.status = if status == LicenseStatus::Temporary {
                LicenseStatus::Expired
            } else {
                status
            };
        }
        row
    });
    let devices = (0..PER_DEVICE_IN_USE).map(move |d| {
        license(
            history + 1 + d,
            u64::from(d),
            Some(1),
            LicenseStatus::Active,
        )
    });
    let users = (0..PER_USER_IN_USE).map(move |u| {
        let mut row = license(
            history + PER_DEVICE_IN_USE + 1 + u,
            500_000 + u64::from(u),
            Some(2),
            LicenseStatus::Active,
        );
        row.license_type = LicensingMode::PerUser;
        row.issued_to_user = format!("CONTOSO\\user{u}");
        row
    });
    past.chain(devices).chain(users)
}

fn workspace_dir() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest)
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_dir().join("target"))
        .join("rdpele-bench-store")
}

/// A fresh copy of the store of size `n`, built (and cached) on first use.
fn store_of_size(n: u32) -> (Store, PathBuf) {
    let root = target_dir();
    let cached = root.join(format!(
        "licenses-{n}-s{SCHEMA_VERSION}-g{GENERATION}.sqlite"
    ));
    if !cached.exists() {
        // Stores of an older schema or generation are stale: drop them.
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name
                    .to_string_lossy()
                    .starts_with(&format!("licenses-{n}-"))
                {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let building = root.join(format!("building-{n}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&building);
        let started = std::time::Instant::now();
        let store = Store::open(&building).unwrap();
        store
            .set_settings(&ServerSettings {
                version: WindowsVersion::V2022,
                activated: true,
                name: "BENCH-LS".into(),
                domain_or_workgroup: "WORKGROUP".into(),
                product_id: "00000-000-0000000-00000".into(),
            })
            .unwrap();
        for (key_pack_type, total_licenses) in [
            (LicensingMode::PerDevice, PER_DEVICE_TOTAL),
            (LicensingMode::PerUser, PER_USER_TOTAL),
        ] {
            store
                .install_pack(&NewKeyPack {
                    key_pack_type,
                    product_version: WindowsVersion::V2022,
                    total_licenses,
                    installed_at: now() - 800 * DAY,
                })
                .unwrap();
        }
        store.import_licenses(now(), generated(n)).unwrap();
        drop(store); // the last connection checkpoints the WAL into the database file
        std::fs::rename(building.join(DATABASE_FILE), &cached).unwrap();
        let _ = std::fs::remove_dir_all(&building);
        eprintln!(
            "built the {n}-license store in {:.1?}: {}",
            started.elapsed(),
            cached.display()
        );
    }
    let work = root.join(format!("work-{n}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&cached, work.join(DATABASE_FILE)).unwrap();
    let store = Store::open(&work).unwrap();
    let packs = store.packs(now()).unwrap();
    assert_eq!(packs[0].in_use, PER_DEVICE_IN_USE, "the fixture's pool");
    assert_eq!(packs[1].in_use, PER_USER_IN_USE, "the fixture's pool");
    (store, work)
}

/// The device's current CAL is valid: nothing to write.
fn valid(snapshot: &Snapshot) -> PolicyDecision {
    let current = snapshot
        .holder
        .iter()
        .find(|l| l.status == LicenseStatus::Active && l.expiration_date > snapshot.now)
        .expect("an active device");
    PolicyDecision {
        outcome: RequestOutcome::Valid {
            expires_at: current.expiration_date,
        },
        changes: vec![],
    }
}

/// A new device: a 90-day temporary CAL.
fn temporary(snapshot: &Snapshot, device: u64) -> PolicyDecision {
    assert!(snapshot.holder.is_empty());
    let mut new = license(
        snapshot.next_license_id,
        device,
        None,
        LicenseStatus::Temporary,
    );
    new.issue_date = snapshot.now;
    new.expiration_date = snapshot.now + 90 * DAY;
    PolicyDecision {
        outcome: RequestOutcome::Temporary {
            license_id: new.license_id,
            expires_at: new.expiration_date,
        },
        changes: vec![Change::Insert(new)],
    }
}

/// A permanent CAL given back and its license issued again, in one decision: the holder's CAL
/// superseded and a new one from the same pack for `next_device`. The writes of a renewal
/// (a status change and an insert in the same pack, the guard, a durable commit) without a
/// device's history growing with every iteration, which would make the figure depend on how
/// long criterion runs.
fn reissue(snapshot: &Snapshot, next_device: u64) -> PolicyDecision {
    let current = snapshot
        .holder
        .iter()
        .find(|l| l.status == LicenseStatus::Active)
        .expect("an active device");
    let mut new = license(
        snapshot.next_license_id,
        next_device,
        current.key_pack_id,
        LicenseStatus::Active,
    );
    new.issue_date = snapshot.now;
    new.expiration_date = snapshot.now + 70 * DAY;
    PolicyDecision {
        outcome: RequestOutcome::Permanent {
            license_id: new.license_id,
            expires_at: new.expiration_date,
        },
        changes: vec![
            Change::SetStatus {
                license_id: current.license_id,
                status: LicenseStatus::Superseded,
            },
            Change::Insert(new),
        ],
    }
}

fn sizes() -> &'static [u32] {
    if std::env::args().any(|arg| arg == "--test") {
        &[1_000]
    } else {
        &[1_000, 1_000_000]
    }
}

fn store_decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_decision");
    group.throughput(Throughput::Elements(1));
    for &n in sizes() {
        let (store, work) = store_of_size(n);
        if n == 1_000_000 {
            for plan in store.query_plans().unwrap() {
                println!("plan of {}: {}", plan.name, plan.plan.join(" | "));
            }
        }
        let mut device = 0_u64;
        group.bench_with_input(BenchmarkId::new("valid", n), &n, |b, _| {
            b.iter(|| {
                device = (device + 1) % u64::from(PER_DEVICE_IN_USE);
                let holder = Holder::HardwareId(hwid(device));
                black_box(store.decide(&holder, now(), valid).unwrap())
            })
        });
        group.bench_with_input(BenchmarkId::new("assess_valid", n), &n, |b, _| {
            b.iter(|| {
                device = (device + 1) % u64::from(PER_DEVICE_IN_USE);
                let holder = Holder::HardwareId(hwid(device));
                black_box(store.assess(&holder, now(), valid).unwrap())
            })
        });
        let mut device = NEW_DEVICES;
        group.bench_with_input(BenchmarkId::new("temporary", n), &n, |b, _| {
            b.iter(|| {
                device += 1;
                let holder = Holder::HardwareId(hwid(device));
                black_box(
                    store
                        .decide(&holder, now(), |s| temporary(s, device))
                        .unwrap(),
                )
            })
        });
        // The devices holding pack 1's licenses; each reissue passes one to a new device.
        let mut holders: Vec<u64> = (0..u64::from(PER_DEVICE_IN_USE)).collect();
        let mut next_device = 2 * NEW_DEVICES;
        let mut slot = 0;
        group.bench_with_input(BenchmarkId::new("reissue", n), &n, |b, _| {
            b.iter(|| {
                slot = (slot + 1) % holders.len();
                next_device += 1;
                let holder = Holder::HardwareId(hwid(holders[slot]));
                let decision = store
                    .decide(&holder, now(), |s| reissue(s, next_device))
                    .unwrap();
                holders[slot] = next_device;
                black_box(decision)
            })
        });
        assert_eq!(store.packs(now()).unwrap()[0].in_use, PER_DEVICE_IN_USE);
        drop(store);
        let _ = std::fs::remove_dir_all(&work);
    }
    group.finish();
}

criterion_group!(benches, store_decision);
criterion_main!(benches);

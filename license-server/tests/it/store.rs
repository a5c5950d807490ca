//! The license server store: schema and migrations, decisions as one transaction (round trip,
//! rollback, the over-allocation guard), revocation, reports, the virtual clock's persistence,
//! and many threads issuing from a tiny pool at once.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdpele_license_server::clock::Clock;
use rdpele_license_server::decision::{Change, PolicyDecision, Snapshot};
use rdpele_license_server::model::{
    IssuedLicense, KeyPack, LicenseRefusal, LicenseStatus, LicensingMode, RequestOutcome,
    ServerSettings, WindowsVersion,
};
use rdpele_license_server::store::{
    Holder, NewKeyPack, Revocation, RevokeTarget, Store, StoreError, DATABASE_FILE,
};

const DAY: Duration = Duration::from_secs(86_400);

/// 2026-01-01T00:00:00Z.
fn day0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_767_225_600)
}

fn hwid(n: u32) -> [u8; 20] {
    let mut id = [0xA5; 20];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id
}

fn per_device_pack(store: &Store, total: u32) -> KeyPack {
    store
        .install_pack(&NewKeyPack {
            key_pack_type: LicensingMode::PerDevice,
            product_version: WindowsVersion::V2022,
            total_licenses: total,
            installed_at: day0(),
        })
        .unwrap()
}

fn license(
    snapshot: &Snapshot,
    id: u32,
    hardware_id: [u8; 20],
    key_pack_id: Option<u32>,
    status: LicenseStatus,
    lifetime: Duration,
) -> IssuedLicense {
    IssuedLicense {
        license_id: id,
        key_pack_id,
        license_type: LicensingMode::PerDevice,
        issued_to_user: "alice".into(),
        issued_to_computer: format!("PC-{:02x}", hardware_id[3]),
        hardware_id,
        issue_date: snapshot.now,
        expiration_date: snapshot.now + lifetime,
        status,
        revoked_at: None,
        product_version: WindowsVersion::V2022,
        validated_at: None,
    }
}

/// The tests' own little policy: a free permanent license if any pack has one, else refusal.
fn take_free_or_refuse(snapshot: &Snapshot, hardware_id: [u8; 20]) -> PolicyDecision {
    let Some(free) = snapshot
        .packs
        .usage()
        .iter()
        .find(|usage| usage.available() > 0)
    else {
        return PolicyDecision {
            outcome: RequestOutcome::Refused {
                reason: LicenseRefusal::TemporaryExpiredNoneFree,
            },
            changes: vec![],
        };
    };
    let new = license(
        snapshot,
        snapshot.next_license_id,
        hardware_id,
        Some(free.pack.key_pack_id),
        LicenseStatus::Active,
        60 * DAY,
    );
    PolicyDecision {
        outcome: RequestOutcome::Permanent {
            license_id: new.license_id,
            expires_at: new.expiration_date,
        },
        changes: vec![Change::Insert(new)],
    }
}

fn raw(dir: &std::path::Path) -> rusqlite::Connection {
    rusqlite::Connection::open(dir.join(DATABASE_FILE)).unwrap()
}

fn count(dir: &std::path::Path, sql: &str) -> i64 {
    raw(dir).query_row(sql, [], |row| row.get(0)).unwrap()
}

#[test]
fn a_new_store_has_the_schema_and_reopening_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested/data");
    let store = Store::open(&data).unwrap();
    assert_eq!(store.schema_version().unwrap(), 3);
    assert_eq!(store.path(), data.join(DATABASE_FILE));
    let settings = store.settings().unwrap();
    assert_eq!(settings.version, WindowsVersion::V2022);
    assert!(!settings.activated);
    let pack = per_device_pack(&store, 10);
    assert_eq!(pack.key_pack_id, 1);
    let changed = ServerSettings {
        version: WindowsVersion::V2019,
        activated: true,
        name: "LS01".into(),
        domain_or_workgroup: "CONTOSO".into(),
        product_id: "12345-678-9012345-67890".into(),
    };
    store.set_settings(&changed).unwrap();
    drop(store);

    for _ in 0..3 {
        let store = Store::open(&data).unwrap();
        assert_eq!(store.schema_version().unwrap(), 3);
        assert_eq!(store.settings().unwrap(), changed);
        let packs = store.packs(day0()).unwrap();
        assert_eq!(packs.len(), 1);
        assert_eq!(packs[0].pack, pack);
        assert_eq!(packs[0].in_use, 0);
    }
    let tables = count(
        &data,
        "SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name IN \
         ('server_settings', 'key_packs', 'issued_licenses', 'license_events', 'clock')",
    );
    assert_eq!(tables, 5);
    assert_eq!(count(&data, "SELECT COUNT(*) FROM server_settings"), 1);
}

#[test]
fn the_database_is_in_wal_mode_with_foreign_keys_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mode: String = raw(dir.path())
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // An insert naming a pack that does not exist is refused by the foreign key.
    let err = store
        .decide(&Holder::HardwareId(hwid(1)), day0(), |snapshot| {
            let new = license(snapshot, 1, hwid(1), Some(99), LicenseStatus::Active, DAY);
            PolicyDecision {
                outcome: RequestOutcome::Permanent {
                    license_id: 1,
                    expires_at: new.expiration_date,
                },
                changes: vec![Change::Insert(new)],
            }
        })
        .unwrap_err();
    assert!(err.to_string().contains("FOREIGN KEY"), "{err}");
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
}

#[test]
fn a_database_from_elsewhere_or_from_the_future_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    raw(dir.path())
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaTooNew {
                found: 99,
                supported: 3
            }
        ),
        "{err}"
    );

    let other = tempfile::tempdir().unwrap();
    let conn = raw(other.path());
    conn.execute_batch("CREATE TABLE notes (text TEXT); PRAGMA user_version = 3;")
        .unwrap();
    drop(conn);
    let err = Store::open(other.path()).unwrap_err();
    assert!(
        matches!(err, StoreError::NotLicenseServerDatabase { .. }),
        "{err}"
    );
}

/// An assessment's snapshot comes without the packs (counting them walks the pool); a decision
/// that asks for them is made again on a snapshot with them read, in the same transaction, and
/// only its second answer counts. A decision that writes always sees them read.
#[test]
fn an_assessment_reads_the_packs_only_for_a_decision_that_asks_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    per_device_pack(&store, 5);
    for n in 0..3 {
        store
            .decide(&Holder::HardwareId(hwid(n)), day0(), |snapshot| {
                assert!(snapshot.packs.is_read());
                take_free_or_refuse(snapshot, hwid(n))
            })
            .unwrap();
    }
    let holder = Holder::HardwareId(hwid(1));

    let mut calls = Vec::new();
    let answer = store
        .assess(&holder, day0() + DAY, |snapshot| {
            calls.push(snapshot.packs.is_read());
            snapshot.holder.len()
        })
        .unwrap();
    assert_eq!((answer, calls), (1, vec![false]), "not asked: decided once");

    let mut calls = Vec::new();
    let answer = store
        .assess(&holder, day0() + DAY, |snapshot| {
            calls.push(snapshot.packs.is_read());
            snapshot.packs.usage().first().map(|usage| usage.in_use)
        })
        .unwrap();
    assert_eq!(
        (answer, calls),
        (Some(3), vec![false, true]),
        "asked: decided again with the pool counted"
    );

    let requests = [
        (holder.clone(), day0() + DAY, false),
        (holder, day0() + DAY, true),
    ];
    let answers = store
        .assess_many_then(
            &requests,
            |&asks, snapshot| {
                if asks {
                    take_free_or_refuse(snapshot, hwid(1))
                } else {
                    PolicyDecision {
                        outcome: RequestOutcome::Valid {
                            expires_at: snapshot.holder[0].expiration_date,
                        },
                        changes: vec![],
                    }
                }
            },
            |decided| {
                decided
                    .into_iter()
                    .map(|decision| decision.unwrap().outcome)
                    .collect::<Vec<_>>()
            },
        )
        .unwrap();
    assert_eq!(
        answers[0],
        RequestOutcome::Valid {
            expires_at: day0() + 60 * DAY
        }
    );
    assert!(
        matches!(answers[1], RequestOutcome::Permanent { .. }),
        "two licenses still free: {:?}",
        answers[1]
    );
}

#[test]
fn a_decision_round_trips_through_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pack = per_device_pack(&store, 5);
    let holder = Holder::HardwareId(hwid(7));
    // Sub-second parts are dropped: the store keeps seconds.
    let now = day0() + Duration::from_millis(1_700);

    let first = store
        .decide(&holder, now, |snapshot| {
            assert_eq!(snapshot.now, day0() + Duration::from_secs(1));
            assert_eq!(snapshot.next_license_id, 1);
            assert!(snapshot.holder.is_empty());
            assert_eq!(snapshot.packs.usage()[0].in_use, 0);
            let temporary = license(
                snapshot,
                1,
                hwid(7),
                None,
                LicenseStatus::Temporary,
                90 * DAY,
            );
            PolicyDecision {
                outcome: RequestOutcome::Temporary {
                    license_id: 1,
                    expires_at: temporary.expiration_date,
                },
                changes: vec![Change::Insert(temporary)],
            }
        })
        .unwrap();
    assert!(matches!(
        first.outcome,
        RequestOutcome::Temporary { license_id: 1, .. }
    ));

    // The upgrade: the temporary CAL superseded and a permanent one issued, in one decision.
    let later = now + 3 * DAY;
    let mut seen = None;
    store
        .decide(&holder, later, |snapshot| {
            seen = Some(snapshot.clone());
            let permanent = license(
                snapshot,
                2,
                hwid(7),
                Some(pack.key_pack_id),
                LicenseStatus::Active,
                70 * DAY,
            );
            PolicyDecision {
                outcome: RequestOutcome::Permanent {
                    license_id: 2,
                    expires_at: permanent.expiration_date,
                },
                changes: vec![
                    Change::SetStatus {
                        license_id: 1,
                        status: LicenseStatus::Superseded,
                    },
                    Change::Insert(permanent),
                ],
            }
        })
        .unwrap();
    let seen = seen.unwrap();
    assert_eq!(seen.holder.len(), 1);
    assert_eq!(seen.holder[0].status, LicenseStatus::Temporary);
    assert_eq!(seen.holder[0].issued_to_computer, "PC-07");
    assert_eq!(
        seen.holder[0].expiration_date,
        day0() + Duration::from_secs(1) + 90 * DAY
    );
    assert_eq!(seen.next_license_id, 2);
    assert_eq!(seen.settings, store.settings().unwrap());

    let rows = store.holder_licenses(&holder).unwrap();
    assert_eq!(
        rows.iter().map(|l| l.license_id).collect::<Vec<_>>(),
        [2, 1],
        "newest first"
    );
    assert_eq!(rows[0].key_pack_id, Some(pack.key_pack_id));
    assert_eq!(rows[0].status, LicenseStatus::Active);
    assert_eq!(rows[1].status, LicenseStatus::Superseded);
    assert_eq!(store.license(2).unwrap().as_ref(), Some(&rows[0]));
    assert_eq!(store.license(3).unwrap(), None);
    assert_eq!(store.packs(later).unwrap()[0].in_use, 1);
    // Once expired, the permanent CAL is back in the pool.
    assert_eq!(store.packs(later + 71 * DAY).unwrap()[0].in_use, 0);

    let events = store.license_events().unwrap();
    let log: Vec<_> = events.iter().map(|e| (e.license_id, e.status)).collect();
    assert_eq!(
        log,
        [
            (1, LicenseStatus::Temporary),
            (1, LicenseStatus::Superseded),
            (2, LicenseStatus::Active)
        ]
    );
    assert_eq!(events[1].at, day0() + Duration::from_secs(1) + 3 * DAY);
}

#[test]
fn a_validation_marks_that_devices_temporary_cal_once_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pack = per_device_pack(&store, 5);
    let holder = Holder::HardwareId(hwid(7));
    store
        .decide(&holder, day0(), |snapshot| {
            let temporary = license(
                snapshot,
                1,
                hwid(7),
                None,
                LicenseStatus::Temporary,
                90 * DAY,
            );
            let permanent = license(
                snapshot,
                2,
                hwid(7),
                Some(pack.key_pack_id),
                LicenseStatus::Active,
                60 * DAY,
            );
            PolicyDecision {
                outcome: RequestOutcome::Temporary {
                    license_id: 1,
                    expires_at: temporary.expiration_date,
                },
                changes: vec![Change::Insert(temporary), Change::Insert(permanent)],
            }
        })
        .unwrap();
    let later = day0() + DAY;
    assert!(
        !store.record_validation(1, &hwid(8), later).unwrap(),
        "another device's HWID"
    );
    assert!(
        !store.record_validation(2, &hwid(7), later).unwrap(),
        "not a temporary CAL"
    );
    assert!(
        !store.record_validation(3, &hwid(7), later).unwrap(),
        "no such license"
    );
    assert_eq!(store.license(1).unwrap().unwrap().validated_at, None);
    assert!(store.record_validation(1, &hwid(7), later).unwrap());
    assert!(
        !store.record_validation(1, &hwid(7), later + DAY).unwrap(),
        "validated once"
    );
    assert_eq!(store.license(1).unwrap().unwrap().validated_at, Some(later));
    assert_eq!(store.license(2).unwrap().unwrap().validated_at, None);
}

#[test]
fn a_failing_decision_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    per_device_pack(&store, 5);
    let holder = Holder::HardwareId(hwid(1));

    // A change the store cannot apply, after one it could: both rolled back.
    let err = store
        .decide(&holder, day0(), |snapshot| {
            let mut decision = take_free_or_refuse(snapshot, hwid(1));
            decision.changes.push(Change::SetStatus {
                license_id: 42,
                status: LicenseStatus::Revoked,
            });
            decision
        })
        .unwrap_err();
    assert!(
        matches!(err, StoreError::UnknownLicense { license_id: 42 }),
        "{err}"
    );

    // An insert with an id out of sequence.
    let err = store
        .decide(&holder, day0(), |snapshot| {
            let mut decision = take_free_or_refuse(snapshot, hwid(1));
            if let Some(Change::Insert(new)) = decision.changes.first_mut() {
                new.license_id = 7;
            }
            decision
        })
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::LicenseIdOutOfSequence {
                expected: 1,
                found: 7
            }
        ),
        "{err}"
    );

    // A closure that panics: the transaction is rolled back as the panic unwinds.
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        store.decide(&holder, day0(), |_| panic!("the policy fell over"))
    }));
    assert!(panicked.is_err());

    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM issued_licenses"), 0);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM license_events"), 0);
    // The write lock was released: another handle decides at once, this one too.
    let other = Store::open(dir.path()).unwrap();
    other
        .decide(&holder, day0(), |s| take_free_or_refuse(s, hwid(1)))
        .unwrap();
    let decision = store
        .decide(&holder, day0(), |s| take_free_or_refuse(s, hwid(2)))
        .unwrap();
    assert!(matches!(
        decision.outcome,
        RequestOutcome::Permanent { license_id: 2, .. }
    ));
}

#[test]
fn the_store_refuses_to_over_allocate_whatever_the_policy_says() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let pack = per_device_pack(&store, 2);
    let greedy = |snapshot: &Snapshot| {
        let changes = (0..3)
            .map(|i| {
                Change::Insert(license(
                    snapshot,
                    snapshot.next_license_id + i,
                    hwid(i),
                    Some(pack.key_pack_id),
                    LicenseStatus::Active,
                    60 * DAY,
                ))
            })
            .collect();
        PolicyDecision {
            outcome: RequestOutcome::Permanent {
                license_id: 1,
                expires_at: snapshot.now + 60 * DAY,
            },
            changes,
        }
    };
    let err = store
        .decide(&Holder::HardwareId(hwid(0)), day0(), greedy)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OverAllocated {
                key_pack_id: 1,
                in_use: 3,
                total: 2
            }
        ),
        "{err}"
    );
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM issued_licenses"), 0);

    // Two fit; the third is refused in its own decision.
    for n in 0..2 {
        store
            .decide(&Holder::HardwareId(hwid(n)), day0(), |s| {
                take_free_or_refuse(s, hwid(n))
            })
            .unwrap();
    }
    let one_more = |snapshot: &Snapshot| {
        let new = license(
            snapshot,
            snapshot.next_license_id,
            hwid(9),
            Some(1),
            LicenseStatus::Active,
            DAY,
        );
        PolicyDecision {
            outcome: RequestOutcome::Permanent {
                license_id: new.license_id,
                expires_at: new.expiration_date,
            },
            changes: vec![Change::Insert(new)],
        }
    };
    let err = store
        .decide(&Holder::HardwareId(hwid(9)), day0(), one_more)
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OverAllocated {
                in_use: 3,
                total: 2,
                ..
            }
        ),
        "{err}"
    );

    // Expired and revoked licenses are back in the pool.
    store
        .revoke(
            &RevokeTarget::HardwareId(hwid(0)),
            day0() + DAY,
            |snapshot| Revocation {
                answer: (),
                changes: vec![Change::SetStatus {
                    license_id: snapshot.targets[0].license_id,
                    status: LicenseStatus::Revoked,
                }],
            },
        )
        .unwrap();
    store
        .decide(&Holder::HardwareId(hwid(9)), day0() + DAY, one_more)
        .unwrap();
    assert_eq!(store.packs(day0() + DAY).unwrap()[0].in_use, 2);
    // A status change counts as well: the revoked license made active again would be a third.
    let reactivate = |_: &Snapshot| PolicyDecision {
        outcome: RequestOutcome::Valid {
            expires_at: day0() + 60 * DAY,
        },
        changes: vec![Change::SetStatus {
            license_id: 1,
            status: LicenseStatus::Active,
        }],
    };
    let err = store
        .decide(&Holder::HardwareId(hwid(0)), day0() + DAY, reactivate)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::OverAllocated { in_use: 3, .. }),
        "{err}"
    );
    assert_eq!(
        store.license(1).unwrap().unwrap().status,
        LicenseStatus::Revoked
    );
    assert_eq!(store.packs(day0() + 61 * DAY).unwrap()[0].in_use, 0);
    store
        .decide(&Holder::HardwareId(hwid(10)), day0() + 61 * DAY, one_more)
        .unwrap();
}

#[test]
fn a_clock_set_back_does_not_block_unrelated_decisions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    per_device_pack(&store, 1);
    // Day 0: a 10-day CAL; day 20: the pool is free again and a second device takes it.
    let ten_days = |snapshot: &Snapshot, n: u32| {
        let new = license(
            snapshot,
            snapshot.next_license_id,
            hwid(n),
            Some(1),
            LicenseStatus::Active,
            10 * DAY,
        );
        PolicyDecision {
            outcome: RequestOutcome::Permanent {
                license_id: new.license_id,
                expires_at: new.expiration_date,
            },
            changes: vec![Change::Insert(new)],
        }
    };
    store
        .decide(&Holder::HardwareId(hwid(1)), day0(), |s| ten_days(s, 1))
        .unwrap();
    store
        .decide(&Holder::HardwareId(hwid(2)), day0() + 20 * DAY, |s| {
            ten_days(s, 2)
        })
        .unwrap();
    // Back to day 5: the day-0 CAL is unexpired again and the day-20 one unexpired still, as on
    // a server whose clock went back: 2 in use out of 1.
    let back = day0() + 5 * DAY;
    assert_eq!(store.packs(back).unwrap()[0].in_use, 2);
    // A temporary CAL touches no pack: allowed.
    store
        .decide(&Holder::HardwareId(hwid(3)), back, |snapshot| {
            let new = license(
                snapshot,
                snapshot.next_license_id,
                hwid(3),
                None,
                LicenseStatus::Temporary,
                90 * DAY,
            );
            PolicyDecision {
                outcome: RequestOutcome::Temporary {
                    license_id: new.license_id,
                    expires_at: new.expiration_date,
                },
                changes: vec![Change::Insert(new)],
            }
        })
        .unwrap();
    // Taking from the over-full pack is not.
    let err = store
        .decide(&Holder::HardwareId(hwid(4)), back, |s| ten_days(s, 4))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::OverAllocated {
                in_use: 3,
                total: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn revocation_reads_its_targets_and_records_when() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    per_device_pack(&store, 10);
    for n in 0..3 {
        store
            .decide(&Holder::HardwareId(hwid(n)), day0(), |s| {
                take_free_or_refuse(s, hwid(n))
            })
            .unwrap();
    }
    let when = day0() + 2 * DAY;
    // By machine name, case-insensitively, as an administrator types it.
    let revoked = store
        .revoke(&RevokeTarget::Machine("pc-01".into()), when, |snapshot| {
            assert_eq!(snapshot.now, when);
            assert_eq!(snapshot.targets.len(), 1);
            assert!(snapshot.revoked.is_empty());
            assert_eq!(snapshot.packs[0].in_use, 3);
            let ids: Vec<u32> = snapshot.targets.iter().map(|l| l.license_id).collect();
            Revocation {
                changes: ids
                    .iter()
                    .map(|&license_id| Change::SetStatus {
                        license_id,
                        status: LicenseStatus::Revoked,
                    })
                    .collect(),
                answer: ids,
            }
        })
        .unwrap();
    assert_eq!(revoked, [2]);
    let row = store.license(2).unwrap().unwrap();
    assert_eq!(row.status, LicenseStatus::Revoked);
    assert_eq!(row.revoked_at, Some(when));

    let later = when + DAY;
    store
        .revoke(&RevokeTarget::HardwareId(hwid(0)), later, |snapshot| {
            assert_eq!(snapshot.revoked.len(), 1);
            assert_eq!(snapshot.revoked[0].license_id, 2);
            assert_eq!(snapshot.targets[0].license_id, 1);
            Revocation {
                answer: (),
                changes: vec![],
            }
        })
        .unwrap();

    let report = store.pool_report(later).unwrap();
    assert_eq!(report.packs.len(), 1);
    let pack = &report.packs[0];
    assert_eq!(
        (pack.installed, pack.issued, pack.available, pack.revoked),
        (10, 2, 8, 1)
    );
    assert!(report.temporary.is_empty());
    assert!(report.overused.is_empty());
    assert_eq!(store.issued_licenses().unwrap().len(), 3);
}

#[test]
fn users_are_found_case_insensitively_and_overuse_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .decide(&Holder::User("CONTOSO\\Alice".into()), day0(), |snapshot| {
            let mut new = license(snapshot, 1, hwid(1), None, LicenseStatus::Active, 60 * DAY);
            new.license_type = LicensingMode::PerUser;
            new.issued_to_user = "CONTOSO\\Alice".into();
            let mut temporary = license(
                snapshot,
                2,
                hwid(2),
                None,
                LicenseStatus::Temporary,
                90 * DAY,
            );
            temporary.product_version = WindowsVersion::V2019;
            PolicyDecision {
                outcome: RequestOutcome::Permanent {
                    license_id: 1,
                    expires_at: new.expiration_date,
                },
                changes: vec![Change::Insert(new), Change::Insert(temporary)],
            }
        })
        .unwrap();
    let rows = store
        .holder_licenses(&Holder::User("contoso\\ALICE".into()))
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].issued_to_user, "CONTOSO\\Alice");
    let report = store.pool_report(day0()).unwrap();
    assert_eq!(report.overused.len(), 1);
    assert_eq!(report.overused[0].license_type, LicensingMode::PerUser);
    assert_eq!(report.overused[0].issued, 1);
    assert_eq!(report.temporary.len(), 1);
    assert_eq!(report.temporary[0].product_version, WindowsVersion::V2019);
}

#[test]
fn decisions_read_through_indexes_not_scans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    for plan in store.query_plans().unwrap() {
        let text = plan.plan.join(" | ");
        println!("{}: {text}", plan.name);
        // The only scan allowed is of key_packs (`p`): a handful of rows.
        let scans: Vec<_> = plan
            .plan
            .iter()
            .filter(|line| line.starts_with("SCAN"))
            .collect();
        assert!(
            scans.iter().all(|line| *line == "SCAN p"),
            "{}: {text}",
            plan.name
        );
        assert!(text.contains("SEARCH"), "{}: {text}", plan.name);
        assert!(!text.contains("TEMP B-TREE"), "{}: {text}", plan.name);
    }
}

#[test]
fn the_virtual_clock_persists_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::frozen(day0() + Duration::from_millis(300));
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(clock.now(&store).unwrap(), day0());
        assert_eq!(clock.advance(&store, 30 * DAY).unwrap(), day0() + 30 * DAY);
        assert_eq!(
            clock
                .advance(&store, Duration::from_secs(12 * 3600))
                .unwrap(),
            day0() + 30 * DAY + Duration::from_secs(12 * 3600)
        );
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.clock_offset().unwrap(), 30 * 86_400 + 12 * 3600);
    assert_eq!(
        Clock::frozen(day0()).now(&store).unwrap(),
        day0() + 30 * DAY + Duration::from_secs(12 * 3600)
    );
    // Another process sees the same virtual time.
    let other = Store::open(dir.path()).unwrap();
    assert_eq!(clock.now(&other).unwrap(), clock.now(&store).unwrap());

    // Setting it before real time gives a negative offset, kept as well.
    assert_eq!(
        clock.set(&store, day0() - 10 * DAY).unwrap(),
        day0() - 10 * DAY
    );
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.clock_offset().unwrap(), -10 * 86_400);
    assert_eq!(clock.now(&store).unwrap(), day0() - 10 * DAY);

    // On the system clock: real time plus the offset.
    let system = Clock::system().now(&store).unwrap();
    let expected = SystemTime::now() - 10 * DAY;
    let gap = expected
        .duration_since(system)
        .unwrap_or_else(|e| e.duration());
    assert!(gap < Duration::from_secs(5), "{gap:?}");
}

#[test]
fn many_handles_opening_a_new_directory_at_once_create_one_schema() {
    let dir = tempfile::tempdir().unwrap();
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let dir = dir.path().to_path_buf();
            let start = Arc::clone(&start);
            thread::spawn(move || {
                start.wait();
                let store = Store::open(&dir)?;
                store.schema_version()
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().unwrap().unwrap(), 3);
    }
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM server_settings"), 1);
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM clock"), 1);
}

#[test]
fn sixteen_threads_on_a_pool_of_five_issue_exactly_five() {
    const THREADS: u32 = 16;
    const REQUESTS: u32 = 8;
    const POOL: u32 = 5;
    let dir = tempfile::tempdir().unwrap();
    per_device_pack(&Store::open(dir.path()).unwrap(), POOL);
    let start = Arc::new(Barrier::new(usize::try_from(THREADS).unwrap()));
    let began = std::time::Instant::now();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let dir = dir.path().to_path_buf();
            let start = Arc::clone(&start);
            thread::spawn(move || -> Result<Vec<RequestOutcome>, StoreError> {
                let store = Store::open(&dir)?;
                start.wait();
                let mut outcomes = Vec::new();
                for r in 0..REQUESTS {
                    let device = hwid(t * REQUESTS + r);
                    let decision =
                        store.decide(&Holder::HardwareId(device), day0(), |snapshot| {
                            take_free_or_refuse(snapshot, device)
                        })?;
                    outcomes.push(decision.outcome);
                }
                Ok(outcomes)
            })
        })
        .collect();
    let mut permanent = 0;
    let mut refused = 0;
    for thread in threads {
        let outcomes = thread.join().unwrap().unwrap();
        assert_eq!(
            outcomes.len(),
            usize::try_from(REQUESTS).unwrap(),
            "every request answered"
        );
        for outcome in outcomes {
            match outcome {
                RequestOutcome::Permanent { .. } => permanent += 1,
                RequestOutcome::Refused {
                    reason: LicenseRefusal::TemporaryExpiredNoneFree,
                } => refused += 1,
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    println!(
        "{} decisions on {THREADS} threads in {:?}",
        THREADS * REQUESTS,
        began.elapsed()
    );
    assert_eq!(permanent, POOL);
    assert_eq!(refused, THREADS * REQUESTS - POOL);
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(*) FROM issued_licenses WHERE license_status = 'active'"
        ),
        5
    );
    assert_eq!(
        count(
            dir.path(),
            "SELECT COUNT(DISTINCT license_id) FROM issued_licenses"
        ),
        5
    );
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.packs(day0()).unwrap()[0].in_use, POOL);
    assert_eq!(store.check_integrity().unwrap(), Vec::<String>::new());
}

/// Group commit: decisions in one transaction each see the ones before, a failing one is rolled
/// back alone (its savepoint), and the rest commit together.
#[test]
fn decisions_committed_together_see_each_other_and_fail_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    per_device_pack(&store, 2);
    // Device 2's decision is spoiled (a change the store cannot apply); 1 and 3 take the two
    // licenses, 4 finds the pool empty.
    let requests: Vec<(Holder, SystemTime, u32)> = (1..=4)
        .map(|device| (Holder::HardwareId(hwid(device)), day0(), device))
        .collect();
    let decided = store
        .decide_many(&requests, |&device, snapshot| {
            let mut decision = take_free_or_refuse(snapshot, hwid(device));
            if device == 2 {
                decision.changes.push(Change::SetStatus {
                    license_id: 42,
                    status: LicenseStatus::Revoked,
                });
            }
            decision
        })
        .unwrap();
    assert_eq!(decided.len(), 4);
    assert!(matches!(
        decided[0].as_ref().unwrap().outcome,
        RequestOutcome::Permanent { license_id: 1, .. }
    ));
    assert!(matches!(
        decided[1],
        Err(StoreError::UnknownLicense { license_id: 42 })
    ));
    assert!(matches!(
        decided[2].as_ref().unwrap().outcome,
        RequestOutcome::Permanent { license_id: 2, .. }
    ));
    assert!(matches!(
        decided[3].as_ref().unwrap().outcome,
        RequestOutcome::Refused { .. }
    ));
    assert_eq!(count(dir.path(), "SELECT COUNT(*) FROM issued_licenses"), 2);
    let holders: Vec<[u8; 20]> = store
        .issued_licenses()
        .unwrap()
        .iter()
        .map(|license| license.hardware_id)
        .collect();
    assert_eq!(holders, [hwid(1), hwid(3)]);
}

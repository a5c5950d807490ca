//! The Windows licensing rules (DESIGN §5), one table-driven test per rule row, each on
//! snapshots built here: every test fails if its rule is broken.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_license_server::decision::{Change, PackUsage, Packs, PolicyDecision, Snapshot};
use rdpele_license_server::model::{
    HostInfo, IssuedLicense, KeyPack, LicenseRefusal, LicenseRequest, LicenseStatus, LicensingMode,
    PresentedCal, RequestOutcome, ServerSettings, WindowsVersion,
};
use rdpele_license_server::policy::{
    self, admit_without_license_server, days, grace_period, install_pack, returns_old_license,
    revoke, serves, GraceState, InstallError, RevocationLimitSnapshot, RevokeRefusal,
};

use LicenseStatus::{Active, Expired, Revoked, Superseded, Temporary};
use LicensingMode::{PerDevice, PerUser};
use WindowsVersion::{V2016, V2019, V2022, V2025};

const HWID: [u8; 20] = [7; 20];
const NEXT_ID: u32 = 100;

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// Day `n` of the test's calendar.
fn day(n: u64) -> SystemTime {
    t0() + days(n)
}

fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}

fn settings(version: WindowsVersion, activated: bool) -> ServerSettings {
    ServerSettings {
        version,
        activated,
        name: "RDPELE-LS".into(),
        domain_or_workgroup: "WORKGROUP".into(),
        product_id: "00000-000-0000000-00000".into(),
    }
}

fn pack(id: u32, mode: LicensingMode, version: WindowsVersion, total: u32) -> KeyPack {
    KeyPack {
        key_pack_id: id,
        key_pack_type: mode,
        product_version: version,
        total_licenses: total,
        installed_at: day(0),
    }
}

fn usage(pack: KeyPack, in_use: u32) -> PackUsage {
    PackUsage { pack, in_use }
}

fn snap(
    now: SystemTime,
    activated: bool,
    packs: Vec<PackUsage>,
    holder: Vec<IssuedLicense>,
) -> Snapshot {
    Snapshot {
        now,
        settings: settings(V2025, activated),
        packs: Packs::read(packs),
        holder,
        next_license_id: NEXT_ID,
    }
}

#[allow(clippy::too_many_arguments)]
fn row(
    license_id: u32,
    key_pack_id: Option<u32>,
    mode: LicensingMode,
    status: LicenseStatus,
    issued: SystemTime,
    expires: SystemTime,
    version: WindowsVersion,
) -> IssuedLicense {
    IssuedLicense {
        license_id,
        key_pack_id,
        license_type: mode,
        issued_to_user: "alice".into(),
        issued_to_computer: "PC-1".into(),
        hardware_id: HWID,
        issue_date: issued,
        expiration_date: expires,
        status,
        revoked_at: (status == Revoked).then_some(issued),
        product_version: version,
        // A temporary CAL whose device signed in with it at once (the usual case); tests of
        // the validation rule clear it.
        validated_at: (status == Temporary).then_some(issued),
    }
}

/// A temporary CAL issued on `issued` (90 days) for a host of `version`, validated.
fn temporary(license_id: u32, issued: SystemTime, version: WindowsVersion) -> IssuedLicense {
    row(
        license_id,
        None,
        PerDevice,
        Temporary,
        issued,
        issued + days(90),
        version,
    )
}

/// A permanent per-device CAL of pack 1.
fn permanent(license_id: u32, status: LicenseStatus, expires: SystemTime) -> IssuedLicense {
    row(
        license_id,
        Some(1),
        PerDevice,
        status,
        day(0),
        expires,
        V2022,
    )
}

fn presented(license: &IssuedLicense) -> PresentedCal {
    PresentedCal {
        license_id: Some(license.license_id),
        temporary: license.key_pack_id.is_none() && license.license_type == PerDevice,
        license_type: license.license_type,
        product_version: license.product_version,
        not_after: license.expiration_date,
    }
}

fn request(
    mode: LicensingMode,
    host: WindowsVersion,
    presented: Option<PresentedCal>,
) -> LicenseRequest {
    LicenseRequest {
        host: HostInfo {
            version: host,
            mode,
        },
        hardware_id: HWID,
        machine: "PC-1".into(),
        user: "alice".into(),
        presented,
    }
}

fn decide(request: &LicenseRequest, snapshot: &Snapshot) -> PolicyDecision {
    policy::decide(request, snapshot, &mut StdRng::seed_from_u64(1))
}

/// The one row a decision inserts.
fn inserted(decision: &PolicyDecision) -> &IssuedLicense {
    let inserts: Vec<&IssuedLicense> = decision
        .changes
        .iter()
        .filter_map(|change| match change {
            Change::Insert(license) => Some(license),
            Change::SetStatus { .. } => None,
        })
        .collect();
    assert_eq!(inserts.len(), 1, "one insert expected: {decision:?}");
    inserts[0]
}

fn status_changes(decision: &PolicyDecision) -> Vec<(u32, LicenseStatus)> {
    decision
        .changes
        .iter()
        .filter_map(|change| match change {
            Change::SetStatus { license_id, status } => Some((*license_id, *status)),
            Change::Insert(_) => None,
        })
        .collect()
}

/// The kind of an outcome, for tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Temporary,
    Permanent,
    Renewed,
    Valid,
    Refused(LicenseRefusal),
}

fn kind(outcome: &RequestOutcome) -> Kind {
    match outcome {
        RequestOutcome::Temporary { .. } => Kind::Temporary,
        RequestOutcome::Permanent { .. } => Kind::Permanent,
        RequestOutcome::Renewed { .. } => Kind::Renewed,
        RequestOutcome::Valid { .. } => Kind::Valid,
        RequestOutcome::Refused { reason } => Kind::Refused(*reason),
    }
}

fn expires_at(outcome: &RequestOutcome) -> SystemTime {
    match outcome {
        RequestOutcome::Temporary { expires_at, .. }
        | RequestOutcome::Permanent { expires_at, .. }
        | RequestOutcome::Renewed { expires_at, .. }
        | RequestOutcome::Valid { expires_at } => *expires_at,
        RequestOutcome::Refused { reason } => panic!("refused: {reason:?}"),
    }
}

/// Whole days from `from` to `to`.
fn days_between(from: SystemTime, to: SystemTime) -> u64 {
    let span = to.duration_since(from).unwrap();
    assert_eq!(span.as_secs() % 86_400, 0, "not whole days: {span:?}");
    span.as_secs() / 86_400
}

#[test]
fn first_logon_per_device_gets_a_90_day_temporary_cal_from_no_pack() {
    let free = || vec![usage(pack(1, PerDevice, V2022, 10), 0)];
    let full = || vec![usage(pack(1, PerDevice, V2022, 10), 10)];
    // (case, activated, packs): the temporary CAL is unlimited — issued whatever the pool holds.
    let cases: Vec<(&str, bool, Vec<PackUsage>)> = vec![
        ("no packs", true, vec![]),
        ("a free pack", true, free()),
        ("a full pack", true, full()),
        ("unactivated", false, free()),
    ];
    for (case, activated, packs) in cases {
        let snapshot = snap(day(3), activated, packs, vec![]);
        let decision = decide(&request(PerDevice, V2022, None), &snapshot);
        assert_eq!(
            decision.outcome,
            RequestOutcome::Temporary {
                license_id: NEXT_ID,
                expires_at: day(93)
            },
            "{case}"
        );
        let license = inserted(&decision);
        assert_eq!(license.license_id, NEXT_ID, "{case}");
        assert_eq!(license.key_pack_id, None, "{case}: from no pack");
        assert_eq!(license.status, Temporary, "{case}");
        assert_eq!(license.product_version, V2022, "{case}: the host's version");
        assert_eq!(license.issue_date, day(3), "{case}");
        assert_eq!(license.hardware_id, HWID, "{case}");
        assert_eq!(decision.changes.len(), 1, "{case}: nothing else changes");
    }
}

#[test]
fn next_logon_upgrades_a_temporary_cal_when_activated_and_one_is_free() {
    let temp = temporary(5, day(0), V2022);
    // (case, activated, pack, in use, expected)
    let cases = [
        (
            "free",
            true,
            pack(1, PerDevice, V2022, 10),
            9,
            Kind::Permanent,
        ),
        ("full", true, pack(1, PerDevice, V2022, 10), 10, Kind::Valid),
        (
            "unactivated",
            false,
            pack(1, PerDevice, V2022, 10),
            0,
            Kind::Valid,
        ),
        (
            "per-user pack",
            true,
            pack(1, PerUser, V2022, 10),
            0,
            Kind::Valid,
        ),
        (
            "older pack",
            true,
            pack(1, PerDevice, V2019, 10),
            0,
            Kind::Valid,
        ),
        (
            "newer pack",
            true,
            pack(1, PerDevice, V2025, 10),
            0,
            Kind::Permanent,
        ),
    ];
    for (case, activated, pack, in_use, expected) in cases {
        let total = pack.total_licenses;
        let snapshot = snap(
            day(1),
            activated,
            vec![usage(pack, in_use)],
            vec![temp.clone()],
        );
        let decision = decide(
            &request(PerDevice, V2022, Some(presented(&temp))),
            &snapshot,
        );
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        match expected {
            Kind::Permanent => {
                let license = inserted(&decision);
                assert_eq!(license.key_pack_id, Some(1), "{case}");
                assert_eq!(license.status, Active, "{case}");
                assert!(in_use < total, "{case}");
                assert_eq!(
                    status_changes(&decision),
                    vec![(5, Superseded)],
                    "{case}: the temporary CAL is replaced"
                );
            }
            _ => {
                assert_eq!(
                    decision.outcome,
                    RequestOutcome::Valid {
                        expires_at: day(90)
                    }
                );
                assert!(decision.changes.is_empty(), "{case}: {decision:?}");
            }
        }
    }
}

#[test]
fn temporary_cal_goes_on_until_day_90_then_the_client_is_refused() {
    let temp = temporary(5, day(0), V2022);
    let refused = Kind::Refused(LicenseRefusal::TemporaryExpiredNoneFree);
    // (now, a license free?, expected)
    let cases = [
        (day(1), false, Kind::Valid),
        (day(60), false, Kind::Valid),
        (day(89) + hours(23), false, Kind::Valid),
        (day(90), false, refused),
        (day(91), false, refused),
        (day(400), false, refused),
        // The upgrade is tried first, even once the temporary CAL has expired.
        (day(100), true, Kind::Permanent),
    ];
    for (now, free, expected) in cases {
        let in_use = if free { 9 } else { 10 };
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerDevice, V2022, 10), in_use)],
            vec![temp.clone()],
        );
        let decision = decide(
            &request(PerDevice, V2022, Some(presented(&temp))),
            &snapshot,
        );
        assert_eq!(kind(&decision.outcome), expected, "{now:?}");
        if expected == Kind::Valid {
            assert_eq!(expires_at(&decision.outcome), day(90));
        }
    }
}

#[test]
fn only_a_temporary_cal_a_sign_in_validated_is_upgraded() {
    let unvalidated = IssuedLicense {
        validated_at: None,
        ..temporary(5, day(0), V2022)
    };
    let validated = temporary(5, day(0), V2022);
    let from_elsewhere = PresentedCal {
        license_id: None,
        ..presented(&unvalidated)
    };
    // (case, the holder's row, what it presents, now, expected)
    let cases = [
        (
            "never signed in: kept",
            &unvalidated,
            Some(presented(&unvalidated)),
            day(1),
            Kind::Valid,
        ),
        (
            "signed in: upgraded",
            &validated,
            Some(presented(&validated)),
            day(1),
            Kind::Permanent,
        ),
        (
            "never signed in, CAL lost: the same temporary CAL again",
            &unvalidated,
            None,
            day(1),
            Kind::Temporary,
        ),
        (
            "another license server's temporary CAL: no validation to check",
            &unvalidated,
            Some(from_elsewhere),
            day(1),
            Kind::Permanent,
        ),
        (
            "never signed in by day 90: refused",
            &unvalidated,
            Some(presented(&unvalidated)),
            day(90),
            Kind::Refused(LicenseRefusal::TemporaryExpiredNotValidated),
        ),
    ];
    for (case, row, presented_cal, now, expected) in cases {
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerDevice, V2022, 10), 0)],
            vec![row.clone()],
        );
        let decision = decide(&request(PerDevice, V2022, presented_cal), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        match expected {
            Kind::Valid => assert!(decision.changes.is_empty(), "{case}: {decision:?}"),
            Kind::Temporary => {
                let again = inserted(&decision);
                assert_eq!(again.expiration_date, day(90), "{case}");
                assert_eq!(again.validated_at, None, "{case}: still unvalidated");
            }
            _ => {}
        }
    }
}

#[test]
fn permanent_lifetime_is_random_52_to_89_days() {
    let temp = temporary(5, day(0), V2022);
    let snapshot = snap(
        day(2),
        true,
        vec![usage(pack(1, PerDevice, V2022, 10), 0)],
        vec![temp.clone()],
    );
    let request = request(PerDevice, V2022, Some(presented(&temp)));
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..600 {
        let decision = policy::decide(&request, &snapshot, &mut StdRng::seed_from_u64(seed));
        let lifetime = days_between(day(2), expires_at(&decision.outcome));
        assert!(
            (52..=89).contains(&lifetime),
            "seed {seed}: {lifetime} days"
        );
        assert_eq!(inserted(&decision).expiration_date, day(2) + days(lifetime));
        // Seedable: the same seed gives the same decision.
        let again = policy::decide(&request, &snapshot, &mut StdRng::seed_from_u64(seed));
        assert_eq!(decision, again);
        seen.insert(lifetime);
    }
    assert_eq!(
        seen.len(),
        38,
        "every lifetime from 52 to 89 days is drawn: {seen:?}"
    );
}

#[test]
fn renewal_within_7_days_gives_a_new_random_52_to_89_days() {
    // The holder's CAL is the pack's only license: renewal reuses the holder's own license.
    let now = day(50);
    // (case, CAL status, expires, its pack present, other pack free, expected)
    let cases = [
        (
            "30 days left",
            Active,
            now + days(30),
            true,
            false,
            Kind::Valid,
        ),
        (
            "8 days left",
            Active,
            now + days(8),
            true,
            false,
            Kind::Valid,
        ),
        (
            "7 days left",
            Active,
            now + days(7),
            true,
            false,
            Kind::Renewed,
        ),
        (
            "1 hour left",
            Active,
            now + hours(1),
            true,
            false,
            Kind::Renewed,
        ),
        (
            "pack gone, other free",
            Active,
            now + days(3),
            false,
            true,
            Kind::Renewed,
        ),
        (
            "pack gone, none free",
            Active,
            now + days(3),
            false,
            false,
            Kind::Valid,
        ),
        (
            "revoked, none free",
            Revoked,
            now + days(3),
            true,
            false,
            Kind::Valid,
        ),
    ];
    for (case, status, expires, pack_present, other_free, expected) in cases {
        let cal = permanent(5, status, expires);
        let mut packs = vec![usage(
            pack(2, PerDevice, V2022, 5),
            if other_free { 4 } else { 5 },
        )];
        if pack_present {
            // A revoked CAL does not count: the pack is full with other holders then.
            packs.insert(0, usage(pack(1, PerDevice, V2022, 1), 1));
        }
        let snapshot = snap(now, true, packs, vec![cal.clone()]);
        let decision = decide(&request(PerDevice, V2022, Some(presented(&cal))), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        if expected == Kind::Renewed {
            let license = inserted(&decision);
            let lifetime = days_between(now, license.expiration_date);
            assert!((52..=89).contains(&lifetime), "{case}: {lifetime}");
            let same_pack = if pack_present { 1 } else { 2 };
            assert_eq!(license.key_pack_id, Some(same_pack), "{case}");
            assert_eq!(status_changes(&decision), vec![(5, Superseded)], "{case}");
        } else {
            assert_eq!(
                decision.outcome,
                RequestOutcome::Valid {
                    expires_at: expires
                },
                "{case}"
            );
            assert!(decision.changes.is_empty(), "{case}");
        }
    }
}

#[test]
fn per_device_cals_cannot_be_over_allocated() {
    let temp = temporary(5, day(0), V2022);
    // (case, packs as (id, total, in_use), expected pack)
    let cases = [
        ("empty pool", vec![(1u32, 3u32, 0u32)], Some(1u32)),
        ("one left", vec![(1, 3, 2)], Some(1)),
        ("exhausted", vec![(1, 3, 3)], None),
        ("over-used pack", vec![(1, 3, 5)], None),
        (
            "first full, second free",
            vec![(1, 3, 3), (2, 2, 1)],
            Some(2),
        ),
        ("all full", vec![(1, 3, 3), (2, 2, 2)], None),
    ];
    for (case, packs, expected) in cases {
        let packs = packs
            .iter()
            .map(|&(id, total, in_use)| usage(pack(id, PerDevice, V2022, total), in_use))
            .collect();
        let snapshot = snap(day(100), true, packs, vec![temp.clone()]);
        let decision = decide(
            &request(PerDevice, V2022, Some(presented(&temp))),
            &snapshot,
        );
        match expected {
            Some(id) => {
                assert_eq!(kind(&decision.outcome), Kind::Permanent, "{case}");
                let license = inserted(&decision);
                assert_eq!(license.key_pack_id, Some(id), "{case}");
                let chosen = snapshot
                    .packs
                    .usage()
                    .iter()
                    .find(|usage| usage.pack.key_pack_id == id)
                    .unwrap();
                assert!(chosen.in_use < chosen.pack.total_licenses, "{case}");
            }
            None => assert_eq!(
                decision.outcome,
                RequestOutcome::Refused {
                    reason: LicenseRefusal::TemporaryExpiredNoneFree
                },
                "{case}"
            ),
        }
    }
}

#[test]
fn expired_permanent_cals_return_to_the_pool() {
    let lapsed = permanent(5, Active, day(60));
    // (case, now, in use of the 1-license pack, expected)
    let cases = [
        ("free again after expiry", day(61), 0, Kind::Permanent),
        (
            "taken by another device",
            day(61),
            1,
            Kind::Refused(LicenseRefusal::Expired),
        ),
    ];
    for (case, now, in_use, expected) in cases {
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerDevice, V2022, 1), in_use)],
            vec![lapsed.clone()],
        );
        let decision = decide(
            &request(PerDevice, V2022, Some(presented(&lapsed))),
            &snapshot,
        );
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        // The lapsed row is marked Expired, never Superseded (it held nothing any more).
        assert_eq!(status_changes(&decision), vec![(5, Expired)], "{case}");
    }
    // Another device takes the license an expired CAL held: the pool counts Active, unexpired
    // rows only, so a pack whose only license lapsed is free.
    let other = temporary(9, day(30), V2022);
    let mut other_request = request(PerDevice, V2022, Some(presented(&other)));
    other_request.hardware_id = [9; 20];
    let mut other_row = other.clone();
    other_row.hardware_id = [9; 20];
    let snapshot = snap(
        day(61),
        true,
        vec![usage(pack(1, PerDevice, V2022, 1), 0)],
        vec![other_row],
    );
    assert_eq!(
        kind(&decide(&other_request, &snapshot).outcome),
        Kind::Permanent
    );
}

#[test]
fn revoked_holder_is_admitted_until_its_cal_expires() {
    let revoked = permanent(5, Revoked, day(40));
    // The revoked license is back in the pool: the one-license pack was given to another
    // device (in use 1), and this holder still gets in until day 40.
    // (now, in use, expected)
    let cases = [
        (day(10), 1, Kind::Valid),
        (day(35), 1, Kind::Valid),
        (day(39) + hours(23), 1, Kind::Valid),
        (day(35), 0, Kind::Renewed),
        (day(40), 1, Kind::Refused(LicenseRefusal::Expired)),
        (day(41), 0, Kind::Permanent),
    ];
    for (now, in_use, expected) in cases {
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerDevice, V2022, 1), in_use)],
            vec![revoked.clone()],
        );
        let decision = decide(
            &request(PerDevice, V2022, Some(presented(&revoked))),
            &snapshot,
        );
        assert_eq!(kind(&decision.outcome), expected, "{now:?}");
        if expected == Kind::Valid {
            assert_eq!(expires_at(&decision.outcome), day(40));
        }
        // The revoked row stays revoked: it is never superseded nor marked expired.
        assert!(
            status_changes(&decision).is_empty(),
            "{now:?}: {decision:?}"
        );
    }
}

fn revocation_snapshot(
    packs: Vec<KeyPack>,
    revoked: Vec<IssuedLicense>,
) -> RevocationLimitSnapshot {
    RevocationLimitSnapshot {
        now: day(30),
        packs,
        revoked,
    }
}

/// `count` revoked per-device CALs of `version`, the first expiring on day 41, then 42, …
fn revoked_cals(count: u32, version: WindowsVersion) -> Vec<IssuedLicense> {
    (0..count)
        .map(|i| {
            let mut cal = permanent(1_000 + i, Revoked, day(41 + u64::from(i)));
            cal.product_version = version;
            cal
        })
        .collect()
}

#[test]
fn revocation_is_limited_to_20_percent_per_version_until_a_revoked_cal_expires() {
    let target = permanent(5, Active, day(80));
    let v2022 = |id, total| pack(id, PerDevice, V2022, total);
    let limit = |limit| -> Result<u32, RevokeRefusal> {
        Err(RevokeRefusal::LimitReached {
            version: V2022,
            limit,
            next_revoke_allowed_on: day(41),
        })
    };
    // (case, packs, revoked, expected: Ok(revokable left) or the refusal)
    let cases = vec![
        ("none revoked", vec![v2022(1, 100)], vec![], Ok(19)),
        (
            "19 of 20 revoked",
            vec![v2022(1, 100)],
            revoked_cals(19, V2022),
            Ok(0),
        ),
        (
            "20 revoked",
            vec![v2022(1, 100)],
            revoked_cals(20, V2022),
            limit(20),
        ),
        (
            "per version, not per pack",
            vec![v2022(1, 60), v2022(2, 40)],
            revoked_cals(20, V2022),
            limit(20),
        ),
        (
            "other versions have their own limit",
            vec![v2022(1, 100), pack(2, PerDevice, V2019, 200)],
            revoked_cals(40, V2019),
            Ok(19),
        ),
        (
            "per-user packs do not count",
            vec![v2022(1, 10), pack(2, PerUser, V2022, 1000)],
            revoked_cals(2, V2022),
            limit(2),
        ),
        ("at least one", vec![v2022(1, 3)], vec![], Ok(0)),
        (
            "one is the limit",
            vec![v2022(1, 3)],
            revoked_cals(1, V2022),
            limit(1),
        ),
        (
            "expired revoked CALs leave the count",
            vec![v2022(1, 100)],
            revoked_cals(20, V2022)
                .into_iter()
                .map(|mut cal| {
                    cal.expiration_date = day(29);
                    cal
                })
                .collect(),
            Ok(19),
        ),
    ];
    for (case, packs, revoked, expected) in cases {
        let snapshot = revocation_snapshot(packs, revoked);
        let result = revoke(&target, &snapshot);
        match expected {
            Ok(revokable_cals) => {
                let revocation = result.unwrap_or_else(|refusal| panic!("{case}: {refusal}"));
                assert_eq!(revocation.revokable_cals, revokable_cals, "{case}");
                assert_eq!(revocation.revoked_at, day(30), "{case}");
                assert_eq!(
                    revocation.change(),
                    Change::SetStatus {
                        license_id: 5,
                        status: Revoked
                    }
                );
                let mut cal = target.clone();
                revocation.apply(&mut cal);
                assert_eq!((cal.status, cal.revoked_at), (Revoked, Some(day(30))));
            }
            Err(refusal) => assert_eq!(result, Err(refusal), "{case}"),
        }
    }
}

#[test]
fn only_active_per_device_cals_can_be_revoked() {
    let packs = vec![pack(1, PerDevice, V2022, 100)];
    let snapshot = revocation_snapshot(packs, vec![]);
    let mut per_user = permanent(5, Active, day(80));
    per_user.license_type = PerUser;
    let cases = [
        ("per user", per_user, RevokeRefusal::PerUser),
        (
            "temporary",
            temporary(5, day(0), V2022),
            RevokeRefusal::NotActive { status: Temporary },
        ),
        (
            "already revoked",
            permanent(5, Revoked, day(80)),
            RevokeRefusal::NotActive { status: Revoked },
        ),
        (
            "superseded",
            permanent(5, Superseded, day(80)),
            RevokeRefusal::NotActive { status: Superseded },
        ),
        (
            "expired",
            permanent(5, Active, day(20)),
            RevokeRefusal::Expired {
                expired_at: day(20),
            },
        ),
    ];
    for (case, license, refusal) in cases {
        assert_eq!(revoke(&license, &snapshot), Err(refusal), "{case}");
    }
}

#[test]
fn identity_is_the_hwid_and_the_name_shown_is_the_one_at_first_issue() {
    // The device was "OLD-NAME" at first issue and has been renamed since.
    let mut first = temporary(5, day(0), V2022);
    first.issued_to_computer = "OLD-NAME".into();
    first.status = Superseded;
    let mut current = permanent(6, Active, day(70));
    current.issue_date = day(5);
    current.issued_to_computer = "OLD-NAME".into();
    let packs = || vec![usage(pack(1, PerDevice, V2022, 10), 1)];
    let mut renamed = request(PerDevice, V2022, Some(presented(&current)));
    renamed.machine = "NEW-NAME".into();

    // Renewal: the name stays the first one.
    let snapshot = snap(day(65), true, packs(), vec![current.clone(), first.clone()]);
    let decision = decide(&renamed, &snapshot);
    assert_eq!(kind(&decision.outcome), Kind::Renewed);
    assert_eq!(inserted(&decision).issued_to_computer, "OLD-NAME");

    // A New License Request from the same HWID (the CAL was lost): the device is known; its
    // CAL is issued again with the same expiry, not a new temporary one.
    let mut lost = renamed.clone();
    lost.presented = None;
    let snapshot = snap(day(20), true, packs(), vec![current.clone(), first]);
    let decision = decide(&lost, &snapshot);
    assert_eq!(
        decision.outcome,
        RequestOutcome::Permanent {
            license_id: NEXT_ID,
            expires_at: day(70)
        }
    );
    let license = inserted(&decision);
    assert_eq!(license.issued_to_computer, "OLD-NAME");
    assert_eq!(license.key_pack_id, Some(1));
    assert_eq!(status_changes(&decision), vec![(6, Superseded)]);

    // Same name, new HWID (MSLicensing deleted): a new device, with a new temporary CAL.
    let snapshot = snap(day(20), true, packs(), vec![]);
    let mut new_device = request(PerDevice, V2022, None);
    new_device.hardware_id = [8; 20];
    let decision = decide(&new_device, &snapshot);
    assert_eq!(kind(&decision.outcome), Kind::Temporary);
    assert_eq!(inserted(&decision).issued_to_computer, "PC-1");

    // A lost temporary CAL cannot restart the 90 days either.
    let temp = temporary(5, day(0), V2022);
    let full = vec![usage(pack(1, PerDevice, V2022, 10), 10)];
    let snapshot = snap(day(20), true, full.clone(), vec![temp.clone()]);
    let decision = decide(&request(PerDevice, V2022, None), &snapshot);
    assert_eq!(
        decision.outcome,
        RequestOutcome::Temporary {
            license_id: NEXT_ID,
            expires_at: day(90)
        }
    );
    let snapshot = snap(day(95), true, full, vec![temp]);
    assert_eq!(
        kind(&decide(&request(PerDevice, V2022, None), &snapshot).outcome),
        Kind::Refused(LicenseRefusal::TemporaryExpiredNoneFree)
    );
}

#[test]
fn per_user_has_no_temporary_cals_and_is_recorded_against_the_pool_or_overused() {
    // (case, activated, packs, expected pack: None = OverUsed)
    let cases: Vec<(&str, bool, Vec<PackUsage>, Option<u32>)> = vec![
        (
            "free pack",
            true,
            vec![usage(pack(1, PerUser, V2022, 5), 4)],
            Some(1),
        ),
        (
            "full pack",
            true,
            vec![usage(pack(1, PerUser, V2022, 5), 5)],
            None,
        ),
        ("no pack", true, vec![], None),
        (
            "per-device pack only",
            true,
            vec![usage(pack(1, PerDevice, V2022, 5), 0)],
            None,
        ),
        (
            "older pack",
            true,
            vec![usage(pack(1, PerUser, V2019, 5), 0)],
            None,
        ),
        (
            "unactivated",
            false,
            vec![usage(pack(1, PerUser, V2022, 5), 0)],
            None,
        ),
    ];
    for (case, activated, packs, expected) in cases {
        let snapshot = snap(day(3), activated, packs, vec![]);
        let decision = decide(&request(PerUser, V2022, None), &snapshot);
        assert_eq!(
            decision.outcome,
            RequestOutcome::Permanent {
                license_id: NEXT_ID,
                expires_at: day(63)
            },
            "{case}"
        );
        let license = inserted(&decision);
        assert_eq!(license.key_pack_id, expected, "{case}");
        assert_eq!(license.status, Active, "{case}: never temporary");
        assert_eq!(license.license_type, PerUser, "{case}");
        assert_eq!(license.issued_to_user, "alice", "{case}");
    }
}

#[test]
fn per_user_cal_shows_60_days_and_is_extended_at_sign_in_near_expiry() {
    let now = day(100);
    // (case, record's pack, expires, pack in use, expected, new pack)
    let cases = [
        (
            "30 days left",
            Some(1),
            now + days(30),
            5,
            Kind::Valid,
            None,
        ),
        ("8 days left", Some(1), now + days(8), 5, Kind::Valid, None),
        (
            "7 days left, keeps its pack",
            Some(1),
            now + days(7),
            5,
            Kind::Renewed,
            Some(1),
        ),
        (
            "OverUsed, pack full",
            None,
            now + days(2),
            5,
            Kind::Renewed,
            None,
        ),
        (
            "OverUsed, pack now free",
            None,
            now + days(2),
            4,
            Kind::Renewed,
            Some(1),
        ),
    ];
    for (case, key_pack_id, expires, in_use, expected, new_pack) in cases {
        let record = row(5, key_pack_id, PerUser, Active, day(50), expires, V2022);
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerUser, V2022, 5), in_use)],
            vec![record],
        );
        let decision = decide(&request(PerUser, V2022, None), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        if expected == Kind::Renewed {
            assert_eq!(expires_at(&decision.outcome), now + days(60), "{case}");
            assert_eq!(inserted(&decision).key_pack_id, new_pack, "{case}");
            assert_eq!(status_changes(&decision), vec![(5, Superseded)], "{case}");
        } else {
            assert_eq!(expires_at(&decision.outcome), expires, "{case}");
            assert!(decision.changes.is_empty(), "{case}");
        }
    }
}

#[test]
fn lapsed_user_drops_off_and_reappears_at_next_sign_in() {
    let lapsed = row(5, Some(1), PerUser, Active, day(0), day(60), V2022);
    let old = row(4, Some(1), PerUser, Expired, day(0), day(10), V2022);
    // (now, expected)
    let cases = [
        (day(59), Kind::Renewed),
        (day(60), Kind::Permanent),
        (day(200), Kind::Permanent),
    ];
    for (now, expected) in cases {
        let snapshot = snap(
            now,
            true,
            vec![usage(pack(1, PerUser, V2022, 5), 0)],
            vec![lapsed.clone(), old.clone()],
        );
        let decision = decide(&request(PerUser, V2022, None), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{now:?}");
        assert_eq!(expires_at(&decision.outcome), now + days(60));
        let changes = status_changes(&decision);
        if expected == Kind::Permanent {
            // It had dropped off: the old record is Expired, the user shows up anew.
            assert_eq!(changes, vec![(5, Expired)], "{now:?}");
        } else {
            assert_eq!(changes, vec![(5, Superseded)], "{now:?}");
        }
    }
}

#[test]
fn per_user_is_never_refused() {
    let device_cal = permanent(3, Active, day(80));
    let old_record = row(5, Some(1), PerUser, Active, day(0), day(60), V2016);
    // (case, activated, packs, holder, presented)
    let cases = vec![
        ("no packs", true, vec![], vec![], None),
        ("unactivated", false, vec![], vec![], None),
        (
            "exhausted",
            true,
            vec![usage(pack(1, PerUser, V2022, 1), 1)],
            vec![],
            None,
        ),
        (
            "record too old for the host",
            true,
            vec![],
            vec![old_record],
            None,
        ),
        (
            "a device CAL presented",
            true,
            vec![],
            vec![],
            Some(presented(&device_cal)),
        ),
    ];
    for (case, activated, packs, holder, cal) in cases {
        let snapshot = snap(day(30), activated, packs, holder);
        let decision = decide(&request(PerUser, V2022, cal), &snapshot);
        assert!(
            !matches!(decision.outcome, RequestOutcome::Refused { .. }),
            "{case}: {decision:?}"
        );
    }
}

#[test]
fn a_cal_serves_hosts_of_its_version_or_older() {
    // Microsoft's compatibility table: rows are hosts, columns CALs 2025, 2022, 2019, 2016.
    let cals = [V2025, V2022, V2019, V2016];
    let table = [
        (V2025, [true, false, false, false]),
        (V2022, [true, true, false, false]),
        (V2019, [true, true, true, false]),
        (V2016, [true, true, true, true]),
    ];
    for (host, row) in table {
        for (cal, expected) in cals.iter().zip(row) {
            assert_eq!(
                serves(*cal, host),
                expected,
                "{cal:?} CAL on a {host:?} host"
            );
            // And a client presenting such a CAL, with none free, is admitted or not.
            let mut cal_row = permanent(5, Active, day(80));
            cal_row.product_version = *cal;
            let snapshot = snap(day(10), true, vec![], vec![cal_row.clone()]);
            let decision = decide(
                &request(PerDevice, host, Some(presented(&cal_row))),
                &snapshot,
            );
            let admitted = decision.outcome
                == RequestOutcome::Valid {
                    expires_at: day(80),
                };
            assert_eq!(admitted, expected, "{cal:?} CAL on a {host:?} host");
        }
    }
}

#[test]
fn an_older_cal_makes_a_first_logon_for_the_host_version() {
    let old = {
        let mut cal = permanent(5, Active, day(80));
        cal.product_version = V2019;
        cal
    };
    let old_temp = temporary(6, day(5), V2019);
    let free_2022 = || vec![usage(pack(2, PerDevice, V2022, 1), 0)];
    // (case, presented CAL, packs, activated): a 2022 temporary CAL whatever the pool holds.
    let cases = [
        ("a 2022 CAL free", &old, free_2022(), true),
        (
            "only 2019 CALs free",
            &old,
            vec![usage(pack(2, PerDevice, V2019, 9), 0)],
            true,
        ),
        (
            "none free",
            &old,
            vec![usage(pack(2, PerDevice, V2022, 1), 1)],
            true,
        ),
        ("unactivated", &old, free_2022(), false),
        ("old temporary, none free", &old_temp, vec![], true),
        ("old temporary, one free", &old_temp, free_2022(), true),
    ];
    for (case, cal, packs, activated) in cases {
        for presented_cal in [Some(presented(cal)), None] {
            let snapshot = snap(day(10), activated, packs.clone(), vec![cal.clone()]);
            let decision = decide(&request(PerDevice, V2022, presented_cal), &snapshot);
            assert_eq!(
                decision.outcome,
                RequestOutcome::Temporary {
                    license_id: NEXT_ID,
                    expires_at: day(100)
                },
                "{case}"
            );
            let license = inserted(&decision);
            assert_eq!(license.product_version, V2022, "{case}");
            assert_eq!(license.key_pack_id, None, "{case}");
            assert_eq!(
                status_changes(&decision),
                vec![],
                "{case}: the 2019 CAL stays live for 2019 hosts"
            );
        }
    }

    // With a 2022 temporary CAL beside it, the device is on its next logon for 2022, whichever
    // of its CALs it presents: a 2022 permanent CAL supersedes the 2022 temporary one only.
    let temp_2022 = temporary(7, day(10), V2022);
    for presented_cal in [Some(presented(&temp_2022)), Some(presented(&old)), None] {
        let snapshot = snap(
            day(12),
            true,
            free_2022(),
            vec![old.clone(), temp_2022.clone()],
        );
        let decision = decide(&request(PerDevice, V2022, presented_cal), &snapshot);
        assert_eq!(kind(&decision.outcome), Kind::Permanent, "{decision:?}");
        assert_eq!(inserted(&decision).product_version, V2022);
        assert_eq!(status_changes(&decision), vec![(7, Superseded)]);
    }
    // Back at a 2019 host with a 2022 permanent CAL (filed for 2022) and a 2019 temporary one:
    // the 2019 permanent CAL supersedes the 2019 temporary CAL, not the newer 2022 one.
    let permanent_2022 = permanent(9, Active, day(80));
    let snapshot = snap(
        day(20),
        true,
        vec![usage(pack(3, PerDevice, V2019, 1), 0)],
        vec![old_temp.clone(), permanent_2022],
    );
    let decision = decide(
        &request(PerDevice, V2019, Some(presented(&old_temp))),
        &snapshot,
    );
    assert_eq!(kind(&decision.outcome), Kind::Permanent, "{decision:?}");
    assert_eq!(inserted(&decision).key_pack_id, Some(3));
    assert_eq!(status_changes(&decision), vec![(6, Superseded)]);
    // Its 2022 temporary CAL expired and none free: refused at the 2022 host, while its 2019 CAL
    // (renewed on day 60) is still valid at 2019 hosts.
    let renewed_2019 = row(8, Some(1), PerDevice, Active, day(60), day(140), V2019);
    let snapshot = snap(
        day(101),
        true,
        vec![],
        vec![renewed_2019.clone(), temp_2022.clone()],
    );
    let decision = decide(
        &request(PerDevice, V2022, Some(presented(&renewed_2019))),
        &snapshot,
    );
    assert_eq!(
        decision.outcome,
        RequestOutcome::Refused {
            reason: LicenseRefusal::TemporaryExpiredNoneFree
        }
    );
    let decision = decide(
        &request(PerDevice, V2019, Some(presented(&renewed_2019))),
        &snapshot,
    );
    assert_eq!(kind(&decision.outcome), Kind::Valid);
}

#[test]
fn a_license_server_refuses_packs_newer_than_itself_and_empty_packs() {
    // Microsoft's table: rows are license servers, columns CAL packs 2025, 2022, 2019, 2016.
    let packs = [V2025, V2022, V2019, V2016];
    let table = [
        (V2025, [true, true, true, true]),
        (V2022, [false, true, true, true]),
        (V2019, [false, false, true, true]),
        (V2016, [false, false, false, true]),
    ];
    for (server, row) in table {
        for (version, accepted) in packs.iter().zip(row) {
            let result = install_pack(&settings(server, true), &pack(1, PerDevice, *version, 10));
            if accepted {
                assert_eq!(result, Ok(()), "{version:?} pack on a {server:?} server");
            } else {
                assert_eq!(
                    result,
                    Err(InstallError::NewerThanServer {
                        pack: *version,
                        server
                    })
                );
            }
        }
    }
    let error = install_pack(&settings(V2019, true), &pack(1, PerUser, V2022, 50)).unwrap_err();
    assert_eq!(
        error.to_string(),
        "a Windows Server 2022 CAL pack cannot be installed on a Windows Server 2019 license \
         server: a license server holds CALs of its own version or older (upgrade the license \
         server first)"
    );
    assert_eq!(
        install_pack(&settings(V2022, true), &pack(1, PerDevice, V2022, 0)),
        Err(InstallError::NoLicenses)
    );
}

#[test]
fn an_unactivated_license_server_issues_temporary_cals_only() {
    let temp = temporary(5, day(0), V2022);
    let near_expiry = permanent(6, Active, day(52));
    let free = || vec![usage(pack(1, PerDevice, V2022, 10), 0)];
    // (case, presented, now, expected)
    let cases = [
        ("first logon", None, day(1), Kind::Temporary),
        ("no upgrade", Some(presented(&temp)), day(10), Kind::Valid),
        (
            "temporary expired",
            Some(presented(&temp)),
            day(90),
            Kind::Refused(LicenseRefusal::TemporaryExpiredNoneFree),
        ),
        (
            "no renewal",
            Some(presented(&near_expiry)),
            day(50),
            Kind::Valid,
        ),
    ];
    for (case, cal, now, expected) in cases {
        let holder = vec![temp.clone(), near_expiry.clone()]
            .into_iter()
            .filter(|row| {
                cal.as_ref()
                    .is_some_and(|cal| cal.license_id == Some(row.license_id))
            })
            .collect();
        let snapshot = snap(now, false, free(), holder);
        let decision = decide(&request(PerDevice, V2022, cal), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        assert!(
            decision.changes.iter().all(
                |change| !matches!(change, Change::Insert(license) if license.key_pack_id.is_some())
            ),
            "{case}: nothing taken from a pack"
        );
    }
}

#[test]
fn a_host_runs_in_one_mode_and_a_per_device_host_refuses_a_per_user_cal() {
    let user_record = row(5, Some(1), PerUser, Active, day(0), day(60), V2022);
    let device_cal = permanent(6, Active, day(60));
    // (case, host mode, presented, expected)
    let cases = [
        (
            "per-user CAL on a per-device host",
            PerDevice,
            presented(&user_record),
            Kind::Refused(LicenseRefusal::WrongLicenseType),
        ),
        (
            "per-device CAL on a per-user host",
            PerUser,
            presented(&device_cal),
            Kind::Permanent,
        ),
        (
            "per-device CAL on a per-device host",
            PerDevice,
            presented(&device_cal),
            Kind::Valid,
        ),
    ];
    for (case, mode, cal, expected) in cases {
        let snapshot = snap(
            day(10),
            true,
            vec![
                usage(pack(1, PerUser, V2022, 5), 0),
                usage(pack(2, PerDevice, V2022, 5), 0),
            ],
            vec![device_cal.clone()],
        );
        let decision = decide(&request(mode, V2022, Some(cal)), &snapshot);
        assert_eq!(kind(&decision.outcome), expected, "{case}");
        if expected == Kind::Permanent {
            assert_eq!(inserted(&decision).license_type, PerUser, "{case}");
        }
    }
}

#[test]
fn grace_period_is_120_days_without_a_license_server_then_refusal() {
    let first_use = day(0);
    let host = HostInfo {
        version: V2022,
        mode: PerDevice,
    };
    let valid_cal = presented(&permanent(5, Active, day(200)));
    let expired_cal = presented(&permanent(5, Active, day(110)));
    let over = RequestOutcome::Refused {
        reason: LicenseRefusal::GracePeriodOver,
    };
    // (now, state, a client without a CAL, with a valid CAL, with an expired CAL)
    let cases = [
        (day(0), GraceState::Within { ends_at: day(120) }, None),
        (
            day(119) + hours(23),
            GraceState::Within { ends_at: day(120) },
            None,
        ),
        (
            day(120),
            GraceState::Over { ended_at: day(120) },
            Some(LicenseRefusal::GracePeriodOver),
        ),
        (
            day(130),
            GraceState::Over { ended_at: day(120) },
            Some(LicenseRefusal::GracePeriodOver),
        ),
    ];
    for (now, state, refusal) in cases {
        assert_eq!(grace_period(first_use, now), state, "{now:?}");
        assert_eq!(state.refusal(), refusal, "{now:?}");
        let without = admit_without_license_server(&host, first_use, now, None);
        let with_valid = admit_without_license_server(&host, first_use, now, Some(&valid_cal));
        let with_expired = admit_without_license_server(&host, first_use, now, Some(&expired_cal));
        let per_user = admit_without_license_server(
            &HostInfo {
                version: V2022,
                mode: PerUser,
            },
            first_use,
            now,
            Some(&valid_cal),
        );
        match state {
            GraceState::Within { ends_at } => {
                for outcome in [&without, &with_valid, &with_expired, &per_user] {
                    assert_eq!(
                        *outcome,
                        RequestOutcome::Valid {
                            expires_at: ends_at
                        },
                        "{now:?}"
                    );
                }
            }
            GraceState::Over { .. } => {
                assert_eq!(without, over, "{now:?}");
                assert_eq!(
                    with_valid,
                    RequestOutcome::Valid {
                        expires_at: day(200)
                    },
                    "{now:?}"
                );
                assert_eq!(with_expired, over, "{now:?}");
                assert_eq!(per_user, over, "{now:?}");
            }
        }
    }
}

#[test]
fn without_a_license_server_a_cal_due_for_upgrade_gets_itself_back() {
    let host = HostInfo {
        version: V2022,
        mode: PerDevice,
    };
    let now = day(100);
    let mut older = permanent(5, Active, day(103));
    older.product_version = V2019;
    // (case, CAL, host mode, expected): MS-RDPELE 3.2.5.5 case 1 needs a CAL that is still
    // valid and that a license server would upgrade or renew.
    let cases = [
        ("temporary", temporary(5, day(20), V2022), PerDevice, true),
        (
            "within 7 days",
            permanent(5, Active, day(106)),
            PerDevice,
            true,
        ),
        (
            "8 days left",
            permanent(5, Active, day(108)),
            PerDevice,
            false,
        ),
        (
            "expired temporary",
            temporary(5, day(5), V2022),
            PerDevice,
            false,
        ),
        ("expired", permanent(5, Active, day(100)), PerDevice, false),
        ("older than the host", older, PerDevice, false),
        (
            "per-user host",
            temporary(5, day(20), V2022),
            PerUser,
            false,
        ),
        (
            "per-user CAL",
            row(5, Some(1), PerUser, Active, day(60), day(103), V2022),
            PerDevice,
            false,
        ),
    ];
    for (case, cal, mode, expected) in cases {
        let host = HostInfo { mode, ..host };
        assert_eq!(
            returns_old_license(&host, &presented(&cal), now),
            expected,
            "{case}"
        );
    }
}

#[test]
fn decisions_follow_the_store_contract() {
    // Whatever the case: at most one insert, with the snapshot's next id; status changes only
    // for the holder's own rows; no row both expired and superseded.
    let holder = vec![
        temporary(5, day(0), V2022),
        permanent(6, Active, day(50)),
        permanent(7, Revoked, day(55)),
        row(8, Some(3), PerUser, Active, day(0), day(40), V2022),
    ];
    let ids: Vec<u32> = holder.iter().map(|row| row.license_id).collect();
    for now in [day(1), day(45), day(52), day(60), day(100)] {
        for mode in [PerDevice, PerUser] {
            for cal in [
                None,
                Some(presented(&holder[0])),
                Some(presented(&holder[1])),
            ] {
                let snapshot = snap(
                    now,
                    true,
                    vec![
                        usage(pack(1, PerDevice, V2022, 2), 1),
                        usage(pack(3, PerUser, V2022, 2), 1),
                    ],
                    holder.clone(),
                );
                let decision = decide(&request(mode, V2022, cal), &snapshot);
                let inserts: Vec<&IssuedLicense> = decision
                    .changes
                    .iter()
                    .filter_map(|change| match change {
                        Change::Insert(license) => Some(license),
                        Change::SetStatus { .. } => None,
                    })
                    .collect();
                assert!(inserts.len() <= 1);
                if let Some(license) = inserts.first() {
                    assert_eq!(license.license_id, NEXT_ID);
                    assert_eq!(license.license_type, mode);
                }
                let changed = status_changes(&decision);
                let mut seen = std::collections::HashSet::new();
                for (id, _) in &changed {
                    assert!(ids.contains(id), "{id} is not the holder's");
                    assert!(seen.insert(*id), "{id} changed twice: {decision:?}");
                }
            }
        }
    }
}

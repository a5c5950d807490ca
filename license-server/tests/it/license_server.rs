//! The license server (SQLite store, Windows policy, CAL signing) as the issuer of the real
//! protocol state machines, in memory: what a session host does on each connection.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::time::{Duration, SystemTime};

use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{HostInfo, LicensingMode, WindowsVersion};
use rdpele_license_server::server::{
    assess_presented, LicenseServer, DEFAULT_PRODUCT_ID, KEY_FILE, TEMPORARY_KEY_PACK_ID,
};
use rdpele_license_server::store::NewKeyPack;
use rdpele_proto::cal::{self, CalKind};
use rdpele_proto::machine::testing::{client_config, MemoryStore, Pair, DAY};
use rdpele_proto::machine::{ClientEvent, PresentedLicense, ServerEvent};
use rdpele_proto::wire::ErrorCode;

const TEST_KEY: &str = include_str!("../../../proto/src/cal/testdata/license_server_test_key.pem");

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// A license server in `dir` for a 2019 per-device host, activated or not, with a pack of
/// `pack` per-device 2019 CALs (none when 0), on a clock frozen at `epoch()`.
fn server(dir: &Path, activated: bool, pack: u32) -> LicenseServer {
    std::fs::write(dir.join(KEY_FILE), TEST_KEY).unwrap();
    let host = HostInfo {
        version: WindowsVersion::V2019,
        mode: LicensingMode::PerDevice,
    };
    let server = LicenseServer::open(dir, host)
        .unwrap()
        .with_clock_and_seed(Clock::frozen(epoch()), 7);
    let mut settings = server.store().settings().unwrap();
    settings.activated = activated;
    settings.version = WindowsVersion::V2022;
    server.store().set_settings(&settings).unwrap();
    if pack > 0 {
        server
            .store()
            .install_pack(&NewKeyPack {
                key_pack_type: LicensingMode::PerDevice,
                product_version: WindowsVersion::V2019,
                total_licenses: pack,
                installed_at: epoch(),
            })
            .unwrap();
    }
    server
}

/// One connection of device `hwid` at `now`.
fn connect(
    server: &mut LicenseServer,
    store: &mut MemoryStore,
    seed: u64,
    hwid: u8,
    now: SystemTime,
) -> Pair {
    let mut pair = Pair::seeded(
        seed,
        client_config(hwid, &format!("WS-{hwid:02}"), "alice"),
        now,
    )
    .unwrap();
    pair.run(server, store).unwrap();
    assert!(pair.server.is_finished() && pair.client.is_finished());
    // An admitted client's user signs in: the session host reports it, which validates the
    // temporary CAL the client holds.
    let admitted = pair
        .server_events
        .iter()
        .any(|event| matches!(event, ServerEvent::Licensed(_)));
    if admitted && !store.licenses.is_empty() {
        let held = cal_of(store);
        if held.kind == CalKind::Temporary {
            let license_id = held.client_license.serial().unwrap().license_id;
            server
                .record_validation(license_id, &held.client_license.hwid.to_bytes())
                .unwrap();
        }
    }
    pair
}

fn cal_of(store: &MemoryStore) -> cal::Cal {
    cal::parse_cal(store.licenses.values().next().unwrap()).unwrap()
}

/// The CAL `store` holds, as device `hwid` (of [`connect`]) presents it.
fn presented(store: &MemoryStore, hwid: u8) -> PresentedLicense {
    let config = client_config(hwid, &format!("WS-{hwid:02}"), "alice");
    let license_info = store.licenses.values().next().unwrap().clone();
    PresentedLicense {
        hwid: config.hwid,
        platform_id: config.platform_id,
        cal: cal_of(store).into(),
        license_info,
    }
}

/// Device `hwid`'s permanent CAL: licensed at `epoch()`, upgraded a day later.
fn permanent_cal(server: &mut LicenseServer, hwid: u8) -> PresentedLicense {
    let mut store = MemoryStore::default();
    connect(server, &mut store, 1, hwid, epoch());
    connect(server, &mut store, 2, hwid, epoch() + DAY);
    let permanent = presented(&store, hwid);
    assert_eq!(permanent.cal.kind, CalKind::Permanent);
    permanent
}

#[test]
fn temporary_then_permanent_then_valid_through_the_real_store_and_policy() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let mut store = MemoryStore::default();

    connect(&mut server, &mut store, 1, 7, epoch());
    let temporary = cal_of(&store);
    assert_eq!(temporary.kind, CalKind::Temporary);
    assert_eq!(temporary.client_license.machine, "WS-07");
    assert_eq!(
        temporary
            .client_license
            .not_after
            .duration_since(temporary.client_license.not_before)
            .unwrap(),
        DAY * 90
    );

    let pair = connect(&mut server, &mut store, 2, 7, epoch() + DAY);
    assert!(matches!(
        pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: true, .. }
    ));
    let permanent = cal_of(&store);
    assert_eq!(permanent.kind, CalKind::Permanent);
    let days = permanent
        .client_license
        .not_after
        .duration_since(permanent.client_license.not_before)
        .unwrap()
        .as_secs()
        / 86_400;
    assert!((52..=89).contains(&days), "{days} days");
    let packs = server.store().packs(epoch() + DAY).unwrap();
    assert_eq!(packs[0].in_use, 1, "one CAL taken from the pack");

    let pair = connect(&mut server, &mut store, 3, 7, epoch() + DAY * 2);
    assert_eq!(
        pair.transcript.len(),
        3,
        "License Request, License Info, STATUS_VALID_CLIENT"
    );
    assert_eq!(
        server.store().packs(epoch() + DAY * 2).unwrap()[0].in_use,
        1,
        "nothing more taken"
    );
}

#[test]
fn an_unactivated_server_lets_the_temporary_license_go_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), false, 5);
    let mut store = MemoryStore::default();
    connect(&mut server, &mut store, 1, 7, epoch());
    let pair = connect(&mut server, &mut store, 2, 7, epoch() + DAY);
    assert_eq!(pair.transcript.len(), 3, "valid client without an upgrade");
    assert_eq!(cal_of(&store).kind, CalKind::Temporary);
    assert_eq!(server.store().packs(epoch() + DAY).unwrap()[0].in_use, 0);
}

/// The 2019 product id format: "00429-00000-34972-AT353".
fn is_2019_product_id(id: &str) -> bool {
    let groups: Vec<&str> = id.split('-').collect();
    groups.len() == 4
        && groups[..3]
            .iter()
            .all(|group| group.len() == 5 && group.bytes().all(|b| b.is_ascii_digit()))
        && groups[3].len() == 5
        && groups[3][..2].bytes().all(|b| b.is_ascii_uppercase())
        && groups[3][2..].bytes().all(|b| b.is_ascii_digit())
}

#[test]
fn an_activated_server_signs_with_the_clearinghouse_chain_the_same_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let mut store = MemoryStore::default();
    connect(&mut server, &mut store, 1, 7, epoch());
    let temporary = cal_of(&store);
    // Root, intermediate, the license server's certificate, the client license.
    let subjects: Vec<&str> = temporary
        .certificates
        .iter()
        .map(|certificate| certificate.subject.as_str())
        .collect();
    assert_eq!(subjects.len(), 4, "{subjects:?}");
    assert!(subjects[0].contains("CN=rdpele Clearinghouse Root 2011"));
    assert_eq!(subjects[1], "CN=rdpeleLSRAsha2RDSLM");
    assert_eq!(subjects[2], "CN=RDPELE-LS");
    assert_eq!(temporary.client_license.issuer, "CN=RDPELE-LS");
    assert_eq!(temporary.ms_18_9.as_deref(), Some(&[7u8, 0, 0, 0][..]));
    // A temporary CAL's serial: the built-in temporary pool's key pack id, 5 bytes.
    let serial = temporary.client_license.serial().unwrap();
    assert_eq!(serial.key_pack_id, TEMPORARY_KEY_PACK_ID);
    assert_eq!(temporary.client_license.serial_number.len(), 5);
    // The store's default product id becomes a stable one of the 2019 format.
    let product_id = temporary.license_server.product_id.clone().unwrap();
    assert!(is_2019_product_id(&product_id), "{product_id}");

    let pair = connect(&mut server, &mut store, 2, 7, epoch() + DAY);
    assert!(matches!(
        pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: true, .. }
    ));
    let permanent = cal_of(&store);
    assert_eq!(permanent.kind, CalKind::Permanent);
    assert_eq!(permanent.client_license.serial().unwrap().key_pack_id, 1);
    assert_eq!(permanent.certificates.len(), 4);

    // Another process on the same directory: the same chain, the same product id.
    drop(server);
    let host = HostInfo {
        version: WindowsVersion::V2019,
        mode: LicensingMode::PerDevice,
    };
    let mut again = LicenseServer::open(dir.path(), host)
        .unwrap()
        .with_clock_and_seed(Clock::frozen(epoch()), 7);
    let mut other = MemoryStore::default();
    connect(&mut again, &mut other, 3, 8, epoch() + DAY * 2);
    let later = cal_of(&other);
    assert_eq!(later.certificates[..3], temporary.certificates[..3]);
    assert_eq!(later.license_server.product_id.unwrap(), product_id);
}

#[test]
fn an_unactivated_server_keeps_the_2008_shape_and_an_administrators_product_id_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), false, 5);
    assert_eq!(
        server.store().settings().unwrap().product_id,
        DEFAULT_PRODUCT_ID,
        "the store's default is the one the activated rule replaces"
    );
    let mut store = MemoryStore::default();
    connect(&mut server, &mut store, 1, 7, epoch());
    let cal = cal_of(&store);
    assert_eq!(cal.certificates.len(), 2);
    assert_eq!(cal.certificates[0].subject, cal.certificates[0].issuer);
    assert_eq!(cal.ms_18_9, None);
    assert_eq!(
        cal.license_server.product_id.as_deref(),
        Some(DEFAULT_PRODUCT_ID)
    );
    assert_eq!(
        cal.client_license.serial().unwrap().key_pack_id,
        TEMPORARY_KEY_PACK_ID
    );
    assert_eq!(cal.client_license.serial_number.len(), 5);

    let mut settings = server.store().settings().unwrap();
    settings.activated = true;
    settings.product_id = "78440-006-5867045-70347".into();
    server.store().set_settings(&settings).unwrap();
    let mut other = MemoryStore::default();
    connect(&mut server, &mut other, 2, 8, epoch());
    let activated = cal_of(&other);
    assert_eq!(activated.certificates.len(), 4);
    assert_eq!(
        activated.license_server.product_id.as_deref(),
        Some("78440-006-5867045-70347")
    );
}

#[test]
fn an_exhausted_pool_keeps_the_next_device_temporary_then_refuses_it_after_90_days() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 1);
    let (mut first, mut second) = (MemoryStore::default(), MemoryStore::default());
    connect(&mut server, &mut first, 1, 1, epoch());
    connect(&mut server, &mut first, 2, 1, epoch() + DAY);
    assert_eq!(cal_of(&first).kind, CalKind::Permanent);
    connect(&mut server, &mut second, 3, 2, epoch());
    connect(&mut server, &mut second, 4, 2, epoch() + DAY);
    assert_eq!(
        cal_of(&second).kind,
        CalKind::Temporary,
        "no permanent CAL free"
    );
    // The first device renews its permanent CAL in the last week, so the pool stays full.
    let expiry = cal_of(&first).client_license.not_after;
    connect(&mut server, &mut first, 5, 1, expiry - DAY * 3);
    assert!(cal_of(&first).client_license.not_after > epoch() + DAY * 91);
    let pair = connect(&mut server, &mut second, 6, 2, epoch() + DAY * 91);
    let refused = pair.server_events.iter().find_map(|e| match e {
        ServerEvent::Refused { refusal, .. } => Some(refusal.error_code),
        _ => None,
    });
    assert_eq!(
        refused,
        Some(ErrorCode::ERR_INVALID_CLIENT),
        "{:?}",
        pair.server_events
    );
}

#[test]
fn an_expired_permanent_license_returns_to_the_pool_for_the_waiting_device() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 1);
    let (mut first, mut second) = (MemoryStore::default(), MemoryStore::default());
    connect(&mut server, &mut first, 1, 1, epoch());
    connect(&mut server, &mut first, 2, 1, epoch() + DAY);
    let expiry = cal_of(&first).client_license.not_after;
    connect(&mut server, &mut second, 3, 2, epoch());
    connect(&mut server, &mut second, 4, 2, epoch() + DAY);
    assert_eq!(cal_of(&second).kind, CalKind::Temporary);
    // The first device stays away; once its CAL expires the second device gets the license.
    let pair = connect(&mut server, &mut second, 5, 2, expiry + DAY);
    assert!(matches!(
        pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: true, .. }
    ));
    assert_eq!(cal_of(&second).kind, CalKind::Permanent);
    assert_eq!(server.store().packs(expiry + DAY).unwrap()[0].in_use, 1);
}

/// The store's transaction decides and records; the CAL is signed after it, outside the lock
/// the other decisions take: two decisions for different devices, each taken under the
/// server's lock, sign their CALs on two threads at once while another party holds that lock
/// the whole time. Signing under the lock would never finish here.
#[test]
fn two_decisions_for_different_devices_sign_at_once_outside_the_lock() {
    use std::sync::mpsc;
    use std::sync::{Arc, Barrier, Mutex};

    use rdpele_license_server::server::DecidedQuery;
    use rdpele_proto::machine::{ClientInfo, Decision, LicenseAnswer, LicenseQuery};
    use rdpele_proto::wire::ClientHardwareId;

    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(Mutex::new(server(dir.path(), true, 10)));
    let query = |device: u8| {
        LicenseQuery::NewLicense(ClientInfo {
            hwid: ClientHardwareId::from_bytes([device; 20]),
            platform_id: 0x0401_0000,
            user_name: "alice".into(),
            machine_name: format!("WS-{device:02}"),
        })
    };
    let orders = [1u8, 2].map(|device| {
        let mut server = server.lock().unwrap();
        match server.decide_query(epoch(), &query(device)) {
            DecidedQuery::Sign(order) => order,
            other => panic!("device {device}: {other:?}"),
        }
    });
    // Both decisions are recorded before either CAL is signed.
    assert_eq!(
        server
            .lock()
            .unwrap()
            .store()
            .issued_licenses()
            .unwrap()
            .len(),
        2
    );

    let held = server.lock().unwrap();
    let start = Arc::new(Barrier::new(orders.len()));
    let (signed, finished) = mpsc::channel();
    let threads: Vec<_> = orders
        .into_iter()
        .map(|order| {
            let (start, signed) = (Arc::clone(&start), signed.clone());
            std::thread::spawn(move || {
                start.wait();
                signed.send(order.sign()).unwrap();
            })
        })
        .collect();
    let cals: Vec<Vec<u8>> = (0..threads.len())
        .map(|_| {
            finished
                .recv_timeout(Duration::from_secs(60))
                .expect("a CAL signed while another party holds the server's lock")
                .unwrap()
        })
        .collect();
    drop(held);
    for thread in threads {
        thread.join().unwrap();
    }

    let mut machines: Vec<String> = cals
        .iter()
        .map(|der| cal::parse_cal(der).unwrap().client_license.machine)
        .collect();
    machines.sort();
    assert_eq!(machines, ["WS-01", "WS-02"]);
    // The one-step answer the protocol machine gets is the same kind of CAL.
    let answer = server
        .lock()
        .unwrap()
        .decide_query(epoch(), &query(3))
        .finish();
    let LicenseAnswer::Decision(Decision::Issue(third)) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(cal::parse_cal(&third).unwrap().kind, CalKind::Temporary);
}

/// The deciding thread answers every query queued to it exactly once, however they are
/// batched, and each CAL it grants is recorded once.
#[test]
fn the_decider_answers_each_queued_query_once_then_reports_its_commit() {
    use std::sync::mpsc;

    use rdpele_license_server::decider::{Decider, Reply};
    use rdpele_license_server::server::DecidedQuery;
    use rdpele_proto::machine::{ClientInfo, LicenseQuery};
    use rdpele_proto::wire::ClientHardwareId;

    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path(), true, 0);
    let host = server.host();
    let decider = Decider::spawn(server).unwrap();
    let (answers, answered) = mpsc::channel();
    let submitters: Vec<_> = (1..=16u8)
        .map(|device| {
            let (decider, answers) = (decider.clone(), answers.clone());
            std::thread::spawn(move || {
                let query = LicenseQuery::NewLicense(ClientInfo {
                    hwid: ClientHardwareId::from_bytes([device; 20]),
                    platform_id: 0x0401_0000,
                    user_name: "alice".into(),
                    machine_name: format!("WS-{device:02}"),
                });
                let decided_answers = answers.clone();
                decider.submit(
                    host,
                    query,
                    Reply {
                        decided: Box::new(move |decided| {
                            decided_answers.send((device, Ok(decided))).unwrap();
                        }),
                        committed: Box::new(move |committed| {
                            answers.send((device, Err(committed))).unwrap();
                        }),
                    },
                );
            })
        })
        .collect();
    for submitter in submitters {
        submitter.join().unwrap();
    }
    drop(answers);
    let mut machines = Vec::new();
    let mut committed = Vec::new();
    while let Ok((device, reply)) = answered.recv_timeout(Duration::from_secs(60)) {
        match reply {
            Ok(decided) => {
                assert!(
                    !committed.contains(&device),
                    "device {device}: committed before it was decided"
                );
                let DecidedQuery::Sign(order) = decided else {
                    panic!("device {device}: {decided:?}")
                };
                machines.push(
                    cal::parse_cal(&order.sign().unwrap())
                        .unwrap()
                        .client_license
                        .machine,
                );
            }
            Err(durable) => {
                assert!(durable, "device {device}: its transaction did not commit");
                committed.push(device);
            }
        }
    }
    committed.sort_unstable();
    assert_eq!(
        committed,
        (1..=16).collect::<Vec<u8>>(),
        "one commit report each"
    );
    machines.sort();
    let expected: Vec<String> = (1..=16).map(|device| format!("WS-{device:02}")).collect();
    assert_eq!(machines, expected);
    drop(decider);
    let store = rdpele_license_server::store::Store::open(dir.path()).unwrap();
    assert_eq!(store.issued_licenses().unwrap().len(), 16);
}

/// A sign-in report queued to the deciding thread before the device's next query is recorded
/// before that query is decided, without the host waiting for it: the temporary CAL is then
/// due for upgrade. Reports queued together are answered each once.
#[test]
fn the_decider_records_a_validation_before_the_query_queued_after_it() {
    use std::sync::mpsc;

    use rdpele_license_server::decider::{Decider, Reply};
    use rdpele_license_server::server::DecidedQuery;
    use rdpele_proto::machine::{Assessment, LicenseAnswer, LicenseQuery};

    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let host = server.host();
    let mut store = MemoryStore::default();
    let mut pair = Pair::seeded(1, client_config(7, "WS-07", "alice"), epoch()).unwrap();
    pair.run(&mut server, &mut store).unwrap();
    let license_info = store.licenses.values().next().unwrap().clone();
    let temporary = cal::parse_cal(&license_info).unwrap();
    assert_eq!(temporary.kind, CalKind::Temporary);
    let license_id = temporary.client_license.serial().unwrap().license_id;
    let hwid = temporary.client_license.hwid;
    let assess = LicenseQuery::AssessLicense(Box::new(PresentedLicense {
        hwid,
        platform_id: hwid.platform_id,
        license_info,
        cal: temporary.into(),
    }));
    let decider = Decider::spawn(server).unwrap();

    let ask = |query: LicenseQuery| {
        let (answer, answered) = mpsc::channel();
        decider.submit(
            host,
            query,
            Reply {
                decided: Box::new(move |decided: DecidedQuery| {
                    answer.send(decided.finish()).unwrap();
                }),
                committed: Box::new(|_| {}),
            },
        );
        answered.recv_timeout(Duration::from_secs(60)).unwrap()
    };
    assert_eq!(
        ask(assess.clone()),
        LicenseAnswer::Assessment(Assessment::Valid),
        "not validated: kept"
    );
    let (reports, reported) = mpsc::channel();
    for _ in 0..2 {
        let reports = reports.clone();
        decider.validate(
            license_id,
            hwid.to_bytes(),
            Box::new(move |validated| reports.send(validated).unwrap()),
        );
    }
    assert_eq!(
        ask(assess),
        LicenseAnswer::Assessment(Assessment::Upgrade),
        "validated before the query queued after the report"
    );
    let mut validated: Vec<bool> = (0..2)
        .map(|_| {
            reported
                .recv_timeout(Duration::from_secs(60))
                .unwrap()
                .unwrap()
        })
        .collect();
    validated.sort_unstable();
    assert_eq!(
        validated,
        [false, true],
        "validated once, by the first report"
    );
}

/// Two processes starting on one fresh data directory (here four threads at once, many times
/// over): every one ends up with the key on disk, written 0600, and nobody keeps signing with a
/// key that another overwrote.
#[test]
fn hosts_starting_at_once_on_a_fresh_directory_share_one_private_key() {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::{Arc, Barrier};

    use rdpele_license_server::server::load_or_create_key_bits;
    use rdpele_proto::crypto::LicensingPrivateKey;

    for _ in 0..8 {
        let dir = tempfile::tempdir().unwrap();
        let path = Arc::new(dir.path().join(KEY_FILE));
        let start = Arc::new(Barrier::new(4));
        let keys: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (Arc::clone(&path), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    load_or_create_key_bits(&path, 512).unwrap().public_key()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        let on_disk = LicensingPrivateKey::from_pem(&std::fs::read_to_string(&*path).unwrap())
            .unwrap()
            .public_key();
        assert!(keys.iter().all(|key| *key == on_disk));
        let mode = std::fs::metadata(&*path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

/// A client presenting a valid CAL is assessed while another process (here another SQLite
/// connection) holds the database's write lock, as `rdpele admin` does while it changes
/// something: an assessment takes nothing, so it reads without waiting for the lock, through
/// the protocol issuer and through the batches the session host's deciding thread makes.
#[test]
fn a_valid_cal_is_assessed_while_another_connection_holds_the_write_lock() {
    use rdpele_license_server::store::DATABASE_FILE;
    use rdpele_proto::machine::{Assessment, LicenseAnswer, LicenseIssuer, LicenseQuery};

    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let presented = permanent_cal(&mut server, 7);

    let holder = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).unwrap();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Had the assessment waited for the lock, the store's busy timeout (30 s) would have run
    // out and it would be refused as an unavailable license server.
    assert_eq!(
        server.assess_license(epoch() + DAY * 2, &presented),
        Assessment::Valid
    );
    // A session host's read on a handle of its own gives the same answer meanwhile.
    let reader = rdpele_license_server::store::Store::open(dir.path()).unwrap();
    assert_eq!(
        assess_presented(&reader, epoch() + DAY * 2, server.host(), &presented, false).unwrap(),
        Assessment::Valid
    );
    let query = LicenseQuery::AssessLicense(Box::new(presented));
    let host = server.host();
    let answers = server
        .decide_queries_then(
            epoch() + DAY * 2,
            &[(host, &query), (host, &query)],
            |decided| decided,
        )
        .unwrap();
    for answer in answers {
        assert!(matches!(
            answer.finish(),
            LicenseAnswer::Assessment(Assessment::Valid)
        ));
    }
    holder.execute_batch("ROLLBACK").unwrap();
}

/// A session host's assessment on its own store handle (`assess_presented`) answers as the
/// license server does: a permanent CAL valid, due for renewal near its expiry, expired after
/// it; a temporary CAL kept before its sign-in is recorded and due for upgrade after; and the
/// same with the pool exhausted.
#[test]
fn an_assessment_on_the_hosts_own_handle_answers_as_the_license_server() {
    use rdpele_license_server::store::Store;
    use rdpele_proto::machine::{Assessment, LicenseIssuer};

    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let reader = Store::open(dir.path()).unwrap();
    let permanent = permanent_cal(&mut server, 7);
    // Issued without the sign-in `connect` reports: validated in the loop below.
    let mut temporary_store = MemoryStore::default();
    Pair::seeded(3, client_config(8, "WS-08", "alice"), epoch() + DAY)
        .unwrap()
        .run(&mut server, &mut temporary_store)
        .unwrap();
    let temporary = presented(&temporary_store, 8);
    assert_eq!(temporary.cal.kind, CalKind::Temporary);

    let expiry = permanent.cal.client_license.not_after;
    let instants = [
        epoch() + DAY * 2,
        expiry - DAY * 3,
        expiry + DAY,
        epoch() + DAY * 200,
    ];
    let mut seen = Vec::new();
    for validated in [false, true] {
        if validated {
            let license_id = temporary.cal.client_license.serial().unwrap().license_id;
            assert!(server
                .record_validation(license_id, &temporary.hwid.to_bytes())
                .unwrap());
        }
        for exhausted in [false, true] {
            server.set_pool_exhausted(exhausted);
            for presented in [&permanent, &temporary] {
                for now in instants {
                    let expected = server.assess_license(now, presented);
                    assert_eq!(
                        assess_presented(&reader, now, server.host(), presented, exhausted)
                            .unwrap(),
                        expected,
                        "validated {validated}, exhausted {exhausted}, {:?}",
                        presented.cal.kind
                    );
                    seen.push(expected);
                }
            }
        }
    }
    assert!(seen.contains(&Assessment::Valid));
    assert!(seen.contains(&Assessment::Upgrade));
    assert!(seen
        .iter()
        .any(|assessed| matches!(assessed, Assessment::Refuse(_))));
}

/// The store reads an assessment's snapshot without the pool and reads the pool only when the
/// policy asks for it (`Packs`). A permanent CAL inside its validity is valid whatever the pool
/// holds; in its renewal window it is renewed, from its own slot even when every license is
/// taken; after its expiry it is replaced if a license is free, else refused (the per-device
/// rules in `policy::per_device`). Answered without the pool, the renewal and the replacement
/// would be Valid and a refusal.
#[test]
fn an_assessment_reads_the_pool_where_its_answer_depends_on_it() {
    use rdpele_license_server::model::LicenseRefusal;
    use rdpele_license_server::server::refusal;
    use rdpele_license_server::store::Store;
    use rdpele_proto::machine::{Assessment, LicenseIssuer};

    let dir = tempfile::tempdir().unwrap();
    let mut server = server(dir.path(), true, 5);
    let reader = Store::open(dir.path()).unwrap();
    let permanent = permanent_cal(&mut server, 7);
    let expiry = permanent.cal.client_license.not_after;
    let expired = Assessment::Refuse(refusal(LicenseRefusal::Expired));
    let cases = [
        ("valid", epoch() + DAY * 2, false, Assessment::Valid),
        ("valid", epoch() + DAY * 2, true, Assessment::Valid),
        (
            "renewal window",
            expiry - DAY * 3,
            false,
            Assessment::Upgrade,
        ),
        (
            "renewal window",
            expiry - DAY * 3,
            true,
            Assessment::Upgrade,
        ),
        ("expired", expiry + DAY, false, Assessment::Upgrade),
        ("expired", expiry + DAY, true, expired),
    ];
    for (case, now, exhausted, expected) in cases {
        server.set_pool_exhausted(exhausted);
        assert_eq!(
            assess_presented(&reader, now, server.host(), &permanent, exhausted).unwrap(),
            expected,
            "{case}, pool exhausted {exhausted}: on the host's handle"
        );
        assert_eq!(
            server.assess_license(now, &permanent),
            expected,
            "{case}, pool exhausted {exhausted}: on the license server's"
        );
    }
}

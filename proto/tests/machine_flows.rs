//! Client and server state machines, in memory, through every licensing flow: first contact,
//! upgrade, renewal, valid client, each refusal, and each way a message can be wrong.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rdpele_proto::cal::{self, CalKind};
use rdpele_proto::machine::testing::{
    client_config, server_config, Direction, MemoryStore, Pair, RuleIssuer, DAY,
};
use rdpele_proto::machine::{ClientEvent, LicensedOutcome, Refusal, RefusalReason, ServerEvent};
use rdpele_proto::wire::{ErrorCode, LicensingMessage, LicensingPdu, StateTransition, Wire};

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// One connection of client `seed` at `now`, against `issuer`, with `store` kept across calls.
fn connect(
    seed: u64,
    hwid_seed: u8,
    now: SystemTime,
    issuer: &mut RuleIssuer,
    store: &mut MemoryStore,
) -> Pair {
    connect_with(seed, hwid_seed, now, issuer, store, |_, _| {})
}

fn connect_with(
    seed: u64,
    hwid_seed: u8,
    now: SystemTime,
    issuer: &mut RuleIssuer,
    store: &mut MemoryStore,
    tamper: impl FnMut(Direction, &mut Vec<u8>),
) -> Pair {
    let mut pair = Pair::seeded(seed, client_config(hwid_seed, "WS-01", "alice"), now).unwrap();
    pair.run_with(issuer, store, tamper).unwrap();
    assert!(
        pair.server.is_finished(),
        "server still waiting: {:?}",
        pair.server_events
    );
    assert!(
        pair.client.is_finished(),
        "client still waiting: {:?}",
        pair.client_events
    );
    pair
}

fn message_types(pair: &Pair) -> Vec<(Direction, &'static str)> {
    pair.transcript
        .iter()
        .map(|(direction, pdu)| {
            (
                *direction,
                LicensingPdu::decode(pdu).unwrap().message.structure_name(),
            )
        })
        .collect()
}

/// The error alert the server sent last.
fn server_alert(pair: &Pair) -> (ErrorCode, StateTransition) {
    let (_, pdu) = pair
        .transcript
        .iter()
        .rev()
        .find(|(d, _)| *d == Direction::ServerToClient)
        .unwrap();
    match LicensingPdu::decode(pdu).unwrap().message {
        LicensingMessage::ErrorAlert(alert) => (alert.error_code, alert.state_transition),
        other => panic!("last server message is {}", other.structure_name()),
    }
}

fn refused(pair: &Pair) -> (Refusal, RefusalReason) {
    match pair.server_events.last() {
        Some(ServerEvent::Refused { refusal, reason }) => (*refusal, *reason),
        other => panic!("server did not refuse: {other:?}"),
    }
}

fn stored_cal(store: &MemoryStore) -> cal::Cal {
    assert_eq!(store.licenses.len(), 1, "one CAL stored");
    cal::parse_cal(store.licenses.values().next().unwrap()).unwrap()
}

#[test]
fn first_contact_gets_a_90_day_temporary_license() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    let pair = connect(1, 7, epoch(), &mut issuer, &mut store);
    assert_eq!(
        message_types(&pair),
        [
            (Direction::ServerToClient, "SERVER_LICENSE_REQUEST"),
            (Direction::ClientToServer, "CLIENT_NEW_LICENSE_REQUEST"),
            (Direction::ServerToClient, "SERVER_PLATFORM_CHALLENGE"),
            (
                Direction::ClientToServer,
                "CLIENT_PLATFORM_CHALLENGE_RESPONSE"
            ),
            (Direction::ServerToClient, "SERVER_NEW_LICENSE"),
        ]
    );
    let cal = stored_cal(&store);
    assert_eq!(cal.kind, CalKind::Temporary);
    assert_eq!(
        (
            cal.client_license.machine.as_str(),
            cal.client_license.user.as_str()
        ),
        ("WS-01", "alice")
    );
    assert_eq!(cal.client_license.hwid.data, [7; 16]);
    assert_eq!(
        cal.client_license
            .not_after
            .duration_since(cal.client_license.not_before)
            .unwrap(),
        DAY * 90
    );
    let Some(ServerEvent::Licensed(LicensedOutcome::Issued { client })) = pair.server_events.last()
    else {
        panic!("{:?}", pair.server_events)
    };
    assert_eq!(
        (client.machine_name.as_str(), client.user_name.as_str()),
        ("WS-01", "alice")
    );
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Licensed)
    ));
    assert!(matches!(
        &pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: false, .. }
    ));
}

#[test]
fn second_connection_presents_the_temporary_license_and_gets_a_permanent_one() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    let pair = connect(2, 7, epoch() + DAY, &mut issuer, &mut store);
    assert_eq!(
        message_types(&pair)[1..],
        [
            (Direction::ClientToServer, "CLIENT_LICENSE_INFO"),
            (Direction::ServerToClient, "SERVER_PLATFORM_CHALLENGE"),
            (
                Direction::ClientToServer,
                "CLIENT_PLATFORM_CHALLENGE_RESPONSE"
            ),
            (Direction::ServerToClient, "SERVER_UPGRADE_LICENSE"),
        ]
    );
    let cal = stored_cal(&store);
    assert_eq!(cal.kind, CalKind::Permanent);
    assert_eq!(cal.client_license.not_before, epoch() + DAY);
    assert!(matches!(
        &pair.client_events[0],
        ClientEvent::StoreLicense { upgrade: true, .. }
    ));
    assert_eq!(
        issuer
            .issued
            .iter()
            .map(|(kind, _)| *kind)
            .collect::<Vec<_>>(),
        [CalKind::Temporary, CalKind::Permanent]
    );
}

#[test]
fn valid_permanent_license_gets_status_valid_client_without_a_challenge() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    connect(2, 7, epoch() + DAY, &mut issuer, &mut store);
    let before = store.licenses.clone();
    let pair = connect(3, 7, epoch() + DAY * 10, &mut issuer, &mut store);
    assert_eq!(
        message_types(&pair)[1..],
        [
            (Direction::ClientToServer, "CLIENT_LICENSE_INFO"),
            (Direction::ServerToClient, "LICENSE_ERROR_MESSAGE")
        ]
    );
    assert_eq!(
        server_alert(&pair),
        (
            ErrorCode::STATUS_VALID_CLIENT,
            StateTransition::ST_NO_TRANSITION
        )
    );
    assert!(matches!(
        pair.server_events.last(),
        Some(ServerEvent::Licensed(LicensedOutcome::Valid { .. }))
    ));
    assert_eq!(store.licenses, before, "nothing new stored");
}

#[test]
fn permanent_license_within_seven_days_of_expiry_is_renewed() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    connect(2, 7, epoch() + DAY, &mut issuer, &mut store);
    let expiry = stored_cal(&store).client_license.not_after;
    let renewal_day = expiry - DAY * 5;
    let pair = connect(3, 7, renewal_day, &mut issuer, &mut store);
    assert_eq!(
        message_types(&pair).last().unwrap().1,
        "SERVER_UPGRADE_LICENSE"
    );
    let renewed = stored_cal(&store);
    assert_eq!(renewed.kind, CalKind::Permanent);
    assert_eq!(renewed.client_license.not_before, renewal_day);
    assert!(renewed.client_license.not_after > expiry);
}

#[test]
fn expired_license_is_refused() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    let pair = connect(2, 7, epoch() + DAY * 91, &mut issuer, &mut store);
    assert_eq!(
        server_alert(&pair),
        (
            ErrorCode::ERR_INVALID_CLIENT,
            StateTransition::ST_TOTAL_ABORT
        )
    );
    assert_eq!(refused(&pair).1, RefusalReason::IssuerRefused);
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::ServerError {
            error_code: ErrorCode::ERR_INVALID_CLIENT,
            ..
        })
    ));
}

#[test]
fn each_issuer_refusal_reaches_the_client_as_its_error_message() {
    let no_license = Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER);
    // New license refused.
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    issuer.refuse_new = Some(no_license);
    let mut store = MemoryStore::default();
    let pair = connect(1, 7, epoch(), &mut issuer, &mut store);
    assert_eq!(
        server_alert(&pair),
        (
            ErrorCode::ERR_NO_LICENSE_SERVER,
            StateTransition::ST_TOTAL_ABORT
        )
    );
    assert!(store.licenses.is_empty());
    // Assessment refused, then upgrade refused (after a passed challenge).
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    issuer.refuse_assessment = Some(Refusal::abort(ErrorCode::ERR_INVALID_PRODUCTID));
    let pair = connect(2, 7, epoch() + DAY, &mut issuer, &mut store);
    assert_eq!(server_alert(&pair).0, ErrorCode::ERR_INVALID_PRODUCTID);
    assert_eq!(
        message_types(&pair).len(),
        3,
        "refused before any challenge"
    );
    issuer.refuse_assessment = None;
    issuer.refuse_upgrade = Some(no_license);
    let pair = connect(3, 7, epoch() + DAY, &mut issuer, &mut store);
    assert_eq!(message_types(&pair).len(), 5, "refused after the challenge");
    assert_eq!(server_alert(&pair).0, ErrorCode::ERR_NO_LICENSE_SERVER);
    assert_eq!(
        stored_cal(&store).kind,
        CalKind::Temporary,
        "the temporary CAL stays"
    );
}

/// Flips the last byte (inside the MACData) of the first PDU of `kind` going `direction`.
fn flip_mac(direction: Direction, kind: &'static str) -> impl FnMut(Direction, &mut Vec<u8>) {
    move |d, pdu| {
        if d == direction
            && LicensingPdu::decode(pdu).map(|p| p.message.structure_name()) == Ok(kind)
        {
            *pdu.last_mut().unwrap() ^= 0x01;
        }
    }
}

#[test]
fn tampered_macs_are_answered_with_err_invalid_mac() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    // The server checks the challenge response's MAC.
    let pair = connect_with(
        1,
        7,
        epoch(),
        &mut issuer,
        &mut store,
        flip_mac(
            Direction::ClientToServer,
            "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
        ),
    );
    assert_eq!(
        server_alert(&pair),
        (ErrorCode::ERR_INVALID_MAC, StateTransition::ST_TOTAL_ABORT)
    );
    assert_eq!(refused(&pair).1, RefusalReason::InvalidMac);
    assert!(
        issuer.issued.is_empty(),
        "nothing issued to a client that failed the MAC"
    );
    // The client checks the New License's MAC and aborts.
    let pair = connect_with(
        2,
        7,
        epoch(),
        &mut issuer,
        &mut store,
        flip_mac(Direction::ServerToClient, "SERVER_NEW_LICENSE"),
    );
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Aborted {
            error_code: ErrorCode::ERR_INVALID_MAC,
            ..
        })
    ));
    // Licensing was over for the server once it sent the license; the client's alert is the last
    // PDU on the wire.
    let (direction, pdu) = pair.transcript.last().unwrap();
    assert_eq!(*direction, Direction::ClientToServer);
    let LicensingMessage::ErrorAlert(alert) = LicensingPdu::decode(pdu).unwrap().message else {
        panic!()
    };
    assert_eq!(
        (alert.error_code, alert.state_transition),
        (ErrorCode::ERR_INVALID_MAC, StateTransition::ST_TOTAL_ABORT)
    );
    assert!(
        store.licenses.is_empty(),
        "a license with a bad MAC is not stored"
    );
    // The server checks the License Info's MAC over the HWID.
    connect(3, 7, epoch(), &mut issuer, &mut store);
    let pair = connect_with(
        4,
        7,
        epoch() + DAY,
        &mut issuer,
        &mut store,
        flip_mac(Direction::ClientToServer, "CLIENT_LICENSE_INFO"),
    );
    assert_eq!(server_alert(&pair).0, ErrorCode::ERR_INVALID_MAC);
}

#[test]
fn a_license_presented_by_another_hardware_id_is_refused() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    let pair = connect(2, 8, epoch() + DAY, &mut issuer, &mut store);
    assert_eq!(
        server_alert(&pair),
        (
            ErrorCode::ERR_INVALID_CLIENT,
            StateTransition::ST_TOTAL_ABORT
        )
    );
    assert_eq!(refused(&pair).1, RefusalReason::HwidMismatch);
}

/// A host's connections share its configuration's `CalCache`: a CAL presented again is the
/// parse kept from its first presentation, and answered the same.
#[test]
fn a_cal_presented_again_is_parsed_once_per_host() {
    let config = server_config(&mut ChaCha20Rng::seed_from_u64(1)).unwrap();
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    let mut connect_at = |seed: u64, now: SystemTime| {
        let client = client_config(7, "WS-01", "alice");
        let rng = ChaCha20Rng::seed_from_u64(seed);
        let mut pair = Pair::new(config.clone(), client, rng, now);
        pair.run(&mut issuer, &mut store).unwrap();
        let presented = store.licenses.values().next().unwrap().clone();
        (pair, presented)
    };
    connect_at(1, epoch());
    assert!(
        config.cals.is_empty(),
        "nothing presented at the first logon"
    );
    let (_, permanent) = connect_at(2, epoch() + DAY);
    assert_eq!(config.cals.len(), 1, "the temporary CAL");
    let mut answers = Vec::new();
    for (seed, day) in [(3, 10), (4, 11)] {
        let (pair, _) = connect_at(seed, epoch() + DAY * day);
        answers.push(server_alert(&pair));
        assert_eq!(config.cals.len(), 2, "the permanent CAL, kept once");
    }
    let valid = (
        ErrorCode::STATUS_VALID_CLIENT,
        StateTransition::ST_NO_TRANSITION,
    );
    assert_eq!(answers, [valid, valid]);
    let kept = config.cals.parse(&permanent).unwrap();
    assert_eq!(*kept, cal::parse_cal(&permanent).unwrap());
    assert!(Arc::ptr_eq(&kept, &config.cals.parse(&permanent).unwrap()));
    assert_eq!(config.cals.len(), 2, "the permanent CAL was the one kept");
}

#[test]
fn a_corrupted_license_is_refused() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    connect(1, 7, epoch(), &mut issuer, &mut store);
    for license in store.licenses.values_mut() {
        license.truncate(license.len() / 2);
    }
    let pair = connect(2, 7, epoch() + DAY, &mut issuer, &mut store);
    assert_eq!(server_alert(&pair).0, ErrorCode::ERR_INVALID_CLIENT);
    assert_eq!(refused(&pair).1, RefusalReason::CorruptCal);
}

#[test]
fn a_premaster_encrypted_to_the_wrong_key_fails_like_a_bad_mac() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(9);
    let advertised = rdpele_proto::machine::testing::server_config(&mut rng).unwrap();
    let mut config = rdpele_proto::machine::testing::server_config(&mut rng).unwrap();
    config.certificate = advertised.certificate;
    // New License Request: the server's challenge is under other keys; the client notices.
    let mut pair = Pair::new(config, client_config(7, "WS-01", "alice"), rng, epoch());
    pair.run(&mut issuer, &mut store).unwrap();
    assert!(matches!(
        pair.client_events.last(),
        Some(ClientEvent::Aborted {
            error_code: ErrorCode::ERR_INVALID_MAC,
            ..
        })
    ));
    // License Info: the server notices at the HWID's MAC, and says ERR_INVALID_MAC as it would
    // for any bad MAC.
    connect(1, 7, epoch(), &mut issuer, &mut store);
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(10);
    let advertised = rdpele_proto::machine::testing::server_config(&mut rng).unwrap();
    let mut config = rdpele_proto::machine::testing::server_config(&mut rng).unwrap();
    config.certificate = advertised.certificate;
    let mut pair = Pair::new(
        config,
        client_config(7, "WS-01", "alice"),
        rng,
        epoch() + DAY,
    );
    pair.run(&mut issuer, &mut store).unwrap();
    assert_eq!(server_alert(&pair).0, ErrorCode::ERR_INVALID_MAC);
    assert_eq!(refused(&pair).1, RefusalReason::PremasterNotDecryptable);
}

#[test]
fn malformed_and_unexpected_messages_get_error_messages() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    // A New License Request cut short.
    let pair = connect_with(1, 7, epoch(), &mut issuer, &mut store, |d, pdu| {
        if d == Direction::ClientToServer {
            pdu.truncate(pdu.len() - 3);
        }
    });
    assert_eq!(
        server_alert(&pair),
        (
            ErrorCode::ERR_INVALID_MESSAGE_LEN,
            StateTransition::ST_TOTAL_ABORT
        )
    );
    assert_eq!(refused(&pair).1, RefusalReason::MalformedMessage);
    // A challenge response where a New License Request is expected.
    let mut pair = Pair::seeded(2, client_config(7, "WS-01", "alice"), epoch()).unwrap();
    pair.server.start(&mut pair.rng);
    let request = pair.server.poll_transmit().unwrap();
    let response = hex::decode(
        "15834800090018004d8ef0f5276c00ea6eb0bfdf92ec0b462cd7836820ce09f2090014004d8ff10e4c0092f0ad69b47c5c8d20b5e9e3e795f6196efe55bd2c49fafac090fc696ca8",
    )
    .unwrap();
    pair.server
        .handle_pdu_with_issuer(epoch(), &response, &mut pair.rng, &mut issuer)
        .unwrap();
    let alert = pair.server.poll_transmit().unwrap();
    assert_ne!(alert, request);
    let LicensingMessage::ErrorAlert(alert) = LicensingPdu::decode(&alert).unwrap().message else {
        panic!()
    };
    assert_eq!(alert.error_code, ErrorCode::ERR_INVALID_CLIENT);
    assert!(matches!(
        pair.server.poll_event(),
        Some(ServerEvent::Refused {
            reason: RefusalReason::UnexpectedMessage,
            ..
        })
    ));
    assert!(
        pair.server
            .handle_pdu_with_issuer(epoch(), &response, &mut pair.rng, &mut issuer)
            .is_err(),
        "finished"
    );
}

#[test]
fn server_license_request_carries_a_verifiable_proprietary_certificate() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut store = MemoryStore::default();
    let pair = connect(1, 7, epoch(), &mut issuer, &mut store);
    let LicensingMessage::LicenseRequest(request) =
        LicensingPdu::decode(&pair.transcript[0].1).unwrap().message
    else {
        panic!()
    };
    let certificate = request.server_certificate.certificate.unwrap();
    assert!(rdpele_proto::crypto::verify_server_certificate(
        &certificate
    ));
    assert_eq!(request.product_info.product_id.to_string_lossy(), "A02");
}

/// Found by the client_machine fuzz target: an ST_RESEND_LAST_MESSAGE alert before the client
/// has sent anything made it queue an empty PDU.
#[test]
fn resend_requested_before_anything_was_sent_sends_nothing() {
    let mut pair = Pair::seeded(1, client_config(7, "WS-01", "alice"), epoch()).unwrap();
    let alert = hex::decode("ff03100002000000040000000400000000").unwrap();
    let store = MemoryStore::default();
    pair.client
        .handle_pdu(&alert[..16], &mut pair.rng, &store)
        .unwrap();
    assert_eq!(pair.client.poll_transmit(), None);
    assert!(
        !pair.client.is_finished(),
        "still waiting for the License Request"
    );
    // The server likewise, before `start`.
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    pair.server
        .handle_pdu_with_issuer(epoch(), &alert[..16], &mut pair.rng, &mut issuer)
        .unwrap();
    assert_eq!(pair.server.poll_transmit(), None);
}

/// A challenge too long to answer (a response data's cbChallenge is 16-bit) ends licensing on
/// the client's side instead of leaving it waiting after its abort.
#[test]
fn a_client_that_aborts_on_a_challenge_stays_finished() {
    use rdpele_proto::crypto;
    use rdpele_proto::wire::{BlobType, LicenseBinaryBlob, PreambleFlags, ServerPlatformChallenge};
    let mut pair = Pair::seeded(1, client_config(7, "WS-01", "alice"), epoch()).unwrap();
    let store = MemoryStore::default();
    pair.server.start(&mut pair.rng);
    let request = pair.server.poll_transmit().unwrap();
    pair.client
        .handle_pdu(&request, &mut pair.rng, &store)
        .unwrap();
    let new_license_request = pair.client.poll_transmit().unwrap();
    // Recover the session keys the way the server would, then send a 65,500-byte challenge.
    let LicensingMessage::NewLicenseRequest(nlr) =
        LicensingPdu::decode(&new_license_request).unwrap().message
    else {
        panic!()
    };
    let LicensingMessage::LicenseRequest(lr) = LicensingPdu::decode(&request).unwrap().message
    else {
        panic!()
    };
    let mut rng =
        <rand_chacha::ChaCha20Rng as rand_chacha::rand_core::SeedableRng>::seed_from_u64(1);
    let key = rdpele_proto::machine::testing::server_config(&mut rng)
        .unwrap()
        .private_key;
    let premaster = key
        .decrypt_premaster(nlr.encrypted_premaster_secret.data, &mut rng)
        .unwrap();
    let keys = crypto::derive_session_keys(&premaster, &nlr.client_random, &lr.server_random);
    // Fits in the challenge PDU (65,528 bytes) but not in the response (65,556).
    let challenge = vec![0x41u8; 65_500];
    let encrypted = crypto::rc4(keys.licensing_encryption_key.expose(), &challenge);
    let pdu = LicensingPdu {
        flags: PreambleFlags(3),
        message: LicensingMessage::PlatformChallenge(ServerPlatformChallenge {
            connect_flags: 0,
            encrypted_platform_challenge: LicenseBinaryBlob::new(
                BlobType::BB_ENCRYPTED_DATA_BLOB,
                &encrypted,
            ),
            mac_data: crypto::mac_data(keys.mac_salt_key.expose(), &challenge),
        }),
    }
    .to_vec()
    .unwrap();
    pair.client.handle_pdu(&pdu, &mut pair.rng, &store).unwrap();
    assert!(pair.client.is_finished());
    let events: Vec<_> = std::iter::from_fn(|| pair.client.poll_event()).collect();
    assert!(
        matches!(
            events.last(),
            Some(ClientEvent::Aborted {
                error_code: ErrorCode::ERR_NO_LICENSE,
                ..
            })
        ),
        "{events:?}"
    );
}

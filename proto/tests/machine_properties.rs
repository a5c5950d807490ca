//! Both state machines driven by an adversarial network: messages delivered late, reordered,
//! replayed, dropped, mutated, or replaced by arbitrary bytes. Whatever happens: no panic, every
//! PDU a machine sends is a well-formed licensing message, every refusal goes out as a Licensing
//! Error Message carrying exactly the refusal's code and transition, and a finished machine
//! says so instead of acting.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use arbitrary::Unstructured;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rdpele_proto::machine::testing::{
    client_config, server_config, MemoryStore, Pair, RuleIssuer, DAY,
};
use rdpele_proto::machine::ServerConfig;
use rdpele_proto::machine::{ClientEvent, MachineError, ServerEvent};
use rdpele_proto::wire::{LicensingMessage, LicensingPdu, StateTransition, Wire};

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// One session host key for every case: generating one per case would dominate the run.
fn shared_server_config() -> &'static ServerConfig {
    static CONFIG: OnceLock<ServerConfig> = OnceLock::new();
    CONFIG.get_or_init(|| server_config(&mut ChaCha20Rng::seed_from_u64(1)).unwrap())
}

/// A pair on the shared host key whose randomness comes from `seed`.
fn pair(seed: u64, hwid: u8, now: SystemTime) -> Pair {
    Pair::new(
        shared_server_config().clone(),
        client_config(hwid, "WS-01", "alice"),
        ChaCha20Rng::seed_from_u64(seed),
        now,
    )
}

/// A store holding the temporary CAL of client 7, so License Info paths are reachable.
fn licensed_store() -> &'static MemoryStore {
    static STORE: OnceLock<MemoryStore> = OnceLock::new();
    STORE.get_or_init(|| {
        let mut issuer = RuleIssuer::new(epoch()).unwrap();
        let mut store = MemoryStore::default();
        pair(1, 7, epoch()).run(&mut issuer, &mut store).unwrap();
        assert_eq!(store.licenses.len(), 1);
        store
    })
}

fn decoded_alert(pdu: &[u8]) -> Option<(u32, u32)> {
    match LicensingPdu::decode(pdu).ok()?.message {
        LicensingMessage::ErrorAlert(alert) => Some((alert.error_code.0, alert.state_transition.0)),
        _ => None,
    }
}

/// Delivers to the server, then checks what it sent and reported.
fn to_server(
    pair: &mut Pair,
    issuer: &mut RuleIssuer,
    pdu: &[u8],
    to_client: &mut VecDeque<Vec<u8>>,
) {
    let finished = pair.server.is_finished();
    match pair
        .server
        .handle_pdu_with_issuer(pair.now, pdu, &mut pair.rng, issuer)
    {
        Ok(()) => assert!(!finished, "a finished server accepted a message"),
        Err(MachineError::Finished) => assert!(finished),
        Err(other) => panic!("server: {other}"),
    }
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| pair.server.poll_transmit()).collect();
    for pdu in &sent {
        LicensingPdu::decode(pdu).unwrap_or_else(|e| panic!("server sent a malformed PDU: {e}"));
    }
    while let Some(event) = pair.server.poll_event() {
        if let ServerEvent::Refused { refusal, .. } = &event {
            let last = sent.last().expect("a refusal without a message");
            assert_eq!(
                decoded_alert(last),
                Some((refusal.error_code.0, refusal.state_transition.0)),
                "refusal {refusal:?} not sent as such"
            );
        }
    }
    to_client.extend(sent);
}

fn to_client(
    pair: &mut Pair,
    store: &mut MemoryStore,
    pdu: &[u8],
    to_server: &mut VecDeque<Vec<u8>>,
) {
    let finished = pair.client.is_finished();
    match pair.client.handle_pdu(pdu, &mut pair.rng, store) {
        Ok(()) => assert!(!finished, "a finished client accepted a message"),
        Err(MachineError::Finished) => assert!(finished),
        Err(other) => panic!("client: {other}"),
    }
    let sent: Vec<Vec<u8>> = std::iter::from_fn(|| pair.client.poll_transmit()).collect();
    for pdu in &sent {
        LicensingPdu::decode(pdu).unwrap_or_else(|e| panic!("client sent a malformed PDU: {e}"));
    }
    while let Some(event) = pair.client.poll_event() {
        if let ClientEvent::Aborted { error_code, .. } = &event {
            let last = sent.last().expect("an abort without a message");
            assert_eq!(
                decoded_alert(last),
                Some((error_code.0, StateTransition::ST_TOTAL_ABORT.0))
            );
        }
        store.apply(&event);
    }
    to_server.extend(sent);
}

/// Applies one network mischief to `queue`, chosen by `u`.
fn mischief(u: &mut Unstructured<'_>, queue: &mut VecDeque<Vec<u8>>) -> arbitrary::Result<()> {
    match u.int_in_range(0..=6)? {
        0 if !queue.is_empty() => {
            let pdu = &mut queue[0];
            if !pdu.is_empty() {
                let at = u.choose_index(pdu.len())?;
                pdu[at] ^= 1 << u.int_in_range(0..=7)?;
            }
        }
        1 if !queue.is_empty() => {
            let len = queue[0].len();
            queue[0].truncate(u.int_in_range(0..=len)?);
        }
        2 if queue.len() >= 2 => queue.swap(0, 1),
        3 if !queue.is_empty() => queue.push_back(queue[0].clone()),
        4 => {
            queue.pop_front();
        }
        5 => {
            let junk: Vec<u8> = u.arbitrary()?;
            queue.push_front(junk);
        }
        _ => {
            let message: LicensingPdu<'_> = u.arbitrary()?;
            if let Ok(pdu) = message.to_vec() {
                queue.push_front(pdu);
            }
        }
    }
    Ok(())
}

#[test]
fn adversarial_network_never_panics_and_every_refusal_is_an_error_message() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    arbtest::arbtest(|u| {
        let mut store = if u.arbitrary()? {
            licensed_store().clone()
        } else {
            MemoryStore::default()
        };
        let hwid = if u.ratio(1, 4)? { 8 } else { 7 };
        let now = epoch() + DAY * u.int_in_range(0..=100)?;
        let mut pair = pair(u.arbitrary()?, hwid, now);
        let mut to_client_queue = VecDeque::new();
        let mut to_server_queue = VecDeque::new();
        pair.server.start(&mut pair.rng);
        to_client_queue.extend(std::iter::from_fn(|| pair.server.poll_transmit()));
        let issuer = &mut issuer;
        for _ in 0..u.int_in_range(1..=24)? {
            match u.int_in_range(0..=3)? {
                0 => {
                    if let Some(pdu) = to_client_queue.pop_front() {
                        to_client(&mut pair, &mut store, &pdu, &mut to_server_queue);
                    }
                }
                1 => {
                    if let Some(pdu) = to_server_queue.pop_front() {
                        to_server(&mut pair, issuer, &pdu, &mut to_client_queue);
                    }
                }
                2 => mischief(u, &mut to_client_queue)?,
                _ => mischief(u, &mut to_server_queue)?,
            }
        }
        Ok(())
    })
    .budget_ms(4_000);
}

/// Without mischief, the same driver always reaches the end with both sides agreeing.
#[test]
fn an_honest_network_always_completes_licensing() {
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    arbtest::arbtest(|u| {
        let mut store = if u.arbitrary()? {
            licensed_store().clone()
        } else {
            MemoryStore::default()
        };
        let now = epoch() + DAY * u.int_in_range(0..=80)?;
        let mut pair = pair(u.arbitrary()?, 7, now);
        pair.run(&mut issuer, &mut store).unwrap();
        assert!(pair.server.is_finished() && pair.client.is_finished());
        assert!(
            matches!(pair.client_events.last(), Some(ClientEvent::Licensed)),
            "{:?}",
            pair.client_events
        );
        assert!(
            matches!(pair.server_events.last(), Some(ServerEvent::Licensed(_))),
            "{:?}",
            pair.server_events
        );
        Ok(())
    })
    .budget_ms(2_000);
}

//! The state machine targets: a [`ServerMachine`] or a [`ClientMachine`], deterministic for a
//! given input, fed a sequence of its peer's PDUs carved from the input.
//!
//! Almost everything a machine does happens after a MAC check, which arbitrary bytes never pass.
//! So each PDU is, as the input chooses:
//! - a genuine message, recorded once per process from three in-memory connections (see
//!   [`record`]); replayed to a machine seeded like the recorded one, it passes every check and
//!   reaches the issuer or the license store;
//! - a genuine message mutated: a bit flipped, truncated, a byte overwritten, bytes appended;
//! - the PDU delivered before, again;
//! - raw bytes, or an arbitrary [`LicensingPdu`] encoded.
//!
//! The recording does not use `Pair::run`: a pair shares one RNG between both machines, so a
//! machine alone could not reproduce its recorded randomness. Here each side has its own.
//!
//! # Input layout (what `fuzz/make-seeds.sh` spells in the seeds)
//!
//! Bytes past the end of the input read as zero.
//! - Server: a scenario byte; `% 4` = 0, 1, 2 seeds the server's RNG as in that recorded
//!   connection, 3 takes the seed from the next 8 bytes (little-endian). Then a day byte: the
//!   server's clock is the recording's plus that many days (90 expire the temporary CAL).
//! - Client: a scenario byte; `% 4` = 0, 1, 2 seeds the client's RNG and fills its store as in
//!   that recorded connection, 3 takes the seed from the next 8 bytes and then the store of
//!   connection `byte % 3`.
//! - Then up to [`MAX_STEPS`] PDUs, each an operation byte `% 5`:
//!   0. genuine: an index byte into the peer's recorded PDUs (`% count`);
//!   1. mutated: an index byte, a position (2 bytes LE, `% length`), a mutation byte `% 4`, its
//!      operand: 0 flips bit `byte % 8`, 1 truncates there, 2 overwrites with a byte, 3 appends
//!      a length byte's worth of bytes;
//!   2. the previous PDU again (nothing before the first);
//!   3. raw: a length byte, then that many bytes;
//!   4. an arbitrary [`LicensingPdu`], encoded.
//!
//! Recorded client PDUs: 0 New License Request, 1 Challenge Response (first contact); 2 License
//! Info, 3 Challenge Response (upgrade); 4 License Info (valid). Recorded server PDUs: 0 License
//! Request, 1 Platform Challenge, 2 New License; 3 License Request, 4 Platform Challenge,
//! 5 Upgrade License; 6 License Request, 7 STATUS_VALID_CLIENT.

// The fuzz oracle: a failed assertion is how these functions report a bug.
#![allow(clippy::expect_used, clippy::panic)]

use std::iter;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, SystemTime};

use arbitrary::{Arbitrary, Unstructured};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::machine::testing::{client_config, server_config, MemoryStore, RuleIssuer, DAY};
use crate::machine::{
    Assessment, ClientEvent, ClientInfo, ClientMachine, Decision, LicenseIssuer, LicensedOutcome,
    MachineError, PresentedLicense, ServerConfig, ServerEvent, ServerMachine,
};
use crate::wire::{ErrorCode, LicensingMessage, LicensingPdu, StateTransition, Wire};

/// PDUs per input at most: every licensing flow is over within four.
const MAX_STEPS: usize = 16;

/// The recorded connections' RNG seeds, (server, client): first contact, upgrade, valid.
const CONNECTIONS: [(u64, u64); 3] = [(101, 201), (102, 202), (103, 203)];
/// Seeds the session host key, shared by every connection and every input.
const CONFIG_SEED: u64 = 1;
const HWID_SEED: u8 = 7;
const MACHINE_NAME: &str = "WS-01";
const USER_NAME: &str = "alice";

/// When the connections were recorded, and the fuzzed server's clock before its day offset.
fn recorded_at() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

/// A server on the shared key, fed client PDUs. Checks that a client's PDU never makes
/// `handle_pdu` fail (only a finished server returns `Err`, and then does nothing); that every
/// PDU the server queues decodes; that a refusal goes out as an ERROR_ALERT with exactly its
/// error code and state transition, as the last PDU, and ends licensing; that a licensed outcome
/// goes out as its New License, Upgrade License or STATUS_VALID_CLIENT; and that the issuer is
/// consulted only under a recorded seed (no client proves its keys otherwise).
pub fn server_machine(data: &[u8]) {
    run_server(data);
}

/// A client with a recorded or arbitrary store, fed server PDUs. Checks that a server's PDU
/// never makes `handle_pdu` fail (only a finished client returns `Err`, and then does nothing);
/// that every PDU the client queues decodes; that an abort goes out as an ERROR_ALERT with
/// ST_TOTAL_ABORT and its error code, as the last PDU, and ends licensing; and that the client
/// stores only a CAL the recorded server issued (a license whose MAC verified), then ends.
pub fn client_machine(data: &[u8]) {
    run_client(data);
}

/// Runs [`server_machine`] and returns every event (for the tests).
fn run_server(data: &[u8]) -> Vec<ServerEvent> {
    let recording = recording();
    let mut u = Unstructured::new(data);
    let seed = match recording.connections.get(usize::from(byte(&mut u) % 4)) {
        Some(connection) => connection.server_seed,
        None => u64::from_le_bytes(bytes(&mut u)),
    };
    let now = recorded_at() + DAY * u32::from(byte(&mut u));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut server = ServerMachine::new(recording.config.clone());
    let mut issuer = Issuer {
        rules: shared_rules(),
        consulted: false,
    };
    server.start(&mut rng);
    let opening: Vec<Vec<u8>> = iter::from_fn(|| server.poll_transmit()).collect();
    let names: Vec<_> = opening.iter().map(|pdu| structure_name(pdu)).collect();
    assert_eq!(names, [Some("SERVER_LICENSE_REQUEST")], "what start queues");

    let mut all_events = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Some(pdu) = carve(&mut u, &recording.client_pdus, previous.as_deref()) else {
            continue;
        };
        let was_finished = server.is_finished();
        let result = server.handle_pdu_with_issuer(now, &pdu, &mut rng, &mut issuer);
        let sent: Vec<Vec<u8>> = iter::from_fn(|| server.poll_transmit()).collect();
        let events: Vec<ServerEvent> = iter::from_fn(|| server.poll_event()).collect();
        check_outcome("server", was_finished, result, &sent, events.is_empty());
        let last = sent.last().and_then(|pdu| LicensingPdu::decode(pdu).ok());
        for event in &events {
            check_server_event(event, last.as_ref(), server.is_finished());
        }
        all_events.extend(events);
        previous = Some(pdu);
    }
    if issuer.consulted {
        assert!(
            recording.connections.iter().any(|c| c.server_seed == seed),
            "the issuer was consulted under seed {seed}, where no client can prove its keys"
        );
    }
    all_events
}

fn check_server_event(event: &ServerEvent, last: Option<&LicensingPdu<'_>>, finished: bool) {
    let last = last.map(|pdu| &pdu.message);
    match event {
        ServerEvent::Refused { refusal, reason } => {
            assert!(finished, "refused ({reason:?}) yet still waiting");
            assert_eq!(
                alert(last),
                Some((refusal.error_code, refusal.state_transition)),
                "refusal {refusal:?} ({reason:?}) is not the last PDU queued"
            );
        }
        ServerEvent::Licensed(outcome) => {
            assert!(finished, "licensed ({outcome:?}) yet still waiting");
            let sent_as_such = match outcome {
                LicensedOutcome::Issued { .. } => {
                    matches!(last, Some(LicensingMessage::NewLicense(_)))
                }
                LicensedOutcome::Upgraded { .. } => {
                    matches!(last, Some(LicensingMessage::UpgradeLicense(_)))
                }
                LicensedOutcome::Valid { .. } | LicensedOutcome::AdmittedWithoutLicense => {
                    alert(last)
                        == Some((
                            ErrorCode::STATUS_VALID_CLIENT,
                            StateTransition::ST_NO_TRANSITION,
                        ))
                }
            };
            assert!(sent_as_such, "{outcome:?} but the last PDU is {last:?}");
        }
        ServerEvent::ClientError { .. } | ServerEvent::ChallengeResponseTolerated { .. } => {}
    }
}

/// Runs [`client_machine`] and returns every event (for the tests).
fn run_client(data: &[u8]) -> Vec<ClientEvent> {
    let recording = recording();
    let mut u = Unstructured::new(data);
    let (seed, store) = match recording.connections.get(usize::from(byte(&mut u) % 4)) {
        Some(connection) => (connection.client_seed, connection.store.clone()),
        None => {
            let seed = u64::from_le_bytes(bytes(&mut u));
            let store = pick(&mut u, &recording.connections);
            (seed, store.map(|c| c.store.clone()).unwrap_or_default())
        }
    };
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut client = ClientMachine::new(client_config(HWID_SEED, MACHINE_NAME, USER_NAME));

    let mut all_events = Vec::new();
    let mut previous: Option<Vec<u8>> = None;
    for _ in 0..MAX_STEPS {
        if u.is_empty() {
            break;
        }
        let Some(pdu) = carve(&mut u, &recording.server_pdus, previous.as_deref()) else {
            continue;
        };
        let was_finished = client.is_finished();
        let result = client.handle_pdu(&pdu, &mut rng, &store);
        let sent: Vec<Vec<u8>> = iter::from_fn(|| client.poll_transmit()).collect();
        let events: Vec<ClientEvent> = iter::from_fn(|| client.poll_event()).collect();
        check_outcome("client", was_finished, result, &sent, events.is_empty());
        let last = sent.last().and_then(|pdu| LicensingPdu::decode(pdu).ok());
        let last = last.as_ref().map(|pdu| &pdu.message);
        let finished = client.is_finished();
        for (index, event) in events.iter().enumerate() {
            match event {
                ClientEvent::Aborted { error_code, reason } => {
                    assert!(finished, "aborted ({reason}) yet still waiting");
                    assert_eq!(
                        alert(last),
                        Some((*error_code, StateTransition::ST_TOTAL_ABORT)),
                        "abort ({reason}) is not the last PDU queued"
                    );
                }
                ClientEvent::StoreLicense { license_info, .. } => {
                    assert!(
                        recording.cals.contains(license_info),
                        "stored a CAL the server never issued: {license_info:02x?}"
                    );
                    assert_eq!(events.get(index + 1), Some(&ClientEvent::Licensed));
                    assert!(finished, "stored a license yet still waiting");
                }
                ClientEvent::Licensed => assert!(finished, "licensed yet still waiting"),
                ClientEvent::ServerError { .. } => {}
            }
        }
        all_events.extend(events);
        previous = Some(pdu);
    }
    all_events
}

/// The contract of `handle_pdu` on a peer's PDU: `Err` only from a machine already finished,
/// which then neither sends nor reports anything; whatever is sent is a licensing PDU.
fn check_outcome(
    side: &str,
    was_finished: bool,
    result: Result<(), MachineError>,
    sent: &[Vec<u8>],
    quiet: bool,
) {
    match result {
        Ok(()) => assert!(!was_finished, "a finished {side} took a PDU"),
        Err(MachineError::Finished) => {
            assert!(was_finished, "a {side} still running says it is finished");
            assert!(sent.is_empty() && quiet, "a finished {side} acted");
        }
        Err(error) => panic!("a peer's PDU broke the {side}: {error}"),
    }
    for pdu in sent {
        if let Err(error) = LicensingPdu::decode(pdu) {
            panic!("the {side} queued an undecodable PDU ({error}): {pdu:02x?}");
        }
    }
}

fn alert(message: Option<&LicensingMessage<'_>>) -> Option<(ErrorCode, StateTransition)> {
    match message? {
        LicensingMessage::ErrorAlert(alert) => Some((alert.error_code, alert.state_transition)),
        _ => None,
    }
}

fn structure_name(pdu: &[u8]) -> Option<&'static str> {
    LicensingPdu::decode(pdu)
        .ok()
        .map(|pdu| pdu.message.structure_name())
}

/// The next PDU for the machine under test, as the input chooses it (see the module doc).
fn carve(
    u: &mut Unstructured<'_>,
    genuine: &[Vec<u8>],
    previous: Option<&[u8]>,
) -> Option<Vec<u8>> {
    match byte(u) % 5 {
        0 => pick(u, genuine).cloned(),
        1 => pick(u, genuine).map(|pdu| mutate(u, pdu.clone())),
        2 => previous.map(<[u8]>::to_vec),
        3 => {
            let len = usize::from(byte(u)).min(u.len());
            u.bytes(len).ok().map(<[u8]>::to_vec)
        }
        _ => LicensingPdu::arbitrary(u).ok()?.to_vec().ok(),
    }
}

fn mutate(u: &mut Unstructured<'_>, mut pdu: Vec<u8>) -> Vec<u8> {
    let at = usize::from(u16::from_le_bytes(bytes(u)));
    let at_byte = at.checked_rem(pdu.len());
    match byte(u) % 4 {
        0 => {
            let bit = byte(u) % 8;
            if let Some(target) = at_byte.and_then(|i| pdu.get_mut(i)) {
                *target ^= 1 << bit;
            }
        }
        1 => pdu.truncate(at_byte.unwrap_or(0)),
        2 => {
            let value = byte(u);
            if let Some(target) = at_byte.and_then(|i| pdu.get_mut(i)) {
                *target = value;
            }
        }
        _ => {
            let len = usize::from(byte(u)).min(u.len());
            if let Ok(tail) = u.bytes(len) {
                pdu.extend_from_slice(tail);
            }
        }
    }
    pdu
}

/// An element of `list` chosen by the next input byte.
fn pick<'a, T>(u: &mut Unstructured<'_>, list: &'a [T]) -> Option<&'a T> {
    usize::from(byte(u))
        .checked_rem(list.len())
        .and_then(|index| list.get(index))
}

/// The next input byte; 0 once the input is used up (as `arbitrary` reads integers).
fn byte(u: &mut Unstructured<'_>) -> u8 {
    u8::arbitrary(u).unwrap_or(0)
}

fn bytes<const N: usize>(u: &mut Unstructured<'_>) -> [u8; N] {
    <[u8; N]>::arbitrary(u).unwrap_or([0; N])
}

/// The rule-based issuer of every input. Building one (a PEM key, a self-signed certificate)
/// takes longer than ten shallow runs, so there is one per process. The license id it numbers
/// CALs with carries on from input to input: it only changes the bytes of an issued CAL, which
/// neither the machine nor the oracle reads.
fn shared_rules() -> MutexGuard<'static, RuleIssuer> {
    static RULES: OnceLock<Mutex<RuleIssuer>> = OnceLock::new();
    let rules = RULES.get_or_init(|| {
        Mutex::new(RuleIssuer::new(recorded_at()).expect("the test license server key loads"))
    });
    // A poisoned lock means an earlier input failed; its issuer is as good as any.
    let mut rules = rules.lock().unwrap_or_else(PoisonError::into_inner);
    rules.issued.clear();
    rules
}

/// The shared issuer, noting whether the machine consulted it.
#[derive(Debug)]
struct Issuer {
    rules: MutexGuard<'static, RuleIssuer>,
    consulted: bool,
}

impl LicenseIssuer for Issuer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision {
        self.consulted = true;
        self.rules.new_license(now, client)
    }

    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment {
        self.consulted = true;
        self.rules.assess_license(now, presented)
    }

    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision {
        self.consulted = true;
        self.rules.upgrade_license(now, presented)
    }
}

/// What a recorded connection started from.
#[derive(Debug)]
struct Connection {
    server_seed: u64,
    client_seed: u64,
    /// The client's license store as the connection found it.
    store: MemoryStore,
}

#[derive(Debug)]
struct Recording {
    /// The session host configuration of every connection and every input.
    config: ServerConfig,
    connections: Vec<Connection>,
    /// Every PDU the client sent, connection after connection.
    client_pdus: Vec<Vec<u8>>,
    /// Every PDU the server sent, connection after connection.
    server_pdus: Vec<Vec<u8>>,
    /// Every CAL (`pbLicenseInfo`) the client stored: what the server issued.
    cals: Vec<Vec<u8>>,
}

fn recording() -> &'static Recording {
    static RECORDING: OnceLock<Recording> = OnceLock::new();
    RECORDING.get_or_init(record)
}

/// Three connections of one client to one session host and license server, at
/// [`recorded_at`]: first contact (a temporary CAL is issued), the temporary CAL presented and
/// upgraded to a permanent one, the permanent CAL presented and found valid.
fn record() -> Recording {
    let config = server_config(&mut ChaCha20Rng::seed_from_u64(CONFIG_SEED))
        .expect("a 512-bit session host key generates");
    let mut issuer = RuleIssuer::new(recorded_at()).expect("the test license server key loads");
    let mut store = MemoryStore::default();
    let mut recording = Recording {
        config,
        connections: Vec::new(),
        client_pdus: Vec::new(),
        server_pdus: Vec::new(),
        cals: Vec::new(),
    };
    for (server_seed, client_seed) in CONNECTIONS {
        recording.connections.push(Connection {
            server_seed,
            client_seed,
            store: store.clone(),
        });
        recording.connect(&mut issuer, &mut store, server_seed, client_seed);
    }
    recording
}

impl Recording {
    /// `Pair::run_with`, with an RNG per side.
    fn connect(
        &mut self,
        issuer: &mut RuleIssuer,
        store: &mut MemoryStore,
        server_seed: u64,
        client_seed: u64,
    ) {
        let mut server = ServerMachine::new(self.config.clone());
        let mut client = ClientMachine::new(client_config(HWID_SEED, MACHINE_NAME, USER_NAME));
        let mut server_rng = ChaCha20Rng::seed_from_u64(server_seed);
        let mut client_rng = ChaCha20Rng::seed_from_u64(client_seed);
        server.start(&mut server_rng);
        loop {
            let mut moved = false;
            while let Some(pdu) = server.poll_transmit() {
                moved = true;
                if !client.is_finished() {
                    client
                        .handle_pdu(&pdu, &mut client_rng, &*store)
                        .expect("the recorded client takes the server's PDU");
                }
                self.server_pdus.push(pdu);
                while let Some(event) = client.poll_event() {
                    if let ClientEvent::StoreLicense { license_info, .. } = &event {
                        self.cals.push(license_info.clone());
                    }
                    store.apply(&event);
                }
            }
            while let Some(pdu) = client.poll_transmit() {
                moved = true;
                if !server.is_finished() {
                    server
                        .handle_pdu_with_issuer(recorded_at(), &pdu, &mut server_rng, issuer)
                        .expect("the recorded server takes the client's PDU");
                }
                self.client_pdus.push(pdu);
            }
            if !moved {
                break;
            }
        }
        let outcome = iter::from_fn(|| server.poll_event()).last();
        assert!(
            matches!(outcome, Some(ServerEvent::Licensed(_))),
            "a recorded connection ended with {outcome:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/seeds")
            .join(target);
        let mut seeds: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&path).unwrap())
            })
            .collect();
        seeds.sort();
        assert!(!seeds.is_empty(), "no seeds for {target}");
        seeds
    }

    fn seed(target: &str, name: &str) -> Vec<u8> {
        seeds(target)
            .into_iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no seed {target}/{name}"))
            .1
    }

    fn names(pdus: &[Vec<u8>]) -> Vec<&'static str> {
        pdus.iter()
            .map(|pdu| structure_name(pdu).unwrap())
            .collect()
    }

    /// The indices the module doc (and the seeds) rely on.
    #[test]
    fn the_recording_holds_the_three_flows() {
        let recording = recording();
        assert_eq!(
            names(&recording.client_pdus),
            [
                "CLIENT_NEW_LICENSE_REQUEST",
                "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
                "CLIENT_LICENSE_INFO",
                "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
                "CLIENT_LICENSE_INFO",
            ]
        );
        assert_eq!(
            names(&recording.server_pdus),
            [
                "SERVER_LICENSE_REQUEST",
                "SERVER_PLATFORM_CHALLENGE",
                "SERVER_NEW_LICENSE",
                "SERVER_LICENSE_REQUEST",
                "SERVER_PLATFORM_CHALLENGE",
                "SERVER_UPGRADE_LICENSE",
                "SERVER_LICENSE_REQUEST",
                "LICENSE_ERROR_MESSAGE",
            ]
        );
        assert_eq!(recording.cals.len(), 2, "a temporary and a permanent CAL");
        assert!(recording.connections[0].store.licenses.is_empty());
        assert_eq!(recording.connections[1].store.licenses.len(), 1);
    }

    #[test]
    fn every_seed_and_fixed_buffer_runs() {
        let counting: Vec<u8> = (0..=255).collect();
        let fixed: [&[u8]; 5] = [&[], &[0; 64], &[0xff; 512], &counting, &[3; 40]];
        for (_, data) in seeds("server_machine") {
            server_machine(&data);
        }
        for (_, data) in seeds("client_machine") {
            client_machine(&data);
        }
        for data in fixed {
            server_machine(data);
            client_machine(data);
        }
    }

    /// The seeds replay the recorded flows to the end, so the fuzzer starts past every MAC.
    #[test]
    fn the_seeds_reach_the_end_of_each_flow() {
        let server = |name| run_server(&seed("server_machine", name));
        assert!(matches!(
            server("first_contact").last(),
            Some(ServerEvent::Licensed(LicensedOutcome::Issued { .. }))
        ));
        assert!(matches!(
            server("upgrade").last(),
            Some(ServerEvent::Licensed(LicensedOutcome::Upgraded { .. }))
        ));
        assert!(matches!(
            server("valid").last(),
            Some(ServerEvent::Licensed(LicensedOutcome::Valid { .. }))
        ));
        assert!(matches!(
            server("expired").last(),
            Some(ServerEvent::Refused { .. })
        ));
        assert!(matches!(
            server("other_seed").last(),
            Some(ServerEvent::Refused { .. })
        ));

        let client = |name| run_client(&seed("client_machine", name));
        let stored = |events: &[ClientEvent]| {
            events
                .iter()
                .any(|event| matches!(event, ClientEvent::StoreLicense { .. }))
        };
        let first_contact = client("first_contact");
        assert!(matches!(
            first_contact.first(),
            Some(ClientEvent::StoreLicense { upgrade: false, .. })
        ));
        assert!(matches!(
            client("upgrade").first(),
            Some(ClientEvent::StoreLicense { upgrade: true, .. })
        ));
        assert_eq!(
            client("valid").last(),
            Some(&ClientEvent::Licensed),
            "STATUS_VALID_CLIENT"
        );
        let other_seed = client("other_seed");
        assert!(!stored(&other_seed));
        assert!(matches!(
            other_seed.last(),
            Some(ClientEvent::Aborted {
                error_code: ErrorCode::ERR_INVALID_MAC,
                ..
            })
        ));
    }
}

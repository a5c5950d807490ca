//! The session host's side of a licensing handshake, licensing messages only (no network, no
//! framing), and the RSA private-key operations that bound it. See BENCHMARKS.md, "Handshakes
//! (server side)", for how to run and the results.
//!
//! Each handshake is a replay. Before timing, a real exchange between a [`ClientMachine`] and a
//! [`ServerMachine`] is recorded with the server drawing from a ChaCha20 RNG seeded with
//! [`SERVER_SEED`]; every iteration then builds a fresh server from a clone of the same config,
//! seeds a fresh RNG with the same seed (so the server random and the platform challenge repeat
//! and the recorded client PDUs stay valid), calls `start` and feeds it the recorded client
//! PDUs. The issuer is [`RuleIssuer`]: it builds a real CAL and signs it with its 2048-bit
//! license server key. Each replay is checked once, before timing, to end in the expected
//! `ServerEvent::Licensed` with a New / Upgrade License sent, so no figure times an early error.
//!
//! Groups:
//! - `handshake`: `new_license/{512,2048}` (License Request → New License Request → Platform
//!   Challenge → response → New License with a temporary CAL) and `upgrade/{512,2048}` (License
//!   Request → License Info with that temporary CAL → Platform Challenge → response → Upgrade
//!   License with a permanent CAL). The parameter is the session host key's size: 512 bits in a
//!   proprietary certificate (what Windows and xrdp use), or 2048 (the size of an X.509 key; here
//!   in a proprietary certificate too, which changes only the License Request's length).
//! - `handshake_canned_cal`: the same replays against an issuer that hands out a CAL built
//!   beforehand: the handshake without building and signing a CAL.
//! - `rsa`: the two private-key operations alone: `decrypt_premaster/{512,2048}` with the session
//!   host key and `sign_sha1/2048` with the license server key (blinded, on the default RSA
//!   backend, as the server and the CAL builder use them); `sign_sha1/512` for the next group.
//!   `rsa_backends` compares the backends.
//! - `handshake_parts`: the rest of where the time goes: `issue_cal/{temporary,permanent}`
//!   (`RuleIssuer::issue`: CAL building plus its signature), `issue_cal_512_bit_signer/temporary`
//!   (the same with a 512-bit license server key, so that CAL building without the 2048-bit
//!   signature is `issue_cal_512_bit_signer − rsa/sign_sha1/512`), `parse_cal` (the upgrade path's
//!   reading of the presented CAL) and `clone_config/{512,2048}` (what each connection pays
//!   because `ServerMachine::new` takes its config by value).
//!
//! Throughput is one element per handshake (or operation), so criterion's `thrpt` is in
//! handshakes per second. `benches/handshake-summary.sh` turns the medians into the table of
//! BENCHMARKS.md (handshakes/s against the RSA bound).

// A benchmark harness: a fixture that does not replay must stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::time::{Duration, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rdpele_proto::cal::{parse_cal, CalKind, LicenseServerIdentity};
use rdpele_proto::crypto::{proprietary_certificate, LicensingPrivateKey};
use rdpele_proto::machine::testing::{
    client_config, server_config, MemoryStore, RuleIssuer, DAY, LICENSE_SERVER_KEY_PEM,
};
use rdpele_proto::machine::{
    Assessment, ClientConfig, ClientInfo, ClientMachine, Decision, LicenseIssuer, LicensedOutcome,
    PresentedLicense, ServerConfig, ServerEvent, ServerMachine,
};
use rdpele_proto::wire::{LicensingPdu, Wire};

/// Seeds the server's RNG in the recording and in every replay.
const SERVER_SEED: u64 = 0x5345_5256_4552;
/// Seeds the client's RNG in the recording (client random, premaster).
const CLIENT_SEED: u64 = 0x434c_4945_4e54;
/// Session host key sizes measured.
const HOST_KEY_BITS: [usize; 2] = [512, 2048];

fn epoch() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_790_000_000)
}

fn client() -> ClientConfig {
    client_config(7, "WS-01", "alice")
}

/// A Windows Server 2008-like session host with a `bits`-bit key in a proprietary certificate.
fn host_config(bits: usize) -> ServerConfig {
    let mut rng = ChaCha20Rng::seed_from_u64(u64::try_from(bits).unwrap());
    let mut config = server_config(&mut rng).unwrap();
    if bits != 512 {
        let key = LicensingPrivateKey::generate(bits, &mut rng).unwrap();
        config.certificate = proprietary_certificate(&key.public_key()).unwrap();
        config.private_key = key;
    }
    config
}

/// Runs a real exchange between a fresh server (RNG seeded with [`SERVER_SEED`]) and a fresh
/// client; returns the client's PDUs, in order. The client's license events go to `store`.
fn record(
    config: &ServerConfig,
    now: SystemTime,
    issuer: &mut RuleIssuer,
    store: &mut MemoryStore,
) -> Vec<Vec<u8>> {
    let mut server = ServerMachine::new(config.clone());
    let mut client = ClientMachine::new(client());
    let mut server_rng = ChaCha20Rng::seed_from_u64(SERVER_SEED);
    let mut client_rng = ChaCha20Rng::seed_from_u64(CLIENT_SEED);
    let mut recorded = Vec::new();
    server.start(&mut server_rng);
    loop {
        let mut moved = false;
        while let Some(pdu) = server.poll_transmit() {
            moved = true;
            if !client.is_finished() {
                client.handle_pdu(&pdu, &mut client_rng, store).unwrap();
            }
            while let Some(event) = client.poll_event() {
                store.apply(&event);
            }
        }
        while let Some(pdu) = client.poll_transmit() {
            moved = true;
            server
                .handle_pdu_with_issuer(now, &pdu, &mut server_rng, issuer)
                .unwrap();
            recorded.push(pdu);
        }
        if !moved {
            return recorded;
        }
    }
}

/// One server-side handshake: a fresh machine, `start`, then the recorded client PDUs.
fn replay(
    config: &ServerConfig,
    client_pdus: &[Vec<u8>],
    now: SystemTime,
    issuer: &mut impl LicenseIssuer,
) -> ServerMachine {
    let mut rng = ChaCha20Rng::seed_from_u64(SERVER_SEED);
    let mut server = ServerMachine::new(config.clone());
    server.start(&mut rng);
    for pdu in client_pdus {
        server
            .handle_pdu_with_issuer(now, pdu, &mut rng, issuer)
            .unwrap();
    }
    server
}

/// Replays once and checks that the server sent `expected` message types and ended with
/// `licensed`.
fn check_replay(
    config: &ServerConfig,
    client_pdus: &[Vec<u8>],
    now: SystemTime,
    issuer: &mut impl LicenseIssuer,
    expected: [&str; 3],
    licensed: fn(&LicensedOutcome) -> bool,
) {
    let mut server = replay(config, client_pdus, now, issuer);
    let sent: Vec<&str> = std::iter::from_fn(|| server.poll_transmit())
        .map(|pdu| LicensingPdu::decode(&pdu).unwrap().message.structure_name())
        .collect();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| server.poll_event()).collect();
    assert_eq!(sent, expected, "replay diverged; events: {events:?}");
    assert!(
        matches!(events.as_slice(), [ServerEvent::Licensed(outcome)] if licensed(outcome)),
        "replay ended in {events:?}"
    );
    assert!(server.is_finished());
}

const NEW_LICENSE: [&str; 3] = [
    "SERVER_LICENSE_REQUEST",
    "SERVER_PLATFORM_CHALLENGE",
    "SERVER_NEW_LICENSE",
];
const UPGRADE_LICENSE: [&str; 3] = [
    "SERVER_LICENSE_REQUEST",
    "SERVER_PLATFORM_CHALLENGE",
    "SERVER_UPGRADE_LICENSE",
];

/// A session host key and the two recorded exchanges against it.
struct Host {
    bits: usize,
    config: ServerConfig,
    /// New License Request, Platform Challenge Response (at [`epoch`]).
    first_contact: Vec<Vec<u8>>,
    /// License Info with the temporary CAL, Platform Challenge Response (a day later).
    upgrade: Vec<Vec<u8>>,
    /// The temporary CAL the client presents in `upgrade`.
    temporary_cal: Vec<u8>,
}

fn upgrade_time() -> SystemTime {
    epoch() + DAY
}

impl Host {
    fn new(bits: usize) -> Self {
        let config = host_config(bits);
        let mut issuer = RuleIssuer::new(epoch()).unwrap();
        let mut store = MemoryStore::default();
        let first_contact = record(&config, epoch(), &mut issuer, &mut store);
        let temporary_cal = store.licenses.values().next().unwrap().clone();
        let upgrade = record(&config, upgrade_time(), &mut issuer, &mut store);
        assert_eq!(first_contact.len(), 2);
        assert_eq!(upgrade.len(), 2);
        Self {
            bits,
            config,
            first_contact,
            upgrade,
            temporary_cal,
        }
    }

    /// Checks both replays against `issuer`.
    fn check(&self, issuer: &mut impl LicenseIssuer) {
        check_replay(
            &self.config,
            &self.first_contact,
            epoch(),
            issuer,
            NEW_LICENSE,
            |outcome| matches!(outcome, LicensedOutcome::Issued { .. }),
        );
        check_replay(
            &self.config,
            &self.upgrade,
            upgrade_time(),
            issuer,
            UPGRADE_LICENSE,
            |outcome| matches!(outcome, LicensedOutcome::Upgraded { .. }),
        );
    }
}

/// Hands out a CAL built beforehand and upgrades whatever it is shown.
struct CannedIssuer {
    cal: Vec<u8>,
}

impl LicenseIssuer for CannedIssuer {
    fn new_license(&mut self, _: SystemTime, _: &ClientInfo) -> Decision {
        Decision::Issue(self.cal.clone())
    }

    fn assess_license(&mut self, _: SystemTime, _: &PresentedLicense) -> Assessment {
        Assessment::Upgrade
    }

    fn upgrade_license(&mut self, _: SystemTime, _: &PresentedLicense) -> Decision {
        Decision::Issue(self.cal.clone())
    }
}

fn handshakes(c: &mut Criterion) {
    let hosts: Vec<Host> = HOST_KEY_BITS.into_iter().map(Host::new).collect();
    let mut issuer = RuleIssuer::new(epoch()).unwrap();
    let mut canned = CannedIssuer {
        cal: hosts.first().unwrap().temporary_cal.clone(),
    };
    for host in &hosts {
        host.check(&mut issuer);
        host.check(&mut canned);
    }

    for (group_name, canned_cal) in [("handshake", false), ("handshake_canned_cal", true)] {
        let mut group = c.benchmark_group(group_name);
        group.throughput(Throughput::Elements(1));
        for host in &hosts {
            for (kind, pdus, now) in [
                ("new_license", &host.first_contact, epoch()),
                ("upgrade", &host.upgrade, upgrade_time()),
            ] {
                group.bench_with_input(BenchmarkId::new(kind, host.bits), pdus, |b, pdus| {
                    if canned_cal {
                        b.iter(|| replay(&host.config, black_box(pdus), now, &mut canned));
                    } else {
                        b.iter(|| {
                            // `issued` would grow by one entry per iteration.
                            issuer.issued.clear();
                            replay(&host.config, black_box(pdus), now, &mut issuer)
                        });
                    }
                });
            }
        }
        group.finish();
    }

    let mut group = c.benchmark_group("handshake_parts");
    group.throughput(Throughput::Elements(1));
    let hwid = client().hwid;
    for (name, kind) in [
        ("temporary", CalKind::Temporary),
        ("permanent", CalKind::Permanent),
    ] {
        // What is timed must be a CAL of that kind, not a refusal.
        issuer.issued.clear();
        assert_issued(
            &issuer.issue(epoch(), "WS-01", "alice", hwid, kind),
            kind,
            name,
        );
        group.bench_function(BenchmarkId::new("issue_cal", name), |b| {
            b.iter(|| {
                issuer.issued.clear();
                issuer.issue(epoch(), "WS-01", "alice", black_box(hwid), kind)
            });
        });
    }
    // The same CALs signed with a 512-bit key: with `rsa/sign_sha1/512` subtracted, what
    // building a CAL costs besides its signature.
    let mut small_signer = RuleIssuer::new(epoch()).unwrap();
    let small_key = host_config(512).private_key;
    small_signer.identity = LicenseServerIdentity::self_signed(
        "RDPELE-LS",
        "WORKGROUP",
        "00000-000-0000000-00000",
        small_key,
        epoch() - DAY,
        epoch() + DAY * 3650,
    )
    .unwrap();
    assert_issued(
        &small_signer.issue(epoch(), "WS-01", "alice", hwid, CalKind::Temporary),
        CalKind::Temporary,
        "issue_cal_512_bit_signer",
    );
    group.bench_function(
        BenchmarkId::new("issue_cal_512_bit_signer", "temporary"),
        |b| {
            b.iter(|| {
                small_signer.issued.clear();
                small_signer.issue(
                    epoch(),
                    "WS-01",
                    "alice",
                    black_box(hwid),
                    CalKind::Temporary,
                )
            });
        },
    );
    let temporary_cal = &hosts.first().unwrap().temporary_cal;
    parse_cal(temporary_cal).unwrap();
    group.bench_function("parse_cal", |b| {
        b.iter(|| parse_cal(black_box(temporary_cal)))
    });
    for host in &hosts {
        group.bench_function(BenchmarkId::new("clone_config", host.bits), |b| {
            b.iter(|| black_box(&host.config).clone())
        });
    }
    group.finish();
}

fn rsa(c: &mut Criterion) {
    let mut group = c.benchmark_group("rsa");
    group.throughput(Throughput::Elements(1));
    let premaster = [0x5a; 48];
    let mut rng = ChaCha20Rng::seed_from_u64(SERVER_SEED);
    for bits in HOST_KEY_BITS {
        let key = host_config(bits).private_key;
        let encrypted = key.public_key().encrypt_premaster(&premaster).unwrap();
        assert_eq!(
            key.decrypt_premaster(&encrypted, &mut rng).unwrap(),
            premaster
        );
        group.bench_with_input(
            BenchmarkId::new("decrypt_premaster", bits),
            &encrypted,
            |b, encrypted| b.iter(|| key.decrypt_premaster(black_box(encrypted), &mut rng)),
        );
    }
    // About the length of a client license's TBSCertificate.
    let tbs = vec![0x30; 700];
    // The license server's key, and a 512-bit one to separate CAL building from its signature.
    for key in [
        LicensingPrivateKey::from_pem(LICENSE_SERVER_KEY_PEM).unwrap(),
        host_config(512).private_key,
    ] {
        let signature = key.sign_sha1(&tbs).unwrap();
        assert!(key.public_key().verify_sha1(&tbs, &signature));
        group.bench_function(BenchmarkId::new("sign_sha1", key.modulus_len() * 8), |b| {
            b.iter(|| key.sign_sha1(black_box(&tbs)))
        });
    }
    group.finish();
}

criterion_group!(benches, rsa, handshakes);
criterion_main!(benches);

/// Panics unless `decision` issued a CAL of `kind` that parses: a bench must not time refusals.
fn assert_issued(decision: &Decision, kind: CalKind, bench: &str) {
    match decision {
        Decision::Issue(cal) => {
            let parsed = parse_cal(cal).unwrap_or_else(|e| panic!("{bench}: {e}"));
            assert_eq!(parsed.kind, kind, "{bench}");
        }
        other => panic!("{bench} would time {other:?}, not an issued CAL"),
    }
}

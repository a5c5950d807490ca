//! The whole-host fuzz target (`fuzz/fuzz_targets/host_connection.rs`): one client connection,
//! its bytes made from the input, served by the host's own connection sequence
//! (`serve_connection`, what `rdpele serve` runs per client) over an in-memory stream, with
//! Standard RDP Security as the host negotiates it for a client that asks for PROTOCOL_RDP
//! (MS-RDPBCGR 5.3).
//!
//! Arbitrary bytes never get past the MAC of the first encrypted PDU, so the harness plays the
//! client's half of Standard RDP Security: the input gives plain PDUs, and the harness encrypts
//! them with the keys both ends derive from the input's client random and the host's server
//! random. The hosts draw every connection's randomness from one fixed seed
//! ([`Shared::open_seeded`]), so the harness knows the server random before the host sends it,
//! and an input replays.
//!
//! # Input layout
//! - A host byte, `% 2`: 0 licenses through its embedded license server as `rdpele serve` does
//!   by default; 1 answers the client's first licensing message with STATUS_VALID_CLIENT (a
//!   `[[fault]]`), so that inputs reach capability exchange and connection finalization without
//!   passing licensing's MACs. Both hosts hold one fixed 512-bit key ([`HOST_KEY`]) for their
//!   licensing and Standard RDP Security certificates, so a recorded connection replays on any
//!   machine, and a premaster costs little to decrypt.
//! - Then records until the input ends, each an operation byte `% 3`, a length (2 bytes,
//!   little-endian) and that many bytes (fewer if the input ends first):
//!   0. raw: the bytes sent as they are (X.224, MCS, fast-path, anything);
//!   1. Security Exchange: in the first byte, bits 0-1 the method the keys are derived for
//!      (1: 56-bit RC4, 2: 40-bit, else 128-bit; the host must have chosen the same), bit 2
//!      SEC_LICENSE_ENCRYPT_SC; the next 32 bytes are the client random (zeros past the end).
//!      The harness encrypts the random to the host's key, sends the Security Exchange PDU and
//!      encrypts what follows;
//!   2. sealed: flags (2 bytes, little-endian), a channel id (2 bytes, little-endian), then the
//!      data: an MCS Send Data Request from the host's user id on that channel, whose userData
//!      is the data behind a security header with the flags; encrypted and signed (salted when
//!      the flags have SEC_SECURE_CHECKSUM) once a Security Exchange went, in clear before.
//!
//! [`seed_from_capture`] writes a recorded client's stream in this layout; [`open_host`] opens
//! the harness's hosts on a data directory of one's choosing, to record a client against.
//!
//! # Oracle
//! Beyond no panic and no hang (the host reads with a one-second step timeout; libFuzzer's
//! timeout catches the rest): the host's bytes are whole PDUs one after another, and once one
//! PDU the host encrypted opens with the client's keys, every later one does (one RC4 keystream
//! and MAC key per direction, MS-RDPBCGR 5.3.6).

// The fuzz oracle: a failed assertion is how these functions report a bug.
#![allow(clippy::expect_used, clippy::panic)]

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdpele_license_server::private_files::{create_private_dir, create_private_file};
use rdpele_proto::crypto::{
    derive_rdp_session_keys, EncryptionMethod, LicensingPrivateKey, LicensingPublicKey, Side,
    CLIENT_RANDOM_LEN, SERVER_RANDOM_LEN,
};
use rdpele_proto::envelope::{
    walk, DomainMcsPdu, McsPduType, McsSendData, RdpSecurityLayer, SecurityExchangePdu,
    SecurityFlags, SendDataDirection, ServerSecurityData, StreamPdu, Tpkt, X224Data,
};
use rdpele_proto::wire::Wire;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::HostConfig;
use super::connection::{serve_connection, ConnError, ConnectionEnd};
use super::{Options, Randomness, Shared};
use crate::transport::Channels;

/// Every connection's randomness, on both hosts.
const SEED: u64 = 0x5EED;
/// What the host may send in answer to one input: far more than any connection sequence's.
const STREAM_BUFFER: usize = 1 << 20;

const LICENSING_HOST: &str = r#"
[host]
security = "negotiate"
licensing-key-bits = 512
"#;

const ADMITTING_HOST: &str = r#"
[host]
security = "negotiate"
licensing-key-bits = 512

[[fault]]
kind = "error"
step = "new-license-request"
error-code = "STATUS_VALID_CLIENT"
state-transition = "ST_NO_TRANSITION"

[[fault]]
kind = "error"
step = "license-info"
error-code = "STATUS_VALID_CLIENT"
state-transition = "ST_NO_TRANSITION"
"#;

/// The key of both hosts' licensing certificate and Standard RDP Security certificates (made
/// for this harness, 512 bits, public): fixed, so that a client recorded against
/// [`open_host`] replays wherever the harness runs.
pub const HOST_KEY: &str = include_str!("fuzzing_key.pem");

/// The two hosts and the runtime they serve on, made once per process.
struct Harness {
    runtime: tokio::runtime::Runtime,
    key: LicensingPublicKey,
    licensing: Arc<Shared>,
    admitting: Arc<Shared>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let key = LicensingPrivateKey::from_pem(HOST_KEY)
            .expect("the harness's host key")
            .public_key();
        Harness {
            runtime,
            key,
            licensing: open_host(&data_directory().join("licensing"), false),
            admitting: open_host(&data_directory().join("admitting"), true),
        }
    })
}

/// One of the harness's hosts on `data`, with [`HOST_KEY`] written there: the licensing one,
/// or the one `admitting` at the first licensing message. Its connections all draw the same
/// randomness.
pub fn open_host(data: &Path, admitting: bool) -> Arc<Shared> {
    let (name, config) = if admitting {
        ("admitting", ADMITTING_HOST)
    } else {
        ("licensing", LICENSING_HOST)
    };
    let install = |file: &str| -> std::io::Result<()> {
        let path = data.join(file);
        if std::fs::read(&path).is_ok_and(|held| held == HOST_KEY.as_bytes()) {
            return Ok(());
        }
        match std::fs::remove_file(&path) {
            Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
        create_private_file(&path, HOST_KEY.as_bytes()).map(|_| ())
    };
    create_private_dir(data)
        .and_then(|()| install(super::LICENSING_KEY_FILE))
        .and_then(|()| install(super::RDP_SECURITY_WEAK_KEY_FILE))
        .unwrap_or_else(|e| panic!("the {name} host's key in {}: {e}", data.display()));
    let options = Options {
        data: data.to_owned(),
        config: HostConfig::parse(config).expect("the harness's host config"),
        license_server: None,
        session_seconds: None,
        max_connections: 16,
        max_connections_per_source: 16,
        step_timeout: Duration::from_secs(1),
        record: None,
        pcap: None,
        host_name: "rdpele-fuzz".to_owned(),
    };
    Shared::open_seeded(options, SEED).unwrap_or_else(|e| panic!("the {name} host: {e}"))
}

/// Where the hosts keep their data: `RDPELE_FUZZ_DATA`, else `rdpele-fuzz-host` in the system's
/// temporary directory. Kept between runs (the license server's key and the TLS certificate are
/// made once); fuzzing processes share it as two hosts share a data directory.
fn data_directory() -> PathBuf {
    std::env::var_os("RDPELE_FUZZ_DATA").map_or_else(
        || std::env::temp_dir().join("rdpele-fuzz-host"),
        PathBuf::from,
    )
}

/// Makes the hosts (their keys on first use), so the first input's time is its own.
pub fn init() {
    harness();
}

/// The fuzz target: see the module documentation.
pub fn host_connection(data: &[u8]) {
    let _ = run(data);
}

/// Serves the client of `data` and checks the oracle; how the host ended the connection.
pub fn run(data: &[u8]) -> Result<ConnectionEnd, ConnError> {
    let harness = harness();
    let choice = data.first().copied().unwrap_or(0);
    let host = if choice % 2 == 0 {
        &harness.licensing
    } else {
        &harness.admitting
    };
    let mut client = Client::new(&harness.key);
    let sent = client.encode(data);
    let (host_end, client_end) = tokio::io::duplex(STREAM_BUFFER);
    let (ended, received) = harness.runtime.block_on(async {
        let served = serve_connection(host_end, None, Arc::clone(host), "fuzz".to_owned(), 0);
        let talk = async move {
            let (mut reader, mut writer) = tokio::io::split(client_end);
            let write = async move {
                let _ = writer.write_all(&sent).await;
                let _ = writer.shutdown().await;
            };
            let read = async move {
                let mut received = Vec::new();
                let _ = reader.read_to_end(&mut received).await;
                received
            };
            tokio::join!(write, read).1
        };
        tokio::join!(served, talk)
    });
    check_host_stream(client.layer.as_mut(), &received);
    ended
}

/// The records of `input` (after its host byte): each one's operation byte and where its bytes
/// are in `input`, cut at the input's end.
pub fn records(input: &[u8]) -> impl Iterator<Item = (u8, Range<usize>)> + '_ {
    let mut at = 1;
    std::iter::from_fn(move || {
        let op = *input.get(at)?;
        let len = input
            .get(at + 1..at + 3)
            .and_then(|len| <[u8; 2]>::try_from(len).ok())
            .map_or(0, |len| usize::from(u16::from_le_bytes(len)));
        let start = (at + 3).min(input.len());
        let end = (start + len).min(input.len());
        at = end;
        Some((op, start..end))
    })
}

/// The harness's client: the host's key, and its end of Standard RDP Security once it sent a
/// Security Exchange.
struct Client<'h> {
    host_key: &'h LicensingPublicKey,
    layer: Option<RdpSecurityLayer>,
}

impl<'h> Client<'h> {
    fn new(host_key: &'h LicensingPublicKey) -> Self {
        Self {
            host_key,
            layer: None,
        }
    }

    /// The bytes the records of `input` make, in order.
    fn encode(&mut self, input: &[u8]) -> Vec<u8> {
        let mut sent = Vec::new();
        for (op, at) in records(input) {
            let record = input.get(at).unwrap_or_default();
            match op % 3 {
                0 => sent.extend_from_slice(record),
                1 => self.exchange(record, &mut sent),
                _ => self.seal(record, &mut sent),
            }
        }
        sent
    }

    /// Operation 1: the Security Exchange, and the keys from then on.
    fn exchange(&mut self, record: &[u8], sent: &mut Vec<u8>) {
        let options = record.first().copied().unwrap_or(0);
        let method = match options & 0b11 {
            1 => EncryptionMethod::Bits56,
            2 => EncryptionMethod::Bits40,
            _ => EncryptionMethod::Bits128,
        };
        let mut client_random = [0u8; CLIENT_RANDOM_LEN];
        for (to, from) in client_random.iter_mut().zip(record.iter().skip(1)) {
            *to = *from;
        }
        let encrypted = self
            .host_key
            .encrypt_client_random(&client_random)
            .expect("a client random encrypts to the host's key");
        let exchange = SecurityExchangePdu::new(&encrypted, options & 0b100 != 0)
            .to_vec()
            .expect("a Security Exchange PDU encodes");
        send_data(
            SendDataDirection::Request,
            &exchange,
            Channels::HOST.io_channel,
            sent,
        );
        let keys = derive_rdp_session_keys(&client_random, &server_random(), method);
        self.layer = Some(RdpSecurityLayer::new(&keys, Side::Client));
    }

    /// Operation 2: a Send Data Request with a security header, encrypted once keys exist.
    fn seal(&mut self, record: &[u8], sent: &mut Vec<u8>) {
        let flags = record
            .first_chunk::<2>()
            .map_or(0, |flags| u16::from_le_bytes(*flags));
        let channel = record
            .get(2..)
            .and_then(|rest| rest.first_chunk::<2>())
            .map_or(Channels::HOST.io_channel, |id| u16::from_le_bytes(*id));
        let data = record.get(4..).unwrap_or_default();
        let mut user_data = Vec::with_capacity(data.len() + 12);
        match &mut self.layer {
            Some(layer) => {
                layer.use_salted_checksums(flags & SecurityFlags::SEC_SECURE_CHECKSUM.0 != 0);
                layer.seal_into(SecurityFlags(flags), data, &mut user_data);
            }
            None => {
                user_data.extend_from_slice(&flags.to_le_bytes());
                user_data.extend_from_slice(&[0, 0]);
                user_data.extend_from_slice(data);
            }
        }
        send_data(SendDataDirection::Request, &user_data, channel, sent);
    }
}

/// The oracle on what the host sent (`received`): whole PDUs, and, read with the client's
/// `layer` (once it made one), one keystream once the host's PDUs opened.
fn check_host_stream(mut layer: Option<&mut RdpSecurityLayer>, received: &[u8]) {
    let mut in_step = false;
    for item in walk(received) {
        let item = item.unwrap_or_else(|e| {
            panic!(
                "the host sent bytes that are not a PDU: {e}\n{}",
                hex::encode(received)
            )
        });
        let Some(keys) = layer.as_deref_mut() else {
            continue;
        };
        let encrypted = match item.pdu {
            StreamPdu::SendData(data) | StreamPdu::EncryptedLicensing(data) => {
                data.user_data.first_chunk::<2>().is_some_and(|flags| {
                    u16::from_le_bytes(*flags) & SecurityFlags::SEC_ENCRYPT.0 != 0
                })
            }
            _ => false,
        };
        if !encrypted {
            continue;
        }
        match keys.open_pdu(item.bytes, SendDataDirection::Indication) {
            Ok(_) => in_step = true,
            Err(error) if in_step => panic!(
                "the host's PDU at {} no longer opens with the keys its earlier PDUs \
                 opened with: {error}",
                item.offset
            ),
            // The input derived other keys than the host's (another method): the rest is only
            // checked for whole PDUs.
            Err(_) => layer = None,
        }
    }
}

/// The server random the harness's hosts send in the Server Security Data of every connection:
/// the first draw of the connection's Standard RDP Security randomness (see `Standard::choose`).
fn server_random() -> [u8; SERVER_RANDOM_LEN] {
    let mut random = [0u8; SERVER_RANDOM_LEN];
    Randomness::StandardSecurity
        .seeded(SEED)
        .fill_bytes(&mut random);
    random
}

/// Appends an MCS Send Data (a Request of the client, an Indication of the host) of the host's
/// user on `channel`, in X.224 Data and TPKT.
fn send_data(direction: SendDataDirection, user_data: &[u8], channel: u16, out: &mut Vec<u8>) {
    let mcs = McsSendData {
        direction,
        initiator: Channels::HOST.user_id - McsSendData::USER_ID_BASE,
        channel_id: channel,
        flags: McsSendData::HIGH_PRIORITY_BEGIN_END,
        long_length: true,
        user_data,
    };
    // A record longer than one Send Data's 14-bit length can carry is not sent.
    let Ok(mcs) = mcs.to_vec() else { return };
    let Ok(x224) = (X224Data {
        eot: X224Data::EOT,
        payload: &mcs,
    })
    .to_vec() else {
        return;
    };
    if let Ok(tpkt) = Tpkt::new(&x224).to_vec() {
        out.extend_from_slice(&tpkt);
    }
}

/// An MCS Channel Join Request (TPKT, X.224 Data, then T.125's choice byte, the initiator and
/// the channel id, each 2 bytes big-endian; MS-RDPBCGR 2.2.1.8) rewritten for the host's user
/// id: the initiator, and the channel id where it is the recorded server's user channel.
fn host_user_join(pdu: &[u8], recorded_user: &mut Option<[u8; 2]>) -> Vec<u8> {
    const INITIATOR: std::ops::Range<usize> = 8..10;
    const CHANNEL: std::ops::Range<usize> = 10..12;
    let mut join = pdu.to_vec();
    let host_user = Channels::HOST.user_id;
    let Some(initiator) = join
        .get(INITIATOR)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
    else {
        return join;
    };
    let recorded = *recorded_user.get_or_insert_with(|| {
        (u16::from_be_bytes(initiator) + McsSendData::USER_ID_BASE).to_be_bytes()
    });
    if let Some(slot) = join.get_mut(INITIATOR) {
        slot.copy_from_slice(&(host_user - McsSendData::USER_ID_BASE).to_be_bytes());
    }
    if let Some(slot) = join
        .get_mut(CHANNEL)
        .filter(|channel| **channel == recorded)
    {
        slot.copy_from_slice(&host_user.to_be_bytes());
    }
    join
}

/// A recorded connection's client stream (`client_to_server`, TPKT and fast-path PDUs as the
/// client sent them) as an input for host `host` (0 or 1, the input's first byte), opened with
/// the recorded server's key (`server_key`, PKCS#8 PEM) and the method and server random of
/// the Server Security Data in its `server_to_client` stream. The PDUs before the
/// Security Exchange go raw, but for the Channel Join Requests, which name the host's user id
/// (1002) instead of the recorded server's; the exchange as operation 1 with the recorded client
/// random, for 128-bit RC4 (what the harness's hosts choose for a client that offers it); the
/// Send Data PDUs after it opened and given as operation 2 (their flags without SEC_ENCRYPT,
/// their plain data). Fast-path PDUs after the exchange are left out: the harness does not
/// encrypt fast-path.
pub fn seed_from_capture(
    host: u8,
    client_to_server: &[u8],
    server_to_client: &[u8],
    server_key: &str,
) -> Result<Vec<u8>, String> {
    let key = LicensingPrivateKey::from_pem(server_key).map_err(|e| e.to_string())?;
    let server = ServerSecurityData::find(server_to_client)
        .ok_or("no Server Security Data with encryption in the server's stream")?;
    let mut recorded_user = None;
    let mut seed = vec![host];
    let mut record = |op: u8, bytes: &[u8]| -> Result<(), String> {
        let len = u16::try_from(bytes.len()).map_err(|_| "a PDU over 65,535 bytes".to_owned())?;
        seed.push(op);
        seed.extend_from_slice(&len.to_le_bytes());
        seed.extend_from_slice(bytes);
        Ok(())
    };
    let mut layer: Option<RdpSecurityLayer> = None;
    for item in walk(client_to_server) {
        let item = item.map_err(|e| e.to_string())?;
        let data = match (&item.pdu, &mut layer) {
            (StreamPdu::SendData(data), None) => {
                let Ok(exchange) = SecurityExchangePdu::decode(data.user_data) else {
                    record(0, item.bytes)?;
                    continue;
                };
                // Bits 0-1 zero: 128-bit RC4.
                let options = u8::from(exchange.license_encrypt()) << 2;
                let mut rng = StdRng::seed_from_u64(SEED);
                let client_random = key
                    .decrypt_client_random(exchange.encrypted_client_random, &mut rng)
                    .map_err(|e| format!("the Security Exchange at {}: {e}", item.offset))?;
                let mut bytes = vec![options];
                bytes.extend_from_slice(&client_random);
                record(1, &bytes)?;
                let keys =
                    derive_rdp_session_keys(&client_random, &server.server_random, server.method);
                layer = Some(RdpSecurityLayer::new(&keys, Side::Server));
                continue;
            }
            (StreamPdu::SendData(data) | StreamPdu::EncryptedLicensing(data), Some(layer)) => {
                let opened = layer
                    .open(data.user_data)
                    .map_err(|e| format!("the PDU at {}: {e}", item.offset))?;
                let flags = opened.flags.0 & !SecurityFlags::SEC_ENCRYPT.0;
                let mut bytes = flags.to_le_bytes().to_vec();
                bytes.extend_from_slice(&data.channel_id.to_le_bytes());
                bytes.extend_from_slice(&opened.data);
                bytes
            }
            (StreamPdu::FastPath(fast_path), Some(layer)) => {
                // Kept in step with the client's keystream, then left out.
                layer
                    .open_fast_path(fast_path)
                    .map_err(|e| format!("the fast-path PDU at {}: {e}", item.offset))?;
                continue;
            }
            (StreamPdu::Mcs(McsPduType::Domain(DomainMcsPdu::CHANNEL_JOIN_REQUEST)), None) => {
                let join = host_user_join(item.bytes, &mut recorded_user);
                record(0, &join)?;
                continue;
            }
            _ => {
                record(0, item.bytes)?;
                continue;
            }
        };
        record(2, &data)?;
    }
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three PDUs a host sealed on one keystream, as Send Data Indications.
    fn host_pdus() -> (RdpSecurityLayer, Vec<Vec<u8>>) {
        let keys =
            derive_rdp_session_keys(&[0x11; 32], &server_random(), EncryptionMethod::Bits128);
        let mut host = RdpSecurityLayer::new(&keys, Side::Server);
        let pdus = (0..3u8)
            .map(|index| {
                let mut user_data = Vec::new();
                host.seal_into(SecurityFlags(0), &[index; 20], &mut user_data);
                let mut pdu = Vec::new();
                send_data(
                    SendDataDirection::Indication,
                    &user_data,
                    Channels::HOST.io_channel,
                    &mut pdu,
                );
                pdu
            })
            .collect();
        (RdpSecurityLayer::new(&keys, Side::Client), pdus)
    }

    #[test]
    fn the_oracle_takes_a_host_on_one_keystream() {
        let (mut client, pdus) = host_pdus();
        check_host_stream(Some(&mut client), &pdus.concat());
    }

    #[test]
    #[should_panic(expected = "no longer opens with the keys its earlier PDUs opened with")]
    fn the_oracle_catches_a_host_pdu_out_of_its_keystream() {
        let (mut client, pdus) = host_pdus();
        // The second PDU's encryption was never sent: the third is out of step.
        check_host_stream(Some(&mut client), &[&pdus[0][..], &pdus[2][..]].concat());
    }

    #[test]
    fn keys_other_than_the_hosts_are_the_inputs_choice_not_a_bug() {
        let (_, pdus) = host_pdus();
        let keys =
            derive_rdp_session_keys(&[0x22; 32], &server_random(), EncryptionMethod::Bits128);
        let mut other = RdpSecurityLayer::new(&keys, Side::Client);
        check_host_stream(Some(&mut other), &pdus.concat());
    }

    #[test]
    #[should_panic(expected = "the host sent bytes that are not a PDU")]
    fn after_keys_other_than_the_hosts_the_oracle_still_checks_for_whole_pdus() {
        let (_, pdus) = host_pdus();
        let keys =
            derive_rdp_session_keys(&[0x22; 32], &server_random(), EncryptionMethod::Bits128);
        let mut other = RdpSecurityLayer::new(&keys, Side::Client);
        let mut stream = pdus.concat();
        stream.extend_from_slice(&[0x03, 0x00, 0x00, 0x40, 0x02]);
        check_host_stream(Some(&mut other), &stream);
    }

    #[test]
    #[should_panic(expected = "the host sent bytes that are not a PDU")]
    fn the_oracle_catches_bytes_that_are_not_a_pdu() {
        let (_, pdus) = host_pdus();
        let mut stream = pdus.concat();
        stream.extend_from_slice(&[0x03, 0x00, 0x00, 0x40, 0x02]);
        check_host_stream(None, &stream);
    }
}

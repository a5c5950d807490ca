//! `--mutate-licensing SEED`: every licensing PDU the client sends is damaged before it reaches
//! TLS, deterministically from the seed, so a server's handling of hostile input can be replayed.
//!
//! The seed picks the kind of damage (and the PDU's position in the exchange moves it along), and
//! seeds the generator for the details. The kinds cover the licensing message itself (bytes,
//! preamble, blob lengths, message type, truncation, extension), the security header, and the
//! framing around it (TPKT and MCS lengths, frames cut short or followed by junk), some with the
//! outer lengths kept consistent so the damage reaches the licensing parser, some not.

use crate::licensing::{PREAMBLE_LEN, message_type_label};
use crate::slow_path::{
    SEC_ENCRYPT, SEC_LICENSE_PKT, SECURITY_HEADER_LEN, SendData, TPKT_HEADER_LEN, build_send_data,
    read_u16_le,
};

/// SplitMix64 (Steele, Lea, Flood 2014): small, and the same sequence on every platform.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A value in `0..bound` (0 when `bound` is 0).
    fn below(&mut self, bound: usize) -> usize {
        let bound = u64::try_from(bound).unwrap_or(u64::MAX);
        if bound == 0 {
            return 0;
        }
        usize::try_from(self.next() % bound).unwrap_or(0)
    }

    /// A value in `low..=high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high.saturating_sub(low).saturating_add(1))
    }

    fn byte(&mut self) -> u8 {
        self.next().to_le_bytes().first().copied().unwrap_or(0)
    }

    fn nonzero_byte(&mut self) -> u8 {
        self.byte() | 1
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
}

/// The kinds of damage, in the order the seed selects them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Flip bytes of the licensing message after its preamble.
    FlipMessage,
    /// Flip bytes of the preamble: bMsgType, flags, wMsgSize.
    FlipPreamble,
    /// Cut the licensing message short; TPKT and MCS lengths follow, wMsgSize does not.
    TruncateMessage,
    /// Cut the licensing message short and set wMsgSize to match.
    TruncateMessageAndSize,
    /// Append junk to the licensing message; TPKT and MCS lengths follow.
    ExtendMessage,
    /// Send only part of the frame; its TPKT length still claims the whole.
    TruncateFrame,
    /// Send junk after the frame, outside any TPKT length.
    ExtendFrame,
    /// Replace the TPKT length.
    TpktLength,
    /// Replace the MCS (PER) length of the user data.
    McsLength,
    /// Replace the length of the message's first blob (wBlobLen).
    BlobLength,
    /// Replace bMsgType.
    MessageType,
    /// Change the security header: SEC_ENCRYPT set, SEC_LICENSE_PKT cleared, or junk flagsHi.
    SecurityFlags,
    /// Keep the security header only: no licensing message at all.
    EmptyMessage,
    /// Replace the whole licensing message with random bytes; lengths follow.
    RandomMessage,
}

impl Kind {
    const ALL: [Kind; 14] = [
        Kind::FlipMessage,
        Kind::FlipPreamble,
        Kind::TruncateMessage,
        Kind::TruncateMessageAndSize,
        Kind::ExtendMessage,
        Kind::TruncateFrame,
        Kind::ExtendFrame,
        Kind::TpktLength,
        Kind::McsLength,
        Kind::BlobLength,
        Kind::MessageType,
        Kind::SecurityFlags,
        Kind::EmptyMessage,
        Kind::RandomMessage,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::FlipMessage => "flip-message",
            Kind::FlipPreamble => "flip-preamble",
            Kind::TruncateMessage => "truncate-message",
            Kind::TruncateMessageAndSize => "truncate-message-and-size",
            Kind::ExtendMessage => "extend-message",
            Kind::TruncateFrame => "truncate-frame",
            Kind::ExtendFrame => "extend-frame",
            Kind::TpktLength => "tpkt-length",
            Kind::McsLength => "mcs-length",
            Kind::BlobLength => "blob-length",
            Kind::MessageType => "message-type",
            Kind::SecurityFlags => "security-flags",
            Kind::EmptyMessage => "empty-message",
            Kind::RandomMessage => "random-message",
        }
    }
}

/// What was done to one PDU, for the JSON report.
#[derive(Debug, Clone)]
pub struct MutationRecord {
    /// bMsgType of the PDU before the damage.
    pub message: String,
    pub mutation: &'static str,
    pub detail: String,
    pub original_len: usize,
    pub len: usize,
}

impl MutationRecord {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "message": self.message,
            "mutation": self.mutation,
            "detail": self.detail,
            "original_len": self.original_len,
            "len": self.len,
        })
    }
}

/// Damages the licensing PDUs of one connection.
#[derive(Debug)]
pub struct Mutator {
    seed: u64,
    /// Licensing PDUs damaged so far.
    count: u64,
}

impl Mutator {
    pub fn new(seed: u64) -> Self {
        Self { seed, count: 0 }
    }

    /// The damaged bytes to send instead of `frame`, a whole TPKT frame whose `send` carries a
    /// licensing PDU.
    pub fn mutate(&mut self, frame: &[u8], send: &SendData) -> (Vec<u8>, MutationRecord) {
        let index = self.count;
        self.count += 1;
        let mut rng = SplitMix64(self.seed ^ index.wrapping_mul(0xD6E8_FEB8_6659_FD93));
        let position = self.seed.wrapping_add(index) % 14;
        let kind = Kind::ALL
            .get(usize::try_from(position).unwrap_or(0))
            .copied()
            .unwrap_or(Kind::FlipMessage);
        let pdu = frame.get(send.licensing_pdu()).unwrap_or_default();
        let message = pdu
            .first()
            .map_or_else(|| "none".to_owned(), |&t| message_type_label(t));
        let (bytes, detail) = apply(kind, &mut rng, frame, send);
        let record = MutationRecord {
            message,
            mutation: kind.name(),
            detail,
            original_len: frame.len(),
            len: bytes.len(),
        };
        (bytes, record)
    }
}

/// Frame with the licensing PDU replaced by `pdu`, security header kept, lengths recomputed.
fn reframe(frame: &[u8], send: &SendData, pdu: &[u8]) -> Vec<u8> {
    let security = frame
        .get(send.user_data.start..send.licensing_pdu().start)
        .unwrap_or_default();
    let user_data = [security, pdu].concat();
    build_send_data(send.direction, send.initiator, send.channel_id, &user_data)
        .unwrap_or_else(|| frame.to_vec())
}

/// Flips `count` random bytes of `bytes` within `range` (offsets relative to `bytes`); returns the
/// offsets flipped.
fn flip(rng: &mut SplitMix64, bytes: &mut [u8], start: usize, count: usize) -> Vec<usize> {
    let span = bytes.len().saturating_sub(start);
    let mut flipped = Vec::with_capacity(count);
    for _ in 0..count {
        if span == 0 {
            break;
        }
        let at = start + rng.below(span);
        if let Some(byte) = bytes.get_mut(at) {
            *byte ^= rng.nonzero_byte();
            flipped.push(at);
        }
    }
    flipped
}

fn set_u16_le(bytes: &mut [u8], at: usize, value: u16) -> Option<u16> {
    let field = bytes.get_mut(at..at.checked_add(2)?)?;
    let old = u16::from_le_bytes([*field.first()?, *field.get(1)?]);
    field.copy_from_slice(&value.to_le_bytes());
    Some(old)
}

fn apply(kind: Kind, rng: &mut SplitMix64, frame: &[u8], send: &SendData) -> (Vec<u8>, String) {
    let pdu_range = send.licensing_pdu();
    let pdu = frame.get(pdu_range.clone()).unwrap_or_default().to_vec();
    match kind {
        Kind::FlipMessage => {
            let mut pdu = pdu;
            let count = rng.between(1, 8);
            let flipped = flip(rng, &mut pdu, PREAMBLE_LEN, count);
            let detail = format!("flipped message bytes at {flipped:?}");
            (reframe(frame, send, &pdu), detail)
        }
        Kind::FlipPreamble => {
            let mut pdu = pdu;
            let count = rng.between(1, 3);
            let end = PREAMBLE_LEN.min(pdu.len());
            let mut head = pdu.get(..end).unwrap_or_default().to_vec();
            let flipped = flip(rng, &mut head, 0, count);
            if let Some(prefix) = pdu.get_mut(..end) {
                prefix.copy_from_slice(&head);
            }
            let detail = format!("flipped preamble bytes at {flipped:?}");
            (reframe(frame, send, &pdu), detail)
        }
        Kind::TruncateMessage | Kind::TruncateMessageAndSize => {
            let mut pdu = pdu;
            let original = pdu.len();
            let keep = rng.below(original.max(1));
            pdu.truncate(keep);
            let mut detail = format!("message cut from {original} to {keep} bytes");
            if kind == Kind::TruncateMessageAndSize
                && let Some(size) = u16::try_from(keep).ok()
                && set_u16_le(&mut pdu, 2, size).is_some()
            {
                detail.push_str(&format!(", wMsgSize {keep}"));
            }
            (reframe(frame, send, &pdu), detail)
        }
        Kind::ExtendMessage => {
            let mut pdu = pdu;
            let extra = rng.between(1, 256);
            pdu.extend(rng.bytes(extra));
            (
                reframe(frame, send, &pdu),
                format!("{extra} random bytes appended to the message"),
            )
        }
        Kind::TruncateFrame => {
            let keep = rng.between(1, frame.len().saturating_sub(1).max(1));
            let bytes = frame.get(..keep).unwrap_or_default().to_vec();
            (
                bytes,
                format!("frame cut from {} to {keep} bytes", frame.len()),
            )
        }
        Kind::ExtendFrame => {
            let extra = rng.between(1, 64);
            let mut bytes = frame.to_vec();
            bytes.extend(rng.bytes(extra));
            (bytes, format!("{extra} random bytes after the frame"))
        }
        Kind::TpktLength => {
            let mut bytes = frame.to_vec();
            // Small values (below the header), near the real one, or anything.
            let value = match rng.below(3) {
                0 => u16::try_from(rng.below(TPKT_HEADER_LEN + 4)).unwrap_or(0),
                1 => {
                    let real = u16::try_from(frame.len()).unwrap_or(u16::MAX);
                    let delta = u16::try_from(rng.between(1, 16)).unwrap_or(1);
                    if rng.below(2) == 0 {
                        real.saturating_sub(delta)
                    } else {
                        real.saturating_add(delta)
                    }
                }
                _ => rng.u16(),
            };
            if let Some(field) = bytes.get_mut(2..TPKT_HEADER_LEN) {
                field.copy_from_slice(&value.to_be_bytes());
            }
            (bytes, format!("TPKT length {} -> {value}", frame.len()))
        }
        Kind::McsLength => {
            let mut bytes = frame.to_vec();
            let real = send.user_data.len();
            let detail = match bytes.get_mut(send.length_field.clone()) {
                Some([only]) => {
                    let value = rng.byte() & 0x7F;
                    *only = value;
                    format!("MCS length {real} -> {value}")
                }
                Some([high, low]) => {
                    let value = u16::try_from(rng.below(0x4000)).unwrap_or(0);
                    let [new_high, new_low] = (value | 0x8000).to_be_bytes();
                    *high = new_high;
                    *low = new_low;
                    format!("MCS length {real} -> {value}")
                }
                _ => "MCS length not found".to_owned(),
            };
            (bytes, detail)
        }
        Kind::BlobLength => {
            let mut pdu = pdu;
            // The first blob: EncryptedPreMasterSecret after dwPreferredKeyExchangeAlg,
            // PlatformId and ClientRandom (New License Request, License Info); the encrypted
            // challenge response data right after the preamble (Platform Challenge Response).
            let blob = if pdu.first() == Some(&0x15) {
                PREAMBLE_LEN
            } else {
                PREAMBLE_LEN + 40
            };
            let value = rng.u16();
            let detail = match set_u16_le(&mut pdu, blob + 2, value) {
                Some(old) => format!("wBlobLen at {} {old} -> {value}", blob + 2),
                None => "no blob to change".to_owned(),
            };
            (reframe(frame, send, &pdu), detail)
        }
        Kind::MessageType => {
            let mut pdu = pdu;
            let detail = match pdu.first_mut() {
                Some(first) => {
                    let old = *first;
                    // Another licensing message type (client's or server's), or any other byte.
                    let choices: Vec<u8> = [0x01, 0x02, 0x03, 0x04, 0x12, 0x13, 0x15, 0xFF]
                        .into_iter()
                        .chain([rng.byte()])
                        .filter(|&t| t != old)
                        .collect();
                    let value = choices
                        .get(rng.below(choices.len()))
                        .copied()
                        .unwrap_or(!old);
                    *first = value;
                    format!(
                        "bMsgType {} -> {}",
                        message_type_label(old),
                        message_type_label(value)
                    )
                }
                None => "no message type".to_owned(),
            };
            (reframe(frame, send, &pdu), detail)
        }
        Kind::SecurityFlags => {
            let mut bytes = frame.to_vec();
            let at = send.user_data.start;
            let flags = read_u16_le(frame, at).unwrap_or(0);
            let detail = match rng.below(3) {
                0 => {
                    let _ = set_u16_le(&mut bytes, at, flags | SEC_ENCRYPT);
                    "SEC_ENCRYPT set".to_owned()
                }
                1 => {
                    let _ = set_u16_le(&mut bytes, at, flags & !SEC_LICENSE_PKT);
                    "SEC_LICENSE_PKT cleared".to_owned()
                }
                _ => {
                    let value = rng.u16();
                    let _ = set_u16_le(&mut bytes, at + 2, value);
                    format!("flagsHi {value:#06x}")
                }
            };
            (bytes, detail)
        }
        Kind::EmptyMessage => (
            reframe(frame, send, &[]),
            format!(
                "message ({} bytes) removed, {SECURITY_HEADER_LEN}-byte security header kept",
                pdu.len()
            ),
        ),
        Kind::RandomMessage => {
            let len = rng.between(1, 600);
            let random = rng.bytes(len);
            (
                reframe(frame, send, &random),
                format!("message replaced by {len} random bytes"),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slow_path::{Direction, parse_send_data, read_u16_be};

    fn licensing_frame() -> Vec<u8> {
        let mut user_data = vec![0x80, 0, 0, 0, 0x13, 0x03, 0, 0];
        user_data.extend((0..200u16).map(|i| u8::try_from(i % 251).unwrap()));
        let size = u16::try_from(user_data.len() - 4).unwrap();
        user_data[6..8].copy_from_slice(&size.to_le_bytes());
        build_send_data(Direction::Request, 1, 1003, &user_data).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let frame = licensing_frame();
        let send = parse_send_data(&frame).unwrap();
        for seed in 0..64 {
            let (a, ra) = Mutator::new(seed).mutate(&frame, &send);
            let (b, rb) = Mutator::new(seed).mutate(&frame, &send);
            assert_eq!(a, b, "{seed}");
            assert_eq!(ra.detail, rb.detail);
            assert_eq!(ra.message, "NEW_LICENSE_REQUEST");
        }
    }

    #[test]
    fn every_kind_is_reached_and_changes_the_frame() {
        let frame = licensing_frame();
        let send = parse_send_data(&frame).unwrap();
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..14 * 8 {
            let (bytes, record) = Mutator::new(seed).mutate(&frame, &send);
            assert_ne!(bytes, frame, "seed {seed}: {record:?}");
            kinds.insert(record.mutation);
        }
        assert_eq!(kinds.len(), Kind::ALL.len());
    }

    #[test]
    fn consistent_kinds_keep_the_outer_lengths_right() {
        let frame = licensing_frame();
        let send = parse_send_data(&frame).unwrap();
        for seed in 0..14 * 8 {
            let (bytes, record) = Mutator::new(seed).mutate(&frame, &send);
            if matches!(
                record.mutation,
                "truncate-message" | "extend-message" | "empty-message" | "random-message"
            ) {
                assert_eq!(usize::from(read_u16_be(&bytes, 2).unwrap()), bytes.len());
                assert!(parse_send_data(&bytes).unwrap().is_licensing(&bytes));
            }
        }
    }

    #[test]
    fn later_pdus_of_one_connection_get_other_kinds() {
        let frame = licensing_frame();
        let send = parse_send_data(&frame).unwrap();
        let mut mutator = Mutator::new(3);
        let (_, first) = mutator.mutate(&frame, &send);
        let (_, second) = mutator.mutate(&frame, &send);
        assert_ne!(first.mutation, second.mutation);
    }
}

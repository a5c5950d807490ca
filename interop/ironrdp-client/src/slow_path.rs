//! The slow-path frame that carries licensing PDUs and the other post-TLS connection PDUs
//! (MS-RDPBCGR 2.2.1.12): TPKT header, X.224 Data TPDU, MCS Send Data Request/Indication with its
//! PER-encoded length, and the basic security header (MS-RDPBCGR 2.2.8.1.1.2.1). This module only
//! says where each field sits, so a frame can be inspected, changed in place, or rebuilt around new
//! user data; it never decodes the PDU inside.

use std::ops::Range;

/// TPKT header (RFC 1006): version 3, reserved, 16-bit big-endian length of the whole frame.
pub const TPKT_HEADER_LEN: usize = 4;
const TPKT_VERSION: u8 = 3;
/// X.224 Data TPDU header (ITU-T X.224 13.7): length indicator 2, DT code, EOT.
const X224_DATA_HEADER: [u8; 3] = [0x02, 0xF0, 0x80];
const MCS_HEADER_AT: usize = TPKT_HEADER_LEN + X224_DATA_HEADER.len();
/// DomainMCSPDU choice indices (T.125), shifted into the top six bits of the first byte.
const MCS_SEND_DATA_REQUEST: u8 = 25;
const MCS_SEND_DATA_INDICATION: u8 = 26;
const MCS_DISCONNECT_PROVIDER_ULTIMATUM: u8 = 8;
/// dataPriority high, segmentation begin|end: what every RDP peer sends.
const MCS_PRIORITY_SEGMENTATION: u8 = 0x70;
/// PER length determinant: one byte below 0x80, two bytes (top bits 10) up to 0x3FFF.
const PER_LONG_FORM: u8 = 0x80;
const PER_MAX_LENGTH: usize = 0x3FFF;

/// Basic security header flags (MS-RDPBCGR 2.2.8.1.1.2.1).
pub const SEC_ENCRYPT: u16 = 0x0008;
pub const SEC_LICENSE_PKT: u16 = 0x0080;
/// The basic security header: flags and flagsHi, 16 bits each.
pub const SECURITY_HEADER_LEN: usize = 4;

/// Which way an MCS Send Data PDU goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Client to server.
    Request,
    /// Server to client.
    Indication,
}

/// Where the parts of one MCS Send Data frame sit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendData {
    pub direction: Direction,
    /// The initiator as on the wire (user id minus 1001).
    pub initiator: u16,
    pub channel_id: u16,
    /// The PER length determinant of the user data.
    pub length_field: Range<usize>,
    pub user_data: Range<usize>,
}

impl SendData {
    /// The basic security header flags, if the user data starts with one.
    pub fn security_flags(&self, frame: &[u8]) -> Option<u16> {
        let user_data = frame.get(self.user_data.clone())?;
        read_u16_le(user_data, 0)
    }

    /// Whether the frame carries a licensing PDU: SEC_LICENSE_PKT set in the security header.
    pub fn is_licensing(&self, frame: &[u8]) -> bool {
        self.security_flags(frame)
            .is_some_and(|flags| flags & SEC_LICENSE_PKT != 0)
    }

    /// The licensing PDU (preamble and message) after the security header.
    pub fn licensing_pdu(&self) -> Range<usize> {
        self.user_data
            .start
            .saturating_add(SECURITY_HEADER_LEN)
            .min(self.user_data.end)..self.user_data.end
    }
}

/// Reads the MCS Send Data header of a whole TPKT frame; `None` for any other frame.
pub fn parse_send_data(frame: &[u8]) -> Option<SendData> {
    if frame.first() != Some(&TPKT_VERSION)
        || frame.get(TPKT_HEADER_LEN..MCS_HEADER_AT) != Some(&X224_DATA_HEADER[..])
    {
        return None;
    }
    let direction = match mcs_choice(frame)? {
        MCS_SEND_DATA_REQUEST => Direction::Request,
        MCS_SEND_DATA_INDICATION => Direction::Indication,
        _ => return None,
    };
    let initiator = read_u16_be(frame, MCS_HEADER_AT + 1)?;
    let channel_id = read_u16_be(frame, MCS_HEADER_AT + 3)?;
    let length_at = MCS_HEADER_AT + 6;
    let first = *frame.get(length_at)?;
    let (length, length_size) = if first & PER_LONG_FORM == 0 {
        (usize::from(first), 1)
    } else {
        let second = *frame.get(length_at + 1)?;
        (usize::from(first & 0x3F) << 8 | usize::from(second), 2)
    };
    let start = length_at + length_size;
    let end = start.checked_add(length)?;
    if end > frame.len() {
        return None;
    }
    Some(SendData {
        direction,
        initiator,
        channel_id,
        length_field: length_at..start,
        user_data: start..end,
    })
}

/// Whether a whole TPKT frame is an MCS Disconnect Provider Ultimatum.
pub fn is_disconnect_provider_ultimatum(frame: &[u8]) -> bool {
    frame.first() == Some(&TPKT_VERSION)
        && frame.get(TPKT_HEADER_LEN..MCS_HEADER_AT) == Some(&X224_DATA_HEADER[..])
        && mcs_choice(frame) == Some(MCS_DISCONNECT_PROVIDER_ULTIMATUM)
}

fn mcs_choice(frame: &[u8]) -> Option<u8> {
    frame.get(MCS_HEADER_AT).map(|byte| byte >> 2)
}

/// A TPKT frame holding an MCS Send Data PDU with `user_data`, every length computed. `None` if
/// the user data does not fit a PER length or the frame a TPKT length.
pub fn build_send_data(
    direction: Direction,
    initiator: u16,
    channel_id: u16,
    user_data: &[u8],
) -> Option<Vec<u8>> {
    if user_data.len() > PER_MAX_LENGTH {
        return None;
    }
    let length = u16::try_from(user_data.len()).ok()?;
    let per_length: Vec<u8> = if user_data.len() < usize::from(PER_LONG_FORM) {
        vec![u8::try_from(length).ok()?]
    } else {
        (length | 0x8000).to_be_bytes().to_vec()
    };
    let choice = match direction {
        Direction::Request => MCS_SEND_DATA_REQUEST,
        Direction::Indication => MCS_SEND_DATA_INDICATION,
    };
    let mut frame = Vec::with_capacity(MCS_HEADER_AT + 8 + user_data.len());
    frame.extend_from_slice(&[TPKT_VERSION, 0, 0, 0]);
    frame.extend_from_slice(&X224_DATA_HEADER);
    frame.push(choice << 2);
    frame.extend_from_slice(&initiator.to_be_bytes());
    frame.extend_from_slice(&channel_id.to_be_bytes());
    frame.push(MCS_PRIORITY_SEGMENTATION);
    frame.extend_from_slice(&per_length);
    frame.extend_from_slice(user_data);
    let total = u16::try_from(frame.len()).ok()?;
    frame
        .get_mut(2..TPKT_HEADER_LEN)?
        .copy_from_slice(&total.to_be_bytes());
    Some(frame)
}

pub fn read_u16_le(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes(field.try_into().ok()?))
}

pub fn read_u16_be(bytes: &[u8], at: usize) -> Option<u16> {
    let field = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes(field.try_into().ok()?))
}

pub fn read_u32_le(bytes: &[u8], at: usize) -> Option<u32> {
    let field = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(field.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_built_frame_parses_back_with_both_length_forms() {
        for len in [0usize, 1, 0x7F, 0x80, 0x3FFF] {
            let user_data = vec![0xAB; len];
            let frame = build_send_data(Direction::Request, 1, 1003, &user_data).unwrap();
            assert_eq!(
                usize::from(read_u16_be(&frame, 2).unwrap()),
                frame.len(),
                "{len}"
            );
            let send = parse_send_data(&frame).unwrap();
            assert_eq!(send.direction, Direction::Request);
            assert_eq!((send.initiator, send.channel_id), (1, 1003));
            assert_eq!(&frame[send.user_data.clone()], &user_data[..]);
            assert_eq!(send.user_data.end, frame.len());
        }
        assert_eq!(
            build_send_data(Direction::Request, 1, 1003, &[0; 0x4000]),
            None
        );
    }

    #[test]
    fn a_licensing_frame_is_recognised_by_its_security_flag() {
        let frame =
            build_send_data(Direction::Indication, 1, 1003, &[0x80, 0, 0, 0, 0xFF]).unwrap();
        let send = parse_send_data(&frame).unwrap();
        assert_eq!(send.direction, Direction::Indication);
        assert!(send.is_licensing(&frame));
        assert_eq!(&frame[send.licensing_pdu()], &[0xFF]);
        let info = build_send_data(Direction::Request, 1, 1003, &[0x40, 0, 0, 0]).unwrap();
        assert!(!parse_send_data(&info).unwrap().is_licensing(&info));
    }

    #[test]
    fn other_frames_are_not_send_data() {
        assert_eq!(parse_send_data(&[]), None);
        assert_eq!(parse_send_data(&[3, 0, 0, 4]), None);
        // The Disconnect Provider Ultimatum rdpele serve and Windows send.
        let ultimatum = [3, 0, 0, 9, 2, 0xF0, 0x80, 0x21, 0x80];
        assert_eq!(parse_send_data(&ultimatum), None);
        assert!(is_disconnect_provider_ultimatum(&ultimatum));
        // A PER length running past the frame.
        let mut frame = build_send_data(Direction::Request, 1, 1003, &[0; 4]).unwrap();
        frame[13] = 5;
        assert_eq!(parse_send_data(&frame), None);
    }
}

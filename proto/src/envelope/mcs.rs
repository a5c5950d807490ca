//! ITU-T T.125 MCS PDUs as RDP uses them: Send Data Request / Indication (the carriers of every
//! licensing PDU) parsed; every other MCS PDU recognised by name, so a stream walker can skip it.

use bytes::BufMut;

use crate::wire::codec::{take_len, u8_field, Parse, Wire};
use crate::wire::error::{fail, field, EncodeError, PResult, WireErrorKind};
use crate::wire::open_enum::open_enum;

open_enum! {
    /// The CHOICE index of a DomainMCSPDU (T.125 §7 part 10), PER-encoded in the top six bits of
    /// its first byte. RDP uses the erect-domain, attach-user, channel-join, send-data and
    /// disconnect choices; the token choices (29–42) never occur and print as unknown.
    pub struct DomainMcsPdu(u8) {
        PLUMB_DOMAIN_INDICATION = 0,
        ERECT_DOMAIN_REQUEST = 1,
        MERGE_CHANNELS_REQUEST = 2,
        MERGE_CHANNELS_CONFIRM = 3,
        PURGE_CHANNELS_INDICATION = 4,
        MERGE_TOKENS_REQUEST = 5,
        MERGE_TOKENS_CONFIRM = 6,
        PURGE_TOKENS_INDICATION = 7,
        DISCONNECT_PROVIDER_ULTIMATUM = 8,
        REJECT_MCS_PDU_ULTIMATUM = 9,
        ATTACH_USER_REQUEST = 10,
        ATTACH_USER_CONFIRM = 11,
        DETACH_USER_REQUEST = 12,
        DETACH_USER_INDICATION = 13,
        CHANNEL_JOIN_REQUEST = 14,
        CHANNEL_JOIN_CONFIRM = 15,
        CHANNEL_LEAVE_REQUEST = 16,
        CHANNEL_CONVENE_REQUEST = 17,
        CHANNEL_CONVENE_CONFIRM = 18,
        CHANNEL_DISBAND_REQUEST = 19,
        CHANNEL_DISBAND_INDICATION = 20,
        CHANNEL_ADMIT_REQUEST = 21,
        CHANNEL_ADMIT_INDICATION = 22,
        CHANNEL_EXPEL_REQUEST = 23,
        CHANNEL_EXPEL_INDICATION = 24,
        SEND_DATA_REQUEST = 25,
        SEND_DATA_INDICATION = 26,
        UNIFORM_SEND_DATA_REQUEST = 27,
        UNIFORM_SEND_DATA_INDICATION = 28,
    }
}

open_enum! {
    /// The APPLICATION tag number of a BER-encoded MCS connect PDU (T.125 §7 part 1).
    pub struct ConnectPdu(u8) {
        /// Carries the client's GCC Conference Create Request (MS-RDPBCGR 2.2.1.3).
        CONNECT_INITIAL = 101,
        /// Carries the server's GCC Conference Create Response (MS-RDPBCGR 2.2.1.4).
        CONNECT_RESPONSE = 102,
        CONNECT_ADDITIONAL = 103,
        CONNECT_RESULT = 104,
    }
}

/// An MCS PDU named by its first byte(s), without parsing the rest.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum McsPduType {
    /// BER: `0x7F` (APPLICATION, constructed, high tag number) then the tag number.
    Connect(ConnectPdu),
    /// PER: a DomainMCSPDU. `0x7F` would be choice 31 (a token PDU), which RDP never sends, so
    /// the connect PDUs are told apart by that byte alone.
    Domain(DomainMcsPdu),
}

impl McsPduType {
    const STRUCTURE: &'static str = "MCS PDU";
    const BER_APPLICATION_HIGH_TAG: u8 = 0x7F;

    /// Names the MCS PDU at the front of `input` (the payload of an X.224 Data TPDU), consuming
    /// only the byte(s) that name it.
    pub(crate) fn parse(input: &[u8]) -> PResult<'_, Self> {
        let (rest, first) = u8_field(input, Self::STRUCTURE, "choice")?;
        if first == Self::BER_APPLICATION_HIGH_TAG {
            let (rest, tag) = u8_field(rest, Self::STRUCTURE, "tag")?;
            return Ok((rest, Self::Connect(ConnectPdu(tag))));
        }
        Ok((rest, Self::Domain(DomainMcsPdu(first >> 2))))
    }
}

impl core::fmt::Display for McsPduType {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Connect(pdu) => write!(f, "MCS {pdu}"),
            Self::Domain(pdu) => write!(f, "DomainMCSPDU {pdu}"),
        }
    }
}

/// Which of the two Send Data PDUs: the CHOICE byte (index shifted past two padding bits).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum SendDataDirection {
    /// SendDataRequest (T.125 §11.32, `mcsSDrq`): client to server.
    Request,
    /// SendDataIndication (T.125 §11.33, `mcsSDin`): server to client.
    Indication,
}

impl SendDataDirection {
    const REQUEST: u8 = 0x64;
    const INDICATION: u8 = 0x68;

    fn choice(self) -> u8 {
        match self {
            Self::Request => Self::REQUEST,
            Self::Indication => Self::INDICATION,
        }
    }

    /// T.125's name of the PDU.
    pub fn structure_name(self) -> &'static str {
        match self {
            Self::Request => "SendDataRequest",
            Self::Indication => "SendDataIndication",
        }
    }
}

/// T.125 §7 part 7 SendDataRequest / SendDataIndication, PER-encoded (MS-RDPBCGR `mcsSDrq` /
/// `mcsSDin`): initiator, channelId, dataPriority and segmentation, then userData with a PER
/// length determinant. The length is derived when encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct McsSendData<'a> {
    pub direction: SendDataDirection,
    /// The UserId as on the wire: the user id minus [`McsSendData::USER_ID_BASE`].
    pub initiator: u16,
    pub channel_id: u16,
    /// dataPriority (top two bits) and segmentation (next two), as seen: every known peer sends
    /// [`McsSendData::HIGH_PRIORITY_BEGIN_END`].
    pub flags: u8,
    /// The two-byte length form was used. FreeRDP uses it for every PDU, even short ones, so it
    /// is kept; the encoder writes two bytes when this is set or when the length needs them.
    pub long_length: bool,
    pub user_data: &'a [u8],
}

impl<'a> McsSendData<'a> {
    /// T.125 UserId is `INTEGER (1001..65535)`, PER-encoded as the offset from 1001.
    pub const USER_ID_BASE: u16 = 1001;
    /// dataPriority high, segmentation begin | end.
    pub const HIGH_PRIORITY_BEGIN_END: u8 = 0x70;
    /// The longest userData a non-fragmented PER length determinant can announce.
    pub const MAX_USER_DATA_LEN: u16 = 0x3FFF;
    /// choice, initiator, channelId, dataPriority/segmentation.
    const FIXED_LEN: usize = 6;
    const SHORT_LENGTH_MAX: usize = 0x7F;
    const LONG_LENGTH_FLAG: u8 = 0x80;
    const LONG_LENGTH_MARKER: u16 = 0x8000;
    const FRAGMENTED_LENGTH_FLAGS: u8 = 0xC0;

    /// The user id the initiator stands for, if it is within T.125's range.
    pub fn user_id(&self) -> Option<u16> {
        self.initiator.checked_add(Self::USER_ID_BASE)
    }

    /// Bytes before userData when it is `user_data_len` bytes long.
    pub(crate) fn header_len(&self, user_data_len: usize) -> usize {
        Self::FIXED_LEN + self.length_determinant_len(user_data_len)
    }

    fn length_determinant_len(&self, user_data_len: usize) -> usize {
        if self.long_length || user_data_len > Self::SHORT_LENGTH_MAX {
            2
        } else {
            1
        }
    }

    /// Writes everything before userData, announcing `user_data_len` bytes of it; `user_data`
    /// itself is ignored, so a frame can write a structure of its own there instead.
    pub(crate) fn encode_header<B: BufMut>(
        &self,
        user_data_len: usize,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let structure = self.direction.structure_name();
        buf.put_u8(self.direction.choice());
        buf.put_u16(self.initiator);
        buf.put_u16(self.channel_id);
        buf.put_u8(self.flags);
        let too_long = || EncodeError::TooLong {
            structure,
            field: "userData",
            length: user_data_len,
            max: Self::MAX_USER_DATA_LEN.into(),
        };
        if self.length_determinant_len(user_data_len) == 1 {
            buf.put_u8(u8::try_from(user_data_len).map_err(|_| too_long())?);
        } else {
            let length = u16::try_from(user_data_len)
                .ok()
                .filter(|length| *length <= Self::MAX_USER_DATA_LEN)
                .ok_or_else(too_long)?;
            buf.put_u16(Self::LONG_LENGTH_MARKER | length);
        }
        Ok(())
    }

    /// PER length determinant (X.691 §10.9): one byte below 0x80, two bytes with the top bits
    /// `10` up to 0x3FFF. Fragmented lengths (top bits `11`) need reassembly RDP never does.
    fn parse_length<'i>(input: &'i [u8], structure: &'static str) -> PResult<'i, (u64, bool)> {
        let (rest, first) = u8_field(input, structure, "userData")?;
        if first & Self::LONG_LENGTH_FLAG == 0 {
            return Ok((rest, (first.into(), false)));
        }
        if first & Self::FRAGMENTED_LENGTH_FLAGS == Self::FRAGMENTED_LENGTH_FLAGS {
            return fail(
                input,
                structure,
                "userData",
                WireErrorKind::Malformed("fragmented PER length"),
            );
        }
        let (rest, second) = u8_field(rest, structure, "userData")?;
        let length = u16::from_be_bytes([first & !Self::FRAGMENTED_LENGTH_FLAGS, second]);
        Ok((rest, (length.into(), true)))
    }
}

impl<'a> Wire<'a> for McsSendData<'a> {
    const NAME: &'static str = "DomainMCSPDU";

    fn encoded_len(&self) -> usize {
        self.header_len(self.user_data.len()) + self.user_data.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.encode_header(self.user_data.len(), buf)?;
        buf.put_slice(self.user_data);
        Ok(())
    }
}

impl<'a> Parse<'a> for McsSendData<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, choice) = u8_field(input, Self::NAME, "choice")?;
        let direction = match choice {
            SendDataDirection::REQUEST => SendDataDirection::Request,
            SendDataDirection::INDICATION => SendDataDirection::Indication,
            other => {
                return fail(
                    input,
                    Self::NAME,
                    "choice",
                    WireErrorKind::UnsupportedValue {
                        value: other.into(),
                    },
                )
            }
        };
        let structure = direction.structure_name();
        let (rest, initiator) = field(structure, "initiator", nom::number::complete::be_u16)(rest)?;
        let (rest, channel_id) =
            field(structure, "channelId", nom::number::complete::be_u16)(rest)?;
        let (rest, flags) = u8_field(rest, structure, "dataPriority")?;
        let (rest, (length, long_length)) = Self::parse_length(rest, structure)?;
        let (rest, user_data) = take_len(rest, length, structure, "userData")?;
        Ok((
            rest,
            Self {
                direction,
                initiator,
                channel_id,
                flags,
                long_length,
                user_data,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The MCS part of MS-RDPBCGR 4.1.11, Server License Error PDU - Valid Client: server
    /// channel 1002 (initiator 1), I/O channel 1003, 28 bytes of userData (left out here).
    const SPEC_INDICATION_HEADER: [u8; 7] = [0x68, 0x00, 0x01, 0x03, 0xeb, 0x70, 0x1c];

    fn with_user_data(header: &[u8], user_data_len: usize) -> Vec<u8> {
        let mut bytes = header.to_vec();
        bytes.resize(header.len() + user_data_len, 0xA5);
        bytes
    }

    #[test]
    fn parses_spec_send_data_indication_and_encodes_byte_exact() {
        let bytes = with_user_data(&SPEC_INDICATION_HEADER, 0x1c);
        let send_data = McsSendData::decode(&bytes).unwrap();
        assert_eq!(send_data.direction, SendDataDirection::Indication);
        assert_eq!(send_data.initiator, 1);
        assert_eq!(send_data.user_id(), Some(1002));
        assert_eq!(send_data.channel_id, 1003);
        assert_eq!(send_data.flags, McsSendData::HIGH_PRIORITY_BEGIN_END);
        assert!(!send_data.long_length);
        assert_eq!(send_data.user_data.len(), 0x1c);
        assert_eq!(send_data.encoded_len(), bytes.len());
        assert_eq!(send_data.to_vec().unwrap(), bytes);
    }

    #[test]
    fn keeps_two_byte_length_of_a_short_user_data() {
        // FreeRDP writes the length as `0x8000 | length` whatever the length.
        let bytes = with_user_data(&[0x64, 0x00, 0x06, 0x03, 0xeb, 0x70, 0x80, 0x14], 0x14);
        let send_data = McsSendData::decode(&bytes).unwrap();
        assert_eq!(send_data.direction, SendDataDirection::Request);
        assert!(send_data.long_length);
        assert_eq!(send_data.to_vec().unwrap(), bytes);
    }

    #[test]
    fn long_user_data_takes_the_two_byte_form() {
        let user_data = [0u8; 0x80];
        let send_data = McsSendData {
            long_length: false,
            user_data: &user_data,
            ..McsSendData::decode(&with_user_data(&SPEC_INDICATION_HEADER, 0x1c)).unwrap()
        };
        let bytes = send_data.to_vec().unwrap();
        assert_eq!(bytes[6..8], [0x80, 0x80]);
        let again = McsSendData::decode(&bytes).unwrap();
        assert!(again.long_length);
        assert_eq!(again.user_data, user_data);
    }

    #[test]
    fn user_data_beyond_the_length_determinant_range_is_an_encode_error() {
        let user_data = vec![0u8; 0x4000];
        let send_data = McsSendData {
            direction: SendDataDirection::Request,
            initiator: 0,
            channel_id: 1003,
            flags: McsSendData::HIGH_PRIORITY_BEGIN_END,
            long_length: true,
            user_data: &user_data,
        };
        assert!(matches!(
            send_data.to_vec(),
            Err(EncodeError::TooLong {
                structure: "SendDataRequest",
                field: "userData",
                length: 0x4000,
                max: 0x3FFF
            })
        ));
    }

    #[test]
    fn rejects_fragmented_length() {
        let bytes = [0x68, 0x00, 0x01, 0x03, 0xeb, 0x70, 0xc1, 0x00];
        let err = McsSendData::decode(&bytes).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("SendDataIndication", "userData", 6)
        );
        assert_eq!(err.kind, WireErrorKind::Malformed("fragmented PER length"));
    }

    #[test]
    fn rejects_user_data_longer_than_input() {
        let err = McsSendData::decode(&with_user_data(&SPEC_INDICATION_HEADER, 0x1b)).unwrap_err();
        assert_eq!((err.field, err.offset), ("userData", 7));
        assert_eq!(
            err.kind,
            WireErrorKind::LengthExceedsInput {
                declared: 0x1c,
                available: 0x1b
            }
        );
    }

    #[test]
    fn rejects_other_domain_pdus() {
        // MS-RDPBCGR 4.1.7, Attach User Confirm.
        let err = McsSendData::decode(&[0x2e, 0x00, 0x00, 0x06]).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("DomainMCSPDU", "choice", 0)
        );
    }

    #[test]
    fn every_prefix_is_rejected() {
        let bytes = with_user_data(&SPEC_INDICATION_HEADER, 0x1c);
        for len in 0..bytes.len() {
            assert!(McsSendData::decode(&bytes[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn names_spec_mcs_pdus() {
        // The MCS PDUs of the MS-RDPBCGR section 4 examples (Erect Domain Request, Attach User
        // Confirm, Channel Join Request and Confirm, Disconnect Provider Ultimatum) and the
        // start of a Connect Response.
        let cases: [(&[u8], McsPduType); 6] = [
            (
                &[0x04, 0x01, 0x00, 0x01, 0x00],
                McsPduType::Domain(DomainMcsPdu::ERECT_DOMAIN_REQUEST),
            ),
            (
                &[0x2e, 0x00, 0x00, 0x06],
                McsPduType::Domain(DomainMcsPdu::ATTACH_USER_CONFIRM),
            ),
            (
                &[0x38, 0x00, 0x06, 0x03, 0xeb],
                McsPduType::Domain(DomainMcsPdu::CHANNEL_JOIN_REQUEST),
            ),
            (
                &[0x3e, 0x00, 0x00, 0x06, 0x03, 0xef, 0x03, 0xef],
                McsPduType::Domain(DomainMcsPdu::CHANNEL_JOIN_CONFIRM),
            ),
            (
                &[0x21, 0x80],
                McsPduType::Domain(DomainMcsPdu::DISCONNECT_PROVIDER_ULTIMATUM),
            ),
            (
                &[0x7f, 0x66, 0x5a],
                McsPduType::Connect(ConnectPdu::CONNECT_RESPONSE),
            ),
        ];
        for (bytes, expected) in cases {
            assert_eq!(
                McsPduType::parse(bytes).unwrap().1,
                expected,
                "{bytes:02x?}"
            );
        }
        assert_eq!(
            McsPduType::Domain(DomainMcsPdu::ATTACH_USER_CONFIRM).to_string(),
            "DomainMCSPDU ATTACH_USER_CONFIRM (0xb)"
        );
        assert!(McsPduType::parse(&[0x7f]).is_err());
        assert!(McsPduType::parse(&[]).is_err());
    }
}

//! MS-RDPBCGR 2.2.9.1.2 Server Fast-Path Update PDU (TS_FP_UPDATE_PDU) and 2.2.8.1.2 Client
//! Fast-Path Input Event PDU (TS_FP_INPUT_PDU): framed alike, so one type skips either.

use bytes::BufMut;

use crate::wire::codec::{u8_field, Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireErrorKind};

/// A fast-path PDU framed but not parsed: the header byte, a one- or two-byte length counting
/// the whole PDU, then the rest (FIPS information, signature, updates or input events).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FastPathPdu<'a> {
    /// fpOutputHeader / fpInputHeader: action (low two bits, FASTPATH_OUTPUT_ACTION_FASTPATH),
    /// then update count or reserved bits, then the encryption flags. Kept whole.
    pub header: u8,
    /// The two-byte length form was used. Peers may use it for short PDUs too, so it is kept;
    /// the encoder writes two bytes when this is set or when the length needs them.
    pub long_length: bool,
    pub body: &'a [u8],
}

impl<'a> FastPathPdu<'a> {
    const ACTION_MASK: u8 = 0x03;
    /// FASTPATH_OUTPUT_ACTION_FASTPATH / FASTPATH_INPUT_ACTION_FASTPATH. The other action,
    /// X224 (3), is a TPKT header's version byte.
    const ACTION_FASTPATH: u8 = 0x00;
    const LONG_LENGTH_FLAG: u8 = 0x80;
    const LONG_LENGTH_MARKER: u16 = 0x8000;
    const SHORT_LENGTH_MAX: usize = 0x7F;
    /// The two-byte form leaves 15 bits for the length.
    pub const MAX_LEN: u16 = 0x7FFF;

    /// Whether a PDU starting with `first` is a fast-path PDU rather than a TPKT packet.
    pub fn starts_with(first: u8) -> bool {
        first & Self::ACTION_MASK == Self::ACTION_FASTPATH
    }

    fn length_field_len(&self) -> usize {
        if self.long_length || 2 + self.body.len() > Self::SHORT_LENGTH_MAX {
            2
        } else {
            1
        }
    }
}

impl<'a> Wire<'a> for FastPathPdu<'a> {
    const NAME: &'static str = "TS_FP_UPDATE_PDU";

    fn encoded_len(&self) -> usize {
        1 + self.length_field_len() + self.body.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let length = self.encoded_len();
        let too_long = || EncodeError::TooLong {
            structure: Self::NAME,
            field: "length1",
            length,
            max: Self::MAX_LEN.into(),
        };
        buf.put_u8(self.header);
        if self.length_field_len() == 1 {
            buf.put_u8(u8::try_from(length).map_err(|_| too_long())?);
        } else {
            let length = u16::try_from(length)
                .ok()
                .filter(|length| *length <= Self::MAX_LEN)
                .ok_or_else(too_long)?;
            buf.put_u16(Self::LONG_LENGTH_MARKER | length);
        }
        buf.put_slice(self.body);
        Ok(())
    }
}

impl<'a> Parse<'a> for FastPathPdu<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (length_field, header) = u8_field(input, Self::NAME, "fpOutputHeader")?;
        if !Self::starts_with(header) {
            return fail(
                input,
                Self::NAME,
                "fpOutputHeader",
                WireErrorKind::UnsupportedValue {
                    value: header.into(),
                },
            );
        }
        let (rest, length1) = u8_field(length_field, Self::NAME, "length1")?;
        let (rest, length, long_length) = if length1 & Self::LONG_LENGTH_FLAG == 0 {
            (rest, u16::from(length1), false)
        } else {
            let (rest, length2) = u8_field(rest, Self::NAME, "length2")?;
            let length = u16::from_be_bytes([length1, length2]) & Self::MAX_LEN;
            (rest, length, true)
        };
        let header_len = input.len() - rest.len();
        let Some(body_len) = usize::from(length).checked_sub(header_len) else {
            return fail(
                length_field,
                Self::NAME,
                "length1",
                WireErrorKind::TooShort {
                    length: length.into(),
                    min: header_len.try_into().unwrap_or(u64::MAX),
                },
            );
        };
        let Some((body, rest)) = rest.split_at_checked(body_len) else {
            return fail(
                length_field,
                Self::NAME,
                "length1",
                WireErrorKind::LengthExceedsInput {
                    declared: length.into(),
                    available: input.len(),
                },
            );
        };
        Ok((
            rest,
            Self {
                header,
                long_length,
                body,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fast-path Synchronize update (MS-RDPBCGR 2.2.9.1.2.1.3): header 0, length 5, then
    /// updateHeader FASTPATH_UPDATETYPE_SYNCHRONIZE with size 0.
    const SYNCHRONIZE: [u8; 5] = [0x00, 0x05, 0x03, 0x00, 0x00];

    #[test]
    fn parses_short_length_form_and_encodes_byte_exact() {
        let pdu = FastPathPdu::decode(&SYNCHRONIZE).unwrap();
        assert_eq!(pdu.header, 0);
        assert!(!pdu.long_length);
        assert_eq!(pdu.body, &SYNCHRONIZE[2..]);
        assert_eq!(pdu.encoded_len(), SYNCHRONIZE.len());
        assert_eq!(pdu.to_vec().unwrap(), SYNCHRONIZE);
    }

    #[test]
    fn keeps_two_byte_length_of_a_short_pdu() {
        let bytes = [0x80, 0x80, 0x06, 0x03, 0x00, 0x00];
        let pdu = FastPathPdu::decode(&bytes).unwrap();
        assert_eq!(pdu.header, 0x80, "FASTPATH_OUTPUT_ENCRYPTED kept");
        assert!(pdu.long_length);
        assert_eq!(pdu.body, &bytes[3..]);
        assert_eq!(pdu.to_vec().unwrap(), bytes);
    }

    #[test]
    fn long_body_takes_the_two_byte_form() {
        let body = [0u8; 0x7E];
        let pdu = FastPathPdu {
            header: 0,
            long_length: false,
            body: &body,
        };
        let bytes = pdu.to_vec().unwrap();
        assert_eq!(bytes[..3], [0x00, 0x80, 0x81]);
        assert!(FastPathPdu::decode(&bytes).unwrap().long_length);
    }

    #[test]
    fn body_beyond_fifteen_bit_length_is_an_encode_error() {
        let body = vec![0u8; 0x7FFD];
        let pdu = FastPathPdu {
            header: 0,
            long_length: true,
            body: &body,
        };
        assert!(matches!(
            pdu.to_vec(),
            Err(EncodeError::TooLong {
                length: 0x8000,
                max: 0x7FFF,
                ..
            })
        ));
    }

    #[test]
    fn rejects_length_shorter_than_its_own_header() {
        let err = FastPathPdu::decode(&[0x00, 0x01]).unwrap_err();
        assert_eq!((err.field, err.offset), ("length1", 1));
        assert_eq!(err.kind, WireErrorKind::TooShort { length: 1, min: 2 });
        let err = FastPathPdu::decode(&[0x00, 0x80, 0x02]).unwrap_err();
        assert_eq!(err.kind, WireErrorKind::TooShort { length: 2, min: 3 });
    }

    #[test]
    fn rejects_tpkt_version_byte() {
        let err = FastPathPdu::decode(&[0x03, 0x00, 0x00, 0x04]).unwrap_err();
        assert_eq!((err.field, err.offset), ("fpOutputHeader", 0));
    }

    #[test]
    fn every_prefix_is_rejected() {
        for len in 0..SYNCHRONIZE.len() {
            assert!(
                FastPathPdu::decode(&SYNCHRONIZE[..len]).is_err(),
                "prefix {len}"
            );
        }
    }
}

//! RFC 1006 §6 / ITU-T T.123 §8 TPKT header: the framing of every slow-path RDP PDU.

use bytes::BufMut;

use crate::wire::codec::{len_u16, u8_field, Parse, Wire};
use crate::wire::error::{fail, field, EncodeError, PResult, WireErrorKind};

/// RFC 1006 §6 / T.123 §8 TPKT: `version` (3), `reserved`, a big-endian `length` that counts the
/// 4-byte header, then the packet. The length is derived from the payload when encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Tpkt<'a> {
    /// Zero from every known peer; kept so that a nonzero value round-trips.
    pub reserved: u8,
    pub payload: &'a [u8],
}

impl<'a> Tpkt<'a> {
    pub const VERSION: u8 = 3;
    pub const HEADER_LEN: usize = 4;

    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            reserved: 0,
            payload,
        }
    }

    /// Writes the header of a packet whose payload (`payload_len` bytes) the caller writes next.
    pub(crate) fn encode_header<B: BufMut>(
        reserved: u8,
        payload_len: usize,
        buf: &mut B,
    ) -> Result<(), EncodeError> {
        let length = len_u16(Self::HEADER_LEN + payload_len, Self::NAME, "length")?;
        buf.put_u8(Self::VERSION);
        buf.put_u8(reserved);
        buf.put_u16(length);
        Ok(())
    }
}

impl<'a> Wire<'a> for Tpkt<'a> {
    const NAME: &'static str = "TPKT";

    fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.payload.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        Self::encode_header(self.reserved, self.payload.len(), buf)?;
        buf.put_slice(self.payload);
        Ok(())
    }
}

impl<'a> Parse<'a> for Tpkt<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, version) = u8_field(input, Self::NAME, "version")?;
        if version != Self::VERSION {
            return fail(
                input,
                Self::NAME,
                "version",
                WireErrorKind::UnsupportedValue {
                    value: version.into(),
                },
            );
        }
        let (length_field, reserved) = u8_field(rest, Self::NAME, "reserved")?;
        let (rest, length) =
            field(Self::NAME, "length", nom::number::complete::be_u16)(length_field)?;
        let Some(payload_len) = usize::from(length).checked_sub(Self::HEADER_LEN) else {
            return fail(
                length_field,
                Self::NAME,
                "length",
                WireErrorKind::TooShort {
                    length: length.into(),
                    min: 4,
                },
            );
        };
        let Some((payload, rest)) = rest.split_at_checked(payload_len) else {
            return fail(
                length_field,
                Self::NAME,
                "length",
                WireErrorKind::LengthExceedsInput {
                    declared: length.into(),
                    available: input.len(),
                },
            );
        };
        Ok((rest, Self { reserved, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-RDPBCGR 4.1.5, Client MCS Erect Domain Request PDU.
    const ERECT_DOMAIN: [u8; 12] = [
        0x03, 0x00, 0x00, 0x0c, 0x02, 0xf0, 0x80, 0x04, 0x01, 0x00, 0x01, 0x00,
    ];

    #[test]
    fn parses_spec_erect_domain_request_and_encodes_byte_exact() {
        let tpkt = Tpkt::decode(&ERECT_DOMAIN).unwrap();
        assert_eq!(tpkt.reserved, 0);
        assert_eq!(tpkt.payload, &ERECT_DOMAIN[4..]);
        assert_eq!(tpkt.encoded_len(), ERECT_DOMAIN.len());
        assert_eq!(tpkt.to_vec().unwrap(), ERECT_DOMAIN);
    }

    #[test]
    fn keeps_nonzero_reserved_byte() {
        let bytes = [0x03, 0x5a, 0x00, 0x05, 0xff];
        let tpkt = Tpkt::decode(&bytes).unwrap();
        assert_eq!(tpkt.reserved, 0x5a);
        assert_eq!(tpkt.to_vec().unwrap(), bytes);
    }

    #[test]
    fn parse_leaves_the_next_packet() {
        let mut two = ERECT_DOMAIN.to_vec();
        two.extend_from_slice(&ERECT_DOMAIN);
        let (rest, _) = Tpkt::parse(&two).unwrap();
        assert_eq!(rest, ERECT_DOMAIN);
    }

    #[test]
    fn rejects_version_other_than_3() {
        let err = Tpkt::decode(&[0x02, 0x00, 0x00, 0x04]).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("TPKT", "version", 0)
        );
        assert_eq!(err.kind, WireErrorKind::UnsupportedValue { value: 2 });
    }

    #[test]
    fn rejects_length_below_header_size() {
        let err = Tpkt::decode(&[0x03, 0x00, 0x00, 0x03]).unwrap_err();
        assert_eq!((err.field, err.offset), ("length", 2));
        assert_eq!(err.kind, WireErrorKind::TooShort { length: 3, min: 4 });
    }

    #[test]
    fn rejects_length_beyond_input() {
        let err = Tpkt::decode(&ERECT_DOMAIN[..11]).unwrap_err();
        assert_eq!((err.field, err.offset), ("length", 2));
        assert_eq!(
            err.kind,
            WireErrorKind::LengthExceedsInput {
                declared: 12,
                available: 11
            }
        );
    }

    #[test]
    fn every_prefix_is_rejected() {
        for len in 0..ERECT_DOMAIN.len() {
            assert!(Tpkt::decode(&ERECT_DOMAIN[..len]).is_err(), "prefix {len}");
        }
    }

    #[test]
    fn payload_longer_than_u16_is_an_encode_error() {
        let payload = vec![0u8; 65_532];
        assert!(matches!(
            Tpkt::new(&payload).to_vec(),
            Err(EncodeError::TooLong {
                structure: "TPKT",
                field: "length",
                length: 65_536,
                ..
            })
        ));
    }
}

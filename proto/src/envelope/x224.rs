//! ITU-T X.224 class 0 TPDUs as RDP uses them: the Data TPDU (`x224Data`) that carries every
//! slow-path PDU, parsed; the connection TPDUs (MS-RDPBCGR 2.2.1.1, 2.2.1.2) recognised by code.

use bytes::BufMut;

use crate::wire::codec::{u8_field, Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireErrorKind};
use crate::wire::open_enum::open_enum;

open_enum! {
    /// The TPDU code: the high nibble of the byte after the length indicator (X.224 §13.1,
    /// table 8). The low nibble holds the credit (CR, CC) or zero.
    pub struct TpduCode(u8) {
        /// Connection Request: the client's first PDU (MS-RDPBCGR 2.2.1.1).
        CR = 0xE,
        /// Connection Confirm: the server's answer (MS-RDPBCGR 2.2.1.2).
        CC = 0xD,
        /// Disconnect Request.
        DR = 0x8,
        /// Disconnect Confirm.
        DC = 0xC,
        /// Data: carries every MCS PDU (see [`X224Data`]).
        DT = 0xF,
        /// TPDU Error.
        ER = 0x7,
    }
}

impl TpduCode {
    const STRUCTURE: &'static str = "X.224 TPDU";

    /// Reads the code of the TPDU at the front of `tpdu` (the payload of one TPKT packet) and
    /// skips the header its length indicator announces, returning the TPDU's user data.
    pub(crate) fn parse(tpdu: &[u8]) -> PResult<'_, Self> {
        let (rest, li) = u8_field(tpdu, Self::STRUCTURE, "LI")?;
        // The header holds at least the code byte; X.224 §13.2.1 reserves LI 255.
        if li == 0 || li == u8::MAX {
            return fail(
                tpdu,
                Self::STRUCTURE,
                "LI",
                WireErrorKind::UnsupportedValue { value: li.into() },
            );
        }
        let Some((header, user_data)) = rest.split_at_checked(usize::from(li)) else {
            return fail(
                tpdu,
                Self::STRUCTURE,
                "LI",
                WireErrorKind::LengthExceedsInput {
                    declared: li.into(),
                    available: rest.len(),
                },
            );
        };
        let (_, code) = u8_field(header, Self::STRUCTURE, "code")?;
        Ok((user_data, Self(code >> 4)))
    }
}

/// X.224 §13.7 Data TPDU, class 0 (`x224Data` in MS-RDPBCGR): length indicator 2, code 0xF0, the
/// EOT/TPDU-NR byte, then user data up to the end of the TPKT packet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct X224Data<'a> {
    /// EOT in the top bit, TPDU-NR (always 0 in class 0) below it: 0x80 from every known peer,
    /// kept as seen so that anything else round-trips.
    pub eot: u8,
    pub payload: &'a [u8],
}

impl<'a> X224Data<'a> {
    pub const HEADER_LEN: usize = 3;
    const LI: u8 = 2;
    const CODE: u8 = 0xF0;
    /// The last (and only) TPDU of the TSDU: RDP never segments at this layer.
    pub const EOT: u8 = 0x80;

    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            eot: Self::EOT,
            payload,
        }
    }

    /// Writes the header of a Data TPDU whose payload the caller writes next.
    pub(crate) fn encode_header<B: BufMut>(eot: u8, buf: &mut B) {
        buf.put_u8(Self::LI);
        buf.put_u8(Self::CODE);
        buf.put_u8(eot);
    }
}

impl<'a> Wire<'a> for X224Data<'a> {
    const NAME: &'static str = "X.224 Data TPDU";

    fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.payload.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        Self::encode_header(self.eot, buf);
        buf.put_slice(self.payload);
        Ok(())
    }
}

impl<'a> Parse<'a> for X224Data<'a> {
    /// Consumes all of `input`: a Data TPDU has no length of its own and ends with its packet.
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, li) = u8_field(input, Self::NAME, "LI")?;
        if li != Self::LI {
            return fail(
                input,
                Self::NAME,
                "LI",
                WireErrorKind::UnsupportedValue { value: li.into() },
            );
        }
        let (after_code, code) = u8_field(rest, Self::NAME, "code")?;
        if code != Self::CODE {
            return fail(
                rest,
                Self::NAME,
                "code",
                WireErrorKind::UnsupportedValue { value: code.into() },
            );
        }
        let (payload, eot) = u8_field(after_code, Self::NAME, "EOT")?;
        Ok((&[], Self { eot, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The X.224 part (after the TPKT header) of MS-RDPBCGR 4.1.1, Client X.224 Connection
    /// Request PDU: cookie "mstshash=eltons" and RDP_NEG_REQ.
    const CONNECTION_REQUEST: &[u8] = &[
        0x27, 0xe0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x43, 0x6f, 0x6f, 0x6b, 0x69, 0x65, 0x3a, 0x20,
        0x6d, 0x73, 0x74, 0x73, 0x68, 0x61, 0x73, 0x68, 0x3d, 0x65, 0x6c, 0x74, 0x6f, 0x6e, 0x73,
        0x0d, 0x0a, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    /// The X.224 part of MS-RDPBCGR 4.1.2, Server X.224 Connection Confirm PDU.
    const CONNECTION_CONFIRM: &[u8] = &[
        0x0e, 0xd0, 0x00, 0x00, 0x12, 0x34, 0x00, 0x02, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];
    /// The X.224 part of MS-RDPBCGR 4.1.7, Server MCS Attach User Confirm PDU.
    const ATTACH_USER_CONFIRM: &[u8] = &[0x02, 0xf0, 0x80, 0x2e, 0x00, 0x00, 0x06];

    #[test]
    fn recognises_spec_connection_request_and_confirm() {
        let (user_data, code) = TpduCode::parse(CONNECTION_REQUEST).unwrap();
        assert_eq!(code, TpduCode::CR);
        assert!(
            user_data.is_empty(),
            "the cookie and RDP_NEG_REQ are inside LI"
        );
        let (_, code) = TpduCode::parse(CONNECTION_CONFIRM).unwrap();
        assert_eq!(code, TpduCode::CC);
        assert_eq!(format!("{code}"), "CC (0xd)");
    }

    #[test]
    fn parses_spec_data_tpdu_and_encodes_byte_exact() {
        let (user_data, code) = TpduCode::parse(ATTACH_USER_CONFIRM).unwrap();
        assert_eq!((code, user_data), (TpduCode::DT, &ATTACH_USER_CONFIRM[3..]));
        let data = X224Data::decode(ATTACH_USER_CONFIRM).unwrap();
        assert_eq!(data.eot, X224Data::EOT);
        assert_eq!(data, X224Data::new(&ATTACH_USER_CONFIRM[3..]));
        assert_eq!(data.encoded_len(), ATTACH_USER_CONFIRM.len());
        assert_eq!(data.to_vec().unwrap(), ATTACH_USER_CONFIRM);
    }

    #[test]
    fn keeps_eot_byte_as_seen() {
        let bytes = [0x02, 0xf0, 0x00, 0x68];
        let data = X224Data::decode(&bytes).unwrap();
        assert_eq!(data.eot, 0);
        assert_eq!(data.to_vec().unwrap(), bytes);
    }

    #[test]
    fn connection_request_is_not_a_data_tpdu() {
        let err = X224Data::decode(CONNECTION_REQUEST).unwrap_err();
        assert_eq!((err.field, err.offset), ("LI", 0));
        assert_eq!(err.kind, WireErrorKind::UnsupportedValue { value: 0x27 });
    }

    #[test]
    fn rejects_data_code_with_low_bits_set() {
        let err = X224Data::decode(&[0x02, 0xf1, 0x80]).unwrap_err();
        assert_eq!((err.field, err.offset), ("code", 1));
    }

    #[test]
    fn rejects_length_indicator_beyond_input() {
        let err = crate::wire::codec::finish(
            CONNECTION_CONFIRM,
            "X.224 TPDU",
            TpduCode::parse(&CONNECTION_CONFIRM[..10]),
        )
        .unwrap_err();
        assert_eq!((err.field, err.offset), ("LI", 0));
        assert_eq!(
            err.kind,
            WireErrorKind::LengthExceedsInput {
                declared: 14,
                available: 9
            }
        );
    }

    #[test]
    fn every_prefix_of_a_data_header_is_rejected() {
        for len in 0..X224Data::HEADER_LEN {
            assert!(X224Data::decode(&ATTACH_USER_CONFIRM[..len]).is_err());
            assert!(TpduCode::parse(&ATTACH_USER_CONFIRM[..len]).is_err());
        }
    }
}

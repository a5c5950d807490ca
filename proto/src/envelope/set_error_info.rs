//! [MS-RDPBCGR 2.2.5.1.1] Set Error Info PDU Data (TS_SET_ERROR_INFO_PDU): why a server is about
//! to end the session, sent before it disconnects. A licensing refusal arrives as one of the
//! ERRINFO_LICENSE_* codes.
//!
//! [MS-RDPBCGR 2.2.5.1.1]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/a21a1bd9-2303-49c1-90ec-3932435c248c

use bytes::BufMut;

use crate::wire::codec::{u16_le, u32_le, u8_field, Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireErrorKind};

/// `errorInfo` of TS_SET_ERROR_INFO_PDU (MS-RDPBCGR 2.2.5.1.1). Open: a test harness must
/// report whatever code a server sends, so an unknown value is kept and printed in hex.
///
/// Named here: the protocol-independent codes a licensing client meets (logoff, timeouts,
/// denial) and every protocol-independent licensing code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ErrorInfo(pub u32);

/// Declares the named [`ErrorInfo`] values once, for both the constants and [`ErrorInfo::name`].
macro_rules! error_info_names {
    ($($name:ident = $value:expr,)*) => {
        impl ErrorInfo {
            $(pub const $name: Self = Self($value);)*

            /// The specification's name for this code, if it is one named here.
            pub fn name(self) -> Option<&'static str> {
                match self {
                    $(Self::$name => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        }
    };
}

error_info_names! {
    ERRINFO_RPC_INITIATED_DISCONNECT = 0x0000_0001,
    ERRINFO_RPC_INITIATED_LOGOFF = 0x0000_0002,
    ERRINFO_IDLE_TIMEOUT = 0x0000_0003,
    ERRINFO_LOGON_TIMEOUT = 0x0000_0004,
    ERRINFO_DISCONNECTED_BY_OTHERCONNECTION = 0x0000_0005,
    ERRINFO_OUT_OF_MEMORY = 0x0000_0006,
    ERRINFO_SERVER_DENIED_CONNECTION = 0x0000_0007,
    ERRINFO_SERVER_INSUFFICIENT_PRIVILEGES = 0x0000_0009,
    ERRINFO_SERVER_FRESH_CREDENTIALS_REQUIRED = 0x0000_000A,
    ERRINFO_RPC_INITIATED_DISCONNECT_BYUSER = 0x0000_000B,
    ERRINFO_LOGOFF_BY_USER = 0x0000_000C,
    ERRINFO_LICENSE_INTERNAL = 0x0000_0100,
    ERRINFO_LICENSE_NO_LICENSE_SERVER = 0x0000_0101,
    ERRINFO_LICENSE_NO_LICENSE = 0x0000_0102,
    ERRINFO_LICENSE_BAD_CLIENT_MSG = 0x0000_0103,
    ERRINFO_LICENSE_HWID_DOESNT_MATCH_LICENSE = 0x0000_0104,
    ERRINFO_LICENSE_BAD_CLIENT_LICENSE = 0x0000_0105,
    ERRINFO_LICENSE_CANT_FINISH_PROTOCOL = 0x0000_0106,
    ERRINFO_LICENSE_CLIENT_ENDED_PROTOCOL = 0x0000_0107,
    ERRINFO_LICENSE_BAD_CLIENT_ENCRYPTION = 0x0000_0108,
    ERRINFO_LICENSE_CANT_UPGRADE_LICENSE = 0x0000_0109,
    ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS = 0x0000_010A,
}

impl ErrorInfo {
    /// Whether this is one of the spec's protocol-independent licensing codes
    /// (ERRINFO_LICENSE_INTERNAL ..= ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS): the codes a
    /// licensing refusal comes with.
    pub fn is_licensing(self) -> bool {
        (Self::ERRINFO_LICENSE_INTERNAL.0..=Self::ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS.0)
            .contains(&self.0)
    }
}

/// The spec name, or `ERRINFO 0x` and eight hex digits for a code without one here.
impl core::fmt::Display for ErrorInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "ERRINFO {:#010x}", self.0),
        }
    }
}

impl core::fmt::Debug for ErrorInfo {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        core::fmt::Display::fmt(self, f)
    }
}

/// TS_SET_ERROR_INFO_PDU: a TS_SHAREDATAHEADER (MS-RDPBCGR 2.2.8.1.1.1.2, its
/// TS_SHARECONTROLHEADER 2.2.8.1.1.1.1 first) and `errorInfo`.
///
/// Only an uncompressed Data PDU with pduType2 PDUTYPE2_SET_ERROR_INFO_PDU is accepted. Every
/// other header field is kept as read, lengths included: implementations disagree on what
/// `uncompressedLength` counts, and a harness must re-emit what it saw.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SetErrorInfoPdu {
    /// `totalLength` of the Share Control Header as sent (22 when the sender counts right).
    pub total_length: u16,
    /// `pduType`: the type (PDUTYPE_DATAPDU) in the low nibble, the protocol version above it.
    pub pdu_type: u16,
    /// `pduSource`; the spec says zero, servers send their channel id.
    pub pdu_source: u16,
    pub share_id: u32,
    pub pad1: u8,
    pub stream_id: u8,
    /// `uncompressedLength` as sent.
    pub uncompressed_length: u16,
    /// `generalCompressedType` (compression type and flags; PACKET_COMPRESSED is never set).
    pub compressed_type: u8,
    pub compressed_length: u16,
    pub error_info: ErrorInfo,
}

impl SetErrorInfoPdu {
    /// TS_SHAREDATAHEADER (18 bytes) and errorInfo (4).
    pub const LEN: usize = 22;
    /// The type subfield of pduType for a Data PDU (MS-RDPBCGR 2.2.8.1.1.1.1).
    pub const PDUTYPE_DATAPDU: u16 = 0x7;
    /// pduType2 of the Set Error Info PDU (MS-RDPBCGR 2.2.8.1.1.1.2).
    pub const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
    /// generalCompressedType flag: what follows the header is compressed (MS-RDPBCGR
    /// 2.2.8.1.1.1.2).
    pub const PACKET_COMPRESSED: u8 = 0x20;
    const PDUTYPE_MASK: u16 = 0xF;
}

impl<'a> Wire<'a> for SetErrorInfoPdu {
    const NAME: &'static str = "TS_SET_ERROR_INFO_PDU";

    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u16_le(self.total_length);
        buf.put_u16_le(self.pdu_type);
        buf.put_u16_le(self.pdu_source);
        buf.put_u32_le(self.share_id);
        buf.put_u8(self.pad1);
        buf.put_u8(self.stream_id);
        buf.put_u16_le(self.uncompressed_length);
        buf.put_u8(Self::PDUTYPE2_SET_ERROR_INFO_PDU);
        buf.put_u8(self.compressed_type);
        buf.put_u16_le(self.compressed_length);
        buf.put_u32_le(self.error_info.0);
        Ok(())
    }
}

impl<'a> Parse<'a> for SetErrorInfoPdu {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (at, total_length) = u16_le(input, Self::NAME, "totalLength")?;
        let (rest, pdu_type) = u16_le(at, Self::NAME, "pduType")?;
        if pdu_type & Self::PDUTYPE_MASK != Self::PDUTYPE_DATAPDU {
            let value = pdu_type.into();
            return fail(
                at,
                Self::NAME,
                "pduType",
                WireErrorKind::UnsupportedValue { value },
            );
        }
        let (rest, pdu_source) = u16_le(rest, Self::NAME, "pduSource")?;
        let (rest, share_id) = u32_le(rest, Self::NAME, "shareId")?;
        let (rest, pad1) = u8_field(rest, Self::NAME, "pad1")?;
        let (rest, stream_id) = u8_field(rest, Self::NAME, "streamId")?;
        let (at, uncompressed_length) = u16_le(rest, Self::NAME, "uncompressedLength")?;
        let (rest, pdu_type2) = u8_field(at, Self::NAME, "pduType2")?;
        if pdu_type2 != Self::PDUTYPE2_SET_ERROR_INFO_PDU {
            let value = pdu_type2.into();
            return fail(
                at,
                Self::NAME,
                "pduType2",
                WireErrorKind::UnsupportedValue { value },
            );
        }
        let at = rest;
        let (rest, compressed_type) = u8_field(at, Self::NAME, "generalCompressedType")?;
        if compressed_type & Self::PACKET_COMPRESSED != 0 {
            let value = compressed_type.into();
            return fail(
                at,
                Self::NAME,
                "generalCompressedType",
                WireErrorKind::UnsupportedValue { value },
            );
        }
        let (rest, compressed_length) = u16_le(rest, Self::NAME, "generalCompressedLength")?;
        let (rest, error_info) = u32_le(rest, Self::NAME, "errorInfo")?;
        Ok((
            rest,
            Self {
                total_length,
                pdu_type,
                pdu_source,
                share_id,
                pad1,
                stream_id,
                uncompressed_length,
                compressed_type,
                compressed_length,
                error_info: ErrorInfo(error_info),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireErrorKind;

    /// ERRINFO_LICENSE_NO_LICENSE laid out field by field from MS-RDPBCGR 2.2.8.1.1.1:
    /// totalLength 22, pduType PDUTYPE_DATAPDU | TS_PROTOCOL_VERSION, pduSource 1003 (the I/O
    /// channel, as servers send it), shareId 0x000103ea, streamId STREAM_MED,
    /// uncompressedLength 8, uncompressed.
    const NO_LICENSE: [u8; 22] = [
        0x16, 0x00, 0x17, 0x00, 0xeb, 0x03, 0xea, 0x03, 0x01, 0x00, 0x00, 0x02, 0x08, 0x00, 0x2f,
        0x00, 0x00, 0x00, 0x02, 0x01, 0x00, 0x00,
    ];

    #[test]
    fn parses_the_fields_of_a_known_encoding() {
        let pdu = SetErrorInfoPdu::decode(&NO_LICENSE).unwrap();
        assert_eq!(pdu.error_info, ErrorInfo::ERRINFO_LICENSE_NO_LICENSE);
        assert_eq!((pdu.total_length, pdu.pdu_type), (22, 0x17));
        assert_eq!((pdu.pdu_source, pdu.share_id), (1003, 0x0001_03ea));
        assert_eq!((pdu.stream_id, pdu.uncompressed_length), (2, 8));
    }

    #[test]
    fn encodes_byte_exact_and_encoded_length_matches() {
        let pdu = SetErrorInfoPdu::decode(&NO_LICENSE).unwrap();
        assert_eq!(pdu.encoded_len(), NO_LICENSE.len());
        assert_eq!(pdu.to_vec().unwrap(), NO_LICENSE);
    }

    #[test]
    fn header_quirks_survive_a_round_trip() {
        let mut bytes = NO_LICENSE;
        bytes[0] = 0x99; // a wrong totalLength
        bytes[12] = 0x04; // uncompressedLength counting the data alone, as FreeRDP does
        let pdu = SetErrorInfoPdu::decode(&bytes).unwrap();
        assert_eq!(pdu.to_vec().unwrap(), bytes);
    }

    #[test]
    fn unknown_codes_are_kept() {
        let mut bytes = NO_LICENSE;
        bytes[18..].copy_from_slice(&0xDEAD_BEEF_u32.to_le_bytes());
        let pdu = SetErrorInfoPdu::decode(&bytes).unwrap();
        assert_eq!(pdu.error_info, ErrorInfo(0xDEAD_BEEF));
        assert_eq!(pdu.error_info.name(), None);
        assert_eq!(pdu.to_vec().unwrap(), bytes);
    }

    #[test]
    fn every_prefix_is_rejected() {
        for len in 0..NO_LICENSE.len() {
            let err = SetErrorInfoPdu::decode(&NO_LICENSE[..len]).unwrap_err();
            assert_eq!(err.kind, WireErrorKind::Truncated, "prefix {len}");
        }
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = NO_LICENSE.to_vec();
        bytes.push(0);
        let err = SetErrorInfoPdu::decode(&bytes).unwrap_err();
        assert_eq!(
            (err.offset, err.kind),
            (22, WireErrorKind::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn other_share_data_is_a_typed_error_at_its_field() {
        let mut font_map = NO_LICENSE;
        font_map[14] = 0x28;
        let err = SetErrorInfoPdu::decode(&font_map).unwrap_err();
        assert_eq!((err.field, err.offset), ("pduType2", 14));
        assert_eq!(err.kind, WireErrorKind::UnsupportedValue { value: 0x28 });

        let mut control = NO_LICENSE;
        control[2] = 0x11; // PDUTYPE_DEMANDACTIVEPDU
        let err = SetErrorInfoPdu::decode(&control).unwrap_err();
        assert_eq!((err.field, err.offset), ("pduType", 2));

        let mut compressed = NO_LICENSE;
        compressed[15] |= SetErrorInfoPdu::PACKET_COMPRESSED;
        let err = SetErrorInfoPdu::decode(&compressed).unwrap_err();
        assert_eq!((err.field, err.offset), ("generalCompressedType", 15));
    }

    #[test]
    fn display_is_the_spec_name_or_the_code_in_hex() {
        assert_eq!(
            ErrorInfo::ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS.to_string(),
            "ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS"
        );
        assert_eq!(ErrorInfo(0x0000_000C).to_string(), "ERRINFO_LOGOFF_BY_USER");
        assert_eq!(ErrorInfo(0x10B).to_string(), "ERRINFO 0x0000010b");
        assert_eq!(ErrorInfo(0).to_string(), "ERRINFO 0x00000000");
    }

    #[test]
    fn licensing_codes_are_the_errinfo_license_range() {
        let licensing: Vec<u32> = (0..0x200)
            .filter(|code| ErrorInfo(*code).is_licensing())
            .collect();
        assert_eq!(licensing, (0x100..=0x10A).collect::<Vec<_>>());
        assert!(licensing.iter().all(|code| ErrorInfo(*code)
            .name()
            .is_some_and(|n| n.starts_with("ERRINFO_LICENSE_"))));
    }
}

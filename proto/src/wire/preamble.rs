//! MS-RDPBCGR 2.2.1.12.1.1 Licensing Preamble (LICENSE_PREAMBLE).

use bytes::BufMut;

use super::codec::{u16_le, u8_field, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::open_enum::open_enum;

open_enum! {
    /// `bMsgType`: which licensing message follows the preamble.
    pub struct MessageType(u8) {
        LICENSE_REQUEST = 0x01,
        PLATFORM_CHALLENGE = 0x02,
        NEW_LICENSE = 0x03,
        UPGRADE_LICENSE = 0x04,
        LICENSE_INFO = 0x12,
        NEW_LICENSE_REQUEST = 0x13,
        PLATFORM_CHALLENGE_RESPONSE = 0x15,
        ERROR_ALERT = 0xFF,
    }
}

/// `bVersion` ("flags"): the licensing protocol version in the low nibble and
/// EXTENDED_ERROR_MSG_SUPPORTED in the top bit. Kept whole so reserved bits round-trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PreambleFlags(pub u8);

impl PreambleFlags {
    pub const PREAMBLE_VERSION_2_0: u8 = 0x02;
    pub const PREAMBLE_VERSION_3_0: u8 = 0x03;
    pub const EXTENDED_ERROR_MSG_SUPPORTED: u8 = 0x80;
    const VERSION_MASK: u8 = 0x0F;

    /// Licensing protocol version: 2 (RDP 4.0) or 3 (RDP 5.0 and later).
    pub fn version(self) -> u8 {
        self.0 & Self::VERSION_MASK
    }

    pub fn extended_error_msg_supported(self) -> bool {
        self.0 & Self::EXTENDED_ERROR_MSG_SUPPORTED != 0
    }
}

impl core::fmt::Debug for PreambleFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#04x} (version {}", self.0, self.version())?;
        if self.extended_error_msg_supported() {
            f.write_str(", EXTENDED_ERROR_MSG_SUPPORTED")?;
        }
        f.write_str(")")
    }
}

/// The four-byte preamble. `msg_size` counts the preamble itself; the message parsers derive it
/// from the body rather than store it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LicensePreamble {
    pub msg_type: MessageType,
    pub flags: PreambleFlags,
    pub msg_size: u16,
}

impl LicensePreamble {
    pub const LEN: usize = 4;
}

impl<'a> Wire<'a> for LicensePreamble {
    const NAME: &'static str = "LICENSE_PREAMBLE";

    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u8(self.msg_type.0);
        buf.put_u8(self.flags.0);
        buf.put_u16_le(self.msg_size);
        Ok(())
    }
}

impl<'a> Parse<'a> for LicensePreamble {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (input, msg_type) = u8_field(input, Self::NAME, "bMsgType")?;
        let (input, flags) = u8_field(input, Self::NAME, "flags")?;
        let (input, msg_size) = u16_le(input, Self::NAME, "wMsgSize")?;
        Ok((
            input,
            Self {
                msg_type: MessageType(msg_type),
                flags: PreambleFlags(flags),
                msg_size,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_xfreerdp_preamble_flags() {
        let preamble = LicensePreamble::decode(&[0x13, 0x83, 0x88, 0x00]).unwrap();
        assert_eq!(preamble.msg_type, MessageType::NEW_LICENSE_REQUEST);
        assert_eq!(preamble.flags.version(), 3);
        assert!(preamble.flags.extended_error_msg_supported());
        assert_eq!(preamble.msg_size, 0x88);
        assert_eq!(preamble.to_vec().unwrap(), [0x13, 0x83, 0x88, 0x00]);
    }

    #[test]
    fn truncated_preamble_names_the_field() {
        let err = LicensePreamble::decode(&[0x13, 0x83, 0x88]).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("LICENSE_PREAMBLE", "wMsgSize", 2)
        );
    }
}

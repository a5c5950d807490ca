//! MS-RDPBCGR 2.2.1.10.1 Security Exchange PDU Data (TS_SECURITY_PACKET): the userData of the
//! Send Data Request a client sends, under Standard RDP Security, between channel connection
//! and the Client Info, carrying the client random encrypted with the server's public key.

use bytes::BufMut;

use super::security_header::{SecurityFlags, SecurityHeader};
use crate::crypto::WIRE_PADDING_LEN;
use crate::wire::codec::{len_u32, take_len, u32_le, Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireErrorKind};

/// `basicSecurityHeader`, `length` and `encryptedClientRandom`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecurityExchangePdu<'a> {
    /// SEC_EXCHANGE_PKT, with SEC_LICENSE_ENCRYPT_SC when the client can read encrypted
    /// licensing PDUs (xfreerdp 2.11.7 sets it; rdesktop 1.9.0 does not).
    pub security: SecurityHeader,
    /// The client random encrypted as MS-RDPBCGR 5.3.4.1 says: little-endian, the modulus
    /// length followed by 8 zero bytes of padding (which `length` counts).
    pub encrypted_client_random: &'a [u8],
}

impl<'a> SecurityExchangePdu<'a> {
    /// The largest `length` a modulus this crate accepts can give (MAX_MODULUS_BITS / 8 + 8):
    /// the PDU carries nothing else, so a longer one is not a client random.
    pub const MAX_ENCRYPTED_LEN: usize = crate::crypto::MAX_MODULUS_BITS / 8 + WIRE_PADDING_LEN;

    pub fn new(encrypted_client_random: &'a [u8], license_encrypt: bool) -> Self {
        let flags = if license_encrypt {
            SecurityFlags::SEC_EXCHANGE_PKT | SecurityFlags::SEC_LICENSE_ENCRYPT_SC
        } else {
            SecurityFlags::SEC_EXCHANGE_PKT
        };
        Self {
            security: SecurityHeader::new(flags),
            encrypted_client_random,
        }
    }

    /// Whether the client asks for encrypted licensing PDUs (SEC_LICENSE_ENCRYPT_SC).
    pub fn license_encrypt(&self) -> bool {
        self.security
            .flags
            .contains(SecurityFlags::SEC_LICENSE_ENCRYPT_SC)
    }
}

impl<'a> Wire<'a> for SecurityExchangePdu<'a> {
    const NAME: &'static str = "TS_SECURITY_PACKET";

    fn encoded_len(&self) -> usize {
        SecurityHeader::LEN + 4 + self.encrypted_client_random.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let length = len_u32(self.encrypted_client_random.len(), Self::NAME, "length")?;
        self.security.encode(buf)?;
        buf.put_u32_le(length);
        buf.put_slice(self.encrypted_client_random);
        Ok(())
    }
}

impl<'a> Parse<'a> for SecurityExchangePdu<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, security) = SecurityHeader::parse(input)?;
        if !security.flags.contains(SecurityFlags::SEC_EXCHANGE_PKT) {
            return fail(
                input,
                Self::NAME,
                "basicSecurityHeader",
                WireErrorKind::Malformed("SEC_EXCHANGE_PKT is not set"),
            );
        }
        let (after_length, length) = u32_le(rest, Self::NAME, "length")?;
        if usize::try_from(length).map_or(true, |length| length > Self::MAX_ENCRYPTED_LEN) {
            return fail(
                rest,
                Self::NAME,
                "length",
                WireErrorKind::TooMany {
                    count: length.into(),
                    max: u64::try_from(Self::MAX_ENCRYPTED_LEN).unwrap_or(u64::MAX),
                },
            );
        }
        let (rest, encrypted_client_random) = take_len(
            after_length,
            length.into(),
            Self::NAME,
            "encryptedClientRandom",
        )?;
        Ok((
            rest,
            Self {
                security,
                encrypted_client_random,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::wire::WireError;

    #[test]
    fn round_trips_and_refuses_what_is_not_a_client_random() {
        let random = [0xAB; 72];
        let pdu = SecurityExchangePdu::new(&random, true);
        let bytes = pdu.to_vec().unwrap();
        assert_eq!(&bytes[..8], &[0x01, 0x02, 0, 0, 72, 0, 0, 0]);
        assert_eq!(SecurityExchangePdu::decode(&bytes).unwrap(), pdu);
        assert!(pdu.license_encrypt());

        let mut no_flag = bytes.clone();
        no_flag[0] = 0x08;
        let error: WireError = SecurityExchangePdu::decode(&no_flag).unwrap_err();
        assert_eq!((error.structure, error.offset), ("TS_SECURITY_PACKET", 0));

        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&0x00FF_FFFFu32.to_le_bytes());
        let error = SecurityExchangePdu::decode(&huge).unwrap_err();
        assert_eq!((error.field, error.offset), ("length", 4));

        let error = SecurityExchangePdu::decode(&bytes[..40]).unwrap_err();
        assert_eq!(error.field, "encryptedClientRandom");
    }
}

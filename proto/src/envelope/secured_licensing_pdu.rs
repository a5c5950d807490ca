//! A licensing PDU behind its security header (MS-RDPBCGR 2.2.1.12, MS-RDPELE 2.2.2): the
//! userData of the Send Data that carries it, and what the peer captures in `captures/` hold.

use bytes::BufMut;

use super::security_header::{SecurityFlags, SecurityHeader};
use crate::wire::codec::{Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireErrorKind};
use crate::wire::LicensingPdu;

/// MS-RDPELE 2.2.2 `securityHeader`, `preamble` and `LicensingMessage`. The security header is
/// always present on a licensing PDU, TLS or not, and always basic when the PDU is readable:
/// a non-FIPS or FIPS header comes only with SEC_ENCRYPT, whose body needs the session keys.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecuredLicensingPdu<'a> {
    pub security: SecurityHeader,
    pub pdu: LicensingPdu<'a>,
}

impl<'a> SecuredLicensingPdu<'a> {
    /// `pdu` behind a basic header with SEC_LICENSE_PKT and nothing else, as Windows sends it.
    pub fn new(pdu: LicensingPdu<'a>) -> Self {
        Self {
            security: SecurityHeader::new(SecurityFlags::SEC_LICENSE_PKT),
            pdu,
        }
    }
}

impl<'a> Wire<'a> for SecuredLicensingPdu<'a> {
    const NAME: &'static str = "TS_LICENSING_PDU";

    fn encoded_len(&self) -> usize {
        SecurityHeader::LEN + self.pdu.encoded_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.security.encode(buf)?;
        self.pdu.encode(buf)
    }
}

impl<'a> Parse<'a> for SecuredLicensingPdu<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, security) = SecurityHeader::parse(input)?;
        let flags = security.flags;
        // Receivers tell licensing PDUs apart by this flag alone: without it the bytes are some
        // other PDU, whatever they look like.
        if !flags.contains(SecurityFlags::SEC_LICENSE_PKT) {
            return fail(
                input,
                SecurityHeader::NAME,
                "flags",
                WireErrorKind::Malformed("SEC_LICENSE_PKT is not set"),
            );
        }
        if flags.contains(SecurityFlags::SEC_ENCRYPT) {
            return fail(
                input,
                SecurityHeader::NAME,
                "flags",
                WireErrorKind::Malformed("SEC_ENCRYPT is set: the body needs the session keys"),
            );
        }
        let (rest, pdu) = LicensingPdu::parse(rest)?;
        Ok((rest, Self { security, pdu }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ErrorCode, LicensingMessage, StateTransition};

    const XRDP_ALERT: &[u8] = include_bytes!("../../../captures/xrdp-0.9.21_error_alert.bin");

    #[test]
    fn parses_xrdp_error_alert_capture_and_encodes_byte_exact() {
        let secured = SecuredLicensingPdu::decode(XRDP_ALERT).unwrap();
        assert_eq!(secured.security.flags, SecurityFlags::SEC_LICENSE_PKT);
        assert_eq!(secured.security.flags_hi, 0x0010, "xrdp's junk flagsHi");
        let LicensingMessage::ErrorAlert(alert) = &secured.pdu.message else {
            panic!("{:?}", secured.pdu.message)
        };
        assert_eq!(alert.error_code, ErrorCode::STATUS_VALID_CLIENT);
        assert_eq!(alert.state_transition, StateTransition::ST_NO_TRANSITION);
        assert_eq!(secured.encoded_len(), XRDP_ALERT.len());
        assert_eq!(secured.to_vec().unwrap(), XRDP_ALERT);
    }

    #[test]
    fn new_uses_a_basic_header_with_only_sec_license_pkt() {
        let secured = SecuredLicensingPdu::decode(XRDP_ALERT).unwrap();
        let rebuilt = SecuredLicensingPdu::new(secured.pdu.clone());
        let bytes = rebuilt.to_vec().unwrap();
        assert_eq!(bytes[..4], [0x80, 0x00, 0x00, 0x00]);
        assert_eq!(bytes[4..], XRDP_ALERT[4..]);
    }

    #[test]
    fn encrypted_licensing_pdu_is_a_typed_error() {
        let mut bytes = XRDP_ALERT.to_vec();
        bytes[0] |= 0x08;
        let err = SecuredLicensingPdu::decode(&bytes).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("TS_SECURITY_HEADER", "flags", 0)
        );
        assert_eq!(
            err.kind,
            WireErrorKind::Malformed("SEC_ENCRYPT is set: the body needs the session keys")
        );
    }

    #[test]
    fn pdu_without_sec_license_pkt_is_rejected() {
        let mut bytes = XRDP_ALERT.to_vec();
        bytes[0] = 0x40;
        let err = SecuredLicensingPdu::decode(&bytes).unwrap_err();
        assert_eq!((err.structure, err.field), ("TS_SECURITY_HEADER", "flags"));
        assert_eq!(
            err.kind,
            WireErrorKind::Malformed("SEC_LICENSE_PKT is not set")
        );
    }

    #[test]
    fn errors_inside_the_licensing_pdu_count_from_the_security_header() {
        let err = SecuredLicensingPdu::decode(&XRDP_ALERT[..XRDP_ALERT.len() - 1]).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("LICENSE_PREAMBLE", "wMsgSize", 6)
        );
    }

    #[test]
    fn every_prefix_is_rejected() {
        for len in 0..XRDP_ALERT.len() {
            assert!(
                SecuredLicensingPdu::decode(&XRDP_ALERT[..len]).is_err(),
                "prefix {len}"
            );
        }
    }
}

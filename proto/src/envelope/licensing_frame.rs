//! A licensing PDU as it travels on the wire (MS-RDPELE 2.2.2 TS_LICENSING_PDU): TPKT, X.224
//! Data, MCS Send Data, security header, preamble and message.

use bytes::BufMut;

use super::mcs::{McsSendData, SendDataDirection};
use super::secured_licensing_pdu::SecuredLicensingPdu;
use super::security_header::{SecurityFlags, SecurityHeader};
use super::tpkt::Tpkt;
use super::x224::X224Data;
use crate::wire::codec::{parse_within, Parse, Wire};
use crate::wire::error::{EncodeError, PResult, ParseError};
use crate::wire::LicensingPdu;

/// The licensing PDU inside a frame, located without parsing it: see [`LicensingFrame::payload`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LicensingPayload<'a> {
    /// The MCS channel the Send Data was on; licensing uses the I/O channel
    /// ([`LicensingFrame::IO_CHANNEL_ID`]), which the caller checks against what it announced.
    pub channel_id: u16,
    /// The licensing PDU, preamble on, as it follows the basic security header.
    pub pdu: &'a [u8],
}

/// MS-RDPELE 2.2.2 TS_LICENSING_PDU (MS-RDPBCGR 2.2.1.12 for the Valid Client case): a licensing
/// PDU in its TPKT packet, X.224 Data TPDU and MCS Send Data Request (client to server) or
/// Indication (server to client). Every length is derived when encoding; every other header
/// byte is kept as seen, so whatever parses re-encodes byte for byte.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LicensingFrame<'a> {
    /// [`Tpkt::reserved`].
    pub tpkt_reserved: u8,
    /// [`X224Data::eot`].
    pub x224_eot: u8,
    pub direction: SendDataDirection,
    /// [`McsSendData::initiator`]: the user id minus 1001.
    pub initiator: u16,
    pub channel_id: u16,
    /// [`McsSendData::flags`].
    pub mcs_flags: u8,
    /// [`McsSendData::long_length`].
    pub long_length: bool,
    pub secured: SecuredLicensingPdu<'a>,
}

impl<'a> LicensingFrame<'a> {
    /// The MCS I/O channel every known server announces in its Server Network Data (what
    /// FreeRDP and xrdp call MCS_GLOBAL_CHANNEL).
    pub const IO_CHANNEL_ID: u16 = 1003;

    /// A frame as Windows builds one: TPKT reserved 0, EOT, dataPriority high with
    /// segmentation begin | end, the shortest PER length, and a basic security header with
    /// only SEC_LICENSE_PKT. A server sends an Indication with the initiator it uses for its
    /// own channel (1002, wire value 1); a client sends a Request with its user channel.
    /// `initiator` is the wire value (user id minus 1001).
    pub fn new(
        direction: SendDataDirection,
        initiator: u16,
        channel_id: u16,
        pdu: LicensingPdu<'a>,
    ) -> Self {
        Self {
            tpkt_reserved: 0,
            x224_eot: X224Data::EOT,
            direction,
            initiator,
            channel_id,
            mcs_flags: McsSendData::HIGH_PRIORITY_BEGIN_END,
            long_length: false,
            secured: SecuredLicensingPdu::new(pdu),
        }
    }

    /// Finds the licensing PDU in `frame`, one whole TPKT packet holding an X.224 Data TPDU and
    /// an MCS Send Data of `direction`, whose userData starts with a basic security header
    /// flagged SEC_LICENSE_PKT (MS-RDPBCGR 2.2.8.1.1.2.1). `None` for anything else, including
    /// an encrypted (SEC_ENCRYPT) licensing PDU, whose body is not a licensing PDU until
    /// decrypted.
    ///
    /// The licensing PDU itself is not parsed, so a malformed one is still handed over: a test
    /// harness has to see what a peer sent in order to report it.
    pub fn payload(frame: &'a [u8], direction: SendDataDirection) -> Option<LicensingPayload<'a>> {
        let tpkt = Tpkt::decode(frame).ok()?;
        let x224 = X224Data::decode(tpkt.payload).ok()?;
        let send_data = McsSendData::decode(x224.payload).ok()?;
        if send_data.direction != direction {
            return None;
        }
        let (security, consumed) = SecurityHeader::decode_prefix(send_data.user_data).ok()?;
        let pdu = send_data.user_data.get(consumed..)?;
        let flags = security.flags;
        if !flags.contains(SecurityFlags::SEC_LICENSE_PKT)
            || flags.contains(SecurityFlags::SEC_ENCRYPT)
        {
            return None;
        }
        Some(LicensingPayload {
            channel_id: send_data.channel_id,
            pdu,
        })
    }

    /// Completes a frame whose outer layers are parsed by reading the Send Data's userData as
    /// a secured licensing PDU, all of it.
    pub(super) fn from_layers(
        tpkt: Tpkt<'a>,
        x224: X224Data<'a>,
        send_data: McsSendData<'a>,
    ) -> Result<Self, nom::Err<ParseError<'a>>> {
        let secured = parse_within(
            send_data.user_data,
            SecuredLicensingPdu::NAME,
            SecuredLicensingPdu::parse,
        )?;
        Ok(Self {
            tpkt_reserved: tpkt.reserved,
            x224_eot: x224.eot,
            direction: send_data.direction,
            initiator: send_data.initiator,
            channel_id: send_data.channel_id,
            mcs_flags: send_data.flags,
            long_length: send_data.long_length,
            secured,
        })
    }

    /// The Send Data header fields; its userData is left empty because the frame writes the
    /// secured PDU there itself.
    fn send_data_header(&self) -> McsSendData<'static> {
        McsSendData {
            direction: self.direction,
            initiator: self.initiator,
            channel_id: self.channel_id,
            flags: self.mcs_flags,
            long_length: self.long_length,
            user_data: &[],
        }
    }
}

impl<'a> Wire<'a> for LicensingFrame<'a> {
    const NAME: &'static str = "TS_LICENSING_PDU";

    fn encoded_len(&self) -> usize {
        let secured_len = self.secured.encoded_len();
        Tpkt::HEADER_LEN
            + X224Data::HEADER_LEN
            + self.send_data_header().header_len(secured_len)
            + secured_len
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let secured_len = self.secured.encoded_len();
        let send_data = self.send_data_header();
        let x224_payload_len = send_data.header_len(secured_len) + secured_len;
        Tpkt::encode_header(
            self.tpkt_reserved,
            X224Data::HEADER_LEN + x224_payload_len,
            buf,
        )?;
        X224Data::encode_header(self.x224_eot, buf);
        send_data.encode_header(secured_len, buf)?;
        self.secured.encode(buf)
    }
}

impl<'a> Parse<'a> for LicensingFrame<'a> {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, tpkt) = Tpkt::parse(input)?;
        let x224 = parse_within(tpkt.payload, X224Data::NAME, X224Data::parse)?;
        let send_data = parse_within(x224.payload, McsSendData::NAME, McsSendData::parse)?;
        Ok((rest, Self::from_layers(tpkt, x224, send_data)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::SecurityFlags;
    use crate::wire::{BlobType, ErrorCode, LicensingMessage, WireErrorKind};

    /// A Windows server's Valid Client PDU, decrypted from TLS by a network monitor: Apache
    /// CloudStack, services/console-proxy-rdp/rdpconsole/src/main/java/rdpclient/
    /// ServerLicenseErrorPDUValidClient.java. flagsHi holds junk (0xbcf1).
    const WINDOWS_VALID_CLIENT: [u8; 34] = [
        0x03, 0x00, 0x00, 0x22, 0x02, 0xf0, 0x80, 0x68, 0x00, 0x01, 0x03, 0xeb, 0x70, 0x14, 0x80,
        0x00, 0xf1, 0xbc, 0xff, 0x03, 0x10, 0x00, 0x07, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00,
        0x04, 0x00, 0x00, 0x00,
    ];

    #[test]
    fn parses_windows_valid_client_and_encodes_byte_exact() {
        let frame = LicensingFrame::decode(&WINDOWS_VALID_CLIENT).unwrap();
        assert_eq!(frame.direction, SendDataDirection::Indication);
        assert_eq!((frame.initiator, frame.channel_id), (1, 1003));
        assert_eq!(frame.mcs_flags, 0x70);
        assert!(!frame.long_length);
        assert_eq!(frame.secured.security.flags, SecurityFlags::SEC_LICENSE_PKT);
        assert_eq!(frame.secured.security.flags_hi, 0xbcf1);
        let LicensingMessage::ErrorAlert(alert) = &frame.secured.pdu.message else {
            panic!("{:?}", frame.secured.pdu.message)
        };
        assert_eq!(alert.error_code, ErrorCode::STATUS_VALID_CLIENT);
        assert_eq!(alert.error_info.blob_type, BlobType::BB_ERROR_BLOB);
        assert_eq!(frame.encoded_len(), WINDOWS_VALID_CLIENT.len());
        assert_eq!(frame.to_vec().unwrap(), WINDOWS_VALID_CLIENT);
    }

    #[test]
    fn new_frame_matches_windows_but_for_flags_hi() {
        let parsed = LicensingFrame::decode(&WINDOWS_VALID_CLIENT).unwrap();
        let frame = LicensingFrame::new(
            SendDataDirection::Indication,
            1,
            LicensingFrame::IO_CHANNEL_ID,
            parsed.secured.pdu,
        );
        let mut expected = WINDOWS_VALID_CLIENT;
        expected[16..18].copy_from_slice(&[0, 0]);
        assert_eq!(frame.to_vec().unwrap(), expected);
    }

    #[test]
    fn reports_errors_at_their_offset_in_the_frame() {
        let mut bytes = WINDOWS_VALID_CLIENT;
        bytes[18] = 0x42;
        let err = LicensingFrame::decode(&bytes).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("LICENSE_PREAMBLE", "bMsgType", 18)
        );
        assert_eq!(err.kind, WireErrorKind::UnsupportedValue { value: 0x42 });
    }

    #[test]
    fn user_data_longer_than_the_licensing_pdu_is_trailing_bytes() {
        let mut bytes = WINDOWS_VALID_CLIENT.to_vec();
        bytes.push(0);
        bytes[3] += 1;
        bytes[13] += 1;
        let err = LicensingFrame::decode(&bytes).unwrap_err();
        assert_eq!((err.structure, err.offset), ("TS_LICENSING_PDU", 34));
        assert_eq!(err.kind, WireErrorKind::TrailingBytes { count: 1 });
    }

    #[test]
    fn every_prefix_is_rejected() {
        for len in 0..WINDOWS_VALID_CLIENT.len() {
            assert!(
                LicensingFrame::decode(&WINDOWS_VALID_CLIENT[..len]).is_err(),
                "prefix {len}"
            );
        }
    }

    /// xfreerdp 2.11.7's Client New License Request (secured: security header on) in a frame
    /// as the client sends it, with the offset of the licensing PDU in it.
    fn xfreerdp_new_license_request() -> (Vec<u8>, usize) {
        let secured = include_bytes!("../../../captures/xfreerdp-2.11.7_new_license_request.bin");
        let secured = SecuredLicensingPdu::decode(secured).unwrap();
        let pdu_len = secured.pdu.encoded_len();
        let frame = LicensingFrame::new(
            SendDataDirection::Request,
            1,
            LicensingFrame::IO_CHANNEL_ID,
            secured.pdu,
        )
        .to_vec()
        .unwrap();
        let offset = frame.len() - pdu_len;
        (frame, offset)
    }

    #[test]
    fn payload_of_a_client_frame_is_its_licensing_pdu() {
        let (frame, offset) = xfreerdp_new_license_request();
        let payload = LicensingFrame::payload(&frame, SendDataDirection::Request).unwrap();
        assert_eq!(payload.channel_id, LicensingFrame::IO_CHANNEL_ID);
        assert_eq!(payload.pdu, &frame[offset..]);
        assert!(matches!(
            LicensingPdu::decode(payload.pdu).unwrap().message,
            LicensingMessage::NewLicenseRequest(_)
        ));
    }

    #[test]
    fn payload_of_a_windows_server_frame_keeps_its_channel() {
        let payload =
            LicensingFrame::payload(&WINDOWS_VALID_CLIENT, SendDataDirection::Indication).unwrap();
        assert_eq!(payload.channel_id, 1003);
        assert_eq!(payload.pdu, &WINDOWS_VALID_CLIENT[18..]);
    }

    #[test]
    fn payload_of_the_other_direction_is_none() {
        let (frame, _) = xfreerdp_new_license_request();
        assert_eq!(
            LicensingFrame::payload(&frame, SendDataDirection::Indication),
            None
        );
        assert_eq!(
            LicensingFrame::payload(&WINDOWS_VALID_CLIENT, SendDataDirection::Request),
            None
        );
    }

    #[test]
    fn payload_of_a_malformed_licensing_pdu_is_still_its_bytes() {
        let (mut frame, offset) = xfreerdp_new_license_request();
        frame[offset] = 0x42; // bMsgType no licensing message has
        assert!(LicensingFrame::decode(&frame).is_err());
        let payload = LicensingFrame::payload(&frame, SendDataDirection::Request).unwrap();
        assert_eq!(payload.pdu, &frame[offset..]);
    }

    #[test]
    fn payload_needs_sec_license_pkt_without_sec_encrypt() {
        let (frame, offset) = xfreerdp_new_license_request();
        let flags_at = offset - 4;
        let mut encrypted = frame.clone();
        encrypted[flags_at] |= 0x08;
        assert_eq!(
            LicensingFrame::payload(&encrypted, SendDataDirection::Request),
            None
        );
        let mut not_licensing = frame;
        not_licensing[flags_at] &= !0x80;
        assert_eq!(
            LicensingFrame::payload(&not_licensing, SendDataDirection::Request),
            None
        );
    }

    #[test]
    fn payload_of_a_partial_or_overlong_frame_is_none() {
        let (frame, _) = xfreerdp_new_license_request();
        for len in 0..frame.len() {
            assert_eq!(
                LicensingFrame::payload(&frame[..len], SendDataDirection::Request),
                None,
                "prefix {len}"
            );
        }
        let mut longer = frame;
        longer.push(0);
        assert_eq!(
            LicensingFrame::payload(&longer, SendDataDirection::Request),
            None
        );
    }
}

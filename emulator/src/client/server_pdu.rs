//! What a PDU from the server is, as far as the client acts on it: a licensing PDU for the
//! licensing machine, a Share Control PDU (capability exchange, finalization), the Set Error
//! Info and Disconnect Provider Ultimatum that end a session — or something the client reads
//! past (fast-path output, other MCS PDUs).

use ironrdp_core::decode;
use ironrdp_pdu::mcs::McsMessage;
use ironrdp_pdu::rdp::headers::ShareControlHeader;
use ironrdp_pdu::x224::X224;
use rdpele_proto::envelope::{LicensingFrame, SendDataDirection, SetErrorInfoPdu, Tpkt};
use rdpele_proto::wire::Wire;

use super::error::{protocol, ClientError};

#[derive(Debug)]
pub(super) enum ServerPdu {
    /// The licensing PDU (preamble on) behind a security header flagged SEC_LICENSE_PKT.
    Licensing(Vec<u8>),
    ShareControl(Box<ShareControlHeader>),
    /// A Set Error Info PDU's code.
    ErrorInfo(u32),
    /// MCS Disconnect Provider Ultimatum (whatever its reason).
    Disconnect,
    /// Nothing the client acts on.
    Other,
}

/// When licensing PDUs are expected: during licensing every Send Data Indication may be one,
/// and is recognised by its security header; outside it there is no security header (TLS
/// replaced RDP encryption), and reading the Share Control header's totalLength as security
/// flags could mistake a long PDU for a licensing one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Licensing,
    Session,
}

/// Classifies one PDU as [`crate::transport::Framed::read_pdu`] returned it.
pub(super) fn classify(
    stage: &'static str,
    frame: &[u8],
    phase: Phase,
) -> Result<ServerPdu, ClientError> {
    if frame.first() != Some(&Tpkt::VERSION) {
        return Ok(ServerPdu::Other); // fast-path output
    }
    if phase == Phase::Licensing {
        if let Some(licensing) = LicensingFrame::payload(frame, SendDataDirection::Indication) {
            return Ok(ServerPdu::Licensing(licensing.pdu.to_vec()));
        }
    }
    let message = decode::<X224<McsMessage<'_>>>(frame)
        .map_err(|e| protocol(stage, e))?
        .0;
    let indication = match message {
        McsMessage::SendDataIndication(indication) => indication,
        McsMessage::DisconnectProviderUltimatum(_) => return Ok(ServerPdu::Disconnect),
        _ => return Ok(ServerPdu::Other),
    };
    let user_data = indication.user_data.as_ref();
    if let Ok(set_error_info) = SetErrorInfoPdu::decode(user_data) {
        return Ok(ServerPdu::ErrorInfo(set_error_info.error_info.0));
    }
    decode::<ShareControlHeader>(user_data)
        .map(|header| ServerPdu::ShareControl(Box::new(header)))
        .map_err(|e| protocol(stage, e))
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use ironrdp_core::encode_vec;
    use ironrdp_pdu::mcs::{DisconnectProviderUltimatum, DisconnectReason, SendDataIndication};
    use ironrdp_pdu::rdp::client_info::CompressionType;
    use ironrdp_pdu::rdp::finalization_messages::FontPdu;
    use ironrdp_pdu::rdp::headers::{
        CompressionFlags, ShareControlPdu, ShareDataHeader, ShareDataPdu, StreamPriority,
    };
    use ironrdp_pdu::rdp::server_error_info::{
        ErrorInfo, ProtocolIndependentLicensingCode, ServerSetErrorInfoPdu,
    };
    use rdpele_proto::wire::{LicensingPdu, MessageType};

    use super::*;

    fn indication(user_data: Vec<u8>) -> Vec<u8> {
        encode_vec(&X224(SendDataIndication {
            initiator_id: 1002,
            channel_id: 1003,
            user_data: Cow::Owned(user_data),
        }))
        .unwrap()
    }

    #[test]
    fn a_license_request_is_licensing_only_during_licensing() {
        let request = include_bytes!("../../../captures/server_license_request.bin");
        let pdu = LicensingPdu::decode(request).unwrap();
        let frame = LicensingFrame::new(SendDataDirection::Indication, 1, 1003, pdu)
            .to_vec()
            .unwrap();
        let ServerPdu::Licensing(body) = classify("test", &frame, Phase::Licensing).unwrap() else {
            panic!("not licensing")
        };
        assert_eq!(body.first(), Some(&MessageType::LICENSE_REQUEST.0));
        assert_eq!(body, request);
        assert!(classify("test", &frame, Phase::Session).is_err());
    }

    #[test]
    fn an_ultimatum_is_a_disconnect() {
        let frame = encode_vec(&X224(DisconnectProviderUltimatum::from_reason(
            DisconnectReason::ProviderInitiated,
        )))
        .unwrap();
        assert!(matches!(
            classify("test", &frame, Phase::Session).unwrap(),
            ServerPdu::Disconnect
        ));
    }

    #[test]
    fn fast_path_is_read_past_and_garbage_is_an_error() {
        assert!(matches!(
            classify("test", &[0x00, 0x03, 0x00], Phase::Session).unwrap(),
            ServerPdu::Other
        ));
        assert!(classify("test", &[3, 0, 0, 4], Phase::Session).is_err());
        assert!(classify("test", &indication(vec![1, 2, 3]), Phase::Licensing).is_err());
    }

    fn share_data(pdu: ShareDataPdu) -> Vec<u8> {
        encode_vec(&ShareControlHeader {
            share_id: 0x0001_03EA,
            pdu_source: 1003,
            share_control_pdu: ShareControlPdu::Data(ShareDataHeader {
                share_data_pdu: pdu,
                stream_priority: StreamPriority::Medium,
                compression_flags: CompressionFlags::empty(),
                compression_type: CompressionType::K8,
            }),
        })
        .unwrap()
    }

    fn no_license() -> Vec<u8> {
        share_data(ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(
            ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::NoLicense,
            ),
        )))
    }

    fn error_info(user_data: Vec<u8>) -> Option<u32> {
        match classify("test", &indication(user_data), Phase::Session) {
            Ok(ServerPdu::ErrorInfo(code)) => Some(code),
            _ => None,
        }
    }

    #[test]
    fn reads_the_code_of_an_ironrdp_encoded_set_error_info() {
        assert_eq!(error_info(no_license()), Some(0x102));
    }

    #[test]
    fn keeps_a_code_nobody_defined() {
        let mut bytes = no_license();
        bytes.truncate(18);
        bytes.extend_from_slice(&0xDEAD_BEEF_u32.to_le_bytes());
        assert_eq!(error_info(bytes), Some(0xDEAD_BEEF));
    }

    #[test]
    fn other_share_data_and_other_lengths_are_not_set_error_info() {
        assert_eq!(
            error_info(share_data(ShareDataPdu::FontMap(FontPdu::default()))),
            None
        );
        let bytes = no_license();
        assert_eq!(error_info(bytes[..SetErrorInfoPdu::LEN - 1].to_vec()), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(error_info(longer), None);
        let mut compressed = bytes;
        compressed[15] |= SetErrorInfoPdu::PACKET_COMPRESSED;
        assert_eq!(error_info(compressed), None);
    }
}

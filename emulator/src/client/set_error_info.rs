//! MS-RDPBCGR 2.2.5.1.1 Set Error Info PDU (TS_SET_ERROR_INFO_PDU): why the server is about to
//! end the session. Read here by hand rather than through ironrdp-pdu, which refuses error
//! codes it does not know; a test harness must report whatever code a server sends.

/// TS_SHAREDATAHEADER (18 bytes) and errorInfo (4).
const LEN: usize = 22;
/// pduType's low nibble for a Data PDU (MS-RDPBCGR 2.2.8.1.1.1.1).
const PDUTYPE_DATAPDU: u16 = 0x7;
const PDUTYPE_MASK: u16 = 0xF;
/// pduType2 of the Set Error Info PDU (2.2.8.1.1.1.2).
const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
/// generalCompressedType flag: the data after the header is compressed.
const PACKET_COMPRESSED: u8 = 0x20;

/// The errorInfo code, if the Send Data Indication's `user_data` is a Set Error Info PDU.
pub(super) fn parse_set_error_info(user_data: &[u8]) -> Option<u32> {
    let bytes: &[u8; LEN] = user_data.try_into().ok()?;
    // totalLength, pduType, pduSource | shareId, pad1, streamId, uncompressedLength |
    // pduType2, generalCompressedType, generalCompressedLength | errorInfo
    let [_, _, type_low, type_high, _, _, _, _, _, _, _, _, _, _, pdu_type2, compressed_type, _, _, e0, e1, e2, e3] =
        *bytes;
    let pdu_type = u16::from_le_bytes([type_low, type_high]);
    let is_set_error_info = pdu_type & PDUTYPE_MASK == PDUTYPE_DATAPDU
        && pdu_type2 == PDUTYPE2_SET_ERROR_INFO_PDU
        && compressed_type & PACKET_COMPRESSED == 0;
    is_set_error_info.then(|| u32::from_le_bytes([e0, e1, e2, e3]))
}

#[cfg(test)]
mod tests {
    use ironrdp_core::encode_vec;
    use ironrdp_pdu::rdp::client_info::CompressionType;
    use ironrdp_pdu::rdp::finalization_messages::FontPdu;
    use ironrdp_pdu::rdp::headers::{
        CompressionFlags, ShareControlHeader, ShareControlPdu, ShareDataHeader, ShareDataPdu,
        StreamPriority,
    };
    use ironrdp_pdu::rdp::server_error_info::{
        ErrorInfo, ProtocolIndependentLicensingCode, ServerSetErrorInfoPdu,
    };

    use super::*;

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

    #[test]
    fn reads_the_code_of_an_ironrdp_encoded_pdu() {
        let bytes = share_data(ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(
            ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::NoLicense,
            ),
        )));
        assert_eq!(parse_set_error_info(&bytes), Some(0x102));
    }

    #[test]
    fn keeps_a_code_nobody_defined() {
        let mut bytes = share_data(ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(
            ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::NoLicense,
            ),
        )));
        bytes.truncate(18);
        bytes.extend_from_slice(&0xDEAD_BEEF_u32.to_le_bytes());
        assert_eq!(parse_set_error_info(&bytes), Some(0xDEAD_BEEF));
    }

    #[test]
    fn other_share_data_and_other_lengths_are_not_it() {
        let font_map = share_data(ShareDataPdu::FontMap(FontPdu::default()));
        assert_eq!(parse_set_error_info(&font_map), None);
        let bytes = share_data(ShareDataPdu::ServerSetErrorInfo(ServerSetErrorInfoPdu(
            ErrorInfo::ProtocolIndependentLicensingCode(
                ProtocolIndependentLicensingCode::NoLicense,
            ),
        )));
        assert_eq!(parse_set_error_info(&bytes[..LEN - 1]), None);
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(parse_set_error_info(&longer), None);
        let mut compressed = bytes;
        compressed[15] |= PACKET_COMPRESSED;
        assert_eq!(parse_set_error_info(&compressed), None);
    }
}

//! The Set Error Info PDU (MS-RDPBCGR 2.2.5.1.1) a server sends before it disconnects: after a
//! licensing refusal it says why (ERRINFO_LICENSE_*). IronRDP stops reading at the Licensing Error
//! Message, so this client reads it from the bytes that follow.

use crate::slow_path::{read_u16_le, read_u32_le};

/// Share Control Header pduType (low 4 bits): PDUTYPE_DATAPDU.
const PDUTYPE_DATAPDU: u16 = 0x7;
/// Share Data Header pduType2: PDUTYPE2_SET_ERROR_INFO_PDU.
const PDUTYPE2_SET_ERROR_INFO_PDU: u8 = 0x2F;
/// Share Control Header (6 bytes) then Share Data Header (12 bytes).
const PDU_TYPE_AT: usize = 2;
const PDU_TYPE2_AT: usize = 14;
const ERROR_INFO_AT: usize = 18;

/// The errorInfo of a Set Error Info PDU in a Send Data Indication's user data, if it is one.
pub fn error_info(user_data: &[u8]) -> Option<u32> {
    let pdu_type = read_u16_le(user_data, PDU_TYPE_AT)?;
    if pdu_type & 0xF != PDUTYPE_DATAPDU
        || user_data.get(PDU_TYPE2_AT) != Some(&PDUTYPE2_SET_ERROR_INFO_PDU)
    {
        return None;
    }
    read_u32_le(user_data, ERROR_INFO_AT)
}

/// The spec name of an errorInfo code (the ones a licensing emulator sends), or its value in hex.
pub fn error_info_name(code: u32) -> String {
    let name = match code {
        0x0000_0000 => "ERRINFO_NONE",
        0x0000_0001 => "ERRINFO_RPC_INITIATED_DISCONNECT",
        0x0000_0002 => "ERRINFO_RPC_INITIATED_LOGOFF",
        0x0000_0003 => "ERRINFO_IDLE_TIMEOUT",
        0x0000_0004 => "ERRINFO_LOGON_TIMEOUT",
        0x0000_000B => "ERRINFO_RPC_INITIATED_DISCONNECT_BYUSER",
        0x0000_000C => "ERRINFO_LOGOFF_BY_USER",
        0x0000_0100 => "ERRINFO_LICENSE_INTERNAL",
        0x0000_0101 => "ERRINFO_LICENSE_NO_LICENSE_SERVER",
        0x0000_0102 => "ERRINFO_LICENSE_NO_LICENSE",
        0x0000_0103 => "ERRINFO_LICENSE_BAD_CLIENT_MSG",
        0x0000_0104 => "ERRINFO_LICENSE_HWID_DOESNT_MATCH_LICENSE",
        0x0000_0105 => "ERRINFO_LICENSE_BAD_CLIENT_LICENSE",
        0x0000_0106 => "ERRINFO_LICENSE_CANT_FINISH_PROTOCOL",
        0x0000_0107 => "ERRINFO_LICENSE_CLIENT_ENDED_PROTOCOL",
        0x0000_0108 => "ERRINFO_LICENSE_BAD_CLIENT_ENCRYPTION",
        0x0000_0109 => "ERRINFO_LICENSE_CANT_UPGRADE_LICENSE",
        0x0000_010A => "ERRINFO_LICENSE_NO_REMOTE_CONNECTIONS",
        _ => return format!("0x{code:08X}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_error_info_pdu_yields_its_code() {
        // Share Control Header (totalLength 22, PDUTYPE_DATAPDU v1, source 1003), Share Data
        // Header (shareId 0x103EA, stream medium, pduType2 0x2F), errorInfo 0x102.
        let pdu = [
            22, 0, 0x17, 0, 0xEB, 0x03, 0xEA, 0x03, 0x01, 0x00, 0, 2, 4, 0, 0x2F, 0, 0, 0, 0x02,
            0x01, 0, 0,
        ];
        assert_eq!(error_info(&pdu), Some(0x102));
        assert_eq!(error_info_name(0x102), "ERRINFO_LICENSE_NO_LICENSE");
        assert_eq!(error_info(&pdu[..20]), None);
        let mut other = pdu;
        other[14] = 0x1F;
        assert_eq!(error_info(&other), None);
        assert_eq!(error_info_name(0x1234), "0x00001234");
    }
}

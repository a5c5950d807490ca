//! What this client reads in licensing PDUs itself, beside IronRDP (MS-RDPELE 2.2): the message
//! type, and the Licensing Error Message's codes with their spec names.

use crate::slow_path::read_u32_le;

/// The licensing preamble (MS-RDPELE 2.2.1.2, LICENSE_PREAMBLE): bMsgType, flags, wMsgSize.
pub const PREAMBLE_LEN: usize = 4;

/// bMsgType values (MS-RDPELE 2.2.1.2).
pub fn message_type_name(message_type: u8) -> Option<&'static str> {
    Some(match message_type {
        0x01 => "LICENSE_REQUEST",
        0x02 => "PLATFORM_CHALLENGE",
        0x03 => "NEW_LICENSE",
        0x04 => "UPGRADE_LICENSE",
        0x12 => "LICENSE_INFO",
        0x13 => "NEW_LICENSE_REQUEST",
        0x15 => "PLATFORM_CHALLENGE_RESPONSE",
        0xFF => "ERROR_ALERT",
        _ => return None,
    })
}

/// The name of a message type, or its value in hex.
pub fn message_type_label(message_type: u8) -> String {
    message_type_name(message_type).map_or_else(|| format!("0x{message_type:02X}"), str::to_owned)
}

const ERROR_ALERT: u8 = 0xFF;
pub const LICENSE_REQUEST: u8 = 0x01;
pub const PLATFORM_CHALLENGE_RESPONSE: u8 = 0x15;
pub const NEW_LICENSE_REQUEST: u8 = 0x13;
pub const LICENSE_INFO: u8 = 0x12;

/// dwErrorCode values (MS-RDPELE 2.2.1.12.1.1).
fn error_code_name(code: u32) -> Option<&'static str> {
    Some(match code {
        0x01 => "ERR_INVALID_SERVER_CERTIFICATE",
        0x02 => "ERR_NO_LICENSE",
        0x03 => "ERR_INVALID_MAC",
        0x04 => "ERR_INVALID_SCOPE",
        0x06 => "ERR_NO_LICENSE_SERVER",
        0x07 => "STATUS_VALID_CLIENT",
        0x08 => "ERR_INVALID_CLIENT",
        0x0B => "ERR_INVALID_PRODUCTID",
        0x0C => "ERR_INVALID_MESSAGE_LEN",
        _ => return None,
    })
}

/// dwStateTransition values (MS-RDPELE 2.2.1.12.1.1).
fn state_transition_name(transition: u32) -> Option<&'static str> {
    Some(match transition {
        0x01 => "ST_TOTAL_ABORT",
        0x02 => "ST_NO_TRANSITION",
        0x03 => "ST_RESET_PHASE_TO_START",
        0x04 => "ST_RESEND_LAST_MESSAGE",
        _ => return None,
    })
}

/// A Licensing Error Message (MS-RDPELE 2.2.1.12.1.1, LICENSE_ERROR_MESSAGE) as the server sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorAlert {
    pub error_code: u32,
    pub state_transition: u32,
}

impl ErrorAlert {
    pub fn to_json(self) -> serde_json::Value {
        serde_json::json!({
            "code": error_code_name(self.error_code)
                .map_or_else(|| format!("0x{:08X}", self.error_code), str::to_owned),
            "value": self.error_code,
            "state_transition": state_transition_name(self.state_transition)
                .map_or_else(|| format!("0x{:08X}", self.state_transition), str::to_owned),
        })
    }
}

/// The Licensing Error Message in a licensing PDU, if it is one.
pub fn error_alert(pdu: &[u8]) -> Option<ErrorAlert> {
    if pdu.first() != Some(&ERROR_ALERT) {
        return None;
    }
    Some(ErrorAlert {
        error_code: read_u32_le(pdu, PREAMBLE_LEN)?,
        state_transition: read_u32_le(pdu, PREAMBLE_LEN + 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_alert_is_read_with_its_names() {
        let pdu = [0xFF, 0x03, 0x10, 0, 8, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0];
        let alert = error_alert(&pdu).unwrap();
        assert_eq!(
            alert,
            ErrorAlert {
                error_code: 8,
                state_transition: 1
            }
        );
        let json = alert.to_json();
        assert_eq!(json["code"], "ERR_INVALID_CLIENT");
        assert_eq!(json["state_transition"], "ST_TOTAL_ABORT");
        assert_eq!(error_alert(&pdu[..10]), None);
        assert_eq!(error_alert(&[0x02, 0, 0, 0]), None);
    }
}

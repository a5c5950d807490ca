//! Which ERRINFO_LICENSE_* code (MS-RDPBCGR 2.2.5.1.1) follows a refusal: the Licensing Error
//! Message says what the protocol needs, the Set Error Info PDU tells the user why.

use ironrdp_pdu::rdp::server_error_info::ProtocolIndependentLicensingCode as Code;
use rdpele_proto::machine::RefusalReason;
use rdpele_proto::wire::ErrorCode;

/// The licensing error-info code for a refusal sent with `error_code` for `reason`.
///
/// The error code alone is ambiguous (ERR_INVALID_CLIENT covers both "no CAL left for an
/// expired temporary one" and an expired permanent CAL), so the machine's reason decides
/// first where it says more.
pub fn license_error_info(error_code: ErrorCode, reason: Option<RefusalReason>) -> Code {
    match reason {
        Some(RefusalReason::MalformedMessage | RefusalReason::UnexpectedMessage) => {
            return Code::BadClientMsg
        }
        Some(
            RefusalReason::InvalidMac
            | RefusalReason::PremasterNotDecryptable
            | RefusalReason::ChallengeMismatch,
        ) => return Code::BadClientEncryption,
        Some(RefusalReason::HwidMismatch) => return Code::HwidDoesntMatchLicense,
        Some(RefusalReason::CorruptCal | RefusalReason::LicenseTooLarge) => {
            return Code::BadClientLicense
        }
        Some(RefusalReason::IssuerRefused) | None => {}
        // A reason this mapping does not know yet says nothing finer than the code.
        Some(_) => {}
    }
    match error_code {
        ErrorCode::ERR_NO_LICENSE_SERVER => Code::NoLicenseServer,
        ErrorCode::ERR_NO_LICENSE | ErrorCode::ERR_INVALID_CLIENT => Code::NoLicense,
        ErrorCode::ERR_INVALID_PRODUCTID => Code::CantUpgradeLicense,
        ErrorCode::ERR_INVALID_MAC => Code::BadClientEncryption,
        ErrorCode::ERR_INVALID_MESSAGE_LEN => Code::BadClientMsg,
        ErrorCode::ERR_INVALID_SCOPE | ErrorCode::ERR_INVALID_SERVER_CERTIFICATE => {
            Code::CantFinishProtocol
        }
        _ => Code::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_wins_over_the_code_where_it_is_finer() {
        assert_eq!(
            license_error_info(
                ErrorCode::ERR_INVALID_CLIENT,
                Some(RefusalReason::HwidMismatch)
            ),
            Code::HwidDoesntMatchLicense
        );
        assert_eq!(
            license_error_info(
                ErrorCode::ERR_INVALID_MESSAGE_LEN,
                Some(RefusalReason::MalformedMessage)
            ),
            Code::BadClientMsg
        );
        assert_eq!(
            license_error_info(ErrorCode::ERR_INVALID_MAC, Some(RefusalReason::InvalidMac)),
            Code::BadClientEncryption
        );
    }

    #[test]
    fn license_server_refusals_map_by_code() {
        let issuer = Some(RefusalReason::IssuerRefused);
        assert_eq!(
            license_error_info(ErrorCode::ERR_NO_LICENSE_SERVER, issuer),
            Code::NoLicenseServer
        );
        assert_eq!(
            license_error_info(ErrorCode::ERR_INVALID_CLIENT, issuer),
            Code::NoLicense
        );
        assert_eq!(
            license_error_info(ErrorCode::ERR_INVALID_PRODUCTID, issuer),
            Code::CantUpgradeLicense
        );
        assert_eq!(license_error_info(ErrorCode(0x99), None), Code::Internal);
    }
}

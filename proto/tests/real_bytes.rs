//! Every real capture decodes and re-encodes byte for byte, and its fields say what the capture
//! is known to hold.

use rdpele_proto::wire::*;

const LICENSE_REQUEST: &[u8] = include_bytes!("../../captures/server_license_request.bin");
const UPGRADE: &[u8] = include_bytes!("../../captures/server_upgrade_license.bin");
const NEW_LICENSE_INFO: &[u8] = include_bytes!("../../captures/new_license_info.bin");
const CAL: &[u8] = include_bytes!("../../captures/cal_temporary.p7b");
const XRDP_REQUEST: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_license_request.bin");
const XRDP_ALERT: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_error_alert.bin");
const XF_NLR: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_new_license_request.bin");
const XF_RESPONSE: &[u8] =
    include_bytes!("../../captures/xfreerdp-2.11.7_platform_challenge_response.bin");
const XF_INFO: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_license_info.bin");

/// The basic security header (4 bytes) the peer captures start with.
fn after_security_header(bytes: &[u8]) -> &[u8] {
    assert_eq!(bytes[0] & 0x80, 0x80, "SEC_LICENSE_PKT");
    &bytes[4..]
}

fn round_trip(bytes: &[u8]) -> LicensingPdu<'_> {
    let pdu = LicensingPdu::decode(bytes).unwrap();
    assert_eq!(pdu.encoded_len(), bytes.len());
    assert_eq!(pdu.to_vec().unwrap(), bytes);
    pdu
}

#[test]
fn windows_license_request() {
    let pdu = round_trip(LICENSE_REQUEST);
    let LicensingMessage::LicenseRequest(request) = pdu.message else {
        panic!("not a license request: {:?}", pdu.message)
    };
    assert_eq!(pdu.flags.version(), 3);
    assert_eq!(request.product_info.version, 0x0006_0000);
    assert_eq!(
        request.product_info.company_name.to_string_lossy(),
        "Microsoft Corporation"
    );
    assert_eq!(request.product_info.product_id.to_string_lossy(), "A02");
    let scopes: Vec<_> = request
        .scope_list
        .scopes
        .iter()
        .map(|s| s.name.to_string_lossy().into_owned())
        .collect();
    assert_eq!(scopes, ["microsoft.com"]);
    let certificate = request.server_certificate.certificate.unwrap();
    assert!(certificate.temporarily_issued);
    let CertificateChain::X509(chain) = certificate.chain else {
        panic!("not x509")
    };
    assert_eq!(chain.certificates.len(), 2);
    assert_eq!(chain.padding, [0u8; 16]);
    assert_eq!(chain.leaf().unwrap().der[0], 0x30);
}

#[test]
fn windows_new_license_named_upgrade() {
    let pdu = round_trip(after_security_header(UPGRADE));
    let LicensingMessage::NewLicense(license) = pdu.message else {
        panic!("{:?}", pdu.message)
    };
    assert_eq!(
        license.encrypted_license_info.blob_type,
        BlobType::BB_ENCRYPTED_DATA_BLOB
    );
    assert_eq!(
        license.encrypted_license_info.data.len(),
        NEW_LICENSE_INFO.len()
    );
}

#[test]
fn windows_new_license_info() {
    let info = NewLicenseInfo::decode(NEW_LICENSE_INFO).unwrap();
    assert_eq!(info.version, 0x0006_0000);
    assert_eq!(info.scope.to_string_lossy(), "microsoft.com");
    assert_eq!(info.company_name.to_string_lossy(), "Microsoft Corporation");
    assert_eq!(info.product_id.to_string_lossy(), "A02");
    assert_eq!(info.license_info, CAL);
    assert_eq!(info.to_vec().unwrap(), NEW_LICENSE_INFO);
}

#[test]
fn xrdp_license_request() {
    let pdu = round_trip(after_security_header(XRDP_REQUEST));
    assert_eq!(pdu.flags.version(), 2);
    let LicensingMessage::LicenseRequest(request) = pdu.message else {
        panic!()
    };
    assert_eq!(request.product_info.product_id.to_string_lossy(), "236");
    let CertificateChain::Proprietary(cert) = request.server_certificate.certificate.unwrap().chain
    else {
        panic!()
    };
    assert_eq!(cert.public_key.bit_len, 512);
    assert_eq!(cert.public_key.modulus.len(), 72);
    assert_eq!(cert.public_key.public_exponent, 0x10001);
    assert_eq!(cert.signature.len(), 72);
}

#[test]
fn xrdp_error_alert() {
    let pdu = round_trip(after_security_header(XRDP_ALERT));
    let LicensingMessage::ErrorAlert(alert) = pdu.message else {
        panic!()
    };
    assert_eq!(alert.error_code, ErrorCode::STATUS_VALID_CLIENT);
    assert_eq!(alert.state_transition, StateTransition::ST_NO_TRANSITION);
    assert_eq!(alert.error_info.blob_type, BlobType(0x1428));
}

#[test]
fn xfreerdp_client_messages() {
    let pdu = round_trip(after_security_header(XF_NLR));
    assert_eq!(pdu.flags.0, 0x83);
    let LicensingMessage::NewLicenseRequest(nlr) = pdu.message else {
        panic!()
    };
    assert_eq!(nlr.platform_id, 0x0401_0000);
    assert_eq!(nlr.encrypted_premaster_secret.data.len(), 72);
    assert_eq!(nlr.user_name().to_string_lossy(), "test");
    assert_eq!(nlr.machine_name().to_string_lossy(), "vm");

    let pdu = round_trip(after_security_header(XF_RESPONSE));
    let LicensingMessage::PlatformChallengeResponse(r) = pdu.message else {
        panic!()
    };
    assert_eq!(
        r.encrypted_platform_challenge_response.blob_type,
        BlobType::BB_ENCRYPTED_DATA_BLOB
    );
    assert_eq!(r.encrypted_hwid.data.len(), 20);

    let pdu = round_trip(after_security_header(XF_INFO));
    let LicensingMessage::LicenseInfo(info) = pdu.message else {
        panic!()
    };
    assert_eq!(info.license_info.blob_type, BlobType::BB_DATA_BLOB);
    assert_eq!(info.encrypted_hwid.data.len(), 20);
}

//! Every real capture decodes and re-encodes byte for byte, and its fields say what the capture
//! is known to hold.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

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

/// Decodes `bytes[at..at + len]` as `T` and checks it re-encodes to exactly that slice.
fn sub_structure<'a, T: Wire<'a> + core::fmt::Debug>(bytes: &'a [u8], at: usize, len: usize) -> T {
    let slice = &bytes[at..at + len];
    let value = T::decode(slice).unwrap_or_else(|e| panic!("{}: {e}", T::NAME));
    assert_eq!(
        value.to_vec().unwrap(),
        slice,
        "{} does not round-trip",
        T::NAME
    );
    value
}

#[test]
fn windows_license_request_sub_structures_round_trip_on_their_own() {
    let body = &LICENSE_REQUEST[4..];
    let product = sub_structure::<ProductInfo>(body, 32, 12 + 0x2c + 8);
    assert_eq!(product.product_id.to_string_lossy(), "A02");
    let at = 32 + product.encoded_len();
    let keys = sub_structure::<KeyExchangeList>(body, at, 8);
    let at = at + keys.encoded_len();
    let cert_blob = sub_structure::<ServerCertificateBlob>(body, at, 4 + 0x812);
    let certificate = sub_structure::<ServerCertificate>(body, at + 4, 0x812);
    assert_eq!(cert_blob.certificate.as_ref(), Some(&certificate));
    let chain = sub_structure::<X509CertificateChain>(body, at + 8, 0x812 - 4);
    let first = sub_structure::<CertBlob>(body, at + 12, 4 + 0x2f5);
    assert_eq!(chain.certificates.iter().next(), Some(first));
    let at = at + cert_blob.encoded_len();
    let scopes = sub_structure::<ScopeList>(body, at, body.len() - at);
    let scope = sub_structure::<Scope>(body, at + 4, body.len() - at - 4);
    assert_eq!(scopes.scopes.iter().collect::<Vec<_>>(), [scope]);
}

#[test]
fn xrdp_proprietary_certificate_round_trips_on_its_own() {
    let body = after_security_header(XRDP_REQUEST);
    // preamble 4, random 32, product info 12 + 0x2c + 8, key exchange list 8, blob header 4,
    // dwVersion 4.
    let at = 4 + 32 + 12 + 0x2c + 8 + 8 + 4 + 4;
    let cert = sub_structure::<ProprietaryCertificate>(body, at, 0xb8 - 4);
    let key = sub_structure::<RsaPublicKey>(body, at + 12, 0x5c);
    assert_eq!(cert.public_key, key);
    assert_eq!(cert.sig_alg_id, 1);
    assert_eq!(cert.public_key_blob_type, BlobType::BB_RSA_KEY_BLOB);
    assert_eq!(cert.signature_blob_type, BlobType::BB_RSA_SIGNATURE_BLOB);
}

#[test]
fn xfreerdp_blobs_round_trip_on_their_own() {
    let body = after_security_header(XF_NLR);
    let premaster = sub_structure::<LicenseBinaryBlob>(body, 4 + 40, 4 + 72);
    assert_eq!(premaster.blob_type, BlobType::BB_RANDOM_BLOB);
    let user = sub_structure::<LicenseBinaryBlob>(body, 4 + 40 + 76, 4 + 5);
    assert_eq!(
        (user.blob_type, user.data),
        (BlobType::BB_CLIENT_USER_NAME_BLOB, &b"test\0"[..])
    );
}

/// xfreerdp's clear-text HWID for client hostname "vm": LE32(0x04010000) then MD5("vm")
/// (FreeRDP's license.c; DESIGN §6).
#[test]
fn xfreerdp_hardware_id_layout() {
    let bytes = hex::decode("00000104686c821a80914aef822465b48019cd34").unwrap();
    let hwid = ClientHardwareId::decode(&bytes).unwrap();
    assert_eq!(hwid.platform_id, 0x0401_0000);
    assert_eq!(hex::encode(hwid.data), "686c821a80914aef822465b48019cd34");
    assert_eq!(hwid.to_vec().unwrap(), bytes);
    assert_eq!(ClientHardwareId::from_bytes(hwid.to_bytes()), hwid);
}

/// xfreerdp's clear-text challenge response: wVersion 0x0100, wClientType 0xFF00,
/// wLicenseDetailLevel 0x0003, then the challenge it decrypted: Windows' platform challenge
/// is "TEST" in UTF-16LE with its NUL (FreeRDP's license.c).
#[test]
fn xfreerdp_challenge_response_data_layout() {
    let bytes = hex::decode("000100ff03000a0054004500530054000000").unwrap();
    let data = PlatformChallengeResponseData::decode(&bytes).unwrap();
    assert_eq!(data.version, 0x0100);
    assert_eq!(data.client_type, ClientType::OTHER_PLATFORMCHALLENGE_TYPE);
    assert_eq!(
        data.license_detail_level,
        LicenseDetailLevel::LICENSE_DETAIL_DETAIL
    );
    assert_eq!(Utf16(data.challenge).to_string_lossy(), "TEST");
    assert_eq!(data.challenge.len(), 10);
    assert_eq!(data.to_vec().unwrap(), bytes);
}

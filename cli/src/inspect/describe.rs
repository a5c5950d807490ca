//! Licensing structures as JSON values: the one description both output forms of
//! `rdpele decode` are made from (`--json` prints it, the tree renderer indents it).
//!
//! Conventions the renderer and scripts rely on: byte strings are `{"length", "hex"}`, wire
//! code points are `{"value", "name"}` (name null when the spec has none), blobs are
//! `{"blob_type", "data"}`, decoded text is a plain string, times are RFC 3339 (UTC) strings.

use super::cal_view::CalSummary;
use rdpele_proto::cal::parse_cal;
use rdpele_proto::envelope::{LicensingFrame, SecurityHeader};
use rdpele_proto::wire::*;
use serde_json::{json, Value};

pub fn bytes(data: &[u8]) -> Value {
    json!({ "length": data.len(), "hex": hex::encode(data) })
}

fn code(value: impl Into<u64>, name: Option<&'static str>) -> Value {
    json!({ "value": value.into(), "name": name })
}

fn blob(blob: &LicenseBinaryBlob<'_>) -> Value {
    json!({ "blob_type": code(blob.blob_type.0, blob.blob_type.name()), "data": bytes(blob.data) })
}

pub fn licensing_pdu(pdu: &LicensingPdu<'_>, msg_size: usize) -> Value {
    json!({
        "message_type": pdu.message.structure_name(),
        "direction": direction(&pdu.message),
        "preamble": {
            "msg_type": code(pdu.message.message_type().0, pdu.message.message_type().name()),
            "flags": pdu.flags.0,
            "version": pdu.flags.version(),
            "extended_error_msg_supported": pdu.flags.extended_error_msg_supported(),
            "msg_size": msg_size,
        },
        "fields": message(&pdu.message),
    })
}

/// Who sends the message; error alerts go both ways.
fn direction(message: &LicensingMessage<'_>) -> &'static str {
    match message {
        LicensingMessage::ErrorAlert(_) => "either",
        m if m.sent_by_server() => "server_to_client",
        _ => "client_to_server",
    }
}

fn message(message: &LicensingMessage<'_>) -> Value {
    match message {
        LicensingMessage::LicenseRequest(m) => license_request(m),
        LicensingMessage::PlatformChallenge(m) => json!({
            "connect_flags": m.connect_flags,
            "encrypted_platform_challenge": blob(&m.encrypted_platform_challenge),
            "mac_data": bytes(&m.mac_data),
        }),
        LicensingMessage::NewLicense(m) => server_license(m),
        LicensingMessage::UpgradeLicense(m) => server_license(m),
        LicensingMessage::LicenseInfo(m) => json!({
            "preferred_key_exchange_alg": m.preferred_key_exchange_alg,
            "platform_id": m.platform_id,
            "client_random": bytes(&m.client_random),
            "encrypted_premaster_secret": blob(&m.encrypted_premaster_secret),
            "license_info": blob(&m.license_info),
            "encrypted_hwid": blob(&m.encrypted_hwid),
            "mac_data": bytes(&m.mac_data),
        }),
        LicensingMessage::NewLicenseRequest(m) => json!({
            "preferred_key_exchange_alg": m.preferred_key_exchange_alg,
            "platform_id": m.platform_id,
            "client_random": bytes(&m.client_random),
            "encrypted_premaster_secret": blob(&m.encrypted_premaster_secret),
            "client_user_name": blob(&m.client_user_name),
            "user_name": m.user_name().to_string_lossy(),
            "client_machine_name": blob(&m.client_machine_name),
            "machine_name": m.machine_name().to_string_lossy(),
        }),
        LicensingMessage::PlatformChallengeResponse(m) => json!({
            "encrypted_platform_challenge_response": blob(&m.encrypted_platform_challenge_response),
            "encrypted_hwid": blob(&m.encrypted_hwid),
            "mac_data": bytes(&m.mac_data),
        }),
        LicensingMessage::ErrorAlert(m) => json!({
            "error_code": code(m.error_code.0, m.error_code.name()),
            "state_transition": code(m.state_transition.0, m.state_transition.name()),
            "error_info": blob(&m.error_info),
        }),
    }
}

fn server_license<const UPGRADE: bool>(m: &ServerLicense<'_, UPGRADE>) -> Value {
    json!({
        "encrypted_license_info": blob(&m.encrypted_license_info),
        "mac_data": bytes(&m.mac_data),
    })
}

fn license_request(m: &ServerLicenseRequest<'_>) -> Value {
    json!({
        "server_random": bytes(&m.server_random),
        "product_info": {
            "version": m.product_info.version,
            "company_name": m.product_info.company_name.to_string_lossy(),
            "product_id": m.product_info.product_id.to_string_lossy(),
        },
        "key_exchange_list": {
            "blob_type": code(m.key_exchange_list.blob_type.0, m.key_exchange_list.blob_type.name()),
            "algorithms": m.key_exchange_list.algorithms().collect::<Vec<_>>(),
        },
        "server_certificate": {
            "blob_type": code(m.server_certificate.blob_type.0, m.server_certificate.blob_type.name()),
            "certificate": m.server_certificate.certificate.as_ref().map(server_certificate),
        },
        "scope_list": m.scope_list.scopes.iter().map(|scope| json!({
            "blob_type": code(scope.blob_type.0, scope.blob_type.name()),
            "name": scope.name.to_string_lossy(),
        })).collect::<Vec<_>>(),
    })
}

pub fn server_certificate(certificate: &ServerCertificate<'_>) -> Value {
    let body = match &certificate.chain {
        CertificateChain::Proprietary(cert) => json!({
            "kind": "proprietary",
            "sig_alg_id": cert.sig_alg_id,
            "key_alg_id": cert.key_alg_id,
            "public_key": {
                "blob_type": code(cert.public_key_blob_type.0, cert.public_key_blob_type.name()),
                "bit_len": cert.public_key.bit_len,
                "data_len": cert.public_key.data_len,
                "public_exponent": cert.public_key.public_exponent,
                "modulus": bytes(cert.public_key.modulus),
            },
            "signature": {
                "blob_type": code(cert.signature_blob_type.0, cert.signature_blob_type.name()),
                "data": bytes(cert.signature),
            },
        }),
        CertificateChain::X509(chain) => json!({
            "kind": "x509",
            "certificates": chain.certificates.iter().map(|c| bytes(c.der)).collect::<Vec<_>>(),
            "padding": bytes(chain.padding),
        }),
    };
    json!({ "temporarily_issued": certificate.temporarily_issued, "chain": body })
}

pub fn new_license_info(info: &NewLicenseInfo<'_>) -> Value {
    json!({
        "message_type": NewLicenseInfo::NAME,
        "fields": new_license_info_fields(info),
    })
}

/// NEW_LICENSE_INFO's fields, and what the CAL in `pbLicenseInfo` says.
pub fn new_license_info_fields(info: &NewLicenseInfo<'_>) -> Value {
    json!({
        "version": info.version,
        "scope": info.scope.to_string_lossy(),
        "company_name": info.company_name.to_string_lossy(),
        "product_id": info.product_id.to_string_lossy(),
        "license_info": bytes(info.license_info),
        "cal": cal(info.license_info),
    })
}

/// Who and what a CAL (a certs-only PKCS#7, MS-RDPELE 2.2.2.9) licenses, read as `rdpele cal
/// inspect` reads it; `{"error": …}` saying why when it cannot be read.
pub fn cal(der: &[u8]) -> Value {
    let cal = match parse_cal(der) {
        Ok(cal) => cal,
        Err(error) => return json!({ "error": error.to_string() }),
    };
    json!(CalSummary::of(&cal))
}

/// CLIENT_HARDWARE_ID (MS-RDPELE 2.2.2.3.1).
pub fn hardware_id(hwid: &ClientHardwareId) -> Value {
    json!({ "platform_id": hwid.platform_id, "data": bytes(&hwid.data) })
}

/// PLATFORM_CHALLENGE_RESPONSE_DATA (MS-RDPELE 2.2.2.5.1).
pub fn platform_challenge_response_data(data: &PlatformChallengeResponseData<'_>) -> Value {
    let mut value = json!({
        "version": data.version,
        "client_type": code(data.client_type.0, data.client_type.name()),
        "license_detail_level": code(data.license_detail_level.0, data.license_detail_level.name()),
        "challenge": bytes(data.challenge),
    });
    if let (Some(text), Value::Object(map)) = (utf16_text(data.challenge), &mut value) {
        map.insert("challenge_text".into(), text.into());
    }
    value
}

/// The text of a NUL-terminated UTF-16LE string without other NULs or control characters (the
/// platform challenge Windows sends is "TEST"); `None` for anything else, such as random bytes.
pub fn utf16_text(data: &[u8]) -> Option<String> {
    let (units, rest) = data.as_chunks::<2>();
    let (last, text) = units.split_last()?;
    if !rest.is_empty() || *last != [0, 0] || text.is_empty() {
        return None;
    }
    let text = char::decode_utf16(text.iter().map(|pair| u16::from_le_bytes(*pair)))
        .collect::<Result<String, _>>()
        .ok()?;
    (!text.chars().any(char::is_control)).then_some(text)
}

pub fn security_header(header: &SecurityHeader) -> Value {
    let names: Vec<&str> = header.flags.names().collect();
    json!({
        "flags": { "value": header.flags.0, "name": names.join(" | ") },
        "flags_hi": header.flags_hi,
    })
}

/// The TPKT, X.224 and MCS layers of a licensing frame.
pub fn frame_layers(frame: &LicensingFrame<'_>) -> Value {
    json!({
        "tpkt_reserved": frame.tpkt_reserved,
        "x224_eot": frame.x224_eot,
        "mcs": {
            "pdu": frame.direction.structure_name(),
            "initiator": frame.initiator,
            "channel_id": frame.channel_id,
            "flags": frame.mcs_flags,
            "long_length": frame.long_length,
        },
    })
}

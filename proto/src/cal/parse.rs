//! Reading a CAL: the envelope with [`super::pkcs7`], each certificate with x509-parser, the
//! licensing extensions with [`super::extensions`].

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::der_parser::asn1_rs::Any;
use x509_parser::nom::Parser as _;
use x509_parser::x509::X509Name;

use super::certificate::oid;
use super::error::{CalError, MalformedKind};
use super::extensions::{parse_cert_version, parse_manufacturer, LicenseServer, LicensedProduct};
use super::hwid::{decode_hwid, parse_serial_number_attribute};
use super::{pkcs7, Cal, CalKind, CalType, CertificateSummary, ClientLicense, ExtensionSummary};

const CLIENT_LICENSE: &str = "ClientLicense";

/// Reads a CAL: the certs-only PKCS#7 SignedData (DER) a Windows license server issues, as it
/// travels in `pbLicenseInfo` and as FreeRDP stores it in its `.cal` files.
pub fn parse_cal(der: &[u8]) -> Result<Cal, CalError> {
    let elements = pkcs7::certificates(der)?;
    let mut certificates = Vec::with_capacity(elements.len());
    for element in &elements {
        let (rest, certificate) = X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(element.raw)
            .map_err(|error| {
                CalError::malformed(
                    "Certificate",
                    "tbsCertificate",
                    element.start,
                    MalformedKind::X509(error.to_string()),
                )
            })?;
        if !rest.is_empty() {
            return Err(CalError::malformed(
                "Certificate",
                "signatureValue",
                offset_in(der, rest),
                MalformedKind::TrailingBytes { count: rest.len() },
            ));
        }
        certificates.push((element.start, certificate));
    }

    let mut licenses = certificates.iter().filter(|(_, certificate)| {
        find_extension(certificate, &oid::LICENSED_PRODUCT_INFO).is_some()
    });
    let Some((client_at, client)) = licenses.next() else {
        return Err(CalError::malformed(
            "SignedData",
            "certificates",
            elements.first().map_or(0, |element| element.start),
            MalformedKind::Malformed("no certificate carries LICENSED_PRODUCT_INFO"),
        ));
    };
    if let Some((second_at, _)) = licenses.next() {
        return Err(CalError::malformed(
            "SignedData",
            "certificates",
            *second_at,
            MalformedKind::Malformed("more than one client license"),
        ));
    }
    let client_at = *client_at;

    let extension = |extension_oid| {
        find_extension(client, extension_oid).map(|value| (value, offset_in(der, value)))
    };
    let (product, _) = extension(&oid::LICENSED_PRODUCT_INFO)
        .map(|(value, at)| LicensedProduct::parse(value, at).map(|product| (product, at)))
        .ok_or_else(|| missing("LICENSED_PRODUCT_INFO", client_at))??;
    let license_server = extension(&oid::MS_LICENSE_SERVER_INFO)
        .map(|(value, at)| LicenseServer::parse(value, at))
        .ok_or_else(|| missing("MS_LICENSE_SERVER_INFO", client_at))??;
    let hydra_cert_version = extension(&oid::HYDRA_CERT_VERSION)
        .map(|(value, at)| parse_cert_version(value, at))
        .transpose()?;
    let manufacturer = extension(&oid::MANUFACTURER)
        .map(|(value, at)| parse_manufacturer(value, at))
        .transpose()?;
    let ms_18_9 = extension(&oid::MS_18_9).map(|(value, _)| value.to_vec());

    let client_license = client_license(der, client_at, client)?;
    Ok(Cal {
        kind: CalKind::of(&product),
        cal_type: CalType::of(&product),
        license_server,
        client_license,
        product,
        hydra_cert_version,
        manufacturer,
        ms_18_9,
        certificates: certificates
            .iter()
            .map(|(at, certificate)| CertificateSummary {
                offset: *at,
                subject: render_name(certificate.subject()),
                issuer: render_name(certificate.issuer()),
                serial_number: certificate.raw_serial().to_vec(),
            })
            .collect(),
    })
}

fn missing(structure: &'static str, at: usize) -> CalError {
    CalError::malformed(CLIENT_LICENSE, structure, at, MalformedKind::Missing)
}

fn client_license(
    der: &[u8],
    at: usize,
    certificate: &X509Certificate<'_>,
) -> Result<ClientLicense, CalError> {
    let tbs = &certificate.tbs_certificate;
    let subject_at = offset_in(der, tbs.subject.as_raw());
    let attribute = |attribute_oid: &der::asn1::ObjectIdentifier, field: &'static str| {
        let value = tbs
            .subject
            .iter_attributes()
            .find(|attribute| attribute.attr_type().as_bytes() == attribute_oid.as_bytes())
            .map(|attribute| attribute.attr_value())
            .ok_or_else(|| {
                CalError::malformed(CLIENT_LICENSE, field, subject_at, MalformedKind::Missing)
            })?;
        directory_string(value).map_err(|kind| {
            CalError::malformed(CLIENT_LICENSE, field, offset_in(der, value.data), kind)
        })
    };
    let machine = attribute(&oid::COMMON_NAME, "subject.commonName")?;
    let user = attribute(&oid::LOCALITY, "subject.localityName")?;
    let serial_text = attribute(&oid::SERIAL_NUMBER, "subject.serialNumber")?;
    let encoded_hwid = parse_serial_number_attribute(&serial_text).map_err(|reason| {
        CalError::malformed(
            CLIENT_LICENSE,
            "subject.serialNumber",
            subject_at,
            MalformedKind::InvalidText(reason),
        )
    })?;
    let time = |asn1_time: &x509_parser::time::ASN1Time, field: &'static str| {
        system_time(asn1_time.timestamp()).ok_or_else(|| {
            CalError::malformed(
                CLIENT_LICENSE,
                field,
                at,
                MalformedKind::UnsupportedValue {
                    value: u64::try_from(asn1_time.timestamp()).unwrap_or(0),
                },
            )
        })
    };
    Ok(ClientLicense {
        machine,
        user,
        hwid: decode_hwid(&encoded_hwid),
        encoded_hwid,
        not_before: time(&tbs.validity.not_before, "validity.notBefore")?,
        not_after: time(&tbs.validity.not_after, "validity.notAfter")?,
        serial_number: tbs.raw_serial().to_vec(),
        issuer: render_name(&tbs.issuer),
        extensions: tbs
            .extensions()
            .iter()
            .map(|extension| ExtensionSummary {
                oid: extension.oid.to_id_string(),
                critical: extension.critical,
            })
            .collect(),
    })
}

fn find_extension<'a>(
    certificate: &X509Certificate<'a>,
    extension_oid: &der::asn1::ObjectIdentifier,
) -> Option<&'a [u8]> {
    certificate
        .tbs_certificate
        .extensions()
        .iter()
        .find(|extension| extension.oid.as_bytes() == extension_oid.as_bytes())
        .map(|extension| extension.value)
}

/// The text of a directory string: BMPString (UTF-16BE, as Windows writes every CAL name),
/// UTF8String, PrintableString, IA5String, VisibleString or TeletexString (read as Latin-1).
pub(crate) fn directory_string(value: &Any<'_>) -> Result<String, MalformedKind> {
    let data = value.data;
    match value.tag().0 {
        30 => {
            if !data.len().is_multiple_of(2) {
                return Err(MalformedKind::InvalidText("odd length for BMPString"));
            }
            let units = data.chunks_exact(2).map(|unit| match unit {
                [high, low] => u16::from_be_bytes([*high, *low]),
                _ => 0,
            });
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .map_err(|_| MalformedKind::InvalidText("lone UTF-16 surrogate"))
        }
        12 | 19 | 22 | 26 => {
            String::from_utf8(data.to_vec()).map_err(|_| MalformedKind::InvalidText("not UTF-8"))
        }
        20 => Ok(data.iter().copied().map(char::from).collect()),
        other => Err(MalformedKind::UnsupportedValue {
            value: u64::from(other),
        }),
    }
}

/// A name as one line: RDNs in encoded order joined by ", ", the attributes of a multi-valued
/// RDN joined by "+", values decoded (undecodable ones as `#hex`).
pub(crate) fn render_name(name: &X509Name<'_>) -> String {
    // Written into one string: the session host reads a CAL (and renders its nine names) on
    // every connection that presents one.
    let mut text = String::new();
    for (index, rdn) in name.iter_rdn().enumerate() {
        if index > 0 {
            text.push_str(", ");
        }
        for (position, attribute) in rdn.iter().enumerate() {
            if position > 0 {
                text.push('+');
            }
            let oid = attribute.attr_type();
            match attribute_label(oid.as_bytes()) {
                Some(label) => text.push_str(label),
                None => text.push_str(&oid.to_id_string()),
            }
            text.push('=');
            match directory_string(attribute.attr_value()) {
                Ok(value) => text.push_str(&value),
                Err(_) => {
                    text.push('#');
                    for byte in attribute.attr_value().data {
                        // Writing into a String cannot fail.
                        let _ = write!(text, "{byte:02x}");
                    }
                }
            }
        }
    }
    text
}

/// The short name of an X.520 attribute type (2.5.4.x, DER content bytes 55 04 x).
fn attribute_label(oid: &[u8]) -> Option<&'static str> {
    match oid {
        [0x55, 0x04, 3] => Some("CN"),
        [0x55, 0x04, 5] => Some("serialNumber"),
        [0x55, 0x04, 6] => Some("C"),
        [0x55, 0x04, 7] => Some("L"),
        [0x55, 0x04, 8] => Some("ST"),
        [0x55, 0x04, 10] => Some("O"),
        [0x55, 0x04, 11] => Some("OU"),
        _ => None,
    }
}

/// `seconds` since the Unix epoch (negative: before it) as a `SystemTime`.
fn system_time(seconds: i64) -> Option<SystemTime> {
    let magnitude = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

/// Offset of `part` inside `whole` (both from the same input); the end of `whole` if `part` is
/// not inside it.
pub(crate) fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr()
        .addr()
        .checked_sub(whole.as_ptr().addr())
        .filter(|offset| *offset <= whole.len())
        .unwrap_or(whole.len())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use x509_parser::prelude::FromDer;

    use super::*;

    /// RDNs joined by ", ", a multi-valued RDN's attributes by "+", known types by their short
    /// names, others by dotted OID, and a value that is no directory string as "#" and hex.
    #[test]
    fn a_name_renders_with_labels_oids_and_hex() {
        let name = [
            0x30, 0x2c, // Name
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x03, // { CN
            0x1e, 0x02, 0x00, b'A', // BMPString "A" }
            0x31, 0x1d, // {
            0x30, 0x08, 0x06, 0x03, 0x55, 0x04, 0x0a, 0x0c, 0x01, b'B', // O UTF8String "B",
            0x30, 0x08, 0x06, 0x02, 0x2a, 0x03, 0x02, 0x02, 0x1f, 0xa0, // 1.2.3 INTEGER,
            0x30, 0x07, 0x06, 0x03, 0x55, 0x04, 0x63, 0x13, 0x00, // 2.5.4.99 "" }
        ];
        let (rest, name) = X509Name::from_der(&name).unwrap();
        assert!(rest.is_empty());
        assert_eq!(render_name(&name), "CN=A, O=B+1.2.3=#1fa0+2.5.4.99=");
    }
}

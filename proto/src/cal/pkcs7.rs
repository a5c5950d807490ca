//! Reading the certs-only PKCS#7 SignedData envelope (RFC 2315 / RFC 5652) down to its
//! certificates. Writing it is [`super::certificate::certs_only_signed_data`].

use super::certificate::oid;
use super::der_reader::{tag, DerReader, Tlv};
use super::error::{CalError, MalformedKind};

/// Largest CAL accepted: Windows' are 2–5 KB.
pub const MAX_CAL_LEN: usize = 1 << 20;
/// Most certificates accepted in one CAL: Windows sends 2 (self-signed license server) or 4
/// (activated license server: Microsoft root, intermediate, license server, client license).
pub const MAX_CERTIFICATES: usize = 16;

/// The certificates of a certs-only SignedData, in the order they appear, each as its whole DER
/// element with its offset in `der`.
pub(crate) fn certificates(der: &[u8]) -> Result<Vec<Tlv<'_>>, CalError> {
    if der.len() > MAX_CAL_LEN {
        return Err(CalError::malformed(
            "CAL",
            "length",
            0,
            MalformedKind::TooLarge {
                length: u64::try_from(der.len()).unwrap_or(u64::MAX),
                max: u64::try_from(MAX_CAL_LEN).unwrap_or(u64::MAX),
            },
        ));
    }
    let mut top = DerReader::new(der, "CAL");
    let content_info = top.expect(tag::SEQUENCE, "ContentInfo")?;
    top.finish("ContentInfo")?;

    let mut fields = DerReader::nested(&content_info, "ContentInfo");
    let content_type = fields.expect(tag::OBJECT_IDENTIFIER, "contentType")?;
    if content_type.value != oid::SIGNED_DATA.as_bytes() {
        return Err(CalError::malformed(
            "ContentInfo",
            "contentType",
            content_type.start,
            MalformedKind::Malformed("not signedData (1.2.840.113549.1.7.2)"),
        ));
    }
    let explicit = fields.expect(tag::CONTEXT_0, "content")?;
    fields.finish("content")?;
    let mut wrapper = DerReader::nested(&explicit, "ContentInfo");
    let signed_data = wrapper.expect(tag::SEQUENCE, "content")?;
    wrapper.finish("content")?;

    let mut fields = DerReader::nested(&signed_data, "SignedData");
    fields.expect(tag::INTEGER, "version")?;
    fields.expect(tag::SET, "digestAlgorithms")?;
    fields.expect(tag::SEQUENCE, "encapContentInfo")?;
    let certificates_at = fields.offset();
    let certificate_set = fields.optional(tag::CONTEXT_0, "certificates")?;
    fields.optional(tag::CONTEXT_1, "crls")?;
    if !fields.is_empty() {
        fields.expect(tag::SET, "signerInfos")?;
    }
    fields.finish("signerInfos")?;
    let Some(certificate_set) = certificate_set else {
        return Err(CalError::malformed(
            "SignedData",
            "certificates",
            certificates_at,
            MalformedKind::Missing,
        ));
    };

    let mut reader = DerReader::nested(&certificate_set, "SignedData");
    let mut certificates = Vec::new();
    while !reader.is_empty() {
        if certificates.len() >= MAX_CERTIFICATES {
            return Err(CalError::malformed(
                "SignedData",
                "certificates",
                reader.offset(),
                MalformedKind::TooMany {
                    count: u64::try_from(certificates.len())
                        .unwrap_or(u64::MAX)
                        .saturating_add(1),
                    max: u64::try_from(MAX_CERTIFICATES).unwrap_or(u64::MAX),
                },
            ));
        }
        certificates.push(reader.expect(tag::SEQUENCE, "certificates")?);
    }
    Ok(certificates)
}

//! The X.509 and PKCS#7 structures a CAL is made of, as DER values built with the RustCrypto
//! `der` / `x509-cert` types: certificates with Windows' choices (OIW sha1RSA, BMPString names,
//! multi-valued RDNs; sha256WithRSA and PrintableString names in an activated server's chain)
//! and the certs-only SignedData around them.

use der::asn1::{Any, BitString, Null, ObjectIdentifier, OctetString, PrintableStringRef};
use der::{Encode, Sequence, Tag, TagNumber};
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::ext::Extension;
use x509_cert::name::{RdnSequence, RelativeDistinguishedName};
use x509_cert::spki::AlgorithmIdentifierOwned;
use x509_cert::time::Validity;

use super::error::CalError;
use crate::crypto::LicensingPrivateKey;

/// Object identifiers a CAL uses.
pub mod oid {
    use der::asn1::ObjectIdentifier;

    /// OID_OIWSEC_sha1RSASign: the signature algorithm of every CAL certificate (MS-RDPELE
    /// 2.2.2.9), with NULL parameters.
    pub const SHA1_RSA_OIW: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.29");
    /// sha256WithRSAEncryption (RFC 4055): how an activated server's chain is signed.
    pub const SHA256_WITH_RSA: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
    pub const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
    pub const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
    pub const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
    pub const SERIAL_NUMBER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.5");
    pub const LOCALITY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.7");
    pub const COUNTRY: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
    pub const STATE_OR_PROVINCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.8");
    pub const ORGANIZATION: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.10");
    pub const SUBJECT_KEY_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
    pub const KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
    pub const BASIC_CONSTRAINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.19");
    pub const CRL_DISTRIBUTION_POINTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.31");
    pub const AUTHORITY_KEY_IDENTIFIER: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("2.5.29.35");
    pub const EXTENDED_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.37");
    pub const AUTHORITY_INFO_ACCESS: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.1");
    /// id-ad-caIssuers (RFC 5280 4.2.2.1).
    pub const CA_ISSUERS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.2");
    /// szOID_CERTSRV_CA_VERSION: the CA certificate's renewal and key index; `02 01 00` (0) on
    /// the 2019 sample's root (captures/windows2019_cal_temporary.p7b, offset 1018).
    pub const CA_VERSION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.21.1");
    /// The extended key usage of the 2019 sample's intermediate CA (offset 2139); not
    /// documented.
    pub const LICENSE_SERVER_ISSUANCE_USAGE: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.76.2.1");
    /// The root of the licensing ("Hydra") arc the client license's extensions sit under; the
    /// 2019 sample's license server certificate carries it as an extension holding the
    /// IA5String "TLS~BASIC" (offset 3639; meaning not documented).
    pub const HYDRA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18");
    /// szOID_PKIX_MANUFACTURER.
    pub const MANUFACTURER: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18.2");
    /// szOID_PKIX_HYDRA_CERT_VERSION.
    pub const HYDRA_CERT_VERSION: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18.4");
    /// szOID_PKIX_LICENSED_PRODUCT_INFO.
    pub const LICENSED_PRODUCT_INFO: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18.5");
    /// szOID_PKIX_MS_LICENSE_SERVER_INFO.
    pub const MS_LICENSE_SERVER_INFO: ObjectIdentifier =
        ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18.6");
    /// Undocumented; 4 bytes (`07 00 00 00`) in the Windows Server 2019 sample only.
    pub const MS_18_9: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.18.9");
}

/// TBSCertificate (RFC 5280 4.1) with the name and key fields kept as encoded DER, so that the
/// issuer name and the public key are copied from the license server's certificate byte for
/// byte.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub(crate) struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    pub version: u8,
    /// The serial number: an INTEGER.
    pub serial_number: Any,
    pub signature: AlgorithmIdentifierOwned,
    pub issuer: Any,
    pub validity: Validity,
    pub subject: Any,
    pub subject_public_key_info: Any,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT", optional = "true")]
    pub extensions: Option<Vec<Extension>>,
}

/// Certificate (RFC 5280 4.1) around an already encoded TBSCertificate: the signed bytes are
/// the bytes sent.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
struct Certificate {
    tbs_certificate: Any,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// Version 3, as the `version` field carries it.
pub(crate) const X509_V3: u8 = 2;

pub(crate) fn sha1_rsa_oiw() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SHA1_RSA_OIW,
        parameters: Some(Any::from(Null)),
    }
}

/// sha256WithRSAEncryption with NULL parameters, as the 2019 sample's chain writes it
/// (captures/windows2019_cal_temporary.p7b, offset 76).
pub(crate) fn sha256_with_rsa() -> AlgorithmIdentifierOwned {
    AlgorithmIdentifierOwned {
        oid: oid::SHA256_WITH_RSA,
        parameters: Some(Any::from(Null)),
    }
}

/// A BMPString holding `text` as UTF-16 (big-endian; surrogate pairs pass through as Windows
/// writes them).
pub(crate) fn bmp_string(text: &str) -> Result<Any, CalError> {
    let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    Any::new(Tag::BmpString, bytes).map_err(|error| CalError::encoding("BMPString", &error))
}

/// A name of one multi-valued RDN, the way Windows writes CAL names (`CN=x+L=y`). The SET OF
/// is sorted as DER requires; both samples' attribute order is that order.
pub(crate) fn single_rdn_name(attributes: &[(ObjectIdentifier, &str)]) -> Result<Any, CalError> {
    let attributes = attributes
        .iter()
        .map(|(oid, text)| {
            Ok(AttributeTypeAndValue {
                oid: *oid,
                value: bmp_string(text)?,
            })
        })
        .collect::<Result<Vec<_>, CalError>>()?;
    let rdn = RelativeDistinguishedName::try_from(attributes)
        .map_err(|error| CalError::encoding("RelativeDistinguishedName", &error))?;
    let mut name = RdnSequence::default();
    name.push(rdn);
    let der = name
        .to_der()
        .map_err(|error| CalError::encoding("Name", &error))?;
    Any::from_der_bytes(&der, "Name")
}

/// A name of one single-valued RDN per attribute, in the order given, each value a
/// PrintableString: the shape of every name in the 2019 sample's chain (`C=US, ST=…, CN=…` and
/// `CN=Becker`). A value PrintableString cannot hold (an `_`, `@`, non-ASCII) is written as a
/// UTF8String, RFC 5280's default for new names: no Windows sample shows what Windows writes
/// then.
pub(crate) fn printable_name(attributes: &[(ObjectIdentifier, &str)]) -> Result<Any, CalError> {
    let mut name = RdnSequence::default();
    for (oid, text) in attributes {
        let tag = if PrintableStringRef::new(text).is_ok() {
            Tag::PrintableString
        } else {
            Tag::Utf8String
        };
        let value = Any::new(tag, text.as_bytes())
            .map_err(|error| CalError::encoding("DirectoryString", &error))?;
        let rdn =
            RelativeDistinguishedName::try_from(vec![AttributeTypeAndValue { oid: *oid, value }])
                .map_err(|error| CalError::encoding("RelativeDistinguishedName", &error))?;
        name.push(rdn);
    }
    let der = name
        .to_der()
        .map_err(|error| CalError::encoding("Name", &error))?;
    Any::from_der_bytes(&der, "Name")
}

/// The content octets of the DER INTEGER for `value` (minimal, positive).
pub(crate) fn integer_content(value: u64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes
        .iter()
        .take(bytes.len().saturating_sub(1))
        .take_while(|byte| **byte == 0)
        .count();
    let digits = bytes.get(skip..).unwrap_or(&[]);
    let mut content = Vec::with_capacity(digits.len().saturating_add(1));
    if digits.first().is_some_and(|byte| *byte & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(digits);
    content
}

pub(crate) fn integer(content: &[u8]) -> Result<Any, CalError> {
    Any::new(Tag::Integer, content.to_vec()).map_err(|error| CalError::encoding("INTEGER", &error))
}

/// An extension with a DER-encoded or raw value.
pub(crate) fn extension(
    extn_id: ObjectIdentifier,
    critical: bool,
    value: Vec<u8>,
) -> Result<Extension, CalError> {
    Ok(Extension {
        extn_id,
        critical,
        extn_value: OctetString::new(value)
            .map_err(|error| CalError::encoding("Extension", &error))?,
    })
}

/// The authority key identifier Windows puts in a client license. Not RFC 5280: the
/// `directoryName` holds the license server's name as NUL-terminated UTF-16LE text instead of a
/// Name, and `authorityCertSerialNumber` holds the serial number of the client license itself.
///
/// `SEQUENCE { [1] { [4] { <name UTF-16LE + NUL> } }, [2] <serial INTEGER content> }`
pub(crate) fn windows_authority_key_identifier(
    license_server_name_utf16z: Vec<u8>,
    serial_content: &[u8],
) -> Result<Vec<u8>, CalError> {
    let constructed = |number: u32, content: Vec<u8>| {
        Any::new(
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(number),
            },
            content,
        )
    };
    let build = || -> der::Result<Vec<u8>> {
        let directory_name = constructed(4, license_server_name_utf16z)?;
        let general_names = constructed(1, directory_name.to_der()?)?;
        let serial = Any::new(
            Tag::ContextSpecific {
                constructed: false,
                number: TagNumber(2),
            },
            serial_content.to_vec(),
        )?;
        let mut content = general_names.to_der()?;
        content.extend(serial.to_der()?);
        Any::new(Tag::Sequence, content)?.to_der()
    };
    build().map_err(|error| CalError::encoding("AuthorityKeyIdentifier", &error))
}

/// Encodes `tbs`, signs it with RSA PKCS#1 v1.5 on `key`'s backend with the hash its
/// `signature` field names (OIW sha1RSA or sha256WithRSAEncryption) and returns the
/// certificate's DER.
pub(crate) fn sign_certificate(
    tbs: &TbsCertificate,
    key: &LicensingPrivateKey,
    structure: &'static str,
) -> Result<Vec<u8>, CalError> {
    let tbs_der = tbs
        .to_der()
        .map_err(|error| CalError::encoding(structure, &error))?;
    let algorithm = tbs.signature.oid;
    let signed = if algorithm == oid::SHA1_RSA_OIW {
        key.sign_sha1(&tbs_der)
    } else if algorithm == oid::SHA256_WITH_RSA {
        key.sign_sha256(&tbs_der)
    } else {
        return Err(CalError::InvalidInput {
            field: "signature",
            reason: format!("no signing with algorithm {algorithm}"),
        });
    };
    let signature = signed.map_err(|error| CalError::Signing {
        structure,
        reason: error.to_string(),
    })?;
    let certificate = Certificate {
        tbs_certificate: Any::from_der_bytes(&tbs_der, structure)?,
        signature_algorithm: tbs.signature.clone(),
        signature: BitString::from_bytes(&signature)
            .map_err(|error| CalError::encoding(structure, &error))?,
    };
    certificate
        .to_der()
        .map_err(|error| CalError::encoding(structure, &error))
}

/// A certs-only PKCS#7 SignedData (RFC 2315 / RFC 5652) holding `certificates` in the order
/// given: chain order, the client license last, as Windows writes them. A DER `SET OF` would be
/// sorted; Windows' is not (the 2019 sample's is not in sorted order), so the `[0] IMPLICIT`
/// set is written in order rather than through a sorting `SetOfVec`.
///
/// ```text
/// ContentInfo { signedData, [0] EXPLICIT SignedData {
///     version 1, digestAlgorithms {}, encapContentInfo { data },
///     certificates [0] IMPLICIT { ... }, signerInfos {} } }
/// ```
pub(crate) fn certs_only_signed_data(certificates: &[&[u8]]) -> Result<Vec<u8>, CalError> {
    let build = || -> der::Result<Vec<u8>> {
        let empty_set = Any::new(Tag::Set, Vec::new())?.to_der()?;
        let encap_content_info = Any::new(Tag::Sequence, oid::DATA.to_der()?)?.to_der()?;
        let certificate_set = Any::new(
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            },
            certificates.concat(),
        )?
        .to_der()?;
        let signed_data = Any::new(
            Tag::Sequence,
            [
                1u8.to_der()?,
                empty_set.clone(),
                encap_content_info,
                certificate_set,
                empty_set,
            ]
            .concat(),
        )?;
        let content = Any::new(
            Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            },
            signed_data.to_der()?,
        )?;
        Any::new(
            Tag::Sequence,
            [oid::SIGNED_DATA.to_der()?, content.to_der()?].concat(),
        )?
        .to_der()
    };
    build().map_err(|error| CalError::encoding("ContentInfo", &error))
}

/// Decoding an `Any` from DER we made ourselves (or a caller's certificate field).
trait FromDerBytes: Sized {
    fn from_der_bytes(der: &[u8], structure: &'static str) -> Result<Self, CalError>;
}

impl FromDerBytes for Any {
    fn from_der_bytes(der: &[u8], structure: &'static str) -> Result<Self, CalError> {
        <Any as der::Decode>::from_der(der).map_err(|error| CalError::encoding(structure, &error))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn integer_content_is_minimal_and_positive() {
        assert_eq!(integer_content(0), [0]);
        assert_eq!(integer_content(0x7F), [0x7F]);
        assert_eq!(integer_content(0x80), [0x00, 0x80]);
        assert_eq!(integer_content(0x3_0000_000F), [3, 0, 0, 0, 0x0F]);
        assert_eq!(
            integer_content(u64::MAX),
            [0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
        );
    }

    #[test]
    fn the_windows_authority_key_identifier_is_reproduced() {
        // captures/cal_temporary.p7b, client license, extension 2.5.29.35.
        let name = super::super::extensions::encode_utf16z("RODENT");
        let aki = windows_authority_key_identifier(name, &integer_content(0x3_0000_000F)).unwrap();
        assert_eq!(
            hex::encode(aki),
            "3019a110a40e52004f00440045004e00540000008205030000000f"
        );
    }

    #[test]
    fn names_are_one_rdn_of_bmp_strings() {
        let name =
            single_rdn_name(&[(oid::COMMON_NAME, "RODENT"), (oid::LOCALITY, "WORKGROUP")]).unwrap();
        // captures/cal_temporary.p7b, the license server certificate's subject.
        assert_eq!(
            hex::encode(name.to_der().unwrap()),
            "3032313030130603550403 1e0c0052004f00440045004e0054 3019060355040 71e12\
             0057004f0052004b00470052004f00550050"
                .replace(' ', "")
        );
    }
}

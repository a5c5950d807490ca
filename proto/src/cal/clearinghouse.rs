//! rdpele's clearinghouse: the certificate authority that certifies an *activated* license
//! server, standing in for Microsoft's.
//!
//! # What Windows does
//!
//! Activating a Windows 2012+ license server has Microsoft's clearinghouse issue it a
//! certificate, and from then on every CAL it signs carries that certificate and its chain in
//! front of the client license (captures/windows2019_cal_temporary.p7b; offsets below are in
//! that file):
//!
//! 1. the root (offset 45): self-signed, v3, a 16-byte serial, sha256WithRSAEncryption, the
//!    name `C=US, ST=Washington, L=Redmond, O=Microsoft Corporation, CN=Microsoft Assurance
//!    Designation Root 2011` as five single-valued RDNs of PrintableStrings, valid 2011-03-23
//!    17:41:27 → 2036-03-23 17:48:11, RSA 4096; extensions keyUsage `03 02 01 86`
//!    (digitalSignature, keyCertSign, cRLSign), basicConstraints CA:TRUE (critical), subject key
//!    identifier, 1.3.6.1.4.1.311.21.1 (CA version) `02 01 00`;
//! 2. the intermediate `CN=Prod2LSRAsha2RDSLM` (offset 1566), issued by the root: a 19-byte
//!    serial `33 00000010 A760F3F8AE17AAFE 0000 00000010`, sha256WithRSAEncryption, valid
//!    2012-06-06 20:42:38 for 15 years, RSA 2048; keyUsage as the root's, extended key usage
//!    1.3.6.1.4.1.311.76.2.1, basicConstraints CA:TRUE pathLen 0 (critical), subject and
//!    authority (keyIdentifier only) key identifiers, a CRL distribution point and an
//!    authority information access (caIssuers), both `http://` URLs under microsoft.com/pkiops;
//! 3. the license server's certificate `CN=Becker` (offset 2948), issued by the intermediate:
//!    a 19-byte serial `7F 00000176 008F08640868A763 0000 00000176`, sha256WithRSAEncryption,
//!    valid from the activation (2019-10-26 22:53:40, the day before the CAL) to the
//!    intermediate's notAfter, the license server's own RSA-2048 key; extensions, none
//!    critical but basicConstraints: subject key identifier, authority key identifier, a CRL
//!    distribution point `file:////RD2818780E3EEC/CertEnroll/Prod2LSRAsha2RDSLM.crl`, an
//!    authority information access (caIssuers)
//!    `file:////RD2818780E3EEC/CertEnroll/RD2818780E3EEC_Prod2LSRAsha2RDSLM.crt`,
//!    basicConstraints `30 00` (CA:FALSE, critical), and 1.3.6.1.4.1.311.18 = IA5String
//!    "TLS~BASIC".
//!
//! Every subject key identifier there is RFC 5280 4.2.1.2 method 1 (SHA-1 of the public key
//! bits; checked on all three). `RD2818780E3EEC` is neither the license server (its computer
//! name is WIN-4L4L6AMBCSQ, its certificate says Becker) nor in the root's or intermediate's
//! names: it is the issuing CA's host, "RD" and a MAC address in Microsoft's 28-18-78 range,
//! and the paths are Certificate Services' `CertEnroll` defaults. Both 19-byte serials read
//! `high byte ‖ n ‖ 8 bytes ‖ 00 00 ‖ n` with the same 32-bit n twice (0x10, 0x176).
//! "Becker" is not the computer name; presumably a name typed in the activation wizard.
//!
//! # What rdpele builds
//!
//! The same chain, shaped alike — the same DN structure and string types, the same extensions
//! in the same order with the same criticality, the same serial layouts and key sizes, the same
//! signature algorithms — under rdpele's own names and keys:
//!
//! - root `C=ZZ, ST=Emulated, L=Emulated, O=rdpele, CN=rdpele Clearinghouse Root 2011`
//!   (ZZ: the ISO 3166 user-assigned code), serial the 16 ASCII bytes `rdpele root 2011`;
//! - intermediate `CN=rdpeleLSRAsha2RDSLM`, serial `33 00000010 <8 bytes> 0000 00000010`, the
//!   8 bytes from SHA-256 of its SubjectPublicKeyInfo; its URLs under `http://rdpele.invalid/`
//!   (RFC 2606: a name that never resolves);
//! - the license server's certificate, `CN=<license server name>` (PrintableString; a name it
//!   cannot hold is written as a UTF8String), serial `7F <n> <8 bytes> 0000 <n>` with n and the
//!   8 bytes from SHA-256 of the license server's SubjectPublicKeyInfo, valid from the
//!   activation time the caller gives to the intermediate's notAfter, its CRL and CA
//!   certificate `file:` URLs on the CA host `RD02524450454C` ("RD" and the locally
//!   administered MAC 02-52-44-50-45-4C, "RDPEL").
//!
//! **Why not Microsoft's names:** these certificates are not signed by Microsoft's keys, so
//! naming Microsoft in them would be a forgery that tools display as Microsoft's. Nothing
//! Windows is known to do depends on these names — a client stores the CAL as opaque bytes, and
//! the 2008 shape has no Microsoft certificate at all — so rdpele-branded names of the same
//! shape cost no known fidelity. (Whether a Windows session host checks the chain up to
//! Microsoft's root is not known; it would refuse rdpele's keys whatever the names.)
//!
//! **Validity:** the notBefore times are the sample's; both notAfter times are 2049-12-31
//! 23:59:59 (the last UTCTime year, as the self-signed shape's), not the sample's 2036 and
//! 2027: with the sample's, every CAL issued after June 2027 would chain to an expired
//! certificate.
//!
//! # The keys are public
//!
//! Windows' clearinghouse is one certificate authority for every license server, so rdpele's is
//! one fixed authority too: a 4096-bit root key and a 2048-bit intermediate key, generated once
//! with `openssl genpkey` and committed as PKCS#8 PEM files next to this module
//! (`clearinghouse/root_key.pem`, `clearinghouse/intermediate_key.pem`). **Their private keys
//! are public**: anyone can mint certificates and CALs that chain to this root. It is an
//! emulator's stand-in that makes an activated server's CALs look like Windows' — never a trust
//! anchor; nothing should trust it for anything.
//!
//! The root and intermediate certificates are built from those keys deterministically, once per
//! process.
//!
//! # What is a hypothesis
//!
//! That the CA host, the URLs and the serials' `n` carry no meaning a client checks; that
//! "TLS~BASIC" is the same for every activated license server (one sample).

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::{Any, Ia5String, ObjectIdentifier, OctetString};
use der::{Decode, Encode};
use rsa::pkcs8::EncodePublicKey;
use sha2::{Digest, Sha256};
use x509_cert::ext::pkix::crl::dp::DistributionPoint;
use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
use x509_cert::ext::pkix::{
    AccessDescription, AuthorityInfoAccessSyntax, AuthorityKeyIdentifier, BasicConstraints,
    CrlDistributionPoints, ExtendedKeyUsage, KeyUsage, KeyUsages, SubjectKeyIdentifier,
};
use x509_cert::ext::Extension;

use super::build::validity;
use super::certificate::{
    extension, integer, oid, printable_name, sha256_with_rsa, sign_certificate, TbsCertificate,
    X509_V3,
};
use super::error::CalError;
use crate::crypto::{LicensingPrivateKey, LicensingPublicKey};

const ROOT_KEY_PEM: &str = include_str!("clearinghouse/root_key.pem");
const INTERMEDIATE_KEY_PEM: &str = include_str!("clearinghouse/intermediate_key.pem");

/// The root's name, as the sample's: C, ST, L, O, CN, one PrintableString each.
const ROOT_NAME: [(ObjectIdentifier, &str); 5] = [
    (oid::COUNTRY, "ZZ"),
    (oid::STATE_OR_PROVINCE, "Emulated"),
    (oid::LOCALITY, "Emulated"),
    (oid::ORGANIZATION, "rdpele"),
    (oid::COMMON_NAME, "rdpele Clearinghouse Root 2011"),
];
/// The intermediate's CN; the sample's is "Prod2LSRAsha2RDSLM".
pub const INTERMEDIATE_COMMON_NAME: &str = "rdpeleLSRAsha2RDSLM";
/// The issuing CA's host in the license server certificate's `file:` URLs; the sample's is
/// "RD2818780E3EEC".
const CA_HOST: &str = "RD02524450454C";
/// The root's CRL and certificate, named in the intermediate as the sample's are
/// (`…/pkiops/crl/MicAssDesRoo_2011_03_23.crl`, `…/pkiops/certs/…crt`).
const ROOT_CRL_URL: &str =
    "http://rdpele.invalid/pkiops/crl/rdpeleClearinghouseRoot_2011_03_23.crl";
const ROOT_CERTIFICATE_URL: &str =
    "http://rdpele.invalid/pkiops/certs/rdpeleClearinghouseRoot_2011_03_23.crt";

/// 16 bytes, as the sample root's serial (offset 58); ASCII, so it reads as rdpele's.
const ROOT_SERIAL: &[u8; 16] = b"rdpele root 2011";
/// The sample root's notBefore, 2011-03-23T17:41:27Z (offset 232).
const ROOT_NOT_BEFORE: Duration = Duration::from_secs(1_300_902_087);
/// The sample intermediate's notBefore, 2012-06-06T20:42:38Z (offset 1756), since the Unix
/// epoch: the earliest activation time a license server certificate can sensibly have.
pub const INTERMEDIATE_NOT_BEFORE: Duration = Duration::from_secs(1_339_015_358);
/// notAfter of the root, the intermediate and every license server certificate:
/// 2049-12-31T23:59:59Z (see the module documentation).
const NOT_AFTER: Duration = Duration::from_secs(2_524_607_999);
/// The sample intermediate's serial's first byte and repeated number (offset 1579).
const INTERMEDIATE_SERIAL_HIGH: u8 = 0x33;
const INTERMEDIATE_REQUEST_ID: u32 = 0x10;
/// The sample license server certificate's serial's first byte (offset 2961).
const LICENSE_SERVER_SERIAL_HIGH: u8 = 0x7F;
/// 1.3.6.1.4.1.311.21.1 on the sample's root: INTEGER 0 (offset 1029).
const CA_VERSION: [u8; 3] = [0x02, 0x01, 0x00];
/// 1.3.6.1.4.1.311.18 on the sample's license server certificate (offset 3649).
const LICENSE_SERVER_CERTIFICATE_TYPE: &str = "TLS~BASIC";

/// The clearinghouse: its two certificates, and the intermediate's key that signs license
/// server certificates.
#[derive(Debug)]
pub(crate) struct Clearinghouse {
    root: Vec<u8>,
    intermediate: Vec<u8>,
    intermediate_key: LicensingPrivateKey,
    /// DER of the intermediate's subject: every license server certificate's issuer.
    intermediate_name: Any,
    intermediate_key_identifier: [u8; 20],
}

/// The clearinghouse, built on first use (two RSA signatures, one of them 4096-bit).
pub(crate) fn clearinghouse() -> Result<&'static Clearinghouse, CalError> {
    static CLEARINGHOUSE: OnceLock<Result<Clearinghouse, CalError>> = OnceLock::new();
    CLEARINGHOUSE
        .get_or_init(Clearinghouse::build)
        .as_ref()
        .map_err(Clone::clone)
}

impl Clearinghouse {
    fn build() -> Result<Self, CalError> {
        let root_key = LicensingPrivateKey::from_pem(ROOT_KEY_PEM)?;
        let intermediate_key = LicensingPrivateKey::from_pem(INTERMEDIATE_KEY_PEM)?;
        let root_name = printable_name(&ROOT_NAME)?;
        let root_public = root_key.public_key();
        let root_key_identifier = root_public.key_identifier()?;
        let root_tbs = TbsCertificate {
            version: X509_V3,
            serial_number: integer(ROOT_SERIAL)?,
            signature: sha256_with_rsa(),
            issuer: root_name.clone(),
            validity: validity(at(ROOT_NOT_BEFORE), at(NOT_AFTER))?,
            subject: root_name.clone(),
            subject_public_key_info: subject_public_key_info(&root_public)?,
            extensions: Some(vec![
                ca_key_usage()?,
                basic_constraints(true, None)?,
                subject_key_identifier(root_key_identifier)?,
                extension(oid::CA_VERSION, false, CA_VERSION.to_vec())?,
            ]),
        };
        let root = sign_certificate(&root_tbs, &root_key, "ClearinghouseRootCertificate")?;

        let intermediate_name = printable_name(&[(oid::COMMON_NAME, INTERMEDIATE_COMMON_NAME)])?;
        let intermediate_public = intermediate_key.public_key();
        let intermediate_key_identifier = intermediate_public.key_identifier()?;
        let intermediate_spki = subject_public_key_info(&intermediate_public)?;
        let (_, unique) = digest_parts(&intermediate_spki)?;
        let extended_key_usage = encode(
            &ExtendedKeyUsage(vec![oid::LICENSE_SERVER_ISSUANCE_USAGE]),
            "ExtendedKeyUsage",
        )?;
        let intermediate_tbs = TbsCertificate {
            version: X509_V3,
            serial_number: integer(&certificate_services_serial(
                INTERMEDIATE_SERIAL_HIGH,
                INTERMEDIATE_REQUEST_ID,
                unique,
            ))?,
            signature: sha256_with_rsa(),
            issuer: root_name,
            validity: validity(at(INTERMEDIATE_NOT_BEFORE), at(NOT_AFTER))?,
            subject: intermediate_name.clone(),
            subject_public_key_info: intermediate_spki,
            extensions: Some(vec![
                ca_key_usage()?,
                extension(oid::EXTENDED_KEY_USAGE, false, extended_key_usage)?,
                basic_constraints(true, Some(0))?,
                subject_key_identifier(intermediate_key_identifier)?,
                authority_key_identifier(root_key_identifier)?,
                crl_distribution_point(ROOT_CRL_URL)?,
                ca_issuers(ROOT_CERTIFICATE_URL)?,
            ]),
        };
        let intermediate = sign_certificate(
            &intermediate_tbs,
            &root_key,
            "ClearinghouseIntermediateCertificate",
        )?;
        Ok(Self {
            root,
            intermediate,
            intermediate_key,
            intermediate_name,
            intermediate_key_identifier,
        })
    }

    /// The root's and the intermediate's DER, in chain order.
    pub(crate) fn certificates(&self) -> [&[u8]; 2] {
        [&self.root, &self.intermediate]
    }

    /// The certificate activation gives license server `name` for its signing key `key`, valid
    /// from `activated_at` to the intermediate's notAfter (see the module documentation).
    pub(crate) fn issue_license_server_certificate(
        &self,
        name: &str,
        key: &LicensingPublicKey,
        activated_at: SystemTime,
    ) -> Result<Vec<u8>, CalError> {
        let not_after = at(NOT_AFTER);
        if activated_at >= not_after {
            return Err(CalError::InvalidInput {
                field: "activated_at",
                reason: "not before the clearinghouse certificates' notAfter (2049-12-31)".into(),
            });
        }
        let spki = subject_public_key_info(key)?;
        let (request_id, unique) = digest_parts(&spki)?;
        let certificate_type = encode(
            &Ia5String::new(LICENSE_SERVER_CERTIFICATE_TYPE)
                .map_err(|error| CalError::encoding("IA5String", &error))?,
            "IA5String",
        )?;
        let tbs = TbsCertificate {
            version: X509_V3,
            serial_number: integer(&certificate_services_serial(
                LICENSE_SERVER_SERIAL_HIGH,
                request_id,
                unique,
            ))?,
            signature: sha256_with_rsa(),
            issuer: self.intermediate_name.clone(),
            validity: validity(activated_at, not_after)?,
            subject: printable_name(&[(oid::COMMON_NAME, name)])?,
            subject_public_key_info: spki,
            extensions: Some(vec![
                subject_key_identifier(key.key_identifier()?)?,
                authority_key_identifier(self.intermediate_key_identifier)?,
                crl_distribution_point(&format!(
                    "file:////{CA_HOST}/CertEnroll/{INTERMEDIATE_COMMON_NAME}.crl"
                ))?,
                ca_issuers(&format!(
                    "file:////{CA_HOST}/CertEnroll/{CA_HOST}_{INTERMEDIATE_COMMON_NAME}.crt"
                ))?,
                basic_constraints(false, None)?,
                extension(oid::HYDRA, false, certificate_type)?,
            ]),
        };
        sign_certificate(&tbs, &self.intermediate_key, "LicenseServerCertificate")
    }
}

fn at(since_unix_epoch: Duration) -> SystemTime {
    UNIX_EPOCH + since_unix_epoch
}

fn encode(value: &impl Encode, structure: &'static str) -> Result<Vec<u8>, CalError> {
    value
        .to_der()
        .map_err(|error| CalError::encoding(structure, &error))
}

fn subject_public_key_info(key: &LicensingPublicKey) -> Result<Any, CalError> {
    let der = key
        .to_rsa_public_key()
        .to_public_key_der()
        .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?;
    Any::from_der(der.as_bytes())
        .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))
}

/// A 32-bit number and 8 bytes for a serial, from SHA-256 of a SubjectPublicKeyInfo: the same
/// key always gets the same serial.
fn digest_parts(spki: &Any) -> Result<(u32, [u8; 8]), CalError> {
    let digest: [u8; 32] = Sha256::digest(encode(spki, "SubjectPublicKeyInfo")?).into();
    let [n0, n1, n2, n3, u0, u1, u2, u3, u4, u5, u6, u7, ..] = digest;
    Ok((
        u32::from_be_bytes([n0, n1, n2, n3]),
        [u0, u1, u2, u3, u4, u5, u6, u7],
    ))
}

/// The 19-byte serial layout of both issued certificates in the sample:
/// `high ‖ n ‖ unique ‖ 00 00 ‖ n` (n big-endian). `high` below 0x80 keeps the INTEGER
/// positive at 19 bytes.
fn certificate_services_serial(high: u8, n: u32, unique: [u8; 8]) -> Vec<u8> {
    let mut serial = Vec::with_capacity(19);
    serial.push(high);
    serial.extend_from_slice(&n.to_be_bytes());
    serial.extend_from_slice(&unique);
    serial.extend_from_slice(&[0, 0]);
    serial.extend_from_slice(&n.to_be_bytes());
    serial
}

/// keyUsage `03 02 01 86` (digitalSignature, keyCertSign, cRLSign), not critical: the sample
/// root's and intermediate's (offsets 962, 2126).
fn ca_key_usage() -> Result<Extension, CalError> {
    let usage = KeyUsage(KeyUsages::DigitalSignature | KeyUsages::KeyCertSign | KeyUsages::CRLSign);
    extension(oid::KEY_USAGE, false, encode(&usage, "KeyUsage")?)
}

/// basicConstraints, critical in all three of the sample's chain certificates.
fn basic_constraints(ca: bool, path_len_constraint: Option<u8>) -> Result<Extension, CalError> {
    let constraints = BasicConstraints {
        ca,
        path_len_constraint,
    };
    extension(
        oid::BASIC_CONSTRAINTS,
        true,
        encode(&constraints, "BasicConstraints")?,
    )
}

fn subject_key_identifier(key_identifier: [u8; 20]) -> Result<Extension, CalError> {
    let identifier = SubjectKeyIdentifier(
        OctetString::new(key_identifier.to_vec())
            .map_err(|error| CalError::encoding("SubjectKeyIdentifier", &error))?,
    );
    extension(
        oid::SUBJECT_KEY_IDENTIFIER,
        false,
        encode(&identifier, "SubjectKeyIdentifier")?,
    )
}

/// The issuer's key identifier alone, as in the sample (offsets 2213, 3419).
fn authority_key_identifier(issuer_key_identifier: [u8; 20]) -> Result<Extension, CalError> {
    let identifier = AuthorityKeyIdentifier {
        key_identifier: Some(
            OctetString::new(issuer_key_identifier.to_vec())
                .map_err(|error| CalError::encoding("AuthorityKeyIdentifier", &error))?,
        ),
        authority_cert_issuer: None,
        authority_cert_serial_number: None,
    };
    extension(
        oid::AUTHORITY_KEY_IDENTIFIER,
        false,
        encode(&identifier, "AuthorityKeyIdentifier")?,
    )
}

fn uri(url: &str) -> Result<GeneralName, CalError> {
    Ia5String::new(url)
        .map(GeneralName::UniformResourceIdentifier)
        .map_err(|error| CalError::encoding("GeneralName", &error))
}

/// One distribution point with one URI as its full name (offsets 2246, 3452).
fn crl_distribution_point(url: &str) -> Result<Extension, CalError> {
    let points = CrlDistributionPoints(vec![DistributionPoint {
        distribution_point: Some(DistributionPointName::FullName(vec![uri(url)?])),
        reasons: None,
        crl_issuer: None,
    }]);
    extension(
        oid::CRL_DISTRIBUTION_POINTS,
        false,
        encode(&points, "CrlDistributionPoints")?,
    )
}

/// Authority information access with one caIssuers URI (offsets 2333, 3533).
fn ca_issuers(url: &str) -> Result<Extension, CalError> {
    let access = AuthorityInfoAccessSyntax(vec![AccessDescription {
        access_method: oid::CA_ISSUERS,
        access_location: uri(url)?,
    }]);
    extension(
        oid::AUTHORITY_INFO_ACCESS,
        false,
        encode(&access, "AuthorityInfoAccessSyntax")?,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_serial_layout_reproduces_both_of_the_samples_serials() {
        // captures/windows2019_cal_temporary.p7b, offsets 1579 and 2961.
        let intermediate = certificate_services_serial(
            0x33,
            0x10,
            [0xA7, 0x60, 0xF3, 0xF8, 0xAE, 0x17, 0xAA, 0xFE],
        );
        assert_eq!(
            hex::encode_upper(intermediate),
            "3300000010A760F3F8AE17AAFE000000000010"
        );
        let license_server = certificate_services_serial(
            0x7F,
            0x176,
            [0x00, 0x8F, 0x08, 0x64, 0x08, 0x68, 0xA7, 0x63],
        );
        assert_eq!(
            hex::encode_upper(license_server),
            "7F00000176008F08640868A763000000000176"
        );
    }

    #[test]
    fn the_clearinghouse_is_built_once_from_keys_of_the_samples_sizes() {
        let clearinghouse = clearinghouse().unwrap();
        assert!(std::ptr::eq(clearinghouse, super::clearinghouse().unwrap()));
        let [root, intermediate] = clearinghouse.certificates();
        let root_key = LicensingPrivateKey::from_pem(ROOT_KEY_PEM).unwrap();
        assert_eq!(root_key.modulus_len(), 512);
        assert_eq!(
            LicensingPrivateKey::from_pem(INTERMEDIATE_KEY_PEM)
                .unwrap()
                .modulus_len(),
            256
        );
        assert_ne!(root, intermediate);
    }
}

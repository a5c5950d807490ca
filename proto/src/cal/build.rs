//! Building a CAL of Windows' shape: the license server's certificate(s) and a client license
//! signed with the license server's key. Deterministic: every time, serial number and key comes
//! from the caller (an activated server's chain also from [`super::clearinghouse`]'s fixed
//! keys).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use der::asn1::Any;
use der::Decode;
use rsa::pkcs8::EncodePublicKey;
use rsa::PublicKey;
use x509_cert::ext::pkix::BasicConstraints;
use x509_cert::time::{Time, Validity};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser as _;

use super::certificate::{
    certs_only_signed_data, extension, integer, integer_content, oid, sha1_rsa_oiw,
    sign_certificate, single_rdn_name, windows_authority_key_identifier, TbsCertificate, X509_V3,
};
use super::clearinghouse::clearinghouse;
use super::error::CalError;
use super::extensions::{
    encode_utf16z, LicenseServer, LicensedProduct, ProductLicenseFlags, ProductVersion,
    HYDRA_CERT_VERSION, LICENSED_PRODUCT_INFO_VERSION, MANUFACTURER, WINDOWS_LANGUAGE_ID,
    WINDOWS_PLATFORM_ID,
};
use super::hwid::serial_number_attribute;
use super::{CalKind, CalType};
use crate::crypto::LicensingPrivateKey;
use crate::wire::ClientHardwareId;

/// Seconds from 1601-01-01 (the FILETIME epoch) to 1970-01-01.
const FILETIME_UNIX_EPOCH_SECONDS: u64 = 11_644_473_600;

/// The undocumented 1.3.6.1.4.1.311.18.9 extension of the client licenses an activated license
/// server signs: `07 00 00 00` in the 2019 sample (captures/windows2019_cal_temporary.p7b,
/// offset 4554), absent from the 2008 sample's unactivated server. Whether it follows
/// activation or the Windows version is not known (a hypothesis: one sample of each).
pub const ACTIVATED_MS_18_9: [u8; 4] = [7, 0, 0, 0];

/// The client license's serial number as Windows appears to compose it: the key pack id in the
/// high 32 bits, the license id in the low 32 (`03 00 00 00 0F` and `06 00 00 00 06` in the two
/// samples — a hypothesis: the license server's ids are not visible in them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LicenseSerial {
    pub key_pack_id: u32,
    pub license_id: u32,
}

impl LicenseSerial {
    pub fn to_u64(self) -> u64 {
        (u64::from(self.key_pack_id) << 32) | u64::from(self.license_id)
    }

    /// Splits a serial number's INTEGER content bytes (at most 8 significant bytes).
    pub fn from_serial_number(content: &[u8]) -> Option<Self> {
        let significant: Vec<u8> = content
            .iter()
            .copied()
            .skip_while(|byte| *byte == 0)
            .collect();
        if significant.len() > 8 {
            return None;
        }
        let mut bytes = [0u8; 8];
        let start = bytes.len().saturating_sub(significant.len());
        bytes.get_mut(start..)?.copy_from_slice(&significant);
        let [k0, k1, k2, k3, l0, l1, l2, l3] = bytes;
        Some(Self {
            key_pack_id: u32::from_be_bytes([k0, k1, k2, k3]),
            license_id: u32::from_be_bytes([l0, l1, l2, l3]),
        })
    }
}

impl LicensedProduct {
    /// What a Windows license server writes for a CAL of `cal_type` and `kind` for product
    /// version `version`: RequestedProductId "A02", AdjustedProductId
    /// `"{A02|C50}-{major}.{minor:02}-S"`, count 1, PlatformId 0xFF, language 0x0400, flags
    /// LICENSE_ENFORCED | RTM_LICENSE (as the 2019 sample), plus TEMPORARY_LICENSE for a
    /// temporary CAL.
    pub fn windows(cal_type: CalType, kind: CalKind, version: ProductVersion) -> Self {
        let base = ProductLicenseFlags::LICENSE_ENFORCED.union(ProductLicenseFlags::RTM_LICENSE);
        let flags = match kind {
            CalKind::Temporary => base.union(ProductLicenseFlags::TEMPORARY_LICENSE),
            CalKind::Permanent => base,
        };
        Self {
            structure_version: LICENSED_PRODUCT_INFO_VERSION,
            quantity: 1,
            platform_id: WINDOWS_PLATFORM_ID,
            language_id: WINDOWS_LANGUAGE_ID,
            product_id: CalType::PER_DEVICE_PRODUCT.to_owned(),
            sku: format!("{}-{version}-S", cal_type.product_prefix()),
            version,
            flags,
        }
    }
}

/// The client license to issue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CalRequest {
    /// Subject CN: the client's machine name, as the New License Request carries it.
    pub machine: String,
    /// Subject L: the client's user name.
    pub user: String,
    /// The HWID the client proved; stored encoded in the subject's serialNumber.
    pub hwid: ClientHardwareId,
    /// Validity. Sub-second parts are dropped (X.509 times have whole seconds).
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    pub serial: LicenseSerial,
    /// LICENSED_PRODUCT_INFO: the kind (TEMPORARY_LICENSE flag), the CAL type (product prefix)
    /// and the version.
    pub product: LicensedProduct,
    /// The undocumented 1.3.6.1.4.1.311.18.9 extension, written (critical, between
    /// MANUFACTURER and LICENSED_PRODUCT_INFO) when set; unset, the issuer's shape decides
    /// ([`ACTIVATED_MS_18_9`] for [`LicenseServerIdentity::activated`], none otherwise).
    pub ms_18_9: Option<Vec<u8>>,
}

impl CalRequest {
    /// A request of Windows' shape lasting `validity` from `not_before`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        machine: &str,
        user: &str,
        hwid: ClientHardwareId,
        kind: CalKind,
        cal_type: CalType,
        version: ProductVersion,
        not_before: SystemTime,
        validity: Duration,
        serial: LicenseSerial,
    ) -> Result<Self, CalError> {
        let not_after = not_before
            .checked_add(validity)
            .ok_or_else(|| CalError::InvalidInput {
                field: "validity",
                reason: "not_before + validity overflows".into(),
            })?;
        Ok(Self {
            machine: machine.to_owned(),
            user: user.to_owned(),
            hwid,
            not_before,
            not_after,
            serial,
            product: LicensedProduct::windows(cal_type, kind, version),
            ms_18_9: None,
        })
    }
}

/// The license server that signs CALs: its identity (written into every CAL), its key, and the
/// certificate(s) that go in front of every client license.
#[derive(Clone)]
pub struct LicenseServerIdentity {
    /// The license server's computer name (MS_LICENSE_SERVER_INFO IssuerName, and the name in
    /// the client license's authority key identifier).
    pub name: String,
    /// Domain, or workgroup for a server outside a domain (LsScope).
    pub domain_or_workgroup: String,
    /// The license server's product id (IssuerId), "78440-006-5867045-70347" in the 2008 sample.
    pub product_id: String,
    /// Chain order: an activated server's chain (root, intermediate), root first; always ending
    /// with the license server's own certificate.
    certificates: Vec<Vec<u8>>,
    /// DER of the license server certificate's subject: the client license's issuer.
    subject: Vec<u8>,
    /// DER of the license server certificate's SubjectPublicKeyInfo: Windows gives the client
    /// license the license server's own public key.
    subject_public_key_info: Vec<u8>,
    /// Signs the certificates this server issues, on the key's selected RSA backend.
    signing_key: LicensingPrivateKey,
    /// The 18.9 extension of the client licenses this server signs unless the request sets
    /// one: [`ACTIVATED_MS_18_9`] when activated.
    ms_18_9: Option<Vec<u8>>,
}

impl core::fmt::Debug for LicenseServerIdentity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("LicenseServerIdentity")
            .field("name", &self.name)
            .field("domain_or_workgroup", &self.domain_or_workgroup)
            .field("product_id", &self.product_id)
            .field("certificates", &self.certificates.len())
            .finish_non_exhaustive()
    }
}

impl LicenseServerIdentity {
    /// An unactivated license server, as in the 2008 sample: a self-signed certificate with
    /// subject and issuer `CN=<name>+L=<domain_or_workgroup>` (BMPStrings), serial number =
    /// the FILETIME of `not_before` (as the sample's), basicConstraints CA:TRUE pathLen 0,
    /// signed OIW sha1RSA.
    ///
    /// `key` is a [`LicensingPrivateKey`] (signing on its selected
    /// [`RsaBackend`](crate::crypto::RsaBackend)) or an `rsa::PrivateKey` (the default backend).
    pub fn self_signed(
        name: &str,
        domain_or_workgroup: &str,
        product_id: &str,
        key: impl TryInto<LicensingPrivateKey, Error: Into<CalError>>,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Self, CalError> {
        let key = key.try_into().map_err(Into::into)?;
        let spki = key
            .public_key()
            .to_rsa_public_key()
            .to_public_key_der()
            .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?;
        let subject = single_rdn_name(&[
            (oid::COMMON_NAME, name),
            (oid::LOCALITY, domain_or_workgroup),
        ])?;
        let basic_constraints = der::Encode::to_der(&BasicConstraints {
            ca: true,
            path_len_constraint: Some(0),
        })
        .map_err(|error| CalError::encoding("BasicConstraints", &error))?;
        let tbs = TbsCertificate {
            version: X509_V3,
            serial_number: integer(&integer_content(filetime(not_before)?))?,
            signature: sha1_rsa_oiw(),
            issuer: subject.clone(),
            validity: validity(not_before, not_after)?,
            subject,
            subject_public_key_info: Any::from_der(spki.as_bytes())
                .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?,
            extensions: Some(vec![extension(
                oid::BASIC_CONSTRAINTS,
                false,
                basic_constraints,
            )?]),
        };
        let certificate = sign_certificate(&tbs, &key, "LicenseServerCertificate")?;
        Self::from_parts(
            name,
            domain_or_workgroup,
            product_id,
            key,
            vec![certificate],
        )
    }

    /// An activated license server, as in the 2019 sample: a certificate for `key` with subject
    /// `CN=<name>` issued by rdpele's [clearinghouse](super::clearinghouse) (rdpele's stand-in
    /// for Microsoft's, whose private keys are public), valid from `activated_at`, behind the
    /// clearinghouse's root and intermediate — four certificates in every CAL with the client
    /// license, which carries extension 18.9 ([`ACTIVATED_MS_18_9`]). `key` as for
    /// [`Self::self_signed`].
    pub fn activated(
        name: &str,
        domain_or_workgroup: &str,
        product_id: &str,
        key: impl TryInto<LicensingPrivateKey, Error: Into<CalError>>,
        activated_at: SystemTime,
    ) -> Result<Self, CalError> {
        let key = key.try_into().map_err(Into::into)?;
        let clearinghouse = clearinghouse()?;
        let own = clearinghouse.issue_license_server_certificate(
            name,
            &key.public_key(),
            activated_at,
        )?;
        let mut certificates: Vec<Vec<u8>> = clearinghouse
            .certificates()
            .iter()
            .map(|certificate| certificate.to_vec())
            .collect();
        certificates.push(own);
        let mut identity =
            Self::from_parts(name, domain_or_workgroup, product_id, key, certificates)?;
        identity.ms_18_9 = Some(ACTIVATED_MS_18_9.to_vec());
        Ok(identity)
    }

    /// A license server whose certificate(s) exist already (a saved self-signed certificate, or
    /// an activated server's chain, root first, its own certificate last). The last
    /// certificate's public key must be `key`'s. `key` as for [`Self::self_signed`]. Its client
    /// licenses carry no 18.9 extension unless the request sets one.
    pub fn with_certificates(
        name: &str,
        domain_or_workgroup: &str,
        product_id: &str,
        key: impl TryInto<LicensingPrivateKey, Error: Into<CalError>>,
        certificates: Vec<Vec<u8>>,
    ) -> Result<Self, CalError> {
        Self::from_parts(
            name,
            domain_or_workgroup,
            product_id,
            key.try_into().map_err(Into::into)?,
            certificates,
        )
    }

    fn from_parts(
        name: &str,
        domain_or_workgroup: &str,
        product_id: &str,
        signing_key: LicensingPrivateKey,
        certificates: Vec<Vec<u8>>,
    ) -> Result<Self, CalError> {
        let invalid = |reason: String| CalError::InvalidInput {
            field: "certificates",
            reason,
        };
        let own = certificates
            .last()
            .ok_or_else(|| invalid("no license server certificate".into()))?;
        let (rest, certificate) = X509CertificateParser::new()
            .with_deep_parse_extensions(false)
            .parse(own)
            .map_err(|error| invalid(format!("license server certificate: {error}")))?;
        if !rest.is_empty() {
            return Err(invalid(
                "trailing bytes after the license server certificate".into(),
            ));
        }
        let subject_public_key_info = certificate.tbs_certificate.subject_pki.raw.to_vec();
        let key_spki = signing_key
            .public_key()
            .to_rsa_public_key()
            .to_public_key_der()
            .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?;
        if key_spki.as_bytes() != subject_public_key_info.as_slice() {
            return Err(invalid(
                "the license server certificate's public key is not the signing key's".into(),
            ));
        }
        let subject = certificate.tbs_certificate.subject.as_raw().to_vec();
        Ok(Self {
            name: name.to_owned(),
            domain_or_workgroup: domain_or_workgroup.to_owned(),
            product_id: product_id.to_owned(),
            certificates,
            subject,
            subject_public_key_info,
            signing_key,
            ms_18_9: None,
        })
    }

    /// MS-RDPELE 2.2.1.4.2: the terminal server certificate this license server issues to a
    /// session host — the last certificate of the X.509 chain in the host's License Request,
    /// after the license server's own (a chain has at least these two). Subject
    /// `CN=<host_name>`, the host's licensing key, issued by this server and signed OIW
    /// sha1RSA; serial number the FILETIME of `not_before`.
    pub fn issue_host_certificate(
        &self,
        host_name: &str,
        host_key: &PublicKey,
        not_before: SystemTime,
        not_after: SystemTime,
    ) -> Result<Vec<u8>, CalError> {
        let spki = host_key
            .to_public_key_der()
            .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?;
        let tbs = TbsCertificate {
            version: X509_V3,
            serial_number: integer(&integer_content(filetime(not_before)?))?,
            signature: sha1_rsa_oiw(),
            issuer: Any::from_der(&self.subject)
                .map_err(|error| CalError::encoding("issuer", &error))?,
            validity: validity(not_before, not_after)?,
            subject: single_rdn_name(&[(oid::COMMON_NAME, host_name)])?,
            subject_public_key_info: Any::from_der(spki.as_bytes())
                .map_err(|error| CalError::encoding("SubjectPublicKeyInfo", &error))?,
            extensions: None,
        };
        sign_certificate(&tbs, &self.signing_key, "TerminalServerCertificate")
    }

    /// The certificates that precede every client license, in order.
    pub fn certificates(&self) -> &[Vec<u8>] {
        &self.certificates
    }
}

/// Issues a CAL: a certs-only PKCS#7 SignedData holding `issuer`'s certificate(s) and a client
/// license of exactly the Windows shape (see the [module documentation](super)).
pub fn build_cal(
    request: &CalRequest,
    issuer: &LicenseServerIdentity,
) -> Result<Vec<u8>, CalError> {
    if request.not_after <= request.not_before {
        return Err(CalError::InvalidInput {
            field: "not_after",
            reason: "must be later than not_before".into(),
        });
    }
    let serial_content = integer_content(request.serial.to_u64());
    let hwid_text = serial_number_attribute(&request.hwid);
    let license_server = LicenseServer {
        name: issuer.name.clone(),
        domain_or_workgroup: issuer.domain_or_workgroup.clone(),
        product_id: Some(issuer.product_id.clone()),
    };
    let mut extensions = vec![
        extension(
            oid::HYDRA_CERT_VERSION,
            true,
            HYDRA_CERT_VERSION.to_le_bytes().to_vec(),
        )?,
        extension(oid::MANUFACTURER, true, encode_utf16z(MANUFACTURER))?,
    ];
    if let Some(value) = request.ms_18_9.as_ref().or(issuer.ms_18_9.as_ref()) {
        extensions.push(extension(oid::MS_18_9, true, value.clone())?);
    }
    extensions.extend([
        extension(oid::LICENSED_PRODUCT_INFO, true, request.product.encode()?)?,
        extension(oid::MS_LICENSE_SERVER_INFO, true, license_server.encode()?)?,
        extension(
            oid::AUTHORITY_KEY_IDENTIFIER,
            true,
            windows_authority_key_identifier(encode_utf16z(&issuer.name), &serial_content)?,
        )?,
    ]);
    let raw = |der: &[u8], structure| {
        Any::from_der(der).map_err(|error| CalError::encoding(structure, &error))
    };
    let tbs = TbsCertificate {
        version: X509_V3,
        serial_number: integer(&serial_content)?,
        signature: sha1_rsa_oiw(),
        issuer: raw(&issuer.subject, "issuer")?,
        validity: validity(request.not_before, request.not_after)?,
        subject: single_rdn_name(&[
            (oid::COMMON_NAME, &request.machine),
            (oid::LOCALITY, &request.user),
            (oid::SERIAL_NUMBER, &hwid_text),
        ])?,
        subject_public_key_info: raw(&issuer.subject_public_key_info, "subjectPublicKeyInfo")?,
        extensions: Some(extensions),
    };
    let client_license = sign_certificate(&tbs, &issuer.signing_key, "ClientLicense")?;
    let mut certificates: Vec<&[u8]> = issuer.certificates.iter().map(Vec::as_slice).collect();
    certificates.push(&client_license);
    certs_only_signed_data(&certificates)
}

pub(crate) fn validity(
    not_before: SystemTime,
    not_after: SystemTime,
) -> Result<Validity, CalError> {
    let time = |at: SystemTime, field: &'static str| {
        Time::try_from(at).map_err(|error| CalError::InvalidInput {
            field,
            reason: format!("not representable in X.509 ({error})"),
        })
    };
    Ok(Validity::new(
        time(not_before, "not_before")?,
        time(not_after, "not_after")?,
    ))
}

/// `at` as a Windows FILETIME (100 ns ticks since 1601-01-01).
fn filetime(at: SystemTime) -> Result<u64, CalError> {
    let since_unix = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_| CalError::InvalidInput {
            field: "not_before",
            reason: "before 1970".into(),
        })?;
    since_unix
        .as_secs()
        .checked_add(FILETIME_UNIX_EPOCH_SECONDS)
        .and_then(|seconds| seconds.checked_mul(10_000_000))
        .and_then(|ticks| ticks.checked_add(u64::from(since_unix.subsec_nanos() / 100)))
        .ok_or_else(|| CalError::InvalidInput {
            field: "not_before",
            reason: "beyond the FILETIME range".into(),
        })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_2008_samples_license_server_serial_is_the_filetime_of_its_not_before() {
        // 0x019E274D68ACED20, not before 1970-05-30 10:36:18 (UTC), plus 34 ms.
        let not_before = UNIX_EPOCH + Duration::from_millis(12_911_778_034);
        assert_eq!(filetime(not_before).unwrap(), 0x019E_274D_68AC_ED20);
    }

    #[test]
    fn license_serial_splits_as_in_the_samples() {
        let serial = LicenseSerial::from_serial_number(&[3, 0, 0, 0, 0x0F]).unwrap();
        assert_eq!(
            serial,
            LicenseSerial {
                key_pack_id: 3,
                license_id: 15
            }
        );
        assert_eq!(integer_content(serial.to_u64()), [3, 0, 0, 0, 0x0F]);
        assert_eq!(LicenseSerial::from_serial_number(&[1; 9]), None);
    }

    #[test]
    fn windows_product_info_matches_the_samples_fields() {
        let product = LicensedProduct::windows(
            CalType::PerDevice,
            CalKind::Temporary,
            ProductVersion::WINDOWS_SERVER_2019,
        );
        assert_eq!(product.sku, "A02-10.01-S");
        assert_eq!(product.flags, ProductLicenseFlags(0x8080_8000)); // the 2019 sample's
        let per_user = LicensedProduct::windows(
            CalType::PerUser,
            CalKind::Permanent,
            ProductVersion::WINDOWS_SERVER_2008,
        );
        assert_eq!(per_user.sku, "C50-6.00-S");
        assert_eq!(per_user.product_id, "A02");
        assert_eq!(CalKind::of(&per_user), CalKind::Permanent);
        assert_eq!(CalType::of(&per_user), CalType::PerUser);
    }
}

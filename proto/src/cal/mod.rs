//! Client Access Licenses (CALs): reading the ones Windows license servers issue and building
//! ones of the same shape.
//!
//! A CAL travels in `pbLicenseInfo` of NEW_LICENSE_INFO (MS-RDPELE 2.2.2.6.1), comes back in
//! CLIENT_LICENSE_INFO, and is what FreeRDP stores in `~/.config/freerdp/licenses/*.cal`. It is a
//! certs-only PKCS#7 SignedData (DER); MS-RDPELE 2.2.2.9 documents its licensing extensions.
//! Everything below was checked byte by byte on two real CALs:
//!
//! - **2008**: `captures/cal_temporary.p7b` (1945 bytes), Windows Server 2008 license server
//!   RODENT, unactivated (self-signed), 90-day temporary CAL for machine RODENT, user
//!   Administrator, 2007-06-20 → 2007-09-18.
//! - **2019**: `captures/windows2019_cal_temporary.p7b` (5112 bytes), an activated
//!   license server WIN-4L4L6AMBCSQ (certificate CN=Becker issued through Microsoft's
//!   "Prod2LSRAsha2RDSLM" CA), 90-day temporary CAL "A02-10.01-S" for xfreerdp on machine
//!   ubuntu2, user Administrator, 2019-10-27 → 2020-01-25. Decrypted here from the encrypted
//!   license and license key in IronRDP's `upgrade_license_verifies_correctly` test
//!   (`crates/ironrdp-pdu/src/rdp/server_license/server_upgrade_license/tests.rs`); its MAC
//!   (MS-RDPELE 5.1.5 with that test's MAC salt key) matches, so every byte is as sent.
//!   `captures/windows2019_new_license_info.bin` is the whole decrypted NEW_LICENSE_INFO
//!   (dwVersion 0x000A0001).
//!
//! A third, partial data point is the text dump of a Windows Server 2003 CAL ("A02-5.02-S",
//! flags 0x80d48000, TS certificate version 0x00050001, PlatformId 0xFF, language 0x419,
//! 90 days) by Microsoft's `tsctst.exe` quoted in a public PowerShell script.
//!
//! # The envelope
//!
//! ```text
//! ContentInfo { contentType signedData (1.2.840.113549.1.7.2), [0] EXPLICIT SignedData {
//!     version 1, digestAlgorithms SET {}, encapContentInfo { data (1.2.840.113549.1.7.1) },
//!     certificates [0] IMPLICIT { <license server chain>, <client license> },
//!     signerInfos SET {} } }
//! ```
//! Certificates in chain order, the client license last: 2008 = [self-signed license server,
//! client license]; 2019 = [Microsoft Assurance Designation Root 2011, Prod2LSRAsha2RDSLM,
//! CN=Becker (the license server), client license]. The set is **not** DER-sorted (the 2019
//! one is out of sorted order), so the builder writes it in chain order.
//!
//! # What the builder makes of them
//!
//! - **Unactivated** ([`LicenseServerIdentity::self_signed`]): the 2008 shape, two
//!   certificates, no extension 18.9.
//! - **Activated** ([`LicenseServerIdentity::activated`]): the 2019 shape, four certificates —
//!   the root and intermediate of rdpele's [`clearinghouse`] (its stand-in for Microsoft's,
//!   shaped as the sample's under rdpele names; **its private keys are public**, committed in
//!   the repository), the license server's certificate it issues (`CN=<name>`,
//!   sha256WithRSA, the sample's extensions), and the client license with extension 18.9 =
//!   `07 00 00 00`.
//! - Either way the client license is the same otherwise (OIW sha1RSA, issuer = the license
//!   server certificate's subject byte for byte: BMPString in 2008, PrintableString in 2019).
//!   The license server (`rdpele-license-server`) picks the shape by its `activated` setting,
//!   gives temporary CALs a key pack id too (so their serials have 5 bytes as both samples'),
//!   and an activated server a product id of the 2019 format.
//!
//! # The license server certificate (2008, self-signed)
//!
//! v3; serial number = the Windows FILETIME of notBefore (0x019E274D68ACED20 = 1970-05-30
//! 10:36:18.034 UTC; observed once, kept by the builder); signature OID_OIWSEC_sha1RSASign
//! 1.3.14.3.2.29 with NULL parameters; issuer = subject = one multi-valued RDN
//! `CN=<server name>+L=<workgroup or domain>`, both BMPString; validity 1970-05-30 →
//! 2049-05-30 (UTCTime); RSA 2048, e = 65537; one extension, basicConstraints CA:TRUE
//! pathLen 0, not critical. An activated server's own certificate is issued by Microsoft
//! instead (2019: `CN=Becker`, PrintableString, sha256WithRSA, extension 1.3.6.1.4.1.311.18 =
//! IA5String "TLS~BASIC"); [`clearinghouse`] describes that chain byte by byte and what rdpele
//! builds in its place.
//!
//! # The client license
//!
//! | field | value (both samples) |
//! |---|---|
//! | version | v3 |
//! | serialNumber | 5 bytes, `03 00 00 00 0F` / `06 00 00 00 06`: key pack id << 32 \| license id (hypothesis, [`LicenseSerial`]) |
//! | signature | OIW sha1RSA 1.3.14.3.2.29, NULL parameters; PKCS#1 v1.5 over SHA-1 with the SHA-1 DigestInfo (verified on the 2008 sample) |
//! | issuer | the license server certificate's subject, byte for byte (2008: the BMPString RDN; 2019: `CN=Becker`, PrintableString) |
//! | validity | UTCTime; 90 days in all three temporary CALs |
//! | subject | one multi-valued RDN `CN=<machine>+L=<user>+serialNumber=<HWID text>`, all BMPString, in DER SET order (which is also the samples' order) |
//! | subjectPublicKeyInfo | **the license server's own public key** (equal in both samples) |
//! | extensions | 18.4, 18.2, (18.9: 2019 only), 18.5, 18.6, authorityKeyIdentifier — all critical, in this order |
//!
//! ## serialNumber: the HWID, encoded — not hashed
//!
//! `base64(HWID XOR` [`HWID_MASK`]`) + "\r\n"` (28 characters + CR LF; BMPString), where HWID is
//! the 20-byte CLIENT_HARDWARE_ID (PlatformId LE32 ‖ Data). Established from both samples: the
//! 2019 client is xfreerdp on "ubuntu2", whose HWID is LE32(0x04010000) ‖ MD5("ubuntu2"); the
//! mask that maps it onto the 2019 attribute maps the 2008 attribute onto
//! `02000000 f159873e c9d898af 2402f8f3 293af026` — exactly the CLIENT_HARDWARE_ID of the 2008
//! capture session in IronRDP's platform challenge test data. Two license servers twelve years
//! apart, one mask: it is a constant (for product A02 and scope microsoft.com at least; not
//! checked for others). So the CAL names its client's HWID exactly and reversibly:
//! [`encode_hwid`] / [`decode_hwid`].
//!
//! ## 1.3.6.1.4.1.311.18.4 szOID_PKIX_HYDRA_CERT_VERSION
//!
//! 4 bytes `01 00 05 00`: DWORD 0x00050001 (major 5 in the high word, minor 1). Same in both
//! samples and in the 2003 dump ("TS Certificate Version 0x00050001").
//!
//! ## 1.3.6.1.4.1.311.18.2 szOID_PKIX_MANUFACTURER
//!
//! UTF-16LE "Microsoft Corporation" + NUL (44 bytes). The raw string, not DER.
//!
//! ## 1.3.6.1.4.1.311.18.9 (undocumented)
//!
//! 4 bytes `07 00 00 00` in the 2019 sample, absent in 2008. Meaning unknown; kept raw
//! ([`Cal::ms_18_9`]). Written as `07 00 00 00` ([`ACTIVATED_MS_18_9`]) for an activated
//! server, not at all for a self-signed one, unless the request sets its own
//! ([`CalRequest::ms_18_9`]).
//!
//! ## 1.3.6.1.4.1.311.18.5 szOID_PKIX_LICENSED_PRODUCT_INFO ([`LicensedProduct`], MS-RDPELE 2.2.2.9.1)
//!
//! Little-endian; offsets from the start of the structure.
//!
//! | offset | size | field | 2008 | 2019 |
//! |---|---|---|---|---|
//! | 0 | 4 | Version | 0x00003000 | 0x00003000 |
//! | 4 | 4 | LicenseCount | 1 | 1 |
//! | 8 | 4 | PlatformId | 0xFF | 0xFF (client sent 0x04010000: Windows writes 0xFF, not the client's) |
//! | 12 | 4 | LicensedLanguageId | 0x0400 | 0x0400 |
//! | 16 | 2+2 | RequestedProductId offset, bytes | 0x1C, 8 | 0x1C, 8 |
//! | 20 | 2+2 | AdjustedProductId offset, bytes | 0x24, 0x16 | 0x24, 0x18 |
//! | 24 | 2+2 | LicensedVersionInfo offset, count | 0x3A, 1 | 0x3C, 1 |
//! | 28 | | RequestedProductId, UTF-16LE + NUL | "A02" | "A02" |
//! | | | AdjustedProductId, UTF-16LE + NUL | "A02-6.00-S" | "A02-10.01-S" |
//! | | 2 | ProductLicenseMajorVersion | 6 | 10 |
//! | | 2 | ProductLicenseMinorVersion | 0 | 1 |
//! | | 4 | ProductLicenseFlags | 0x80648000 | 0x80808000 |
//! | | 4 | (not in the spec) | 0 | 0 |
//!
//! ProductLicenseFlags: TEMPORARY_LICENSE 0x80000000, RTM_LICENSE 0x00800000, LICENSE_ENFORCED
//! 0x00008000 (spec); bits 16–22 are not in the spec: 0x64 (2008, RTM clear), 0 (2019, RTM set),
//! 0x54 (2003 dump, RTM set) — they look like the license server's version. The major/minor
//! version matches NEW_LICENSE_INFO dwVersion (0x00060000, 0x000A0001).
//!
//! ## 1.3.6.1.4.1.311.18.6 szOID_PKIX_MS_LICENSE_SERVER_INFO ([`LicenseServer`], MS-RDPELE 2.2.2.9.2)
//!
//! Version 2 in both samples: Version DWORD 0x00003000, then WORD offsets IssuerNameOffset (0),
//! IssuerIdOffset, LsScopeOffset counted from the start of the variable data (byte 10), then
//! IssuerName, IssuerId, LsScope as NUL-terminated UTF-16LE, then **2 more zero bytes** (not in
//! the spec). 2008: "RODENT" / "78440-006-5867045-70347" / "WORKGROUP" (offsets 0, 0x0E, 0x3E);
//! 2019: "WIN-4L4L6AMBCSQ" / "00429-00000-34972-AT353" / "WORKGROUP" (0, 0x20, 0x50). IssuerName
//! is the computer name even when the certificate says otherwise (2019: CN=Becker). Version 1
//! (0x00001000, no IssuerId) is read too; no sample has it.
//!
//! ## 2.5.29.35 authorityKeyIdentifier (critical, and not RFC 5280)
//!
//! `SEQUENCE { [1] { [4] { <IssuerName as UTF-16LE + NUL> } }, [2] <serial number> }` —
//! the "directoryName" holds raw UTF-16LE text instead of a Name, and
//! `authorityCertSerialNumber` is the serial number of **the client license itself**, not the
//! issuer's; no keyIdentifier. 2008: `3019 a110 a40e 52004f00440045004e0054000000 8205
//! 030000000f`; 2019 the same with "WIN-4L4L6AMBCSQ" and `0600000006`. OpenSSL cannot decode it
//! (it prints the raw bytes); the parser here does not need it.
//!
//! # Kind and type
//!
//! - **Temporary or permanent** ([`CalKind`]): the TEMPORARY_LICENSE flag of
//!   ProductLicenseFlags, as MS-RDPELE 2.2.2.9.1.1 defines it. All three known CALs are
//!   temporary (90 days) and carry it; there is no permanent sample, so "flag clear ⇒
//!   permanent" rests on the spec alone.
//! - **Per device or per user** ([`CalType`]): the AdjustedProductId's prefix. It is the license
//!   server key pack's product id (`Win32_TSLicenseKeyPack.Description`): public WMI dumps show
//!   per-device packs (ProductType 0) as "A02-6.00-S" and per-user packs (ProductType 1) as
//!   "C50-6.02-S" and "C50-10.01-S"; both samples are "A02-…" (per device, the default mode).
//!   So "A02-" ⇒ per device, "C50-" ⇒ per user. No per-user CAL sample exists (Windows may never
//!   send one to a client: per-user licensing is tracked in Active Directory); the builder and
//!   the parser agree on this encoding. RequestedProductId stays "A02" (the session host's
//!   product) either way. The "-S" suffix is in every pack id seen.
//!
//! # What is a hypothesis
//!
//! The client serial number's split into key pack and license id; the meaning of
//! ProductLicenseFlags bits 16–22 and of extension 18.9, and that it follows activation rather
//! than the Windows version (one sample each way); "C50" for per-user CALs; the HWID mask
//! being the same for products other than A02; the license server certificate's FILETIME
//! serial (one sample); that nothing a client or host checks depends on the activated chain's
//! names, URLs or serials (see [`clearinghouse`]).

mod build;
mod cache;
mod certificate;
pub mod clearinghouse;
mod der_reader;
mod error;
mod extensions;
mod hwid;
mod parse;
mod pkcs7;

use std::time::SystemTime;

pub use build::{build_cal, CalRequest, LicenseSerial, LicenseServerIdentity, ACTIVATED_MS_18_9};
pub use cache::CalCache;
pub use certificate::oid;
pub use error::{CalError, MalformedKind};
pub use extensions::{
    LicenseServer, LicensedProduct, ProductLicenseFlags, ProductVersion, HYDRA_CERT_VERSION,
    LICENSED_PRODUCT_INFO_VERSION, LICENSE_SERVER_INFO_V1, LICENSE_SERVER_INFO_V2, MANUFACTURER,
    WINDOWS_LANGUAGE_ID, WINDOWS_PLATFORM_ID,
};
pub use hwid::{decode_hwid, encode_hwid, HWID_MASK};
pub use parse::parse_cal;
pub use pkcs7::{MAX_CAL_LEN, MAX_CERTIFICATES};

use crate::wire::{ClientHardwareId, NewLicenseInfo, Wire};

/// A CAL as read from its certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cal {
    /// MS_LICENSE_SERVER_INFO: the license server that issued the CAL.
    pub license_server: LicenseServer,
    pub client_license: ClientLicense,
    pub kind: CalKind,
    pub cal_type: CalType,
    /// LICENSED_PRODUCT_INFO.
    pub product: LicensedProduct,
    /// szOID_PKIX_HYDRA_CERT_VERSION (0x00050001), if present.
    pub hydra_cert_version: Option<u32>,
    /// szOID_PKIX_MANUFACTURER ("Microsoft Corporation"), if present.
    pub manufacturer: Option<String>,
    /// The undocumented 1.3.6.1.4.1.311.18.9 extension's bytes, if present.
    pub ms_18_9: Option<Vec<u8>>,
    /// Every certificate of the CAL, in order (the client license is one of them).
    pub certificates: Vec<CertificateSummary>,
}

/// The client license certificate: who the CAL is for and when it holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientLicense {
    /// Subject CN: the client machine name at issue time.
    pub machine: String,
    /// Subject L: the client user name at issue time.
    pub user: String,
    /// The client's HWID, decoded from the subject's serialNumber.
    pub hwid: ClientHardwareId,
    /// The 20 bytes the serialNumber attribute holds (base64-decoded): `HWID XOR HWID_MASK`.
    pub encoded_hwid: [u8; ClientHardwareId::LEN],
    pub not_before: SystemTime,
    pub not_after: SystemTime,
    /// The certificate's serial number: the INTEGER's content bytes.
    pub serial_number: Vec<u8>,
    /// The issuer name, rendered as text.
    pub issuer: String,
    /// The extensions in order.
    pub extensions: Vec<ExtensionSummary>,
}

impl ClientLicense {
    /// The serial number split into key pack and license id, if it has at most 8 bytes.
    pub fn serial(&self) -> Option<LicenseSerial> {
        LicenseSerial::from_serial_number(&self.serial_number)
    }
}

/// One certificate of a CAL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateSummary {
    /// Offset of the certificate in the CAL's DER.
    pub offset: usize,
    pub subject: String,
    pub issuer: String,
    pub serial_number: Vec<u8>,
}

/// One extension of the client license: its OID (dotted) and criticality.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ExtensionSummary {
    pub oid: String,
    pub critical: bool,
}

/// Temporary or permanent: the TEMPORARY_LICENSE flag of ProductLicenseFlags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalKind {
    Temporary,
    Permanent,
}

impl CalKind {
    pub fn of(product: &LicensedProduct) -> Self {
        if product
            .flags
            .contains(ProductLicenseFlags::TEMPORARY_LICENSE)
        {
            Self::Temporary
        } else {
            Self::Permanent
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Temporary => "temporary",
            Self::Permanent => "permanent",
        }
    }
}

/// Per device or per user: the prefix of the AdjustedProductId (the key pack's product id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CalType {
    /// "A02-…": RDS Per Device CAL key packs.
    PerDevice,
    /// "C50-…": RDS Per User CAL key packs.
    PerUser,
    /// Any other prefix.
    Unrecognized,
}

impl CalType {
    /// RequestedProductId, and the per-device key packs' prefix.
    pub const PER_DEVICE_PRODUCT: &'static str = "A02";
    /// The per-user key packs' prefix.
    pub const PER_USER_PRODUCT: &'static str = "C50";

    pub fn of(product: &LicensedProduct) -> Self {
        match product.sku.split('-').next() {
            Some(Self::PER_DEVICE_PRODUCT) => Self::PerDevice,
            Some(Self::PER_USER_PRODUCT) => Self::PerUser,
            _ => Self::Unrecognized,
        }
    }

    /// The AdjustedProductId prefix the builder writes ("A02" for an unrecognized type).
    pub fn product_prefix(self) -> &'static str {
        match self {
            Self::PerUser => Self::PER_USER_PRODUCT,
            Self::PerDevice | Self::Unrecognized => Self::PER_DEVICE_PRODUCT,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::PerDevice => "per_device",
            Self::PerUser => "per_user",
            Self::Unrecognized => "unrecognized",
        }
    }
}

/// What a file holding a CAL holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CalContainer {
    /// The PKCS#7 DER itself: `pbLicenseInfo`, a FreeRDP `.cal` file, a `.p7b`.
    Pkcs7,
    /// A decrypted NEW_LICENSE_INFO with the CAL at its end.
    NewLicenseInfo,
}

impl CalContainer {
    /// DER starts with a SEQUENCE tag (0x30); a NEW_LICENSE_INFO starts with dwVersion, whose low
    /// byte is the minor product version (0x00, 0x01, …).
    pub fn detect(bytes: &[u8]) -> Self {
        if bytes.first() == Some(&0x30) {
            Self::Pkcs7
        } else {
            Self::NewLicenseInfo
        }
    }
}

/// Reads a FreeRDP `.cal` file: it holds exactly `pbLicenseInfo`, the PKCS#7 DER.
pub fn parse_cal_file(bytes: &[u8]) -> Result<Cal, CalError> {
    parse_cal(bytes)
}

/// Reads the CAL of a decoded NEW_LICENSE_INFO (error offsets count from `pbLicenseInfo`).
pub fn cal_from_new_license_info(info: &NewLicenseInfo<'_>) -> Result<Cal, CalError> {
    parse_cal(info.license_info)
}

/// Reads a decrypted NEW_LICENSE_INFO and the CAL in it (error offsets count from the start of
/// `bytes`).
pub fn parse_new_license_info(bytes: &[u8]) -> Result<Cal, CalError> {
    let info = NewLicenseInfo::decode(bytes).map_err(CalError::NewLicenseInfo)?;
    let base = parse::offset_in(bytes, info.license_info);
    cal_from_new_license_info(&info).map_err(|error| error.with_base_offset(base))
}

/// Reads a CAL from either container, detected by [`CalContainer::detect`].
pub fn parse_cal_container(bytes: &[u8]) -> Result<(CalContainer, Cal), CalError> {
    let container = CalContainer::detect(bytes);
    let cal = match container {
        CalContainer::Pkcs7 => parse_cal(bytes)?,
        CalContainer::NewLicenseInfo => parse_new_license_info(bytes)?,
    };
    Ok((container, cal))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    const CAL_2008: &[u8] = include_bytes!("../../../captures/cal_temporary.p7b");
    const CAL_2019: &[u8] = include_bytes!("../../../captures/windows2019_cal_temporary.p7b");
    const NEW_LICENSE_INFO_2019: &[u8] =
        include_bytes!("../../../captures/windows2019_new_license_info.bin");

    #[test]
    fn the_2019_sample_reads_with_its_chain_and_extension_18_9() {
        let cal = parse_cal(CAL_2019).unwrap();
        assert_eq!(cal.client_license.machine, "ubuntu2");
        assert_eq!(cal.client_license.user, "Administrator");
        assert_eq!(cal.client_license.hwid.platform_id, 0x0401_0000);
        assert_eq!(cal.license_server.name, "WIN-4L4L6AMBCSQ");
        assert_eq!(
            cal.license_server.product_id.as_deref(),
            Some("00429-00000-34972-AT353")
        );
        assert_eq!(cal.product.sku, "A02-10.01-S");
        assert_eq!(cal.product.version, ProductVersion::WINDOWS_SERVER_2019);
        assert_eq!(cal.product.flags, ProductLicenseFlags(0x8080_8000));
        assert_eq!(
            (cal.kind, cal.cal_type),
            (CalKind::Temporary, CalType::PerDevice)
        );
        assert_eq!(cal.ms_18_9.as_deref(), Some(&[7u8, 0, 0, 0][..]));
        assert_eq!(cal.certificates.len(), 4);
        assert_eq!(cal.client_license.issuer, "CN=Becker");
        assert_eq!(
            cal.client_license.serial(),
            Some(LicenseSerial {
                key_pack_id: 6,
                license_id: 6
            })
        );
        assert_eq!(parse_new_license_info(NEW_LICENSE_INFO_2019).unwrap(), cal);
        assert_eq!(&NEW_LICENSE_INFO_2019[0x56..], CAL_2019);
    }

    #[test]
    fn errors_inside_a_new_license_info_count_from_its_start() {
        let mut bytes = NEW_LICENSE_INFO_2019.to_vec();
        bytes[0x56 + 4] = 0x05; // the ContentInfo's contentType tag
        let error = parse_new_license_info(&bytes).unwrap_err();
        assert_eq!(error.offset(), Some(0x56 + 4), "{error}");
        assert!(parse_cal_container(&bytes).is_err());
        assert_eq!(
            parse_cal_container(CAL_2008).unwrap().0,
            CalContainer::Pkcs7
        );
    }
}

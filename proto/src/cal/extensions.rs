//! The bodies of the Microsoft licensing extensions (MS-RDPELE 2.2.2.9): little-endian C
//! structures with UTF-16LE strings, carried in X.509 extension OCTET STRINGs. See the layouts in
//! the [module documentation](super).

use super::error::{CalError, MalformedKind};

/// `Version` of LICENSED_PRODUCT_INFO in every CAL seen.
pub const LICENSED_PRODUCT_INFO_VERSION: u32 = 0x0000_3000;
/// `Version` of MS_LICENSE_SERVER_INFO_V1 (MS-RDPELE 2.2.2.9.2.1).
pub const LICENSE_SERVER_INFO_V1: u32 = 0x0000_1000;
/// `Version` of MS_LICENSE_SERVER_INFO_V2 (MS-RDPELE 2.2.2.9.2.2), the one Windows writes.
pub const LICENSE_SERVER_INFO_V2: u32 = 0x0000_3000;
/// The szOID_PKIX_HYDRA_CERT_VERSION value in every CAL seen (major 5, minor 1).
pub const HYDRA_CERT_VERSION: u32 = 0x0005_0001;
/// The szOID_PKIX_MANUFACTURER value Windows writes.
pub const MANUFACTURER: &str = "Microsoft Corporation";
/// PlatformId Windows writes into LICENSED_PRODUCT_INFO, whatever the client sent.
pub const WINDOWS_PLATFORM_ID: u32 = 0x0000_00FF;
/// LicensedLanguageId in both samples: MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT).
pub const WINDOWS_LANGUAGE_ID: u32 = 0x0000_0400;

/// Fixed part of LICENSED_PRODUCT_INFO, up to the variable data.
const PRODUCT_INFO_HEADER_LEN: usize = 28;
/// Fixed part of MS_LICENSE_SERVER_INFO_V2 (V1 is 8).
const SERVER_INFO_V2_HEADER_LEN: usize = 10;
const SERVER_INFO_V1_HEADER_LEN: usize = 8;
/// LICENSED_VERSION_INFO as the spec defines it.
const VERSION_INFO_LEN: usize = 8;
/// Bytes Windows writes after the LICENSED_VERSION_INFO (zero in both samples; not in the spec).
const PRODUCT_INFO_TRAILER: [u8; 4] = [0; 4];
/// Bytes Windows writes after LsScope's terminator (zero in both samples; not in the spec).
const SERVER_INFO_TRAILER: [u8; 2] = [0; 2];

/// `ProductLicenseFlags` of LICENSED_VERSION_INFO (MS-RDPELE 2.2.2.9.1.1). Unknown bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ProductLicenseFlags(pub u32);

impl ProductLicenseFlags {
    pub const LICENSE_ENFORCED: Self = Self(0x0000_8000);
    pub const RTM_LICENSE: Self = Self(0x0080_0000);
    pub const TEMPORARY_LICENSE: Self = Self(0x8000_0000);

    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    #[must_use]
    pub const fn without(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    /// Bits 16–22, which the spec leaves out: 0x54 in a Windows Server 2003 CAL, 0x64 in the
    /// 2008 sample, 0 in the 2019 sample — they look like the issuing license server's version.
    pub const fn license_server_version_bits(self) -> u8 {
        let [_, _, bits, _] = self.0.to_le_bytes();
        bits & 0x7F
    }

    /// The names of the documented flags that are set.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::TEMPORARY_LICENSE, "TEMPORARY_LICENSE"),
            (Self::RTM_LICENSE, "RTM_LICENSE"),
            (Self::LICENSE_ENFORCED, "LICENSE_ENFORCED"),
        ]
        .into_iter()
        .filter(|(flag, _)| self.contains(*flag))
        .map(|(_, name)| name)
        .collect()
    }
}

/// LICENSED_PRODUCT_INFO (szOID_PKIX_LICENSED_PRODUCT_INFO, 1.3.6.1.4.1.311.18.5): what the CAL
/// licenses.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LicensedProduct {
    /// `Version` of the structure (0x3000).
    pub structure_version: u32,
    /// `LicenseCount`: 1 in every CAL seen.
    pub quantity: u32,
    /// `PlatformId`: 0xFF in every CAL seen (not the client's PlatformId, despite the spec).
    pub platform_id: u32,
    /// `LicensedLanguageId` of the issuing license server.
    pub language_id: u32,
    /// `RequestedProductId`: the product the session host asked for ("A02").
    pub product_id: String,
    /// `AdjustedProductId`: the license server's key pack product ("A02-6.00-S").
    pub sku: String,
    /// `ProductLicenseMajorVersion` / `ProductLicenseMinorVersion`.
    pub version: ProductVersion,
    pub flags: ProductLicenseFlags,
}

/// A product version as licensing writes it: 6.0 is Windows Server 2008, 10.1 Windows Server
/// 2019 (`dwVersion` 0x000A0001 in the NEW_LICENSE_INFO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductVersion {
    pub major: u16,
    pub minor: u16,
}

impl ProductVersion {
    /// Windows Server 2008 (the 2007 sample's "A02-6.00-S").
    pub const WINDOWS_SERVER_2008: Self = Self { major: 6, minor: 0 };
    /// Windows Server 2019 (the 2019 sample's "A02-10.01-S").
    pub const WINDOWS_SERVER_2019: Self = Self {
        major: 10,
        minor: 1,
    };

    /// As MS-RDPELE's `dwVersion` fields carry it: major in the high word.
    pub fn as_dword(self) -> u32 {
        (u32::from(self.major) << 16) | u32::from(self.minor)
    }

    /// The inverse of [`Self::as_dword`].
    pub fn from_dword(dword: u32) -> Self {
        let [minor_low, minor_high, major_low, major_high] = dword.to_le_bytes();
        Self {
            major: u16::from_le_bytes([major_low, major_high]),
            minor: u16::from_le_bytes([minor_low, minor_high]),
        }
    }
}

impl core::fmt::Display for ProductVersion {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{:02}", self.major, self.minor)
    }
}

/// MS_LICENSE_SERVER_INFO (szOID_PKIX_MS_LICENSE_SERVER_INFO, 1.3.6.1.4.1.311.18.6): who issued
/// the CAL.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LicenseServer {
    /// `IssuerName`: the license server's computer name.
    pub name: String,
    /// `LsScope`: the domain, or the workgroup of a server outside a domain.
    pub domain_or_workgroup: String,
    /// `IssuerId` (version 2 only): the license server's product id ("78440-006-5867045-70347").
    pub product_id: Option<String>,
}

/// Little-endian fields of one extension body, with offsets reported from the start of the input.
struct Body<'a> {
    data: &'a [u8],
    base: usize,
    structure: &'static str,
}

impl<'a> Body<'a> {
    fn error(&self, field: &'static str, at: usize, kind: MalformedKind) -> CalError {
        CalError::malformed(self.structure, field, self.base.saturating_add(at), kind)
    }

    fn bytes(&self, at: usize, len: usize, field: &'static str) -> Result<&'a [u8], CalError> {
        if at > self.data.len() {
            return Err(self.error(
                field,
                self.data.len(),
                MalformedKind::OffsetBeyondEnd {
                    offset: u64::try_from(at).unwrap_or(u64::MAX),
                    available: self.data.len(),
                },
            ));
        }
        at.checked_add(len)
            .and_then(|end| self.data.get(at..end))
            .ok_or_else(|| self.error(field, at, MalformedKind::Truncated))
    }

    fn u16(&self, at: usize, field: &'static str) -> Result<u16, CalError> {
        let bytes = self.bytes(at, 2, field)?;
        <[u8; 2]>::try_from(bytes)
            .map(u16::from_le_bytes)
            .map_err(|_| self.error(field, at, MalformedKind::Truncated))
    }

    fn u32(&self, at: usize, field: &'static str) -> Result<u32, CalError> {
        let bytes = self.bytes(at, 4, field)?;
        <[u8; 4]>::try_from(bytes)
            .map(u32::from_le_bytes)
            .map_err(|_| self.error(field, at, MalformedKind::Truncated))
    }

    /// A UTF-16LE string of exactly `len` bytes at `at`; one terminating NUL is dropped.
    fn utf16(&self, at: usize, len: usize, field: &'static str) -> Result<String, CalError> {
        let bytes = self.bytes(at, len, field)?;
        decode_utf16le(bytes)
            .map(|text| strip_nul(&text).to_owned())
            .map_err(|kind| self.error(field, at, kind))
    }

    /// A NUL-terminated UTF-16LE string starting at `at`; returns it and the offset after the NUL.
    fn utf16z(&self, at: usize, field: &'static str) -> Result<(String, usize), CalError> {
        let rest = self.bytes(at, self.data.len().saturating_sub(at), field)?;
        let units = rest.chunks_exact(2).position(|unit| unit == [0, 0]);
        let Some(units) = units else {
            return Err(self.error(field, at, MalformedKind::InvalidText("no NUL terminator")));
        };
        let len = units.saturating_mul(2);
        let text = self.utf16(at, len, field)?;
        Ok((text, at.saturating_add(len).saturating_add(2)))
    }
}

fn strip_nul(text: &str) -> &str {
    text.strip_suffix('\0').unwrap_or(text)
}

/// Decodes UTF-16LE (surrogate pairs allowed, lone surrogates refused).
pub(crate) fn decode_utf16le(bytes: &[u8]) -> Result<String, MalformedKind> {
    if !bytes.len().is_multiple_of(2) {
        return Err(MalformedKind::InvalidText("odd length for UTF-16"));
    }
    let units = bytes.chunks_exact(2).map(|unit| match unit {
        [low, high] => u16::from_le_bytes([*low, *high]),
        _ => 0,
    });
    char::decode_utf16(units)
        .collect::<Result<String, _>>()
        .map_err(|_| MalformedKind::InvalidText("lone UTF-16 surrogate"))
}

/// `text` as UTF-16LE followed by a NUL unit.
pub(crate) fn encode_utf16z(text: &str) -> Vec<u8> {
    text.encode_utf16()
        .chain(core::iter::once(0))
        .flat_map(u16::to_le_bytes)
        .collect()
}

fn offset_u16(value: usize, field: &'static str) -> Result<u16, CalError> {
    u16::try_from(value).map_err(|_| CalError::InvalidInput {
        field,
        reason: format!("{value} bytes do not fit the 16-bit offsets of the structure"),
    })
}

impl LicensedProduct {
    const NAME: &'static str = "LICENSED_PRODUCT_INFO";

    /// Reads the extension body; `base` is its offset in the input, for error offsets.
    pub(crate) fn parse(data: &[u8], base: usize) -> Result<Self, CalError> {
        let body = Body {
            data,
            base,
            structure: Self::NAME,
        };
        let structure_version = body.u32(0, "Version")?;
        let quantity = body.u32(4, "LicenseCount")?;
        let platform_id = body.u32(8, "PlatformId")?;
        let language_id = body.u32(12, "LicensedLanguageId")?;
        let requested_at = body.u16(16, "RequestedProductIdOffset")?;
        let requested_len = body.u16(18, "RequestedProductIdByteCount")?;
        let adjusted_at = body.u16(20, "AdjustedProductIdOffset")?;
        let adjusted_len = body.u16(22, "AdjustedProductIdByteCount")?;
        let version_at = body.u16(24, "LicensedVersionInfoOffset")?;
        let version_count = body.u16(26, "LicensedVersionInfoCount")?;
        if version_count != 1 {
            return Err(body.error(
                "LicensedVersionInfoCount",
                26,
                MalformedKind::UnsupportedValue {
                    value: u64::from(version_count),
                },
            ));
        }
        let product_id = body.utf16(
            requested_at.into(),
            requested_len.into(),
            "RequestedProductId",
        )?;
        let sku = body.utf16(adjusted_at.into(), adjusted_len.into(), "AdjustedProductId")?;
        let version_at = usize::from(version_at);
        let version = ProductVersion {
            major: body.u16(version_at, "ProductLicenseMajorVersion")?,
            minor: body.u16(version_at.saturating_add(2), "ProductLicenseMinorVersion")?,
        };
        let flags =
            ProductLicenseFlags(body.u32(version_at.saturating_add(4), "ProductLicenseFlags")?);
        Ok(Self {
            structure_version,
            quantity,
            platform_id,
            language_id,
            product_id,
            sku,
            version,
            flags,
        })
    }

    /// The extension body as Windows lays it out: header, RequestedProductId,
    /// AdjustedProductId, LICENSED_VERSION_INFO, then 4 zero bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, CalError> {
        let requested = encode_utf16z(&self.product_id);
        let adjusted = encode_utf16z(&self.sku);
        let requested_at = PRODUCT_INFO_HEADER_LEN;
        let adjusted_at = requested_at.saturating_add(requested.len());
        let version_at = adjusted_at.saturating_add(adjusted.len());
        let total = version_at
            .saturating_add(VERSION_INFO_LEN)
            .saturating_add(PRODUCT_INFO_TRAILER.len());
        offset_u16(total, "LICENSED_PRODUCT_INFO")?;
        let mut out = Vec::with_capacity(total);
        for value in [
            self.structure_version,
            self.quantity,
            self.platform_id,
            self.language_id,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for value in [
            offset_u16(requested_at, "RequestedProductIdOffset")?,
            offset_u16(requested.len(), "RequestedProductIdByteCount")?,
            offset_u16(adjusted_at, "AdjustedProductIdOffset")?,
            offset_u16(adjusted.len(), "AdjustedProductIdByteCount")?,
            offset_u16(version_at, "LicensedVersionInfoOffset")?,
            1,
        ] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        out.extend_from_slice(&requested);
        out.extend_from_slice(&adjusted);
        out.extend_from_slice(&self.version.major.to_le_bytes());
        out.extend_from_slice(&self.version.minor.to_le_bytes());
        out.extend_from_slice(&self.flags.0.to_le_bytes());
        out.extend_from_slice(&PRODUCT_INFO_TRAILER);
        Ok(out)
    }
}

impl LicenseServer {
    const NAME: &'static str = "MS_LICENSE_SERVER_INFO";

    /// Reads either version of the extension body; `base` is its offset in the input.
    pub(crate) fn parse(data: &[u8], base: usize) -> Result<Self, CalError> {
        let body = Body {
            data,
            base,
            structure: Self::NAME,
        };
        let version = body.u32(0, "Version")?;
        let name_at = body.u16(4, "IssuerNameOffset")?;
        let (id_at, scope_at, header_len) = match version {
            LICENSE_SERVER_INFO_V2 => (
                Some(body.u16(6, "IssuerIdOffset")?),
                body.u16(8, "LsScopeOffset")?,
                SERVER_INFO_V2_HEADER_LEN,
            ),
            LICENSE_SERVER_INFO_V1 => (
                None,
                body.u16(6, "LsScopeOffset")?,
                SERVER_INFO_V1_HEADER_LEN,
            ),
            other => {
                return Err(body.error(
                    "Version",
                    0,
                    MalformedKind::UnsupportedValue {
                        value: u64::from(other),
                    },
                ))
            }
        };
        let at = |offset: u16| header_len.saturating_add(offset.into());
        let (name, _) = body.utf16z(at(name_at), "IssuerName")?;
        let product_id = match id_at {
            Some(id_at) => Some(body.utf16z(at(id_at), "IssuerId")?.0),
            None => None,
        };
        let (domain_or_workgroup, _) = body.utf16z(at(scope_at), "LsScope")?;
        Ok(Self {
            name,
            domain_or_workgroup,
            product_id,
        })
    }

    /// The extension body as Windows lays it out: version 2 (version 1 without a product id),
    /// the three strings back to back, then 2 zero bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>, CalError> {
        let name = encode_utf16z(&self.name);
        let id = self.product_id.as_deref().map(encode_utf16z);
        let scope = encode_utf16z(&self.domain_or_workgroup);
        let (version, header_len) = if id.is_some() {
            (LICENSE_SERVER_INFO_V2, SERVER_INFO_V2_HEADER_LEN)
        } else {
            (LICENSE_SERVER_INFO_V1, SERVER_INFO_V1_HEADER_LEN)
        };
        let id_len = id.as_ref().map_or(0, Vec::len);
        let scope_at = name.len().saturating_add(id_len);
        let total = header_len
            .saturating_add(scope_at)
            .saturating_add(scope.len())
            .saturating_add(SERVER_INFO_TRAILER.len());
        offset_u16(total, "MS_LICENSE_SERVER_INFO")?;
        let mut out = Vec::with_capacity(total);
        out.extend_from_slice(&version.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        if id.is_some() {
            out.extend_from_slice(&offset_u16(name.len(), "IssuerIdOffset")?.to_le_bytes());
        }
        out.extend_from_slice(&offset_u16(scope_at, "LsScopeOffset")?.to_le_bytes());
        out.extend_from_slice(&name);
        if let Some(id) = &id {
            out.extend_from_slice(id);
        }
        out.extend_from_slice(&scope);
        out.extend_from_slice(&SERVER_INFO_TRAILER);
        Ok(out)
    }
}

/// Reads szOID_PKIX_HYDRA_CERT_VERSION: one little-endian DWORD.
pub(crate) fn parse_cert_version(data: &[u8], base: usize) -> Result<u32, CalError> {
    let body = Body {
        data,
        base,
        structure: "HYDRA_CERT_VERSION",
    };
    let version = body.u32(0, "dwVersion")?;
    if data.len() != 4 {
        return Err(body.error(
            "dwVersion",
            4,
            MalformedKind::TrailingBytes {
                count: data.len().saturating_sub(4),
            },
        ));
    }
    Ok(version)
}

/// Reads szOID_PKIX_MANUFACTURER: a NUL-terminated UTF-16LE string.
pub(crate) fn parse_manufacturer(data: &[u8], base: usize) -> Result<String, CalError> {
    let body = Body {
        data,
        base,
        structure: "MANUFACTURER",
    };
    body.utf16(0, data.len(), "szManufacturer")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    /// The 18.5 body of captures/cal_temporary.p7b (Windows Server 2008).
    const PRODUCT_2008: &str =
        "0030000001000000ff000000000400001c000800240016003a000100410030003200000041003000320\
        02d0036002e00300030002d0053000000060000000080648000000000";
    /// The 18.6 body of captures/cal_temporary.p7b.
    const SERVER_2008: &str = "0030000000000e003e0052004f00440045004e0054000000370038003400340030002d00300030003600\
        2d0035003800360037003000340035002d0037003000330034003700000057004f0052004b00470052004f005500500000000000";

    #[test]
    fn licensed_product_info_of_the_2008_sample_reads_and_reencodes_byte_exact() {
        let bytes = hex::decode(PRODUCT_2008).unwrap();
        let product = LicensedProduct::parse(&bytes, 0).unwrap();
        assert_eq!(
            product,
            LicensedProduct {
                structure_version: LICENSED_PRODUCT_INFO_VERSION,
                quantity: 1,
                platform_id: 0xFF,
                language_id: 0x400,
                product_id: "A02".into(),
                sku: "A02-6.00-S".into(),
                version: ProductVersion::WINDOWS_SERVER_2008,
                flags: ProductLicenseFlags(0x8064_8000),
            }
        );
        assert_eq!(product.encode().unwrap(), bytes);
        assert_eq!(
            product.flags.names(),
            ["TEMPORARY_LICENSE", "LICENSE_ENFORCED"]
        );
        assert_eq!(product.flags.license_server_version_bits(), 0x64);
    }

    #[test]
    fn license_server_info_of_the_2008_sample_reads_and_reencodes_byte_exact() {
        let bytes = hex::decode(SERVER_2008).unwrap();
        let server = LicenseServer::parse(&bytes, 0).unwrap();
        assert_eq!(
            server,
            LicenseServer {
                name: "RODENT".into(),
                domain_or_workgroup: "WORKGROUP".into(),
                product_id: Some("78440-006-5867045-70347".into()),
            }
        );
        assert_eq!(server.encode().unwrap(), bytes);
    }

    #[test]
    fn license_server_info_version_1_round_trips() {
        let server = LicenseServer {
            name: "LS".into(),
            domain_or_workgroup: "CORP".into(),
            product_id: None,
        };
        let bytes = server.encode().unwrap();
        assert_eq!(&bytes[..8], &[0x00, 0x10, 0, 0, 0, 0, 6, 0]);
        assert_eq!(LicenseServer::parse(&bytes, 0).unwrap(), server);
    }

    #[test]
    fn bad_offsets_and_lengths_are_errors_with_offsets() {
        let mut bytes = hex::decode(PRODUCT_2008).unwrap();
        bytes[20] = 0xF0; // AdjustedProductIdOffset beyond the body
        let error = LicensedProduct::parse(&bytes, 100).unwrap_err();
        assert!(matches!(
            error,
            CalError::Malformed {
                field: "AdjustedProductId",
                ..
            }
        ));
        let error = LicenseServer::parse(&hex::decode(SERVER_2008).unwrap()[..30], 7).unwrap_err();
        assert!(matches!(
            error,
            CalError::Malformed {
                field: "IssuerId",
                offset: 31,
                ..
            }
        ));
        for len in 0..hex::decode(PRODUCT_2008).unwrap().len() {
            let _ = LicensedProduct::parse(&hex::decode(PRODUCT_2008).unwrap()[..len], 0);
        }
    }

    #[test]
    fn product_version_formats_as_in_the_key_pack_ids() {
        assert_eq!(ProductVersion::WINDOWS_SERVER_2008.to_string(), "6.00");
        assert_eq!(ProductVersion::WINDOWS_SERVER_2019.to_string(), "10.01");
        assert_eq!(ProductVersion::WINDOWS_SERVER_2019.as_dword(), 0x000A_0001);
    }
}

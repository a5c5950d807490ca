//! MS-RDPBCGR 2.2.8.1.1.2 Security Headers: basic (TS_SECURITY_HEADER), non-FIPS
//! (TS_SECURITY_HEADER1) and FIPS (TS_SECURITY_HEADER2).

use bytes::BufMut;

use crate::wire::codec::{take_array, u16_le, u8_field, Parse, Wire};
use crate::wire::error::{fail, EncodeError, PResult, WireError, WireErrorKind};

/// `flags` of TS_SECURITY_HEADER (MS-RDPBCGR 2.2.8.1.1.2.1): a bit set. Unknown bits are kept.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecurityFlags(pub u16);

impl SecurityFlags {
    pub const SEC_EXCHANGE_PKT: Self = Self(0x0001);
    pub const SEC_TRANSPORT_REQ: Self = Self(0x0002);
    pub const SEC_TRANSPORT_RSP: Self = Self(0x0004);
    pub const SEC_ENCRYPT: Self = Self(0x0008);
    pub const SEC_RESET_SEQNO: Self = Self(0x0010);
    pub const SEC_IGNORE_SEQNO: Self = Self(0x0020);
    pub const SEC_INFO_PKT: Self = Self(0x0040);
    pub const SEC_LICENSE_PKT: Self = Self(0x0080);
    /// Client to server: the client can decrypt licensing PDUs the server encrypts.
    pub const SEC_LICENSE_ENCRYPT_CS: Self = Self(0x0200);
    /// Server to client: the same bit, asking the client to encrypt its licensing PDUs.
    pub const SEC_LICENSE_ENCRYPT_SC: Self = Self(0x0200);
    pub const SEC_REDIRECTION_PKT: Self = Self(0x0400);
    pub const SEC_SECURE_CHECKSUM: Self = Self(0x0800);
    pub const SEC_AUTODETECT_REQ: Self = Self(0x1000);
    pub const SEC_AUTODETECT_RSP: Self = Self(0x2000);
    pub const SEC_HEARTBEAT: Self = Self(0x4000);
    pub const SEC_FLAGSHI_VALID: Self = Self(0x8000);

    /// Names for Debug; 0x0200 has one name per direction and is printed with both.
    const NAMES: [(&'static str, Self); 15] = [
        ("SEC_EXCHANGE_PKT", Self::SEC_EXCHANGE_PKT),
        ("SEC_TRANSPORT_REQ", Self::SEC_TRANSPORT_REQ),
        ("SEC_TRANSPORT_RSP", Self::SEC_TRANSPORT_RSP),
        ("SEC_ENCRYPT", Self::SEC_ENCRYPT),
        ("SEC_RESET_SEQNO", Self::SEC_RESET_SEQNO),
        ("SEC_IGNORE_SEQNO", Self::SEC_IGNORE_SEQNO),
        ("SEC_INFO_PKT", Self::SEC_INFO_PKT),
        ("SEC_LICENSE_PKT", Self::SEC_LICENSE_PKT),
        ("SEC_LICENSE_ENCRYPT_CS/SC", Self::SEC_LICENSE_ENCRYPT_CS),
        ("SEC_REDIRECTION_PKT", Self::SEC_REDIRECTION_PKT),
        ("SEC_SECURE_CHECKSUM", Self::SEC_SECURE_CHECKSUM),
        ("SEC_AUTODETECT_REQ", Self::SEC_AUTODETECT_REQ),
        ("SEC_AUTODETECT_RSP", Self::SEC_AUTODETECT_RSP),
        ("SEC_HEARTBEAT", Self::SEC_HEARTBEAT),
        ("SEC_FLAGSHI_VALID", Self::SEC_FLAGSHI_VALID),
    ];

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// Reads the first two bytes of a Send Data's userData as security flags. Only meaningful
    /// where a security header is present: always on licensing PDUs (MS-RDPBCGR 2.2.1.12), so
    /// SEC_LICENSE_PKT here is how a receiver tells a licensing PDU from the rest.
    pub fn peek(user_data: &[u8]) -> Option<Self> {
        let (flags, _) = user_data.split_first_chunk::<2>()?;
        Some(Self(u16::from_le_bytes(*flags)))
    }
}

impl core::ops::BitOr for SecurityFlags {
    type Output = Self;

    fn bitor(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl SecurityFlags {
    /// The spec names of the flags that are set, in bit order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        Self::NAMES
            .into_iter()
            .filter(move |(_, flag)| self.contains(*flag))
            .map(|(name, _)| name)
    }
}

impl core::fmt::Debug for SecurityFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:#06x} (", self.0)?;
        let mut unnamed = self.0;
        let mut separator = "";
        for (name, flag) in Self::NAMES {
            if self.contains(flag) {
                write!(f, "{separator}{name}")?;
                unnamed &= !flag.0;
                separator = " | ";
            }
        }
        if unnamed != 0 {
            write!(f, "{separator}{unnamed:#06x}")?;
        }
        f.write_str(")")
    }
}

/// Which security header precedes the data: it is not self-describing but follows from the
/// encryption method and level the server chose (MS-RDPBCGR 2.2.1.4.3, 5.3.2).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum SecurityHeaderKind {
    /// ENCRYPTION_LEVEL_NONE or LOW without SEC_ENCRYPT, and every licensing PDU over TLS.
    Basic,
    /// 40-, 56- or 128-bit RC4: the data is signed and encrypted.
    NonFips,
    /// ENCRYPTION_METHOD_FIPS.
    Fips,
}

/// MS-RDPBCGR 2.2.8.1.1.2.1 Basic (TS_SECURITY_HEADER): `flags` and `flagsHi`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct SecurityHeader {
    pub flags: SecurityFlags,
    /// Meaningful only with SEC_FLAGSHI_VALID; otherwise "MAY contain random data", and peers
    /// do (xrdp 0.9.21: 0x013e in its License Request), so it is kept.
    pub flags_hi: u16,
}

impl SecurityHeader {
    pub const LEN: usize = 4;

    pub fn new(flags: SecurityFlags) -> Self {
        Self { flags, flags_hi: 0 }
    }

    /// Decodes whichever header `kind` says precedes the data, returning it and its length;
    /// the data follows.
    pub fn decode_prefix_with(
        input: &[u8],
        kind: SecurityHeaderKind,
    ) -> Result<(AnySecurityHeader, usize), WireError> {
        match kind {
            SecurityHeaderKind::Basic => Self::decode_prefix(input).map(|(h, n)| (h.into(), n)),
            SecurityHeaderKind::NonFips => {
                NonFipsSecurityHeader::decode_prefix(input).map(|(h, n)| (h.into(), n))
            }
            SecurityHeaderKind::Fips => {
                FipsSecurityHeader::decode_prefix(input).map(|(h, n)| (h.into(), n))
            }
        }
    }

    fn parse_as<'a>(input: &'a [u8], structure: &'static str) -> PResult<'a, Self> {
        let (input, flags) = u16_le(input, structure, "flags")?;
        let (input, flags_hi) = u16_le(input, structure, "flagsHi")?;
        Ok((
            input,
            Self {
                flags: SecurityFlags(flags),
                flags_hi,
            },
        ))
    }
}

impl<'a> Wire<'a> for SecurityHeader {
    const NAME: &'static str = "TS_SECURITY_HEADER";

    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u16_le(self.flags.0);
        buf.put_u16_le(self.flags_hi);
        Ok(())
    }
}

impl<'a> Parse<'a> for SecurityHeader {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        Self::parse_as(input, Self::NAME)
    }
}

/// MS-RDPBCGR 2.2.8.1.1.2.2 Non-FIPS (TS_SECURITY_HEADER1): the basic header and the MAC of the
/// data that follows (encrypted with RC4 when SEC_ENCRYPT is set).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NonFipsSecurityHeader {
    pub basic: SecurityHeader,
    pub data_signature: [u8; 8],
}

impl<'a> Wire<'a> for NonFipsSecurityHeader {
    const NAME: &'static str = "TS_SECURITY_HEADER1";

    fn encoded_len(&self) -> usize {
        SecurityHeader::LEN + self.data_signature.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.basic.encode(buf)?;
        buf.put_slice(&self.data_signature);
        Ok(())
    }
}

impl<'a> Parse<'a> for NonFipsSecurityHeader {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (input, basic) = SecurityHeader::parse_as(input, Self::NAME)?;
        let (input, data_signature) = take_array(input, Self::NAME, "dataSignature")?;
        Ok((
            input,
            Self {
                basic,
                data_signature,
            },
        ))
    }
}

/// MS-RDPBCGR 2.2.8.1.1.2.3 FIPS (TS_SECURITY_HEADER2): the basic header, `length` (always
/// 0x10, the header's own size), `version`, `padlen` and the MAC.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FipsSecurityHeader {
    pub basic: SecurityHeader,
    /// TSFIPS_VERSION1 (0x01) from every known peer; kept as seen.
    pub version: u8,
    /// Padding bytes appended to the data before 3DES encryption.
    pub padlen: u8,
    pub data_signature: [u8; 8],
}

impl FipsSecurityHeader {
    /// `length`: the whole header. Any other value would mean a layout this code does not know.
    pub const LENGTH: u16 = 0x10;
    pub const TSFIPS_VERSION1: u8 = 0x01;
}

impl<'a> Wire<'a> for FipsSecurityHeader {
    const NAME: &'static str = "TS_SECURITY_HEADER2";

    fn encoded_len(&self) -> usize {
        usize::from(Self::LENGTH)
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.basic.encode(buf)?;
        buf.put_u16_le(Self::LENGTH);
        buf.put_u8(self.version);
        buf.put_u8(self.padlen);
        buf.put_slice(&self.data_signature);
        Ok(())
    }
}

impl<'a> Parse<'a> for FipsSecurityHeader {
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, basic) = SecurityHeader::parse_as(input, Self::NAME)?;
        let (after_length, length) = u16_le(rest, Self::NAME, "length")?;
        if length != Self::LENGTH {
            return fail(
                rest,
                Self::NAME,
                "length",
                WireErrorKind::UnsupportedValue {
                    value: length.into(),
                },
            );
        }
        let (rest, version) = u8_field(after_length, Self::NAME, "version")?;
        let (rest, padlen) = u8_field(rest, Self::NAME, "padlen")?;
        let (rest, data_signature) = take_array(rest, Self::NAME, "dataSignature")?;
        Ok((
            rest,
            Self {
                basic,
                version,
                padlen,
                data_signature,
            },
        ))
    }
}

/// A security header of the kind given to [`SecurityHeader::decode_prefix_with`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum AnySecurityHeader {
    Basic(SecurityHeader),
    NonFips(NonFipsSecurityHeader),
    Fips(FipsSecurityHeader),
}

impl AnySecurityHeader {
    /// `flags` and `flagsHi`, which every kind starts with.
    pub fn basic(&self) -> SecurityHeader {
        match self {
            Self::Basic(header) => *header,
            Self::NonFips(header) => header.basic,
            Self::Fips(header) => header.basic,
        }
    }

    pub fn kind(&self) -> SecurityHeaderKind {
        match self {
            Self::Basic(_) => SecurityHeaderKind::Basic,
            Self::NonFips(_) => SecurityHeaderKind::NonFips,
            Self::Fips(_) => SecurityHeaderKind::Fips,
        }
    }

    pub fn encoded_len(&self) -> usize {
        match self {
            Self::Basic(header) => header.encoded_len(),
            Self::NonFips(header) => header.encoded_len(),
            Self::Fips(header) => header.encoded_len(),
        }
    }

    pub fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            Self::Basic(header) => header.encode(buf),
            Self::NonFips(header) => header.encode(buf),
            Self::Fips(header) => header.encode(buf),
        }
    }
}

impl From<SecurityHeader> for AnySecurityHeader {
    fn from(header: SecurityHeader) -> Self {
        Self::Basic(header)
    }
}

impl From<NonFipsSecurityHeader> for AnySecurityHeader {
    fn from(header: NonFipsSecurityHeader) -> Self {
        Self::NonFips(header)
    }
}

impl From<FipsSecurityHeader> for AnySecurityHeader {
    fn from(header: FipsSecurityHeader) -> Self {
        Self::Fips(header)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The security header of MS-RDPBCGR 4.1.11 (Server License Error PDU - Valid Client, sent
    /// encrypted): flags 0x0288, junk flagsHi, and the MAC.
    const SPEC_NON_FIPS: [u8; 12] = [
        0x88, 0x02, 0x02, 0x03, 0x8d, 0x43, 0x9a, 0xab, 0xd5, 0x2a, 0x31, 0x39,
    ];

    #[test]
    fn keeps_xrdp_junk_flags_hi() {
        let bytes = [0x80, 0x00, 0x3e, 0x01];
        let header = SecurityHeader::decode(&bytes).unwrap();
        assert_eq!(header.flags, SecurityFlags::SEC_LICENSE_PKT);
        assert_eq!(header.flags_hi, 0x013e);
        assert_eq!(header.to_vec().unwrap(), bytes);
    }

    #[test]
    fn parses_spec_non_fips_header_and_encodes_byte_exact() {
        let (header, consumed) =
            SecurityHeader::decode_prefix_with(&SPEC_NON_FIPS, SecurityHeaderKind::NonFips)
                .unwrap();
        let rest = &SPEC_NON_FIPS[consumed..];
        assert!(rest.is_empty());
        assert_eq!(header.kind(), SecurityHeaderKind::NonFips);
        let basic = header.basic();
        assert_eq!(
            basic.flags,
            SecurityFlags::SEC_ENCRYPT
                | SecurityFlags::SEC_LICENSE_PKT
                | SecurityFlags::SEC_LICENSE_ENCRYPT_CS
        );
        assert_eq!(basic.flags_hi, 0x0302);
        let AnySecurityHeader::NonFips(non_fips) = header else {
            panic!("{header:?}")
        };
        assert_eq!(non_fips.data_signature, SPEC_NON_FIPS[4..]);
        assert_eq!(header.encoded_len(), SPEC_NON_FIPS.len());
        let mut out = Vec::new();
        header.encode(&mut out).unwrap();
        assert_eq!(out, SPEC_NON_FIPS);
    }

    #[test]
    fn decode_prefix_leaves_the_data_and_reports_a_short_header() {
        let (header, consumed) = SecurityHeader::decode_prefix(&SPEC_NON_FIPS).unwrap();
        assert_eq!(consumed, SecurityHeader::LEN);
        assert_eq!(header.flags_hi, 0x0302);
        let err = SecurityHeader::decode_prefix(&SPEC_NON_FIPS[..3]).unwrap_err();
        assert_eq!((err.field, err.kind), ("flagsHi", WireErrorKind::Truncated));
    }

    #[test]
    fn basic_kind_reads_only_four_bytes() {
        let (header, consumed) =
            SecurityHeader::decode_prefix_with(&SPEC_NON_FIPS, SecurityHeaderKind::Basic).unwrap();
        let rest = &SPEC_NON_FIPS[consumed..];
        assert_eq!(rest, &SPEC_NON_FIPS[4..]);
        assert_eq!(header, AnySecurityHeader::Basic(header.basic()));
    }

    #[test]
    fn fips_header_round_trips() {
        let bytes = [
            0x08, 0x00, 0x00, 0x00, 0x10, 0x00, 0x01, 0x03, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let header = FipsSecurityHeader::decode(&bytes).unwrap();
        assert_eq!(header.basic.flags, SecurityFlags::SEC_ENCRYPT);
        assert_eq!(header.version, FipsSecurityHeader::TSFIPS_VERSION1);
        assert_eq!(header.padlen, 3);
        assert_eq!(header.data_signature, [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(header.to_vec().unwrap(), bytes);
        let (any, _) =
            SecurityHeader::decode_prefix_with(&bytes, SecurityHeaderKind::Fips).unwrap();
        assert_eq!(any, AnySecurityHeader::Fips(header));
    }

    #[test]
    fn fips_header_with_other_length_is_rejected() {
        let bytes = [
            0x08, 0x00, 0x00, 0x00, 0x0c, 0x00, 0x01, 0x03, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        let err = FipsSecurityHeader::decode(&bytes).unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("TS_SECURITY_HEADER2", "length", 4)
        );
    }

    #[test]
    fn every_prefix_of_a_non_fips_header_is_rejected() {
        for len in 0..SPEC_NON_FIPS.len() {
            let err = NonFipsSecurityHeader::decode(&SPEC_NON_FIPS[..len]).unwrap_err();
            assert_eq!(err.structure, "TS_SECURITY_HEADER1");
        }
    }

    #[test]
    fn debug_lists_set_flags_and_unnamed_bits() {
        assert_eq!(
            format!("{:?}", SecurityFlags(0x0288)),
            "0x0288 (SEC_ENCRYPT | SEC_LICENSE_PKT | SEC_LICENSE_ENCRYPT_CS/SC)"
        );
        assert_eq!(
            format!("{:?}", SecurityFlags(0x0180)),
            "0x0180 (SEC_LICENSE_PKT | 0x0100)"
        );
        assert_eq!(format!("{:?}", SecurityFlags(0)), "0x0000 ()");
    }

    #[test]
    fn contains_needs_every_bit() {
        let flags = SecurityFlags(0x0288);
        assert!(flags.contains(SecurityFlags::SEC_LICENSE_PKT));
        assert!(flags.contains(SecurityFlags::SEC_ENCRYPT | SecurityFlags::SEC_LICENSE_PKT));
        assert!(!flags.contains(SecurityFlags::SEC_LICENSE_PKT | SecurityFlags::SEC_INFO_PKT));
    }

    #[test]
    fn peek_reads_little_endian_flags() {
        assert_eq!(
            SecurityFlags::peek(&SPEC_NON_FIPS),
            Some(SecurityFlags(0x0288))
        );
        assert_eq!(SecurityFlags::peek(&[0x80]), None);
    }
}

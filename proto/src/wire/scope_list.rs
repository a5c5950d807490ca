//! MS-RDPELE 2.2.2.1.2 Scope List (SCOPE_LIST) and 2.2.2.1.2.1 Scope (SCOPE).

use bytes::BufMut;

use super::blob::{BlobType, LicenseBinaryBlob};
use super::codec::{Parse, Wire};
use super::error::{EncodeError, PResult};
use super::list::Counted;
use super::text::Ascii;

/// Upper bound on `ScopeCount`. Windows sends one scope ("microsoft.com"); the bound only stops
/// a declared count from driving work.
pub(crate) const MAX_SCOPES: u32 = 256;

/// A licensing scope: a BB_SCOPE_BLOB holding a NUL-terminated 8-bit string.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Scope<'a> {
    pub blob_type: BlobType,
    pub name: Ascii<'a>,
}

impl<'a> Scope<'a> {
    /// A scope as Windows sends it: BB_SCOPE_BLOB with the NUL-terminated name.
    #[inline]
    pub fn new(name: &'a [u8]) -> Self {
        Self {
            blob_type: BlobType::BB_SCOPE_BLOB,
            name: Ascii(name),
        }
    }
}

impl<'a> Wire<'a> for Scope<'a> {
    const NAME: &'static str = "SCOPE";

    fn encoded_len(&self) -> usize {
        LicenseBinaryBlob::HEADER_LEN + self.name.0.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        LicenseBinaryBlob::new(self.blob_type, self.name.0).encode_as(buf, Self::NAME, "Scope")
    }
}

impl<'a> Parse<'a> for Scope<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (input, blob) = LicenseBinaryBlob::parse_as(Self::NAME, "Scope")(input)?;
        Ok((
            input,
            Self {
                blob_type: blob.blob_type,
                name: Ascii(blob.data),
            },
        ))
    }
}

/// `ScopeCount` followed by that many scopes.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ScopeList<'a> {
    pub scopes: Counted<'a, Scope<'a>>,
}

impl<'a> Wire<'a> for ScopeList<'a> {
    const NAME: &'static str = "SCOPE_LIST";

    fn encoded_len(&self) -> usize {
        self.scopes.encoded_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.scopes
            .encode_counted(buf, MAX_SCOPES, Self::NAME, "ScopeCount")
    }
}

impl<'a> Parse<'a> for ScopeList<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, scopes) = Counted::parse_counted(input, MAX_SCOPES, Self::NAME, "ScopeCount")?;
        Ok((rest, Self { scopes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireErrorKind;

    const MICROSOFT_COM: [u8; 22] = *b"\x01\x00\x00\x00\x0e\x00\x0e\x00microsoft.com\x00";

    #[test]
    fn parses_windows_scope_list() {
        let list = ScopeList::decode(&MICROSOFT_COM).unwrap();
        let scopes: Vec<_> = list.scopes.iter().collect();
        assert_eq!(scopes, [Scope::new(b"microsoft.com\0")]);
        assert_eq!(scopes[0].name.to_string_lossy(), "microsoft.com");
        assert_eq!(list.to_vec().unwrap(), MICROSOFT_COM);
    }

    #[test]
    fn huge_count_is_rejected_at_the_count_field() {
        let err = ScopeList::decode(&[0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert_eq!((err.field, err.offset), ("ScopeCount", 0));
        assert!(matches!(err.kind, WireErrorKind::TooMany { .. }));
    }

    #[test]
    fn built_list_encodes_like_parsed_one() {
        let built = ScopeList {
            scopes: vec![Scope::new(b"microsoft.com\0")].into(),
        };
        assert_eq!(built.to_vec().unwrap(), MICROSOFT_COM);
        assert_eq!(built, ScopeList::decode(&MICROSOFT_COM).unwrap());
    }
}

//! MS-RDPBCGR 2.2.1.12.1.2 Licensing Binary BLOB (LICENSE_BINARY_BLOB).

use super::codec::{len_u16, take_len, u16_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::open_enum::open_enum;
use bytes::BufMut;

open_enum! {
    /// `wBlobType`. Peers send values the specification does not list (xrdp: 0x1428 in its
    /// Error Alert; Windows: junk in the Platform Challenge), so any value is kept.
    pub struct BlobType(u16) {
        /// Seen on empty blobs; not a spec name but what every peer sends with length 0.
        BB_ANY_BLOB = 0x0000,
        BB_DATA_BLOB = 0x0001,
        BB_RANDOM_BLOB = 0x0002,
        BB_CERTIFICATE_BLOB = 0x0003,
        BB_ERROR_BLOB = 0x0004,
        BB_RSA_KEY_BLOB = 0x0006,
        BB_RSA_SIGNATURE_BLOB = 0x0008,
        BB_ENCRYPTED_DATA_BLOB = 0x0009,
        BB_KEY_EXCHG_ALG_BLOB = 0x000D,
        BB_SCOPE_BLOB = 0x000E,
        BB_CLIENT_USER_NAME_BLOB = 0x000F,
        BB_CLIENT_MACHINE_NAME_BLOB = 0x0010,
    }
}

/// MS-RDPBCGR 2.2.1.12.1.2: `wBlobType`, `wBlobLen`, `blobData`. The data borrows the input;
/// the length is derived from it when encoding.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LicenseBinaryBlob<'a> {
    pub blob_type: BlobType,
    pub data: &'a [u8],
}

impl Default for BlobType {
    fn default() -> Self {
        Self::BB_ANY_BLOB
    }
}

impl<'a> LicenseBinaryBlob<'a> {
    /// Size of `wBlobType` and `wBlobLen`.
    pub const HEADER_LEN: usize = 4;

    #[inline]
    pub fn new(blob_type: BlobType, data: &'a [u8]) -> Self {
        Self { blob_type, data }
    }

    /// Parses a blob attributing errors to the enclosing structure's field, which says more to a
    /// reader than "LICENSE_BINARY_BLOB" alone.
    #[inline]
    pub(crate) fn parse_as(
        structure: &'static str,
        name: &'static str,
    ) -> impl FnMut(&'a [u8]) -> PResult<'a, Self> {
        move |input| {
            let (input, blob_type) = u16_le(input, structure, name)?;
            let (input, len) = u16_le(input, structure, name)?;
            let (input, data) = take_len(input, len.into(), structure, name)?;
            Ok((
                input,
                Self {
                    blob_type: BlobType(blob_type),
                    data,
                },
            ))
        }
    }

    /// Encodes, naming `structure.name` if the data is too long for `wBlobLen`.
    pub(crate) fn encode_as<B: BufMut>(
        &self,
        buf: &mut B,
        structure: &'static str,
        name: &'static str,
    ) -> Result<(), EncodeError> {
        let len = len_u16(self.data.len(), structure, name)?;
        buf.put_u16_le(self.blob_type.0);
        buf.put_u16_le(len);
        buf.put_slice(self.data);
        Ok(())
    }
}

impl<'a> Wire<'a> for LicenseBinaryBlob<'a> {
    const NAME: &'static str = "LICENSE_BINARY_BLOB";

    fn encoded_len(&self) -> usize {
        Self::HEADER_LEN + self.data.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.encode_as(buf, Self::NAME, "wBlobLen")
    }
}

impl<'a> Parse<'a> for LicenseBinaryBlob<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        Self::parse_as(Self::NAME, "blobData")(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::WireErrorKind;

    #[test]
    fn keeps_xrdp_junk_type_on_empty_blob() {
        let bytes = [0x28, 0x14, 0x00, 0x00];
        let blob = LicenseBinaryBlob::decode(&bytes).unwrap();
        assert_eq!(blob.blob_type, BlobType(0x1428));
        assert!(blob.blob_type.name().is_none());
        assert!(blob.data.is_empty());
        assert_eq!(blob.to_vec().unwrap(), bytes);
    }

    #[test]
    fn declared_length_beyond_input_names_offset() {
        let err = LicenseBinaryBlob::decode(&[0x01, 0x00, 0x05, 0x00, 0xAA]).unwrap_err();
        assert_eq!(err.offset, 4);
        assert_eq!(
            err.kind,
            WireErrorKind::LengthExceedsInput {
                declared: 5,
                available: 1
            }
        );
    }

    #[test]
    fn data_longer_than_u16_is_an_encode_error() {
        let data = vec![0u8; 70_000];
        let blob = LicenseBinaryBlob::new(BlobType::BB_DATA_BLOB, &data);
        assert!(matches!(
            blob.to_vec(),
            Err(EncodeError::TooLong { length: 70_000, .. })
        ));
    }
}

//! MS-RDPELE 2.2.2.1 `KeyExchangeList`: a BB_KEY_EXCHG_ALG_BLOB of 32-bit algorithm ids.

use bytes::BufMut;

use super::blob::{BlobType, LicenseBinaryBlob};
use super::codec::{Parse, Wire};
use super::error::{fail, EncodeError, PResult, WireErrorKind};

/// KEY_EXCHANGE_ALG_RSA, the only algorithm the specification defines.
pub const KEY_EXCHANGE_ALG_RSA: u32 = 0x0000_0001;

/// The key exchange algorithms a server offers. `algorithms` is the blob data, a whole number
/// of little-endian dwords.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyExchangeList<'a> {
    pub blob_type: BlobType,
    algorithms: &'a [u8],
}

impl<'a> KeyExchangeList<'a> {
    /// A list holding only KEY_EXCHANGE_ALG_RSA, what Windows and xrdp send.
    pub const RSA: Self = Self {
        blob_type: BlobType::BB_KEY_EXCHG_ALG_BLOB,
        algorithms: &[0x01, 0x00, 0x00, 0x00],
    };

    /// Views `algorithms` (little-endian dwords) as a list; `None` if it is not a whole number of
    /// dwords.
    #[inline]
    pub fn new(blob_type: BlobType, algorithms: &'a [u8]) -> Option<Self> {
        algorithms.len().is_multiple_of(4).then_some(Self {
            blob_type,
            algorithms,
        })
    }

    pub fn algorithms(&self) -> impl Iterator<Item = u32> + 'a {
        self.algorithms
            .as_chunks::<4>()
            .0
            .iter()
            .map(|dword| u32::from_le_bytes(*dword))
    }
}

impl core::fmt::Debug for KeyExchangeList<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyExchangeList")
            .field("blob_type", &self.blob_type)
            .field("algorithms", &self.algorithms().collect::<Vec<_>>())
            .finish()
    }
}

impl<'a> Wire<'a> for KeyExchangeList<'a> {
    const NAME: &'static str = "KeyExchangeList";

    fn encoded_len(&self) -> usize {
        LicenseBinaryBlob::HEADER_LEN + self.algorithms.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        LicenseBinaryBlob::new(self.blob_type, self.algorithms).encode_as(
            buf,
            Self::NAME,
            "wBlobLen",
        )
    }
}

impl<'a> Parse<'a> for KeyExchangeList<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, blob) = LicenseBinaryBlob::parse_as(Self::NAME, "wBlobLen")(input)?;
        match Self::new(blob.blob_type, blob.data) {
            Some(list) => Ok((rest, list)),
            None => fail(
                input,
                Self::NAME,
                "wBlobLen",
                WireErrorKind::Misaligned {
                    length: blob.data.len().try_into().unwrap_or(u64::MAX),
                    unit: 4,
                },
            ),
        }
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for KeyExchangeList<'a> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let blob_type = BlobType::arbitrary(u)?;
        let dwords = u.int_in_range(0..=4)?;
        let algorithms = u.bytes(dwords * 4)?;
        Self::new(blob_type, algorithms).ok_or(arbitrary::Error::IncorrectFormat)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_list_round_trips() {
        let bytes = [0x0d, 0x00, 0x04, 0x00, 0x01, 0x00, 0x00, 0x00];
        let list = KeyExchangeList::decode(&bytes).unwrap();
        assert_eq!(list, KeyExchangeList::RSA);
        assert_eq!(
            list.algorithms().collect::<Vec<_>>(),
            [KEY_EXCHANGE_ALG_RSA]
        );
        assert_eq!(list.to_vec().unwrap(), bytes);
    }

    #[test]
    fn partial_dword_is_rejected() {
        let err = KeyExchangeList::decode(&[0x0d, 0x00, 0x03, 0x00, 1, 0, 0]).unwrap_err();
        assert_eq!(err.kind, WireErrorKind::Misaligned { length: 3, unit: 4 });
    }
}

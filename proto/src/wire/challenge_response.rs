//! MS-RDPELE 2.2.2.5 Client Platform Challenge Response (CLIENT_PLATFORM_CHALLENGE_RESPONSE).

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{take_array, Parse, Wire};
use super::error::{EncodeError, PResult};

/// The client's encrypted answer to the platform challenge and its encrypted hardware id. The
/// specification types both blobs BB_ENCRYPTED_DATA_BLOB; mstsc sends the first as
/// BB_DATA_BLOB (0x0001), so the type is kept as sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientPlatformChallengeResponse<'a> {
    pub encrypted_platform_challenge_response: LicenseBinaryBlob<'a>,
    pub encrypted_hwid: LicenseBinaryBlob<'a>,
    pub mac_data: [u8; 16],
}

impl<'a> Wire<'a> for ClientPlatformChallengeResponse<'a> {
    const NAME: &'static str = "CLIENT_PLATFORM_CHALLENGE_RESPONSE";

    fn encoded_len(&self) -> usize {
        self.encrypted_platform_challenge_response.encoded_len()
            + self.encrypted_hwid.encoded_len()
            + 16
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.encrypted_platform_challenge_response.encode_as(
            buf,
            Self::NAME,
            "EncryptedPlatformChallengeResponse",
        )?;
        self.encrypted_hwid
            .encode_as(buf, Self::NAME, "EncryptedHWID")?;
        buf.put_slice(&self.mac_data);
        Ok(())
    }
}

impl<'a> Parse<'a> for ClientPlatformChallengeResponse<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, encrypted_platform_challenge_response) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedPlatformChallengeResponse")(input)?;
        let (rest, encrypted_hwid) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedHWID")(rest)?;
        let (rest, mac_data) = take_array(rest, Self::NAME, "MACData")?;
        Ok((
            rest,
            Self {
                encrypted_platform_challenge_response,
                encrypted_hwid,
                mac_data,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BlobType;

    /// mstsc types the response blob BB_DATA_BLOB where the spec says BB_ENCRYPTED_DATA_BLOB.
    #[test]
    fn mstsc_data_blob_type_is_kept_and_re_emitted() {
        let mut bytes = vec![0x01, 0x00, 0x12, 0x00];
        bytes.extend([0xaa; 0x12]);
        bytes.extend([0x09, 0x00, 0x14, 0x00]);
        bytes.extend([0xbb; 0x14]);
        bytes.extend([0xcc; 16]);
        let response = ClientPlatformChallengeResponse::decode(&bytes).unwrap();
        assert_eq!(
            response.encrypted_platform_challenge_response.blob_type,
            BlobType::BB_DATA_BLOB
        );
        assert_eq!(
            response.encrypted_hwid.blob_type,
            BlobType::BB_ENCRYPTED_DATA_BLOB
        );
        assert_eq!(response.to_vec().unwrap(), bytes);
    }
}

//! MS-RDPELE 2.2.2.4 Server Platform Challenge (SERVER_PLATFORM_CHALLENGE).

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{take_array, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};

/// The server challenges the client with an RC4-encrypted random. The specification says
/// `wBlobType` is ignored; real Windows servers put junk there, so it is kept as sent.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerPlatformChallenge<'a> {
    /// Reserved; zero from every server seen.
    pub connect_flags: u32,
    pub encrypted_platform_challenge: LicenseBinaryBlob<'a>,
    pub mac_data: [u8; 16],
}

impl<'a> Wire<'a> for ServerPlatformChallenge<'a> {
    const NAME: &'static str = "SERVER_PLATFORM_CHALLENGE";

    fn encoded_len(&self) -> usize {
        4 + self.encrypted_platform_challenge.encoded_len() + 16
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.connect_flags);
        self.encrypted_platform_challenge.encode_as(
            buf,
            Self::NAME,
            "EncryptedPlatformChallenge",
        )?;
        buf.put_slice(&self.mac_data);
        Ok(())
    }
}

impl<'a> Parse<'a> for ServerPlatformChallenge<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, connect_flags) = u32_le(input, Self::NAME, "ConnectFlags")?;
        let (rest, encrypted_platform_challenge) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedPlatformChallenge")(rest)?;
        let (rest, mac_data) = take_array(rest, Self::NAME, "MACData")?;
        Ok((
            rest,
            Self {
                connect_flags,
                encrypted_platform_challenge,
                mac_data,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::BlobType;

    /// Windows puts junk in the challenge's wBlobType (the spec says it is ignored): keep it.
    #[test]
    fn junk_blob_type_is_kept_and_re_emitted() {
        let mut bytes = vec![0, 0, 0, 0, 0xef, 0xbe, 0x0a, 0x00];
        bytes.extend([0x46, 0x37, 0x85, 0x54, 0x8e, 0xc5, 0x91, 0x34, 0x97, 0x5d]);
        bytes.extend([0x11; 16]);
        let challenge = ServerPlatformChallenge::decode(&bytes).unwrap();
        assert_eq!(
            challenge.encrypted_platform_challenge.blob_type,
            BlobType(0xbeef)
        );
        assert_eq!(challenge.encrypted_platform_challenge.data.len(), 10);
        assert_eq!(challenge.to_vec().unwrap(), bytes);
    }
}

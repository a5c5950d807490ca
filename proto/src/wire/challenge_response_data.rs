//! MS-RDPELE 2.2.2.5.1 Platform Challenge Response Data (PLATFORM_CHALLENGE_RESPONSE_DATA): the
//! decrypted content of the client's EncryptedPlatformChallengeResponse.

use bytes::BufMut;

use super::codec::{len_u16, take_len, u16_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::open_enum::open_enum;

open_enum! {
    /// `wClientType`.
    pub struct ClientType(u16) {
        WIN32_PLATFORMCHALLENGE_TYPE = 0x0100,
        WIN16_PLATFORMCHALLENGE_TYPE = 0x0200,
        WINCE_PLATFORMCHALLENGE_TYPE = 0x0300,
        OTHER_PLATFORMCHALLENGE_TYPE = 0xFF00,
    }
}

open_enum! {
    /// `wLicenseDetailLevel`.
    pub struct LicenseDetailLevel(u16) {
        LICENSE_DETAIL_SIMPLE = 0x0001,
        LICENSE_DETAIL_MODERATE = 0x0002,
        LICENSE_DETAIL_DETAIL = 0x0003,
    }
}

/// The client's platform details and the challenge it decrypted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct PlatformChallengeResponseData<'a> {
    /// 0x0100 from every client seen.
    pub version: u16,
    pub client_type: ClientType,
    pub license_detail_level: LicenseDetailLevel,
    pub challenge: &'a [u8],
}

impl<'a> Wire<'a> for PlatformChallengeResponseData<'a> {
    const NAME: &'static str = "PLATFORM_CHALLENGE_RESPONSE_DATA";

    fn encoded_len(&self) -> usize {
        8 + self.challenge.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let cb_challenge = len_u16(self.challenge.len(), Self::NAME, "cbChallenge")?;
        buf.put_u16_le(self.version);
        buf.put_u16_le(self.client_type.0);
        buf.put_u16_le(self.license_detail_level.0);
        buf.put_u16_le(cb_challenge);
        buf.put_slice(self.challenge);
        Ok(())
    }
}

impl<'a> Parse<'a> for PlatformChallengeResponseData<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, version) = u16_le(input, Self::NAME, "wVersion")?;
        let (rest, client_type) = u16_le(rest, Self::NAME, "wClientType")?;
        let (rest, license_detail_level) = u16_le(rest, Self::NAME, "wLicenseDetailLevel")?;
        let (rest, cb_challenge) = u16_le(rest, Self::NAME, "cbChallenge")?;
        let (rest, challenge) = take_len(rest, cb_challenge.into(), Self::NAME, "pbChallenge")?;
        Ok((
            rest,
            Self {
                version,
                client_type: ClientType(client_type),
                license_detail_level: LicenseDetailLevel(license_detail_level),
                challenge,
            },
        ))
    }
}

//! MS-RDPELE 2.2.2.3 Client License Information (CLIENT_LICENSE_INFO).

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{take_array, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};

/// A client presents the license it holds: the same key exchange fields as the New License
/// Request, the stored CAL in clear (BB_DATA_BLOB), its hardware id encrypted
/// (BB_ENCRYPTED_DATA_BLOB) and the MAC over the clear hardware id.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientLicenseInfo<'a> {
    pub preferred_key_exchange_alg: u32,
    pub platform_id: u32,
    pub client_random: [u8; 32],
    pub encrypted_premaster_secret: LicenseBinaryBlob<'a>,
    pub license_info: LicenseBinaryBlob<'a>,
    pub encrypted_hwid: LicenseBinaryBlob<'a>,
    pub mac_data: [u8; 16],
}

impl<'a> Wire<'a> for ClientLicenseInfo<'a> {
    const NAME: &'static str = "CLIENT_LICENSE_INFO";

    fn encoded_len(&self) -> usize {
        40 + self.encrypted_premaster_secret.encoded_len()
            + self.license_info.encoded_len()
            + self.encrypted_hwid.encoded_len()
            + 16
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.preferred_key_exchange_alg);
        buf.put_u32_le(self.platform_id);
        buf.put_slice(&self.client_random);
        self.encrypted_premaster_secret
            .encode_as(buf, Self::NAME, "EncryptedPreMasterSecret")?;
        self.license_info
            .encode_as(buf, Self::NAME, "LicenseInfo")?;
        self.encrypted_hwid
            .encode_as(buf, Self::NAME, "EncryptedHWID")?;
        buf.put_slice(&self.mac_data);
        Ok(())
    }
}

impl<'a> Parse<'a> for ClientLicenseInfo<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, preferred_key_exchange_alg) =
            u32_le(input, Self::NAME, "PreferredKeyExchangeAlg")?;
        let (rest, platform_id) = u32_le(rest, Self::NAME, "PlatformId")?;
        let (rest, client_random) = take_array(rest, Self::NAME, "ClientRandom")?;
        let (rest, encrypted_premaster_secret) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedPreMasterSecret")(rest)?;
        let (rest, license_info) = LicenseBinaryBlob::parse_as(Self::NAME, "LicenseInfo")(rest)?;
        let (rest, encrypted_hwid) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedHWID")(rest)?;
        let (rest, mac_data) = take_array(rest, Self::NAME, "MACData")?;
        Ok((
            rest,
            Self {
                preferred_key_exchange_alg,
                platform_id,
                client_random,
                encrypted_premaster_secret,
                license_info,
                encrypted_hwid,
                mac_data,
            },
        ))
    }
}

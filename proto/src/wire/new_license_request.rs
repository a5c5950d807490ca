//! MS-RDPELE 2.2.2.2 Client New License Request (CLIENT_NEW_LICENSE_REQUEST).

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{take_array, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::text::Ascii;

/// A client without a usable license asks for one: its random, the RSA-encrypted premaster
/// secret (BB_RANDOM_BLOB), and its user and machine names (BB_CLIENT_USER_NAME_BLOB,
/// BB_CLIENT_MACHINE_NAME_BLOB, NUL-terminated 8-bit strings).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientNewLicenseRequest<'a> {
    pub preferred_key_exchange_alg: u32,
    /// Operating system and ISV ids; xfreerdp sends 0x04010000.
    pub platform_id: u32,
    pub client_random: [u8; 32],
    pub encrypted_premaster_secret: LicenseBinaryBlob<'a>,
    pub client_user_name: LicenseBinaryBlob<'a>,
    pub client_machine_name: LicenseBinaryBlob<'a>,
}

impl<'a> ClientNewLicenseRequest<'a> {
    pub fn user_name(&self) -> Ascii<'a> {
        Ascii(self.client_user_name.data)
    }

    pub fn machine_name(&self) -> Ascii<'a> {
        Ascii(self.client_machine_name.data)
    }
}

impl<'a> Wire<'a> for ClientNewLicenseRequest<'a> {
    const NAME: &'static str = "CLIENT_NEW_LICENSE_REQUEST";

    fn encoded_len(&self) -> usize {
        40 + self.encrypted_premaster_secret.encoded_len()
            + self.client_user_name.encoded_len()
            + self.client_machine_name.encoded_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.preferred_key_exchange_alg);
        buf.put_u32_le(self.platform_id);
        buf.put_slice(&self.client_random);
        self.encrypted_premaster_secret
            .encode_as(buf, Self::NAME, "EncryptedPreMasterSecret")?;
        self.client_user_name
            .encode_as(buf, Self::NAME, "ClientUserName")?;
        self.client_machine_name
            .encode_as(buf, Self::NAME, "ClientMachineName")
    }
}

impl<'a> Parse<'a> for ClientNewLicenseRequest<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, preferred_key_exchange_alg) =
            u32_le(input, Self::NAME, "PreferredKeyExchangeAlg")?;
        let (rest, platform_id) = u32_le(rest, Self::NAME, "PlatformId")?;
        let (rest, client_random) = take_array(rest, Self::NAME, "ClientRandom")?;
        let (rest, encrypted_premaster_secret) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedPreMasterSecret")(rest)?;
        let (rest, client_user_name) =
            LicenseBinaryBlob::parse_as(Self::NAME, "ClientUserName")(rest)?;
        let (rest, client_machine_name) =
            LicenseBinaryBlob::parse_as(Self::NAME, "ClientMachineName")(rest)?;
        Ok((
            rest,
            Self {
                preferred_key_exchange_alg,
                platform_id,
                client_random,
                encrypted_premaster_secret,
                client_user_name,
                client_machine_name,
            },
        ))
    }
}

//! MS-RDPELE 2.2.2.7 Server New License (SERVER_NEW_LICENSE) and 2.2.2.6 Server Upgrade License
//! (SERVER_UPGRADE_LICENSE): one layout, told apart by the preamble's message type.

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{take_array, Parse, Wire};
use super::error::{EncodeError, PResult};

/// The issued license: NEW_LICENSE_INFO, RC4-encrypted (BB_ENCRYPTED_DATA_BLOB), and the MAC
/// over its clear text. `UPGRADE` only selects the structure name used in errors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerLicense<'a, const UPGRADE: bool> {
    pub encrypted_license_info: LicenseBinaryBlob<'a>,
    pub mac_data: [u8; 16],
}

/// MS-RDPELE 2.2.2.7: a license for a client that had none.
pub type ServerNewLicense<'a> = ServerLicense<'a, false>;
/// MS-RDPELE 2.2.2.6: a license replacing the one the client presented.
pub type ServerUpgradeLicense<'a> = ServerLicense<'a, true>;

impl<'a, const UPGRADE: bool> Wire<'a> for ServerLicense<'a, UPGRADE> {
    const NAME: &'static str = if UPGRADE {
        "SERVER_UPGRADE_LICENSE"
    } else {
        "SERVER_NEW_LICENSE"
    };

    fn encoded_len(&self) -> usize {
        self.encrypted_license_info.encoded_len() + 16
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.encrypted_license_info
            .encode_as(buf, Self::NAME, "EncryptedLicenseInfo")?;
        buf.put_slice(&self.mac_data);
        Ok(())
    }
}

impl<'a, const UPGRADE: bool> Parse<'a> for ServerLicense<'a, UPGRADE> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, encrypted_license_info) =
            LicenseBinaryBlob::parse_as(Self::NAME, "EncryptedLicenseInfo")(input)?;
        let (rest, mac_data) = take_array(rest, Self::NAME, "MACData")?;
        Ok((
            rest,
            Self {
                encrypted_license_info,
                mac_data,
            },
        ))
    }
}

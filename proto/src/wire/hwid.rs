//! MS-RDPELE 2.2.2.3.1 Client Hardware Identification (CLIENT_HARDWARE_ID): the decrypted
//! content of EncryptedHWID.

use bytes::BufMut;

use super::codec::{take_array, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};

/// `PlatformId` and 16 bytes of hardware-derived data (Data1..Data4). Licenses are bound to
/// this value, not to the machine name; xfreerdp derives the data from MD5 of its hostname.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ClientHardwareId {
    pub platform_id: u32,
    pub data: [u8; 16],
}

impl ClientHardwareId {
    pub const LEN: usize = 20;

    /// The inverse of [`ClientHardwareId::to_bytes`].
    pub fn from_bytes(bytes: [u8; Self::LEN]) -> Self {
        let [p0, p1, p2, p3, data @ ..] = bytes;
        Self {
            platform_id: u32::from_le_bytes([p0, p1, p2, p3]),
            data,
        }
    }

    /// The 20 bytes as they travel (and as license stores and CALs hash them).
    pub fn to_bytes(&self) -> [u8; Self::LEN] {
        let mut out = [0u8; Self::LEN];
        let (platform, data) = out.split_at_mut(4);
        platform.copy_from_slice(&self.platform_id.to_le_bytes());
        data.copy_from_slice(&self.data);
        out
    }
}

impl<'a> Wire<'a> for ClientHardwareId {
    const NAME: &'static str = "CLIENT_HARDWARE_ID";

    fn encoded_len(&self) -> usize {
        Self::LEN
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_slice(&self.to_bytes());
        Ok(())
    }
}

impl<'a> Parse<'a> for ClientHardwareId {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, platform_id) = u32_le(input, Self::NAME, "PlatformId")?;
        let (rest, data) = take_array(rest, Self::NAME, "Data1..Data4")?;
        Ok((rest, Self { platform_id, data }))
    }
}

//! MS-RDPELE 2.2.2.6.1 New License Information (NEW_LICENSE_INFO): the decrypted payload of a
//! New or Upgrade License.

use bytes::BufMut;

use super::codec::{len_u32, take_len, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::text::{Ascii, Utf16};

/// The license and what it is for: version, scope (8-bit), company name and product id
/// (UTF-16LE), and `pbLicenseInfo`, the CAL itself (a certs-only PKCS#7 SignedData from a
/// Windows license server) that the client stores and presents later.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct NewLicenseInfo<'a> {
    pub version: u32,
    pub scope: Ascii<'a>,
    pub company_name: Utf16<'a>,
    pub product_id: Utf16<'a>,
    pub license_info: &'a [u8],
}

impl<'a> Wire<'a> for NewLicenseInfo<'a> {
    const NAME: &'static str = "NEW_LICENSE_INFO";

    fn encoded_len(&self) -> usize {
        20 + self.scope.0.len()
            + self.company_name.0.len()
            + self.product_id.0.len()
            + self.license_info.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.version);
        for (name, bytes) in [
            ("cbScope", self.scope.0),
            ("cbCompanyName", self.company_name.0),
            ("cbProductId", self.product_id.0),
            ("cbLicenseInfo", self.license_info),
        ] {
            buf.put_u32_le(len_u32(bytes.len(), Self::NAME, name)?);
            buf.put_slice(bytes);
        }
        Ok(())
    }
}

impl<'a> Parse<'a> for NewLicenseInfo<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, version) = u32_le(input, Self::NAME, "dwVersion")?;
        let (rest, cb) = u32_le(rest, Self::NAME, "cbScope")?;
        let (rest, scope) = take_len(rest, cb.into(), Self::NAME, "pbScope")?;
        let (rest, cb) = u32_le(rest, Self::NAME, "cbCompanyName")?;
        let (rest, company_name) = take_len(rest, cb.into(), Self::NAME, "pbCompanyName")?;
        let (rest, cb) = u32_le(rest, Self::NAME, "cbProductId")?;
        let (rest, product_id) = take_len(rest, cb.into(), Self::NAME, "pbProductId")?;
        let (rest, cb) = u32_le(rest, Self::NAME, "cbLicenseInfo")?;
        let (rest, license_info) = take_len(rest, cb.into(), Self::NAME, "pbLicenseInfo")?;
        Ok((
            rest,
            Self {
                version,
                scope: Ascii(scope),
                company_name: Utf16(company_name),
                product_id: Utf16(product_id),
                license_info,
            },
        ))
    }
}

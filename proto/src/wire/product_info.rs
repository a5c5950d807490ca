//! MS-RDPELE 2.2.2.1.1 Product Information (PRODUCT_INFO).

use bytes::BufMut;

use super::codec::{len_u32, take_len, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::text::Utf16;

/// The product the server licenses: version (0x00060000 for "A02" v6.0 on Windows Server 2008),
/// company name and product id as NUL-terminated UTF-16LE.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProductInfo<'a> {
    pub version: u32,
    pub company_name: Utf16<'a>,
    pub product_id: Utf16<'a>,
}

impl<'a> Wire<'a> for ProductInfo<'a> {
    const NAME: &'static str = "PRODUCT_INFO";

    fn encoded_len(&self) -> usize {
        12 + self.company_name.0.len() + self.product_id.0.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let cb_company = len_u32(self.company_name.0.len(), Self::NAME, "cbCompanyName")?;
        let cb_product = len_u32(self.product_id.0.len(), Self::NAME, "cbProductId")?;
        buf.put_u32_le(self.version);
        buf.put_u32_le(cb_company);
        buf.put_slice(self.company_name.0);
        buf.put_u32_le(cb_product);
        buf.put_slice(self.product_id.0);
        Ok(())
    }
}

impl<'a> Parse<'a> for ProductInfo<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (input, version) = u32_le(input, Self::NAME, "dwVersion")?;
        let (input, cb_company) = u32_le(input, Self::NAME, "cbCompanyName")?;
        let (input, company) = take_len(input, cb_company.into(), Self::NAME, "pbCompanyName")?;
        let (input, cb_product) = u32_le(input, Self::NAME, "cbProductId")?;
        let (input, product) = take_len(input, cb_product.into(), Self::NAME, "pbProductId")?;
        Ok((
            input,
            Self {
                version,
                company_name: Utf16(company),
                product_id: Utf16(product),
            },
        ))
    }
}

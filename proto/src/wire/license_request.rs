//! MS-RDPELE 2.2.2.1 Server License Request (SERVER_LICENSE_REQUEST).

use bytes::BufMut;

use super::codec::{take_array, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::key_exchange_list::KeyExchangeList;
use super::product_info::ProductInfo;
use super::scope_list::ScopeList;
use super::server_certificate::ServerCertificateBlob;

/// The server's opening message: its random, the product it licenses, the key exchange
/// algorithms, its certificate (or an empty blob) and the scopes it issues licenses for.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerLicenseRequest<'a> {
    pub server_random: [u8; 32],
    pub product_info: ProductInfo<'a>,
    pub key_exchange_list: KeyExchangeList<'a>,
    pub server_certificate: ServerCertificateBlob<'a>,
    pub scope_list: ScopeList<'a>,
}

impl<'a> Wire<'a> for ServerLicenseRequest<'a> {
    const NAME: &'static str = "SERVER_LICENSE_REQUEST";

    fn encoded_len(&self) -> usize {
        32 + self.product_info.encoded_len()
            + self.key_exchange_list.encoded_len()
            + self.server_certificate.encoded_len()
            + self.scope_list.encoded_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_slice(&self.server_random);
        self.product_info.encode(buf)?;
        self.key_exchange_list.encode(buf)?;
        self.server_certificate.encode(buf)?;
        self.scope_list.encode(buf)
    }
}

impl<'a> Parse<'a> for ServerLicenseRequest<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, server_random) = take_array(input, Self::NAME, "ServerRandom")?;
        let (rest, product_info) = ProductInfo::parse(rest)?;
        let (rest, key_exchange_list) = KeyExchangeList::parse(rest)?;
        let (rest, server_certificate) = ServerCertificateBlob::parse(rest)?;
        let (rest, scope_list) = ScopeList::parse(rest)?;
        Ok((
            rest,
            Self {
                server_random,
                product_info,
                key_exchange_list,
                server_certificate,
                scope_list,
            },
        ))
    }
}

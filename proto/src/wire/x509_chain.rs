//! MS-RDPELE 2.2.1.4.2 X.509 Certificate Chain (X509_CERTIFICATE_CHAIN) and 2.2.1.4.2.1 CertBlob.

use bytes::BufMut;

use super::codec::{len_u32, take_len, u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::list::Counted;

/// The specification's upper bound on `NumCertBlobs`.
pub const MAX_CERTIFICATES: u32 = 200;

/// One DER certificate, borrowed from the input.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CertBlob<'a> {
    pub der: &'a [u8],
}

impl core::fmt::Debug for CertBlob<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "CertBlob({} bytes of DER)", self.der.len())
    }
}

impl<'a> Wire<'a> for CertBlob<'a> {
    const NAME: &'static str = "CERT_BLOB";

    fn encoded_len(&self) -> usize {
        4 + self.der.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(len_u32(self.der.len(), Self::NAME, "cbCert")?);
        buf.put_slice(self.der);
        Ok(())
    }
}

impl<'a> Parse<'a> for CertBlob<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, cb_cert) = u32_le(input, Self::NAME, "cbCert")?;
        let (rest, der) = take_len(rest, cb_cert.into(), Self::NAME, "abCert")?;
        Ok((rest, Self { der }))
    }
}

/// Certificates in root-first order (the session host's own last), then padding. The padding
/// is whatever follows the certificates up to the end of the enclosing certificate blob; Windows
/// sends 8 + 4 × NumCertBlobs zero bytes, which [`X509CertificateChain::new`] reproduces.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct X509CertificateChain<'a> {
    pub certificates: Counted<'a, CertBlob<'a>>,
    pub padding: &'a [u8],
}

/// Zero padding for chains of up to [`MAX_CERTIFICATES`].
static ZERO_PADDING: [u8; 8 + 4 * 200] = [0; 8 + 4 * 200];

impl<'a> X509CertificateChain<'a> {
    /// A chain with the padding Windows sends (at most [`MAX_CERTIFICATES`] certificates).
    #[inline]
    pub fn new(certificates: Vec<CertBlob<'a>>) -> Self {
        let padding_len = 8 + 4 * certificates.len().min(200);
        Self {
            certificates: certificates.into(),
            padding: ZERO_PADDING.get(..padding_len).unwrap_or_default(),
        }
    }

    /// The session host's certificate: the last one.
    pub fn leaf(&self) -> Option<CertBlob<'a>> {
        self.certificates.iter().last()
    }
}

impl<'a> Wire<'a> for X509CertificateChain<'a> {
    const NAME: &'static str = "X509_CERTIFICATE_CHAIN";

    fn encoded_len(&self) -> usize {
        self.certificates.encoded_len() + self.padding.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        self.certificates
            .encode_counted(buf, MAX_CERTIFICATES, Self::NAME, "NumCertBlobs")?;
        buf.put_slice(self.padding);
        Ok(())
    }
}

impl<'a> Parse<'a> for X509CertificateChain<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (padding, certificates) =
            Counted::parse_counted(input, MAX_CERTIFICATES, Self::NAME, "NumCertBlobs")?;
        let end = padding.get(padding.len()..).unwrap_or_default();
        Ok((
            end,
            Self {
                certificates,
                padding,
            },
        ))
    }
}

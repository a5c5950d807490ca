//! MS-RDPBCGR 2.2.1.4.3.1 Server Certificate (SERVER_CERTIFICATE), as carried in the License
//! Request's BB_CERTIFICATE_BLOB (MS-RDPELE 2.2.1.4).

use bytes::BufMut;

use super::blob::{BlobType, LicenseBinaryBlob};
use super::codec::{len_u16, parse_within, u32_le, Parse, Wire};
use super::error::{fail, EncodeError, PResult, WireErrorKind};
use super::proprietary_certificate::ProprietaryCertificate;
use super::x509_chain::X509CertificateChain;

/// `dwVersion`'s certChainVersion values.
pub const CERT_CHAIN_VERSION_1: u32 = 0x0000_0001;
pub const CERT_CHAIN_VERSION_2: u32 = 0x0000_0002;
/// `dwVersion`'s top bit `t`: the certificate was issued temporarily (set by Windows on its
/// X.509 chain).
pub const CERT_TEMPORARILY_ISSUED: u32 = 0x8000_0000;

/// The certificate body selected by certChainVersion.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum CertificateChain<'a> {
    /// CERT_CHAIN_VERSION_1.
    Proprietary(ProprietaryCertificate<'a>),
    /// CERT_CHAIN_VERSION_2.
    X509(X509CertificateChain<'a>),
}

/// `dwVersion` and the body; the version number is derived from the body's kind.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerCertificate<'a> {
    pub temporarily_issued: bool,
    pub chain: CertificateChain<'a>,
}

impl ServerCertificate<'_> {
    fn version(&self) -> u32 {
        let version = match self.chain {
            CertificateChain::Proprietary(_) => CERT_CHAIN_VERSION_1,
            CertificateChain::X509(_) => CERT_CHAIN_VERSION_2,
        };
        if self.temporarily_issued {
            version | CERT_TEMPORARILY_ISSUED
        } else {
            version
        }
    }
}

impl<'a> Wire<'a> for ServerCertificate<'a> {
    const NAME: &'static str = "SERVER_CERTIFICATE";

    fn encoded_len(&self) -> usize {
        4 + match &self.chain {
            CertificateChain::Proprietary(cert) => cert.encoded_len(),
            CertificateChain::X509(chain) => chain.encoded_len(),
        }
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.version());
        match &self.chain {
            CertificateChain::Proprietary(cert) => cert.encode(buf),
            CertificateChain::X509(chain) => chain.encode(buf),
        }
    }
}

impl<'a> Parse<'a> for ServerCertificate<'a> {
    /// The X.509 chain's padding runs to the end of `input`: give this parser exactly the
    /// certificate's bytes (the enclosing blob's data).
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, version) = u32_le(input, Self::NAME, "dwVersion")?;
        let temporarily_issued = version & CERT_TEMPORARILY_ISSUED != 0;
        let (rest, chain) = match version & !CERT_TEMPORARILY_ISSUED {
            CERT_CHAIN_VERSION_1 => {
                let (rest, cert) = ProprietaryCertificate::parse(rest)?;
                (rest, CertificateChain::Proprietary(cert))
            }
            CERT_CHAIN_VERSION_2 => {
                let (rest, chain) = X509CertificateChain::parse(rest)?;
                (rest, CertificateChain::X509(chain))
            }
            other => {
                return fail(
                    input,
                    Self::NAME,
                    "dwVersion",
                    WireErrorKind::UnsupportedValue {
                        value: other.into(),
                    },
                )
            }
        };
        Ok((
            rest,
            Self {
                temporarily_issued,
                chain,
            },
        ))
    }
}

/// The License Request's `ServerCertificate` field: a BB_CERTIFICATE_BLOB that is empty when
/// the certificate already went out in the Server Security Data (MS-RDPBCGR 2.2.1.4.3).
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ServerCertificateBlob<'a> {
    pub blob_type: BlobType,
    pub certificate: Option<ServerCertificate<'a>>,
}

impl<'a> Wire<'a> for ServerCertificateBlob<'a> {
    const NAME: &'static str = "ServerCertificate";

    fn encoded_len(&self) -> usize {
        LicenseBinaryBlob::HEADER_LEN + self.certificate.as_ref().map_or(0, Wire::encoded_len)
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let len = self.certificate.as_ref().map_or(0, Wire::encoded_len);
        buf.put_u16_le(self.blob_type.0);
        buf.put_u16_le(len_u16(len, Self::NAME, "wBlobLen")?);
        match &self.certificate {
            Some(certificate) => certificate.encode(buf),
            None => Ok(()),
        }
    }
}

impl<'a> Parse<'a> for ServerCertificateBlob<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, blob) = LicenseBinaryBlob::parse_as(Self::NAME, "wBlobLen")(input)?;
        let certificate = if blob.data.is_empty() {
            None
        } else {
            Some(parse_within(
                blob.data,
                ServerCertificate::NAME,
                ServerCertificate::parse,
            )?)
        };
        Ok((
            rest,
            Self {
                blob_type: blob.blob_type,
                certificate,
            },
        ))
    }
}

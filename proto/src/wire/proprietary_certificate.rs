//! MS-RDPBCGR 2.2.1.4.3.1.1 Server Proprietary Certificate (PROPRIETARYSERVERCERTIFICATE) and
//! 2.2.1.4.3.1.1.1 RSA Public Key (RSA_PUBLIC_KEY).

use bytes::BufMut;

use super::blob::{BlobType, LicenseBinaryBlob};
use super::codec::{len_u32, parse_within, take_len, u32_le, Parse, Wire};
use super::error::{fail, EncodeError, PResult, WireErrorKind};

/// SIGNATURE_ALG_RSA, `dwSigAlgId`'s only defined value.
pub const SIGNATURE_ALG_RSA: u32 = 0x0000_0001;

/// An RSA public key as Windows' CryptoAPI lays it out: `modulus` is little-endian and carries
/// the 8 zero bytes of padding the format requires (keylen = bitlen / 8 + 8).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct RsaPublicKey<'a> {
    pub bit_len: u32,
    /// `datalen`: bit_len / 8 - 1 on every key seen.
    pub data_len: u32,
    pub public_exponent: u32,
    pub modulus: &'a [u8],
}

impl RsaPublicKey<'_> {
    /// `magic`: "RSA1" read as a little-endian dword.
    pub const MAGIC: u32 = 0x3141_5352;
}

impl<'a> Wire<'a> for RsaPublicKey<'a> {
    const NAME: &'static str = "RSA_PUBLIC_KEY";

    fn encoded_len(&self) -> usize {
        20 + self.modulus.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let key_len = len_u32(self.modulus.len(), Self::NAME, "keylen")?;
        buf.put_u32_le(Self::MAGIC);
        buf.put_u32_le(key_len);
        buf.put_u32_le(self.bit_len);
        buf.put_u32_le(self.data_len);
        buf.put_u32_le(self.public_exponent);
        buf.put_slice(self.modulus);
        Ok(())
    }
}

impl<'a> Parse<'a> for RsaPublicKey<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, magic) = u32_le(input, Self::NAME, "magic")?;
        if magic != Self::MAGIC {
            return fail(
                input,
                Self::NAME,
                "magic",
                WireErrorKind::UnsupportedValue {
                    value: magic.into(),
                },
            );
        }
        let (rest, key_len) = u32_le(rest, Self::NAME, "keylen")?;
        let (rest, bit_len) = u32_le(rest, Self::NAME, "bitlen")?;
        let (rest, data_len) = u32_le(rest, Self::NAME, "datalen")?;
        let (rest, public_exponent) = u32_le(rest, Self::NAME, "pubExp")?;
        let (rest, modulus) = take_len(rest, key_len.into(), Self::NAME, "modulus")?;
        Ok((
            rest,
            Self {
                bit_len,
                data_len,
                public_exponent,
                modulus,
            },
        ))
    }
}

/// The proprietary certificate body (after SERVER_CERTIFICATE's `dwVersion`): algorithm ids,
/// the public key blob (BB_RSA_KEY_BLOB) and the signature blob (BB_RSA_SIGNATURE_BLOB,
/// 64 signature bytes plus 8 zero bytes for the Terminal Services key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct ProprietaryCertificate<'a> {
    pub sig_alg_id: u32,
    pub key_alg_id: u32,
    pub public_key_blob_type: BlobType,
    pub public_key: RsaPublicKey<'a>,
    pub signature_blob_type: BlobType,
    pub signature: &'a [u8],
}

impl<'a> Wire<'a> for ProprietaryCertificate<'a> {
    const NAME: &'static str = "PROPRIETARYSERVERCERTIFICATE";

    fn encoded_len(&self) -> usize {
        8 + 2 * LicenseBinaryBlob::HEADER_LEN + self.public_key.encoded_len() + self.signature.len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        let key_len = super::codec::len_u16(
            self.public_key.encoded_len(),
            Self::NAME,
            "wPublicKeyBlobLen",
        )?;
        buf.put_u32_le(self.sig_alg_id);
        buf.put_u32_le(self.key_alg_id);
        buf.put_u16_le(self.public_key_blob_type.0);
        buf.put_u16_le(key_len);
        self.public_key.encode(buf)?;
        LicenseBinaryBlob::new(self.signature_blob_type, self.signature).encode_as(
            buf,
            Self::NAME,
            "wSignatureBlobLen",
        )
    }
}

impl<'a> Parse<'a> for ProprietaryCertificate<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, sig_alg_id) = u32_le(input, Self::NAME, "dwSigAlgId")?;
        let (rest, key_alg_id) = u32_le(rest, Self::NAME, "dwKeyAlgId")?;
        let (rest, key_blob) = LicenseBinaryBlob::parse_as(Self::NAME, "PublicKeyBlob")(rest)?;
        let public_key = parse_within(key_blob.data, RsaPublicKey::NAME, RsaPublicKey::parse)?;
        let (rest, signature) = LicenseBinaryBlob::parse_as(Self::NAME, "SignatureBlob")(rest)?;
        Ok((
            rest,
            Self {
                sig_alg_id,
                key_alg_id,
                public_key_blob_type: key_blob.blob_type,
                public_key,
                signature_blob_type: signature.blob_type,
                signature: signature.data,
            },
        ))
    }
}

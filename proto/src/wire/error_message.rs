//! MS-RDPBCGR 2.2.1.12.1.3 Licensing Error Message (LICENSE_ERROR_MESSAGE), sent by either side
//! with bMsgType ERROR_ALERT; STATUS_VALID_CLIENT / ST_NO_TRANSITION ends licensing successfully.

use bytes::BufMut;

use super::blob::LicenseBinaryBlob;
use super::codec::{u32_le, Parse, Wire};
use super::error::{EncodeError, PResult};
use super::open_enum::open_enum;

open_enum! {
    /// `dwErrorCode`.
    pub struct ErrorCode(u32) {
        ERR_INVALID_SERVER_CERTIFICATE = 0x0000_0001,
        ERR_NO_LICENSE = 0x0000_0002,
        ERR_INVALID_MAC = 0x0000_0003,
        ERR_INVALID_SCOPE = 0x0000_0004,
        ERR_NO_LICENSE_SERVER = 0x0000_0006,
        STATUS_VALID_CLIENT = 0x0000_0007,
        ERR_INVALID_CLIENT = 0x0000_0008,
        ERR_INVALID_PRODUCTID = 0x0000_000B,
        ERR_INVALID_MESSAGE_LEN = 0x0000_000C,
    }
}

open_enum! {
    /// `dwStateTransition`.
    pub struct StateTransition(u32) {
        ST_TOTAL_ABORT = 0x0000_0001,
        ST_NO_TRANSITION = 0x0000_0002,
        ST_RESET_PHASE_TO_START = 0x0000_0003,
        ST_RESEND_LAST_MESSAGE = 0x0000_0004,
    }
}

/// An error (or the valid-client verdict) with its state transition and an error-info blob
/// (BB_ERROR_BLOB, usually empty; xrdp sends type 0x1428 with length 0).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LicensingErrorMessage<'a> {
    pub error_code: ErrorCode,
    pub state_transition: StateTransition,
    pub error_info: LicenseBinaryBlob<'a>,
}

impl LicensingErrorMessage<'_> {
    /// The message that ends licensing successfully, as Windows sends it.
    pub const VALID_CLIENT: Self = Self {
        error_code: ErrorCode::STATUS_VALID_CLIENT,
        state_transition: StateTransition::ST_NO_TRANSITION,
        error_info: LicenseBinaryBlob {
            blob_type: super::blob::BlobType::BB_ERROR_BLOB,
            data: &[],
        },
    };
}

impl<'a> Wire<'a> for LicensingErrorMessage<'a> {
    const NAME: &'static str = "LICENSE_ERROR_MESSAGE";

    fn encoded_len(&self) -> usize {
        8 + self.error_info.encoded_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        buf.put_u32_le(self.error_code.0);
        buf.put_u32_le(self.state_transition.0);
        self.error_info.encode_as(buf, Self::NAME, "bbErrorInfo")
    }
}

impl<'a> Parse<'a> for LicensingErrorMessage<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (rest, error_code) = u32_le(input, Self::NAME, "dwErrorCode")?;
        let (rest, state_transition) = u32_le(rest, Self::NAME, "dwStateTransition")?;
        let (rest, error_info) = LicenseBinaryBlob::parse_as(Self::NAME, "bbErrorInfo")(rest)?;
        Ok((
            rest,
            Self {
                error_code: ErrorCode(error_code),
                state_transition: StateTransition(state_transition),
                error_info,
            },
        ))
    }
}

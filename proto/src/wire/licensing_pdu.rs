//! A licensing message with its preamble (MS-RDPBCGR 2.2.1.12.1.1): what follows the security
//! header in every licensing PDU, and what the bare captures in `captures/` hold.

use bytes::BufMut;

use super::challenge_response::ClientPlatformChallengeResponse;
use super::codec::{len_u16, parse_within, Parse, Wire};
use super::error::{fail, EncodeError, PResult, WireErrorKind};
use super::error_message::LicensingErrorMessage;
use super::license_info::ClientLicenseInfo;
use super::license_request::ServerLicenseRequest;
use super::new_license::{ServerNewLicense, ServerUpgradeLicense};
use super::new_license_request::ClientNewLicenseRequest;
use super::platform_challenge::ServerPlatformChallenge;
use super::preamble::{LicensePreamble, MessageType, PreambleFlags};

/// The message selected by the preamble's `bMsgType`.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum LicensingMessage<'a> {
    LicenseRequest(ServerLicenseRequest<'a>),
    PlatformChallenge(ServerPlatformChallenge<'a>),
    NewLicense(ServerNewLicense<'a>),
    UpgradeLicense(ServerUpgradeLicense<'a>),
    LicenseInfo(ClientLicenseInfo<'a>),
    NewLicenseRequest(ClientNewLicenseRequest<'a>),
    PlatformChallengeResponse(ClientPlatformChallengeResponse<'a>),
    ErrorAlert(LicensingErrorMessage<'a>),
}

impl LicensingMessage<'_> {
    pub fn message_type(&self) -> MessageType {
        match self {
            Self::LicenseRequest(_) => MessageType::LICENSE_REQUEST,
            Self::PlatformChallenge(_) => MessageType::PLATFORM_CHALLENGE,
            Self::NewLicense(_) => MessageType::NEW_LICENSE,
            Self::UpgradeLicense(_) => MessageType::UPGRADE_LICENSE,
            Self::LicenseInfo(_) => MessageType::LICENSE_INFO,
            Self::NewLicenseRequest(_) => MessageType::NEW_LICENSE_REQUEST,
            Self::PlatformChallengeResponse(_) => MessageType::PLATFORM_CHALLENGE_RESPONSE,
            Self::ErrorAlert(_) => MessageType::ERROR_ALERT,
        }
    }

    /// The specification's name of the message structure (`SERVER_LICENSE_REQUEST`, …).
    pub fn structure_name(&self) -> &'static str {
        match self {
            Self::LicenseRequest(_) => ServerLicenseRequest::NAME,
            Self::PlatformChallenge(_) => ServerPlatformChallenge::NAME,
            Self::NewLicense(_) => ServerNewLicense::NAME,
            Self::UpgradeLicense(_) => ServerUpgradeLicense::NAME,
            Self::LicenseInfo(_) => ClientLicenseInfo::NAME,
            Self::NewLicenseRequest(_) => ClientNewLicenseRequest::NAME,
            Self::PlatformChallengeResponse(_) => ClientPlatformChallengeResponse::NAME,
            Self::ErrorAlert(_) => LicensingErrorMessage::NAME,
        }
    }

    /// Whether a server sends this message (as opposed to a client). Error alerts go both ways.
    pub fn sent_by_server(&self) -> bool {
        matches!(
            self,
            Self::LicenseRequest(_)
                | Self::PlatformChallenge(_)
                | Self::NewLicense(_)
                | Self::UpgradeLicense(_)
                | Self::ErrorAlert(_)
        )
    }

    fn body_len(&self) -> usize {
        match self {
            Self::LicenseRequest(m) => m.encoded_len(),
            Self::PlatformChallenge(m) => m.encoded_len(),
            Self::NewLicense(m) => m.encoded_len(),
            Self::UpgradeLicense(m) => m.encoded_len(),
            Self::LicenseInfo(m) => m.encoded_len(),
            Self::NewLicenseRequest(m) => m.encoded_len(),
            Self::PlatformChallengeResponse(m) => m.encoded_len(),
            Self::ErrorAlert(m) => m.encoded_len(),
        }
    }

    fn encode_body<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        match self {
            Self::LicenseRequest(m) => m.encode(buf),
            Self::PlatformChallenge(m) => m.encode(buf),
            Self::NewLicense(m) => m.encode(buf),
            Self::UpgradeLicense(m) => m.encode(buf),
            Self::LicenseInfo(m) => m.encode(buf),
            Self::NewLicenseRequest(m) => m.encode(buf),
            Self::PlatformChallengeResponse(m) => m.encode(buf),
            Self::ErrorAlert(m) => m.encode(buf),
        }
    }
}

/// LICENSE_PREAMBLE and the message it announces; `wMsgSize` is derived when encoding and
/// must match the message exactly when parsing.
#[derive(Clone, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct LicensingPdu<'a> {
    pub flags: PreambleFlags,
    pub message: LicensingMessage<'a>,
}

/// Parses `body` as exactly one `T` and wraps it in a message variant.
#[inline]
fn body<'a, T: Wire<'a>>(
    body: &'a [u8],
    wrap: fn(T) -> LicensingMessage<'a>,
) -> Result<LicensingMessage<'a>, nom::Err<super::error::ParseError<'a>>> {
    parse_within(body, T::NAME, T::parse).map(wrap)
}

impl<'a> Wire<'a> for LicensingPdu<'a> {
    const NAME: &'static str = "LICENSE_PREAMBLE";

    fn encoded_len(&self) -> usize {
        LicensePreamble::LEN + self.message.body_len()
    }

    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError> {
        LicensePreamble {
            msg_type: self.message.message_type(),
            flags: self.flags,
            msg_size: len_u16(self.encoded_len(), Self::NAME, "wMsgSize")?,
        }
        .encode(buf)?;
        self.message.encode_body(buf)
    }
}

impl<'a> Parse<'a> for LicensingPdu<'a> {
    #[inline]
    fn parse(input: &'a [u8]) -> PResult<'a, Self> {
        let (after_preamble, preamble) = LicensePreamble::parse(input)?;
        let size_field = input.get(2..).unwrap_or_default();
        let declared = usize::from(preamble.msg_size);
        let Some(body_len) = declared.checked_sub(LicensePreamble::LEN) else {
            return fail(
                size_field,
                Self::NAME,
                "wMsgSize",
                WireErrorKind::TooShort {
                    length: declared.try_into().unwrap_or(u64::MAX),
                    min: 4,
                },
            );
        };
        let Some((bytes, rest)) = after_preamble.split_at_checked(body_len) else {
            return fail(
                size_field,
                Self::NAME,
                "wMsgSize",
                WireErrorKind::LengthExceedsInput {
                    declared: declared.try_into().unwrap_or(u64::MAX),
                    available: input.len(),
                },
            );
        };
        let message = match preamble.msg_type {
            MessageType::LICENSE_REQUEST => body(bytes, LicensingMessage::LicenseRequest)?,
            MessageType::PLATFORM_CHALLENGE => body(bytes, LicensingMessage::PlatformChallenge)?,
            MessageType::NEW_LICENSE => body(bytes, LicensingMessage::NewLicense)?,
            MessageType::UPGRADE_LICENSE => body(bytes, LicensingMessage::UpgradeLicense)?,
            MessageType::LICENSE_INFO => body(bytes, LicensingMessage::LicenseInfo)?,
            MessageType::NEW_LICENSE_REQUEST => body(bytes, LicensingMessage::NewLicenseRequest)?,
            MessageType::PLATFORM_CHALLENGE_RESPONSE => {
                body(bytes, LicensingMessage::PlatformChallengeResponse)?
            }
            MessageType::ERROR_ALERT => body(bytes, LicensingMessage::ErrorAlert)?,
            other => {
                return fail(
                    input,
                    Self::NAME,
                    "bMsgType",
                    WireErrorKind::UnsupportedValue {
                        value: other.0.into(),
                    },
                )
            }
        };
        Ok((
            rest,
            Self {
                flags: preamble.flags,
                message,
            },
        ))
    }
}

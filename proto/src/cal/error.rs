//! Errors of the CAL layer: reading names the structure, field and byte offset; building names
//! the input or step that failed.

use crate::crypto::CryptoError;
use crate::wire::WireError;

/// What was wrong with the bytes, independent of where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedKind {
    #[error("input ends before the element is complete")]
    Truncated,
    #[error("declared length {declared} exceeds the {available} byte(s) available")]
    LengthExceedsInput { declared: u64, available: usize },
    #[error("{count} unexpected trailing byte(s)")]
    TrailingBytes { count: usize },
    #[error("expected tag {expected:#04x}, found {found:#04x}")]
    UnexpectedTag { expected: u8, found: u8 },
    #[error("indefinite length (BER, not DER)")]
    IndefiniteLength,
    #[error("multi-byte tag numbers are not used by CALs")]
    HighTagNumber,
    #[error("offset {offset} lies beyond the {available}-byte structure")]
    OffsetBeyondEnd { offset: u64, available: usize },
    #[error("count {count} exceeds the limit of {max}")]
    TooMany { count: u64, max: u64 },
    #[error("length {length} exceeds the limit of {max}")]
    TooLarge { length: u64, max: u64 },
    #[error("unsupported value {value:#x}")]
    UnsupportedValue { value: u64 },
    #[error("missing")]
    Missing,
    #[error("invalid text ({0})")]
    InvalidText(&'static str),
    #[error("x509-parser: {0}")]
    X509(String),
    #[error("malformed ({0})")]
    Malformed(&'static str),
}

/// A CAL that could not be read or built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalError {
    /// The bytes do not hold a CAL: `structure.field` at `offset` (from the start of the input
    /// handed to the parser) is wrong in the way `kind` says.
    #[error("{structure}.{field} at byte offset {offset}: {kind}")]
    Malformed {
        structure: &'static str,
        field: &'static str,
        offset: usize,
        kind: MalformedKind,
    },
    /// The NEW_LICENSE_INFO around the CAL is malformed.
    #[error("{0}")]
    NewLicenseInfo(WireError),
    /// A value handed to the builder cannot be put into a CAL.
    #[error("{field}: {reason}")]
    InvalidInput { field: &'static str, reason: String },
    /// DER encoding failed (a value out of the encoder's range).
    #[error("DER encoding of {structure}: {reason}")]
    Encoding {
        structure: &'static str,
        reason: String,
    },
    /// The signing key was refused (size limits, or the RSA backend could not take it).
    #[error("signing key: {0}")]
    Key(#[from] CryptoError),
    /// The RSA signature could not be made.
    #[error("signing {structure}: {reason}")]
    Signing {
        structure: &'static str,
        reason: String,
    },
}

/// A [`LicensingPrivateKey`](crate::crypto::LicensingPrivateKey) handed to the builder as it is
/// converts without error.
impl From<core::convert::Infallible> for CalError {
    fn from(never: core::convert::Infallible) -> Self {
        match never {}
    }
}

impl CalError {
    pub(crate) fn malformed(
        structure: &'static str,
        field: &'static str,
        offset: usize,
        kind: MalformedKind,
    ) -> Self {
        Self::Malformed {
            structure,
            field,
            offset,
            kind,
        }
    }

    pub(crate) fn encoding(structure: &'static str, error: &impl core::fmt::Display) -> Self {
        Self::Encoding {
            structure,
            reason: error.to_string(),
        }
    }

    /// The same error with its byte offset counted from `base` bytes earlier: for a CAL that sits
    /// inside a larger container (a NEW_LICENSE_INFO).
    #[must_use]
    pub fn with_base_offset(self, base: usize) -> Self {
        match self {
            Self::Malformed {
                structure,
                field,
                offset,
                kind,
            } => Self::Malformed {
                structure,
                field,
                offset: offset.saturating_add(base),
                kind,
            },
            other => other,
        }
    }

    /// The byte offset a parse error points at, if it is one.
    pub fn offset(&self) -> Option<usize> {
        match self {
            Self::Malformed { offset, .. } => Some(*offset),
            Self::NewLicenseInfo(error) => Some(error.offset),
            _ => None,
        }
    }
}

//! Errors of the wire layer: what went wrong, in which structure and field, at which byte offset.

use nom::error::ErrorKind;

/// What was wrong with the bytes, independent of where.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireErrorKind {
    #[error("input ends before the field is complete")]
    Truncated,
    #[error("declared length {declared} exceeds the {available} byte(s) available")]
    LengthExceedsInput { declared: u64, available: usize },
    #[error("{count} unexpected trailing byte(s)")]
    TrailingBytes { count: usize },
    #[error("count {count} exceeds the limit of {max}")]
    TooMany { count: u64, max: u64 },
    #[error("length {length} is below the minimum of {min}")]
    TooShort { length: u64, min: u64 },
    #[error("length {length} is not a multiple of {unit}")]
    Misaligned { length: u64, unit: u64 },
    #[error("unsupported value {value:#x}")]
    UnsupportedValue { value: u64 },
    #[error("malformed ({0})")]
    Malformed(&'static str),
}

/// A parse failure: the innermost structure and field that failed and its byte offset from the
/// start of the input handed to the top-level parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{structure}.{field} at byte offset {offset}: {kind}")]
pub struct WireError {
    pub structure: &'static str,
    pub field: &'static str,
    pub offset: usize,
    pub kind: WireErrorKind,
}

/// The nom error type of every parser in this crate. It remembers the input position, so the
/// top-level caller can turn it into a byte offset, and the innermost structure/field that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError<'a> {
    pub(crate) at: &'a [u8],
    pub(crate) structure: &'static str,
    pub(crate) field: &'static str,
    pub(crate) kind: WireErrorKind,
}

/// Result of every nom parser in this crate.
pub(crate) type PResult<'a, T> = nom::IResult<&'a [u8], T, ParseError<'a>>;

impl<'a> ParseError<'a> {
    #[inline]
    pub(crate) fn new(
        at: &'a [u8],
        structure: &'static str,
        field: &'static str,
        kind: WireErrorKind,
    ) -> Self {
        Self {
            at,
            structure,
            field,
            kind,
        }
    }

    /// Attributes an error raised by a primitive to the field being read; an error that already
    /// names a field keeps it (the innermost description is the most precise one).
    #[inline]
    fn attribute(mut self, structure: &'static str, field: &'static str) -> Self {
        if self.structure.is_empty() {
            self.structure = structure;
            self.field = field;
        }
        self
    }

    /// Converts to the public error, measuring the offset against `input`, the slice the
    /// top-level parser was given.
    #[inline]
    pub(crate) fn into_wire_error(self, input: &[u8]) -> WireError {
        let offset = self
            .at
            .as_ptr()
            .addr()
            .checked_sub(input.as_ptr().addr())
            .filter(|offset| *offset <= input.len())
            .unwrap_or(input.len());
        WireError {
            structure: self.structure,
            field: self.field,
            offset,
            kind: self.kind,
        }
    }
}

impl<'a> nom::error::ParseError<&'a [u8]> for ParseError<'a> {
    fn from_error_kind(input: &'a [u8], kind: ErrorKind) -> Self {
        let kind = match kind {
            ErrorKind::Eof | ErrorKind::Complete => WireErrorKind::Truncated,
            _ => WireErrorKind::Malformed("unexpected input"),
        };
        Self::new(input, "", "", kind)
    }

    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

/// Fails at `at` with `kind`, attributed to `structure.field`.
#[inline]
pub(crate) fn fail<'a, T>(
    at: &'a [u8],
    structure: &'static str,
    field: &'static str,
    kind: WireErrorKind,
) -> PResult<'a, T> {
    Err(nom::Err::Error(ParseError::new(at, structure, field, kind)))
}

/// Runs `parser` and attributes any error it raises without a field of its own to
/// `structure.field`.
#[inline]
pub(crate) fn field<'a, O, P>(
    structure: &'static str,
    field: &'static str,
    mut parser: P,
) -> impl FnMut(&'a [u8]) -> PResult<'a, O>
where
    P: nom::Parser<&'a [u8], Output = O, Error = ParseError<'a>>,
{
    move |input| {
        parser
            .parse(input)
            .map_err(|e| e.map(|e| e.attribute(structure, field)))
    }
}

/// An encoder failure: a value that the wire format cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    #[error("{structure}.{field}: length {length} exceeds the field's maximum of {max}")]
    TooLong {
        structure: &'static str,
        field: &'static str,
        length: usize,
        max: u64,
    },
    #[error("{structure}.{field}: {count} items exceed the limit of {max}")]
    TooMany {
        structure: &'static str,
        field: &'static str,
        count: usize,
        max: u64,
    },
}

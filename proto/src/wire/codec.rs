//! The one trait every wire structure implements, and the length-handling primitives they share.

use bytes::BufMut;

use super::error::{fail, field, EncodeError, PResult, ParseError, WireError, WireErrorKind};

/// A wire structure: a decoder that borrows from its input and an encoder into a
/// caller-provided buffer.
///
/// Invariant relied on by the tests and fuzz targets: when [`Wire::decode`] accepts bytes,
/// [`Wire::encode`] of the result reproduces them exactly — quirks seen on input are stored, and
/// lengths and counts are derived from the data rather than stored.
///
/// Implemented by this crate's types only: the parser behind it is nom, which stays an
/// implementation detail.
pub trait Wire<'a>: Parse<'a> {
    /// The structure's name as the specification spells it; used in errors.
    const NAME: &'static str;

    /// Exact number of bytes [`Wire::encode`] writes.
    fn encoded_len(&self) -> usize;

    /// Appends the encoding to `buf`. On error `buf` may hold a partial encoding.
    fn encode<B: BufMut>(&self, buf: &mut B) -> Result<(), EncodeError>;

    /// Parses `input` as exactly one structure: trailing bytes are an error, never dropped.
    #[inline]
    fn decode(input: &'a [u8]) -> Result<Self, WireError> {
        finish(input, Self::NAME, Self::parse(input))
    }

    /// Parses one structure from the front of `input`, returning it and the number of bytes it
    /// took; what follows is the caller's (the next structure, or a body this one announces).
    #[inline]
    fn decode_prefix(input: &'a [u8]) -> Result<(Self, usize), WireError> {
        match Self::parse(input) {
            Ok((rest, value)) => Ok((value, input.len().saturating_sub(rest.len()))),
            Err(e) => Err(nom_error(input, Self::NAME, e)),
        }
    }

    /// Encodes into a new buffer sized once from [`Wire::encoded_len`].
    fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode(&mut out)?;
        Ok(out)
    }
}

/// The nom parser behind [`Wire`]. Public in name only, so that it can bound `Wire`; it lives in
/// a crate-private module, which seals `Wire` and keeps nom out of the public API.
pub trait Parse<'a>: Sized {
    /// Parses one structure from the front of `input`, returning the rest.
    fn parse(input: &'a [u8]) -> PResult<'a, Self>;
}

/// Turns a nom result over the whole of `input` into a value or a [`WireError`] with an offset.
#[inline]
pub(crate) fn finish<'a, T>(
    input: &'a [u8],
    structure: &'static str,
    result: PResult<'a, T>,
) -> Result<T, WireError> {
    match result {
        Ok(([], value)) => Ok(value),
        Ok((rest, _)) => Err(WireError {
            structure,
            field: "(end)",
            offset: input.len().saturating_sub(rest.len()),
            kind: WireErrorKind::TrailingBytes { count: rest.len() },
        }),
        Err(e) => Err(nom_error(input, structure, e)),
    }
}

/// A nom failure of a parser given `input` as a [`WireError`] with an offset into `input`.
fn nom_error<'a>(
    input: &'a [u8],
    structure: &'static str,
    error: nom::Err<ParseError<'a>>,
) -> WireError {
    match error {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.into_wire_error(input),
        nom::Err::Incomplete(_) => WireError {
            structure,
            field: "(end)",
            offset: input.len(),
            kind: WireErrorKind::Truncated,
        },
    }
}

/// Takes `len` bytes, failing with the declared and available lengths when the input is short.
#[inline]
pub(crate) fn take_len<'a>(
    input: &'a [u8],
    len: u64,
    structure: &'static str,
    field: &'static str,
) -> PResult<'a, &'a [u8]> {
    match usize::try_from(len)
        .ok()
        .and_then(|n| input.split_at_checked(n))
    {
        Some((taken, rest)) => Ok((rest, taken)),
        None => fail(
            input,
            structure,
            field,
            WireErrorKind::LengthExceedsInput {
                declared: len,
                available: input.len(),
            },
        ),
    }
}

/// Takes a fixed-size array (randoms, MACs).
#[inline]
pub(crate) fn take_array<'a, const N: usize>(
    input: &'a [u8],
    structure: &'static str,
    field: &'static str,
) -> PResult<'a, [u8; N]> {
    match input.split_first_chunk::<N>() {
        Some((array, rest)) => Ok((rest, *array)),
        None => fail(input, structure, field, WireErrorKind::Truncated),
    }
}

/// Parses all of `body` with `parser`; bytes it leaves are reported as trailing bytes of
/// `structure`, never dropped.
#[inline]
pub(crate) fn parse_within<'a, T>(
    body: &'a [u8],
    structure: &'static str,
    parser: impl FnOnce(&'a [u8]) -> PResult<'a, T>,
) -> Result<T, nom::Err<super::error::ParseError<'a>>> {
    match parser(body)? {
        ([], value) => Ok(value),
        (rest, _) => Err(nom::Err::Error(super::error::ParseError::new(
            rest,
            structure,
            "(end)",
            WireErrorKind::TrailingBytes { count: rest.len() },
        ))),
    }
}

/// A length as a 16-bit wire field, or the encoder error naming the field.
pub(crate) fn len_u16(
    length: usize,
    structure: &'static str,
    field: &'static str,
) -> Result<u16, EncodeError> {
    u16::try_from(length).map_err(|_| EncodeError::TooLong {
        structure,
        field,
        length,
        max: u16::MAX.into(),
    })
}

/// A length as a 32-bit wire field, or the encoder error naming the field.
pub(crate) fn len_u32(
    length: usize,
    structure: &'static str,
    field: &'static str,
) -> Result<u32, EncodeError> {
    u32::try_from(length).map_err(|_| EncodeError::TooLong {
        structure,
        field,
        length,
        max: u32::MAX.into(),
    })
}

/// Reads a little-endian `u16` field.
#[inline]
pub(crate) fn u16_le<'a>(
    input: &'a [u8],
    structure: &'static str,
    name: &'static str,
) -> PResult<'a, u16> {
    field(structure, name, nom::number::complete::le_u16)(input)
}

/// Reads a little-endian `u32` field.
#[inline]
pub(crate) fn u32_le<'a>(
    input: &'a [u8],
    structure: &'static str,
    name: &'static str,
) -> PResult<'a, u32> {
    field(structure, name, nom::number::complete::le_u32)(input)
}

/// Reads a `u8` field.
#[inline]
pub(crate) fn u8_field<'a>(
    input: &'a [u8],
    structure: &'static str,
    name: &'static str,
) -> PResult<'a, u8> {
    field(structure, name, nom::number::complete::u8)(input)
}

//! Counted arrays (scope lists, certificate chains) as lazy views over the input.
//!
//! Parsing validates every element once and keeps only the slice they occupy, so a parse never
//! allocates, whatever count an attacker declares; elements are re-read on iteration. Values
//! built in memory (to encode a new message) hold their elements in a `Vec` instead.

use bytes::BufMut;

use super::codec::{u32_le, Wire};
use super::error::{fail, EncodeError, PResult, WireErrorKind};

/// A counted array of `T`; the count itself is a field of the enclosing structure.
#[derive(Clone)]
pub enum Counted<'a, T> {
    /// Validated elements as they appeared on the wire.
    Parsed { count: u32, bytes: &'a [u8] },
    /// Elements to encode.
    Built(Vec<T>),
}

impl<'a, T: Wire<'a> + Clone> Counted<'a, T> {
    /// Reads a 32-bit count followed by that many elements, rejecting a count above `max`
    /// before reading any element.
    #[inline]
    pub(crate) fn parse_counted(
        input: &'a [u8],
        max: u32,
        structure: &'static str,
        field: &'static str,
    ) -> PResult<'a, Self> {
        let (items, count) = u32_le(input, structure, field)?;
        if count > max {
            return fail(
                input,
                structure,
                field,
                WireErrorKind::TooMany {
                    count: count.into(),
                    max: max.into(),
                },
            );
        }
        let mut rest = items;
        for _ in 0..count {
            rest = T::parse(rest)?.0;
        }
        let used = items.len().saturating_sub(rest.len());
        let bytes = items.get(..used).unwrap_or_default();
        Ok((rest, Self::Parsed { count, bytes }))
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Parsed { count, .. } => usize::try_from(*count).unwrap_or(usize::MAX),
            Self::Built(items) => items.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> CountedIter<'a, '_, T> {
        match self {
            Self::Parsed { count, bytes } => CountedIter::Parsed {
                left: *count,
                rest: bytes,
            },
            Self::Built(items) => CountedIter::Built(items.iter()),
        }
    }

    /// Encoded size: the 32-bit count and the elements.
    pub(crate) fn encoded_len(&self) -> usize {
        4 + match self {
            Self::Parsed { bytes, .. } => bytes.len(),
            Self::Built(items) => items.iter().map(Wire::encoded_len).sum(),
        }
    }

    /// Writes the 32-bit count, checked against `max`, and the elements.
    pub(crate) fn encode_counted<B: BufMut>(
        &self,
        buf: &mut B,
        max: u32,
        structure: &'static str,
        field: &'static str,
    ) -> Result<(), EncodeError> {
        let count = u32::try_from(self.len())
            .ok()
            .filter(|count| *count <= max)
            .ok_or(EncodeError::TooMany {
                structure,
                field,
                count: self.len(),
                max: max.into(),
            })?;
        buf.put_u32_le(count);
        match self {
            Self::Parsed { bytes, .. } => {
                buf.put_slice(bytes);
                Ok(())
            }
            Self::Built(items) => items.iter().try_for_each(|item| item.encode(buf)),
        }
    }
}

/// Iterator over a [`Counted`] array.
#[derive(Debug)]
pub enum CountedIter<'a, 'l, T> {
    Parsed { left: u32, rest: &'a [u8] },
    Built(core::slice::Iter<'l, T>),
}

impl<'a, T: Wire<'a> + Clone> Iterator for CountedIter<'a, '_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        match self {
            Self::Parsed { left, rest } => {
                *left = left.checked_sub(1)?;
                // Every element was validated when the array was parsed, so this cannot fail.
                let (remaining, item) = T::parse(rest).ok()?;
                *rest = remaining;
                Some(item)
            }
            Self::Built(items) => items.next().cloned(),
        }
    }
}

impl<'a, T: Wire<'a> + Clone + PartialEq> PartialEq for Counted<'a, T> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl<'a, T: Wire<'a> + Clone + PartialEq> Eq for Counted<'a, T> {}

impl<'a, T: Wire<'a> + Clone + core::fmt::Debug> core::fmt::Debug for Counted<'a, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T> From<Vec<T>> for Counted<'_, T> {
    fn from(items: Vec<T>) -> Self {
        Self::Built(items)
    }
}

/// Up to eight elements (none included), so generated values stay within every limit.
#[cfg(feature = "arbitrary")]
impl<'a, T: arbitrary::Arbitrary<'a>> arbitrary::Arbitrary<'a> for Counted<'a, T> {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let count = u.int_in_range(0..=8)?;
        let items = (0..count)
            .map(|_| T::arbitrary(u))
            .collect::<arbitrary::Result<Vec<T>>>()?;
        Ok(Self::Built(items))
    }
}

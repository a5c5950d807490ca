//! A small, bounded DER reader for the PKCS#7 envelope around the certificates (x509-parser reads
//! the certificates themselves; it does not read CMS). Every element is read inside the bounds of
//! its parent, every offset is counted from the start of the whole input, and nothing panics.

use super::error::{CalError, MalformedKind};

/// DER tag bytes used by the envelope.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const OBJECT_IDENTIFIER: u8 = 0x06;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    /// `[0]` constructed (EXPLICIT content, or IMPLICIT SET OF certificates).
    pub const CONTEXT_0: u8 = 0xA0;
    /// `[1]` constructed (IMPLICIT SET OF revocation info).
    pub const CONTEXT_1: u8 = 0xA1;
}

/// Longest length field accepted (4 bytes: up to 4 GiB, far above any CAL).
const MAX_LENGTH_BYTES: usize = 4;

/// One tag-length-value element.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tlv<'a> {
    pub tag: u8,
    /// Offset of the tag byte from the start of the input.
    pub start: usize,
    /// The whole element, tag to end of value.
    pub raw: &'a [u8],
    pub value: &'a [u8],
    /// Offset of the first value byte from the start of the input.
    pub value_start: usize,
}

/// Reads consecutive elements from a slice that starts `base` bytes into the input.
#[derive(Clone, Copy, Debug)]
pub(crate) struct DerReader<'a> {
    data: &'a [u8],
    base: usize,
    pos: usize,
    structure: &'static str,
}

impl<'a> DerReader<'a> {
    /// A reader over the whole input, reporting errors against `structure`.
    pub fn new(data: &'a [u8], structure: &'static str) -> Self {
        Self {
            data,
            base: 0,
            pos: 0,
            structure,
        }
    }

    /// A reader over the value of `tlv`, reporting errors against `structure`.
    pub fn nested(tlv: &Tlv<'a>, structure: &'static str) -> Self {
        Self {
            data: tlv.value,
            base: tlv.value_start,
            pos: 0,
            structure,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// The offset (from the start of the input) of the next unread byte.
    pub fn offset(&self) -> usize {
        self.base.saturating_add(self.pos)
    }

    /// The tag of the next element, without consuming it.
    pub fn peek_tag(&self) -> Option<u8> {
        self.data.get(self.pos).copied()
    }

    fn error(&self, field: &'static str, at: usize, kind: MalformedKind) -> CalError {
        CalError::malformed(self.structure, field, self.base.saturating_add(at), kind)
    }

    /// Reads the next element, whatever its tag.
    pub fn read(&mut self, field: &'static str) -> Result<Tlv<'a>, CalError> {
        let start = self.pos;
        let tag = *self
            .data
            .get(start)
            .ok_or_else(|| self.error(field, start, MalformedKind::Truncated))?;
        if tag & 0x1F == 0x1F {
            return Err(self.error(field, start, MalformedKind::HighTagNumber));
        }
        let length_at = start.saturating_add(1);
        let first = *self
            .data
            .get(length_at)
            .ok_or_else(|| self.error(field, length_at, MalformedKind::Truncated))?;
        let (length, header_len) = if first < 0x80 {
            (u64::from(first), 2usize)
        } else if first == 0x80 {
            return Err(self.error(field, length_at, MalformedKind::IndefiniteLength));
        } else {
            let count = usize::from(first & 0x7F);
            if count > MAX_LENGTH_BYTES {
                return Err(self.error(
                    field,
                    length_at,
                    MalformedKind::UnsupportedValue {
                        value: u64::from(first),
                    },
                ));
            }
            let bytes_at = length_at.saturating_add(1);
            let bytes = self
                .data
                .get(bytes_at..bytes_at.saturating_add(count))
                .ok_or_else(|| self.error(field, bytes_at, MalformedKind::Truncated))?;
            let length = bytes
                .iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte));
            (length, count.saturating_add(2))
        };
        let value_start = start.saturating_add(header_len);
        let available = self.data.len().saturating_sub(value_start);
        let value_len = usize::try_from(length)
            .ok()
            .filter(|len| *len <= available)
            .ok_or_else(|| {
                self.error(
                    field,
                    length_at,
                    MalformedKind::LengthExceedsInput {
                        declared: length,
                        available,
                    },
                )
            })?;
        let end = value_start.saturating_add(value_len);
        let (Some(raw), Some(value)) = (self.data.get(start..end), self.data.get(value_start..end))
        else {
            return Err(self.error(field, start, MalformedKind::Truncated));
        };
        self.pos = end;
        Ok(Tlv {
            tag,
            start: self.base.saturating_add(start),
            raw,
            value,
            value_start: self.base.saturating_add(value_start),
        })
    }

    /// Reads the next element and checks its tag.
    pub fn expect(&mut self, expected: u8, field: &'static str) -> Result<Tlv<'a>, CalError> {
        let at = self.pos;
        let tlv = self.read(field)?;
        if tlv.tag != expected {
            self.pos = at;
            return Err(self.error(
                field,
                at,
                MalformedKind::UnexpectedTag {
                    expected,
                    found: tlv.tag,
                },
            ));
        }
        Ok(tlv)
    }

    /// Reads the next element if it carries `tag`.
    pub fn optional(&mut self, tag: u8, field: &'static str) -> Result<Option<Tlv<'a>>, CalError> {
        if self.peek_tag() == Some(tag) {
            self.read(field).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fails if anything is left unread.
    pub fn finish(&self, field: &'static str) -> Result<(), CalError> {
        let count = self.data.len().saturating_sub(self.pos);
        if count == 0 {
            Ok(())
        } else {
            Err(self.error(field, self.pos, MalformedKind::TrailingBytes { count }))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    #[test]
    fn reads_short_and_long_lengths() {
        let data = [0x30, 0x03, 0x02, 0x01, 0x05, 0x04, 0x81, 0x01, 0xAA];
        let mut reader = DerReader::new(&data, "TEST");
        let seq = reader.expect(tag::SEQUENCE, "seq").unwrap();
        assert_eq!(seq.value, &[0x02, 0x01, 0x05]);
        assert_eq!(seq.value_start, 2);
        let mut inner = DerReader::nested(&seq, "INNER");
        let int = inner.expect(tag::INTEGER, "int").unwrap();
        assert_eq!((int.start, int.value_start, int.value), (2, 4, &[5u8][..]));
        inner.finish("end").unwrap();
        let octets = reader.read("octets").unwrap();
        assert_eq!(octets.value, &[0xAA]);
        reader.finish("end").unwrap();
    }

    #[test]
    fn rejects_what_der_forbids_with_offsets() {
        let err = DerReader::new(&[0x30, 0x80, 0x00, 0x00], "T")
            .read("f")
            .unwrap_err();
        assert_eq!(err.offset(), Some(1));
        let err = DerReader::new(&[0x30, 0x05, 0x00], "T")
            .read("f")
            .unwrap_err();
        assert!(matches!(
            err,
            CalError::Malformed {
                kind: MalformedKind::LengthExceedsInput {
                    declared: 5,
                    available: 1
                },
                ..
            }
        ));
        let err = DerReader::new(&[0x30, 0x85, 1, 1, 1, 1, 1], "T")
            .read("f")
            .unwrap_err();
        assert_eq!(err.offset(), Some(1));
        let err = DerReader::new(&[0x1F, 0x01], "T").read("f").unwrap_err();
        assert_eq!(err.offset(), Some(0));
        let mut reader = DerReader::new(&[0x02, 0x00, 0x05], "T");
        reader.read("f").unwrap();
        assert_eq!(reader.finish("end").unwrap_err().offset(), Some(2));
    }
}

//! The two string encodings licensing uses, kept as the raw bytes seen on the wire so that a
//! missing or doubled NUL terminator round-trips; decoding is for display only.

use std::borrow::Cow;

/// A UTF-16LE string, NUL-terminated by convention (company names, product ids).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Utf16<'a>(pub &'a [u8]);

impl<'a> Utf16<'a> {
    /// The text up to the first NUL; invalid code units become U+FFFD.
    pub fn to_string_lossy(&self) -> String {
        let units = self
            .0
            .as_chunks::<2>()
            .0
            .iter()
            .map(|pair| u16::from_le_bytes(*pair))
            .take_while(|unit| *unit != 0);
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect()
    }

    /// Encodes `text` as UTF-16LE with a terminating NUL, the form Windows sends.
    pub fn encode_nul_terminated(text: &str) -> Vec<u8> {
        text.encode_utf16()
            .chain(std::iter::once(0))
            .flat_map(u16::to_le_bytes)
            .collect()
    }
}

impl core::fmt::Debug for Utf16<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

/// An 8-bit string, NUL-terminated by convention (scope names, user and machine names).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Ascii<'a>(pub &'a [u8]);

impl<'a> Ascii<'a> {
    /// The text up to the first NUL; bytes that are not UTF-8 become U+FFFD.
    pub fn to_string_lossy(&self) -> Cow<'a, str> {
        let end = self.0.iter().position(|b| *b == 0).unwrap_or(self.0.len());
        String::from_utf8_lossy(self.0.get(..end).unwrap_or_default())
    }

    /// Encodes `text` with a terminating NUL, the form Windows and FreeRDP send.
    pub fn encode_nul_terminated(text: &str) -> Vec<u8> {
        text.bytes().chain(std::iter::once(0)).collect()
    }
}

impl core::fmt::Debug for Ascii<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.to_string_lossy())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_stops_at_nul_and_encodes_with_one() {
        let bytes = Utf16::encode_nul_terminated("A02");
        assert_eq!(bytes, b"A\x000\x002\x00\x00\x00");
        assert_eq!(Utf16(&bytes).to_string_lossy(), "A02");
    }

    #[test]
    fn ascii_without_terminator_keeps_every_byte() {
        assert_eq!(Ascii(b"vm").to_string_lossy(), "vm");
        assert_eq!(Ascii(b"vm\0junk").to_string_lossy(), "vm");
    }
}

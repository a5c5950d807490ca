//! Fixed-size secret byte arrays: never printed, compared in constant time, wiped on drop.

use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// A secret byte array (a premaster or master secret, a session key). `Debug` prints
/// `[redacted]`, so secrets cannot leak through logs or test failure messages; equality is
/// constant-time; the bytes are zeroized when the value is dropped.
#[derive(Clone)]
pub struct Secret<const N: usize>([u8; N]);

impl<const N: usize> Secret<N> {
    #[inline]
    pub fn new(bytes: [u8; N]) -> Self {
        Self(bytes)
    }

    /// The secret bytes. Named so that every use of the secret is visible at the call site.
    #[inline]
    pub fn expose(&self) -> &[u8; N] {
        &self.0
    }
}

impl<const N: usize> core::fmt::Debug for Secret<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Constant-time, so comparing a received value against an expected one leaks no prefix length.
impl<const N: usize> PartialEq for Secret<N> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl<const N: usize> Eq for Secret<N> {}

impl<const N: usize> Drop for Secret<N> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new([0x41; 16]);
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret:#?}"), "[redacted]");
    }

    #[test]
    fn equality_compares_every_byte() {
        let mut other = [7u8; 48];
        assert_eq!(Secret::new([7u8; 48]), Secret::new(other));
        if let Some(last) = other.last_mut() {
            *last = 8;
        }
        assert_ne!(Secret::new([7u8; 48]), Secret::new(other));
        assert_eq!(Secret::new([7u8; 48]).expose(), &[7u8; 48]);
    }
}

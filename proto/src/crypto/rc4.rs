//! MS-RDPELE 5.1.3 Encrypting Licensing Session Data and 5.1.4 Decrypting Licensing Session Data:
//! RC4 keyed with the licensing encryption key.
//!
//! RC4 is small enough to keep here rather than pull in a stream-cipher framework for it; the
//! `rc4` crate's constructor is fallible for key lengths this module never uses.

use zeroize::Zeroize;

use super::keys::SESSION_KEY_LEN;

/// Encrypts or decrypts (RC4 is its own inverse) one licensing blob.
///
/// Every blob starts from a fresh RC4 state keyed with the licensing encryption key: licensing
/// does not carry the keystream over from one blob to the next, unlike RDP's session encryption.
/// (xfreerdp does the same; a peer that carried the state over would fail our MAC check.)
pub fn rc4(key: &[u8; SESSION_KEY_LEN], data: &[u8]) -> Vec<u8> {
    let mut out = data.to_vec();
    Rc4::new(key).apply(&mut out);
    out
}

/// The RC4 state (ARCFOUR): a permutation of the byte values and two indices. Standard RDP
/// Security keeps one per direction for the whole connection (MS-RDPBCGR 5.3.6).
pub(super) struct Rc4 {
    state: [u8; 256],
    i: u8,
    j: u8,
}

impl Rc4 {
    /// Key scheduling (KSA). `key` must not be empty.
    pub(super) fn new(key: &[u8]) -> Self {
        let mut state = [0u8; 256];
        for (slot, value) in state.iter_mut().zip(0..=u8::MAX) {
            *slot = value;
        }
        let mut j = 0u8;
        for (i, key_byte) in (0..=u8::MAX).zip(key.iter().cycle()) {
            j = j.wrapping_add(Self::at(&state, i)).wrapping_add(*key_byte);
            state.swap(usize::from(i), usize::from(j));
        }
        Self { state, i: 0, j: 0 }
    }

    /// XORs the keystream (PRGA) into `data`.
    pub(super) fn apply(&mut self, data: &mut [u8]) {
        for byte in data {
            self.i = self.i.wrapping_add(1);
            self.j = self.j.wrapping_add(Self::at(&self.state, self.i));
            self.state.swap(usize::from(self.i), usize::from(self.j));
            let index = Self::at(&self.state, self.i).wrapping_add(Self::at(&self.state, self.j));
            *byte ^= Self::at(&self.state, index);
        }
    }

    /// `state[index]`: a u8 index into a 256-entry table is always in bounds, so the fallback
    /// is never taken (and the optimiser removes it).
    #[inline(always)]
    fn at(state: &[u8; 256], index: u8) -> u8 {
        state.get(usize::from(index)).copied().unwrap_or_default()
    }
}

impl Drop for Rc4 {
    fn drop(&mut self) {
        self.state.zeroize();
        self.i.zeroize();
        self.j.zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ARCFOUR test vectors everyone checks against (key, plaintext, ciphertext), with keys
    /// of several lengths to exercise the key schedule's wrap-around.
    #[test]
    fn known_answers() {
        let vectors: [(&[u8], &[u8], &str); 3] = [
            (b"Key", b"Plaintext", "bbf316e8d940af0ad3"),
            (b"Wiki", b"pedia", "1021bf0420"),
            (b"Secret", b"Attack at dawn", "45a01f645fc35b383552544b9bf5"),
        ];
        for (key, plaintext, ciphertext) in vectors {
            let mut data = plaintext.to_vec();
            Rc4::new(key).apply(&mut data);
            assert_eq!(hex::encode(&data), ciphertext, "key {key:?}");
        }
    }

    #[test]
    fn decrypting_restores_the_plaintext_and_every_blob_starts_afresh() {
        let key = [0x5a; 16];
        let plaintext = b"licensing blob".to_vec();
        let ciphertext = rc4(&key, &plaintext);
        assert_ne!(ciphertext, plaintext);
        assert_eq!(rc4(&key, &ciphertext), plaintext);
        // Same key, same data: same bytes, because no keystream is carried over.
        assert_eq!(rc4(&key, &plaintext), ciphertext);
        assert!(rc4(&key, &[]).is_empty());
    }
}

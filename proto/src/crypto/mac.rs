//! MS-RDPELE 5.1.5 MAC Generation (the MACData field of the Platform Challenge, the Platform
//! Challenge Response, License Info and New/Upgrade License messages).

use md5::Md5;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::keys::SESSION_KEY_LEN;

/// Length of MACData.
pub const MAC_LEN: usize = 16;

const PAD1: [u8; 40] = [0x36; 40];
const PAD2: [u8; 48] = [0x5c; 48];

/// MS-RDPELE 5.1.5:
/// `MACData = MD5(MacSaltKey + pad2 + SHA-1(MacSaltKey + pad1 + length + data))`, with `length`
/// the data length as a little-endian u32.
///
/// `data` is the **unencrypted** content the MAC protects — the decrypted challenge, or the
/// decrypted response data followed by the decrypted HWID — never the RC4 output.
pub fn mac_data(mac_salt_key: &[u8; SESSION_KEY_LEN], data: &[u8]) -> [u8; MAC_LEN] {
    // Licensing blobs are at most 65535 bytes (wBlobLen), so the length always fits; saturating
    // keeps this total for arbitrary callers without a panic path.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let inner = Sha1::new()
        .chain_update(mac_salt_key)
        .chain_update(PAD1)
        .chain_update(length.to_le_bytes())
        .chain_update(data)
        .finalize();
    Md5::new()
        .chain_update(mac_salt_key)
        .chain_update(PAD2)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Whether `mac` is the MACData of `data`, compared in constant time so that a forger learns
/// nothing from how long the comparison took.
pub fn verify_mac(mac_salt_key: &[u8; SESSION_KEY_LEN], data: &[u8], mac: &[u8; MAC_LEN]) -> bool {
    mac_data(mac_salt_key, data).ct_eq(mac).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_changed_byte_fails_verification() {
        let key = [0x11; 16];
        let data = b"platform challenge response data".to_vec();
        let mac = mac_data(&key, &data);
        assert!(verify_mac(&key, &data, &mac));
        for index in 0..data.len() {
            let mut tampered = data.clone();
            if let Some(byte) = tampered.get_mut(index) {
                *byte ^= 0x01;
            }
            assert!(!verify_mac(&key, &tampered, &mac), "byte {index}");
        }
        for index in 0..MAC_LEN {
            let mut tampered = mac;
            if let Some(byte) = tampered.get_mut(index) {
                *byte ^= 0x80;
            }
            assert!(!verify_mac(&key, &data, &tampered), "MAC byte {index}");
        }
        assert!(!verify_mac(&[0x12; 16], &data, &mac), "other key");
        // The length is part of the MAC: a trailing zero byte changes it.
        assert!(!verify_mac(&key, &[data.as_slice(), &[0]].concat(), &mac));
    }
}

//! Workarounds for three bugs in IronRDP's licensing code (ironrdp-pdu 0.11, used by
//! ironrdp-connector 0.12; all three still on IronRDP's master), applied to the bytes between
//! IronRDP and TLS when asked for (`--workaround NAME`), and reported in the JSON `workarounds`
//! field by name each time one changed a PDU.
//!
//! 1. `proprietary-key` ([`fix_proprietary_key_byte_order`]): IronRDP reads a proprietary
//!    certificate's RSA key big-endian, so it encrypts the premaster secret with a wrong key and
//!    then rejects the server's Platform Challenge ("MAC checksum ... does not match"). Hosts that
//!    send an X.509 chain (Windows, rdpele's default) are not affected.
//! 2. `challenge-response-padding` ([`fix_platform_challenge_response`]): IronRDP puts 8 zero
//!    bytes in front of PLATFORM_CHALLENGE_RESPONSE_DATA. Hosts that check only the MAC (Windows,
//!    rdpele's default `challenge-check = "mac-only"`) accept it; strict ones refuse it.
//! 3. `premaster-length` ([`fix_premaster_length`]): IronRDP writes the encrypted premaster
//!    secret as the ciphertext's significant bytes plus 8 zero bytes, not the modulus length plus
//!    8, so when the ciphertext's top byte is zero (about 1 connection in 128 with a 2048-bit key
//!    whose top byte is 0x80..0xFF) the blob is a byte short; a host that insists on the length
//!    (rdpele serve does) derives other keys and licensing fails at random.

use md5::Md5;
use pkcs1::der::Decode as _;
use sha1::{Digest as _, Sha1};

use crate::licensing::{
    LICENSE_INFO, LICENSE_REQUEST, NEW_LICENSE_REQUEST, PLATFORM_CHALLENGE_RESPONSE, PREAMBLE_LEN,
};
use crate::slow_path::{self, read_u16_le, read_u32_le};

/// Which workarounds to apply.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Workarounds {
    pub proprietary_key: bool,
    pub challenge_response_padding: bool,
    pub premaster_length: bool,
}

pub const PROPRIETARY_KEY: &str = "proprietary-key";
pub const CHALLENGE_RESPONSE_PADDING: &str = "challenge-response-padding";
pub const PREMASTER_LENGTH: &str = "premaster-length";

/// dwVersion of a SERVER_CERTIFICATE (MS-RDPBCGR 2.2.1.4.3.1): the chain version in the low 31
/// bits, the "issued permanently" flag in the top bit.
const CERT_CHAIN_VERSION_MASK: u32 = 0x7FFF_FFFF;
const CERT_CHAIN_VERSION_1: u32 = 1;
/// "RSA1" (MS-RDPBCGR 2.2.1.4.3.1.1.1, RSA_PUBLIC_KEY magic).
const RSA1_MAGIC: u32 = 0x3141_5352;

/// Reverses the byte order of the public exponent and of the modulus field (modulus and its 8
/// bytes of zero padding) of a proprietary certificate in a Server License Request, in place.
/// Returns whether it did.
///
/// Why: `ServerCertificate::get_public_key` in ironrdp-pdu builds the RSA key
/// of a proprietary certificate by handing the little-endian modulus bytes (padding included) and
/// `public_exponent.to_le_bytes()` to `pkcs1::UintRef`, which reads big-endian; `encrypt_with_public_key`
/// then encrypts the premaster secret with that wrong key, the server decrypts another premaster
/// secret, and IronRDP rejects the server's Platform Challenge with "MAC checksum ... does not
/// match". Reversing both fields here makes IronRDP's big-endian reading yield the real key
/// (the padding becomes leading zeros, which `UintRef` strips). No length changes, and nothing in
/// the licensing MACs covers the License Request. X.509 chains are left alone: IronRDP reads those
/// correctly.
pub fn fix_proprietary_key_byte_order(pdu: &mut [u8]) -> bool {
    let Some(at) = proprietary_public_key_at(pdu) else {
        return false;
    };
    // RSA_PUBLIC_KEY: magic, keylen, bitlen, datalen, pubExp, modulus (keylen bytes).
    let Some(keylen) = read_u32_le(pdu, at + 4).and_then(|len| usize::try_from(len).ok()) else {
        return false;
    };
    let exponent = at + 16;
    let Some(fields_end) = (exponent + 4).checked_add(keylen) else {
        return false;
    };
    let Some(fields) = pdu.get_mut(exponent..fields_end) else {
        return false;
    };
    let (exponent, modulus) = fields.split_at_mut(4);
    exponent.reverse();
    modulus.reverse();
    true
}

/// Where the RSA_PUBLIC_KEY of a Server License Request's proprietary certificate starts.
fn proprietary_public_key_at(pdu: &[u8]) -> Option<usize> {
    let (certificate, _) = server_certificate(pdu)?;
    // SERVER_CERTIFICATE: dwVersion, and for a proprietary certificate dwSigAlgId, dwKeyAlgId,
    // wPublicKeyBlobType, wPublicKeyBlobLen, PublicKeyBlob.
    let version = read_u32_le(pdu, certificate)?;
    if version & CERT_CHAIN_VERSION_MASK != CERT_CHAIN_VERSION_1 {
        return None;
    }
    let public_key = certificate + 16;
    (read_u32_le(pdu, public_key)? == RSA1_MAGIC).then_some(public_key)
}

/// Where the SERVER_CERTIFICATE of a Server License Request starts, and its length.
fn server_certificate(pdu: &[u8]) -> Option<(usize, usize)> {
    if pdu.first() != Some(&LICENSE_REQUEST) {
        return None;
    }
    // SERVER_LICENSE_REQUEST (MS-RDPELE 2.2.2.1): ServerRandom (32), ProductInfo, KeyExchangeList
    // blob, ServerCertificate blob, ScopeList.
    let mut at = PREAMBLE_LEN + 32;
    // PRODUCT_INFO: dwVersion, cbCompanyName, pbCompanyName, cbProductId, pbProductId.
    at += 4;
    at = skip_counted(pdu, at)?;
    at = skip_counted(pdu, at)?;
    // KeyExchangeList: wBlobType, wBlobLen, data.
    let key_exchange_len = usize::from(read_u16_le(pdu, at + 2)?);
    at = at.checked_add(4 + key_exchange_len)?;
    // ServerCertificate: wBlobType, wBlobLen, SERVER_CERTIFICATE.
    let len = usize::from(read_u16_le(pdu, at + 2)?);
    Some((at + 4, len))
}

/// CERT_CHAIN_VERSION_2 (MS-RDPELE 2.2.1.4.2).
const CERT_CHAIN_VERSION_2: u32 = 2;
/// 8 bytes of zero padding after the encrypted premaster secret (MS-RDPELE 5.1.2.1).
const WIRE_PADDING_LEN: usize = 8;

/// The length in bytes of the RSA modulus the server's License Request holds: the proprietary
/// key's `keylen` minus its padding, or the last certificate's key in an X.509 chain (the one
/// clients encrypt to).
pub fn server_modulus_len(pdu: &[u8]) -> Option<usize> {
    if let Some(public_key) = proprietary_public_key_at(pdu) {
        let keylen = usize::try_from(read_u32_le(pdu, public_key + 4)?).ok()?;
        return keylen.checked_sub(WIRE_PADDING_LEN);
    }
    let (certificate, len) = server_certificate(pdu)?;
    let chain = pdu.get(certificate..certificate.checked_add(len)?)?;
    if read_u32_le(chain, 0)? & CERT_CHAIN_VERSION_MASK != CERT_CHAIN_VERSION_2 {
        return None;
    }
    // X509_CERTIFICATE_CHAIN: NumCertBlobs, then CertBlob { cbCert, abCert } each.
    let count = read_u32_le(chain, 4)?;
    let mut at = 8;
    let mut last = None;
    for _ in 0..count {
        let cert_len = usize::try_from(read_u32_le(chain, at)?).ok()?;
        let start = at + 4;
        let end = start.checked_add(cert_len)?;
        last = Some(chain.get(start..end)?);
        at = end;
    }
    let certificate = x509_cert::Certificate::from_der(last?).ok()?;
    let key = certificate
        .tbs_certificate()
        .subject_public_key_info()
        .subject_public_key
        .as_bytes()?;
    let key = pkcs1::RsaPublicKey::from_der(key).ok()?;
    Some(key.modulus.as_bytes().len())
}

/// Pads the encrypted premaster secret of a Client New License Request or Client License Info in
/// `frame` (a whole TPKT frame as IronRDP encoded it) to `modulus_len` + 8 bytes, lengths
/// recomputed. `None` when `frame` is neither or the blob already has that length.
///
/// Why: `encrypt_with_public_key` in ironrdp-pdu returns `c.to_bytes_le()` and 8 zero bytes;
/// `to_bytes_le` drops the ciphertext's high zero bytes, so the blob is short whenever the
/// ciphertext is below 2^(8 * (modulus_len - 1)). Zero bytes appended are the missing high bytes
/// (the value does not change), and no MAC covers the blob.
pub fn fix_premaster_length(frame: &[u8], modulus_len: usize) -> Option<Vec<u8>> {
    let send = slow_path::parse_send_data(frame)?;
    if !send.is_licensing(frame) {
        return None;
    }
    let security = frame.get(send.user_data.start..send.licensing_pdu().start)?;
    let pdu = frame.get(send.licensing_pdu())?;
    if !matches!(pdu.first(), Some(&(NEW_LICENSE_REQUEST | LICENSE_INFO))) {
        return None;
    }
    // Both messages: preamble, dwPreferredKeyExchangeAlg, PlatformId, ClientRandom (32), then the
    // EncryptedPreMasterSecret blob.
    let blob = PREAMBLE_LEN + 40;
    let (_, encrypted) = read_blob(pdu, blob)?;
    let wanted = modulus_len.checked_add(WIRE_PADDING_LEN)?;
    if encrypted.len() >= wanted || encrypted.len() < WIRE_PADDING_LEN {
        return None;
    }
    let missing = wanted - encrypted.len();
    let data_end = blob + 4 + encrypted.len();
    let mut message = Vec::with_capacity(pdu.len() + missing);
    message.extend_from_slice(pdu.get(..2)?);
    message.extend_from_slice(&u16::try_from(pdu.len() + missing).ok()?.to_le_bytes());
    message.extend_from_slice(pdu.get(PREAMBLE_LEN..blob + 2)?);
    message.extend_from_slice(&u16::try_from(wanted).ok()?.to_le_bytes());
    message.extend_from_slice(encrypted);
    message.extend(std::iter::repeat_n(0u8, missing));
    message.extend_from_slice(pdu.get(data_end..)?);
    let user_data = [security, &message].concat();
    slow_path::build_send_data(send.direction, send.initiator, send.channel_id, &user_data)
}

/// Skips a 32-bit byte count and that many bytes.
fn skip_counted(pdu: &[u8], at: usize) -> Option<usize> {
    let len = usize::try_from(read_u32_le(pdu, at)?).ok()?;
    at.checked_add(4)?.checked_add(len)
}

/// The session keys IronRDP derived (its `LicenseEncryptionData`), which the Platform Challenge
/// Response is encrypted and signed with.
#[derive(Clone)]
pub struct LicensingKeys {
    pub license_key: Vec<u8>,
    pub mac_salt_key: Vec<u8>,
}

impl std::fmt::Debug for LicensingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LicensingKeys(..)")
    }
}

/// PLATFORM_CHALLENGE_RESPONSE_DATA (MS-RDPELE 2.2.2.5.1): wVersion, wClientType,
/// wLicenseDetailLevel, cbChallenge, then the challenge.
const RESPONSE_DATA_FIXED_LEN: usize = 8;
const RESPONSE_DATA_VERSION: [u8; 2] = [0x00, 0x01];
/// What IronRDP puts in front of it.
const IRONRDP_PADDING: [u8; 8] = [0; 8];
const MAC_LEN: usize = 16;

/// Rewrites the Client Platform Challenge Response in `frame` (a whole TPKT frame as IronRDP
/// encoded it) without the 8 zero bytes IronRDP puts in front of PLATFORM_CHALLENGE_RESPONSE_DATA,
/// re-encrypted and with the MAC computed again. `None` when `frame` is not such a response or the
/// data does not start with those 8 bytes (an IronRDP with the bug fixed).
///
/// Why: `ClientPlatformChallengeResponse::from_server_platform_challenge` in ironrdp-pdu starts the
/// data with `vec![0u8; RESPONSE_DATA_STATIC_FIELDS_SIZE]` and then *appends* wVersion,
/// wClientType, wLicenseDetailLevel, cbChallenge and the challenge, so the server decrypts
/// wVersion = 0 and cbChallenge = 0 followed by 18 stray bytes (rdpele answers
/// ERR_INVALID_MESSAGE_LEN). The MAC covers the padded data, so the fix needs IronRDP's session
/// keys, which the connector exposes while it awaits the Platform Challenge.
pub fn fix_platform_challenge_response(frame: &[u8], keys: &LicensingKeys) -> Option<Vec<u8>> {
    let send = slow_path::parse_send_data(frame)?;
    if !send.is_licensing(frame) {
        return None;
    }
    let security = frame.get(send.user_data.start..send.licensing_pdu().start)?;
    let pdu = frame.get(send.licensing_pdu())?;
    if pdu.first() != Some(&PLATFORM_CHALLENGE_RESPONSE) {
        return None;
    }
    // CLIENT_PLATFORM_CHALLENGE_RESPONSE (MS-RDPELE 2.2.2.5): EncryptedPlatformChallengeResponse
    // blob, EncryptedHWID blob, MACData.
    let (response_type, response) = read_blob(pdu, PREAMBLE_LEN)?;
    let hwid_at = PREAMBLE_LEN + 4 + response.len();
    let (_, hwid) = read_blob(pdu, hwid_at)?;
    let hwid_blob = pdu.get(hwid_at..hwid_at + 4 + hwid.len())?;
    let response_plain = rc4(&keys.license_key, response);
    let fixed = response_plain.strip_prefix(&IRONRDP_PADDING[..])?;
    if fixed.len() < RESPONSE_DATA_FIXED_LEN || fixed.get(..2)? != RESPONSE_DATA_VERSION {
        return None;
    }
    let hwid_plain = rc4(&keys.license_key, hwid);
    let mac = mac_data(&keys.mac_salt_key, &[fixed, &hwid_plain].concat())?;

    let mut message = Vec::with_capacity(pdu.len());
    message.extend_from_slice(pdu.get(..2)?);
    let size = PREAMBLE_LEN + 4 + fixed.len() + hwid_blob.len() + MAC_LEN;
    message.extend_from_slice(&u16::try_from(size).ok()?.to_le_bytes());
    message.extend_from_slice(&response_type.to_le_bytes());
    message.extend_from_slice(&u16::try_from(fixed.len()).ok()?.to_le_bytes());
    message.extend_from_slice(&rc4(&keys.license_key, fixed));
    message.extend_from_slice(hwid_blob);
    message.extend_from_slice(&mac);
    let user_data = [security, &message].concat();
    slow_path::build_send_data(send.direction, send.initiator, send.channel_id, &user_data)
}

/// A LICENSE_BINARY_BLOB at `at`: its type and data.
fn read_blob(pdu: &[u8], at: usize) -> Option<(u16, &[u8])> {
    let blob_type = read_u16_le(pdu, at)?;
    let len = usize::from(read_u16_le(pdu, at + 2)?);
    Some((blob_type, pdu.get(at + 4..at + 4 + len)?))
}

/// RC4 (the licensing protocol's cipher, MS-RDPELE 5.1.3), one fresh key schedule per call as
/// each encrypted field uses.
fn rc4(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut state: [u8; 256] = std::array::from_fn(|i| u8::try_from(i).unwrap_or(0));
    if key.is_empty() {
        return data.to_vec();
    }
    let mut j: u8 = 0;
    for i in 0..256 {
        let key_byte = key.get(i % key.len()).copied().unwrap_or(0);
        j = j
            .wrapping_add(state.get(i).copied().unwrap_or(0))
            .wrapping_add(key_byte);
        state.swap(i, usize::from(j));
    }
    let (mut i, mut j) = (0u8, 0u8);
    data.iter()
        .map(|byte| {
            i = i.wrapping_add(1);
            j = j.wrapping_add(state.get(usize::from(i)).copied().unwrap_or(0));
            state.swap(usize::from(i), usize::from(j));
            let k = state
                .get(usize::from(i))
                .copied()
                .unwrap_or(0)
                .wrapping_add(state.get(usize::from(j)).copied().unwrap_or(0));
            byte ^ state.get(usize::from(k)).copied().unwrap_or(0)
        })
        .collect()
}

/// MACData (MS-RDPELE 5.1.6): MD5(MACSaltKey + pad2 + SHA1(MACSaltKey + pad1 + length + data)).
fn mac_data(mac_salt_key: &[u8], data: &[u8]) -> Option<[u8; MAC_LEN]> {
    let length = u32::try_from(data.len()).ok()?.to_le_bytes();
    let inner = Sha1::new()
        .chain_update(mac_salt_key)
        .chain_update([0x36; 40])
        .chain_update(length)
        .chain_update(data)
        .finalize();
    let outer = Md5::new()
        .chain_update(mac_salt_key)
        .chain_update([0x5C; 48])
        .chain_update(inner)
        .finalize();
    outer.as_slice().try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Server License Request with a proprietary certificate, fields as rdpele serve writes
    /// them; the 8-byte modulus stands in for a real one.
    fn license_request_with_proprietary_certificate() -> Vec<u8> {
        let mut pdu = vec![0x01, 0x03, 0, 0];
        pdu.extend_from_slice(&[0x11; 32]);
        pdu.extend_from_slice(&0x000A_0002u32.to_le_bytes());
        pdu.extend_from_slice(&4u32.to_le_bytes());
        pdu.extend_from_slice(&[b'M', 0, 0, 0]);
        pdu.extend_from_slice(&4u32.to_le_bytes());
        pdu.extend_from_slice(&[b'A', 0, 0, 0]);
        pdu.extend_from_slice(&[0x0D, 0, 4, 0, 1, 0, 0, 0]);
        pdu.extend_from_slice(&[0x03, 0, 0x30, 0]);
        pdu.extend_from_slice(&1u32.to_le_bytes());
        pdu.extend_from_slice(&1u32.to_le_bytes());
        pdu.extend_from_slice(&1u32.to_le_bytes());
        pdu.extend_from_slice(&[0x06, 0, 0x24, 0]);
        pdu.extend_from_slice(&RSA1_MAGIC.to_le_bytes());
        pdu.extend_from_slice(&16u32.to_le_bytes());
        pdu.extend_from_slice(&64u32.to_le_bytes());
        pdu.extend_from_slice(&7u32.to_le_bytes());
        pdu.extend_from_slice(&0x0001_0001u32.to_le_bytes());
        pdu.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        pdu
    }

    #[test]
    fn the_key_fields_of_a_proprietary_certificate_are_reversed() {
        let mut pdu = license_request_with_proprietary_certificate();
        let original = pdu.clone();
        assert!(fix_proprietary_key_byte_order(&mut pdu));
        let modulus_at = pdu.len() - 16;
        assert_eq!(
            &pdu[modulus_at..],
            &[0, 0, 0, 0, 0, 0, 0, 0, 8, 7, 6, 5, 4, 3, 2, 1]
        );
        assert_eq!(&pdu[modulus_at - 4..modulus_at], &[0, 1, 0, 1]);
        // IronRDP reads `u32::from_le_bytes(field).to_le_bytes()` big-endian: 0x010001 again.
        let exponent = u32::from_le_bytes(pdu[modulus_at - 4..modulus_at].try_into().unwrap());
        assert_eq!(exponent.to_le_bytes(), [0, 1, 0, 1]);
        assert_eq!(&pdu[..modulus_at - 4], &original[..modulus_at - 4]);
    }

    #[test]
    fn other_pdus_are_left_alone() {
        let mut pdu = license_request_with_proprietary_certificate();
        // An X.509 chain (CERT_CHAIN_VERSION_2, issued permanently).
        let version_at = 4 + 32 + 4 + 8 + 8 + 8 + 4;
        pdu[version_at..version_at + 4].copy_from_slice(&0x8000_0002u32.to_le_bytes());
        let original = pdu.clone();
        assert!(!fix_proprietary_key_byte_order(&mut pdu));
        assert_eq!(pdu, original);
        for len in 0..original.len() {
            let mut prefix = license_request_with_proprietary_certificate();
            prefix.truncate(len);
            let before = prefix.clone();
            assert!(!fix_proprietary_key_byte_order(&mut prefix), "{len}");
            assert_eq!(prefix, before);
        }
    }

    #[test]
    fn rc4_matches_the_rfc_6229_vector() {
        // RFC 6229, key 0x0102030405, keystream offset 0.
        let keystream = rc4(&[1, 2, 3, 4, 5], &[0; 8]);
        assert_eq!(keystream, [0xb2, 0x39, 0x63, 0x05, 0xf0, 0x3d, 0xc0, 0x27]);
        assert_eq!(rc4(&[1, 2, 3, 4, 5], &keystream), [0; 8]);
    }

    /// A Platform Challenge Response encoded the way IronRDP 0.11 does it.
    fn ironrdp_response(keys: &LicensingKeys, challenge: &[u8]) -> Vec<u8> {
        let mut data = vec![0u8; 8];
        data.extend_from_slice(&[0x00, 0x01, 0x00, 0xFF, 0x03, 0x00]);
        data.extend_from_slice(&u16::try_from(challenge.len()).unwrap().to_le_bytes());
        data.extend_from_slice(challenge);
        let hwid = [
            2, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
        ];
        let mac = mac_data(&keys.mac_salt_key, &[&data[..], &hwid].concat()).unwrap();
        let mut pdu = vec![0x15, 0x03];
        let size = 4 + 4 + data.len() + 4 + hwid.len() + 16;
        pdu.extend_from_slice(&u16::try_from(size).unwrap().to_le_bytes());
        pdu.extend_from_slice(&[0x09, 0x00]);
        pdu.extend_from_slice(&u16::try_from(data.len()).unwrap().to_le_bytes());
        pdu.extend_from_slice(&rc4(&keys.license_key, &data));
        pdu.extend_from_slice(&[0x09, 0x00, 20, 0]);
        pdu.extend_from_slice(&rc4(&keys.license_key, &hwid));
        pdu.extend_from_slice(&mac);
        let user_data = [&[0x80, 0, 0, 0][..], &pdu].concat();
        slow_path::build_send_data(slow_path::Direction::Request, 1, 1003, &user_data).unwrap()
    }

    #[test]
    fn the_padding_goes_and_the_mac_covers_what_is_sent() {
        let keys = LicensingKeys {
            license_key: vec![7; 16],
            mac_salt_key: vec![9; 16],
        };
        let challenge = b"T\0E\0S\0T\0\0\0";
        let frame = ironrdp_response(&keys, challenge);
        let fixed = fix_platform_challenge_response(&frame, &keys).unwrap();
        assert_eq!(fixed.len(), frame.len() - 8);
        let send = slow_path::parse_send_data(&fixed).unwrap();
        let pdu = &fixed[send.licensing_pdu()];
        assert_eq!(usize::from(read_u16_le(pdu, 2).unwrap()), pdu.len());
        let (_, response) = read_blob(pdu, 4).unwrap();
        let plain = rc4(&keys.license_key, response);
        assert_eq!(&plain[..8], &[0x00, 0x01, 0x00, 0xFF, 0x03, 0x00, 10, 0]);
        assert_eq!(&plain[8..], challenge);
        let (_, hwid) = read_blob(pdu, 8 + response.len()).unwrap();
        let hwid_plain = rc4(&keys.license_key, hwid);
        let mac = mac_data(&keys.mac_salt_key, &[&plain[..], &hwid_plain].concat()).unwrap();
        assert_eq!(&pdu[pdu.len() - 16..], &mac);
        // Already right: left alone.
        assert_eq!(fix_platform_challenge_response(&fixed, &keys), None);
    }

    #[test]
    fn the_modulus_length_comes_from_the_last_certificate_of_a_windows_chain() {
        // Windows Server's License Request (CERT_CHAIN_VERSION_2, two certificates).
        let windows = include_bytes!("../../../captures/server_license_request.bin");
        assert_eq!(server_modulus_len(windows), Some(256));
        let proprietary = license_request_with_proprietary_certificate();
        assert_eq!(server_modulus_len(&proprietary), Some(8));
        assert_eq!(server_modulus_len(&windows[..200]), None);
    }

    /// A Client New License Request whose encrypted premaster secret has `len` bytes.
    fn new_license_request(len: usize) -> Vec<u8> {
        let mut pdu = vec![0x13, 0x03, 0, 0];
        pdu.extend_from_slice(&1u32.to_le_bytes());
        pdu.extend_from_slice(&0x0401_0000u32.to_le_bytes());
        pdu.extend_from_slice(&[0x22; 32]);
        pdu.extend_from_slice(&[0x02, 0x00]);
        pdu.extend_from_slice(&u16::try_from(len).unwrap().to_le_bytes());
        pdu.extend((0..len - 8).map(|i| u8::try_from(i % 250 + 1).unwrap()));
        pdu.extend_from_slice(&[0; 8]);
        pdu.extend_from_slice(&[0x0F, 0x00, 4, 0, b'e', b'v', b'e', 0]);
        let size = u16::try_from(pdu.len()).unwrap();
        pdu[2..4].copy_from_slice(&size.to_le_bytes());
        let user_data = [&[0x80, 0, 0, 0][..], &pdu].concat();
        slow_path::build_send_data(slow_path::Direction::Request, 1, 1003, &user_data).unwrap()
    }

    #[test]
    fn a_short_encrypted_premaster_is_padded_to_the_modulus_length() {
        let frame = new_license_request(263);
        let fixed = fix_premaster_length(&frame, 256).unwrap();
        assert_eq!(fixed, {
            let mut expected = new_license_request(264);
            // The same ciphertext bytes, one more zero before the padding.
            let send = slow_path::parse_send_data(&expected).unwrap();
            let at = send.licensing_pdu().start + 48 + 255;
            expected[at] = 0;
            expected
        });
        assert_eq!(fix_premaster_length(&new_license_request(264), 256), None);
        assert_eq!(fix_premaster_length(&fixed, 256), None);
    }
}

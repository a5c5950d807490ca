//! Standard RDP Security's session encryption (MS-RDPBCGR 5.3): the session keys of 5.3.5.1
//! (non-FIPS: 40-, 56- and 128-bit RC4), the MACs of 5.3.6.1 (plain) and 5.3.6.1.1 (salted),
//! and the key update every 4,096 packets of 5.3.7.
//!
//! Unlike licensing's blobs (crypto/rc4.rs), RC4 here is one keystream per direction for the
//! whole connection: every encrypted PDU a side sends, slow-path or fast-path, moves it on, so
//! a receiver has to decrypt every PDU, even one it then drops, to stay in step.

use md5::Md5;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use super::keys::{CLIENT_RANDOM_LEN, SERVER_RANDOM_LEN};
use super::rc4::Rc4;
use super::secret::Secret;

/// Length of a Standard RDP Security MAC (dataSignature, MS-RDPBCGR 2.2.8.1.1.2.2).
pub const RDP_MAC_LEN: usize = 8;

/// Packets one key encrypts before it is updated (MS-RDPBCGR 5.3.7).
pub const KEY_UPDATE_INTERVAL: u32 = 4096;

const PAD1: [u8; 40] = [0x36; 40];
const PAD2: [u8; 48] = [0x5c; 48];
/// The bytes that replace the high-order bits of 40- and 56-bit keys (MS-RDPBCGR 5.3.5.1).
const SALT: [u8; 3] = [0xD1, 0x26, 0x9E];

/// The RC4 encryption methods of MS-RDPBCGR 2.2.1.3.3 / 2.2.1.4.3 (`encryptionMethod`). FIPS
/// (3DES) is not implemented: the issue asks for Windows' RC4 levels, and every client that
/// offers FIPS also offers RC4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EncryptionMethod {
    Bits40,
    Bits56,
    Bits128,
}

impl EncryptionMethod {
    /// From the strongest to the weakest: the order a server picks in (MS-RDPBCGR 5.3.2).
    pub const STRONGEST_FIRST: [Self; 3] = [Self::Bits128, Self::Bits56, Self::Bits40];

    /// The method's bit in `encryptionMethods` / value of `encryptionMethod`.
    pub const fn wire(self) -> u32 {
        match self {
            Self::Bits40 => 0x0000_0001,
            Self::Bits128 => 0x0000_0002,
            Self::Bits56 => 0x0000_0008,
        }
    }

    /// The method a server's `encryptionMethod` names; `None` for none, FIPS or a value no
    /// method has.
    pub fn from_wire(value: u32) -> Option<Self> {
        Self::STRONGEST_FIRST
            .into_iter()
            .find(|method| method.wire() == value)
    }

    /// The strongest method of a client's `encryptionMethods` bit set.
    pub fn strongest_of(methods: u32) -> Option<Self> {
        Self::STRONGEST_FIRST
            .into_iter()
            .find(|method| methods & method.wire() != 0)
    }

    /// Bytes of an RC4 key and of the MAC key: 8 for 40 and 56 bits (their high-order bytes
    /// are the salt), 16 for 128.
    pub const fn key_len(self) -> usize {
        match self {
            Self::Bits40 | Self::Bits56 => 8,
            Self::Bits128 => 16,
        }
    }

    /// Puts the salt over a key's high-order bytes: 0xD1269E for 40 bits, 0xD1 for 56.
    fn salt(self, key: &mut [u8; 16]) {
        let salted = match self {
            Self::Bits40 => 3,
            Self::Bits56 => 1,
            Self::Bits128 => 0,
        };
        for (byte, salt) in key.iter_mut().zip(SALT.iter().take(salted)) {
            *byte = *salt;
        }
    }
}

impl core::fmt::Display for EncryptionMethod {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Self::Bits40 => "40-bit RC4",
            Self::Bits56 => "56-bit RC4",
            Self::Bits128 => "128-bit RC4",
        })
    }
}

/// Which end of the connection a key set is for: the client's encryption key is the server's
/// decryption key and the other way round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// The keys MS-RDPBCGR 5.3.5.1 derives from the two randoms, salted for the method; only the
/// first [`EncryptionMethod::key_len`] bytes of each are used.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RdpSessionKeys {
    pub method: EncryptionMethod,
    pub mac_key: Secret<16>,
    /// InitialClientEncryptKey: what the client encrypts with and the server decrypts with.
    pub client_encrypt_key: Secret<16>,
    /// InitialClientDecryptKey: what the server encrypts with and the client decrypts with.
    pub client_decrypt_key: Secret<16>,
}

/// MS-RDPBCGR 5.3.5.1, non-FIPS:
///
/// ```text
/// PreMasterSecret = First192Bits(ClientRandom) + First192Bits(ServerRandom)
/// SaltedHash(S, I) = MD5(S + SHA-1(I + S + ClientRandom + ServerRandom))
/// MasterSecret    = SaltedHash(PreMasterSecret, 'A') + …('BB') + …('CCC')
/// SessionKeyBlob  = SaltedHash(MasterSecret, 'X') + …('YY') + …('ZZZ')
/// MACKey128       = First128Bits(SessionKeyBlob)
/// InitialClientDecryptKey128 = MD5(Second128Bits(SessionKeyBlob) + ClientRandom + ServerRandom)
/// InitialClientEncryptKey128 = MD5(Third128Bits(SessionKeyBlob) + ClientRandom + ServerRandom)
/// ```
///
/// then, for 40 and 56 bits, the salt over the first 64 bits of each.
pub fn derive_rdp_session_keys(
    client_random: &[u8; CLIENT_RANDOM_LEN],
    server_random: &[u8; SERVER_RANDOM_LEN],
    method: EncryptionMethod,
) -> RdpSessionKeys {
    let salted_hash = |secret: &[u8], salt: &[u8]| -> [u8; 16] {
        let inner = Sha1::new()
            .chain_update(salt)
            .chain_update(secret)
            .chain_update(client_random)
            .chain_update(server_random)
            .finalize();
        Md5::new()
            .chain_update(secret)
            .chain_update(inner)
            .finalize()
            .into()
    };
    let three = |secret: &[u8], salts: [&[u8]; 3]| -> Secret<48> {
        let mut out = [0u8; 48];
        for (chunk, salt) in out.chunks_exact_mut(16).zip(salts) {
            chunk.copy_from_slice(&salted_hash(secret, salt));
        }
        let secret = Secret::new(out);
        zeroize::Zeroize::zeroize(&mut out);
        secret
    };
    let mut pre_master = [0u8; 48];
    for (out, byte) in pre_master.iter_mut().zip(
        client_random
            .iter()
            .take(24)
            .chain(server_random.iter().take(24)),
    ) {
        *out = *byte;
    }
    let master = three(&pre_master, [b"A", b"BB", b"CCC"]);
    zeroize::Zeroize::zeroize(&mut pre_master);
    let blob = three(master.expose(), [b"X", b"YY", b"ZZZ"]);
    let part = |index: usize| -> [u8; 16] {
        let mut out = [0u8; 16];
        if let Some(bytes) = blob.expose().get(index * 16..(index + 1) * 16) {
            out.copy_from_slice(bytes);
        }
        out
    };
    let final_hash = |key: [u8; 16]| -> [u8; 16] {
        Md5::new()
            .chain_update(key)
            .chain_update(client_random)
            .chain_update(server_random)
            .finalize()
            .into()
    };
    let salted = |mut key: [u8; 16]| {
        method.salt(&mut key);
        Secret::new(key)
    };
    RdpSessionKeys {
        method,
        mac_key: salted(part(0)),
        client_decrypt_key: salted(final_hash(part(1))),
        client_encrypt_key: salted(final_hash(part(2))),
    }
}

impl RdpSessionKeys {
    /// The two directions of `side`: what it sends with, and what it receives with.
    pub fn ciphers(&self, side: Side) -> (RdpCipher, RdpCipher) {
        let (send, receive) = match side {
            Side::Client => (&self.client_encrypt_key, &self.client_decrypt_key),
            Side::Server => (&self.client_decrypt_key, &self.client_encrypt_key),
        };
        (
            RdpCipher::new(self.method, &self.mac_key, send),
            RdpCipher::new(self.method, &self.mac_key, receive),
        )
    }
}

/// MS-RDPBCGR 5.3.6.1 (`salt_count` = `None`) and 5.3.6.1.1 (salted, with the count of packets
/// the sender encrypted before this one):
///
/// ```text
/// SHAComponent = SHA-1(MACKeyN + Pad1 + DataLength + Data [+ EncryptionCount])
/// MACSignature = First64Bits(MD5(MACKeyN + Pad2 + SHAComponent))
/// ```
///
/// over the **unencrypted** data, with `mac_key` the method's [`EncryptionMethod::key_len`]
/// bytes.
pub fn rdp_mac(mac_key: &[u8], data: &[u8], salt_count: Option<u32>) -> [u8; RDP_MAC_LEN] {
    // PDUs are at most 64 KiB (TPKT), so the length always fits.
    let length = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut sha = Sha1::new()
        .chain_update(mac_key)
        .chain_update(PAD1)
        .chain_update(length.to_le_bytes())
        .chain_update(data);
    if let Some(count) = salt_count {
        sha.update(count.to_le_bytes());
    }
    let digest: [u8; 16] = Md5::new()
        .chain_update(mac_key)
        .chain_update(PAD2)
        .chain_update(sha.finalize())
        .finalize()
        .into();
    let mut mac = [0u8; RDP_MAC_LEN];
    mac.copy_from_slice(digest.get(..RDP_MAC_LEN).unwrap_or(&[0; RDP_MAC_LEN]));
    mac
}

/// One direction of a Standard RDP Security connection: its RC4 keystream, the key it was
/// started with and the one in use, and the two counts the key update (every 4,096 packets)
/// and the salted MAC (every packet since the keys were made) need.
pub struct RdpCipher {
    method: EncryptionMethod,
    mac_key: Secret<16>,
    initial_key: Secret<16>,
    current_key: Secret<16>,
    rc4: Rc4,
    /// Packets encrypted with the current key.
    since_update: u32,
    /// Packets encrypted since the start: the salted MAC's EncryptionCount.
    encryption_count: u32,
}

impl core::fmt::Debug for RdpCipher {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RdpCipher")
            .field("method", &self.method)
            .field("encryption_count", &self.encryption_count)
            .finish_non_exhaustive()
    }
}

impl RdpCipher {
    fn new(method: EncryptionMethod, mac_key: &Secret<16>, key: &Secret<16>) -> Self {
        Self {
            method,
            mac_key: mac_key.clone(),
            initial_key: key.clone(),
            current_key: key.clone(),
            rc4: Rc4::new(Self::used(method, key.expose())),
            since_update: 0,
            encryption_count: 0,
        }
    }

    pub fn method(&self) -> EncryptionMethod {
        self.method
    }

    /// Packets this direction has encrypted (or decrypted) so far.
    pub fn encryption_count(&self) -> u32 {
        self.encryption_count
    }

    fn used(method: EncryptionMethod, key: &[u8; 16]) -> &[u8] {
        key.get(..method.key_len()).unwrap_or(key)
    }

    /// The MAC of `plaintext` as the next packet of this direction would carry it.
    fn mac(&self, plaintext: &[u8], salted: bool) -> [u8; RDP_MAC_LEN] {
        let key = Self::used(self.method, self.mac_key.expose());
        rdp_mac(key, plaintext, salted.then_some(self.encryption_count))
    }

    /// Signs `data` (MS-RDPBCGR 5.3.6.1, salted with SEC_SECURE_CHECKSUM) and encrypts it in
    /// place; returns the MAC, which travels in clear before the data.
    pub fn encrypt(&mut self, data: &mut [u8], salted: bool) -> [u8; RDP_MAC_LEN] {
        let mac = self.mac(data, salted);
        self.apply(data);
        mac
    }

    /// Decrypts `data` in place and tells whether `mac` is its MAC (compared in constant time).
    /// The keystream moves on either way, as it did at the sender.
    pub fn decrypt(&mut self, data: &mut [u8], mac: &[u8; RDP_MAC_LEN], salted: bool) -> bool {
        let count = self.encryption_count;
        self.apply(data);
        let key = Self::used(self.method, self.mac_key.expose());
        let expected = rdp_mac(key, data, salted.then_some(count));
        expected.ct_eq(mac).into()
    }

    /// The keystream over `data`, with the key updated first when the current one has
    /// encrypted 4,096 packets (MS-RDPBCGR 5.3.7: the 4,097th packet is the first under the
    /// new key).
    fn apply(&mut self, data: &mut [u8]) {
        if self.since_update >= KEY_UPDATE_INTERVAL {
            self.update_key();
        }
        self.rc4.apply(data);
        self.since_update = self.since_update.saturating_add(1);
        self.encryption_count = self.encryption_count.wrapping_add(1);
    }

    /// MS-RDPBCGR 5.3.7.1 (non-FIPS):
    ///
    /// ```text
    /// SHAComponent = SHA-1(InitialEncryptKey + Pad1 + CurrentEncryptKey)
    /// TempKey      = MD5(InitialEncryptKey + Pad2 + SHAComponent)
    /// NewEncryptKey = RC4(TempKey, TempKey), salted for 40 and 56 bits
    /// ```
    ///
    /// each key taken at the method's length, and a fresh keystream from the new key.
    fn update_key(&mut self) {
        let len = self.method.key_len();
        let initial = Self::used(self.method, self.initial_key.expose());
        let current = Self::used(self.method, self.current_key.expose());
        let sha = Sha1::new()
            .chain_update(initial)
            .chain_update(PAD1)
            .chain_update(current)
            .finalize();
        let mut key: [u8; 16] = Md5::new()
            .chain_update(initial)
            .chain_update(PAD2)
            .chain_update(sha)
            .finalize()
            .into();
        if let Some(used) = key.get_mut(..len) {
            let mut keystream = Rc4::new(used);
            keystream.apply(used);
        }
        self.method.salt(&mut key);
        self.current_key = Secret::new(key);
        zeroize::Zeroize::zeroize(&mut key);
        self.rc4 = Rc4::new(Self::used(self.method, self.current_key.expose()));
        self.since_update = 0;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;

    fn pair(method: EncryptionMethod) -> ((RdpCipher, RdpCipher), (RdpCipher, RdpCipher)) {
        let keys = derive_rdp_session_keys(&[0x11; 32], &[0x22; 32], method);
        (keys.ciphers(Side::Client), keys.ciphers(Side::Server))
    }

    #[test]
    fn what_one_side_sends_the_other_reads_across_key_updates() {
        for method in EncryptionMethod::STRONGEST_FIRST {
            let ((mut client_send, _), (_, mut server_receive)) = pair(method);
            for packet in 0..(2 * KEY_UPDATE_INTERVAL + 3) {
                let salted = packet % 3 == 0;
                let plain = packet.to_le_bytes().repeat(5);
                let mut data = plain.clone();
                let mac = client_send.encrypt(&mut data, salted);
                assert_ne!(data, plain, "{method} packet {packet}");
                assert!(
                    server_receive.decrypt(&mut data, &mac, salted),
                    "{method} packet {packet}"
                );
                assert_eq!(data, plain);
            }
        }
    }

    #[test]
    fn the_key_changes_after_4096_packets_and_not_before() {
        let ((mut client_send, _), _) = pair(EncryptionMethod::Bits128);
        let first_key = client_send.current_key.clone();
        for _ in 0..KEY_UPDATE_INTERVAL {
            client_send.encrypt(&mut [0u8; 4], false);
        }
        assert_eq!(client_send.current_key, first_key);
        client_send.encrypt(&mut [0u8; 4], false);
        assert_ne!(client_send.current_key, first_key);
        assert_eq!(client_send.since_update, 1);
    }

    #[test]
    fn a_wrong_mac_a_wrong_salt_or_a_lost_packet_fails() {
        let ((mut send, _), (_, mut receive)) = pair(EncryptionMethod::Bits56);
        let mut data = *b"client info";
        let mac = send.encrypt(&mut data, true);
        let mut copy = data;
        assert!(
            !receive.decrypt(&mut copy, &mac, false),
            "salted read as plain"
        );

        let ((mut send, _), (_, mut receive)) = pair(EncryptionMethod::Bits40);
        send.encrypt(&mut b"lost".to_owned(), false);
        let mut data = *b"next";
        let mac = send.encrypt(&mut data, false);
        assert!(!receive.decrypt(&mut data, &mac, false), "out of step");
    }

    #[test]
    fn short_keys_carry_the_salt() {
        let keys = derive_rdp_session_keys(&[1; 32], &[2; 32], EncryptionMethod::Bits40);
        assert_eq!(keys.mac_key.expose()[..3], SALT);
        assert_eq!(keys.client_encrypt_key.expose()[..3], SALT);
        let keys = derive_rdp_session_keys(&[1; 32], &[2; 32], EncryptionMethod::Bits56);
        assert_eq!(keys.client_decrypt_key.expose()[0], 0xD1);
        let full = derive_rdp_session_keys(&[1; 32], &[2; 32], EncryptionMethod::Bits128);
        assert_eq!(
            keys.client_decrypt_key.expose()[1..8],
            full.client_decrypt_key.expose()[1..8]
        );
    }

    #[test]
    fn a_client_picks_the_strongest_it_offers() {
        assert_eq!(
            EncryptionMethod::strongest_of(0x0B),
            Some(EncryptionMethod::Bits128)
        );
        assert_eq!(
            EncryptionMethod::strongest_of(0x09),
            Some(EncryptionMethod::Bits56)
        );
        assert_eq!(EncryptionMethod::strongest_of(0x10), None);
        assert_eq!(
            EncryptionMethod::from_wire(0x08),
            Some(EncryptionMethod::Bits56)
        );
    }
}

//! MS-RDPELE 5.1.2 Generating the Licensing Encryption and MAC Salt Keys.
//!
//! The construction is MS-RDPBCGR 5.3.5.1's (non-FIPS session keys) with two differences that
//! are easy to get wrong: the session key blob reuses the salts `A`, `BB`, `CCC` (RDPBCGR uses
//! `X`, `YY`, `ZZZ`), and the licensing encryption key is MD5 of the blob's second 16 bytes and
//! both randoms — licensing keys are never updated, so there is no FinalHash variant.

use md5::Md5;
use sha1::{Digest, Sha1};
use zeroize::Zeroize;

use super::secret::Secret;

/// Length of ClientRandom and of ServerRandom (MS-RDPELE 5.1.1).
pub const CLIENT_RANDOM_LEN: usize = 32;
/// Length of ServerRandom; the same as [`CLIENT_RANDOM_LEN`].
pub const SERVER_RANDOM_LEN: usize = CLIENT_RANDOM_LEN;
/// Length of the premaster secret the client RSA-encrypts (MS-RDPELE 5.1.1).
pub const PREMASTER_SECRET_LEN: usize = 48;
/// Length of MasterSecret and of SessionKeyBlob (384 bits).
pub const MASTER_SECRET_LEN: usize = 48;
/// Length of the MAC salt key and of the licensing encryption key (128 bits).
pub const SESSION_KEY_LEN: usize = 16;

/// The keys both ends derive from the premaster secret and the two randoms.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionKeys {
    pub master_secret: Secret<MASTER_SECRET_LEN>,
    pub session_key_blob: Secret<MASTER_SECRET_LEN>,
    /// Keys [`super::mac_data`] (MS-RDPELE 5.1.5).
    pub mac_salt_key: Secret<SESSION_KEY_LEN>,
    /// Keys [`super::rc4()`] for every encrypted licensing blob (MS-RDPELE 5.1.3, 5.1.4).
    pub licensing_encryption_key: Secret<SESSION_KEY_LEN>,
}

/// MS-RDPELE 5.1.2 (after MS-RDPBCGR 5.3.5.1): derives the master secret, the session key blob
/// and from it the MAC salt key and the licensing encryption key.
///
/// ```text
/// SaltedHash(S, I)  = MD5(S + SHA-1(I + S + ClientRandom + ServerRandom))
/// MasterSecret      = SaltedHash(Premaster, 'A') + …('BB') + …('CCC')
/// SaltedHash2(S, I) = MD5(S + SHA-1(I + S + ServerRandom + ClientRandom))
/// SessionKeyBlob    = SaltedHash2(MasterSecret, 'A') + …('BB') + …('CCC')
/// MAC-salt-key      = First128Bits(SessionKeyBlob)
/// LicensingEncryptionKey = MD5(Second128Bits(SessionKeyBlob) + ClientRandom + ServerRandom)
/// ```
pub fn derive_session_keys(
    premaster: &[u8; PREMASTER_SECRET_LEN],
    client_random: &[u8; CLIENT_RANDOM_LEN],
    server_random: &[u8; SERVER_RANDOM_LEN],
) -> SessionKeys {
    let mut master_parts = salted_hashes(premaster, client_random, server_random);
    let master_secret = Secret::new(concat(&master_parts));
    master_parts.zeroize();

    // The randoms swap places for the second round: SaltedHash2.
    let mut blob_parts = salted_hashes(master_secret.expose(), server_random, client_random);
    let session_key_blob = Secret::new(concat(&blob_parts));
    let [first, second, _] = &blob_parts;
    let mac_salt_key = Secret::new(*first);
    let licensing_encryption_key = Secret::new(
        Md5::new()
            .chain_update(second)
            .chain_update(client_random)
            .chain_update(server_random)
            .finalize()
            .into(),
    );
    blob_parts.zeroize();

    SessionKeys {
        master_secret,
        session_key_blob,
        mac_salt_key,
        licensing_encryption_key,
    }
}

/// SaltedHash(S, I) for I = 'A', 'BB', 'CCC', with the randoms in the given order.
fn salted_hashes(
    salt: &[u8; 48],
    first_random: &[u8; 32],
    second_random: &[u8; 32],
) -> [[u8; 16]; 3] {
    [&b"A"[..], b"BB", b"CCC"].map(|label| {
        let mut inner: [u8; 20] = Sha1::new()
            .chain_update(label)
            .chain_update(salt)
            .chain_update(first_random)
            .chain_update(second_random)
            .finalize()
            .into();
        let outer = Md5::new()
            .chain_update(salt)
            .chain_update(inner)
            .finalize()
            .into();
        inner.zeroize();
        outer
    })
}

fn concat(parts: &[[u8; 16]; 3]) -> [u8; 48] {
    let mut out = [0u8; 48];
    out.copy_from_slice(parts.as_flattened());
    out
}

//! Decrypting what `rdpele decode` shows, once the licensing session keys are known
//! (MS-RDPELE 5.1).
//!
//! The keys come from ClientRandom, ServerRandom and the premaster secret. Each is taken from
//! the command line when given there, and otherwise from the messages decoded so far in the same
//! input: ServerRandom from a SERVER_LICENSE_REQUEST, ClientRandom from a
//! CLIENT_NEW_LICENSE_REQUEST or CLIENT_LICENSE_INFO, and the premaster secret by decrypting that
//! message's EncryptedPreMasterSecret with the server's private key. A new License Request
//! starts a new session: what the previous client sent no longer applies.
//!
//! With keys, every encrypted blob is shown decrypted right after itself, under the field's
//! name without the `encrypted_` prefix, and every MACData is checked over the decrypted data
//! (`mac_valid`, right after `mac_data`):
//!
//! | message | decrypted | MACData over |
//! |---|---|---|
//! | SERVER_PLATFORM_CHALLENGE | `platform_challenge` (+ `platform_challenge_text`) | the challenge |
//! | CLIENT_PLATFORM_CHALLENGE_RESPONSE | `platform_challenge_response` (PLATFORM_CHALLENGE_RESPONSE_DATA), `hwid` (CLIENT_HARDWARE_ID) | response data ‖ HWID |
//! | CLIENT_LICENSE_INFO | `hwid` | the HWID |
//! | SERVER_NEW_LICENSE, SERVER_UPGRADE_LICENSE | `license_info` (NEW_LICENSE_INFO and its CAL) | NEW_LICENSE_INFO |
//! | CLIENT_NEW_LICENSE_REQUEST, CLIENT_LICENSE_INFO | `premaster_secret`, when recovered with `--server-key` | — |

use rdpele_proto::crypto::{
    derive_session_keys, rc4, verify_mac, LicensingPrivateKey, Secret, SessionKeys,
    CLIENT_RANDOM_LEN, PREMASTER_SECRET_LEN, SERVER_RANDOM_LEN,
};
use rdpele_proto::wire::{
    ClientHardwareId, LicenseBinaryBlob, LicensingMessage, LicensingPdu, NewLicenseInfo,
    PlatformChallengeResponseData, ServerLicense, Wire, WireError,
};
use serde_json::{json, Map, Value};

use super::{describe, Message};

/// Key material given on the command line. Anything absent is looked for in the input.
#[derive(Debug, Default)]
pub struct KeyOptions {
    pub client_random: Option<[u8; CLIENT_RANDOM_LEN]>,
    pub server_random: Option<[u8; SERVER_RANDOM_LEN]>,
    pub premaster: Option<Secret<PREMASTER_SECRET_LEN>>,
    /// The server's keys: each one is tried on the premaster secret of the client's key
    /// exchange and, in a capture of Standard RDP Security, on the client random of its
    /// Security Exchange (a host may use one key for each, as `rdpele serve` does for clients
    /// that take only 512-bit keys).
    pub server_keys: Vec<LicensingPrivateKey>,
}

impl KeyOptions {
    /// Nothing given: decoding shows the encrypted blobs only, as without this module.
    pub fn is_empty(&self) -> bool {
        self.client_random.is_none()
            && self.server_random.is_none()
            && self.premaster.is_none()
            && self.server_keys.is_empty()
    }
}

/// What the messages decoded so far said about the current session.
#[derive(Default)]
struct Session {
    server_random: Option<[u8; SERVER_RANDOM_LEN]>,
    client_random: Option<[u8; CLIENT_RANDOM_LEN]>,
    /// Recovered with `--server-key` from the client's key exchange.
    premaster: Option<Secret<PREMASTER_SECRET_LEN>>,
}

/// Which inputs to the keys were missing when a message could not be decrypted.
#[derive(Default)]
struct Missing {
    messages: usize,
    server_random: bool,
    client_random: bool,
    premaster: bool,
}

impl Missing {
    fn note(&self) -> String {
        let what: Vec<&str> = [
            (
                self.server_random,
                "ServerRandom (--server-random, or a SERVER_LICENSE_REQUEST before them)",
            ),
            (
                self.client_random,
                "ClientRandom (--client-random, or a CLIENT_NEW_LICENSE_REQUEST or \
                 CLIENT_LICENSE_INFO before them)",
            ),
            (
                self.premaster,
                "the premaster secret (--premaster, or --server-key and the client's key \
                 exchange before them)",
            ),
        ]
        .into_iter()
        .filter_map(|(missing, name)| missing.then_some(name))
        .collect();
        format!(
            "{} message(s) with encrypted data not decrypted; not known: {}",
            self.messages,
            what.join("; ")
        )
    }
}

/// One field to add to a message's `fields`, right after an existing one.
struct Addition {
    after: &'static str,
    key: &'static str,
    value: Value,
}

#[derive(Default)]
struct Additions(Vec<Addition>);

impl Additions {
    fn push(&mut self, after: &'static str, key: &'static str, value: impl Into<Value>) {
        self.0.push(Addition {
            after,
            key,
            value: value.into(),
        });
    }

    /// Inserts each field after its anchor (which may be a field added just before it), or at
    /// the end when the anchor is not there.
    fn apply(self, document: &mut Value) {
        let Some(Value::Object(fields)) = document.get_mut("fields") else {
            return;
        };
        for Addition { after, key, value } in self.0 {
            insert_after(fields, after, key, value);
        }
    }
}

fn insert_after(map: &mut Map<String, Value>, anchor: &str, key: &str, value: Value) {
    let index = map
        .keys()
        .position(|existing| existing == anchor)
        .map_or(map.len(), |position| position.saturating_add(1));
    map.shift_insert(index, key.to_owned(), value);
}

/// Decrypts every message of one input, in order, with the keys known at that message. Does
/// nothing without key material on the command line, so the output stays as it was; with some,
/// a note says which messages could not be decrypted and what was missing.
pub fn annotate(messages: &mut [Message], options: &KeyOptions, notes: &mut Vec<String>) {
    if options.is_empty() {
        return;
    }
    let mut session = Session::default();
    let mut missing = Missing::default();
    for message in messages.iter_mut() {
        let Some(bytes) = message.licensing_pdu.as_deref() else {
            continue;
        };
        let Ok(pdu) = LicensingPdu::decode(bytes) else {
            continue;
        };
        let mut additions = Additions::default();
        learn(
            &pdu.message,
            options,
            &mut session,
            &mut additions,
            notes,
            &message.document,
        );
        if has_encrypted_data(&pdu.message) {
            match session_keys(options, &session, &mut missing) {
                Some(keys) => decrypt(&pdu.message, &keys, &mut additions),
                None => missing.messages = missing.messages.saturating_add(1),
            }
        }
        additions.apply(&mut message.document);
    }
    if missing.messages > 0 {
        notes.push(missing.note());
    }
}

/// Takes the randoms and the encrypted premaster secret from the messages that carry them.
fn learn(
    message: &LicensingMessage<'_>,
    options: &KeyOptions,
    session: &mut Session,
    additions: &mut Additions,
    notes: &mut Vec<String>,
    document: &Value,
) {
    let (client_random, encrypted_premaster) = match message {
        LicensingMessage::LicenseRequest(m) => {
            *session = Session {
                server_random: Some(m.server_random),
                ..Session::default()
            };
            return;
        }
        LicensingMessage::NewLicenseRequest(m) => (m.client_random, &m.encrypted_premaster_secret),
        LicensingMessage::LicenseInfo(m) => (m.client_random, &m.encrypted_premaster_secret),
        _ => return,
    };
    session.client_random = Some(client_random);
    session.premaster = None;
    if options.server_keys.is_empty() {
        return;
    }
    let decrypted = options
        .server_keys
        .iter()
        .map(|key| key.decrypt_premaster(encrypted_premaster.data, &mut rand::rng()))
        .reduce(|first, next| first.or(next));
    match decrypted.unwrap_or(Err(rdpele_proto::crypto::CryptoError::PrivateKeyOperation)) {
        Ok(premaster) => {
            additions.push(
                "encrypted_premaster_secret",
                "premaster_secret",
                describe::bytes(&premaster),
            );
            session.premaster = Some(Secret::new(premaster));
        }
        Err(error) => notes.push(format!(
            "{}: the encrypted premaster secret does not decrypt with --server-key: {error}",
            place(document)
        )),
    }
}

/// Where a message is, for a note: its packet in a capture, otherwise its byte offset.
fn place(document: &Value) -> String {
    match document.get("packet").and_then(Value::as_u64) {
        Some(packet) => format!("packet {packet}"),
        None => format!(
            "offset {}",
            document
                .get("offset")
                .and_then(Value::as_u64)
                .unwrap_or_default()
        ),
    }
}

fn has_encrypted_data(message: &LicensingMessage<'_>) -> bool {
    matches!(
        message,
        LicensingMessage::PlatformChallenge(_)
            | LicensingMessage::PlatformChallengeResponse(_)
            | LicensingMessage::LicenseInfo(_)
            | LicensingMessage::NewLicense(_)
            | LicensingMessage::UpgradeLicense(_)
    )
}

/// The keys from the command line's values, or else the session's; `None` (and what was
/// missing recorded) when one of the three is not known.
fn session_keys(
    options: &KeyOptions,
    session: &Session,
    missing: &mut Missing,
) -> Option<SessionKeys> {
    let client_random = options.client_random.or(session.client_random);
    let server_random = options.server_random.or(session.server_random);
    let premaster = options.premaster.as_ref().or(session.premaster.as_ref());
    missing.client_random |= client_random.is_none();
    missing.server_random |= server_random.is_none();
    missing.premaster |= premaster.is_none();
    Some(derive_session_keys(
        premaster?.expose(),
        &client_random?,
        &server_random?,
    ))
}

fn decrypt(message: &LicensingMessage<'_>, keys: &SessionKeys, additions: &mut Additions) {
    let open =
        |blob: &LicenseBinaryBlob<'_>| rc4(keys.licensing_encryption_key.expose(), blob.data);
    let mac_valid =
        |plain: &[u8], mac: &[u8; 16]| verify_mac(keys.mac_salt_key.expose(), plain, mac);
    match message {
        LicensingMessage::PlatformChallenge(m) => {
            let challenge = open(&m.encrypted_platform_challenge);
            additions.push(
                "encrypted_platform_challenge",
                "platform_challenge",
                describe::bytes(&challenge),
            );
            if let Some(text) = describe::utf16_text(&challenge) {
                additions.push("platform_challenge", "platform_challenge_text", text);
            }
            additions.push("mac_data", "mac_valid", mac_valid(&challenge, &m.mac_data));
        }
        LicensingMessage::PlatformChallengeResponse(m) => {
            let response = open(&m.encrypted_platform_challenge_response);
            let hwid = open(&m.encrypted_hwid);
            additions.push(
                "encrypted_platform_challenge_response",
                "platform_challenge_response",
                decoded(&response, |bytes| {
                    PlatformChallengeResponseData::decode(bytes)
                        .map(|data| describe::platform_challenge_response_data(&data))
                }),
            );
            additions.push("encrypted_hwid", "hwid", hardware_id(&hwid));
            let signed = [response.as_slice(), hwid.as_slice()].concat();
            additions.push("mac_data", "mac_valid", mac_valid(&signed, &m.mac_data));
        }
        LicensingMessage::LicenseInfo(m) => {
            let hwid = open(&m.encrypted_hwid);
            additions.push("encrypted_hwid", "hwid", hardware_id(&hwid));
            additions.push("mac_data", "mac_valid", mac_valid(&hwid, &m.mac_data));
        }
        LicensingMessage::NewLicense(m) => server_license(m, keys, additions),
        LicensingMessage::UpgradeLicense(m) => server_license(m, keys, additions),
        LicensingMessage::LicenseRequest(_)
        | LicensingMessage::NewLicenseRequest(_)
        | LicensingMessage::ErrorAlert(_) => {}
    }
}

fn server_license<const UPGRADE: bool>(
    m: &ServerLicense<'_, UPGRADE>,
    keys: &SessionKeys,
    additions: &mut Additions,
) {
    let info = rc4(
        keys.licensing_encryption_key.expose(),
        m.encrypted_license_info.data,
    );
    additions.push(
        "encrypted_license_info",
        "license_info",
        decoded(&info, |bytes| {
            NewLicenseInfo::decode(bytes).map(|info| describe::new_license_info_fields(&info))
        }),
    );
    additions.push(
        "mac_data",
        "mac_valid",
        verify_mac(keys.mac_salt_key.expose(), &info, &m.mac_data),
    );
}

fn hardware_id(plain: &[u8]) -> Value {
    decoded(plain, |bytes| {
        ClientHardwareId::decode(bytes).map(|hwid| describe::hardware_id(&hwid))
    })
}

/// The decoded structure, or — when the decrypted bytes do not decode (wrong keys, or a peer's
/// bug) — the bytes and why they do not.
fn decoded(plain: &[u8], decode: impl FnOnce(&[u8]) -> Result<Value, WireError>) -> Value {
    decode(plain).unwrap_or_else(
        |error| json!({ "data": describe::bytes(plain), "error": error.to_string() }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additions_go_after_their_anchor_even_one_added_just_before() {
        let mut document = json!({"fields": {"a": 1, "mac_data": 2, "z": 3}});
        let mut additions = Additions::default();
        additions.push("a", "b", 10);
        additions.push("b", "c", 11);
        additions.push("mac_data", "mac_valid", true);
        additions.push("absent", "end", 12);
        additions.apply(&mut document);
        let keys: Vec<&String> = document
            .get("fields")
            .and_then(Value::as_object)
            .map(|fields| fields.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["a", "b", "c", "mac_data", "mac_valid", "z", "end"]);
    }

    #[test]
    fn the_note_names_only_what_was_missing() {
        let missing = Missing {
            messages: 2,
            server_random: true,
            client_random: false,
            premaster: true,
        };
        let note = missing.note();
        assert!(note.starts_with("2 message(s) with encrypted data not decrypted"));
        assert!(note.contains("ServerRandom"));
        assert!(!note.contains("ClientRandom"));
        assert!(note.contains("premaster secret"));
    }
}

//! Windows' leniency and Windows' challenge, each a rule tested on real bytes: rdesktop 1.9.0's
//! licensing messages as `rdpele serve --record` captured them on loopback (TLS, a 2048-bit
//! host key), replayed against a server machine whose server random is the recorded one, so
//! every key, challenge and MAC is the recorded session's.
//!
//! - rdesktop sends a 72-byte all-zero EncryptedPreMasterSecret whatever the host's key size;
//!   Windows reads it as the integer 0, whose decryption is a zero premaster.
//! - It answers the Platform Challenge with the encrypted challenge it was sent, without a
//!   PLATFORM_CHALLENGE_RESPONSE_DATA around it, MACed over the decrypted challenge ‖ HWID.
//! - Windows' challenge is always the UTF-16 string "TEST" with its NUL.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use rdpele_proto::crypto::rand_core::{TryCryptoRng, TryRng};
use rdpele_proto::crypto::{derive_session_keys, proprietary_certificate, rc4};
use rdpele_proto::crypto::{LicensingPrivateKey, PREMASTER_SECRET_LEN};
use rdpele_proto::envelope::{LicensingFrame, SendDataDirection};
use rdpele_proto::machine::{
    ChallengeCheck, ChallengeSource, LicenseQuery, RefusalReason, ServerConfig, ServerEvent,
    ServerMachine, WINDOWS_PLATFORM_CHALLENGE,
};
use rdpele_proto::wire::{
    ClientHardwareId, ErrorCode, LicensingMessage, LicensingPdu, PreambleFlags, Wire,
};

const SERVER_REQUEST: &[u8] =
    include_bytes!("../../captures/rdpele_tls_license_request_to_rdesktop-1.9.0.bin");
const NEW_LICENSE_REQUEST: &[u8] =
    include_bytes!("../../captures/rdesktop-1.9.0_tls_new_license_request.bin");
const SERVER_CHALLENGE: &[u8] =
    include_bytes!("../../captures/rdpele_tls_platform_challenge_to_rdesktop-1.9.0.bin");
const CHALLENGE_RESPONSE: &[u8] =
    include_bytes!("../../captures/rdesktop-1.9.0_tls_platform_challenge_response.bin");
const HOST_KEY: &str = include_str!("../src/cal/testdata/license_server_test_key.pem");

/// The licensing PDU (preamble on) in a recorded TPKT frame.
fn pdu(frame: &[u8], direction: SendDataDirection) -> &[u8] {
    LicensingFrame::payload(frame, direction).unwrap().pdu
}

/// An RNG that hands out `prefix` first (the recorded server random), then ChaCha20's output.
struct Replay {
    prefix: Vec<u8>,
    rest: ChaCha20Rng,
}

impl TryRng for Replay {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let taken = dst.len().min(self.prefix.len());
        dst[..taken].copy_from_slice(&self.prefix[..taken]);
        self.prefix.drain(..taken);
        self.rest.try_fill_bytes(&mut dst[taken..])
    }
}

impl TryCryptoRng for Replay {}

fn recorded_server_random() -> [u8; 32] {
    match LicensingPdu::decode(pdu(SERVER_REQUEST, SendDataDirection::Indication))
        .unwrap()
        .message
    {
        LicensingMessage::LicenseRequest(request) => request.server_random,
        other => panic!("not a License Request: {other:?}"),
    }
}

/// A host like the recorded one (a 2048-bit key; its certificate is not what the client's
/// messages depend on), started with the recorded server random.
fn host(challenge_check: ChallengeCheck) -> (ServerMachine, Replay) {
    let private_key = LicensingPrivateKey::from_pem(HOST_KEY).unwrap();
    assert_eq!(private_key.modulus_len(), 256);
    let config = ServerConfig {
        preamble_flags: PreambleFlags(PreambleFlags::PREAMBLE_VERSION_3_0),
        product_version: 0x000A_0002,
        company_name: "Microsoft Corporation".into(),
        product_id: "A02".into(),
        scopes: vec!["microsoft.com".into()],
        certificate: proprietary_certificate(&private_key.public_key()).unwrap(),
        private_key,
        challenge_check,
        challenge: ChallengeSource::Windows,
        cals: Default::default(),
    };
    let mut rng = Replay {
        prefix: recorded_server_random().to_vec(),
        rest: ChaCha20Rng::seed_from_u64(1),
    };
    let mut machine = ServerMachine::new(config);
    machine.start(&mut rng);
    assert!(machine.poll_transmit().is_some(), "the License Request");
    (machine, rng)
}

#[test]
fn rdesktops_zero_premaster_and_bare_challenge_echo_are_licensed_as_windows_licenses_them() {
    let (mut machine, mut rng) = host(ChallengeCheck::MacOnly);
    let request = pdu(NEW_LICENSE_REQUEST, SendDataDirection::Request);
    let LicensingMessage::NewLicenseRequest(parsed) =
        LicensingPdu::decode(request).unwrap().message
    else {
        panic!("not a New License Request");
    };
    assert_eq!(parsed.encrypted_premaster_secret.data, [0u8; 72]);
    assert_eq!(parsed.client_random, [0u8; 32]);

    machine.handle_pdu(request, &mut rng).unwrap();
    // The zero blob is the integer 0: a zero premaster, so the keys are the recorded session's
    // and the challenge comes out byte for byte as rdesktop received it.
    let challenge = machine.poll_transmit().unwrap();
    assert_eq!(
        challenge,
        pdu(SERVER_CHALLENGE, SendDataDirection::Indication)
    );
    let keys = derive_session_keys(
        &[0; PREMASTER_SECRET_LEN],
        &[0; 32],
        &recorded_server_random(),
    );
    let LicensingMessage::PlatformChallenge(sent) =
        LicensingPdu::decode(&challenge).unwrap().message
    else {
        panic!("not a Platform Challenge");
    };
    let key = keys.licensing_encryption_key.expose();
    assert_eq!(
        rc4(key, sent.encrypted_platform_challenge.data),
        WINDOWS_PLATFORM_CHALLENGE,
        "Windows' challenge: \"TEST\\0\" in UTF-16"
    );

    let response = pdu(CHALLENGE_RESPONSE, SendDataDirection::Request);
    let LicensingMessage::PlatformChallengeResponse(echoed) =
        LicensingPdu::decode(response).unwrap().message
    else {
        panic!("not a Platform Challenge Response");
    };
    assert_eq!(
        echoed.encrypted_platform_challenge_response.data, sent.encrypted_platform_challenge.data,
        "rdesktop echoes the encrypted challenge"
    );
    machine.handle_pdu(response, &mut rng).unwrap();
    let events: Vec<ServerEvent> = std::iter::from_fn(|| machine.poll_event()).collect();
    assert_eq!(
        events,
        [ServerEvent::ChallengeResponseTolerated {
            reason: RefusalReason::BareChallenge
        }]
    );
    let Some(LicenseQuery::NewLicense(client)) = machine.poll_query() else {
        panic!("no New License query");
    };
    assert_eq!(
        (client.machine_name.as_str(), client.user_name.as_str()),
        ("rdpc03", "carol")
    );
    let mut hwid = [0u8; 16];
    hwid[..6].copy_from_slice(b"rdpc03");
    assert_eq!(
        client.hwid,
        ClientHardwareId {
            platform_id: 2,
            data: hwid
        }
    );
}

#[test]
fn strict_checking_refuses_the_bare_challenge_echo() {
    let (mut machine, mut rng) = host(ChallengeCheck::Strict);
    machine
        .handle_pdu(
            pdu(NEW_LICENSE_REQUEST, SendDataDirection::Request),
            &mut rng,
        )
        .unwrap();
    machine.poll_transmit().unwrap();
    machine
        .handle_pdu(
            pdu(CHALLENGE_RESPONSE, SendDataDirection::Request),
            &mut rng,
        )
        .unwrap();
    let refused = std::iter::from_fn(|| machine.poll_event()).find_map(|event| match event {
        ServerEvent::Refused { refusal, reason } => Some((refusal.error_code, reason)),
        _ => None,
    });
    assert_eq!(
        refused,
        Some((
            ErrorCode::ERR_INVALID_MESSAGE_LEN,
            RefusalReason::BareChallenge
        ))
    );
    assert!(machine.poll_query().is_none());
}

//! Sans-IO licensing state machines: the client (MS-RDPELE 3.3) and the server (3.2).
//!
//! Bytes in, bytes and events out: `handle_pdu(bytes, rng, ..)` consumes one licensing PDU
//! (LICENSE_PREAMBLE and message, as [`crate::wire::LicensingPdu`] parses it), then
//! `poll_transmit()` yields the PDUs to send and `poll_event()` what happened. The server
//! machine also hands out what it must ask the license server (`poll_query()`) and takes the
//! answer back (`answer()`), so the caller decides where and when that work runs. The caller
//! supplies time and randomness and does the I/O (wrapping PDUs in a security header, TPKT, …).
//! A peer's malformed or out-of-order message is answered with the spec's Licensing Error
//! Message, never an `Err`: `Err` is only for a caller that drives a machine out of turn.

mod client;
mod issuer;
mod server;
mod store;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{ClientConfig, ClientEvent, ClientMachine};
pub use issuer::{
    Assessment, ClientInfo, Decision, LicenseAnswer, LicenseIssuer, LicenseQuery, PresentedLicense,
    Refusal,
};
pub use server::{
    ChallengeCheck, ChallengeSource, LicensedOutcome, RefusalReason, ServerConfig, ServerEvent,
    ServerMachine, WINDOWS_PLATFORM_CHALLENGE,
};
pub use store::{LicenseStore, ProductKey};

use crate::crypto;
use crate::wire::{
    BlobType, ErrorCode, LicenseBinaryBlob, LicensingErrorMessage, LicensingMessage, LicensingPdu,
    PreambleFlags, StateTransition, Wire,
};

/// A caller error: the machine was driven after it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MachineError {
    #[error("licensing already ended; the machine takes no more messages")]
    Finished,
    #[error("an earlier call failed while changing state; the machine is unusable")]
    Poisoned,
    /// A PDU arrived while the machine waits for the license server's answer to its query.
    #[error("the license server's answer is still awaited")]
    AwaitingAnswer,
    /// An answer that is not the one the pending query asks for, or none was asked for.
    #[error("an answer to no pending query (or of the wrong kind)")]
    UnexpectedAnswer,
}

/// Encodes a licensing PDU. Every message the machines build is bounded well below the 64 KiB
/// wMsgSize limit except a NEW_LICENSE_INFO with an oversized CAL, which `None` reports.
fn encode(flags: PreambleFlags, message: LicensingMessage<'_>) -> Option<Vec<u8>> {
    LicensingPdu { flags, message }.to_vec().ok()
}

fn error_alert(
    flags: PreambleFlags,
    error_code: ErrorCode,
    transition: StateTransition,
) -> Vec<u8> {
    let message = LicensingMessage::ErrorAlert(LicensingErrorMessage {
        error_code,
        state_transition: transition,
        error_info: LicenseBinaryBlob::new(BlobType::BB_ERROR_BLOB, &[]),
    });
    // Twenty bytes: cannot exceed any length field.
    encode(flags, message).unwrap_or_default()
}

/// RC4-encrypts `plain` and MACs it (MS-RDPELE 5.1.3, 5.1.4): what every encrypted field
/// carries.
fn seal(keys: &crypto::SessionKeys, plain: &[u8]) -> (Vec<u8>, [u8; 16]) {
    (
        crypto::rc4(keys.licensing_encryption_key.expose(), plain),
        crypto::mac_data(keys.mac_salt_key.expose(), plain),
    )
}

fn decrypt(keys: &crypto::SessionKeys, blob: &LicenseBinaryBlob<'_>) -> Vec<u8> {
    crypto::rc4(keys.licensing_encryption_key.expose(), blob.data)
}

fn mac_valid(keys: &crypto::SessionKeys, plain: &[u8], mac: &[u8; 16]) -> bool {
    crypto::verify_mac(keys.mac_salt_key.expose(), plain, mac)
}

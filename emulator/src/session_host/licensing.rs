//! The licensing phase of a connection (MS-RDPBCGR 1.3.1.1 step "Licensing", MS-RDPELE 3.2):
//! frames in and out around [`ServerMachine`], with the configured faults applied to what goes
//! out, and the PDUs optionally recorded for `captures/`.

use std::path::PathBuf;
use std::sync::Arc;

use rand::rngs::StdRng;
use rdpele_license_server::server::product_version;
use rdpele_proto::envelope::{LicensingFrame, SendDataDirection};
use rdpele_proto::machine::{Refusal, RefusalReason, ServerConfig, ServerEvent, ServerMachine};
use rdpele_proto::wire::{
    BlobType, ErrorCode, LicenseBinaryBlob, LicensingErrorMessage, LicensingMessage, LicensingPdu,
    MessageType, PreambleFlags, StateTransition, Wire,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tracing::{debug, info};

use super::config::{Faults, Step};
use super::connection::ConnError;
use super::issuer::{Backend, HostIssuer, TemporaryCal};

use crate::transport::{self, Channels, Framed, Peer, TransportError, TransportErrorKind};

/// How licensing ended.
#[derive(Debug)]
pub enum LicensingEnd {
    /// The client may proceed to capability exchange, holding `temporary` if the CAL it
    /// was admitted with is a temporary one (to validate once its session is active).
    Licensed { temporary: Option<TemporaryCal> },
    /// The host refused the client with this Licensing Error Message.
    Refused {
        refusal: Refusal,
        reason: Option<RefusalReason>,
    },
    /// The client ended licensing with its own error message.
    ClientAborted { error_code: ErrorCode },
}

/// What one connection's licensing needs.
pub struct LicensingContext {
    pub backend: Arc<Backend>,
    /// The License Request's contents; its PRODUCT_INFO dwVersion is replaced by the host
    /// version in force for this connection unless `product_version` fixes it.
    pub machine_config: ServerConfig,
    /// `[product] version` from the config, when the user set it.
    pub product_version: Option<u32>,
    pub faults: Faults,
    pub peer: String,
    /// The randomness of the License Request and of the premaster's RSA blinding.
    pub rng: StdRng,
    /// Directory to record this connection's licensing PDUs into, one file each.
    pub record: Option<PathBuf>,
}

/// Runs licensing to its end on `framed`.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    context: LicensingContext,
) -> Result<LicensingEnd, ConnError> {
    let host = context.backend.reads.settings().await?;
    let mut rng = context.rng;
    // An `admin server set --host-version` while serving changes what the next License Request
    // announces, as a Windows host's product version follows its installed release.
    let mut machine_config = context.machine_config;
    machine_config.product_version = context
        .product_version
        .unwrap_or_else(|| product_version(host.version).as_dword());
    let preamble = machine_config.preamble_flags;
    let mut machine = ServerMachine::new(machine_config);
    let mut recorder = Recorder::new(context.record.clone());
    let issuer = HostIssuer::new(Arc::clone(&context.backend), host, context.peer.clone());
    machine.start(&mut rng);
    let mut temporary = None;
    let mut outcome = flush(framed, &mut machine, &context.faults, &mut recorder).await?;
    loop {
        if let Some(done) = outcome {
            return Ok(match done {
                LicensingEnd::Licensed { .. } => LicensingEnd::Licensed { temporary },
                other => other,
            });
        }
        let frame = match framed.read_pdu("licensing").await {
            Ok(frame) => frame,
            // Broken framing is answered as a malformed licensing message would be: the
            // machine sends ERR_INVALID_MESSAGE_LEN and licensing ends.
            Err(TransportError {
                kind: TransportErrorKind::Protocol(detail),
                ..
            }) => {
                debug!(peer = %context.peer, %detail, "unreadable frame during licensing");
                Vec::new()
            }
            Err(other) => return Err(other.into()),
        };
        recorder.record("client", &frame);
        if let Some(step) = client_step(licensing_payload(&frame).unwrap_or_default()) {
            if let Some((error_code, state_transition)) = context.faults.error_for(step) {
                info!(peer = %context.peer, step = step.name(), error = %error_code, "fault: answering with a Licensing Error Message");
                let alert = error_alert(preamble, error_code, state_transition);
                queue_licensing(framed, &alert, &mut recorder)?;
                return Ok(if error_code == ErrorCode::STATUS_VALID_CLIENT {
                    LicensingEnd::Licensed { temporary: None }
                } else {
                    LicensingEnd::Refused {
                        refusal: Refusal {
                            error_code,
                            state_transition,
                        },
                        reason: None,
                    }
                });
            }
        }
        // The premaster's RSA decryption runs here, as TLS handshakes do; the license server's
        // work goes through the issuer, off this thread.
        let licensing_bytes = licensing_payload(&frame).unwrap_or_default();
        machine
            .handle_pdu(licensing_bytes, &mut rng)
            .map_err(|e| TransportError::protocol("licensing", Peer::Client, e))?;
        while let Some(query) = machine.poll_query() {
            let (answer, held) = issuer.answer(query).await;
            temporary = held;
            machine
                .answer(answer, &mut rng)
                .map_err(|e| TransportError::protocol("licensing", Peer::Client, e))?;
        }
        outcome = flush(framed, &mut machine, &context.faults, &mut recorder).await?;
    }
}

/// Sends what the machine queued (with faults applied) and reports the end of licensing, if
/// the machine reached it.
async fn flush<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    machine: &mut ServerMachine,
    faults: &Faults,
    recorder: &mut Recorder,
) -> Result<Option<LicensingEnd>, ConnError> {
    while let Some(mut pdu) = machine.poll_transmit() {
        if let Some(step) = server_step(&pdu) {
            if let Some(delay) = faults.delay(step) {
                info!(
                    step = step.name(),
                    ?delay,
                    "fault: delaying the host's message"
                );
                tokio::time::sleep(delay).await;
            }
            if faults.corrupts_mac(step) {
                info!(
                    step = step.name(),
                    "fault: corrupting the MAC of the host's message"
                );
                corrupt_mac(&mut pdu);
            }
        }
        queue_licensing(framed, &pdu, recorder)?;
    }
    let mut outcome = None;
    while let Some(event) = machine.poll_event() {
        outcome = match event {
            ServerEvent::Licensed(_) => Some(LicensingEnd::Licensed { temporary: None }),
            ServerEvent::Refused { refusal, reason } => Some(LicensingEnd::Refused {
                refusal,
                reason: Some(reason),
            }),
            ServerEvent::ClientError { error_code, .. } => {
                Some(LicensingEnd::ClientAborted { error_code })
            }
            ServerEvent::ChallengeResponseTolerated { reason } => {
                tracing::warn!(?reason, "the client's platform challenge response is flawed but its MAC is valid: accepted, as Windows does (challenge-check = \"mac-only\")");
                outcome
            }
            other => {
                debug!(event = ?other, "server machine event");
                outcome
            }
        };
    }
    Ok(outcome)
}

/// Queues a licensing PDU: it leaves before the host reads the client's answer, or with what
/// the host sends next when licensing is over (STATUS_VALID_CLIENT and the Demand Active in one
/// write).
fn queue_licensing<S>(
    framed: &mut Framed<S>,
    pdu: &[u8],
    recorder: &mut Recorder,
) -> Result<(), ConnError> {
    let frame =
        transport::queue_licensing(framed, SendDataDirection::Indication, Channels::HOST, pdu)?;
    recorder.record("server", &frame);
    Ok(())
}

/// The licensing PDU a client frame carries: a Send Data Request on the I/O channel whose
/// security header flags SEC_LICENSE_PKT. `None` for anything else, which the machine then
/// answers as a malformed message.
fn licensing_payload(frame: &[u8]) -> Option<&[u8]> {
    LicensingFrame::payload(frame, SendDataDirection::Request)
        .filter(|licensing| licensing.channel_id == Channels::HOST.io_channel)
        .map(|licensing| licensing.pdu)
}

/// The error code of a client's Licensing Error Message, if `frame` is one.
pub fn client_error_alert(frame: &[u8]) -> Option<ErrorCode> {
    match LicensingPdu::decode(licensing_payload(frame)?)
        .ok()?
        .message
    {
        LicensingMessage::ErrorAlert(alert) => Some(alert.error_code),
        _ => None,
    }
}

fn message_type(pdu: &[u8]) -> Option<MessageType> {
    pdu.first().map(|&byte| MessageType(byte))
}

fn client_step(pdu: &[u8]) -> Option<Step> {
    match message_type(pdu)? {
        MessageType::NEW_LICENSE_REQUEST => Some(Step::NewLicenseRequest),
        MessageType::LICENSE_INFO => Some(Step::LicenseInfo),
        MessageType::PLATFORM_CHALLENGE_RESPONSE => Some(Step::ChallengeResponse),
        _ => None,
    }
}

fn server_step(pdu: &[u8]) -> Option<Step> {
    match message_type(pdu)? {
        MessageType::LICENSE_REQUEST => Some(Step::LicenseRequest),
        MessageType::PLATFORM_CHALLENGE => Some(Step::PlatformChallenge),
        MessageType::NEW_LICENSE => Some(Step::NewLicense),
        MessageType::UPGRADE_LICENSE => Some(Step::UpgradeLicense),
        _ => None,
    }
}

/// Flips a bit of MACData, the last 16 bytes of a Platform Challenge, New License and Upgrade
/// License (MS-RDPELE 2.2.2.4, 2.2.2.6, 2.2.2.7).
fn corrupt_mac(pdu: &mut [u8]) {
    if let Some(last) = pdu.last_mut() {
        *last ^= 0x01;
    }
}

fn error_alert(
    flags: PreambleFlags,
    error_code: ErrorCode,
    state_transition: StateTransition,
) -> Vec<u8> {
    LicensingPdu {
        flags,
        message: LicensingMessage::ErrorAlert(LicensingErrorMessage {
            error_code,
            state_transition,
            error_info: LicenseBinaryBlob::new(BlobType::BB_ERROR_BLOB, &[]),
        }),
    }
    .to_vec()
    .unwrap_or_default()
}

/// Writes each licensing frame of a connection to its own file, numbered in order, for
/// `captures/`.
struct Recorder {
    dir: Option<PathBuf>,
    count: usize,
}

impl Recorder {
    fn new(dir: Option<PathBuf>) -> Self {
        Self { dir, count: 0 }
    }

    fn record(&mut self, from: &str, frame: &[u8]) {
        let Some(dir) = &self.dir else { return };
        let name = licensing_payload_any(frame)
            .and_then(message_type)
            .and_then(MessageType::name)
            .unwrap_or("not_licensing")
            .to_ascii_lowercase();
        self.count += 1;
        let path = dir.join(format!("{:02}-{from}-{name}.bin", self.count));
        if let Err(error) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, frame))
        {
            tracing::warn!(path = %path.display(), %error, "cannot record licensing PDU");
        }
    }
}

/// The licensing PDU of a frame in either direction.
fn licensing_payload_any(frame: &[u8]) -> Option<&[u8]> {
    [SendDataDirection::Indication, SendDataDirection::Request]
        .into_iter()
        .find_map(|direction| LicensingFrame::payload(frame, direction))
        .map(|licensing| licensing.pdu)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdpele_proto::envelope::SecuredLicensingPdu;

    #[test]
    fn payload_of_a_real_client_frame_is_its_licensing_pdu() {
        let secured = include_bytes!("../../../captures/xfreerdp-2.11.7_new_license_request.bin");
        let secured = SecuredLicensingPdu::decode(secured).unwrap();
        let frame = LicensingFrame::new(
            SendDataDirection::Request,
            1,
            Channels::HOST.io_channel,
            secured.pdu,
        )
        .to_vec()
        .unwrap();
        let payload = licensing_payload(&frame).unwrap();
        assert_eq!(
            message_type(payload),
            Some(MessageType::NEW_LICENSE_REQUEST)
        );
        assert!(LicensingPdu::decode(payload).is_ok());
        assert_eq!(client_step(payload), Some(Step::NewLicenseRequest));
    }

    #[test]
    fn frames_that_are_not_client_licensing_yield_nothing() {
        assert_eq!(licensing_payload(&[]), None);
        assert_eq!(licensing_payload(&[3, 0, 0, 4]), None);
        let request = include_bytes!("../../../captures/server_license_request.bin");
        let request = LicensingPdu::decode(request).unwrap();
        let server = LicensingFrame::new(
            SendDataDirection::Indication,
            1,
            Channels::HOST.io_channel,
            request,
        )
        .to_vec()
        .unwrap();
        // A server's Indication is not what a client sends.
        assert_eq!(licensing_payload(&server), None);
        assert!(licensing_payload_any(&server).is_some());
    }

    #[test]
    fn a_corrupted_mac_differs_in_the_last_byte_only() {
        let mut pdu = vec![0x03, 0x03, 0x00, 0x10, 1, 2, 3];
        corrupt_mac(&mut pdu);
        assert_eq!(pdu, vec![0x03, 0x03, 0x00, 0x10, 1, 2, 2]);
    }
}

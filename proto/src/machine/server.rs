//! The server side (MS-RDPELE 3.2): License Request → (New License Request | License Info) →
//! Platform Challenge → Challenge Response → New / Upgrade License, or a Licensing Error
//! Message, with every decision about CALs left to the license server: handed out as a
//! [`LicenseQuery`] ([`ServerMachine::poll_query`]) and taken back as a [`LicenseAnswer`]
//! ([`ServerMachine::answer`]), or asked of a [`LicenseIssuer`] in line
//! ([`ServerMachine::handle_pdu_with_issuer`]).

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;
use std::time::SystemTime;

use crate::crypto::rand_core::CryptoRng;

use super::issuer::{
    Assessment, ClientInfo, Decision, LicenseAnswer, LicenseIssuer, LicenseQuery, PresentedLicense,
    Refusal,
};
use super::{decrypt, encode, error_alert, mac_valid, seal, MachineError};
use crate::cal;
use crate::crypto::{self, LicensingPrivateKey, SessionKeys};
use crate::wire::{
    Ascii, BlobType, ClientHardwareId, ErrorCode, KeyExchangeList, LicenseBinaryBlob,
    LicensingErrorMessage, LicensingMessage, LicensingPdu, NewLicenseInfo,
    PlatformChallengeResponseData, PreambleFlags, ProductInfo, Scope, ScopeList, ServerCertificate,
    ServerCertificateBlob, ServerLicenseRequest, ServerNewLicense, ServerPlatformChallenge,
    ServerUpgradeLicense, StateTransition, Utf16, Wire,
};

/// Length of the platform challenge: Windows' "TEST\0" in UTF-16, and a random one as long.
const CHALLENGE_LEN: usize = 10;

/// The Platform Challenge Windows sends, always: the UTF-16LE string "TEST" with its
/// terminating NUL (DESIGN §5; legacy clients check it).
pub const WINDOWS_PLATFORM_CHALLENGE: [u8; CHALLENGE_LEN] =
    [b'T', 0, b'E', 0, b'S', 0, b'T', 0, 0, 0];

/// What the server's Platform Challenge (MS-RDPELE 2.2.2.4) carries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChallengeSource {
    /// [`WINDOWS_PLATFORM_CHALLENGE`], as Windows sends it.
    #[default]
    Windows,
    /// 10 random bytes from the caller's RNG, for a client that must echo what it was sent
    /// rather than a constant it knows.
    Random,
}

/// What the session host announces and proves in its License Request.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Windows sends 0x03 (version 3); EXTENDED_ERROR_MSG_SUPPORTED is the client's to set.
    pub preamble_flags: PreambleFlags,
    /// PRODUCT_INFO dwVersion (0x00060000 for Windows Server 2008).
    pub product_version: u32,
    pub company_name: String,
    pub product_id: String,
    /// The scopes offered; the first is written into issued licenses.
    pub scopes: Vec<String>,
    /// An encoded SERVER_CERTIFICATE (proprietary or X.509 chain) holding the public half of
    /// `private_key`.
    pub certificate: Vec<u8>,
    pub private_key: LicensingPrivateKey,
    /// How much of a Client Platform Challenge Response is checked beyond its MAC.
    pub challenge_check: ChallengeCheck,
    /// What the Platform Challenge carries.
    pub challenge: ChallengeSource,
    /// Presented CALs parsed before, shared by the clones of this configuration: a host's
    /// connections parse each distinct CAL once.
    pub cals: Arc<cal::CalCache>,
}

/// MS-RDPELE 3.2.5.5 requires a server to verify the response's MAC; it does not say that
/// the decrypted Platform Challenge Response Data must parse or echo the challenge. Windows
/// hosts license clients whose response data is malformed but MAC-valid (IronRDP 0.12 sends
/// eight zero bytes before it), so a host emulating Windows can be as lenient.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChallengeCheck {
    /// The response data must parse and echo the challenge (ERR_INVALID_MESSAGE_LEN /
    /// ERR_INVALID_CLIENT otherwise).
    #[default]
    Strict,
    /// A valid MAC is enough; a malformed or mismatching response is reported with
    /// [`ServerEvent::ChallengeResponseTolerated`] and licensing goes on.
    MacOnly,
}

/// What happened, for the session host to act on and log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerEvent {
    /// Licensing ended with the client allowed in.
    Licensed(LicensedOutcome),
    /// The server refused the client with this error message.
    Refused {
        refusal: Refusal,
        reason: RefusalReason,
    },
    /// Under [`ChallengeCheck::MacOnly`], a MAC-valid challenge response that strict checking
    /// would have refused for `reason`.
    ChallengeResponseTolerated { reason: RefusalReason },
    /// The client sent a Licensing Error Message.
    ClientError {
        error_code: ErrorCode,
        state_transition: StateTransition,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LicensedOutcome {
    /// A New License carried a CAL to a client that had none.
    Issued { client: ClientInfo },
    /// An Upgrade License replaced the presented CAL.
    Upgraded { hwid: ClientHardwareId },
    /// STATUS_VALID_CLIENT: the presented license is valid as it is.
    Valid { hwid: ClientHardwareId },
    /// STATUS_VALID_CLIENT without a license (the issuer's choice, e.g. a grace period).
    AdmittedWithoutLicense,
}

/// Why the server refused, beyond the error code the client sees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefusalReason {
    MalformedMessage,
    UnexpectedMessage,
    /// The premaster did not decrypt with our key; the client was told ERR_INVALID_MAC.
    PremasterNotDecryptable,
    InvalidMac,
    CorruptCal,
    HwidMismatch,
    ChallengeMismatch,
    /// The challenge response's data is the bare challenge, with no
    /// PLATFORM_CHALLENGE_RESPONSE_DATA around it.
    BareChallenge,
    IssuerRefused,
    LicenseTooLarge,
}

#[derive(Debug)]
enum Pending {
    New {
        platform_id: u32,
        user_name: String,
        machine_name: String,
    },
    Upgrade(Box<PresentedLicense>),
}

#[derive(Debug)]
enum State {
    /// `start` not called yet.
    Idle,
    ExpectClientLicenseMessage {
        server_random: [u8; 32],
    },
    ExpectChallengeResponse {
        keys: SessionKeys,
        challenge: [u8; CHALLENGE_LEN],
        pending: Pending,
    },
    /// A License Info passed its MAC and HWID checks; the license server assesses it.
    AwaitAssessment {
        keys: SessionKeys,
        presented: Box<PresentedLicense>,
    },
    /// A challenge was passed; the license server decides what to issue.
    AwaitDecision {
        keys: SessionKeys,
        upgrade: bool,
        outcome: LicensedOutcome,
    },
    Finished,
    Poisoned,
}

/// The server licensing state machine.
#[derive(Debug)]
pub struct ServerMachine {
    config: ServerConfig,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ServerEvent>,
    /// The question for the license server, until the caller takes it.
    query: Option<LicenseQuery>,
    last_sent: Vec<u8>,
    /// Set when the client's premaster did not decrypt (see [`ServerMachine::keys`]).
    premaster_rejected: bool,
}

impl ServerMachine {
    pub fn new(config: ServerConfig) -> Self {
        Self {
            config,
            state: State::Idle,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            query: None,
            last_sent: Vec::new(),
            premaster_rejected: false,
        }
    }

    /// Queues the License Request that opens licensing (MS-RDPELE 3.2.5.1).
    pub fn start(&mut self, rng: &mut (impl CryptoRng + ?Sized)) {
        self.premaster_rejected = false;
        let mut server_random = [0u8; 32];
        rng.fill_bytes(&mut server_random);
        match self.license_request(&server_random) {
            Some(pdu) => {
                self.send(pdu);
                self.state = State::ExpectClientLicenseMessage { server_random };
            }
            None => self.state = State::Poisoned,
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// What the license server must answer before licensing can go on; the machine takes no
    /// PDU until [`ServerMachine::answer`] gives the answer.
    pub fn poll_query(&mut self) -> Option<LicenseQuery> {
        self.query.take()
    }

    /// Whether a query is out (taken or not) and its answer awaited.
    pub fn is_awaiting_answer(&self) -> bool {
        matches!(
            self.state,
            State::AwaitAssessment { .. } | State::AwaitDecision { .. }
        )
    }

    fn license_request(&self, server_random: &[u8; 32]) -> Option<Vec<u8>> {
        let company = Utf16::encode_nul_terminated(&self.config.company_name);
        let product = Utf16::encode_nul_terminated(&self.config.product_id);
        let scopes: Vec<Vec<u8>> = self
            .config
            .scopes
            .iter()
            .map(|s| Ascii::encode_nul_terminated(s))
            .collect();
        let certificate = if self.config.certificate.is_empty() {
            None
        } else {
            Some(ServerCertificate::decode(&self.config.certificate).ok()?)
        };
        let request = ServerLicenseRequest {
            server_random: *server_random,
            product_info: ProductInfo {
                version: self.config.product_version,
                company_name: Utf16(&company),
                product_id: Utf16(&product),
            },
            key_exchange_list: KeyExchangeList::RSA,
            server_certificate: ServerCertificateBlob {
                blob_type: BlobType::BB_CERTIFICATE_BLOB,
                certificate,
            },
            scope_list: ScopeList {
                scopes: scopes
                    .iter()
                    .map(|s| Scope::new(s))
                    .collect::<Vec<_>>()
                    .into(),
            },
        };
        encode(
            self.config.preamble_flags,
            LicensingMessage::LicenseRequest(request),
        )
    }

    /// Consumes one licensing PDU from the client. When licensing needs the license server,
    /// the machine stops at a [`LicenseQuery`] ([`ServerMachine::poll_query`]).
    pub fn handle_pdu(
        &mut self,
        bytes: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<(), MachineError> {
        match self.state {
            State::Finished => return Err(MachineError::Finished),
            State::Poisoned => return Err(MachineError::Poisoned),
            State::AwaitAssessment { .. } | State::AwaitDecision { .. } => {
                return Err(MachineError::AwaitingAnswer)
            }
            _ => {}
        }
        let pdu = match LicensingPdu::decode(bytes) {
            Ok(pdu) => pdu,
            Err(_) => {
                self.state = self.refuse(
                    Refusal::abort(ErrorCode::ERR_INVALID_MESSAGE_LEN),
                    RefusalReason::MalformedMessage,
                );
                return Ok(());
            }
        };
        let state = mem::replace(&mut self.state, State::Poisoned);
        self.state = self.step(state, pdu.message, rng);
        Ok(())
    }

    /// Takes the license server's answer to the query [`ServerMachine::poll_query`] handed out
    /// and sends what it means (MS-RDPELE 3.2.5.3, 3.2.5.5).
    pub fn answer(
        &mut self,
        answer: LicenseAnswer,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> Result<(), MachineError> {
        let state = mem::replace(&mut self.state, State::Poisoned);
        self.state = match (state, answer) {
            (State::AwaitAssessment { keys, presented }, LicenseAnswer::Assessment(assessment)) => {
                match assessment {
                    Assessment::Valid => {
                        self.valid_client(LicensedOutcome::Valid {
                            hwid: presented.hwid,
                        });
                        State::Finished
                    }
                    Assessment::Refuse(refusal) => {
                        self.refuse(refusal, RefusalReason::IssuerRefused)
                    }
                    Assessment::Upgrade => self.challenge(keys, Pending::Upgrade(presented), rng),
                }
            }
            (
                State::AwaitDecision {
                    keys,
                    upgrade,
                    outcome,
                },
                LicenseAnswer::Decision(decision),
            ) => {
                self.send_decision(&keys, decision, upgrade, outcome);
                State::Finished
            }
            (state, _) => {
                self.state = state;
                return Err(MachineError::UnexpectedAnswer);
            }
        };
        Ok(())
    }

    /// [`ServerMachine::handle_pdu`], with every query answered at once by `issuer` at `now`.
    pub fn handle_pdu_with_issuer(
        &mut self,
        now: SystemTime,
        bytes: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
        issuer: &mut impl LicenseIssuer,
    ) -> Result<(), MachineError> {
        self.handle_pdu(bytes, rng)?;
        while let Some(query) = self.poll_query() {
            self.answer(query.ask(now, issuer), rng)?;
        }
        Ok(())
    }

    fn step(
        &mut self,
        state: State,
        message: LicensingMessage<'_>,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> State {
        match (state, message) {
            (state, LicensingMessage::ErrorAlert(alert)) => self.client_error(state, &alert, rng),
            (
                State::ExpectClientLicenseMessage { server_random },
                LicensingMessage::NewLicenseRequest(m),
            ) => {
                let keys = self.keys(
                    &server_random,
                    &m.client_random,
                    m.encrypted_premaster_secret.data,
                    rng,
                );
                let pending = Pending::New {
                    platform_id: m.platform_id,
                    user_name: m.user_name().to_string_lossy().into_owned(),
                    machine_name: m.machine_name().to_string_lossy().into_owned(),
                };
                self.challenge(keys, pending, rng)
            }
            (
                State::ExpectClientLicenseMessage { server_random },
                LicensingMessage::LicenseInfo(m),
            ) => {
                let keys = self.keys(
                    &server_random,
                    &m.client_random,
                    m.encrypted_premaster_secret.data,
                    rng,
                );
                let hwid_plain = decrypt(&keys, &m.encrypted_hwid);
                if !mac_valid(&keys, &hwid_plain, &m.mac_data) {
                    return self.refuse_invalid_mac();
                }
                let Ok(hwid) = ClientHardwareId::decode(&hwid_plain) else {
                    return self.refuse(
                        Refusal::abort(ErrorCode::ERR_INVALID_MESSAGE_LEN),
                        RefusalReason::MalformedMessage,
                    );
                };
                let Ok(parsed) = self.config.cals.parse(m.license_info.data) else {
                    return self.refuse(
                        Refusal::abort(ErrorCode::ERR_INVALID_CLIENT),
                        RefusalReason::CorruptCal,
                    );
                };
                if parsed.client_license.hwid != hwid {
                    return self.refuse(
                        Refusal::abort(ErrorCode::ERR_INVALID_CLIENT),
                        RefusalReason::HwidMismatch,
                    );
                }
                let presented = PresentedLicense {
                    hwid,
                    platform_id: m.platform_id,
                    license_info: m.license_info.data.to_vec(),
                    cal: parsed,
                };
                let presented = Box::new(presented);
                self.query = Some(LicenseQuery::AssessLicense(presented.clone()));
                State::AwaitAssessment { keys, presented }
            }
            (
                State::ExpectChallengeResponse {
                    keys,
                    challenge,
                    pending,
                },
                LicensingMessage::PlatformChallengeResponse(m),
            ) => {
                let response_plain = decrypt(&keys, &m.encrypted_platform_challenge_response);
                let hwid_plain = decrypt(&keys, &m.encrypted_hwid);
                let signed = [response_plain.as_slice(), hwid_plain.as_slice()].concat();
                if !mac_valid(&keys, &signed, &m.mac_data) {
                    return self.refuse_invalid_mac();
                }
                let Ok(hwid) = ClientHardwareId::decode(&hwid_plain) else {
                    return self.refuse(
                        Refusal::abort(ErrorCode::ERR_INVALID_MESSAGE_LEN),
                        RefusalReason::MalformedMessage,
                    );
                };
                let flaw = match PlatformChallengeResponseData::decode(&response_plain) {
                    // rdesktop 1.9.0 echoes the encrypted challenge it was sent, without the
                    // PLATFORM_CHALLENGE_RESPONSE_DATA around it (issue #11, observed against
                    // Windows, which licenses it): decrypted, the bare challenge.
                    _ if response_plain == challenge => Some((
                        ErrorCode::ERR_INVALID_MESSAGE_LEN,
                        RefusalReason::BareChallenge,
                    )),
                    Err(_) => Some((
                        ErrorCode::ERR_INVALID_MESSAGE_LEN,
                        RefusalReason::MalformedMessage,
                    )),
                    Ok(response) if response.challenge != challenge => Some((
                        ErrorCode::ERR_INVALID_CLIENT,
                        RefusalReason::ChallengeMismatch,
                    )),
                    Ok(_) => None,
                };
                if let Some((error_code, reason)) = flaw {
                    if self.config.challenge_check == ChallengeCheck::Strict {
                        return self.refuse(Refusal::abort(error_code), reason);
                    }
                    self.events
                        .push_back(ServerEvent::ChallengeResponseTolerated { reason });
                }
                self.ask_decision(keys, hwid, pending)
            }
            (_, _) => self.refuse(
                Refusal::abort(ErrorCode::ERR_INVALID_CLIENT),
                RefusalReason::UnexpectedMessage,
            ),
        }
    }

    /// Recovers the premaster and derives the session keys. A premaster that does not decrypt
    /// is replaced by a random one rather than refused: the client then fails the next MAC check
    /// like any client with the wrong keys, so the answer does not tell an attacker which of its
    /// ciphertexts decrypt (the implicit rejection TLS uses against Bleichenbacher-style oracles).
    fn keys(
        &mut self,
        server_random: &[u8; 32],
        client_random: &[u8; 32],
        encrypted: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> SessionKeys {
        let premaster = self
            .config
            .private_key
            .decrypt_premaster(encrypted, rng)
            .unwrap_or_else(|_| {
                self.premaster_rejected = true;
                let mut random = [0u8; crypto::PREMASTER_SECRET_LEN];
                rng.fill_bytes(&mut random);
                random
            });
        crypto::derive_session_keys(&premaster, client_random, server_random)
    }

    /// Sends the Platform Challenge (MS-RDPELE 3.2.5.2) and waits for the response.
    fn challenge(
        &mut self,
        keys: SessionKeys,
        pending: Pending,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> State {
        let challenge = match self.config.challenge {
            ChallengeSource::Windows => WINDOWS_PLATFORM_CHALLENGE,
            ChallengeSource::Random => {
                let mut challenge = [0u8; CHALLENGE_LEN];
                rng.fill_bytes(&mut challenge);
                challenge
            }
        };
        let (encrypted, mac_data) = seal(&keys, &challenge);
        let message = LicensingMessage::PlatformChallenge(ServerPlatformChallenge {
            connect_flags: 0,
            encrypted_platform_challenge: LicenseBinaryBlob::new(
                BlobType::BB_ENCRYPTED_DATA_BLOB,
                &encrypted,
            ),
            mac_data,
        });
        match encode(self.config.preamble_flags, message) {
            Some(pdu) => {
                self.send(pdu);
                State::ExpectChallengeResponse {
                    keys,
                    challenge,
                    pending,
                }
            }
            None => State::Poisoned,
        }
    }

    /// Hands out the license server's question after a passed challenge (MS-RDPELE 3.2.5.5).
    fn ask_decision(
        &mut self,
        keys: SessionKeys,
        hwid: ClientHardwareId,
        pending: Pending,
    ) -> State {
        let (query, upgrade, outcome) = match pending {
            Pending::New {
                platform_id,
                user_name,
                machine_name,
            } => {
                let client = ClientInfo {
                    hwid,
                    platform_id,
                    user_name,
                    machine_name,
                };
                (
                    LicenseQuery::NewLicense(client.clone()),
                    false,
                    LicensedOutcome::Issued { client },
                )
            }
            Pending::Upgrade(presented) => {
                if presented.hwid != hwid {
                    return self.refuse(
                        Refusal::abort(ErrorCode::ERR_INVALID_CLIENT),
                        RefusalReason::HwidMismatch,
                    );
                }
                (
                    LicenseQuery::UpgradeLicense(presented),
                    true,
                    LicensedOutcome::Upgraded { hwid },
                )
            }
        };
        self.query = Some(query);
        State::AwaitDecision {
            keys,
            upgrade,
            outcome,
        }
    }

    /// Sends what the license server decided (MS-RDPELE 3.2.5.5).
    fn send_decision(
        &mut self,
        keys: &SessionKeys,
        decision: Decision,
        upgrade: bool,
        outcome: LicensedOutcome,
    ) {
        match decision {
            Decision::Issue(license) => match self.license_message(keys, &license, upgrade) {
                Some(pdu) => {
                    self.send(pdu);
                    self.events.push_back(ServerEvent::Licensed(outcome));
                }
                None => {
                    self.refuse(
                        Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER),
                        RefusalReason::LicenseTooLarge,
                    );
                }
            },
            Decision::Valid => self.valid_client(LicensedOutcome::AdmittedWithoutLicense),
            Decision::Refuse(refusal) => {
                self.refuse(refusal, RefusalReason::IssuerRefused);
            }
        }
    }

    /// NEW_LICENSE_INFO (MS-RDPELE 2.2.2.6.1) around `license`, encrypted, in a New or Upgrade
    /// License.
    fn license_message(
        &self,
        keys: &SessionKeys,
        license: &[u8],
        upgrade: bool,
    ) -> Option<Vec<u8>> {
        let scope =
            Ascii::encode_nul_terminated(self.config.scopes.first().map_or("", String::as_str));
        let company = Utf16::encode_nul_terminated(&self.config.company_name);
        let product = Utf16::encode_nul_terminated(&self.config.product_id);
        let info = NewLicenseInfo {
            version: self.config.product_version,
            scope: Ascii(&scope),
            company_name: Utf16(&company),
            product_id: Utf16(&product),
            license_info: license,
        }
        .to_vec()
        .ok()?;
        let (encrypted, mac_data) = seal(keys, &info);
        let blob = LicenseBinaryBlob::new(BlobType::BB_ENCRYPTED_DATA_BLOB, &encrypted);
        let message = if upgrade {
            LicensingMessage::UpgradeLicense(ServerUpgradeLicense {
                encrypted_license_info: blob,
                mac_data,
            })
        } else {
            LicensingMessage::NewLicense(ServerNewLicense {
                encrypted_license_info: blob,
                mac_data,
            })
        };
        encode(self.config.preamble_flags, message)
    }

    /// MS-RDPELE 3.1.5.3: the client's error alert and the transition it asks for.
    fn client_error(
        &mut self,
        state: State,
        alert: &LicensingErrorMessage<'_>,
        rng: &mut (impl CryptoRng + ?Sized),
    ) -> State {
        self.events.push_back(ServerEvent::ClientError {
            error_code: alert.error_code,
            state_transition: alert.state_transition,
        });
        match alert.state_transition {
            StateTransition::ST_NO_TRANSITION => state,
            StateTransition::ST_RESEND_LAST_MESSAGE => {
                // Before `start` nothing was sent, so there is nothing to resend.
                if !self.last_sent.is_empty() {
                    self.transmit.push_back(self.last_sent.clone());
                }
                state
            }
            StateTransition::ST_RESET_PHASE_TO_START => {
                self.start(rng);
                mem::replace(&mut self.state, State::Poisoned)
            }
            _ => State::Finished,
        }
    }

    /// The client sees ERR_INVALID_MAC either way; the event says whether its premaster was the
    /// cause.
    fn refuse_invalid_mac(&mut self) -> State {
        let reason = if self.premaster_rejected {
            RefusalReason::PremasterNotDecryptable
        } else {
            RefusalReason::InvalidMac
        };
        self.refuse(Refusal::abort(ErrorCode::ERR_INVALID_MAC), reason)
    }

    fn valid_client(&mut self, outcome: LicensedOutcome) {
        let pdu = error_alert(
            self.config.preamble_flags,
            ErrorCode::STATUS_VALID_CLIENT,
            StateTransition::ST_NO_TRANSITION,
        );
        self.send(pdu);
        self.events.push_back(ServerEvent::Licensed(outcome));
    }

    /// Sends the error and reports it; licensing is over.
    fn refuse(&mut self, refusal: Refusal, reason: RefusalReason) -> State {
        let pdu = error_alert(
            self.config.preamble_flags,
            refusal.error_code,
            refusal.state_transition,
        );
        self.send(pdu);
        self.events
            .push_back(ServerEvent::Refused { refusal, reason });
        State::Finished
    }

    fn send(&mut self, pdu: Vec<u8>) {
        self.last_sent.clone_from(&pdu);
        self.transmit.push_back(pdu);
    }
}

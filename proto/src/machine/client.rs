//! The client side (MS-RDPELE 3.3): answers the License Request with a New License Request or,
//! holding a matching CAL, a License Info; answers the Platform Challenge with its HWID; hands
//! New and Upgrade Licenses to the caller to store; follows error alerts' state transitions.

use std::collections::VecDeque;
use std::mem;
use std::sync::Arc;

use crate::crypto::rand_core::CryptoRng;

use super::store::{LicenseStore, ProductKey};
use super::{decrypt, encode, error_alert, mac_valid, seal, MachineError};
use crate::crypto::{self, LicensingPublicKey, PublicKeyCache, SessionKeys};
use crate::wire::{
    Ascii, BlobType, CertificateChain, ClientHardwareId, ClientLicenseInfo,
    ClientNewLicenseRequest, ClientPlatformChallengeResponse, ClientType, ErrorCode,
    LicenseBinaryBlob, LicenseDetailLevel, LicensingErrorMessage, LicensingMessage, LicensingPdu,
    NewLicenseInfo, PlatformChallengeResponseData, PreambleFlags, ServerCertificate,
    ServerLicenseRequest, StateTransition, Wire, KEY_EXCHANGE_ALG_RSA,
};

/// Who the client is and how it answers.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// xfreerdp sends 0x83 (version 3, EXTENDED_ERROR_MSG_SUPPORTED).
    pub preamble_flags: PreambleFlags,
    /// xfreerdp: 0x04010000.
    pub platform_id: u32,
    pub hwid: ClientHardwareId,
    pub user_name: String,
    pub machine_name: String,
    pub client_type: ClientType,
    pub license_detail_level: LicenseDetailLevel,
    /// Reject a proprietary certificate whose Terminal Services signature does not verify.
    pub verify_server_certificate: bool,
    /// The server certificate from the Server Security Data, used when the License Request's
    /// certificate blob is empty (MS-RDPBCGR 2.2.1.4.3).
    pub gcc_server_certificate: Option<Vec<u8>>,
    /// Where the server's public key is looked up before it is built: share one between the
    /// connections of a process that meets the same servers again.
    pub public_keys: Arc<PublicKeyCache>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// Store this CAL under `product` (replacing any earlier one when `upgrade`).
    StoreLicense {
        product: ProductKey,
        license_info: Vec<u8>,
        upgrade: bool,
    },
    /// Licensing ended successfully (after a New/Upgrade License, or STATUS_VALID_CLIENT).
    Licensed,
    /// The server sent a Licensing Error Message.
    ServerError {
        error_code: ErrorCode,
        state_transition: StateTransition,
    },
    /// The client gave up and told the server so.
    Aborted {
        error_code: ErrorCode,
        reason: &'static str,
    },
}

/// What the client knows once it has answered the License Request.
#[derive(Debug)]
struct Session {
    keys: SessionKeys,
    product: ProductKey,
}

#[derive(Debug)]
enum State {
    ExpectLicenseRequest,
    ExpectServerResponse(Box<Session>),
    Finished,
    Poisoned,
}

/// The client licensing state machine.
#[derive(Debug)]
pub struct ClientMachine {
    config: ClientConfig,
    state: State,
    transmit: VecDeque<Vec<u8>>,
    events: VecDeque<ClientEvent>,
    last_sent: Vec<u8>,
}

impl ClientMachine {
    pub fn new(config: ClientConfig) -> Self {
        Self {
            config,
            state: State::ExpectLicenseRequest,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
            last_sent: Vec::new(),
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, State::Finished)
    }

    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmit.pop_front()
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// Consumes one licensing PDU from the server.
    pub fn handle_pdu(
        &mut self,
        bytes: &[u8],
        rng: &mut (impl CryptoRng + ?Sized),
        store: &impl LicenseStore,
    ) -> Result<(), MachineError> {
        match self.state {
            State::Finished => return Err(MachineError::Finished),
            State::Poisoned => return Err(MachineError::Poisoned),
            _ => {}
        }
        let Ok(pdu) = LicensingPdu::decode(bytes) else {
            self.abort(ErrorCode::ERR_NO_LICENSE, "malformed licensing message");
            return Ok(());
        };
        let state = mem::replace(&mut self.state, State::Poisoned);
        self.state = match (state, pdu.message) {
            (state, LicensingMessage::ErrorAlert(alert)) => self.server_error(state, &alert),
            (State::ExpectLicenseRequest, LicensingMessage::LicenseRequest(request)) => {
                self.answer_license_request(&request, rng, store)
            }
            (State::ExpectServerResponse(session), LicensingMessage::PlatformChallenge(m)) => {
                let challenge = decrypt(&session.keys, &m.encrypted_platform_challenge);
                if !mac_valid(&session.keys, &challenge, &m.mac_data) {
                    self.abort(
                        ErrorCode::ERR_INVALID_MAC,
                        "platform challenge MAC does not verify",
                    );
                    return Ok(());
                }
                if self.answer_challenge(&session.keys, &challenge) {
                    State::ExpectServerResponse(session)
                } else {
                    State::Finished
                }
            }
            (State::ExpectServerResponse(session), LicensingMessage::NewLicense(m)) => {
                self.receive_license(*session, &m.encrypted_license_info, &m.mac_data, false)
            }
            (State::ExpectServerResponse(session), LicensingMessage::UpgradeLicense(m)) => {
                self.receive_license(*session, &m.encrypted_license_info, &m.mac_data, true)
            }
            (_, _) => {
                self.abort(
                    ErrorCode::ERR_NO_LICENSE,
                    "message not expected in this state",
                );
                State::Finished
            }
        };
        Ok(())
    }

    /// MS-RDPELE 3.3.5.1.
    fn answer_license_request(
        &mut self,
        request: &ServerLicenseRequest<'_>,
        rng: &mut (impl CryptoRng + ?Sized),
        store: &impl LicenseStore,
    ) -> State {
        let Some(public_key) = self.server_key(request) else {
            self.abort(
                ErrorCode::ERR_INVALID_SERVER_CERTIFICATE,
                "server certificate unusable or not authentic",
            );
            return State::Finished;
        };
        let mut client_random = [0u8; 32];
        let mut premaster = [0u8; 48];
        rng.fill_bytes(&mut client_random);
        rng.fill_bytes(&mut premaster);
        let Ok(encrypted_premaster) = public_key.encrypt_premaster(&premaster) else {
            self.abort(
                ErrorCode::ERR_INVALID_SERVER_CERTIFICATE,
                "server key cannot encrypt the premaster",
            );
            return State::Finished;
        };
        let keys = crypto::derive_session_keys(&premaster, &client_random, &request.server_random);
        let product = ProductKey {
            version: request.product_info.version,
            company_name: request.product_info.company_name.to_string_lossy(),
            product_id: request.product_info.product_id.to_string_lossy(),
            scope: request
                .scope_list
                .scopes
                .iter()
                .next()
                .map(|s| s.name.to_string_lossy().into_owned())
                .unwrap_or_default(),
        };
        let premaster_blob = LicenseBinaryBlob::new(BlobType::BB_RANDOM_BLOB, &encrypted_premaster);
        let message = match store.find(&product) {
            Some(license) => {
                let hwid = self.config.hwid.to_bytes();
                let (encrypted_hwid, mac_data) = seal(&keys, &hwid);
                self.encode_and_send(LicensingMessage::LicenseInfo(ClientLicenseInfo {
                    preferred_key_exchange_alg: KEY_EXCHANGE_ALG_RSA,
                    platform_id: self.config.platform_id,
                    client_random,
                    encrypted_premaster_secret: premaster_blob,
                    license_info: LicenseBinaryBlob::new(BlobType::BB_DATA_BLOB, &license),
                    encrypted_hwid: LicenseBinaryBlob::new(
                        BlobType::BB_ENCRYPTED_DATA_BLOB,
                        &encrypted_hwid,
                    ),
                    mac_data,
                }))
            }
            None => {
                let user = Ascii::encode_nul_terminated(&self.config.user_name);
                let machine = Ascii::encode_nul_terminated(&self.config.machine_name);
                self.encode_and_send(LicensingMessage::NewLicenseRequest(
                    ClientNewLicenseRequest {
                        preferred_key_exchange_alg: KEY_EXCHANGE_ALG_RSA,
                        platform_id: self.config.platform_id,
                        client_random,
                        encrypted_premaster_secret: premaster_blob,
                        client_user_name: LicenseBinaryBlob::new(
                            BlobType::BB_CLIENT_USER_NAME_BLOB,
                            &user,
                        ),
                        client_machine_name: LicenseBinaryBlob::new(
                            BlobType::BB_CLIENT_MACHINE_NAME_BLOB,
                            &machine,
                        ),
                    },
                ))
            }
        };
        if message {
            State::ExpectServerResponse(Box::new(Session { keys, product }))
        } else {
            State::Finished
        }
    }

    /// The key to encrypt the premaster to: the proprietary certificate's (its Terminal
    /// Services signature checked when configured) or the X.509 chain's leaf.
    fn server_key(&self, request: &ServerLicenseRequest<'_>) -> Option<LicensingPublicKey> {
        let from_gcc;
        let certificate = match &request.server_certificate.certificate {
            Some(certificate) => certificate,
            None => {
                from_gcc =
                    ServerCertificate::decode(self.config.gcc_server_certificate.as_deref()?)
                        .ok()?;
                &from_gcc
            }
        };
        match &certificate.chain {
            CertificateChain::Proprietary(cert) => {
                if self.config.verify_server_certificate
                    && !crypto::verify_proprietary_certificate(cert)
                {
                    return None;
                }
                self.config
                    .public_keys
                    .from_proprietary(&cert.public_key)
                    .ok()
            }
            CertificateChain::X509(chain) => self
                .config
                .public_keys
                .from_x509_der(chain.leaf()?.der)
                .ok(),
        }
    }

    /// MS-RDPELE 3.3.5.3: the decrypted challenge echoed in the response data, and the HWID,
    /// each encrypted with a fresh RC4 state, under one MAC over both clear texts. False when
    /// the client had to abort instead.
    fn answer_challenge(&mut self, keys: &SessionKeys, challenge: &[u8]) -> bool {
        let response = PlatformChallengeResponseData {
            version: 0x0100,
            client_type: self.config.client_type,
            license_detail_level: self.config.license_detail_level,
            challenge,
        };
        let Ok(response_plain) = response.to_vec() else {
            self.abort(
                ErrorCode::ERR_NO_LICENSE,
                "platform challenge too long to answer",
            );
            return false;
        };
        let hwid_plain = self.config.hwid.to_bytes();
        let (encrypted_response, _) = seal(keys, &response_plain);
        let (encrypted_hwid, _) = seal(keys, &hwid_plain);
        let mac_data = crypto::mac_data(
            keys.mac_salt_key.expose(),
            &[response_plain.as_slice(), hwid_plain.as_slice()].concat(),
        );
        self.encode_and_send(LicensingMessage::PlatformChallengeResponse(
            ClientPlatformChallengeResponse {
                encrypted_platform_challenge_response: LicenseBinaryBlob::new(
                    BlobType::BB_ENCRYPTED_DATA_BLOB,
                    &encrypted_response,
                ),
                encrypted_hwid: LicenseBinaryBlob::new(
                    BlobType::BB_ENCRYPTED_DATA_BLOB,
                    &encrypted_hwid,
                ),
                mac_data,
            },
        ))
    }

    /// MS-RDPELE 3.3.5.5 / 3.3.5.6.
    fn receive_license(
        &mut self,
        Session { keys, product }: Session,
        encrypted: &LicenseBinaryBlob<'_>,
        mac: &[u8; 16],
        upgrade: bool,
    ) -> State {
        let plain = decrypt(&keys, encrypted);
        if !mac_valid(&keys, &plain, mac) {
            self.abort(ErrorCode::ERR_INVALID_MAC, "license MAC does not verify");
            return State::Finished;
        }
        let Ok(info) = NewLicenseInfo::decode(&plain) else {
            self.abort(ErrorCode::ERR_NO_LICENSE, "malformed NEW_LICENSE_INFO");
            return State::Finished;
        };
        let product = ProductKey {
            version: info.version,
            company_name: info.company_name.to_string_lossy(),
            product_id: info.product_id.to_string_lossy(),
            scope: info.scope.to_string_lossy().into_owned(),
        }
        .with_fallback(product);
        self.events.push_back(ClientEvent::StoreLicense {
            product,
            license_info: info.license_info.to_vec(),
            upgrade,
        });
        self.events.push_back(ClientEvent::Licensed);
        State::Finished
    }

    /// MS-RDPELE 3.1.5.3.
    fn server_error(&mut self, state: State, alert: &LicensingErrorMessage<'_>) -> State {
        self.events.push_back(ClientEvent::ServerError {
            error_code: alert.error_code,
            state_transition: alert.state_transition,
        });
        match (alert.error_code, alert.state_transition) {
            (ErrorCode::STATUS_VALID_CLIENT, _) => {
                self.events.push_back(ClientEvent::Licensed);
                State::Finished
            }
            (_, StateTransition::ST_NO_TRANSITION) => state,
            (_, StateTransition::ST_RESEND_LAST_MESSAGE) => {
                // Nothing sent yet (the alert came before the License Request): nothing to resend.
                if !self.last_sent.is_empty() {
                    self.transmit.push_back(self.last_sent.clone());
                }
                state
            }
            (_, StateTransition::ST_RESET_PHASE_TO_START) => State::ExpectLicenseRequest,
            _ => State::Finished,
        }
    }

    fn abort(&mut self, error_code: ErrorCode, reason: &'static str) {
        let pdu = error_alert(
            self.config.preamble_flags,
            error_code,
            StateTransition::ST_TOTAL_ABORT,
        );
        self.send(pdu);
        self.events
            .push_back(ClientEvent::Aborted { error_code, reason });
        self.state = State::Finished;
    }

    fn encode_and_send(&mut self, message: LicensingMessage<'_>) -> bool {
        match encode(self.config.preamble_flags, message) {
            Some(pdu) => {
                self.send(pdu);
                true
            }
            None => {
                self.abort(ErrorCode::ERR_NO_LICENSE, "message too long to encode");
                false
            }
        }
    }

    fn send(&mut self, pdu: Vec<u8>) {
        self.last_sent.clone_from(&pdu);
        self.transmit.push_back(pdu);
    }
}

impl ProductKey {
    /// NEW_LICENSE_INFO names the product the CAL is for; fields it leaves empty keep the
    /// License Request's values.
    fn with_fallback(self, request: ProductKey) -> Self {
        Self {
            version: if self.version == 0 {
                request.version
            } else {
                self.version
            },
            company_name: if self.company_name.is_empty() {
                request.company_name
            } else {
                self.company_name
            },
            product_id: if self.product_id.is_empty() {
                request.product_id
            } else {
                self.product_id
            },
            scope: if self.scope.is_empty() {
                request.scope
            } else {
                self.scope
            },
        }
    }
}

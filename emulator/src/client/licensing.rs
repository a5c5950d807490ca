//! The licensing phase (MS-RDPBCGR 1.3.1.1 "Licensing", MS-RDPELE 3.3) around
//! [`ClientMachine`]: server licensing PDUs in, the machine's answers out as Send Data
//! Requests, its events carried out (a CAL stored) and summed up as a [`LicensingOutcome`].

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_proto::envelope::SendDataDirection;
use rdpele_proto::machine::{ClientConfig, ClientEvent, ClientMachine};
use rdpele_proto::wire::{ErrorCode, MessageType, StateTransition};
use tokio::io::{AsyncRead, AsyncWrite};

use super::error::{protocol, ClientError};
use super::report::LicensingOutcome;
use super::server_pdu::{classify, Phase, ServerPdu};
use super::store::StoreLicense;
use crate::transport::{self, TransportError, TransportErrorKind};
use crate::transport::{Channels, Framed};

const STAGE: &str = "licensing";

/// How licensing went.
#[derive(Debug)]
pub(super) struct LicensingRun {
    pub outcome: LicensingOutcome,
    pub stored: Option<Vec<u8>>,
    /// A Set Error Info the server sent while licensing.
    pub error_info: Option<u32>,
    /// The server already disconnected (Ultimatum or end of stream).
    pub disconnected: bool,
    /// The server sent a Server Platform Challenge.
    pub challenged: bool,
}

/// What the machine's events added up to so far.
#[derive(Debug, Default)]
struct Events {
    stored: Option<Vec<u8>>,
    upgrade: bool,
    licensed: bool,
    /// The last Licensing Error Message other than STATUS_VALID_CLIENT.
    server_error: Option<(ErrorCode, StateTransition)>,
    aborted: Option<(ErrorCode, &'static str)>,
}

/// Runs licensing to its end: the machine finished, or the server ended the connection.
pub(super) async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    channels: Channels,
    config: ClientConfig,
    store: &mut (impl StoreLicense + Send),
) -> Result<LicensingRun, ClientError> {
    let mut machine = ClientMachine::new(config);
    let mut rng = StdRng::from_rng(&mut rand::rng());
    let mut events = Events::default();
    let mut error_info = None;
    let mut disconnected = false;
    let mut challenged = false;
    while !machine.is_finished() {
        let frame = match framed.read_pdu(STAGE).await {
            Ok(frame) => frame,
            // A server that refused and hung up has said all it will.
            Err(TransportError {
                kind: TransportErrorKind::Closed,
                ..
            }) if events.server_error.is_some() => {
                disconnected = true;
                break;
            }
            Err(error) => return Err(error.into()),
        };
        match classify(STAGE, &frame, Phase::Licensing)? {
            ServerPdu::Licensing(pdu) => {
                challenged |= pdu.first() == Some(&MessageType::PLATFORM_CHALLENGE.0);
                machine
                    .handle_pdu(&pdu, &mut rng, &*store)
                    .map_err(ClientError::Machine)?;
                while let Some(answer) = machine.poll_transmit() {
                    transport::send_licensing(
                        framed,
                        SendDataDirection::Request,
                        channels,
                        &answer,
                    )
                    .await?;
                }
                while let Some(event) = machine.poll_event() {
                    events.apply(event, store)?;
                }
            }
            ServerPdu::ErrorInfo(code) => error_info = Some(code),
            ServerPdu::Disconnect => {
                disconnected = true;
                break;
            }
            ServerPdu::ShareControl(header) => {
                return Err(protocol(
                    STAGE,
                    format!(
                        "{} before licensing ended",
                        header.share_control_pdu.as_short_name()
                    ),
                ))
            }
            ServerPdu::Other => {}
        }
    }
    let outcome = events.outcome().ok_or_else(|| {
        protocol(
            STAGE,
            match error_info {
                Some(code) => {
                    format!("the server disconnected before licensing ended (error info {code:#x})")
                }
                None => "the server disconnected before licensing ended".to_owned(),
            },
        )
    })?;
    Ok(LicensingRun {
        outcome,
        stored: events.stored,
        error_info,
        disconnected,
        challenged,
    })
}

impl Events {
    fn apply(
        &mut self,
        event: ClientEvent,
        store: &mut impl StoreLicense,
    ) -> Result<(), ClientError> {
        match event {
            ClientEvent::StoreLicense {
                product,
                license_info,
                upgrade,
            } => {
                store
                    .store_license(&product, &license_info)
                    .map_err(|e| ClientError::Store(Box::new(e)))?;
                self.stored = Some(license_info);
                self.upgrade = upgrade;
            }
            ClientEvent::Licensed => self.licensed = true,
            ClientEvent::ServerError {
                error_code,
                state_transition,
            } if error_code != ErrorCode::STATUS_VALID_CLIENT => {
                self.server_error = Some((error_code, state_transition));
            }
            ClientEvent::Aborted { error_code, reason } => {
                self.aborted = Some((error_code, reason));
            }
            // STATUS_VALID_CLIENT ends licensing (Licensed follows); other events change
            // nothing the outcome counts.
            _ => {}
        }
        Ok(())
    }

    /// The outcome, once there is one. A Licensing Error Message that did not end licensing
    /// (ST_NO_TRANSITION, ST_RESEND_LAST_MESSAGE) counts only if nothing came after it.
    fn outcome(&self) -> Option<LicensingOutcome> {
        if let Some((error_code, reason)) = self.aborted {
            return Some(LicensingOutcome::Aborted { error_code, reason });
        }
        if self.licensed {
            return Some(match (&self.stored, self.upgrade) {
                (None, _) => LicensingOutcome::Valid,
                (Some(_), false) => LicensingOutcome::New,
                (Some(_), true) => LicensingOutcome::Upgraded,
            });
        }
        self.server_error
            .map(|(error_code, state_transition)| LicensingOutcome::Refused {
                error_code,
                state_transition,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(events: &[ClientEvent]) -> Option<LicensingOutcome> {
        let mut summary = Events::default();
        let mut store = NoStore;
        for event in events {
            summary.apply(event.clone(), &mut store).unwrap();
        }
        summary.outcome()
    }

    #[derive(Debug)]
    struct NoStore;

    impl rdpele_proto::machine::LicenseStore for NoStore {
        fn find(&self, _: &rdpele_proto::machine::ProductKey) -> Option<Vec<u8>> {
            None
        }
    }

    impl StoreLicense for NoStore {
        type Error = std::convert::Infallible;

        fn store_license(
            &mut self,
            _: &rdpele_proto::machine::ProductKey,
            _: &[u8],
        ) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    fn server_error(error_code: ErrorCode, state_transition: StateTransition) -> ClientEvent {
        ClientEvent::ServerError {
            error_code,
            state_transition,
        }
    }

    fn stored(upgrade: bool) -> ClientEvent {
        ClientEvent::StoreLicense {
            product: rdpele_proto::machine::ProductKey {
                version: 0x000A_0000,
                company_name: "Microsoft Corporation".to_owned(),
                product_id: "A02".to_owned(),
                scope: "microsoft.com".to_owned(),
            },
            license_info: vec![0x30],
            upgrade,
        }
    }

    #[test]
    fn status_valid_client_is_valid_not_a_refusal() {
        let events = [
            server_error(
                ErrorCode::STATUS_VALID_CLIENT,
                StateTransition::ST_NO_TRANSITION,
            ),
            ClientEvent::Licensed,
        ];
        assert_eq!(outcome(&events), Some(LicensingOutcome::Valid));
    }

    #[test]
    fn a_stored_license_is_new_or_upgraded() {
        assert_eq!(
            outcome(&[stored(false), ClientEvent::Licensed]),
            Some(LicensingOutcome::New)
        );
        assert_eq!(
            outcome(&[stored(true), ClientEvent::Licensed]),
            Some(LicensingOutcome::Upgraded)
        );
    }

    #[test]
    fn an_error_that_did_not_end_licensing_gives_way_to_what_followed() {
        let events = [
            server_error(
                ErrorCode::ERR_INVALID_MAC,
                StateTransition::ST_RESEND_LAST_MESSAGE,
            ),
            stored(false),
            ClientEvent::Licensed,
        ];
        assert_eq!(outcome(&events), Some(LicensingOutcome::New));
        let refused = [server_error(
            ErrorCode::ERR_NO_LICENSE,
            StateTransition::ST_TOTAL_ABORT,
        )];
        assert_eq!(
            outcome(&refused),
            Some(LicensingOutcome::Refused {
                error_code: ErrorCode::ERR_NO_LICENSE,
                state_transition: StateTransition::ST_TOTAL_ABORT,
            })
        );
    }

    #[test]
    fn an_abort_wins_and_nothing_yet_is_no_outcome() {
        let events = [ClientEvent::Aborted {
            error_code: ErrorCode::ERR_INVALID_MAC,
            reason: "license MAC does not verify",
        }];
        assert_eq!(
            outcome(&events),
            Some(LicensingOutcome::Aborted {
                error_code: ErrorCode::ERR_INVALID_MAC,
                reason: "license MAC does not verify",
            })
        );
        assert_eq!(outcome(&[]), None);
    }
}

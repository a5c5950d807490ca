//! What can stop the emulated client before licensing has an outcome: each error names the
//! stage of the connection sequence it happened in.

use std::net::SocketAddr;
use std::time::Duration;

use rdpele_proto::machine::MachineError;

use crate::transport::{Peer, TransportError, TransportErrorKind};

/// A connection that failed before licensing ended. Once licensing has an outcome, later
/// failures are recorded in the report instead ([`super::Ending::Failed`]), so the outcome is
/// never lost.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("connecting to {address}: {error}")]
    Connect {
        address: SocketAddr,
        error: std::io::Error,
    },
    /// The server closed, went silent, failed or misbehaved at a stage of the sequence, or one
    /// of the client's own PDUs did not encode.
    #[error(transparent)]
    Transport(#[from] TransportError),
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("TLS configuration: {0}")]
    TlsConfig(rustls::Error),
    /// The license store refused the CAL; like xfreerdp, the client gives up on the connection.
    #[error("storing the CAL: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    #[error("licensing: {0}")]
    Machine(MachineError),
}

impl ClientError {
    /// The step of the connection sequence that failed.
    pub fn stage(&self) -> &'static str {
        match self {
            Self::Connect { .. } => "TCP connect",
            Self::Transport(error) => error.stage,
            Self::Tls(_) | Self::TlsConfig(_) => "TLS handshake",
            Self::Store(_) | Self::Machine(_) => "licensing",
        }
    }
}

pub(super) fn protocol(stage: &'static str, detail: impl std::fmt::Display) -> ClientError {
    TransportError::protocol(stage, Peer::Server, detail).into()
}

pub(super) fn encode_error(stage: &'static str, detail: impl std::fmt::Display) -> ClientError {
    TransportError::encode(stage, Peer::Server, detail).into()
}

pub(super) fn timeout(stage: &'static str, timeout: Duration) -> ClientError {
    TransportError::new(stage, Peer::Server, TransportErrorKind::Timeout(timeout)).into()
}

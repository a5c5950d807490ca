//! What can stop the emulated client before licensing has an outcome: each error names the
//! stage of the connection sequence it happened in.

use std::net::SocketAddr;
use std::time::Duration;

use rdpele_proto::machine::MachineError;

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
    #[error("{stage}: nothing from the server for {timeout:?}")]
    Timeout {
        stage: &'static str,
        timeout: Duration,
    },
    #[error("{stage}: the server closed the connection")]
    Closed { stage: &'static str },
    #[error("{stage}: {error}")]
    Io {
        stage: &'static str,
        error: std::io::Error,
    },
    #[error("TLS handshake: {0}")]
    Tls(std::io::Error),
    #[error("TLS configuration: {0}")]
    TlsConfig(rustls::Error),
    /// The server sent something malformed, or not what this stage expects.
    #[error("{stage}: {detail}")]
    Protocol { stage: &'static str, detail: String },
    /// One of the client's own PDUs did not encode (a name or password too long for its field).
    #[error("{stage}: encoding the client's PDU: {detail}")]
    Encode { stage: &'static str, detail: String },
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
            Self::Timeout { stage, .. }
            | Self::Closed { stage }
            | Self::Io { stage, .. }
            | Self::Protocol { stage, .. }
            | Self::Encode { stage, .. } => stage,
            Self::Tls(_) | Self::TlsConfig(_) => "TLS handshake",
            Self::Store(_) | Self::Machine(_) => "licensing",
        }
    }
}

pub(super) fn protocol(stage: &'static str, detail: impl std::fmt::Display) -> ClientError {
    ClientError::Protocol {
        stage,
        detail: detail.to_string(),
    }
}

pub(super) fn encode_error(stage: &'static str, detail: impl std::fmt::Display) -> ClientError {
    ClientError::Encode {
        stage,
        detail: detail.to_string(),
    }
}

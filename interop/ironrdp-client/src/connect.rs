//! Drives IronRDP's connector over TCP + TLS through licensing, capability exchange and connection
//! finalization, then closes the connection.
//!
//! After TLS the steps are the loop of `ironrdp_tokio::connect_finalize` (without CredSSP, which is
//! disabled, and multitransport, which is not offered), written out here so the Platform Challenge
//! Response can be corrected between IronRDP's encoding and the wire (see [`crate::workarounds`]).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use ironrdp_connector::{
    ClientConnector, ClientConnectorState, Config, ConnectionOutcome, ConnectorError,
    ConnectorResult, LicenseExchangeState, custom_err, general_err,
};
use ironrdp_core::WriteBuf;
use ironrdp_tokio::{FramedWrite as _, TokioFramed, Upgraded};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::interceptor::{Interceptor, Settings, SharedWireLog};
use crate::tls;
use crate::workarounds::{self, LicensingKeys};

/// After a failed connection sequence, how long the client keeps reading for the server's Set
/// Error Info and disconnect (rdpele serve sends them right after the Licensing Error Message).
const READ_THE_END_FOR: Duration = Duration::from_secs(2);

/// Where the connection stopped. The messages name the phase that failed; IronRDP's error (in the
/// connection sequence) names its step, e.g. `[LicensingErrorMessage]`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    #[error("tcp connect to {addr}")]
    Tcp { addr: SocketAddr, source: io::Error },
    #[error("x.224 negotiation (connect_begin): {0}")]
    Negotiation(String),
    #[error("server sent {0} bytes before the tls handshake")]
    BytesBeforeTls(usize),
    #[error("tls handshake")]
    Tls(#[source] io::Error),
    #[error("connection sequence: {0}")]
    Finalize(String),
    #[error("server redirected the connection to session {0}, which this client does not follow")]
    Redirected(u32),
}

/// Connects and runs the connection sequence; `Ok` means the active session was reached. What the
/// server said on the way (licensing messages, error codes) goes into `log`.
pub async fn connect(
    addr: SocketAddr,
    config: Config,
    settings: Settings,
    log: SharedWireLog,
) -> Result<(), ConnectError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| ConnectError::Tcp { addr, source })?;
    let client_addr = stream
        .local_addr()
        .map_err(|source| ConnectError::Tcp { addr, source })?;

    let mut framed = TokioFramed::new(stream);
    let mut connector = ClientConnector::new(config, client_addr);
    let should_upgrade = ironrdp_tokio::connect_begin(&mut framed, &mut connector)
        .await
        .map_err(|error| ConnectError::Negotiation(report(&error)))?;

    let (stream, leftover) = framed.into_inner();
    if !leftover.is_empty() {
        return Err(ConnectError::BytesBeforeTls(leftover.len()));
    }
    let server_ip = rustls::pki_types::ServerName::IpAddress(addr.ip().into());
    let tls_stream = tls::upgrade(stream, server_ip)
        .await
        .map_err(ConnectError::Tls)?;
    let upgraded = ironrdp_tokio::mark_as_upgraded(should_upgrade, &mut connector);

    let fix_challenge_response = settings.workarounds.challenge_response_padding;
    let mut framed = TokioFramed::new(Interceptor::new(tls_stream, settings, log.clone()));
    let outcome = match finalize(
        upgraded,
        &mut framed,
        connector,
        fix_challenge_response,
        &log,
    )
    .await
    {
        Ok(outcome) => outcome,
        Err(error) => {
            let (mut stream, _) = framed.into_inner();
            if log.lock().server_error.is_some() {
                read_the_end(&mut stream).await;
            }
            return Err(ConnectError::Finalize(report(&error)));
        }
    };

    if let ConnectionOutcome::Redirected(redirection) = outcome {
        return Err(ConnectError::Redirected(redirection.session_id));
    }

    // The harness only needs to know the active session was reached; send close_notify and leave.
    // A failure here (the server may already have hung up) does not change that outcome.
    let (mut tls_stream, _) = framed.into_inner();
    let _ = tls_stream.shutdown().await;
    Ok(())
}

/// The connection sequence after TLS, as `ironrdp_tokio::connect_finalize` runs it, with the
/// Platform Challenge Response workaround applied to what IronRDP writes.
async fn finalize<S>(
    _: Upgraded,
    framed: &mut TokioFramed<S>,
    mut connector: ClientConnector,
    fix_challenge_response: bool,
    log: &SharedWireLog,
) -> ConnectorResult<ConnectionOutcome>
where
    S: Send + Sync + Unpin + AsyncRead + AsyncWrite,
{
    if connector.should_perform_credssp() {
        return Err(general_err!(
            "credssp was negotiated, but this client disables it"
        ));
    }
    let mut buf = WriteBuf::new();
    loop {
        if connector.should_perform_multitransport() {
            return Err(general_err!(
                "the server asked for multitransport, which this client does not offer"
            ));
        }
        let keys = fix_challenge_response
            .then(|| awaited_platform_challenge_keys(&connector))
            .flatten();
        let written =
            ironrdp_tokio::single_sequence_step_read(framed, &mut connector, &mut buf).await?;
        if written.size().is_some() {
            let encoded = buf.filled();
            let fixed = keys
                .as_ref()
                .and_then(|keys| workarounds::fix_platform_challenge_response(encoded, keys));
            if fixed.is_some() {
                log.lock()
                    .workarounds
                    .push(workarounds::CHALLENGE_RESPONSE_PADDING);
            }
            framed
                .write_all(fixed.as_deref().unwrap_or(encoded))
                .await
                .map_err(|e| custom_err!("write all", e))?;
        }
        if let Some(outcome) = connector.state.take_outcome() {
            return Ok(outcome);
        }
    }
}

/// IronRDP's licensing keys while it awaits the Platform Challenge: its next write is the
/// response.
fn awaited_platform_challenge_keys(connector: &ClientConnector) -> Option<LicensingKeys> {
    let ClientConnectorState::LicensingExchange {
        license_exchange, ..
    } = &connector.state
    else {
        return None;
    };
    let LicenseExchangeState::PlatformChallenge { encryption_data } = &license_exchange.state
    else {
        return None;
    };
    Some(LicensingKeys {
        license_key: encryption_data.license_key.clone(),
        mac_salt_key: encryption_data.mac_salt_key.clone(),
    })
}

/// After the server refused licensing with a Licensing Error Message: reads (and drops) what it
/// still sends, so the interceptor sees its Set Error Info and disconnect, until it has seen them,
/// the stream ends, or [`READ_THE_END_FOR`] passes.
async fn read_the_end<S: AsyncRead + Unpin>(stream: &mut Interceptor<S>) {
    let deadline = tokio::time::Instant::now() + READ_THE_END_FOR;
    let mut buf = [0u8; 4096];
    while !stream.saw_the_end() {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(read)) if read > 0 => {}
            _ => return,
        }
    }
}

/// IronRDP's `Display` omits the source chain; its report includes it (e.g. the licensing error
/// code under a "LicensingErrorMessage" context).
fn report(error: &ConnectorError) -> String {
    error.report().to_string()
}

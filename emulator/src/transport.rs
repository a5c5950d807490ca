//! The one transport the session host and the emulated client share: a byte stream cut into
//! RDP PDUs (TPKT or fast-path, as the first byte says, MS-RDPBCGR 2.2.9.1.2 and 2.2.1.1) with a
//! deadline on every read and write, the MCS channels, licensing PDUs framed onto them, and one
//! error type for a peer that closes, goes silent, fails or misbehaves. Licensing frames are
//! rdpele-proto's envelope; the rest of the connection sequence is ironrdp-pdu's.

use std::borrow::Cow;
use std::time::Duration;

use ironrdp_core::{encode_vec, Encode};
use ironrdp_pdu::mcs;
use ironrdp_pdu::nego::{FailureCode, SecurityProtocol};
use ironrdp_pdu::x224::X224;
use rdpele_proto::envelope::{
    LicensingFrame, McsSendData, RdpSecurityLayer, SecurityFlags, SecurityHeader, SendDataDirection,
};
use rdpele_proto::wire::{LicensingPdu, Wire};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffered bytes never exceed one PDU and a read: TPKT and fast-path lengths stop at 64 KiB.
const MAX_PDU: usize = 0x1_0000;
/// What a read asks for before the PDU's length is known: enough for most licensing and
/// connection PDUs in one go, small enough to hold on an idle connection.
const HEADER_READ: usize = 1024;

/// Who is at the other end of a [`Framed`] stream: the host reads from a client, the client
/// from a server. Named in every error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    Client,
    Server,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Client => "client",
            Self::Server => "server",
        })
    }
}

/// What went wrong moving PDUs, at which step of the connection sequence: the one error the
/// session host and the emulated client share for a closed, silent, failing or misbehaving
/// peer.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {}", Described(self))]
pub struct TransportError {
    pub stage: &'static str,
    pub peer: Peer,
    pub kind: TransportErrorKind,
}

#[derive(Debug)]
#[non_exhaustive]
pub enum TransportErrorKind {
    Closed,
    Timeout(Duration),
    Io(std::io::Error),
    /// The peer sent something malformed, a length the framing cannot stand for, or not what
    /// this stage expects.
    Protocol(String),
    /// One of our own PDUs did not encode (a name too long for its field).
    Encode(String),
}

/// The message of a [`TransportError`] after its stage.
struct Described<'a>(&'a TransportError);

impl std::fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let peer = self.0.peer;
        match &self.0.kind {
            TransportErrorKind::Closed => write!(f, "the {peer} closed the connection"),
            TransportErrorKind::Timeout(timeout) => {
                write!(f, "no data from the {peer} for {timeout:?}")
            }
            TransportErrorKind::Io(error) => write!(f, "{error}"),
            TransportErrorKind::Protocol(detail) => f.write_str(detail),
            TransportErrorKind::Encode(detail) => write!(f, "encoding our own PDU: {detail}"),
        }
    }
}

impl TransportError {
    pub fn new(stage: &'static str, peer: Peer, kind: TransportErrorKind) -> Self {
        Self { stage, peer, kind }
    }

    pub fn protocol(stage: &'static str, peer: Peer, detail: impl std::fmt::Display) -> Self {
        Self::new(
            stage,
            peer,
            TransportErrorKind::Protocol(detail.to_string()),
        )
    }

    pub fn encode(stage: &'static str, peer: Peer, detail: impl std::fmt::Display) -> Self {
        Self::new(stage, peer, TransportErrorKind::Encode(detail.to_string()))
    }
}

/// The MCS channels a connection talks on (MS-RDPBCGR 2.2.1.6 - 2.2.1.9): every Windows host
/// assigns user channel 1002 and announces I/O channel 1003; the client learns both during
/// channel connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channels {
    /// The user channel id from Attach User Confirm (the initiator of every client request).
    pub user_id: u16,
    /// The I/O channel from the Server Network Data.
    pub io_channel: u16,
}

impl Channels {
    /// What the session host assigns and announces, as Windows does.
    pub const HOST: Self = Self {
        user_id: 1002,
        io_channel: LicensingFrame::IO_CHANNEL_ID,
    };
}

/// Sends `pdu` on the I/O channel: an MCS Send Data Request from a client, an Indication from
/// a host (MS-RDPBCGR 2.2.1.11 onwards: Client Info, capability exchange, finalization), with
/// whatever was queued before it.
pub async fn send_io<S: AsyncRead + AsyncWrite + Unpin, T: Encode>(
    framed: &mut Framed<S>,
    stage: &'static str,
    direction: SendDataDirection,
    channels: Channels,
    pdu: &T,
) -> Result<(), TransportError> {
    queue_io(framed, stage, direction, channels, pdu)?;
    framed.flush(stage).await
}

/// [`send_io`] without the write: `pdu` goes out with the next send or before the next read.
pub fn queue_io<S, T: Encode>(
    framed: &mut Framed<S>,
    stage: &'static str,
    direction: SendDataDirection,
    channels: Channels,
    pdu: &T,
) -> Result<(), TransportError> {
    let bytes = encode_vec(pdu).map_err(|e| TransportError::encode(stage, framed.peer, e))?;
    let user_data = match framed.security.as_mut() {
        None => bytes,
        Some(security) => security.user_data(SecurityFlags::default(), &bytes, false),
    };
    queue_send_data(framed, stage, direction, channels, user_data)
}

/// [`queue_io`] for a PDU whose encoding starts with a basic security header (the Client Info,
/// MS-RDPBCGR 2.2.1.11): under Standard RDP Security its data is sealed behind the header's
/// flags; otherwise it goes as encoded.
pub fn queue_io_with_header<S, T: Encode>(
    framed: &mut Framed<S>,
    stage: &'static str,
    direction: SendDataDirection,
    channels: Channels,
    pdu: &T,
) -> Result<(), TransportError> {
    let bytes = encode_vec(pdu).map_err(|e| TransportError::encode(stage, framed.peer, e))?;
    let user_data = match framed.security.as_mut() {
        None => bytes,
        Some(security) => {
            let (header, body) = SecurityHeader::decode_prefix(&bytes)
                .map(|(header, len)| (header, bytes.get(len..).unwrap_or_default()))
                .map_err(|e| TransportError::encode(stage, framed.peer, e))?;
            security.user_data(header.flags, body, false)
        }
    };
    queue_send_data(framed, stage, direction, channels, user_data)
}

/// Queues `user_data` in an MCS Send Data Request (client) or Indication (host) on the I/O
/// channel.
fn queue_send_data<S>(
    framed: &mut Framed<S>,
    stage: &'static str,
    direction: SendDataDirection,
    channels: Channels,
    user_data: Vec<u8>,
) -> Result<(), TransportError> {
    let user_data = Cow::Owned(user_data);
    let (initiator_id, channel_id) = (channels.user_id, channels.io_channel);
    match direction {
        SendDataDirection::Request => {
            let request = mcs::SendDataRequest {
                initiator_id,
                channel_id,
                user_data,
            };
            framed.queue(stage, &X224(request))
        }
        SendDataDirection::Indication => {
            let indication = mcs::SendDataIndication {
                initiator_id,
                channel_id,
                user_data,
            };
            framed.queue(stage, &X224(indication))
        }
    }
}

/// Frames one licensing PDU of a state machine's as it goes on the wire (MS-RDPELE 2.2.2
/// TS_LICENSING_PDU: a Send Data Request from a client, an Indication from a host, on the I/O
/// channel, behind a basic security header flagged SEC_LICENSE_PKT) and sends it, with whatever
/// was queued before it.
pub async fn send_licensing<S: AsyncRead + AsyncWrite + Unpin>(
    framed: &mut Framed<S>,
    direction: SendDataDirection,
    channels: Channels,
    pdu: &[u8],
) -> Result<(), TransportError> {
    queue_licensing(framed, direction, channels, pdu)?;
    framed.flush(LICENSING_STAGE).await
}

/// [`send_licensing`] without the write: the frame goes out with the next send or before the
/// next read. Returns the frame in clear, as it goes over TLS, for a caller that records what
/// it sent; under Standard RDP Security the frame on the wire has the same PDU behind a
/// security header of its own (encrypted when this end encrypts licensing).
pub fn queue_licensing<'a, S>(
    framed: &'a mut Framed<S>,
    direction: SendDataDirection,
    channels: Channels,
    pdu: &[u8],
) -> Result<Cow<'a, [u8]>, TransportError> {
    const STAGE: &str = LICENSING_STAGE;
    let peer = framed.peer;
    let parsed = LicensingPdu::decode(pdu).map_err(|e| TransportError::encode(STAGE, peer, e))?;
    let initiator = channels
        .user_id
        .checked_sub(McsSendData::USER_ID_BASE)
        .ok_or_else(|| {
            TransportError::protocol(STAGE, peer, format!("user channel {}", channels.user_id))
        })?;
    let frame = LicensingFrame::new(direction, initiator, channels.io_channel, parsed);
    let Some(security) = framed.security.as_mut() else {
        return framed
            .queue_with(STAGE, |flight| frame.encode(flight))
            .map(Cow::Borrowed);
    };
    let flags = SecurityFlags::SEC_LICENSE_PKT | security.licensing_flags;
    let user_data = security.user_data(flags, pdu, true);
    queue_send_data(framed, STAGE, direction, channels, user_data)?;
    frame
        .to_vec()
        .map(Cow::Owned)
        .map_err(|e| TransportError::encode(STAGE, peer, e))
}

/// Standard RDP Security in force on a stream (MS-RDPBCGR 5.3), from the Security Exchange
/// on: every Send Data on the I/O channel carries a security header, and what a
/// [`Framed`] hands out or takes in is the PDU as it would be over TLS.
#[derive(Debug)]
pub struct RdpSecurity {
    pub layer: RdpSecurityLayer,
    /// This end encrypts what it sends: a client always, a host from encryption level Client
    /// Compatible up (at Low its PDUs carry a basic security header and go in clear,
    /// MS-RDPBCGR 5.3.2).
    pub encrypt_sent: bool,
    /// This end encrypts its licensing PDUs too: the peer can read them (a client's
    /// SEC_LICENSE_ENCRYPT_SC in its Security Exchange; MS-RDPBCGR 2.2.8.1.1.2.1).
    pub encrypt_licensing: bool,
    /// Flags this end adds to its licensing PDUs' headers: a host's SEC_LICENSE_ENCRYPT_CS,
    /// "capable of processing encrypted licensing packets".
    pub licensing_flags: SecurityFlags,
}

impl RdpSecurity {
    /// The userData of a Send Data carrying `data` behind a header with `flags`: sealed when
    /// this end encrypts such PDUs, a basic header and the data in clear otherwise.
    fn user_data(&mut self, flags: SecurityFlags, data: &[u8], licensing: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(SecurityHeader::LEN + 8 + data.len());
        if self.encrypt_sent && (!licensing || self.encrypt_licensing) {
            self.layer.seal_into(flags, data, &mut out);
        } else {
            out.extend_from_slice(&flags.0.to_le_bytes());
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(data);
        }
        out
    }

    /// A received PDU as it would be over TLS ([`RdpSecurityLayer::open_pdu`]: a Send Data's
    /// userData decrypted and its MAC checked, a basic header kept only where readers expect
    /// one; an encrypted fast-path PDU decrypted).
    fn open(&mut self, pdu: Vec<u8>, from: Peer) -> Result<Vec<u8>, String> {
        let direction = match from {
            Peer::Client => SendDataDirection::Request,
            Peer::Server => SendDataDirection::Indication,
        };
        match self.layer.open_pdu(&pdu, direction) {
            Ok(Cow::Borrowed(_)) => Ok(pdu),
            Ok(Cow::Owned(opened)) => Ok(opened),
            Err(error) => Err(error.to_string()),
        }
    }
}

const LICENSING_STAGE: &str = "licensing";

/// A stream cut into PDUs. Writes go out in flights: PDUs queued one after the other leave in
/// one TLS record and one system call with the send that ends the flight (or before a read
/// that has to wait for the peer, so a queued PDU is never held while waiting for the peer's
/// answer to it). Loopback
/// profiles of `serve_handshake/valid/16` put a sixth of all CPU time under per-PDU socket
/// writes before flights (BENCHMARKS.md, "Decisions off the lock").
pub struct Framed<S> {
    stream: S,
    /// Bytes queued for the next write, and the stage of the first of them (named if the
    /// write fails).
    flight: Vec<u8>,
    flight_stage: &'static str,
    buffer: Vec<u8>,
    timeout: Duration,
    peer: Peer,
    security: Option<RdpSecurity>,
}

impl<S> std::fmt::Debug for Framed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framed")
            .field("buffered", &self.buffer.len())
            .field("queued", &self.flight.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S> Framed<S> {
    /// Standard RDP Security from now on: PDUs read after this are opened, PDUs sent sealed.
    pub fn start_rdp_security(&mut self, security: RdpSecurity) {
        self.security = Some(security);
    }

    /// The Standard RDP Security in force, if any (to switch to salted MACs once both ends
    /// advertised them).
    pub fn rdp_security(&mut self) -> Option<&mut RdpSecurity> {
        self.security.as_mut()
    }

    /// [`Self::send`] without the write: `pdu` goes out with the next send or before the next
    /// read that waits.
    pub fn queue<T: Encode>(&mut self, stage: &'static str, pdu: &T) -> Result<(), TransportError> {
        self.queue_with(stage, |flight| {
            let start = flight.len();
            flight.resize(start + pdu.size(), 0);
            ironrdp_core::encode(pdu, flight.get_mut(start..).unwrap_or_default()).map(drop)
        })?;
        Ok(())
    }

    /// Appends what `encode` writes straight to the flight and returns those bytes; on failure
    /// nothing is queued.
    fn queue_with<E: std::fmt::Display>(
        &mut self,
        stage: &'static str,
        encode: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<&[u8], TransportError> {
        let start = self.flight.len();
        if let Err(error) = encode(&mut self.flight) {
            self.flight.truncate(start);
            return Err(TransportError::encode(stage, self.peer, error));
        }
        if start == 0 {
            self.flight_stage = stage;
        }
        Ok(self.flight.get(start..).unwrap_or_default())
    }

    fn queue_bytes(&mut self, stage: &'static str, bytes: &[u8]) {
        if self.flight.is_empty() {
            self.flight_stage = stage;
        }
        self.flight.extend_from_slice(bytes);
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    pub fn new(stream: S, timeout: Duration, peer: Peer) -> Self {
        Self {
            stream,
            flight: Vec::new(),
            flight_stage: "",
            buffer: Vec::new(),
            timeout,
            peer,
            security: None,
        }
    }

    pub fn peer(&self) -> Peer {
        self.peer
    }

    fn error(&self, stage: &'static str, kind: TransportErrorKind) -> TransportError {
        TransportError::new(stage, self.peer, kind)
    }

    /// Reads one whole PDU within the timeout.
    pub async fn read_pdu(&mut self, stage: &'static str) -> Result<Vec<u8>, TransportError> {
        let deadline = deadline_after(self.timeout);
        let peer = self.peer;
        loop {
            let framing = |detail: String| TransportError::protocol(stage, peer, detail);
            let missing =
                match ironrdp_pdu::find_size(&self.buffer).map_err(|e| framing(e.to_string()))? {
                    Some(info) if info.length == 0 || info.length > MAX_PDU => {
                        return Err(framing(format!("PDU length {}", info.length)));
                    }
                    Some(info) if self.buffer.len() >= info.length => {
                        let rest = self.buffer.split_off(info.length);
                        let pdu = std::mem::replace(&mut self.buffer, rest);
                        return match self.security.as_mut() {
                            None => Ok(pdu),
                            Some(security) => security.open(pdu, peer).map_err(framing),
                        };
                    }
                    Some(info) => info.length - self.buffer.len(),
                    None => HEADER_READ,
                };
            // Nothing whole to hand out: what is queued leaves before the wait, as the peer
            // may be waiting for it. A PDU already received is handed out first, so answers
            // to PDUs that came together leave together.
            if !self.flight.is_empty() {
                self.flush(stage).await?;
            }
            // Room for what the PDU still needs (or for a header), read into the buffer
            // itself: an idle connection holds no more than a header's worth, and each PDU
            // comes out in an allocation of its own size.
            self.buffer.reserve(missing);
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer))
                .await
                .map_err(|_| self.error(stage, TransportErrorKind::Timeout(self.timeout)))?
                .map_err(|e| self.error(stage, TransportErrorKind::Io(e)))?;
            if read == 0 {
                return Err(self.error(stage, TransportErrorKind::Closed));
            }
        }
    }

    /// Sends `bytes` (whole PDUs) behind what is queued.
    pub async fn write_all(
        &mut self,
        stage: &'static str,
        bytes: &[u8],
    ) -> Result<(), TransportError> {
        self.queue_bytes(stage, bytes);
        self.flush(stage).await
    }

    /// Sends a PDU that encodes itself whole (X.224, MCS, or anything wrapped in `X224`) behind
    /// what is queued.
    pub async fn send<T: Encode>(
        &mut self,
        stage: &'static str,
        pdu: &T,
    ) -> Result<(), TransportError> {
        self.queue(stage, pdu)?;
        self.flush(stage).await
    }

    /// Writes what is queued in one go, within the timeout. A failure names the stage of the
    /// first queued PDU; `stage` is for a flight that is empty.
    pub async fn flush(&mut self, stage: &'static str) -> Result<(), TransportError> {
        // Taken, not cleared: an idle connection keeps no write buffer.
        let flight = std::mem::take(&mut self.flight);
        let stage = if flight.is_empty() {
            stage
        } else {
            self.flight_stage
        };
        let (timeout, peer) = (self.timeout, self.peer);
        let write = async {
            self.stream.write_all(&flight).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| TransportError::new(stage, peer, TransportErrorKind::Timeout(timeout)))?
            .map_err(|e| TransportError::new(stage, peer, TransportErrorKind::Io(e)))
    }

    /// Whether bytes beyond the PDUs read so far have arrived (none may precede a TLS
    /// handshake).
    pub fn has_buffered(&self) -> bool {
        !self.buffer.is_empty()
    }

    /// The stream, for a TLS upgrade. Only between flights: anything still queued would be
    /// lost, so it is an error.
    pub fn into_inner(self) -> Result<S, TransportError> {
        if self.flight.is_empty() {
            Ok(self.stream)
        } else {
            Err(TransportError::protocol(
                self.flight_stage,
                self.peer,
                "queued PDUs not sent before the stream changed hands",
            ))
        }
    }

    /// Sends what is queued, then ends the stream (TLS close_notify, then FIN); the peer may be
    /// gone already.
    pub async fn shutdown(&mut self) {
        if !self.flight.is_empty() && self.flush("shutdown").await.is_err() {
            return;
        }
        let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
    }
}

/// The protocols of an X.224 negotiation by their spec names (MS-RDPBCGR 2.2.1.1.1):
/// `PROTOCOL_RDP` (Standard RDP Security) for none, otherwise the flags joined by `|`.
pub fn describe_protocols(protocols: SecurityProtocol) -> String {
    const NAMES: [(SecurityProtocol, &str); 5] = [
        (SecurityProtocol::SSL, "PROTOCOL_SSL"),
        (SecurityProtocol::HYBRID, "PROTOCOL_HYBRID"),
        (SecurityProtocol::RDSTLS, "PROTOCOL_RDSTLS"),
        (SecurityProtocol::HYBRID_EX, "PROTOCOL_HYBRID_EX"),
        (SecurityProtocol::RDSAAD, "PROTOCOL_RDSAAD"),
    ];
    if protocols.is_empty() {
        return "PROTOCOL_RDP".to_owned();
    }
    let mut names: Vec<String> = NAMES
        .iter()
        .filter(|(flag, _)| protocols.contains(*flag))
        .map(|(_, name)| (*name).to_owned())
        .collect();
    let unnamed = protocols.bits() & !NAMES.iter().fold(0, |all, (flag, _)| all | flag.bits());
    if unnamed != 0 {
        names.push(format!("{unnamed:#x}"));
    }
    names.join("|")
}

/// An RDP_NEG_FAILURE code by its spec name (MS-RDPBCGR 2.2.1.2.2) and meaning.
pub fn describe_failure(code: FailureCode) -> String {
    let name = match code {
        FailureCode::SSL_REQUIRED_BY_SERVER => "SSL_REQUIRED_BY_SERVER",
        FailureCode::SSL_NOT_ALLOWED_BY_SERVER => "SSL_NOT_ALLOWED_BY_SERVER",
        FailureCode::SSL_CERT_NOT_ON_SERVER => "SSL_CERT_NOT_ON_SERVER",
        FailureCode::INCONSISTENT_FLAGS => "INCONSISTENT_FLAGS",
        FailureCode::HYBRID_REQUIRED_BY_SERVER => "HYBRID_REQUIRED_BY_SERVER",
        FailureCode::SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER => {
            "SSL_WITH_USER_AUTH_REQUIRED_BY_SERVER"
        }
        _ => return format!("failure code {} ({code})", u32::from(code)),
    };
    format!("{name} ({code})")
}

/// The instant `duration` from now; a duration too long to represent (a library caller's
/// "wait for ever") is thirty years.
pub fn deadline_after(duration: Duration) -> tokio::time::Instant {
    const FOR_EVER: Duration = Duration::from_secs(30 * 365 * 24 * 3600);
    let now = tokio::time::Instant::now();
    now.checked_add(duration).unwrap_or_else(|| now + FOR_EVER)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use ironrdp_core::decode;

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn pdus_come_out_whole_however_the_bytes_arrive() {
        runtime().block_on(async {
            let (mut near, far) = tokio::io::duplex(64);
            let mut framed = Framed::new(far, Duration::from_secs(5), Peer::Server);
            let tpkt = [3u8, 0, 0, 7, 0xAA, 0xBB, 0xCC];
            let fast_path = [0u8, 4, 0x11, 0x22];
            tokio::spawn(async move {
                for chunk in [&tpkt[..2], &tpkt[2..], &fast_path[..]] {
                    near.write_all(chunk).await.unwrap();
                }
                near.shutdown().await.unwrap();
            });
            assert_eq!(framed.read_pdu("test").await.unwrap(), tpkt);
            assert_eq!(framed.read_pdu("test").await.unwrap(), fast_path);
            let end = framed.read_pdu("test").await.unwrap_err();
            assert!(matches!(end.kind, TransportErrorKind::Closed), "{end}");
        });
    }

    #[test]
    fn impossible_lengths_and_silence_are_errors_naming_the_stage() {
        runtime().block_on(async {
            let (mut near, far) = tokio::io::duplex(64);
            let mut framed = Framed::new(far, Duration::from_millis(50), Peer::Client);
            near.write_all(&[3, 0, 0, 0]).await.unwrap();
            let error = framed.read_pdu("MCS Connect Initial").await.unwrap_err();
            assert_eq!(error.stage, "MCS Connect Initial");
            assert!(
                matches!(error.kind, TransportErrorKind::Protocol(_)),
                "{error}"
            );

            let (_near, far) = tokio::io::duplex(64);
            let mut silent = Framed::new(far, Duration::from_millis(50), Peer::Client);
            let error = silent.read_pdu("Client Info").await.unwrap_err();
            assert!(
                matches!(error.kind, TransportErrorKind::Timeout(_)),
                "{error}"
            );
        });
    }

    #[test]
    fn queued_pdus_leave_in_one_write_with_the_next_send_read_or_shutdown() {
        runtime().block_on(async {
            let (near, mut far) = tokio::io::duplex(4096);
            let mut framed = Framed::new(near, Duration::from_secs(5), Peer::Client);
            let one = [3u8, 0, 0, 7, 1, 1, 1];
            let two = [3u8, 0, 0, 8, 2, 2, 2, 2];
            framed.queue_bytes("one", &one);
            framed.queue_bytes("two", &two);
            let mut nothing_yet = [0u8; 16];
            let early = tokio::time::timeout(Duration::from_millis(20), far.read(&mut nothing_yet));
            assert!(
                early.await.is_err(),
                "queued bytes were written before a send"
            );

            let three = [3u8, 0, 0, 7, 3, 3, 3];
            framed.write_all("three", &three).await.unwrap();
            let mut flight = vec![0u8; 64];
            let read = far.read(&mut flight).await.unwrap();
            assert_eq!(flight[..read], [&one[..], &two[..], &three[..]].concat());

            // A queued PDU never waits behind a read of the answer to it.
            framed.queue_bytes("question", &one);
            let (answer, read) = tokio::join!(framed.read_pdu("answer"), async {
                let mut question = [0u8; 7];
                far.read_exact(&mut question).await.unwrap();
                assert_eq!(question, one);
                far.write_all(&two).await.unwrap();
            });
            let () = read;
            assert_eq!(answer.unwrap(), two);

            framed.queue_bytes("goodbye", &two);
            assert_eq!(
                framed.into_inner().unwrap_err().stage,
                "goodbye",
                "a stream handed over with PDUs queued would lose them"
            );
        });
        runtime().block_on(async {
            let (near, mut far) = tokio::io::duplex(4096);
            let mut framed = Framed::new(near, Duration::from_secs(5), Peer::Client);
            framed.queue_bytes("last words", &[3, 0, 0, 4]);
            framed.shutdown().await;
            let mut rest = Vec::new();
            far.read_to_end(&mut rest).await.unwrap();
            assert_eq!(rest, [3, 0, 0, 4]);
        });
    }

    /// A client and a host on one duplex pipe, Standard RDP Security in force at both ends,
    /// the host at `level_encrypts` (Client Compatible and up) or not (Low).
    fn secured_pair(
        host_encrypts: bool,
    ) -> (
        Framed<tokio::io::DuplexStream>,
        Framed<tokio::io::DuplexStream>,
    ) {
        use rdpele_proto::crypto::{derive_rdp_session_keys, EncryptionMethod, Side};
        let keys = derive_rdp_session_keys(&[3; 32], &[4; 32], EncryptionMethod::Bits128);
        let (near, far) = tokio::io::duplex(1 << 16);
        let mut client = Framed::new(near, Duration::from_secs(5), Peer::Server);
        let mut host = Framed::new(far, Duration::from_secs(5), Peer::Client);
        client.start_rdp_security(RdpSecurity {
            layer: RdpSecurityLayer::new(&keys, Side::Client),
            encrypt_sent: true,
            encrypt_licensing: true,
            licensing_flags: SecurityFlags::default(),
        });
        host.start_rdp_security(RdpSecurity {
            layer: RdpSecurityLayer::new(&keys, Side::Server),
            encrypt_sent: host_encrypts,
            encrypt_licensing: host_encrypts,
            licensing_flags: SecurityFlags::SEC_LICENSE_ENCRYPT_CS,
        });
        (client, host)
    }

    /// A PDU of `len` bytes of `fill`, as a share PDU would be encoded.
    struct Raw(Vec<u8>);

    impl Encode for Raw {
        fn encode(
            &self,
            dst: &mut ironrdp_core::WriteCursor<'_>,
        ) -> ironrdp_core::EncodeResult<()> {
            dst.write_slice(&self.0);
            Ok(())
        }
        fn name(&self) -> &'static str {
            "raw"
        }
        fn size(&self) -> usize {
            self.0.len()
        }
    }

    fn user_data(frame: &[u8], from: Peer) -> Vec<u8> {
        match from {
            Peer::Client => decode::<X224<mcs::SendDataRequest<'_>>>(frame)
                .unwrap()
                .0
                .user_data
                .into_owned(),
            Peer::Server => decode::<X224<mcs::SendDataIndication<'_>>>(frame)
                .unwrap()
                .0
                .user_data
                .into_owned(),
        }
    }

    #[test]
    fn under_rdp_security_each_end_reads_what_the_other_sent_as_over_tls_across_key_updates() {
        runtime().block_on(async {
            let (mut client, mut host) = secured_pair(true);
            let channels = Channels::HOST;
            // More than one key's worth of packets each way: the 4,097th is under a new key.
            for round in 0..4200u32 {
                let pdu = Raw(round.to_le_bytes().repeat(3));
                queue_io(
                    &mut client,
                    "share",
                    SendDataDirection::Request,
                    channels,
                    &pdu,
                )
                .unwrap();
                client.flush("share").await.unwrap();
                let read = host.read_pdu("share").await.unwrap();
                assert_eq!(user_data(&read, Peer::Client), pdu.0, "round {round}");

                queue_io(
                    &mut host,
                    "share",
                    SendDataDirection::Indication,
                    channels,
                    &pdu,
                )
                .unwrap();
                host.flush("share").await.unwrap();
                let read = client.read_pdu("share").await.unwrap();
                assert_eq!(user_data(&read, Peer::Server), pdu.0, "round {round}");
            }
            // A licensing PDU keeps its basic header, SEC_ENCRYPT gone, as over TLS.
            // STATUS_VALID_CLIENT, ST_NO_TRANSITION, an empty BB_ERROR_BLOB.
            let alert = [0xFF, 0x03, 0x10, 0x00, 7, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0];
            let sent = queue_licensing(&mut host, SendDataDirection::Indication, channels, &alert)
                .unwrap()
                .into_owned();
            host.flush("licensing").await.unwrap();
            let read = client.read_pdu("licensing").await.unwrap();
            let data = user_data(&read, Peer::Server);
            assert_eq!(
                &data[..2],
                &[0x80, 0x02],
                "SEC_LICENSE_PKT | SEC_LICENSE_ENCRYPT_CS"
            );
            assert_eq!(&data[4..], &alert[..]);
            assert_eq!(user_data(&sent, Peer::Server)[4..], alert[..]);
        });
    }

    #[test]
    fn a_tampered_pdu_is_a_protocol_error_naming_the_mac_and_a_low_level_host_sends_in_clear() {
        runtime().block_on(async {
            let (mut client, mut host) = secured_pair(false);
            let channels = Channels::HOST;
            queue_io(
                &mut host,
                "share",
                SendDataDirection::Indication,
                channels,
                &Raw(vec![7; 9]),
            )
            .unwrap();
            host.flush("share").await.unwrap();
            // Read raw: a basic header with no flags, then the data in clear (MS-RDPBCGR 5.3.2).
            let raw = client.read_pdu("share").await.unwrap();
            assert_eq!(user_data(&raw, Peer::Server), vec![7; 9]);

            let (mut near, far) = tokio::io::duplex(4096);
            let (_, mut host) = secured_pair(true);
            host.stream = far;
            let mut sealed = Vec::new();
            let keys = rdpele_proto::crypto::derive_rdp_session_keys(
                &[3; 32],
                &[4; 32],
                rdpele_proto::crypto::EncryptionMethod::Bits128,
            );
            RdpSecurityLayer::new(&keys, rdpele_proto::crypto::Side::Client).seal_into(
                SecurityFlags::SEC_INFO_PKT,
                b"client info",
                &mut sealed,
            );
            sealed[13] ^= 0x01;
            let frame = encode_vec(&X224(mcs::SendDataRequest {
                initiator_id: 1002,
                channel_id: 1003,
                user_data: Cow::Owned(sealed),
            }))
            .unwrap();
            near.write_all(&frame).await.unwrap();
            let error = host.read_pdu("Client Info").await.unwrap_err();
            assert_eq!(error.stage, "Client Info");
            assert!(error.to_string().contains("MAC does not verify"), "{error}");
        });
    }
}

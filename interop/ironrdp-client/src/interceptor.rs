//! A stream between IronRDP and TLS that sees every post-TLS frame in both directions: it notes
//! what the server said in licensing (and in a Set Error Info), optionally damages the client's
//! licensing PDUs (`--mutate-licensing`), and applies the proprietary-certificate workaround
//! (see [`crate::workarounds`]).
//!
//! Frames are cut with `ironrdp_pdu::find_size`. Outgoing, each write from IronRDP is a whole
//! number of frames (its `Framed` writes one encoded buffer and flushes), so each write is cut on
//! its own; bytes that do not make a frame pass unchanged. Incoming, bytes are held until a frame
//! is complete, then handed to IronRDP; bytes that cannot be framed pass unchanged.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::licensing::{self, ErrorAlert, message_type_label};
use crate::mutation::{MutationRecord, Mutator};
use crate::set_error_info;
use crate::slow_path::{self, Direction};
use crate::workarounds::{self, Workarounds};

/// The largest read from the inner stream at once.
const READ_CHUNK: usize = 16 * 1024;

/// What the interceptor saw and did during one connection.
#[derive(Debug, Default, Clone)]
pub struct WireLog {
    /// bMsgType of each licensing PDU the server sent, in order.
    pub server_licensing: Vec<String>,
    /// The last Licensing Error Message other than STATUS_VALID_CLIENT.
    pub server_error: Option<ErrorAlert>,
    /// The errorInfo of a Set Error Info PDU.
    pub error_info: Option<u32>,
    /// The server sent an MCS Disconnect Provider Ultimatum.
    pub disconnected: bool,
    /// Licensing PDUs the client sent damaged.
    pub mutations: Vec<MutationRecord>,
    /// Workarounds for IronRDP bugs that changed a PDU.
    pub workarounds: Vec<&'static str>,
}

/// [`WireLog`] shared between the stream (inside IronRDP's `Framed`) and the report.
#[derive(Debug, Clone, Default)]
pub struct SharedWireLog(Arc<Mutex<WireLog>>);

impl SharedWireLog {
    /// A panic while holding the lock cannot leave the log inconsistent (each update is one
    /// assignment or push), so a poisoned lock is still read.
    pub fn lock(&self) -> MutexGuard<'_, WireLog> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> WireLog {
        self.lock().clone()
    }
}

/// What the interceptor does to frames.
#[derive(Debug)]
pub struct Settings {
    pub mutator: Option<Mutator>,
    /// Which [`crate::workarounds`] for IronRDP's licensing bugs to apply.
    pub workarounds: Workarounds,
}

pub struct Interceptor<S> {
    inner: S,
    settings: Settings,
    log: SharedWireLog,
    /// Outgoing bytes, already processed, that the inner stream has not taken yet.
    to_send: Vec<u8>,
    sent: usize,
    /// Incoming bytes not yet a whole frame.
    incoming: Vec<u8>,
    /// Incoming frames, processed, that IronRDP has not read yet.
    to_deliver: Vec<u8>,
    delivered: usize,
    eof: bool,
    /// The length of the server's licensing RSA modulus, once its License Request was seen.
    modulus_len: Option<usize>,
}

impl<S> std::fmt::Debug for Interceptor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interceptor")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<S> Interceptor<S> {
    pub fn new(inner: S, settings: Settings, log: SharedWireLog) -> Self {
        Self {
            inner,
            settings,
            log,
            to_send: Vec::new(),
            sent: 0,
            incoming: Vec::new(),
            to_deliver: Vec::new(),
            delivered: 0,
            eof: false,
            modulus_len: None,
        }
    }

    /// Whether the log holds what a refused client waits for: the Set Error Info or the
    /// disconnect.
    pub fn saw_the_end(&self) -> bool {
        let log = self.log.lock();
        log.error_info.is_some() || log.disconnected
    }

    /// Processes one write from IronRDP into `to_send`.
    fn outgoing(&mut self, mut bytes: &[u8]) {
        while let Some(len) = frame_len(bytes) {
            let (frame, rest) = bytes.split_at(len);
            bytes = rest;
            let is_licensing = slow_path::parse_send_data(frame).is_some_and(|send| {
                send.direction == Direction::Request && send.is_licensing(frame)
            });
            if !is_licensing {
                self.to_send.extend_from_slice(frame);
                continue;
            }
            let fixed = match self.modulus_len {
                Some(modulus_len) if self.settings.workarounds.premaster_length => {
                    workarounds::fix_premaster_length(frame, modulus_len)
                }
                _ => None,
            };
            if fixed.is_some() {
                self.log
                    .lock()
                    .workarounds
                    .push(workarounds::PREMASTER_LENGTH);
            }
            let frame = fixed.as_deref().unwrap_or(frame);
            match (
                &mut self.settings.mutator,
                slow_path::parse_send_data(frame),
            ) {
                (Some(mutator), Some(send)) => {
                    let (damaged, record) = mutator.mutate(frame, &send);
                    self.to_send.extend_from_slice(&damaged);
                    self.log.lock().mutations.push(record);
                }
                _ => self.to_send.extend_from_slice(frame),
            }
        }
        self.to_send.extend_from_slice(bytes);
    }

    /// Moves whole frames from `incoming` to `to_deliver`, noting and fixing what they carry.
    fn frame_incoming(&mut self) {
        loop {
            match ironrdp_pdu::find_size(&self.incoming) {
                Ok(Some(info)) if info.length > 0 && info.length <= self.incoming.len() => {
                    let rest = self.incoming.split_off(info.length);
                    let mut frame = std::mem::replace(&mut self.incoming, rest);
                    self.incoming_frame(&mut frame);
                    self.to_deliver.extend_from_slice(&frame);
                }
                Ok(Some(_)) | Ok(None) => return,
                Err(_) => {
                    // Not a frame IronRDP could read either: let it see the bytes and fail.
                    let bytes = std::mem::take(&mut self.incoming);
                    self.to_deliver.extend_from_slice(&bytes);
                    return;
                }
            }
        }
    }

    fn incoming_frame(&mut self, frame: &mut [u8]) {
        if slow_path::is_disconnect_provider_ultimatum(frame) {
            self.log.lock().disconnected = true;
            return;
        }
        let Some(send) = slow_path::parse_send_data(frame) else {
            return;
        };
        if send.direction != Direction::Indication {
            return;
        }
        if !send.is_licensing(frame) {
            if let Some(code) = frame
                .get(send.user_data.clone())
                .and_then(set_error_info::error_info)
            {
                self.log.lock().error_info = Some(code);
            }
            return;
        }
        let fix = self.settings.workarounds.proprietary_key;
        let Some(pdu) = frame.get_mut(send.licensing_pdu()) else {
            return;
        };
        if let Some(modulus_len) = workarounds::server_modulus_len(pdu) {
            tracing::debug!(modulus_len, "server licensing key");
            self.modulus_len = Some(modulus_len);
        }
        let mut log = self.log.lock();
        if let Some(&message_type) = pdu.first() {
            log.server_licensing.push(message_type_label(message_type));
        }
        if let Some(alert) = licensing::error_alert(pdu)
            && alert.error_code != STATUS_VALID_CLIENT
        {
            log.server_error = Some(alert);
        }
        if fix && workarounds::fix_proprietary_key_byte_order(pdu) {
            log.workarounds.push(workarounds::PROPRIETARY_KEY);
        }
    }
}

const STATUS_VALID_CLIENT: u32 = 0x07;

/// The length of the whole frame at the start of `bytes`, if it is all there.
fn frame_len(bytes: &[u8]) -> Option<usize> {
    match ironrdp_pdu::find_size(bytes) {
        Ok(Some(info)) if info.length > 0 && info.length <= bytes.len() => Some(info.length),
        _ => None,
    }
}

impl<S: AsyncWrite + Unpin> Interceptor<S> {
    /// Pushes `to_send` into the inner stream; ready once it is all taken.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(pending) = self.to_send.get(self.sent..).filter(|p| !p.is_empty()) {
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if written == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += written;
        }
        self.to_send.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Interceptor<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if let Some(ready) = this
                .to_deliver
                .get(this.delivered..)
                .filter(|r| !r.is_empty())
            {
                let len = ready.len().min(buf.remaining());
                buf.put_slice(ready.get(..len).unwrap_or_default());
                this.delivered += len;
                if this.delivered == this.to_deliver.len() {
                    this.to_deliver.clear();
                    this.delivered = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                if this.incoming.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                // A frame cut short by the end of the stream: IronRDP reports it.
                this.to_deliver = std::mem::take(&mut this.incoming);
                continue;
            }
            let mut chunk = [0u8; READ_CHUNK];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                this.eof = true;
                continue;
            }
            this.incoming.extend_from_slice(chunk_buf.filled());
            this.frame_incoming();
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Interceptor<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        this.outgoing(buf);
        // The bytes are taken; what the inner stream cannot take now goes with the next poll.
        if let Poll::Ready(Err(error)) = this.poll_send(cx) {
            return Poll::Ready(Err(error));
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    fn licensing_frame(direction: Direction, pdu: &[u8]) -> Vec<u8> {
        let user_data = [&[0x80, 0, 0, 0][..], pdu].concat();
        slow_path::build_send_data(direction, 1, 1003, &user_data).unwrap()
    }

    #[tokio::test]
    async fn frames_pass_unchanged_without_a_mutator() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let log = SharedWireLog::default();
        let settings = Settings {
            mutator: None,
            workarounds: Workarounds::default(),
        };
        let mut stream = Interceptor::new(client, settings, log.clone());
        let request = licensing_frame(Direction::Request, &[0x13, 3, 8, 0, 1, 2, 3, 4]);
        let join = [3, 0, 0, 12, 2, 0xF0, 0x80, 0x38, 0, 1, 0x03, 0xEB];
        stream
            .write_all(&[request.clone(), join.to_vec()].concat())
            .await
            .unwrap();
        stream.flush().await.unwrap();
        let mut received = vec![0; request.len() + join.len()];
        server.read_exact(&mut received).await.unwrap();
        assert_eq!(received, [request, join.to_vec()].concat());
        assert!(log.snapshot().mutations.is_empty());
    }

    #[tokio::test]
    async fn licensing_requests_are_damaged_and_error_alerts_noted() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let log = SharedWireLog::default();
        let settings = Settings {
            mutator: Some(Mutator::new(0)),
            workarounds: Workarounds::default(),
        };
        let mut stream = Interceptor::new(client, settings, log.clone());
        let request = licensing_frame(Direction::Request, &[0x13, 3, 8, 0, 1, 2, 3, 4]);
        stream.write_all(&request).await.unwrap();
        stream.flush().await.unwrap();
        let mut received = vec![0; 64];
        let len = server.read(&mut received).await.unwrap();
        assert_ne!(&received[..len], &request[..]);
        assert_eq!(log.snapshot().mutations.len(), 1);

        // The server's answer arrives in two pieces; IronRDP gets it whole and unchanged.
        let alert = licensing_frame(
            Direction::Indication,
            &[0xFF, 3, 16, 0, 0x0C, 0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0],
        );
        let (head, tail) = alert.split_at(9);
        server.write_all(head).await.unwrap();
        server.flush().await.unwrap();
        tokio::task::yield_now().await;
        server.write_all(tail).await.unwrap();
        drop(server);
        let mut delivered = Vec::new();
        stream.read_to_end(&mut delivered).await.unwrap();
        assert_eq!(delivered, alert);
        let seen = log.snapshot();
        assert_eq!(seen.server_licensing, ["ERROR_ALERT"]);
        assert_eq!(seen.server_error.unwrap().error_code, 0x0C);
    }
}

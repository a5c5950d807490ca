//! A byte stream cut into RDP PDUs (TPKT or fast-path, as the first byte says, MS-RDPBCGR
//! 2.2.9.1.2 and 2.2.1.1), with a deadline on every read and write: what the session host and
//! the emulated client both read and write through.

use std::time::Duration;

use ironrdp_core::{encode_vec, Encode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Buffered bytes never exceed one PDU and a read: TPKT and fast-path lengths stop at 64 KiB.
const MAX_PDU: usize = 0x1_0000;
/// What a read asks for before the PDU's length is known: enough for most licensing and
/// connection PDUs in one go, small enough to hold on an idle connection.
const HEADER_READ: usize = 1024;

/// What went wrong, at which step of the connection sequence.
#[derive(Debug, thiserror::Error)]
#[error("{stage}: {kind}")]
pub struct FrameError {
    pub stage: &'static str,
    pub kind: FrameErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum FrameErrorKind {
    #[error("the peer closed the connection")]
    Closed,
    #[error("nothing from the peer for {0:?}")]
    Timeout(Duration),
    #[error(transparent)]
    Io(std::io::Error),
    /// A length the framing cannot stand for (zero, over 64 KiB, or an unknown header).
    #[error("{0}")]
    Framing(String),
    /// One of our own PDUs did not encode.
    #[error("encoding: {0}")]
    Encode(String),
}

impl FrameError {
    fn new(stage: &'static str, kind: FrameErrorKind) -> Self {
        Self { stage, kind }
    }
}

pub struct Framed<S> {
    stream: S,
    buffer: Vec<u8>,
    timeout: Duration,
}

impl<S> std::fmt::Debug for Framed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Framed")
            .field("buffered", &self.buffer.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Framed<S> {
    pub fn new(stream: S, timeout: Duration) -> Self {
        Self {
            stream,
            buffer: Vec::new(),
            timeout,
        }
    }

    /// Reads one whole PDU within the timeout.
    pub async fn read_pdu(&mut self, stage: &'static str) -> Result<Vec<u8>, FrameError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            let framing = |detail: String| FrameError::new(stage, FrameErrorKind::Framing(detail));
            let missing =
                match ironrdp_pdu::find_size(&self.buffer).map_err(|e| framing(e.to_string()))? {
                    Some(info) if info.length == 0 || info.length > MAX_PDU => {
                        return Err(framing(format!("PDU length {}", info.length)));
                    }
                    Some(info) if self.buffer.len() >= info.length => {
                        let rest = self.buffer.split_off(info.length);
                        return Ok(std::mem::replace(&mut self.buffer, rest));
                    }
                    Some(info) => info.length - self.buffer.len(),
                    None => HEADER_READ,
                };
            // Room for what the PDU still needs (or for a header), read into the buffer
            // itself: an idle connection holds no more than a header's worth, and each PDU
            // comes out in an allocation of its own size.
            self.buffer.reserve(missing);
            let read = tokio::time::timeout_at(deadline, self.stream.read_buf(&mut self.buffer))
                .await
                .map_err(|_| FrameError::new(stage, FrameErrorKind::Timeout(self.timeout)))?
                .map_err(|e| FrameError::new(stage, FrameErrorKind::Io(e)))?;
            if read == 0 {
                return Err(FrameError::new(stage, FrameErrorKind::Closed));
            }
        }
    }

    pub async fn write_all(&mut self, stage: &'static str, bytes: &[u8]) -> Result<(), FrameError> {
        let write = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(self.timeout, write)
            .await
            .map_err(|_| FrameError::new(stage, FrameErrorKind::Timeout(self.timeout)))?
            .map_err(|e| FrameError::new(stage, FrameErrorKind::Io(e)))
    }

    /// Sends a PDU that encodes itself whole (X.224, MCS, or anything wrapped in `X224`).
    pub async fn send<T: Encode>(
        &mut self,
        stage: &'static str,
        pdu: &T,
    ) -> Result<(), FrameError> {
        let bytes = encode_vec(pdu)
            .map_err(|e| FrameError::new(stage, FrameErrorKind::Encode(e.to_string())))?;
        self.write_all(stage, &bytes).await
    }

    /// Whether bytes beyond the PDUs read so far have arrived (none may precede a TLS
    /// handshake).
    pub fn has_buffered(&self) -> bool {
        !self.buffer.is_empty()
    }

    pub fn into_inner(self) -> S {
        self.stream
    }

    /// Ends the stream (TLS close_notify, then FIN); the peer may be gone already.
    pub async fn shutdown(&mut self) {
        let _ = tokio::time::timeout(self.timeout, self.stream.shutdown()).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

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
            let mut framed = Framed::new(far, Duration::from_secs(5));
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
            assert!(matches!(end.kind, FrameErrorKind::Closed), "{end}");
        });
    }

    #[test]
    fn impossible_lengths_and_silence_are_errors_naming_the_stage() {
        runtime().block_on(async {
            let (mut near, far) = tokio::io::duplex(64);
            let mut framed = Framed::new(far, Duration::from_millis(50));
            near.write_all(&[3, 0, 0, 0]).await.unwrap();
            let error = framed.read_pdu("MCS Connect Initial").await.unwrap_err();
            assert_eq!(error.stage, "MCS Connect Initial");
            assert!(matches!(error.kind, FrameErrorKind::Framing(_)), "{error}");

            let (_near, far) = tokio::io::duplex(64);
            let mut silent = Framed::new(far, Duration::from_millis(50));
            let error = silent.read_pdu("Client Info").await.unwrap_err();
            assert!(matches!(error.kind, FrameErrorKind::Timeout(_)), "{error}");
        });
    }
}

//! `rdpele serve --pcap FILE`: every connection's bytes as they crossed the wire, written as a
//! libpcap capture (pcap-parser's writer, Ethernet/IPv4-or-IPv6/TCP packets built with
//! etherparse) that `tshark -r`, Wireshark and `rdpele decode` open. Under Standard RDP
//! Security that is where licensing can be read: `rdpele decode --server-key` decrypts it.
//!
//! Each connection gets a synthetic TCP handshake, its data in order (one segment per read or
//! write, cut to fit an IP packet), and a FIN each way when it ends; sequence numbers follow the
//! bytes, so a reader reassembles the streams.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use etherparse::PacketBuilder;
use pcap_parser::{LegacyPcapBlock, Linktype, PcapHeader, ToVec};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The most payload one synthetic segment carries: an IPv6 packet's 65,535 bytes, less room for
/// its headers.
const MAX_SEGMENT: usize = 65_000;

/// Why the capture file could not be written.
#[derive(Debug, thiserror::Error)]
#[error("pcap capture {path}: {source}")]
pub struct PcapError {
    path: String,
    source: std::io::Error,
}

/// The capture file every connection of a host writes to, one packet at a time.
#[derive(Debug)]
pub struct PcapFile {
    out: Mutex<std::io::BufWriter<std::fs::File>>,
    path: String,
}

impl PcapFile {
    /// Creates (or truncates) `path` with a libpcap header for Ethernet frames.
    pub fn create(path: &Path) -> Result<Arc<Self>, PcapError> {
        let error = |source| PcapError {
            path: path.display().to_string(),
            source,
        };
        let mut header = PcapHeader::new();
        header.network = Linktype::ETHERNET;
        let bytes = header
            .to_vec()
            .map_err(|e| error(std::io::Error::other(e.to_string())))?;
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(error)?);
        out.write_all(&bytes).map_err(error)?;
        out.flush().map_err(error)?;
        Ok(Arc::new(Self {
            out: Mutex::new(out),
            path: path.display().to_string(),
        }))
    }

    /// Appends one frame, flushed, so a reader sees each connection as it goes.
    fn write_frame(&self, frame: &[u8]) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let len = u32::try_from(frame.len()).unwrap_or(u32::MAX);
        let mut block = LegacyPcapBlock {
            ts_sec: u32::try_from(now.as_secs()).unwrap_or(u32::MAX),
            ts_usec: now.subsec_micros(),
            caplen: len,
            origlen: len,
            data: frame,
        };
        let Ok(bytes) = block.to_vec() else {
            return;
        };
        let mut out = self
            .out
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
            tracing::warn!(path = %self.path, "could not write to the pcap capture");
        }
    }
}

/// One connection's two directions in a [`PcapFile`]: addresses and next sequence numbers.
#[derive(Debug)]
struct Flow {
    file: Arc<PcapFile>,
    client: SocketAddr,
    host: SocketAddr,
    /// The next sequence number of the client's bytes and of the host's.
    client_seq: u32,
    host_seq: u32,
    closed: bool,
}

/// Which way a segment goes.
#[derive(Clone, Copy)]
enum Direction {
    ToHost,
    ToClient,
}

impl Flow {
    fn new(file: Arc<PcapFile>, client: SocketAddr, host: SocketAddr) -> Self {
        let mut flow = Self {
            file,
            client,
            host,
            client_seq: 1_000,
            host_seq: 5_000,
            closed: false,
        };
        flow.segment(Direction::ToHost, Flags::SYN, &[]);
        flow.segment(Direction::ToClient, Flags::SYN_ACK, &[]);
        flow.segment(Direction::ToHost, Flags::ACK, &[]);
        flow
    }

    fn data(&mut self, direction: Direction, bytes: &[u8]) {
        for chunk in bytes.chunks(MAX_SEGMENT) {
            self.segment(direction, Flags::PSH_ACK, chunk);
        }
    }

    fn close(&mut self) {
        if !std::mem::replace(&mut self.closed, true) {
            self.segment(Direction::ToClient, Flags::FIN_ACK, &[]);
            self.segment(Direction::ToHost, Flags::FIN_ACK, &[]);
        }
    }

    fn segment(&mut self, direction: Direction, flags: Flags, payload: &[u8]) {
        let (from, to, seq, ack) = match direction {
            Direction::ToHost => (self.client, self.host, self.client_seq, self.host_seq),
            Direction::ToClient => (self.host, self.client, self.host_seq, self.client_seq),
        };
        let Some(frame) = tcp_frame(from, to, seq, ack, flags, payload) else {
            return;
        };
        self.file.write_frame(&frame);
        // SYN and FIN take one sequence number each, data its length.
        let used = u32::try_from(payload.len())
            .unwrap_or(u32::MAX)
            .wrapping_add(u32::from(flags.syn || flags.fin));
        match direction {
            Direction::ToHost => self.client_seq = self.client_seq.wrapping_add(used),
            Direction::ToClient => self.host_seq = self.host_seq.wrapping_add(used),
        }
    }
}

#[derive(Clone, Copy)]
struct Flags {
    syn: bool,
    ack: bool,
    psh: bool,
    fin: bool,
}

impl Flags {
    const SYN: Self = Self {
        syn: true,
        ack: false,
        psh: false,
        fin: false,
    };
    const SYN_ACK: Self = Self {
        syn: true,
        ack: true,
        psh: false,
        fin: false,
    };
    const ACK: Self = Self {
        syn: false,
        ack: true,
        psh: false,
        fin: false,
    };
    const PSH_ACK: Self = Self {
        syn: false,
        ack: true,
        psh: true,
        fin: false,
    };
    const FIN_ACK: Self = Self {
        syn: false,
        ack: true,
        psh: false,
        fin: true,
    };
}

/// An Ethernet frame carrying one TCP segment from `from` to `to`; `None` for a mixed IPv4 /
/// IPv6 pair, which a connection never is.
fn tcp_frame(
    from: SocketAddr,
    to: SocketAddr,
    seq: u32,
    ack: u32,
    flags: Flags,
    payload: &[u8],
) -> Option<Vec<u8>> {
    let ethernet = PacketBuilder::ethernet2([0x02, 0, 0, 0, 0, 1], [0x02, 0, 0, 0, 0, 2]);
    let ip = match (from, to) {
        (SocketAddr::V4(from), SocketAddr::V4(to)) => {
            ethernet.ipv4(from.ip().octets(), to.ip().octets(), 64)
        }
        (SocketAddr::V6(from), SocketAddr::V6(to)) => {
            ethernet.ipv6(from.ip().octets(), to.ip().octets(), 64)
        }
        _ => return None,
    };
    let mut tcp = ip.tcp(from.port(), to.port(), seq, 65_535);
    if flags.syn {
        tcp = tcp.syn();
    }
    if flags.ack {
        tcp = tcp.ack(ack);
    }
    if flags.psh {
        tcp = tcp.psh();
    }
    if flags.fin {
        tcp = tcp.fin();
    }
    let mut frame = Vec::with_capacity(tcp.size(payload.len()));
    tcp.write(&mut frame, payload).ok()?;
    Some(frame)
}

/// A connection's stream that, when the host captures, writes what it reads and writes to the
/// capture as the client's and the host's TCP segments.
#[derive(Debug)]
pub struct Tap<S> {
    inner: S,
    flow: Option<Flow>,
}

impl<S> Tap<S> {
    /// `inner` between `client` and `host`, captured into `file` if there is one.
    pub fn new(
        inner: S,
        file: Option<&Arc<PcapFile>>,
        client: SocketAddr,
        host: SocketAddr,
    ) -> Self {
        Self {
            inner,
            flow: file.map(|file| Flow::new(Arc::clone(file), client, host)),
        }
    }
}

impl<S> Drop for Tap<S> {
    fn drop(&mut self) {
        if let Some(flow) = &mut self.flow {
            flow.close();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let (Poll::Ready(Ok(())), Some(flow)) = (&poll, &mut this.flow) {
            if let Some(read) = buf.filled().get(before..).filter(|read| !read.is_empty()) {
                flow.data(Direction::ToHost, read);
            }
        }
        poll
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        let poll = Pin::new(&mut this.inner).poll_write(cx, data);
        if let (Poll::Ready(Ok(written)), Some(flow)) = (&poll, &mut this.flow) {
            if let Some(sent) = data.get(..*written).filter(|sent| !sent.is_empty()) {
                flow.data(Direction::ToClient, sent);
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use pcap_parser::traits::PcapReaderIterator;
    use pcap_parser::{LegacyPcapReader, PcapBlockOwned};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// What a connection read and wrote comes out of the file as TCP segments in order, with
    /// sequence numbers that count the bytes, between the handshake and the FINs.
    #[test]
    fn a_connections_bytes_are_tcp_segments_in_a_pcap_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("host.pcap");
        let file = PcapFile::create(&path).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let (near, mut far) = tokio::io::duplex(1024);
            let client: SocketAddr = "127.0.0.1:50000".parse().unwrap();
            let host: SocketAddr = "127.0.0.1:3389".parse().unwrap();
            let mut tap = Tap::new(near, Some(&file), client, host);
            far.write_all(b"hello host").await.unwrap();
            let mut read = [0u8; 10];
            tap.read_exact(&mut read).await.unwrap();
            tap.write_all(b"hello client!").await.unwrap();
            drop(tap);
        });

        let bytes = std::fs::read(&path).unwrap();
        let mut reader = LegacyPcapReader::new(65_536, bytes.as_slice()).unwrap();
        let mut segments = Vec::new();
        loop {
            match reader.next() {
                Ok((offset, block)) => {
                    if let PcapBlockOwned::Legacy(packet) = block {
                        let sliced = etherparse::SlicedPacket::from_ethernet(packet.data).unwrap();
                        let Some(etherparse::TransportSlice::Tcp(tcp)) = sliced.transport else {
                            panic!("not TCP");
                        };
                        segments.push((
                            tcp.source_port(),
                            tcp.syn(),
                            tcp.fin(),
                            tcp.sequence_number(),
                            tcp.payload().to_vec(),
                        ));
                    }
                    reader.consume(offset);
                }
                Err(pcap_parser::PcapError::Eof) => break,
                Err(pcap_parser::PcapError::Incomplete(_)) => reader.refill().unwrap(),
                Err(error) => panic!("{error:?}"),
            }
        }
        let summary: Vec<(u16, bool, bool, u32, &[u8])> = segments
            .iter()
            .map(|(port, syn, fin, seq, payload)| (*port, *syn, *fin, *seq, payload.as_slice()))
            .collect();
        assert_eq!(
            summary,
            [
                (50000, true, false, 1000, &b""[..]),
                (3389, true, false, 5000, b""),
                (50000, false, false, 1001, b""),
                (50000, false, false, 1001, b"hello host"),
                (3389, false, false, 5001, b"hello client!"),
                (3389, false, true, 5014, b""),
                (50000, false, true, 1011, b""),
            ]
        );
    }
}

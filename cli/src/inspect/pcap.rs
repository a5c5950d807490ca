//! TCP byte streams out of a pcap or pcapng capture: enough for `rdpele decode` to find the
//! licensing PDUs of an RDP connection that used Standard RDP Security (where licensing is
//! plain text). Reassembly is deliberately simple: per direction, segments are placed by
//! sequence number, duplicates and overlaps are dropped, and a gap that is never filled ends
//! the usable part of that stream (reported, not papered over).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};

use anyhow::{anyhow, bail, Result};
use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use pcap_parser::data::{get_packetdata, PacketData};
use pcap_parser::pcapng::Block;
use pcap_parser::traits::PcapNGPacketBlock;
use pcap_parser::{Linktype, PcapCapture, PcapNGCapture};

/// Segments held back waiting for a gap to fill; beyond this a stream is cut at the gap.
const MAX_PENDING_SEGMENTS: usize = 4096;

/// One direction of a TCP connection, reassembled.
#[derive(Debug)]
pub struct TcpStream {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// True when this direction opened the connection (sent the bare SYN).
    pub opened_connection: bool,
    pub bytes: Vec<u8>,
    /// (stream offset, packet number) of every segment that added bytes, in stream order.
    segments: Vec<(usize, usize)>,
    /// Bytes seen beyond a gap that never filled, so not in `bytes`.
    pub bytes_after_gap: usize,
}

impl TcpStream {
    /// The 1-based packet number that carried the byte at `offset`.
    pub fn packet_at(&self, offset: usize) -> usize {
        let index = self.segments.partition_point(|(start, _)| *start <= offset);
        index
            .checked_sub(1)
            .and_then(|i| self.segments.get(i))
            .map_or(0, |(_, packet)| *packet)
    }
}

/// True if `data` starts with a pcap or pcapng magic number.
pub fn is_capture_file(data: &[u8]) -> bool {
    matches!(
        data.get(..4),
        Some(
            [0xd4, 0xc3, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0xc3, 0xd4]
                | [0x4d, 0x3c, 0xb2, 0xa1]
                | [0xa1, 0xb2, 0x3c, 0x4d]
                | [0x0a, 0x0d, 0x0d, 0x0a]
        )
    )
}

/// Reassembles every TCP stream in a pcap or pcapng file, ordered by their first packet.
pub fn tcp_streams(data: &[u8]) -> Result<Vec<TcpStream>> {
    let mut assembler = Assembler::default();
    if data.starts_with(&[0x0a, 0x0d, 0x0d, 0x0a]) {
        let capture = PcapNGCapture::from_file(data)
            .map_err(|e| anyhow!("pcapng: cannot read the capture: {e:?}"))?;
        let mut number = 0;
        for section in &capture.sections {
            let mut linktypes = Vec::new();
            for block in &section.blocks {
                match block {
                    Block::InterfaceDescription(idb) => linktypes.push(idb.linktype),
                    Block::EnhancedPacket(epb) => {
                        number += 1;
                        let linktype = usize::try_from(epb.if_id)
                            .ok()
                            .and_then(|id| linktypes.get(id))
                            .copied()
                            .ok_or_else(|| {
                                anyhow!(
                                    "pcapng: packet {number} names unknown interface {}",
                                    epb.if_id
                                )
                            })?;
                        assembler.packet(number, linktype, epb.packet_data());
                    }
                    Block::SimplePacket(spb) => {
                        number += 1;
                        let linktype = linktypes.first().copied().unwrap_or(Linktype::ETHERNET);
                        assembler.packet(number, linktype, spb.packet_data());
                    }
                    _ => {}
                }
            }
        }
    } else {
        let capture = PcapCapture::from_file(data)
            .map_err(|e| anyhow!("pcap: cannot read the capture: {e:?}"))?;
        for (index, block) in capture.blocks.iter().enumerate() {
            assembler.packet(index + 1, capture.header.network, block.data);
        }
    }
    if assembler.streams.is_empty() {
        bail!("the capture holds no TCP payload");
    }
    Ok(assembler.finish())
}

#[derive(Default)]
struct Assembler {
    streams: HashMap<(SocketAddr, SocketAddr), Flow>,
}

struct Flow {
    first_packet: usize,
    opened_connection: bool,
    /// Sequence number of stream offset 0, once known.
    base: Option<u32>,
    bytes: Vec<u8>,
    segments: Vec<(usize, usize)>,
    pending: BTreeMap<usize, (usize, Vec<u8>)>,
}

impl Assembler {
    fn packet(&mut self, number: usize, linktype: Linktype, frame: &[u8]) {
        let sliced = match get_packetdata(frame, linktype, frame.len()) {
            Some(PacketData::L2(l2)) => SlicedPacket::from_ethernet(l2),
            Some(PacketData::L3(_, l3)) => SlicedPacket::from_ip(l3),
            _ => return,
        };
        let Ok(packet) = sliced else { return };
        let (src_ip, dst_ip): (IpAddr, IpAddr) = match &packet.net {
            Some(NetSlice::Ipv4(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            Some(NetSlice::Ipv6(ip)) => (
                ip.header().source_addr().into(),
                ip.header().destination_addr().into(),
            ),
            _ => return,
        };
        let Some(TransportSlice::Tcp(tcp)) = &packet.transport else {
            return;
        };
        let src = SocketAddr::new(src_ip, tcp.source_port());
        let dst = SocketAddr::new(dst_ip, tcp.destination_port());
        let flow = self.streams.entry((src, dst)).or_insert_with(|| Flow {
            first_packet: number,
            opened_connection: false,
            base: None,
            bytes: Vec::new(),
            segments: Vec::new(),
            pending: BTreeMap::new(),
        });
        let mut seq = tcp.sequence_number();
        if tcp.syn() {
            flow.opened_connection |= !tcp.ack();
            seq = seq.wrapping_add(1);
            flow.base.get_or_insert(seq);
        }
        let payload = tcp.payload();
        if payload.is_empty() {
            return;
        }
        let base = *flow.base.get_or_insert(seq);
        let Ok(position) = usize::try_from(seq.wrapping_sub(base)) else {
            return;
        };
        flow.add(position, number, payload);
    }

    fn finish(self) -> Vec<TcpStream> {
        let mut streams: Vec<(usize, TcpStream)> = self
            .streams
            .into_iter()
            .filter(|(_, flow)| !flow.bytes.is_empty() || !flow.pending.is_empty())
            .map(|((src, dst), flow)| {
                let bytes_after_gap = flow.pending.values().map(|(_, data)| data.len()).sum();
                (
                    flow.first_packet,
                    TcpStream {
                        src,
                        dst,
                        opened_connection: flow.opened_connection,
                        bytes: flow.bytes,
                        segments: flow.segments,
                        bytes_after_gap,
                    },
                )
            })
            .collect();
        streams.sort_by_key(|(first, _)| *first);
        streams.into_iter().map(|(_, stream)| stream).collect()
    }
}

impl Flow {
    fn add(&mut self, position: usize, number: usize, payload: &[u8]) {
        let end = self.bytes.len();
        if position > end {
            if self.pending.len() < MAX_PENDING_SEGMENTS {
                self.pending.insert(position, (number, payload.to_vec()));
            }
            return;
        }
        let fresh = payload.get(end - position..).unwrap_or_default();
        if !fresh.is_empty() {
            self.segments.push((end, number));
            self.bytes.extend_from_slice(fresh);
        }
        while let Some(entry) = self.pending.first_entry() {
            if *entry.key() > self.bytes.len() {
                break;
            }
            let (position, (number, data)) = entry.remove_entry();
            self.add(position, number, &data);
        }
    }
}

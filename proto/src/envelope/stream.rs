//! A walker over one direction of a reassembled RDP byte stream (a TCP payload as a capture
//! tool saves it), PDU by PDU, that pulls out the licensing PDUs and names what it skips.

use super::fast_path::FastPathPdu;
use super::licensing_frame::LicensingFrame;
use super::mcs::{DomainMcsPdu, McsPduType, McsSendData};
use super::security_header::SecurityFlags;
use super::tpkt::Tpkt;
use super::x224::{TpduCode, X224Data};
use crate::wire::codec::{parse_within, Parse, Wire};
use crate::wire::error::{PResult, ParseError, WireError, WireErrorKind};

/// What one PDU of the stream is.
#[derive(Clone, PartialEq, Eq, Debug)]
#[expect(
    clippy::large_enum_variant,
    reason = "items are yielded one at a time; boxing would make the walk allocate"
)]
pub enum StreamPdu<'a> {
    /// A readable licensing PDU, parsed down to its message.
    Licensing(LicensingFrame<'a>),
    /// A Send Data with SEC_LICENSE_PKT and SEC_ENCRYPT: its userData (security header with a
    /// MAC, then RC4-encrypted licensing PDU) needs the session keys, so it is left unparsed.
    EncryptedLicensing(McsSendData<'a>),
    /// A Send Data without SEC_LICENSE_PKT (Client Info, Demand Active, virtual channels, …).
    SendData(McsSendData<'a>),
    /// Any other MCS PDU carried in an X.224 Data TPDU (Connect-Initial, Attach User, …).
    Mcs(McsPduType),
    /// An X.224 TPDU other than Data (Connection Request or Confirm, Disconnect Request, …).
    X224(TpduCode),
    /// A fast-path PDU, skipped by its own length.
    FastPath(FastPathPdu<'a>),
    /// A TLS handshake record: the rest of the stream is encrypted, so the walk ends here.
    Tls,
}

/// One PDU and where it is in the stream.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StreamItem<'a> {
    /// Byte offset of the PDU's first byte from the start of the stream.
    pub offset: usize,
    /// The PDU's bytes; for [`StreamPdu::Tls`], the rest of the stream.
    pub bytes: &'a [u8],
    pub pdu: StreamPdu<'a>,
}

/// Walks `stream` one PDU at a time. A PDU that does not parse yields an error with its offset
/// in the stream, and the walk ends there: the next PDU's position is unknown after it.
///
/// Licensing PDUs are told apart as receivers do, by SEC_LICENSE_PKT in the first two bytes of
/// a Send Data's userData. With TLS (a stream decrypted from it) few PDUs have a security
/// header: licensing, Client Info, auto-detect and multitransport. The others start with a share
/// control header, and one whose `totalLength` has bit 0x80 set looks like a licensing PDU.
/// Receivers know the connection phase and this walker does not, so walk such a stream only up
/// to the end of licensing.
pub fn walk(stream: &[u8]) -> Walk<'_> {
    Walk {
        stream,
        offset: 0,
        done: false,
    }
}

/// The iterator [`walk`] returns.
#[derive(Clone, Debug)]
pub struct Walk<'a> {
    stream: &'a [u8],
    offset: usize,
    done: bool,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Result<StreamItem<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let rest = self
            .stream
            .get(self.offset..)
            .filter(|rest| !rest.is_empty());
        let Some(rest) = rest else {
            self.done = true;
            return None;
        };
        match next_pdu(rest) {
            Ok((after, pdu)) => {
                let len = rest.len() - after.len();
                self.done = matches!(pdu, StreamPdu::Tls);
                let item = StreamItem {
                    offset: self.offset,
                    bytes: rest.get(..len).unwrap_or(rest),
                    pdu,
                };
                self.offset += len;
                Some(Ok(item))
            }
            Err(err) => {
                self.done = true;
                Some(Err(at_stream_offset(self.stream, err)))
            }
        }
    }
}

impl core::iter::FusedIterator for Walk<'_> {}

/// TLS record content type `handshake`: how a ClientHello or ServerHello starts. Never a PDU's
/// first byte (its low bits would be fast-path action 2, which is reserved).
const TLS_HANDSHAKE: u8 = 0x16;

/// Classifies the PDU at the front of `input` and returns the bytes after it.
fn next_pdu(input: &[u8]) -> PResult<'_, StreamPdu<'_>> {
    match input.first() {
        Some(&TLS_HANDSHAKE) => Ok((&[], StreamPdu::Tls)),
        Some(&first) if FastPathPdu::starts_with(first) => {
            let (rest, pdu) = FastPathPdu::parse(input)?;
            Ok((rest, StreamPdu::FastPath(pdu)))
        }
        _ => {
            let (rest, tpkt) = Tpkt::parse(input)?;
            Ok((rest, classify_packet(tpkt)?))
        }
    }
}

/// Classifies the TPDU a TPKT packet carries, down to the licensing PDU if it is one.
fn classify_packet(tpkt: Tpkt<'_>) -> Result<StreamPdu<'_>, nom::Err<ParseError<'_>>> {
    let (_, code) = TpduCode::parse(tpkt.payload)?;
    if code != TpduCode::DT {
        return Ok(StreamPdu::X224(code));
    }
    let x224 = parse_within(tpkt.payload, X224Data::NAME, X224Data::parse)?;
    match McsPduType::parse(x224.payload)?.1 {
        McsPduType::Domain(
            DomainMcsPdu::SEND_DATA_REQUEST | DomainMcsPdu::SEND_DATA_INDICATION,
        ) => {}
        other => return Ok(StreamPdu::Mcs(other)),
    }
    let send_data = parse_within(x224.payload, McsSendData::NAME, McsSendData::parse)?;
    let flags = SecurityFlags::peek(send_data.user_data).unwrap_or_default();
    if !flags.contains(SecurityFlags::SEC_LICENSE_PKT) {
        return Ok(StreamPdu::SendData(send_data));
    }
    if flags.contains(SecurityFlags::SEC_ENCRYPT) {
        return Ok(StreamPdu::EncryptedLicensing(send_data));
    }
    LicensingFrame::from_layers(tpkt, x224, send_data).map(StreamPdu::Licensing)
}

/// Turns a parse error into one whose offset counts from the start of the stream.
fn at_stream_offset(stream: &[u8], err: nom::Err<ParseError<'_>>) -> WireError {
    match err {
        nom::Err::Error(e) | nom::Err::Failure(e) => e.into_wire_error(stream),
        // The parsers here are all `complete`; this keeps the conversion total all the same.
        nom::Err::Incomplete(_) => WireError {
            structure: Tpkt::NAME,
            field: "(end)",
            offset: stream.len(),
            kind: WireErrorKind::Truncated,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_stream_yields_nothing() {
        assert_eq!(walk(&[]).count(), 0);
    }

    #[test]
    fn stops_after_an_error() {
        let mut walk = walk(&[0x03, 0x00, 0x00, 0x02, 0x03, 0x00, 0x00, 0x04]);
        let err = walk.next().unwrap().unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("TPKT", "length", 2)
        );
        assert!(walk.next().is_none());
        assert!(walk.next().is_none());
    }

    #[test]
    fn tls_ends_the_walk_with_the_rest_of_the_stream() {
        let stream = [0x16, 0x03, 0x01, 0x00, 0x05, 0x03, 0x00, 0x00, 0x04];
        let items: Vec<_> = walk(&stream).collect();
        assert_eq!(
            items,
            [Ok(StreamItem {
                offset: 0,
                bytes: &stream[..],
                pdu: StreamPdu::Tls
            })]
        );
    }

    #[test]
    fn unknown_first_byte_is_a_tpkt_version_error() {
        let err = walk(&[0x00, 0x02, 0x01]).nth(1).unwrap().unwrap_err();
        assert_eq!(
            (err.structure, err.field, err.offset),
            ("TPKT", "version", 2)
        );
    }
}

//! Looking inside captured licensing traffic: framing detection, pcap reassembly, the
//! description `rdpele decode` prints, and decryption when the session keys are known.

pub mod cal_view;
pub mod decrypt;
pub mod describe;
pub mod pcap;
mod rdp_security;
pub mod render;

pub use decrypt::KeyOptions;

use rdpele_proto::crypto::Side;
use rdpele_proto::envelope::{
    self, RdpSecurityLayer, SecuredLicensingPdu, SecurityExchangePdu, SecurityFlags, StreamPdu,
};
use rdpele_proto::wire::{LicensingPdu, MessageType, NewLicenseInfo, Wire, WireError};
use serde_json::{json, Map, Value};

/// How the licensing messages in an input are wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// LICENSE_PREAMBLE and message, nothing around it.
    Bare,
    /// A basic security header (SEC_LICENSE_PKT), then the preamble.
    SecurityHeader,
    /// TPKT frames: X.224 Data, MCS Send Data, security header, licensing PDU.
    Tpkt,
    /// A pcap/pcapng capture of an RDP connection.
    Pcap,
    /// A decrypted NEW_LICENSE_INFO.
    NewLicenseInfo,
}

impl Framing {
    pub fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::SecurityHeader => "security_header",
            Self::Tpkt => "tpkt",
            Self::Pcap => "pcap",
            Self::NewLicenseInfo => "new_license_info",
        }
    }
}

impl std::fmt::Display for Framing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One decoded licensing message.
#[derive(Debug)]
pub struct Message {
    /// The description printed for it (JSON, or rendered as a tree).
    pub document: Value,
    /// Whether re-encoding the parsed value (with its framing) gave back the input bytes.
    pub roundtrip_identical: bool,
    /// The licensing PDU (LICENSE_PREAMBLE onwards), for decryption once the messages are in
    /// order; `None` for a NEW_LICENSE_INFO.
    pub licensing_pdu: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum Outcome {
    Complete,
    /// Decoding stopped here; the messages before it were decoded.
    Malformed(String),
}

#[derive(Debug)]
pub struct Decoded {
    pub messages: Vec<Message>,
    /// Things the reader should know that are not errors (TLS took over, a TCP gap, ...).
    pub notes: Vec<String>,
    pub outcome: Outcome,
}

fn known_message_type(byte: Option<&u8>) -> bool {
    byte.is_some_and(|b| MessageType(*b).name().is_some())
}

fn u16_le_at(data: &[u8], at: usize) -> Option<usize> {
    let bytes = data.get(at..at.checked_add(2)?)?;
    Some(usize::from(u16::from_le_bytes([
        *bytes.first()?,
        *bytes.get(1)?,
    ])))
}

/// Guesses the framing from the first bytes. A preamble whose wMsgSize matches the input
/// length decides between a bare message and one behind a security header (the first byte of
/// an ERROR_ALERT, 0xFF, also looks like security flags with SEC_LICENSE_PKT).
pub fn detect_framing(data: &[u8]) -> Framing {
    if pcap::is_capture_file(data) {
        return Framing::Pcap;
    }
    if data.starts_with(&[0x03, 0x00]) {
        return Framing::Tpkt;
    }
    let bare = known_message_type(data.first()) && u16_le_at(data, 2) == Some(data.len());
    let secured = u16_le_at(data, 0).is_some_and(|flags| flags & 0x0080 != 0)
        && known_message_type(data.get(4))
        && u16_le_at(data, 6).map(|size| size + 4) == Some(data.len());
    match (bare, secured) {
        (true, _) => Framing::Bare,
        (false, true) => Framing::SecurityHeader,
        (false, false) if NewLicenseInfo::decode(data).is_ok() => Framing::NewLicenseInfo,
        (false, false)
            if u16_le_at(data, 0).is_some_and(|flags| flags & 0x0080 != 0)
                && known_message_type(data.get(4)) =>
        {
            Framing::SecurityHeader
        }
        (false, false) => Framing::Bare,
    }
}

/// Decodes every licensing message in `data`, framed as `framing`, and decrypts what `keys`
/// (with what the messages themselves carry) allows.
pub fn decode(data: &[u8], framing: Framing, with_raw: bool, keys: &KeyOptions) -> Decoded {
    let mut decoded = Decoded {
        messages: Vec::new(),
        notes: Vec::new(),
        outcome: Outcome::Complete,
    };
    let context = Context {
        framing,
        with_raw,
        stream: None,
    };
    if framing == Framing::Bare && matches!(data, [0x30, 0x81..=0x84, ..]) {
        decoded.outcome = Outcome::Malformed(
            "the input is DER-encoded (a certificate or a CAL), not a licensing message".into(),
        );
        return decoded;
    }
    match framing {
        Framing::Bare => single(&mut decoded, data, &context, |bytes| {
            LicensingPdu::decode(bytes).map(|pdu| {
                let document = describe::licensing_pdu(&pdu, bytes.len());
                (document, pdu.to_vec().ok(), Some(bytes.to_vec()))
            })
        }),
        Framing::SecurityHeader => single(&mut decoded, data, &context, |bytes| {
            SecuredLicensingPdu::decode(bytes).map(|secured| {
                let mut document = describe::licensing_pdu(&secured.pdu, secured.pdu.encoded_len());
                insert(
                    &mut document,
                    "security_header",
                    describe::security_header(&secured.security),
                );
                (document, secured.to_vec().ok(), secured.pdu.to_vec().ok())
            })
        }),
        Framing::NewLicenseInfo => single(&mut decoded, data, &context, |bytes| {
            NewLicenseInfo::decode(bytes)
                .map(|info| (describe::new_license_info(&info), info.to_vec().ok(), None))
        }),
        Framing::Tpkt => stream(&mut decoded, data, &context, None, None),
        Framing::Pcap => match pcap::tcp_streams(data) {
            Ok(streams) => {
                for (index, tcp) in streams.iter().enumerate() {
                    let mut layer = tcp_layer(&streams, tcp, keys, &mut decoded.notes);
                    if tcp.bytes_after_gap > 0 {
                        decoded.notes.push(format!(
                            "TCP {} -> {}: a gap that never fills; {} byte(s) after it are not decoded",
                            tcp.src, tcp.dst, tcp.bytes_after_gap
                        ));
                    }
                    let context = Context {
                        stream: Some(index),
                        ..context
                    };
                    stream(
                        &mut decoded,
                        &tcp.bytes,
                        &context,
                        Some(tcp),
                        layer.as_mut(),
                    );
                    if matches!(decoded.outcome, Outcome::Malformed(_)) {
                        break;
                    }
                }
                decoded.messages.sort_by_key(|m| {
                    m.document
                        .get("packet")
                        .and_then(Value::as_u64)
                        .unwrap_or_default()
                });
            }
            Err(error) => decoded.outcome = Outcome::Malformed(format!("{error:#}")),
        },
    }
    decrypt::annotate(&mut decoded.messages, keys, &mut decoded.notes);
    decoded
}

#[derive(Debug, Clone, Copy)]
struct Context {
    framing: Framing,
    with_raw: bool,
    stream: Option<usize>,
}

/// A parsed message: its description, its re-encoding with the framing (for the round trip)
/// and the licensing PDU's bytes (for decryption).
type Parsed = (Value, Option<Vec<u8>>, Option<Vec<u8>>);

/// Decodes an input holding exactly one message.
fn single(
    decoded: &mut Decoded,
    data: &[u8],
    context: &Context,
    parse: impl FnOnce(&[u8]) -> Result<Parsed, WireError>,
) {
    match parse(data) {
        Ok(parsed) => decoded.messages.push(finish(parsed, data, 0, context)),
        Err(error) => decoded.outcome = Outcome::Malformed(error.to_string()),
    }
}

/// Adds the framing facts every document carries and checks the round trip.
fn finish(
    (mut document, reencoded, licensing_pdu): Parsed,
    raw: &[u8],
    offset: usize,
    context: &Context,
) -> Message {
    let roundtrip_identical = reencoded.as_deref() == Some(raw);
    if let Value::Object(map) = &mut document {
        let mut ordered = Map::new();
        ordered.insert(
            "message_type".into(),
            map.remove("message_type").unwrap_or(Value::Null),
        );
        ordered.insert("framing".into(), context.framing.name().into());
        ordered.insert("offset".into(), offset.into());
        ordered.insert("length".into(), raw.len().into());
        ordered.append(map);
        if context.with_raw {
            ordered.insert("raw".into(), describe::bytes(raw));
        }
        *map = ordered;
    }
    Message {
        document,
        roundtrip_identical,
        licensing_pdu,
    }
}

fn insert(document: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = document {
        map.insert(key.into(), value);
    }
}

/// The Standard RDP Security layer that opens what `tcp` carries, when its connection used it
/// and a server key decrypts its client random (noted otherwise, once, on the client's
/// direction).
fn tcp_layer(
    streams: &[pcap::TcpStream],
    tcp: &pcap::TcpStream,
    keys: &KeyOptions,
    notes: &mut Vec<String>,
) -> Option<RdpSecurityLayer> {
    let reverse = streams
        .iter()
        .find(|other| other.src == tcp.dst && other.dst == tcp.src)?;
    let (client_to_server, server_to_client, side) = if tcp.opened_connection {
        (tcp, reverse, Side::Server)
    } else {
        (reverse, tcp, Side::Client)
    };
    match rdp_security::session_keys(
        &server_to_client.bytes,
        &client_to_server.bytes,
        &keys.server_keys,
    )? {
        Ok(session) => Some(RdpSecurityLayer::new(&session, side)),
        Err(note) => {
            if tcp.opened_connection {
                notes.push(format!("TCP {} -> {}: {note}", tcp.src, tcp.dst));
            }
            None
        }
    }
}

/// A Send Data's userData opened by Standard RDP Security: a licensing PDU (decrypted when it
/// was encrypted) as its document and bytes; other PDUs move the keystream on and give
/// `None`. A MAC that does not verify is a note.
fn open_send_data(
    layer: &mut RdpSecurityLayer,
    user_data: &[u8],
    offset: usize,
    notes: &mut Vec<String>,
) -> Option<(Value, Vec<u8>)> {
    let opened = match layer.open(user_data) {
        Ok(opened) => opened,
        Err(error) => {
            notes.push(format!("offset {offset}: {error}"));
            return None;
        }
    };
    if !opened.flags.contains(SecurityFlags::SEC_LICENSE_PKT) || !opened.was_encrypted() {
        return None;
    }
    let pdu = match LicensingPdu::decode(&opened.data) {
        Ok(pdu) => pdu,
        Err(error) => {
            notes.push(format!(
                "offset {offset}: a decrypted licensing PDU: {error}"
            ));
            return None;
        }
    };
    let mut document = describe::licensing_pdu(&pdu, pdu.encoded_len());
    insert(
        &mut document,
        "security_header",
        json!({
            "flags": {
                "value": opened.flags.0,
                "name": opened.flags.names().collect::<Vec<_>>().join(" | "),
            },
            "flags_hi": opened.flags_hi,
        }),
    );
    insert(
        &mut document,
        "rdp_security",
        json!({ "decrypted": true, "mac_valid": true }),
    );
    Some((document, opened.data.into_owned()))
}

/// Walks a one-direction RDP byte stream and decodes its licensing frames; with `layer`, the
/// encrypted ones too (every encrypted PDU is opened in order, to keep the keystream in step).
fn stream(
    decoded: &mut Decoded,
    bytes: &[u8],
    context: &Context,
    tcp: Option<&pcap::TcpStream>,
    mut layer: Option<&mut RdpSecurityLayer>,
) {
    for item in envelope::walk(bytes) {
        let item = match item {
            Ok(item) => item,
            Err(error) => {
                let place = tcp
                    .map(|t| format!("TCP {} -> {}: ", t.src, t.dst))
                    .unwrap_or_default();
                decoded.outcome = Outcome::Malformed(format!("{place}{error}"));
                return;
            }
        };
        let (offset, raw) = (item.offset, item.bytes);
        let document = match &item.pdu {
            StreamPdu::Licensing(frame) => {
                let secured = &frame.secured;
                let mut document = describe::licensing_pdu(&secured.pdu, secured.pdu.encoded_len());
                insert(
                    &mut document,
                    "security_header",
                    describe::security_header(&secured.security),
                );
                insert(&mut document, "frame", describe::frame_layers(frame));
                Some((document, frame.to_vec().ok(), secured.pdu.to_vec().ok()))
            }
            StreamPdu::EncryptedLicensing(data) => match layer.as_deref_mut() {
                Some(layer) => open_send_data(layer, data.user_data, offset, &mut decoded.notes)
                    .map(|(document, plain)| (document, Some(plain.clone()), Some(plain))),
                None => {
                    decoded.notes.push(format!(
                        "offset {offset}: an encrypted licensing PDU (SEC_ENCRYPT); its session keys are not known"
                    ));
                    None
                }
            },
            StreamPdu::SendData(data) => {
                if let Some(layer) = layer.as_deref_mut() {
                    if SecurityExchangePdu::decode(data.user_data).is_err() {
                        open_send_data(layer, data.user_data, offset, &mut decoded.notes);
                    }
                }
                None
            }
            StreamPdu::FastPath(pdu) => {
                if let Some(layer) = layer.as_deref_mut() {
                    if let Err(error) = layer.open_fast_path(pdu) {
                        decoded.notes.push(format!("offset {offset}: {error}"));
                    }
                }
                None
            }
            StreamPdu::Tls => {
                decoded.notes.push(format!(
                    "offset {offset}: the connection switches to TLS; licensing inside TLS cannot be decoded from a capture"
                ));
                None
            }
            StreamPdu::Mcs(_) | StreamPdu::X224(_) => None,
        };
        if let Some((mut document, reencoded, licensing_pdu)) = document {
            if let Some(tcp) = tcp {
                insert(&mut document, "packet", tcp.packet_at(offset).into());
                insert(
                    &mut document,
                    "stream",
                    json!({
                        "src": tcp.src.to_string(),
                        "dst": tcp.dst.to_string(),
                        "index": context.stream,
                        "opened_connection": tcp.opened_connection,
                    }),
                );
            }
            decoded.messages.push(finish(
                (document, reencoded, licensing_pdu),
                raw,
                offset,
                context,
            ));
        }
    }
}

//! The envelope on real bytes: the peer captures behind their security header, the same
//! captures framed as each peer frames them, the annotated PDUs of MS-RDPBCGR section 4, and a
//! Windows session decrypted from TLS; then whole streams walked PDU by PDU.

// The fixture helpers (hex dumps, hand framing, the walk checker) fail a test by panicking.
#![allow(clippy::unwrap_used, clippy::panic)]

use rdpele_proto::envelope::*;
use rdpele_proto::wire::{
    EncodeError, ErrorCode, LicensingMessage, MessageType, Wire, WireErrorKind,
};

const XRDP_REQUEST: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_license_request.bin");
const XRDP_ALERT: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_error_alert.bin");
const XF_NLR: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_new_license_request.bin");
const XF_RESPONSE: &[u8] =
    include_bytes!("../../captures/xfreerdp-2.11.7_platform_challenge_response.bin");
const XF_INFO: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_license_info.bin");
const WINDOWS_UPGRADE: &[u8] = include_bytes!("../../captures/server_upgrade_license.bin");

/// Every capture that starts with the basic security header, and the message it holds.
const SECURED_CAPTURES: [(&str, &[u8], MessageType); 6] = [
    (
        "xrdp license request",
        XRDP_REQUEST,
        MessageType::LICENSE_REQUEST,
    ),
    ("xrdp error alert", XRDP_ALERT, MessageType::ERROR_ALERT),
    (
        "xfreerdp new license request",
        XF_NLR,
        MessageType::NEW_LICENSE_REQUEST,
    ),
    (
        "xfreerdp platform challenge response",
        XF_RESPONSE,
        MessageType::PLATFORM_CHALLENGE_RESPONSE,
    ),
    ("xfreerdp license info", XF_INFO, MessageType::LICENSE_INFO),
    (
        "windows upgrade license",
        WINDOWS_UPGRADE,
        MessageType::NEW_LICENSE,
    ),
];

/// MS-RDPBCGR 4.1.1 Client X.224 Connection Request PDU.
const SPEC_CONNECTION_REQUEST: &str = "03 00 00 2c 27 e0 00 00 00 00 00 43 6f 6f 6b 69
    65 3a 20 6d 73 74 73 68 61 73 68 3d 65 6c 74 6f 6e 73 0d 0a 01 00 08 00 00 00 00 00";
/// MS-RDPBCGR 4.1.2 Server X.224 Connection Confirm PDU.
const SPEC_CONNECTION_CONFIRM: &str = "03 00 00 13 0e d0 00 00 12 34 00 02 00 08 00 00 00 00 00";
/// MS-RDPBCGR 4.1.5 Client MCS Erect Domain Request PDU.
const SPEC_ERECT_DOMAIN_REQUEST: &str = "03 00 00 0c 02 f0 80 04 01 00 01 00";
/// MS-RDPBCGR 4.1.7 Server MCS Attach User Confirm PDU.
const SPEC_ATTACH_USER_CONFIRM: &str = "03 00 00 0b 02 f0 80 2e 00 00 06";
/// MS-RDPBCGR 4.1.8.1.2 Server MCS Channel Join Confirm PDU for the user channel (1007).
const SPEC_CHANNEL_JOIN_CONFIRM: &str = "03 00 00 0f 02 f0 80 3e 00 00 06 03 ef 03 ef";
/// MS-RDPBCGR 4.1.8.2.1 Client MCS Channel Join Request PDU for the I/O channel (1003).
const SPEC_CHANNEL_JOIN_REQUEST: &str = "03 00 00 0c 02 f0 80 38 00 06 03 eb";
/// MS-RDPBCGR 4.1.11 Server License Error PDU - Valid Client, sent with RC4 encryption: flags
/// SEC_ENCRYPT | SEC_LICENSE_PKT | SEC_LICENSE_ENCRYPT_CS and a non-FIPS header.
const SPEC_ENCRYPTED_VALID_CLIENT: &str = "03 00 00 2a 02 f0 80 68 00 01 03 eb 70 1c 88 02
    02 03 8d 43 9a ab d5 2a 31 39 62 4d c1 ec 0d 99 88 e6 da ab 2c 02 72 4d 49 90";
/// MS-RDPBCGR 4.2.3 MCS Disconnect Provider Ultimatum PDU.
const SPEC_DISCONNECT_PROVIDER_ULTIMATUM: &str = "03 00 00 09 02 f0 80 21 80";

// A Windows server's side of a TLS session, decrypted by a network monitor and published with
// the annotated dumps in Apache CloudStack's RDP client
// (services/console-proxy-rdp/rdpconsole/src/main/java/rdpclient/rdp/*.java).

/// ServerMCSConnectResponse.java: MCS Connect-Response with the GCC Conference Create Response.
const WINDOWS_CONNECT_RESPONSE: &str = "03 00 00 64 02 F0 80 7F 66 5A 0A 01 00 02 01 00 30 1A
    02 01 22 02 01 03 02 01 00 02 01 01 02 01 00 02 01 01 02 03 00 FF F8 02 01 02 04 36 00 05 00
    14 7C 00 01 2A 14 76 0A 01 01 00 01 C0 00 4D 63 44 6E 20 01 0C 0C 00 04 00 08 00 01 00 00 00
    03 0C 08 00 EB 03 00 00 02 0C 0C 00 00 00 00 00 00 00 00 00";
/// ServerLicenseErrorPDUValidClient.java: STATUS_VALID_CLIENT behind a basic security header
/// with junk flagsHi (0xbcf1).
const WINDOWS_VALID_CLIENT: &str = "03 00 00 22 02 F0 80 68 00 01 03 EB 70 14 80 00 F1 BC FF
    03 10 00 07 00 00 00 02 00 00 00 04 00 00 00";
/// ServerSynchronizePDU.java: a Synchronize PDU, a Send Data with no security header (TLS).
const WINDOWS_SYNCHRONIZE: &str = "03 00 00 24 02 F0 80 68 00 01 03 EB 70 16 16 00 17 00 EA 03
    EA 03 01 00 08 00 16 00 1F 00 00 00 01 00 86 A4";

fn bytes(dump: &str) -> Vec<u8> {
    let hex: String = dump.split_whitespace().collect();
    hex::decode(hex).unwrap()
}

const REQUEST: u8 = 0x64;
const INDICATION: u8 = 0x68;

/// Frames `user_data` by hand, field by field, the way the peers do: TPKT, X.224 Data with EOT,
/// Send Data on channel 1003 with priority high and segmentation begin | end, and the userData
/// length in one byte when it fits unless `long_length` (FreeRDP always writes two bytes).
fn frame(user_data: &[u8], choice: u8, initiator: u16, long_length: bool) -> Vec<u8> {
    let mut mcs = vec![choice];
    mcs.extend(initiator.to_be_bytes());
    mcs.extend(1003u16.to_be_bytes());
    mcs.push(0x70);
    let len = u16::try_from(user_data.len()).unwrap();
    if long_length || len > 0x7f {
        mcs.extend((0x8000 | len).to_be_bytes());
    } else {
        mcs.push(u8::try_from(len).unwrap());
    }
    mcs.extend(user_data);
    let mut out = vec![0x03, 0x00];
    out.extend(u16::try_from(4 + 3 + mcs.len()).unwrap().to_be_bytes());
    out.extend([0x02, 0xf0, 0x80]);
    out.extend(mcs);
    out
}

#[test]
fn peer_captures_parse_as_secured_licensing_pdus_and_encode_byte_exact() {
    for (name, capture, msg_type) in SECURED_CAPTURES {
        let secured =
            SecuredLicensingPdu::decode(capture).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            secured
                .security
                .flags
                .contains(SecurityFlags::SEC_LICENSE_PKT),
            "{name}"
        );
        assert_eq!(secured.pdu.message.message_type(), msg_type, "{name}");
        assert_eq!(secured.encoded_len(), capture.len(), "{name}");
        assert_eq!(secured.to_vec().unwrap(), capture, "{name}");
    }
    let xrdp = SecuredLicensingPdu::decode(XRDP_REQUEST).unwrap();
    assert_eq!(
        xrdp.security.flags_hi, 0x013e,
        "xrdp's junk flagsHi survives"
    );
}

#[test]
fn framed_captures_round_trip_as_licensing_frames_in_every_framing() {
    for (name, capture, _) in SECURED_CAPTURES {
        let secured = SecuredLicensingPdu::decode(capture).unwrap();
        for (choice, direction, initiator) in [
            (REQUEST, SendDataDirection::Request, 6),
            (INDICATION, SendDataDirection::Indication, 1),
        ] {
            for long_length in [false, true] {
                let wire = frame(capture, choice, initiator, long_length);
                let case = format!("{name}, {direction:?}, long_length {long_length}");
                let frame = LicensingFrame::decode(&wire).unwrap_or_else(|e| panic!("{case}: {e}"));
                assert_eq!(frame.direction, direction, "{case}");
                assert_eq!(
                    (frame.initiator, frame.channel_id),
                    (initiator, 1003),
                    "{case}"
                );
                assert_eq!(
                    frame.long_length,
                    long_length || capture.len() > 0x7f,
                    "{case}"
                );
                assert_eq!(frame.secured, secured, "{case}");
                assert_eq!(frame.encoded_len(), wire.len(), "{case}");
                assert_eq!(frame.to_vec().unwrap(), wire, "{case}");
            }
        }
    }
}

#[test]
fn new_frames_encode_as_the_peers_frame_by_hand() {
    for (name, capture, _) in SECURED_CAPTURES {
        let secured = SecuredLicensingPdu::decode(capture).unwrap();
        let mut built = LicensingFrame::new(
            SendDataDirection::Indication,
            1,
            LicensingFrame::IO_CHANNEL_ID,
            secured.pdu,
        );
        // The peers' own flagsHi, which a new frame leaves zero.
        built.secured.security = secured.security;
        assert_eq!(
            built.to_vec().unwrap(),
            frame(capture, INDICATION, 1, false),
            "{name}"
        );
    }
}

#[test]
fn windows_valid_client_from_a_tls_session_round_trips() {
    let wire = bytes(WINDOWS_VALID_CLIENT);
    let frame = LicensingFrame::decode(&wire).unwrap();
    assert_eq!(frame.secured.security.flags_hi, 0xbcf1);
    let LicensingMessage::ErrorAlert(alert) = &frame.secured.pdu.message else {
        panic!("{:?}", frame.secured.pdu.message)
    };
    assert_eq!(alert.error_code, ErrorCode::STATUS_VALID_CLIENT);
    assert_eq!(frame.to_vec().unwrap(), wire);
}

#[test]
fn spec_encrypted_valid_client_is_classified_not_parsed() {
    let wire = bytes(SPEC_ENCRYPTED_VALID_CLIENT);
    let err = LicensingFrame::decode(&wire).unwrap_err();
    assert_eq!(
        (err.structure, err.field, err.offset),
        ("TS_SECURITY_HEADER", "flags", 14)
    );

    let items: Vec<_> = walk(&wire).map(Result::unwrap).collect();
    let [StreamItem {
        offset: 0,
        bytes,
        pdu: StreamPdu::EncryptedLicensing(send_data),
    }] = items.as_slice()
    else {
        panic!("{items:?}")
    };
    assert_eq!(*bytes, wire);
    assert_eq!(send_data.user_id(), Some(1002));
    assert_eq!(send_data.user_data.len(), 28);
    let header = NonFipsSecurityHeader::decode_prefix(send_data.user_data)
        .unwrap()
        .0;
    assert_eq!(
        header.basic.flags,
        SecurityFlags::SEC_ENCRYPT
            | SecurityFlags::SEC_LICENSE_PKT
            | SecurityFlags::SEC_LICENSE_ENCRYPT_CS
    );
    assert_eq!(header.data_signature, wire[18..26]);
}

/// What the walker should report for one PDU of a stream, and the PDU's bytes.
enum Expect {
    Licensing(MessageType),
    EncryptedLicensing,
    SendData,
    Mcs(McsPduType),
    X224(TpduCode),
    FastPath,
}

/// Concatenates the PDUs, walks the stream and checks each item's kind, offset and bytes, and
/// that every licensing frame re-encodes to its bytes.
fn assert_walk(pdus: &[(Expect, Vec<u8>)]) {
    let stream: Vec<u8> = pdus.iter().flat_map(|(_, pdu)| pdu.clone()).collect();
    let items: Vec<_> = walk(&stream).map(Result::unwrap).collect();
    assert_eq!(items.len(), pdus.len());
    let mut offset = 0;
    for (item, (expect, pdu)) in items.iter().zip(pdus) {
        assert_eq!(
            (item.offset, item.bytes),
            (offset, pdu.as_slice()),
            "{:?}",
            item.pdu
        );
        match (&item.pdu, expect) {
            (StreamPdu::Licensing(frame), Expect::Licensing(msg_type)) => {
                assert_eq!(frame.secured.pdu.message.message_type(), *msg_type);
                assert_eq!(frame.to_vec().unwrap(), item.bytes);
            }
            (StreamPdu::EncryptedLicensing(_), Expect::EncryptedLicensing)
            | (StreamPdu::SendData(_), Expect::SendData)
            | (StreamPdu::FastPath(_), Expect::FastPath) => {}
            (StreamPdu::Mcs(found), Expect::Mcs(expected)) => assert_eq!(found, expected),
            (StreamPdu::X224(found), Expect::X224(expected)) => assert_eq!(found, expected),
            (found, _) => panic!("unexpected {found:?} at offset {offset}"),
        }
        offset += pdu.len();
    }
}

#[test]
fn server_stream_walks_to_each_pdu_at_its_offset() {
    assert_walk(&[
        (Expect::X224(TpduCode::CC), bytes(SPEC_CONNECTION_CONFIRM)),
        (
            Expect::Mcs(McsPduType::Connect(ConnectPdu::CONNECT_RESPONSE)),
            bytes(WINDOWS_CONNECT_RESPONSE),
        ),
        (
            Expect::Mcs(McsPduType::Domain(DomainMcsPdu::ATTACH_USER_CONFIRM)),
            bytes(SPEC_ATTACH_USER_CONFIRM),
        ),
        (
            Expect::Mcs(McsPduType::Domain(DomainMcsPdu::CHANNEL_JOIN_CONFIRM)),
            bytes(SPEC_CHANNEL_JOIN_CONFIRM),
        ),
        (
            Expect::Licensing(MessageType::LICENSE_REQUEST),
            frame(XRDP_REQUEST, INDICATION, 1, false),
        ),
        (
            Expect::EncryptedLicensing,
            bytes(SPEC_ENCRYPTED_VALID_CLIENT),
        ),
        (
            Expect::Licensing(MessageType::ERROR_ALERT),
            bytes(WINDOWS_VALID_CLIENT),
        ),
        (Expect::SendData, bytes(WINDOWS_SYNCHRONIZE)),
        // A fast-path Synchronize update (MS-RDPBCGR 2.2.9.1.2.1.3), two-byte length form.
        (Expect::FastPath, vec![0x00, 0x80, 0x06, 0x03, 0x00, 0x00]),
        (
            Expect::Mcs(McsPduType::Domain(
                DomainMcsPdu::DISCONNECT_PROVIDER_ULTIMATUM,
            )),
            bytes(SPEC_DISCONNECT_PROVIDER_ULTIMATUM),
        ),
    ]);
}

#[test]
fn client_stream_walks_to_each_pdu_at_its_offset() {
    assert_walk(&[
        (Expect::X224(TpduCode::CR), bytes(SPEC_CONNECTION_REQUEST)),
        (
            Expect::Mcs(McsPduType::Domain(DomainMcsPdu::ERECT_DOMAIN_REQUEST)),
            bytes(SPEC_ERECT_DOMAIN_REQUEST),
        ),
        (
            Expect::Mcs(McsPduType::Domain(DomainMcsPdu::CHANNEL_JOIN_REQUEST)),
            bytes(SPEC_CHANNEL_JOIN_REQUEST),
        ),
        (
            Expect::Licensing(MessageType::NEW_LICENSE_REQUEST),
            frame(XF_NLR, REQUEST, 6, true),
        ),
        (
            Expect::Licensing(MessageType::PLATFORM_CHALLENGE_RESPONSE),
            frame(XF_RESPONSE, REQUEST, 6, true),
        ),
        // A fast-path input PDU with one scancode event (MS-RDPBCGR 2.2.8.1.2.2.1).
        (Expect::FastPath, vec![0x04, 0x04, 0x00, 0x1d]),
        (
            Expect::Mcs(McsPduType::Domain(
                DomainMcsPdu::DISCONNECT_PROVIDER_ULTIMATUM,
            )),
            bytes(SPEC_DISCONNECT_PROVIDER_ULTIMATUM),
        ),
    ]);
}

#[test]
fn tls_after_the_connection_request_ends_the_walk() {
    let mut stream = bytes(SPEC_CONNECTION_REQUEST);
    let tls_at = stream.len();
    // The start of a TLS 1.0 record holding a ClientHello.
    stream.extend([
        0x16, 0x03, 0x01, 0x00, 0x2f, 0x01, 0x00, 0x00, 0x2b, 0x03, 0x03,
    ]);
    let mut items = walk(&stream);
    let first = items.next().unwrap().unwrap();
    assert_eq!(first.pdu, StreamPdu::X224(TpduCode::CR));
    let tls = items.next().unwrap().unwrap();
    assert_eq!((tls.offset, tls.bytes), (tls_at, &stream[tls_at..]));
    assert_eq!(tls.pdu, StreamPdu::Tls);
    assert!(items.next().is_none());
}

#[test]
fn every_prefix_of_a_frame_is_rejected_by_decoder_and_walker() {
    for wire in [
        bytes(WINDOWS_VALID_CLIENT),
        frame(XF_RESPONSE, REQUEST, 6, true),
        frame(XRDP_REQUEST, INDICATION, 1, false),
    ] {
        assert_eq!(walk(&[]).count(), 0);
        for len in 1..wire.len() {
            let prefix = &wire[..len];
            assert!(LicensingFrame::decode(prefix).is_err(), "prefix {len}");
            let items: Vec<_> = walk(prefix).collect();
            let [Err(err)] = items.as_slice() else {
                panic!("prefix {len}: {items:?}")
            };
            assert!(err.offset <= len, "prefix {len}: {err}");
        }
    }
}

#[test]
fn broken_frame_after_good_ones_reports_its_stream_offset_and_ends_the_walk() {
    let good = bytes(WINDOWS_VALID_CLIENT);
    let mut broken = frame(XRDP_ALERT, INDICATION, 1, false);
    // wMsgSize: the preamble follows 4 + 3 + 7 header bytes and the 4-byte security header.
    broken[20] = 0x40;
    let mut stream = good.clone();
    stream.extend(&good);
    stream.extend(&broken);
    stream.extend(&good);

    let items: Vec<_> = walk(&stream).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert!(items[..2].iter().all(Result::is_ok));
    let Err(err) = &items[2] else {
        panic!("{items:?}")
    };
    assert_eq!(
        (err.structure, err.field, err.offset),
        ("LICENSE_PREAMBLE", "wMsgSize", 2 * good.len() + 20)
    );
    assert_eq!(
        err.kind,
        WireErrorKind::LengthExceedsInput {
            declared: 0x40,
            available: 16
        }
    );
}

#[test]
fn walker_ends_without_panicking_on_arbitrary_and_mutated_bytes() {
    let mut stream = bytes(SPEC_CONNECTION_CONFIRM);
    stream.extend(frame(XRDP_REQUEST, INDICATION, 1, false));
    stream.extend(bytes(WINDOWS_SYNCHRONIZE));
    stream.extend(bytes(WINDOWS_VALID_CLIENT));
    arbtest::arbtest(|u| {
        let mut input = if u.arbitrary()? {
            u.arbitrary::<Vec<u8>>()?
        } else {
            stream.clone()
        };
        if let Some(byte) = input.get_mut(u.choose_index(stream.len())?) {
            *byte = u.arbitrary()?;
        }
        let mut seen = 0;
        let mut errors = 0;
        let mut offset = 0;
        for item in walk(&input) {
            seen += 1;
            assert!(seen <= input.len() + 1, "more items than bytes");
            match item {
                Ok(item) => {
                    assert_eq!(item.offset, offset);
                    assert!(!item.bytes.is_empty());
                    offset += item.bytes.len();
                }
                Err(err) => {
                    errors += 1;
                    assert!(err.offset <= input.len());
                }
            }
        }
        assert!(errors <= 1);
        assert!(offset <= input.len());
        Ok(())
    })
    .budget_ms(400);
}

/// Structured round trip, as tests/properties.rs does for the wire types. `long_length` has one
/// spelling too many (it is implied once the length needs two bytes), so it is normalised
/// first; a licensing frame also needs the flags that make its body readable.
#[test]
fn generated_envelope_values_encode_to_bytes_that_decode_to_them() {
    fn check<'a, T: Wire<'a> + PartialEq + core::fmt::Debug>(value: &T, bytes: &'a [u8]) {
        assert_eq!(bytes.len(), value.encoded_len());
        assert_eq!(&T::decode(bytes).unwrap(), value);
    }
    /// Encoding may fail only on a length that really exceeds its field.
    macro_rules! round_trip {
        ($value:expr) => {{
            let value = $value;
            match value.to_vec() {
                Ok(bytes) => check(&value, &bytes),
                Err(EncodeError::TooLong { length, max, .. }) => {
                    assert!(u64::try_from(length).unwrap() > max)
                }
                Err(other) => panic!("{value:?}: {other}"),
            }
        }};
    }
    arbtest::arbtest(|u| {
        round_trip!(u.arbitrary::<Tpkt>()?);
        round_trip!(u.arbitrary::<X224Data>()?);
        round_trip!(u.arbitrary::<SecurityHeader>()?);
        round_trip!(u.arbitrary::<NonFipsSecurityHeader>()?);
        round_trip!(u.arbitrary::<FipsSecurityHeader>()?);

        let mut send_data: McsSendData = u.arbitrary()?;
        send_data.long_length |= send_data.user_data.len() > 0x7f;
        round_trip!(send_data);

        let mut fast_path: FastPathPdu = u.arbitrary()?;
        fast_path.header &= !0x03;
        fast_path.long_length |= fast_path.body.len() + 2 > 0x7f;
        round_trip!(fast_path);

        let mut frame: LicensingFrame = u.arbitrary()?;
        frame.secured.security.flags.0 |= SecurityFlags::SEC_LICENSE_PKT.0;
        frame.secured.security.flags.0 &= !SecurityFlags::SEC_ENCRYPT.0;
        frame.long_length |= frame.secured.encoded_len() > 0x7f;
        round_trip!(frame);
        Ok(())
    })
    .budget_ms(400);
}

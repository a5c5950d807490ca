//! `rdpele decode` on every capture in every framing: bare, behind a security header, in TPKT
//! frames, and inside pcap and pcapng files built here, in tree and JSON form. The framing
//! around the captures is written by hand in this file, independently of rdpele's encoder.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Output, Stdio};

use etherparse::PacketBuilder;
use pcap_parser::{LegacyPcapBlock, Linktype, PcapHeader, ToVec};
use serde_json::Value;

const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../captures");

/// The licensing captures with the spec name of the message they hold and the number of
/// security-header bytes in front of the preamble.
const MESSAGES: &[(&str, &str, usize)] = &[
    ("server_license_request.bin", "SERVER_LICENSE_REQUEST", 0),
    ("server_upgrade_license.bin", "SERVER_NEW_LICENSE", 4),
    (
        "xrdp-0.9.21_license_request.bin",
        "SERVER_LICENSE_REQUEST",
        4,
    ),
    ("xrdp-0.9.21_error_alert.bin", "LICENSE_ERROR_MESSAGE", 4),
    (
        "xfreerdp-2.11.7_new_license_request.bin",
        "CLIENT_NEW_LICENSE_REQUEST",
        4,
    ),
    (
        "xfreerdp-2.11.7_platform_challenge_response.bin",
        "CLIENT_PLATFORM_CHALLENGE_RESPONSE",
        4,
    ),
    ("xfreerdp-2.11.7_license_info.bin", "CLIENT_LICENSE_INFO", 4),
];

fn capture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{CAPTURES}/{name}")).unwrap()
}

/// The licensing PDU with a basic security header (SEC_LICENSE_PKT) in front.
fn secured(name: &str, header: usize) -> Vec<u8> {
    let bytes = capture(name);
    if header == 4 {
        bytes
    } else {
        [&[0x80, 0x00, 0x00, 0x00][..], &bytes].concat()
    }
}

fn bare(name: &str, header: usize) -> Vec<u8> {
    capture(name)[header..].to_vec()
}

/// TPKT + X.224 Data + MCS Send Data (Indication from the server, Request from the client,
/// initiator 1007 on I/O channel 1003) around `payload`; `long_length` forces the two-byte
/// PER length form.
fn tpkt(payload: &[u8], indication: bool, long_length: bool) -> Vec<u8> {
    let mut mcs = vec![
        if indication { 0x68 } else { 0x64 },
        0x00,
        0x06,
        0x03,
        0xeb,
        0x70,
    ];
    let len = u16::try_from(payload.len()).unwrap();
    if len < 0x80 && !long_length {
        mcs.push(u8::try_from(len).unwrap());
    } else {
        mcs.extend((len | 0x8000).to_be_bytes());
    }
    mcs.extend(payload);
    let total = u16::try_from(4 + 3 + mcs.len()).unwrap();
    let mut frame = vec![0x03, 0x00];
    frame.extend(total.to_be_bytes());
    frame.extend([0x02, 0xf0, 0x80]);
    frame.extend(mcs);
    frame
}

fn is_server_message(message_type: &str) -> bool {
    message_type.starts_with("SERVER_") || message_type == "LICENSE_ERROR_MESSAGE"
}

fn rdpele(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rdpele"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `rdpele decode --json --roundtrip -` and returns the documents, asserting success.
fn decode_json(input: &[u8]) -> Vec<Value> {
    let out = rdpele(&["decode", "--json", "--roundtrip", "-"], input);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn decode_tree(input: &[u8]) -> String {
    let out = rdpele(&["decode", "-"], input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn assert_one(documents: &[Value], message_type: &str, framing: &str) {
    assert_eq!(documents.len(), 1, "{documents:#?}");
    let document = &documents[0];
    assert_eq!(document["message_type"], message_type);
    assert_eq!(document["framing"], framing);
    assert_eq!(document["roundtrip_identical"], true);
}

#[test]
fn every_capture_bare_and_behind_a_security_header() {
    for (name, message_type, header) in MESSAGES {
        assert_one(&decode_json(&bare(name, *header)), message_type, "bare");
        let documents = decode_json(&secured(name, *header));
        assert_one(&documents, message_type, "security_header");
        assert_eq!(
            documents[0]["security_header"]["flags"]["value"]
                .as_u64()
                .unwrap()
                & 0x80,
            0x80
        );
        for (input, framing) in [
            (bare(name, *header), "bare"),
            (secured(name, *header), "security_header"),
        ] {
            let tree = decode_tree(&input);
            let head = format!("message_type: \"{message_type}\"\nframing: \"{framing}\"\n");
            assert!(tree.starts_with(&head), "{tree}");
        }
    }
}

#[test]
fn every_capture_in_tpkt_frames_short_and_long_length() {
    for (name, message_type, header) in MESSAGES {
        let server = is_server_message(message_type);
        for long in [false, true] {
            let frame = tpkt(&secured(name, *header), server, long);
            let documents = decode_json(&frame);
            assert_one(&documents, message_type, "tpkt");
            assert_eq!(documents[0]["length"], frame.len());
            let tree = decode_tree(&frame);
            assert!(
                tree.starts_with(&format!(
                    "message_type: \"{message_type}\"\nframing: \"tpkt\""
                )),
                "{tree}"
            );
            assert!(tree.contains("  channel_id: 1003"), "{tree}");
        }
    }
}

#[test]
fn several_frames_in_one_tpkt_stream_keep_their_offsets() {
    let erect_domain = [
        0x03, 0x00, 0x00, 0x0c, 0x02, 0xf0, 0x80, 0x04, 0x01, 0x00, 0x01, 0x00,
    ];
    let request = tpkt(&secured("xrdp-0.9.21_license_request.bin", 4), true, false);
    let alert = tpkt(&secured("xrdp-0.9.21_error_alert.bin", 4), true, false);
    let stream = [&erect_domain[..], &request, &alert].concat();
    let documents = decode_json(&stream);
    assert_eq!(documents.len(), 2);
    assert_eq!(documents[0]["offset"], erect_domain.len());
    assert_eq!(documents[1]["offset"], erect_domain.len() + request.len());
    assert_eq!(documents[1]["message_type"], "LICENSE_ERROR_MESSAGE");
}

/// One RDP connection on loopback as a pcap: handshake, X.224 connection request/confirm, the
/// licensing exchange in TPKT frames, with the License Request split over three segments that
/// arrive out of order and one retransmitted.
fn connection_pcap(pcapng: bool) -> Vec<u8> {
    let client = (Ipv4Addr::new(127, 0, 0, 1), 50123u16);
    let server = (Ipv4Addr::new(127, 0, 0, 2), 3389u16);
    let mut packets: Vec<Vec<u8>> = Vec::new();
    let mut seq_client = 1000u32;
    let mut seq_server = 9000u32;
    let packet = |from: (Ipv4Addr, u16),
                  to: (Ipv4Addr, u16),
                  seq: u32,
                  syn: bool,
                  ack: bool,
                  payload: &[u8]| {
        let builder =
            PacketBuilder::ethernet2([0; 6], [0; 6]).ipv4(from.0.octets(), to.0.octets(), 64);
        let mut tcp = builder.tcp(from.1, to.1, seq, 65535);
        if syn {
            tcp = tcp.syn();
        }
        if ack {
            tcp = tcp.ack(1);
        }
        let mut out = Vec::new();
        tcp.write(&mut out, payload).unwrap();
        out
    };
    packets.push(packet(client, server, seq_client, true, false, &[]));
    packets.push(packet(server, client, seq_server, true, true, &[]));
    seq_client += 1;
    seq_server += 1;
    let send = |from_client: bool,
                payload: &[u8],
                packets: &mut Vec<Vec<u8>>,
                seqs: (&mut u32, &mut u32)| {
        let (from, to, seq) = if from_client {
            (client, server, seqs.0)
        } else {
            (server, client, seqs.1)
        };
        packets.push(packet(from, to, *seq, false, true, payload));
        *seq += u32::try_from(payload.len()).unwrap();
    };
    let connection_request = hex_bytes("030000130ee000000000000100080000000000");
    let connection_confirm = hex_bytes("030000130ed000001234000201080000000000");
    send(
        true,
        &connection_request,
        &mut packets,
        (&mut seq_client, &mut seq_server),
    );
    send(
        false,
        &connection_confirm,
        &mut packets,
        (&mut seq_client, &mut seq_server),
    );
    // The License Request in three segments: the third arrives before the second, and the
    // first is sent twice.
    let request = tpkt(&secured("server_license_request.bin", 0), true, false);
    let (a, rest) = request.split_at(1000);
    let (b, c) = rest.split_at(700);
    let start = seq_server;
    let seg = |offset: usize, data: &[u8]| {
        packet(
            server,
            client,
            start + u32::try_from(offset).unwrap(),
            false,
            true,
            data,
        )
    };
    packets.push(seg(0, a));
    packets.push(seg(1700, c));
    packets.push(seg(0, a));
    packets.push(seg(1000, b));
    seq_server += u32::try_from(request.len()).unwrap();
    let nlr = tpkt(
        &secured("xfreerdp-2.11.7_new_license_request.bin", 4),
        false,
        false,
    );
    send(true, &nlr, &mut packets, (&mut seq_client, &mut seq_server));
    let license = tpkt(&secured("server_upgrade_license.bin", 4), true, true);
    send(
        false,
        &license,
        &mut packets,
        (&mut seq_client, &mut seq_server),
    );
    let alert = tpkt(&secured("xrdp-0.9.21_error_alert.bin", 4), true, false);
    send(
        false,
        &alert,
        &mut packets,
        (&mut seq_client, &mut seq_server),
    );
    if pcapng {
        pcapng_file(&packets)
    } else {
        pcap_file(&packets)
    }
}

fn pcap_file(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut header = PcapHeader::new();
    header.network = Linktype::ETHERNET;
    let mut out = header.to_vec().unwrap();
    for (index, data) in packets.iter().enumerate() {
        let len = u32::try_from(data.len()).unwrap();
        let mut block = LegacyPcapBlock {
            ts_sec: 1_700_000_000,
            ts_usec: u32::try_from(index).unwrap(),
            caplen: len,
            origlen: len,
            data,
        };
        out.extend(block.to_vec().unwrap());
    }
    out
}

/// A minimal pcapng: section header, one Ethernet interface, enhanced packet blocks.
fn pcapng_file(packets: &[Vec<u8>]) -> Vec<u8> {
    fn block(out: &mut Vec<u8>, block_type: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = u32::try_from(12 + padded).unwrap();
        out.extend(block_type.to_le_bytes());
        out.extend(total.to_le_bytes());
        out.extend(body);
        out.extend(std::iter::repeat_n(0u8, padded - body.len()));
        out.extend(total.to_le_bytes());
    }
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend(1u16.to_le_bytes());
    shb.extend(0u16.to_le_bytes());
    shb.extend((-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    let mut idb = Vec::new();
    idb.extend(1u16.to_le_bytes());
    idb.extend(0u16.to_le_bytes());
    idb.extend(65535u32.to_le_bytes());
    block(&mut out, 1, &idb);
    for (index, data) in packets.iter().enumerate() {
        let len = u32::try_from(data.len()).unwrap();
        let mut epb = Vec::new();
        epb.extend(0u32.to_le_bytes());
        epb.extend(0u32.to_le_bytes());
        epb.extend(u32::try_from(index).unwrap().to_le_bytes());
        epb.extend(len.to_le_bytes());
        epb.extend(len.to_le_bytes());
        epb.extend(data);
        epb.extend(std::iter::repeat_n(
            0u8,
            data.len().div_ceil(4) * 4 - data.len(),
        ));
        block(&mut out, 6, &epb);
    }
    out
}

fn hex_bytes(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn pcap_and_pcapng_of_a_connection_give_the_exchange_in_order() {
    for pcapng in [false, true] {
        let documents = decode_json(&connection_pcap(pcapng));
        let types: Vec<&str> = documents
            .iter()
            .map(|d| d["message_type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "SERVER_LICENSE_REQUEST",
                "CLIENT_NEW_LICENSE_REQUEST",
                "SERVER_NEW_LICENSE",
                "LICENSE_ERROR_MESSAGE"
            ],
            "pcapng: {pcapng}"
        );
        assert!(documents.iter().all(|d| d["framing"] == "pcap"));
        assert_eq!(documents[0]["stream"]["src"], "127.0.0.2:3389");
        assert_eq!(documents[1]["stream"]["opened_connection"], true);
        assert_eq!(
            documents[0]["fields"]["product_info"]["company_name"],
            "Microsoft Corporation"
        );
        assert_eq!(documents[1]["fields"]["user_name"], "test");
        assert_eq!(documents[1]["fields"]["machine_name"], "vm");
    }
    let tree = decode_tree(&connection_pcap(false));
    assert!(
        tree.contains("company_name: \"Microsoft Corporation\""),
        "{tree}"
    );
    assert!(tree.contains("name: \"microsoft.com\""), "{tree}");
}

#[test]
fn decoded_strings_appear_in_json_fields() {
    let documents = decode_json(&bare("server_license_request.bin", 0));
    let fields = &documents[0]["fields"];
    assert_eq!(
        fields["product_info"]["company_name"],
        "Microsoft Corporation"
    );
    assert_eq!(fields["product_info"]["product_id"], "A02");
    assert_eq!(fields["scope_list"][0]["name"], "microsoft.com");
    assert_eq!(
        fields["server_certificate"]["certificate"]["chain"]["kind"],
        "x509"
    );
    let documents = decode_json(&capture("xrdp-0.9.21_error_alert.bin"));
    let fields = &documents[0]["fields"];
    assert_eq!(fields["error_code"]["name"], "STATUS_VALID_CLIENT");
    assert_eq!(fields["error_info"]["blob_type"]["value"], 0x1428);
    assert_eq!(fields["error_info"]["blob_type"]["name"], Value::Null);
}

#[test]
fn hex_flag_shows_every_byte() {
    let input = capture("xfreerdp-2.11.7_new_license_request.bin");
    let short = decode_tree(&input);
    let out = rdpele(&["decode", "--hex", "-"], &input);
    let full = String::from_utf8(out.stdout).unwrap();
    let premaster = hex_string(&input[4 + 4 + 40 + 4..][..72]);
    assert!(full.contains(&premaster), "{full}");
    assert!(!short.contains(&premaster));
    assert!(full.contains(&format!(
        "raw: {} bytes: {}",
        input.len(),
        hex_string(&input)
    )));
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn malformed_input_exits_2_with_one_line_naming_structure_and_offset() {
    let mut input = bare("server_license_request.bin", 0);
    input.truncate(1500);
    input[2..4].copy_from_slice(&1500u16.to_le_bytes());
    let out = rdpele(&["decode", "-"], &input);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("ServerCertificate.wBlobLen at byte offset 112"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_broken_frame_after_good_ones_prints_the_good_ones_then_fails() {
    let good = tpkt(&capture("xrdp-0.9.21_error_alert.bin"), true, false);
    let mut broken = tpkt(&capture("xrdp-0.9.21_license_request.bin"), true, false);
    broken.truncate(broken.len() - 10);
    let out = rdpele(&["decode", "--json", "-"], &[good.clone(), broken].concat());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 1);
    let stderr = String::from_utf8(out.stderr).unwrap();
    // The broken frame's TPKT length field, two bytes into it, claims more than is there.
    assert!(
        stderr.contains(&format!("TPKT.length at byte offset {}", good.len() + 2)),
        "{stderr}"
    );
}

#[test]
fn unreadable_file_exits_1() {
    let out = rdpele(&["decode", "/nonexistent/capture.bin"], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8(out.stderr)
        .unwrap()
        .contains("cannot open /nonexistent/capture.bin"));
}

/// A decrypted NEW_LICENSE_INFO shows what the CAL in it says, without any keys.
#[test]
fn a_new_license_info_describes_its_cal() {
    let documents = decode_json(&capture("windows2019_new_license_info.bin"));
    assert_one(&documents, "NEW_LICENSE_INFO", "new_license_info");
    let fields = &documents[0]["fields"];
    assert_eq!(fields["version"], 0x000A_0001);
    let cal = &fields["cal"];
    assert_eq!(cal["machine"], "ubuntu2");
    assert_eq!(cal["user"], "Administrator");
    assert_eq!(cal["hwid"], "0000010488fa3fe1ddb15d828eb8b1222af4755a");
    assert_eq!(cal["kind"], "temporary");
    assert_eq!(cal["cal_type"], "per_device");
    assert_eq!(cal["product"], "A02-10.01-S");
    assert_eq!(cal["license_server"]["name"], "WIN-4L4L6AMBCSQ");
    assert_eq!(
        cal["license_server"]["product_id"],
        "00429-00000-34972-AT353"
    );
    assert_eq!(cal["issuer"], "CN=Becker");

    let documents = decode_json(&capture("new_license_info.bin"));
    let cal = &documents[0]["fields"]["cal"];
    assert_eq!(cal["machine"], "RODENT");
    assert_eq!(cal["not_before"], "2007-06-20T14:51:35Z");
    assert_eq!(cal["not_after"], "2007-09-18T14:51:35Z");
    assert_eq!(cal["license_server"]["domain"], "WORKGROUP");

    let tree = decode_tree(&capture("new_license_info.bin"));
    assert!(
        tree.contains("  cal:\n    machine: \"RODENT\"\n    user: \"Administrator\"\n"),
        "{tree}"
    );
    // A pbLicenseInfo that is not a CAL is shown, and why it could not be read.
    let mut info = capture("new_license_info.bin");
    let last = info.len() - 1;
    info[last] ^= 0xff;
    let documents = decode_json(&info);
    assert!(
        documents[0]["fields"]["cal"]["error"].is_string(),
        "{}",
        documents[0]
    );
}

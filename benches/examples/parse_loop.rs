//! A minimal loop over one parser, for profilers that want a plain binary rather than criterion:
//!
//! ```sh
//! cargo build --release -p rdpele-benches --example parse_loop
//! valgrind --tool=callgrind target/release/examples/parse_loop rdpele license_request 20000
//! callgrind_annotate callgrind.out.<pid> | head -40
//! ```
//!
//! Arguments: `rdpele|ironrdp`, `license_request|upgrade_license|error_alert`, iterations.

// A profiling harness: a fixture that does not decode must stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;
use std::time::Instant;

use ironrdp_pdu::ironrdp_core;
use ironrdp_pdu::rdp::server_license::LicensePdu;
use rdpele_proto::wire::{LicensingPdu, Wire};

const LICENSE_REQUEST: &[u8] = include_bytes!("../../captures/server_license_request.bin");
const UPGRADE_LICENSE: &[u8] = include_bytes!("../../captures/server_upgrade_license.bin");
const ERROR_ALERT: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_error_alert.bin");

fn main() {
    let mut args = std::env::args().skip(1);
    let parser = args.next().unwrap_or_else(|| "rdpele".into());
    let capture = args.next().unwrap_or_else(|| "license_request".into());
    let iterations: u32 = args.next().map_or(1_000_000, |n| n.parse().unwrap());

    // rdpele parses from the preamble on; ironrdp wants the basic security header in front.
    let (message, framed) = match capture.as_str() {
        "license_request" => (
            LICENSE_REQUEST,
            [&[0x80, 0x00, 0x00, 0x00], LICENSE_REQUEST].concat(),
        ),
        "upgrade_license" => (UPGRADE_LICENSE.get(4..).unwrap(), UPGRADE_LICENSE.to_vec()),
        "error_alert" => (ERROR_ALERT.get(4..).unwrap(), ERROR_ALERT.to_vec()),
        other => panic!("unknown capture {other}"),
    };

    let start = Instant::now();
    match parser.as_str() {
        "rdpele" => {
            LicensingPdu::decode(message).expect("rdpele decodes the capture");
            for _ in 0..iterations {
                black_box(LicensingPdu::decode(black_box(message))).unwrap();
            }
        }
        "ironrdp" => {
            ironrdp_core::decode::<LicensePdu>(&framed).expect("ironrdp decodes the capture");
            for _ in 0..iterations {
                black_box(ironrdp_core::decode::<LicensePdu>(black_box(&framed))).unwrap();
            }
        }
        other => panic!("unknown parser {other}"),
    }
    let elapsed = start.elapsed();
    let each = elapsed.checked_div(iterations).unwrap_or_default();
    println!("{parser} {capture}: {iterations} parses in {elapsed:?} ({each:?} each)");
}

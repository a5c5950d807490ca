//! Parse and encode throughput of rdpele's licensing codec on the real captures, side by side with
//! ironrdp-pdu 0.11 decoding the same bytes. See BENCHMARKS.md for how to run and the results.
//!
//! One criterion group per capture (named after the file): `rdpele/parse`, `rdpele/encode` (into
//! a reused, pre-allocated buffer) and `ironrdp/parse`. Throughput is the licensing message's
//! length from LICENSE_PREAMBLE on, the bytes rdpele parses; ironrdp's decoder also reads the
//! 4-byte basic security header in front of it. Before measuring, each group checks that both
//! decoders accept the bytes they are timed on; where ironrdp rejects a capture, its error is
//! printed and its benchmark left out rather than timing an early return.

// A benchmark harness: a fixture that does not decode must stop the run loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use ironrdp_pdu::ironrdp_core::{self, Decode, ReadCursor};
use ironrdp_pdu::rdp::server_license::{ClientLicenseInfo, LicenseHeader, LicensePdu};
use rdpele_proto::wire::{LicensingPdu, NewLicenseInfo, Wire};

/// A capture and the number of bytes in front of its LICENSE_PREAMBLE (the basic security
/// header, where the capture has one).
struct Capture {
    name: &'static str,
    bytes: &'static [u8],
    security_header: usize,
}

macro_rules! capture {
    ($name:literal, $security_header:expr) => {
        Capture {
            name: $name,
            bytes: include_bytes!(concat!("../../captures/", $name, ".bin")),
            security_header: $security_header,
        }
    };
}

/// Every capture that is a licensing message.
const CAPTURES: [Capture; 7] = [
    capture!("server_license_request", 0),
    capture!("server_upgrade_license", 4),
    capture!("xrdp-0.9.21_license_request", 4),
    capture!("xrdp-0.9.21_error_alert", 4),
    capture!("xfreerdp-2.11.7_new_license_request", 4),
    capture!("xfreerdp-2.11.7_platform_challenge_response", 4),
    capture!("xfreerdp-2.11.7_license_info", 4),
];

const NEW_LICENSE_INFO: &[u8] = include_bytes!("../../captures/new_license_info.bin");

impl Capture {
    /// From LICENSE_PREAMBLE on: what [`LicensingPdu`] parses.
    fn message(&self) -> &'static [u8] {
        self.bytes.get(self.security_header..).unwrap()
    }

    /// Basic security header and preamble: what ironrdp's [`LicensePdu`] decodes. A capture
    /// without a header gets the one every licensing PDU carries (SEC_LICENSE_PKT, flagsHi 0).
    fn with_security_header(&self) -> Vec<u8> {
        if self.security_header == 4 {
            self.bytes.to_vec()
        } else {
            [&[0x80, 0x00, 0x00, 0x00], self.bytes].concat()
        }
    }
}

/// `rdpele/parse` and `rdpele/encode` of `T` over `bytes`, which must round-trip.
fn bench_rdpele<'a, T: Wire<'a>>(
    group: &mut BenchmarkGroup<'_, impl criterion::measurement::Measurement>,
    bytes: &'a [u8],
) {
    let value = T::decode(bytes).unwrap_or_else(|e| panic!("rdpele rejects its own fixture: {e}"));
    assert_eq!(
        value.to_vec().unwrap(),
        bytes,
        "fixture does not round-trip"
    );
    group.bench_function("rdpele/parse", |b| b.iter(|| T::decode(black_box(bytes))));
    let mut buf = Vec::with_capacity(bytes.len());
    group.bench_function("rdpele/encode", |b| {
        b.iter(|| {
            buf.clear();
            black_box(&value).encode(&mut buf).unwrap();
            black_box(buf.len())
        })
    });
}

fn licensing_messages(c: &mut Criterion) {
    for capture in &CAPTURES {
        let message = capture.message();
        let mut group = c.benchmark_group(capture.name);
        group.throughput(Throughput::Bytes(message.len().try_into().unwrap()));
        bench_rdpele::<LicensingPdu<'_>>(&mut group, message);

        let framed = capture.with_security_header();
        match ironrdp_core::decode::<LicensePdu>(&framed) {
            Ok(_) => {
                group.bench_function("ironrdp/parse", |b| {
                    b.iter(|| ironrdp_core::decode::<LicensePdu>(black_box(&framed)))
                });
            }
            Err(error) => {
                eprintln!(
                    "{}: ironrdp/parse not measured: LicensePdu: {error}",
                    capture.name
                );
                // LicensePdu refuses LICENSE_INFO outright; its own decoder is public, so try it
                // too and report what it says.
                if message.first() == Some(&0x12) {
                    let mut cursor = ReadCursor::new(&framed);
                    let result = LicenseHeader::decode(&mut cursor)
                        .and_then(|header| ClientLicenseInfo::decode(header, &mut cursor));
                    match result {
                        Ok(_) => eprintln!("  (ClientLicenseInfo::decode accepts it)"),
                        Err(e) => eprintln!("  ClientLicenseInfo::decode: {e}"),
                    }
                }
            }
        }
        group.finish();
    }
}

fn new_license_info(c: &mut Criterion) {
    let mut group = c.benchmark_group("new_license_info");
    group.throughput(Throughput::Bytes(
        NEW_LICENSE_INFO.len().try_into().unwrap(),
    ));
    bench_rdpele::<NewLicenseInfo<'_>>(&mut group, NEW_LICENSE_INFO);
    use ironrdp_pdu::rdp::server_license::LicenseInformation;
    ironrdp_core::decode::<LicenseInformation>(NEW_LICENSE_INFO)
        .unwrap_or_else(|e| panic!("ironrdp rejects new_license_info.bin: {e}"));
    group.bench_function("ironrdp/parse", |b| {
        b.iter(|| ironrdp_core::decode::<LicenseInformation>(black_box(NEW_LICENSE_INFO)))
    });
    group.finish();
}

criterion_group!(benches, licensing_messages, new_license_info);
criterion_main!(benches);

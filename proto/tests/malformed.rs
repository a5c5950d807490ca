//! Every prefix and every single-bit flip of every real capture: the parser answers with a
//! value or a typed error (never a panic), allocates nothing, and anything it accepts
//! re-encodes to exactly the bytes it was given.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rdpele_proto::envelope::{LicensingFrame, SecuredLicensingPdu, SendDataDirection};
use rdpele_proto::wire::{LicensingPdu, NewLicenseInfo, Wire, WireError};

/// Captures paired with how many framing bytes (the basic security header) precede the
/// licensing PDU.
const PDU_CAPTURES: &[(&str, &[u8], usize)] = &[
    (
        "server_license_request",
        include_bytes!("../../captures/server_license_request.bin"),
        0,
    ),
    (
        "server_upgrade_license",
        include_bytes!("../../captures/server_upgrade_license.bin"),
        4,
    ),
    (
        "xrdp license request",
        include_bytes!("../../captures/xrdp-0.9.21_license_request.bin"),
        4,
    ),
    (
        "xrdp error alert",
        include_bytes!("../../captures/xrdp-0.9.21_error_alert.bin"),
        4,
    ),
    (
        "xfreerdp new license request",
        include_bytes!("../../captures/xfreerdp-2.11.7_new_license_request.bin"),
        4,
    ),
    (
        "xfreerdp challenge response",
        include_bytes!("../../captures/xfreerdp-2.11.7_platform_challenge_response.bin"),
        4,
    ),
    (
        "xfreerdp license info",
        include_bytes!("../../captures/xfreerdp-2.11.7_license_info.bin"),
        4,
    ),
];

const NEW_LICENSE_INFO: &[u8] = include_bytes!("../../captures/new_license_info.bin");

/// Decodes `input` as `T`, asserting no allocation happened and that an accepted input
/// re-encodes to itself; returns the error, if any.
fn check<'a, T: Wire<'a> + core::fmt::Debug + PartialEq>(input: &'a [u8]) -> Option<WireError> {
    let mut result = None;
    let info = allocation_counter::measure(|| result = Some(T::decode(input)));
    assert_eq!(
        info.bytes_total,
        0,
        "parsing {} bytes allocated",
        input.len()
    );
    match result.unwrap() {
        Ok(value) => {
            assert_eq!(
                value.to_vec().unwrap(),
                input,
                "accepted input does not re-encode"
            );
            None
        }
        Err(error) => {
            assert!(error.offset <= input.len(), "{error} lies beyond the input");
            assert!(
                !error.structure.is_empty() && !error.field.is_empty(),
                "{error:?}"
            );
            Some(error)
        }
    }
}

fn every_prefix_is_rejected<'a, T: Wire<'a> + core::fmt::Debug + PartialEq>(
    name: &str,
    full: &'a [u8],
) {
    for len in 0..full.len() {
        let error = check::<T>(&full[..len]);
        assert!(
            error.is_some(),
            "{name}: prefix of {len} bytes was accepted"
        );
    }
}

fn every_bit_flip_is_handled(full: &[u8], check: impl Fn(&[u8]) -> Option<WireError>) {
    let mut flipped = full.to_vec();
    for byte in 0..full.len() {
        for bit in 0..8 {
            flipped[byte] ^= 1 << bit;
            check(&flipped);
            flipped[byte] ^= 1 << bit;
        }
    }
}

#[test]
fn capture_prefixes_are_rejected_without_allocating() {
    for (name, bytes, header) in PDU_CAPTURES {
        every_prefix_is_rejected::<LicensingPdu>(name, &bytes[*header..]);
    }
    every_prefix_is_rejected::<NewLicenseInfo>("new_license_info", NEW_LICENSE_INFO);
}

#[test]
fn capture_bit_flips_never_panic_or_allocate() {
    for (_, bytes, header) in PDU_CAPTURES {
        every_bit_flip_is_handled(&bytes[*header..], |b: &[u8]| check::<LicensingPdu>(b));
    }
    every_bit_flip_is_handled(NEW_LICENSE_INFO, |b: &[u8]| check::<NewLicenseInfo>(b));
}

#[test]
fn a_truncated_license_request_names_structure_field_and_offset() {
    let (_, bytes, _) = PDU_CAPTURES[0];
    // Cut inside the second certificate of the X.509 chain.
    let error = LicensingPdu::decode(&bytes[..1500]).unwrap_err();
    assert_eq!(error.structure, "LICENSE_PREAMBLE");
    assert_eq!((error.field, error.offset), ("wMsgSize", 2));
    // With the preamble's size adjusted, the failure is found inside the chain.
    let mut cut = bytes[..1500].to_vec();
    cut[2..4].copy_from_slice(&1500u16.to_le_bytes());
    let error = LicensingPdu::decode(&cut).unwrap_err();
    assert_eq!(error.structure, "ServerCertificate");
    assert_eq!(error.field, "wBlobLen");
    // The blob's data would start at 0x70 but its declared 0x812 bytes are not there.
    assert_eq!(error.offset, 0x70);
    assert_eq!(
        error.kind,
        rdpele_proto::wire::WireErrorKind::LengthExceedsInput {
            declared: 0x812,
            available: 1500 - 0x70
        }
    );
}

#[test]
fn trailing_byte_after_a_message_is_reported_not_dropped() {
    let (_, bytes, header) = PDU_CAPTURES[3];
    let mut long = bytes[header..].to_vec();
    long.push(0);
    let error = LicensingPdu::decode(&long).unwrap_err();
    assert_eq!(error.offset, long.len() - 1);
    assert!(
        error.to_string().contains("1 unexpected trailing byte"),
        "{error}"
    );
}

/// Each capture behind a basic security header, and inside TPKT / X.224 / MCS Send Data.
fn framed_captures() -> Vec<(Vec<u8>, Vec<u8>)> {
    PDU_CAPTURES
        .iter()
        .map(|(_, bytes, header)| {
            let secured = if *header == 4 {
                bytes.to_vec()
            } else {
                [&[0x80, 0, 0, 0][..], bytes].concat()
            };
            let pdu = SecuredLicensingPdu::decode(&secured).unwrap();
            let frame = LicensingFrame::new(
                SendDataDirection::Indication,
                6,
                LicensingFrame::IO_CHANNEL_ID,
                pdu.pdu,
            );
            let mut framed = frame.to_vec().unwrap();
            // Keep the capture's own security header (xrdp's junk flagsHi) in the frame.
            let at = framed.len() - secured.len();
            framed[at..].copy_from_slice(&secured);
            (secured, framed)
        })
        .collect()
}

#[test]
fn framed_capture_prefixes_are_rejected_without_allocating() {
    for (secured, framed) in framed_captures() {
        every_prefix_is_rejected::<SecuredLicensingPdu>("secured", &secured);
        every_prefix_is_rejected::<LicensingFrame>("frame", &framed);
    }
}

#[test]
fn framed_capture_bit_flips_never_panic_or_allocate() {
    for (secured, framed) in framed_captures() {
        every_bit_flip_is_handled(&secured, |b: &[u8]| check::<SecuredLicensingPdu>(b));
        every_bit_flip_is_handled(&framed, |b: &[u8]| check::<LicensingFrame>(b));
    }
}

//! The activated license server's CAL: four certificates (rdpele's clearinghouse root and
//! intermediate, the license server's certificate, the client license) of the shape of
//! `captures/windows2019_cal_temporary.p7b`, compared with it through `openssl asn1parse` and
//! x509-parser, and a chain that verifies — OpenSSL for the sha256WithRSA part, the license
//! server's key for the client license.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdpele_proto::cal::{
    self, build_cal, clearinghouse, CalKind, CalRequest, CalType, LicenseSerial,
    LicenseServerIdentity, ProductVersion, ACTIVATED_MS_18_9,
};
use rdpele_proto::crypto::LicensingPublicKey;
use rdpele_proto::wire::ClientHardwareId;
use rsa::pkcs8::DecodePrivateKey;
use rsa::PrivateKey;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

const CAL_2019: &[u8] = include_bytes!("../../captures/windows2019_cal_temporary.p7b");
const TEST_KEY: &str = include_str!("../src/cal/testdata/license_server_test_key.pem");

fn at(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

fn test_key() -> PrivateKey {
    PrivateKey::from_pkcs8_pem(TEST_KEY).unwrap()
}

/// An activated license server with the 2019 sample's names.
fn activated() -> LicenseServerIdentity {
    LicenseServerIdentity::activated(
        "WIN-4L4L6AMBCSQ",
        "WORKGROUP",
        "00429-00000-34972-AT353",
        test_key(),
        at(1_572_130_420), // 2019-10-26T22:53:40Z, the sample's activation
    )
    .unwrap()
}

/// The 2019 sample's client license request (serial 06 00 00 00 06, 90 days).
fn request() -> CalRequest {
    CalRequest::new(
        "ubuntu2",
        "Administrator",
        ClientHardwareId {
            platform_id: 0x0401_0000,
            data: [0x5A; 16],
        },
        CalKind::Temporary,
        CalType::PerDevice,
        ProductVersion::WINDOWS_SERVER_2019,
        at(1_572_184_662), // 2019-10-27T13:57:42Z
        Duration::from_secs(90 * 86_400),
        LicenseSerial {
            key_pack_id: 6,
            license_id: 6,
        },
    )
    .unwrap()
}

fn certificates(der: &[u8]) -> Vec<X509Certificate<'_>> {
    cal::parse_cal(der)
        .unwrap()
        .certificates
        .iter()
        .map(|summary| X509Certificate::from_der(&der[summary.offset..]).unwrap().1)
        .collect()
}

fn openssl(args: &[&str], path: &Path) -> String {
    // /usr/bin/openssl is part of the test environment (Debian's `openssl` package); the test
    // fails rather than skips without it, so a missing tool cannot hide a regression.
    let output = Command::new("openssl")
        .args(args)
        .arg(path)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// `openssl asn1parse -i` with offsets, header and content lengths and values removed: one
/// `(depth, cons|prim, tag)` per element.
fn asn1_tree(der: &[u8], name: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, der).unwrap();
    openssl(&["asn1parse", "-inform", "DER", "-i", "-in"], &path)
        .lines()
        .map(|line| {
            // "  4:d=1  hl=2 l=   9 prim:  OBJECT   :pkcs7-signedData"
            let depth = line.split("d=").nth(1).unwrap().split_whitespace().next();
            let (_, rest) = line.split_once(" l=").unwrap();
            let rest = rest.trim_start().split_once(' ').unwrap().1;
            let (form, tag) = rest.split_once(':').unwrap();
            let tag = tag.split(':').next().unwrap().trim();
            format!("{} {} {tag}", depth.unwrap(), form.trim())
        })
        .collect()
}

/// What the comparison holds equal per certificate: the serial's length, the signature
/// algorithm, each name's RDNs as (attribute OID, string tag) lists in order, the extensions
/// as (OID, critical) in order.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    serial_len: usize,
    signature_algorithm: String,
    issuer: Vec<Vec<(String, u32)>>,
    subject: Vec<Vec<(String, u32)>>,
    extensions: Vec<(String, bool)>,
    key_bits: usize,
}

fn shape(certificate: &X509Certificate<'_>) -> Shape {
    let tbs = &certificate.tbs_certificate;
    let name = |name: &x509_parser::x509::X509Name<'_>| {
        name.iter_rdn()
            .map(|rdn| {
                rdn.iter()
                    .map(|a| (a.attr_type().to_id_string(), a.attr_value().tag().0))
                    .collect()
            })
            .collect()
    };
    Shape {
        serial_len: tbs.raw_serial().len(),
        signature_algorithm: tbs.signature.algorithm.to_id_string(),
        issuer: name(&tbs.issuer),
        subject: name(&tbs.subject),
        extensions: tbs
            .extensions()
            .iter()
            .map(|e| (e.oid.to_id_string(), e.critical))
            .collect(),
        key_bits: LicensingPublicKey::from_x509_der(certificate.as_raw())
            .unwrap()
            .modulus_bits(),
    }
}

#[test]
fn an_activated_cal_has_the_2019_samples_asn1_tree() {
    let built = build_cal(&request(), &activated()).unwrap();
    // Key sizes are the sample's (4096, 2048, 2048, 2048), so even the lengths of the BIT
    // STRINGs agree; the tree leaves lengths and values out regardless.
    assert_eq!(
        asn1_tree(&built, "built.p7b"),
        asn1_tree(CAL_2019, "windows2019.p7b")
    );
}

#[test]
fn an_activated_cal_has_the_2019_samples_chain_shape() {
    let built = build_cal(&request(), &activated()).unwrap();
    let ours = certificates(&built);
    let theirs = certificates(CAL_2019);
    assert_eq!(ours.len(), 4);
    assert_eq!(theirs.len(), 4);
    for (index, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        assert_eq!(shape(ours), shape(theirs), "certificate {index}");
    }
    // Chain order root → intermediate → license server → client license: each issued by the
    // one before it, the root by itself.
    assert_eq!(ours[0].issuer().as_raw(), ours[0].subject().as_raw());
    for pair in ours.windows(2) {
        assert_eq!(pair[1].issuer().as_raw(), pair[0].subject().as_raw());
    }
    assert_eq!(
        ours[2].subject().to_string(),
        "CN=WIN-4L4L6AMBCSQ",
        "the license server's certificate names it"
    );
    assert_eq!(
        ours[1].subject().to_string(),
        format!("CN={}", clearinghouse::INTERMEDIATE_COMMON_NAME)
    );
    // The client license: the license server's key, extension 18.9, the request's serial.
    assert_eq!(ours[3].public_key().raw, ours[2].public_key().raw);
    let read = cal::parse_cal(&built).unwrap();
    assert_eq!(read.ms_18_9.as_deref(), Some(&ACTIVATED_MS_18_9[..]));
    assert_eq!(read.client_license.serial_number, [6, 0, 0, 0, 6]);
    assert_eq!(read.client_license.issuer, "CN=WIN-4L4L6AMBCSQ");
    // The serials keep the sample's first bytes.
    assert_eq!(ours[1].tbs_certificate.raw_serial()[0], 0x33);
    assert_eq!(ours[2].tbs_certificate.raw_serial()[0], 0x7F);
}

#[test]
fn the_clearinghouse_extensions_match_the_samples_byte_for_byte_where_keys_do_not_enter() {
    let built = build_cal(&request(), &activated()).unwrap();
    let ours = certificates(&built);
    let theirs = certificates(CAL_2019);
    // keyUsage, extended key usage, basicConstraints, CA version and "TLS~BASIC": the same
    // bytes; key identifiers and URLs name rdpele's keys and hosts instead.
    let fixed = [
        "2.5.29.15",
        "2.5.29.37",
        "2.5.29.19",
        "1.3.6.1.4.1.311.21.1",
        "1.3.6.1.4.1.311.18",
    ];
    let mut compared = 0;
    for (ours, theirs) in ours.iter().zip(&theirs).take(3) {
        for (a, b) in ours
            .tbs_certificate
            .extensions()
            .iter()
            .zip(theirs.tbs_certificate.extensions())
        {
            if fixed.contains(&a.oid.to_id_string().as_str()) {
                assert_eq!(a.value, b.value, "extension {}", a.oid.to_id_string());
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 8);
}

#[test]
fn openssl_verifies_the_activated_chain_and_the_license_server_key_signs_the_client_license() {
    let built = build_cal(&request(), &activated()).unwrap();
    let ours = certificates(&built);
    let dir = tempfile::tempdir().unwrap();
    let pem = |certificate: &X509Certificate<'_>, name: &str| {
        let path = dir.path().join(name);
        let der_path = dir.path().join(format!("{name}.der"));
        std::fs::write(&der_path, certificate.as_raw()).unwrap();
        let text = openssl(&["x509", "-inform", "DER", "-in"], &der_path);
        std::fs::write(&path, text).unwrap();
        path
    };
    let root = pem(&ours[0], "root.pem");
    let intermediate = pem(&ours[1], "intermediate.pem");
    let license_server = pem(&ours[2], "license_server.pem");
    let verified = openssl(
        &[
            "verify",
            "-x509_strict",
            "-CAfile",
            root.to_str().unwrap(),
            "-untrusted",
            intermediate.to_str().unwrap(),
        ],
        &license_server,
    );
    assert!(verified.trim_end().ends_with(": OK"), "{verified}");
    // The client license is OIW sha1RSA, signed by the license server's key (OpenSSL would
    // refuse its critical licensing extensions and an issuer that is not a CA).
    let key = LicensingPublicKey::from_x509_der(ours[2].as_raw()).unwrap();
    assert!(key.verify_sha1(
        ours[3].tbs_certificate.as_ref(),
        &ours[3].signature_value.data
    ));
    let text = openssl(
        &[
            "x509",
            "-noout",
            "-text",
            "-certopt",
            "no_pubkey,no_sigdump",
            "-in",
        ],
        &license_server,
    );
    for expected in [
        "Signature Algorithm: sha256WithRSAEncryption",
        "Not Before: Oct 26 22:53:40 2019 GMT",
        "Not After : Dec 31 23:59:59 2049 GMT",
        "X509v3 Basic Constraints: critical",
        "CA:FALSE",
        "file:////RD02524450454C/CertEnroll/rdpeleLSRAsha2RDSLM.crl",
        "..TLS~BASIC",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
}

#[test]
fn the_activated_identity_is_deterministic_and_the_2008_shape_is_unchanged() {
    let first = build_cal(&request(), &activated()).unwrap();
    assert_eq!(first, build_cal(&request(), &activated()).unwrap());
    let self_signed = LicenseServerIdentity::self_signed(
        "WIN-4L4L6AMBCSQ",
        "WORKGROUP",
        "00429-00000-34972-AT353",
        test_key(),
        at(946_684_800),
        at(2_524_607_999),
    )
    .unwrap();
    let unactivated = cal::parse_cal(&build_cal(&request(), &self_signed).unwrap()).unwrap();
    assert_eq!(unactivated.certificates.len(), 2);
    assert_eq!(unactivated.ms_18_9, None);
    // A request's own 18.9 wins over the shape's.
    let mut request = request();
    request.ms_18_9 = Some(vec![1, 2]);
    let read = cal::parse_cal(&build_cal(&request, &activated()).unwrap()).unwrap();
    assert_eq!(read.ms_18_9.as_deref(), Some(&[1u8, 2][..]));
}

#[test]
fn an_activation_at_or_after_the_clearinghouses_not_after_is_refused() {
    let error = LicenseServerIdentity::activated(
        "LS",
        "WORKGROUP",
        "00429-00000-34972-AT353",
        test_key(),
        at(2_524_608_000),
    )
    .unwrap_err();
    assert!(
        matches!(
            error,
            cal::CalError::InvalidInput {
                field: "activated_at",
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_license_server_name_printable_string_cannot_hold_is_a_utf8_string() {
    let identity = LicenseServerIdentity::activated(
        "LS_01",
        "WORKGROUP",
        "00429-00000-34972-AT353",
        test_key(),
        at(1_572_130_420),
    )
    .unwrap();
    let (_, certificate) = X509Certificate::from_der(&identity.certificates()[2]).unwrap();
    let tags: Vec<u32> = certificate
        .subject()
        .iter_attributes()
        .map(|a| a.attr_value().tag().0)
        .collect();
    assert_eq!(tags, [12]); // UTF8String
    assert_eq!(certificate.subject().to_string(), "CN=LS_01");
}

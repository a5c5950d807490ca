//! CALs: the Windows samples read with every field; CALs built here read back as requested, have
//! Windows' shape (byte for byte apart from keys and signatures), carry valid signatures and are
//! readable by OpenSSL; no prefix or bit flip of a sample makes the parser panic.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdpele_proto::cal::{
    self, build_cal, decode_hwid, encode_hwid, CalError, CalKind, CalRequest, CalType,
    LicenseSerial, LicenseServerIdentity, LicensedProduct, ProductLicenseFlags, ProductVersion,
};
use rdpele_proto::crypto::{LicensingPrivateKey, LicensingPublicKey, RsaBackend};
use rdpele_proto::wire::{ClientHardwareId, NewLicenseInfo, Wire};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::signature::Verifier;
use rsa::{PrivateKey, PublicKey};
use sha1::Sha1;
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

const CAL_2008: &[u8] = include_bytes!("../../captures/cal_temporary.p7b");
const NEW_LICENSE_INFO_2008: &[u8] = include_bytes!("../../captures/new_license_info.bin");
const CAL_2019: &[u8] = include_bytes!("../../captures/windows2019_cal_temporary.p7b");
const NEW_LICENSE_INFO_2019: &[u8] =
    include_bytes!("../../captures/windows2019_new_license_info.bin");
const TEST_KEY: &str = include_str!("../src/cal/testdata/license_server_test_key.pem");

/// The 2008 capture session's CLIENT_HARDWARE_ID (IronRDP's platform challenge test data).
const HWID_2008: ClientHardwareId = ClientHardwareId {
    platform_id: 2,
    data: [
        0xf1, 0x59, 0x87, 0x3e, 0xc9, 0xd8, 0x98, 0xaf, 0x24, 0x02, 0xf8, 0xf3, 0x29, 0x3a, 0xf0,
        0x26,
    ],
};

fn at(unix_seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(unix_seconds)
}

fn test_key() -> PrivateKey {
    PrivateKey::from_pkcs8_pem(TEST_KEY).unwrap()
}

/// The certificates of a CAL, parsed by x509-parser, each with its offset (as the CAL parser
/// reports it).
fn certificates(der: &[u8]) -> Vec<(usize, X509Certificate<'_>)> {
    cal::parse_cal(der)
        .unwrap()
        .certificates
        .iter()
        .map(|summary| {
            let (_, certificate) = X509Certificate::from_der(&der[summary.offset..]).unwrap();
            (summary.offset, certificate)
        })
        .collect()
}

fn offset_in(whole: &[u8], part: &[u8]) -> usize {
    part.as_ptr().addr() - whole.as_ptr().addr()
}

#[test]
fn the_windows_2008_cal_reads_with_every_field() {
    let cal = cal::parse_cal(CAL_2008).unwrap();
    let client = &cal.client_license;
    assert_eq!(client.machine, "RODENT");
    assert_eq!(client.user, "Administrator");
    assert_eq!(client.not_before, at(1_182_351_095), "2007-06-20T14:51:35Z");
    assert_eq!(client.not_after, at(1_190_127_095), "2007-09-18T14:51:35Z");
    assert_eq!(
        client.not_after.duration_since(client.not_before).unwrap(),
        Duration::from_secs(90 * 86_400)
    );
    assert_eq!(client.hwid, HWID_2008);
    assert_eq!(
        hex::encode(client.encoded_hwid),
        "d4170a79dcb692b3b8fcc0832c8d401d970f89ab"
    );
    assert_eq!(client.serial_number, [0x03, 0, 0, 0, 0x0F]);
    assert_eq!(
        client.serial(),
        Some(LicenseSerial {
            key_pack_id: 3,
            license_id: 15
        })
    );
    assert_eq!(client.issuer, "CN=RODENT+L=WORKGROUP");
    let extensions: Vec<(&str, bool)> = client
        .extensions
        .iter()
        .map(|e| (e.oid.as_str(), e.critical))
        .collect();
    assert_eq!(
        extensions,
        [
            ("1.3.6.1.4.1.311.18.4", true),
            ("1.3.6.1.4.1.311.18.2", true),
            ("1.3.6.1.4.1.311.18.5", true),
            ("1.3.6.1.4.1.311.18.6", true),
            ("2.5.29.35", true),
        ]
    );

    assert_eq!(cal.license_server.name, "RODENT");
    assert_eq!(cal.license_server.domain_or_workgroup, "WORKGROUP");
    assert_eq!(
        cal.license_server.product_id.as_deref(),
        Some("78440-006-5867045-70347")
    );

    assert_eq!(cal.kind, CalKind::Temporary);
    assert_eq!(cal.cal_type, CalType::PerDevice);
    let product = &cal.product;
    assert_eq!(product.product_id, "A02");
    assert_eq!(product.sku, "A02-6.00-S");
    assert_eq!(product.version, ProductVersion { major: 6, minor: 0 });
    assert_eq!(product.quantity, 1);
    assert_eq!(product.platform_id, 0xFF);
    assert_eq!(product.language_id, 0x0400);
    assert_eq!(product.flags, ProductLicenseFlags(0x8064_8000));
    assert_eq!(product.structure_version, 0x3000);

    assert_eq!(cal.hydra_cert_version, Some(0x0005_0001));
    assert_eq!(cal.manufacturer.as_deref(), Some("Microsoft Corporation"));
    assert_eq!(cal.ms_18_9, None);
    assert_eq!(cal.certificates.len(), 2);
    assert_eq!(cal.certificates[0].subject, "CN=RODENT+L=WORKGROUP");
    assert_eq!(cal.certificates[0].offset, 45);
    assert_eq!(
        cal.certificates[0].serial_number,
        [0x01, 0x9E, 0x27, 0x4D, 0x68, 0xAC, 0xED, 0x20]
    );
    assert_eq!(cal.certificates[1].offset, 802);
    assert_eq!(
        cal.certificates[1].subject,
        "CN=RODENT+L=Administrator+serialNumber=1BcKedy2krO4/MCDLI1AHZcPias=\r\n"
    );
}

#[test]
fn the_same_cal_reads_through_its_new_license_info_and_as_a_freerdp_file() {
    let direct = cal::parse_cal(CAL_2008).unwrap();
    assert_eq!(
        cal::parse_new_license_info(NEW_LICENSE_INFO_2008).unwrap(),
        direct
    );
    let info = NewLicenseInfo::decode(NEW_LICENSE_INFO_2008).unwrap();
    assert_eq!(info.license_info, CAL_2008);
    assert_eq!(cal::cal_from_new_license_info(&info).unwrap(), direct);
    assert_eq!(cal::parse_cal_file(CAL_2008).unwrap(), direct);
    let (container, via_detection) = cal::parse_cal_container(NEW_LICENSE_INFO_2008).unwrap();
    assert_eq!(container, cal::CalContainer::NewLicenseInfo);
    assert_eq!(via_detection, direct);
    // The product version in the CAL is NEW_LICENSE_INFO's dwVersion, in both samples.
    assert_eq!(info.version, direct.product.version.as_dword());
    let info_2019 = NewLicenseInfo::decode(NEW_LICENSE_INFO_2019).unwrap();
    let cal_2019 = cal::parse_cal(info_2019.license_info).unwrap();
    assert_eq!(info_2019.version, cal_2019.product.version.as_dword());
}

#[test]
fn windows_signs_pkcs1_sha1_over_the_tbs_with_the_license_server_key() {
    for (der, server_index) in [(CAL_2008, 0), (CAL_2019, 2)] {
        let certificates = certificates(der);
        let server = &certificates[server_index].1;
        let client = &certificates.last().unwrap().1;
        let key = PublicKey::from_public_key_der(server.tbs_certificate.subject_pki.raw).unwrap();
        // The client license carries the license server's own public key.
        assert_eq!(
            client.tbs_certificate.subject_pki.raw,
            server.tbs_certificate.subject_pki.raw
        );
        let signature = Signature::try_from(client.signature_value.data.as_ref()).unwrap();
        VerifyingKey::<Sha1>::new(key.clone())
            .verify(client.tbs_certificate.as_ref(), &signature)
            .unwrap();
        if server_index == 0 {
            let signature = Signature::try_from(server.signature_value.data.as_ref()).unwrap();
            VerifyingKey::<Sha1>::new(key)
                .verify(server.tbs_certificate.as_ref(), &signature)
                .unwrap();
        }
    }
}

/// A license server with the 2008 sample's identity, certificate times and serial, and the
/// test key.
fn rodent() -> LicenseServerIdentity {
    LicenseServerIdentity::self_signed(
        "RODENT",
        "WORKGROUP",
        "78440-006-5867045-70347",
        test_key(),
        UNIX_EPOCH + Duration::from_millis(12_911_778_034),
        at(2_505_983_778),
    )
    .unwrap()
}

/// The 2008 sample's client license request.
fn rodent_request() -> CalRequest {
    let mut request = CalRequest::new(
        "RODENT",
        "Administrator",
        HWID_2008,
        CalKind::Temporary,
        CalType::PerDevice,
        ProductVersion::WINDOWS_SERVER_2008,
        at(1_182_351_095),
        Duration::from_secs(90 * 86_400),
        LicenseSerial {
            key_pack_id: 3,
            license_id: 15,
        },
    )
    .unwrap();
    request.product.flags = ProductLicenseFlags(0x8064_8000);
    request
}

#[test]
fn built_with_the_2008_samples_values_a_cal_differs_only_in_keys_and_signatures() {
    let built = build_cal(&rodent_request(), &rodent()).unwrap();
    assert_eq!(built.len(), CAL_2008.len());
    // Where a byte may differ: both public keys and both signature values.
    let mut allowed = Vec::new();
    for (_, certificate) in certificates(CAL_2008) {
        let key = certificate.tbs_certificate.subject_pki.raw;
        let start = offset_in(CAL_2008, key);
        allowed.push(start..start + key.len());
        let signature = certificate.as_raw();
        let len = certificate.signature_value.data.len();
        let end = offset_in(CAL_2008, signature) + signature.len();
        allowed.push(end - len..end);
    }
    let differing: Vec<usize> = (0..built.len())
        .filter(|i| built[*i] != CAL_2008[*i])
        .collect();
    assert!(!differing.is_empty());
    for offset in differing {
        assert!(
            allowed.iter().any(|range| range.contains(&offset)),
            "byte {offset} differs outside keys and signatures"
        );
    }
    // And it reads back exactly as the sample does.
    assert_eq!(
        cal::parse_cal(&built).unwrap(),
        cal::parse_cal(CAL_2008).unwrap()
    );
}

/// What "Windows' shape" means independent of the values: extension OIDs and criticality,
/// name attribute types and string tags (as a sorted multiset: DER orders them by encoding),
/// signature algorithm and parameters, version.
#[derive(Debug, PartialEq, Eq)]
struct Shape {
    version: u32,
    signature_algorithm: (String, Option<u32>),
    issuer: Vec<(String, u32)>,
    subject: Vec<(String, u32)>,
    issuer_rdns: usize,
    subject_rdns: usize,
    extensions: Vec<(String, bool)>,
}

fn shape(certificate: &X509Certificate<'_>) -> Shape {
    let tbs = &certificate.tbs_certificate;
    let name = |name: &x509_parser::x509::X509Name<'_>| {
        let mut attributes: Vec<(String, u32)> = name
            .iter_attributes()
            .map(|a| (a.attr_type().to_id_string(), a.attr_value().tag().0))
            .collect();
        attributes.sort();
        attributes
    };
    Shape {
        version: tbs.version.0,
        signature_algorithm: (
            tbs.signature.algorithm.to_id_string(),
            tbs.signature.parameters.as_ref().map(|p| p.tag().0),
        ),
        issuer: name(&tbs.issuer),
        subject: name(&tbs.subject),
        issuer_rdns: tbs.issuer.iter_rdn().count(),
        subject_rdns: tbs.subject.iter_rdn().count(),
        extensions: tbs
            .extensions()
            .iter()
            .map(|e| (e.oid.to_id_string(), e.critical))
            .collect(),
    }
}

#[test]
fn a_built_cal_has_the_windows_shape_whatever_its_values() {
    let server = LicenseServerIdentity::self_signed(
        "LICENSE-SERVER-WITH-A-LONG-NAME",
        "EXAMPLE",
        "00000-00000-00000-AA000",
        test_key(),
        at(1_700_000_000),
        at(2_500_000_000),
    )
    .unwrap();
    let request = CalRequest::new(
        "WORKSTATION-0042",
        "bob",
        ClientHardwareId {
            platform_id: 0x0401_0000,
            data: [0x5A; 16],
        },
        CalKind::Permanent,
        CalType::PerUser,
        ProductVersion::WINDOWS_SERVER_2019,
        at(1_700_000_100),
        Duration::from_secs(60 * 86_400),
        LicenseSerial {
            key_pack_id: 2,
            license_id: 7,
        },
    )
    .unwrap();
    let built = build_cal(&request, &server).unwrap();
    let built_certificates = certificates(&built);
    let windows = certificates(CAL_2008);
    assert_eq!(built_certificates.len(), windows.len());
    for ((_, ours), (_, theirs)) in built_certificates.iter().zip(&windows) {
        assert_eq!(shape(ours), shape(theirs));
    }
    // BMPString (tag 30) everywhere, one multi-valued RDN per name.
    let client = shape(&built_certificates[1].1);
    assert!(client.subject.iter().all(|(_, tag)| *tag == 30));
    assert_eq!((client.subject_rdns, client.issuer_rdns), (1, 1));
    assert_eq!(client.subject.len(), 3);
}

#[test]
fn a_built_cal_reads_back_as_requested() {
    let server = rodent();
    for (kind, cal_type, version) in [
        (
            CalKind::Temporary,
            CalType::PerDevice,
            ProductVersion::WINDOWS_SERVER_2008,
        ),
        (
            CalKind::Permanent,
            CalType::PerUser,
            ProductVersion::WINDOWS_SERVER_2019,
        ),
    ] {
        let hwid = ClientHardwareId {
            platform_id: 0x0401_0000,
            data: *b"0123456789abcdef",
        };
        let request = CalRequest::new(
            "déjà-vu-𝄞", // non-ASCII, and a character outside the BMP (a surrogate pair)
            "Ünïcode User",
            hwid,
            kind,
            cal_type,
            version,
            at(1_600_000_000),
            Duration::from_secs(71 * 86_400),
            LicenseSerial {
                key_pack_id: 9,
                license_id: 0x8000_0001,
            },
        )
        .unwrap();
        let cal = cal::parse_cal(&build_cal(&request, &server).unwrap()).unwrap();
        assert_eq!(cal.kind, kind);
        assert_eq!(cal.cal_type, cal_type);
        assert_eq!(cal.product, request.product);
        assert_eq!(cal.product.version, version);
        let client = &cal.client_license;
        assert_eq!(client.machine, request.machine);
        assert_eq!(client.user, request.user);
        assert_eq!(client.hwid, hwid);
        assert_eq!(client.encoded_hwid, encode_hwid(&hwid));
        assert_eq!(client.not_before, request.not_before);
        assert_eq!(client.not_after, request.not_after);
        assert_eq!(client.serial(), Some(request.serial));
        assert_eq!(cal.license_server.name, "RODENT");
        assert_eq!(cal.license_server.domain_or_workgroup, "WORKGROUP");
        assert_eq!(
            cal.license_server.product_id.as_deref(),
            Some("78440-006-5867045-70347")
        );
        assert_eq!(cal.hydra_cert_version, Some(cal::HYDRA_CERT_VERSION));
        assert_eq!(cal.manufacturer.as_deref(), Some(cal::MANUFACTURER));
    }
}

#[test]
fn built_cals_are_deterministic_and_validly_signed() {
    let server = rodent();
    let first = build_cal(&rodent_request(), &server).unwrap();
    assert_eq!(first, build_cal(&rodent_request(), &server).unwrap());
    let certificates = certificates(&first);
    let key = test_key().to_public_key();
    for (_, certificate) in &certificates {
        let signature = Signature::try_from(certificate.signature_value.data.as_ref()).unwrap();
        VerifyingKey::<Sha1>::new(key.clone())
            .verify(certificate.tbs_certificate.as_ref(), &signature)
            .unwrap();
    }
}

/// The license server's self-signed certificate and the client license are signed on the key's
/// selected RSA backend; PKCS#1 v1.5 signatures are deterministic, so every backend builds the
/// same bytes.
#[test]
fn every_rsa_backend_builds_the_same_validly_signed_cal() {
    let expected = build_cal(&rodent_request(), &rodent()).unwrap();
    let backends: Vec<RsaBackend> = RsaBackend::ALL
        .into_iter()
        .filter(|backend| backend.is_available())
        .collect();
    assert_eq!(
        backends.len(),
        if cfg!(feature = "openssl") { 2 } else { 1 }
    );
    for backend in backends {
        let key = LicensingPrivateKey::try_from(test_key())
            .unwrap()
            .with_backend(backend)
            .unwrap();
        let server = LicenseServerIdentity::self_signed(
            "RODENT",
            "WORKGROUP",
            "78440-006-5867045-70347",
            key.clone(),
            UNIX_EPOCH + Duration::from_millis(12_911_778_034),
            at(2_505_983_778),
        )
        .unwrap();
        let built = build_cal(&rodent_request(), &server).unwrap();
        assert_eq!(built, expected, "{backend}");
        let again = LicenseServerIdentity::with_certificates(
            "RODENT",
            "WORKGROUP",
            "78440-006-5867045-70347",
            key,
            server.certificates().to_vec(),
        )
        .unwrap();
        assert_eq!(build_cal(&rodent_request(), &again).unwrap(), expected);
        let public = LicensingPublicKey::from_rsa_public_key(test_key().to_public_key()).unwrap();
        for (_, certificate) in certificates(&built) {
            assert!(public.verify_sha1(
                certificate.tbs_certificate.as_ref(),
                &certificate.signature_value.data
            ));
        }
    }
}

#[test]
fn the_2019_shape_is_reproduced_with_extension_18_9() {
    let windows = cal::parse_cal(CAL_2019).unwrap();
    let server = LicenseServerIdentity::self_signed(
        "WIN-4L4L6AMBCSQ",
        "WORKGROUP",
        "00429-00000-34972-AT353",
        test_key(),
        at(1_572_130_420),
        at(2_500_000_000),
    )
    .unwrap();
    let mut request = CalRequest::new(
        "ubuntu2",
        "Administrator",
        windows.client_license.hwid,
        CalKind::Temporary,
        CalType::PerDevice,
        ProductVersion::WINDOWS_SERVER_2019,
        at(1_572_184_662),
        Duration::from_secs(90 * 86_400),
        LicenseSerial {
            key_pack_id: 6,
            license_id: 6,
        },
    )
    .unwrap();
    request.ms_18_9 = Some(vec![7, 0, 0, 0]);
    let built = build_cal(&request, &server).unwrap();
    let ours = certificates(&built);
    let theirs = certificates(CAL_2019);
    let (ours, theirs) = (&ours.last().unwrap().1, &theirs.last().unwrap().1);
    assert_eq!(shape(ours).extensions, shape(theirs).extensions);
    // Every licensing extension body, the serial, validity and subject: byte for byte.
    for (a, b) in ours
        .tbs_certificate
        .extensions()
        .iter()
        .zip(theirs.tbs_certificate.extensions())
    {
        assert_eq!(a.value, b.value, "extension {}", a.oid.to_id_string());
    }
    assert_eq!(
        ours.tbs_certificate.raw_serial(),
        theirs.tbs_certificate.raw_serial()
    );
    assert_eq!(
        ours.tbs_certificate.subject.as_raw(),
        theirs.tbs_certificate.subject.as_raw()
    );
    assert_eq!(ours.validity(), theirs.validity());
    let read = cal::parse_cal(&built).unwrap();
    assert_eq!(read.product, windows.product);
    assert_eq!(read.license_server, windows.license_server);
    assert_eq!(read.ms_18_9, windows.ms_18_9);
}

#[test]
fn openssl_reads_a_built_cal() {
    // /usr/bin/openssl is part of the test environment (Debian's `openssl` package); the test
    // fails rather than skips without it, so a missing tool cannot hide a regression.
    let built = build_cal(&rodent_request(), &rodent()).unwrap();
    let path = std::env::temp_dir().join(format!("rdpele-cal-{}.p7b", std::process::id()));
    std::fs::write(&path, &built).unwrap();
    let output = Command::new("openssl")
        .args([
            "pkcs7",
            "-inform",
            "DER",
            "-print_certs",
            "-text",
            "-noout",
            "-in",
        ])
        .arg(&path)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    std::fs::remove_file(&path).unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for expected in [
        "Signature Algorithm: sha1WithRSA",
        "Not Before: Jun 20 14:51:35 2007 GMT",
        "Not After : Sep 18 14:51:35 2007 GMT",
        "1.3.6.1.4.1.311.18.5: critical",
        "1.3.6.1.4.1.311.18.6: critical",
        "CA:TRUE, pathlen:0",
        "Public-Key: (2048 bit)",
        "Serial Number: 12884901903 (0x30000000f)",
    ] {
        assert!(text.contains(expected), "{expected:?} not in:\n{text}");
    }
    assert_eq!(text.matches("Certificate:").count(), 2);
}

#[test]
fn builder_refuses_what_it_cannot_issue() {
    let mut request = rodent_request();
    request.not_after = request.not_before;
    assert!(matches!(
        build_cal(&request, &rodent()),
        Err(CalError::InvalidInput {
            field: "not_after",
            ..
        })
    ));
    // A certificate whose key is not the signing key.
    let windows_certificate = certificates(CAL_2008)[0].1.as_raw().to_vec();
    assert!(matches!(
        LicenseServerIdentity::with_certificates(
            "RODENT",
            "WORKGROUP",
            "x",
            test_key(),
            vec![windows_certificate]
        ),
        Err(CalError::InvalidInput {
            field: "certificates",
            ..
        })
    ));
    // The identity's own certificate is accepted back.
    let server = rodent();
    let again = LicenseServerIdentity::with_certificates(
        "RODENT",
        "WORKGROUP",
        "78440-006-5867045-70347",
        test_key(),
        server.certificates().to_vec(),
    )
    .unwrap();
    assert_eq!(
        build_cal(&rodent_request(), &again).unwrap(),
        build_cal(&rodent_request(), &server).unwrap()
    );
    let _ = LicensedProduct::windows(
        CalType::PerDevice,
        CalKind::Temporary,
        ProductVersion::WINDOWS_SERVER_2008,
    );
}

#[test]
fn hwid_encoding_is_reversible_and_matches_both_samples() {
    for der in [CAL_2008, CAL_2019] {
        let cal = cal::parse_cal(der).unwrap();
        assert_eq!(
            decode_hwid(&cal.client_license.encoded_hwid),
            cal.client_license.hwid
        );
        assert_eq!(
            encode_hwid(&cal.client_license.hwid),
            cal.client_license.encoded_hwid
        );
    }
}

#[test]
fn every_prefix_and_bit_flip_of_the_samples_is_an_error_or_a_value() {
    for sample in [CAL_2008, CAL_2019] {
        for len in 0..sample.len() {
            let result = cal::parse_cal(&sample[..len]);
            let error = result.expect_err("a strict prefix is not a CAL");
            assert!(
                error.offset().is_some_and(|offset| offset <= len),
                "{error}"
            );
        }
    }
    for len in 0..NEW_LICENSE_INFO_2008.len() {
        assert!(cal::parse_new_license_info(&NEW_LICENSE_INFO_2008[..len]).is_err());
    }
    let mut flipped = CAL_2008.to_vec();
    for bit in 0..CAL_2008.len() * 8 {
        flipped[bit / 8] ^= 1 << (bit % 8);
        if let Err(error) = cal::parse_cal(&flipped) {
            assert!(error.offset().is_some_and(|offset| offset <= flipped.len()));
            assert!(!error.to_string().is_empty());
        }
        flipped[bit / 8] ^= 1 << (bit % 8);
    }
    let mut flipped = CAL_2019.to_vec();
    for byte in 0..CAL_2019.len() {
        let bit = 1 << (byte % 8);
        flipped[byte] ^= bit;
        let _ = cal::parse_cal(&flipped);
        flipped[byte] ^= bit;
    }
}

#[test]
fn errors_name_the_structure_and_the_offset() {
    let error = cal::parse_cal(&CAL_2008[..100]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "CAL.ContentInfo at byte offset 1: declared length 1941 exceeds the 96 byte(s) available"
    );
    let mut bytes = CAL_2008.to_vec();
    bytes.push(0);
    assert_eq!(
        cal::parse_cal(&bytes).unwrap_err().to_string(),
        "CAL.ContentInfo at byte offset 1945: 1 unexpected trailing byte(s)"
    );
    let mut bytes = CAL_2008.to_vec();
    bytes[1450 + 26] = 2; // LICENSED_PRODUCT_INFO (value at 1450).LicensedVersionInfoCount
    assert_eq!(
        cal::parse_cal(&bytes).unwrap_err().to_string(),
        "LICENSED_PRODUCT_INFO.LicensedVersionInfoCount at byte offset 1476: unsupported value 0x2"
    );
}

#[test]
fn a_host_certificate_is_issued_by_the_license_server_for_the_host_key() {
    let server = rodent();
    let host_key = test_key().to_public_key();
    let der = server
        .issue_host_certificate(
            "RDPELE-HOST",
            &host_key,
            at(1_700_000_000),
            at(2_000_000_000),
        )
        .unwrap();
    let (rest, host) = X509Certificate::from_der(&der).unwrap();
    assert!(rest.is_empty());
    let (_, own) = X509Certificate::from_der(&server.certificates()[0]).unwrap();
    assert_eq!(host.issuer().as_raw(), own.subject().as_raw());
    assert_eq!(host.subject().to_string(), "CN=RDPELE-HOST");
    assert_eq!(
        host.public_key().raw,
        host_key.to_public_key_der().unwrap().as_bytes()
    );
    // Signed by the license server's key (OIW sha1RSA over the TBS bytes).
    let signature = Signature::try_from(host.signature_value.data.as_ref()).unwrap();
    VerifyingKey::<Sha1>::new(test_key().to_public_key())
        .verify(host.tbs_certificate.as_ref(), &signature)
        .unwrap();
}

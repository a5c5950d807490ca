//! Entry points for the fuzz targets in `fuzz/`: one round-trip oracle per top-level parser.
//!
//! Each function takes arbitrary bytes. When the decoder accepts them, it checks the codec's
//! invariant (see [`Wire`]): re-encoding gives back exactly the input, [`Wire::encoded_len`]
//! agrees with the encoding, and decoding the encoding gives the same value. Bytes the decoder
//! rejects are fine; a broken invariant panics, which the fuzzer reports as a crash.
//!
//! [`licensing_pdu_structured`] goes the other way: it builds an arbitrary [`LicensingPdu`],
//! encodes it and checks that decoding gives the same value back.
//!
//! [`cal`] reads a CAL file (PKCS#7 DER or a decrypted NEW_LICENSE_INFO) and checks that reading
//! is deterministic and consistent. With the `testing` feature, [`server_machine`] and
//! [`client_machine`] drive a state machine with a sequence of peer PDUs: recorded ones,
//! mutated ones and arbitrary ones (`fuzzing/machine.rs`).

// These functions are the fuzz oracle: a failed assertion is how they report a bug.
#![allow(clippy::expect_used, clippy::panic)]

#[cfg(feature = "testing")]
mod machine;

#[cfg(feature = "testing")]
pub use machine::{client_machine, server_machine};

use arbitrary::{Arbitrary, Unstructured};

use crate::cal::{parse_cal, parse_cal_container, CalContainer, CalError};
use crate::crypto::{derive_rdp_session_keys, EncryptionMethod, Side};
use crate::envelope::{
    FastPathPdu, LicensingFrame, RdpSecurityLayer, SecurityExchangePdu, SecurityFlags,
    SendDataDirection, SetErrorInfoPdu, Tpkt,
};

use crate::wire::{
    ClientHardwareId, ClientLicenseInfo, ClientNewLicenseRequest, ClientPlatformChallengeResponse,
    EncodeError, LicensingErrorMessage, LicensingPdu, NewLicenseInfo,
    PlatformChallengeResponseData, ServerCertificate, ServerLicenseRequest, ServerNewLicense,
    ServerPlatformChallenge, ServerUpgradeLicense, Wire,
};

/// A wire type named apart from the lifetime of the bytes it borrows, so that one helper can
/// decode both the fuzzer's input and its own re-encoding (a local buffer) as "the same type".
trait Target {
    type Value<'a>: Wire<'a> + PartialEq + core::fmt::Debug;

    /// Lets a value borrowed from the input be compared with one borrowed from the re-encoding
    /// (every wire type is covariant in its lifetime, so this is the identity).
    fn shorten<'short, 'long: 'short>(value: Self::Value<'long>) -> Self::Value<'short>;
}

macro_rules! targets {
    ($($ty:ident),* $(,)?) => {$(
        impl Target for $ty<'static> {
            type Value<'a> = $ty<'a>;

            fn shorten<'short, 'long: 'short>(value: $ty<'long>) -> $ty<'short> {
                value
            }
        }
    )*};
}

targets!(
    LicensingFrame,
    SecurityExchangePdu,
    LicensingPdu,
    ServerLicenseRequest,
    ClientNewLicenseRequest,
    ClientLicenseInfo,
    ServerPlatformChallenge,
    ClientPlatformChallengeResponse,
    ServerNewLicense,
    ServerUpgradeLicense,
    LicensingErrorMessage,
    ServerCertificate,
    NewLicenseInfo,
    PlatformChallengeResponseData,
);

/// Wire types that borrow nothing.
macro_rules! owned_targets {
    ($($ty:ident),* $(,)?) => {$(
        impl Target for $ty {
            type Value<'a> = $ty;

            fn shorten<'short, 'long: 'short>(value: $ty) -> $ty {
                value
            }
        }
    )*};
}

owned_targets!(ClientHardwareId, SetErrorInfoPdu);

/// The oracle: whatever `T` accepts must re-encode byte for byte and decode back to itself.
fn round_trip<T: Target>(data: &[u8]) {
    let Ok(value) = T::Value::decode(data) else {
        return;
    };
    let bytes = value
        .to_vec()
        .unwrap_or_else(|e| panic!("decoded {value:?} but cannot re-encode it: {e}"));
    assert_eq!(bytes, data, "re-encoding differs from the input: {value:?}");
    assert_eq!(value.encoded_len(), bytes.len(), "encoded_len: {value:?}");
    let again = T::Value::decode(&bytes).expect("re-encoding no longer decodes");
    assert_eq!(again, T::shorten(value), "decoding the re-encoding");
}

/// A whole licensing PDU on the wire: TPKT, X.224, MCS Send Data, security header, preamble,
/// message.
pub fn frame(data: &[u8]) {
    round_trip::<LicensingFrame<'static>>(data);
}

/// Bytes from LICENSE_PREAMBLE on: any licensing message.
pub fn licensing_pdu(data: &[u8]) {
    round_trip::<LicensingPdu<'static>>(data);
}

/// SERVER_LICENSE_REQUEST body (after the preamble).
pub fn license_request(data: &[u8]) {
    round_trip::<ServerLicenseRequest<'static>>(data);
}

/// CLIENT_NEW_LICENSE_REQUEST body.
pub fn new_license_request(data: &[u8]) {
    round_trip::<ClientNewLicenseRequest<'static>>(data);
}

/// CLIENT_LICENSE_INFO body.
pub fn license_info(data: &[u8]) {
    round_trip::<ClientLicenseInfo<'static>>(data);
}

/// SERVER_PLATFORM_CHALLENGE body.
pub fn platform_challenge(data: &[u8]) {
    round_trip::<ServerPlatformChallenge<'static>>(data);
}

/// CLIENT_PLATFORM_CHALLENGE_RESPONSE body.
pub fn challenge_response(data: &[u8]) {
    round_trip::<ClientPlatformChallengeResponse<'static>>(data);
}

/// SERVER_NEW_LICENSE body.
pub fn new_license(data: &[u8]) {
    round_trip::<ServerNewLicense<'static>>(data);
}

/// SERVER_UPGRADE_LICENSE body.
pub fn upgrade_license(data: &[u8]) {
    round_trip::<ServerUpgradeLicense<'static>>(data);
}

/// LICENSE_ERROR_MESSAGE body.
pub fn error_message(data: &[u8]) {
    round_trip::<LicensingErrorMessage<'static>>(data);
}

/// SERVER_CERTIFICATE: the data of the License Request's BB_CERTIFICATE_BLOB.
pub fn server_certificate(data: &[u8]) {
    round_trip::<ServerCertificate<'static>>(data);
}

/// NEW_LICENSE_INFO: the decrypted payload of a New or Upgrade License.
pub fn new_license_info(data: &[u8]) {
    round_trip::<NewLicenseInfo<'static>>(data);
}

/// PLATFORM_CHALLENGE_RESPONSE_DATA: the decrypted EncryptedPlatformChallengeResponse.
pub fn challenge_response_data(data: &[u8]) {
    round_trip::<PlatformChallengeResponseData<'static>>(data);
}

/// CLIENT_HARDWARE_ID: the decrypted EncryptedHWID.
pub fn hwid(data: &[u8]) {
    round_trip::<ClientHardwareId>(data);
}

/// TS_SET_ERROR_INFO_PDU: the Send Data userData of a Set Error Info PDU.
pub fn set_error_info(data: &[u8]) {
    round_trip::<SetErrorInfoPdu>(data);
}

/// TS_SECURITY_PACKET: the userData of a client's Security Exchange PDU.
pub fn security_exchange(data: &[u8]) {
    round_trip::<SecurityExchangePdu<'static>>(data);
}

/// Standard RDP Security on what a peer sends, as the host reads its connection sequence
/// after the Security Exchange: `data` opened by a host's layer as a whole PDU (TPKT / X.224 /
/// MCS Send Data or fast-path, [`RdpSecurityLayer::open_pdu`], what the session host's
/// transport calls for every PDU), as a slow-path userData and as a fast-path PDU must give a
/// value or a typed error, never a panic, and a whole PDU opened must still be a whole PDU;
/// and `data` sealed by a client (with the first two bytes as flags, at each method) must open
/// at the host to the same flags and bytes, PDU after PDU on one keystream.
pub fn rdp_security(data: &[u8]) {
    for method in EncryptionMethod::STRONGEST_FIRST {
        let keys = derive_rdp_session_keys(&[0x11; 32], &[0x22; 32], method);
        let mut host = RdpSecurityLayer::new(&keys, Side::Server);
        if let Ok(opened) = host.open_pdu(data, SendDataDirection::Request) {
            let whole = match opened.first() {
                Some(first) if FastPathPdu::starts_with(*first) => {
                    FastPathPdu::decode(&opened).is_ok()
                }
                _ => Tpkt::decode(&opened).is_ok(),
            };
            assert!(whole, "{method}: an opened PDU is no longer one");
        }
        let _ = host.open(data);
        if let Ok(pdu) = FastPathPdu::decode(data) {
            let _ = host.open_fast_path(&pdu);
        }

        let mut client = RdpSecurityLayer::new(&keys, Side::Client);
        let mut host = RdpSecurityLayer::new(&keys, Side::Server);
        let (flags, rest) = match data.split_first_chunk::<2>() {
            Some((flags, rest)) => (u16::from_le_bytes(*flags), rest),
            None => (0, data),
        };
        for (index, chunk) in rest.chunks(97).enumerate() {
            client.use_salted_checksums(index % 2 == 1);
            let mut sealed = Vec::new();
            client.seal_into(SecurityFlags(flags), chunk, &mut sealed);
            let opened = host
                .open(&sealed)
                .unwrap_or_else(|e| panic!("{method}: PDU {index} sealed by the client: {e}"));
            assert_eq!(opened.data.as_ref(), chunk, "{method}: PDU {index}");
            let expected = flags & !SecurityFlags::SEC_SECURE_CHECKSUM.0;
            assert!(opened.flags.contains(SecurityFlags(expected)), "{method}");
            assert_eq!(
                opened.flags.contains(SecurityFlags::SEC_SECURE_CHECKSUM),
                index % 2 == 1,
                "{method}: the checksum flag follows how the PDU was signed"
            );
        }
    }
}

/// Builds a [`LicensingPdu`] from `data` with `arbitrary`, encodes it, and checks that the
/// encoding decodes to the same value and re-encodes to the same bytes. The only acceptable
/// encoder failure is a length or count that really exceeds its field.
pub fn licensing_pdu_structured(data: &[u8]) {
    let mut unstructured = Unstructured::new(data);
    let Ok(pdu) = LicensingPdu::arbitrary(&mut unstructured) else {
        return;
    };
    let bytes = match pdu.to_vec() {
        Ok(bytes) => bytes,
        Err(error) => return assert_legitimate(error, &pdu),
    };
    assert_eq!(pdu.encoded_len(), bytes.len(), "encoded_len: {pdu:?}");
    let decoded = LicensingPdu::decode(&bytes)
        .unwrap_or_else(|e| panic!("{pdu:?} encoded to undecodable bytes: {e}"));
    assert_eq!(decoded, pdu, "decoding the encoding");
    let again = decoded.to_vec().expect("a decoded value re-encodes");
    assert_eq!(again, bytes, "re-encoding the decoded value");
}

/// A CAL file as `rdpele cal inspect` reads it: [`parse_cal_container`] must return a value or
/// a typed error, the same one when asked twice; an error's offset lies within the input; the CAL
/// of a NEW_LICENSE_INFO is the one [`parse_cal`] reads from its `pbLicenseInfo`.
pub fn cal(data: &[u8]) {
    let first = parse_cal_container(data);
    let second = parse_cal_container(data);
    assert_eq!(first, second, "reading the same bytes twice");
    match first {
        Ok((CalContainer::Pkcs7, _)) => {}
        Ok((CalContainer::NewLicenseInfo, cal)) => {
            let info = NewLicenseInfo::decode(data).expect("parse_cal_container decoded it");
            let inner = parse_cal(info.license_info);
            assert_eq!(inner, Ok(cal), "the CAL of the NEW_LICENSE_INFO read alone");
        }
        Err(error) => {
            // The message is what the CLI prints: formatting it must not panic either.
            let _ = error.to_string();
            if let CalError::Malformed { offset, .. } = &error {
                assert!(
                    *offset <= data.len(),
                    "{error} lies beyond the {} bytes read",
                    data.len()
                );
            }
        }
    }
}

fn assert_legitimate(error: EncodeError, pdu: &LicensingPdu<'_>) {
    let legitimate = match error {
        EncodeError::TooLong { length, max, .. } => {
            u64::try_from(length).map_or(true, |length| length > max)
        }
        EncodeError::TooMany { count, max, .. } => {
            u64::try_from(count).map_or(true, |count| count > max)
        }
    };
    assert!(legitimate, "unexpected encode error {error} for {pdu:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    const LICENSE_REQUEST: &[u8] = include_bytes!("../../captures/server_license_request.bin");
    const UPGRADE: &[u8] = include_bytes!("../../captures/server_upgrade_license.bin");
    const NEW_LICENSE_INFO: &[u8] = include_bytes!("../../captures/new_license_info.bin");
    const CAL: &[u8] = include_bytes!("../../captures/cal_temporary.p7b");
    const XRDP_REQUEST: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_license_request.bin");
    const XRDP_ALERT: &[u8] = include_bytes!("../../captures/xrdp-0.9.21_error_alert.bin");
    const XF_NLR: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_new_license_request.bin");
    const XF_RESPONSE: &[u8] =
        include_bytes!("../../captures/xfreerdp-2.11.7_platform_challenge_response.bin");
    const XF_INFO: &[u8] = include_bytes!("../../captures/xfreerdp-2.11.7_license_info.bin");

    const TARGETS: [fn(&[u8]); 16] = [
        frame,
        licensing_pdu,
        license_request,
        new_license_request,
        license_info,
        platform_challenge,
        challenge_response,
        new_license,
        upgrade_license,
        error_message,
        server_certificate,
        new_license_info,
        challenge_response_data,
        hwid,
        licensing_pdu_structured,
        cal,
    ];

    /// Every capture, with every framing a target might see it in: whole, after the security
    /// header, after security header and preamble.
    fn inputs() -> Vec<&'static [u8]> {
        let mut inputs = vec![
            LICENSE_REQUEST,
            &LICENSE_REQUEST[4..],
            NEW_LICENSE_INFO,
            CAL,
        ];
        for capture in [
            UPGRADE,
            XRDP_REQUEST,
            XRDP_ALERT,
            XF_NLR,
            XF_RESPONSE,
            XF_INFO,
        ] {
            inputs.extend([capture, &capture[4..], &capture[8..]]);
        }
        inputs
    }

    /// Every target runs over every capture in every framing without a broken invariant, and
    /// the captures reach the oracles rather than only the parsers' rejections: each is
    /// accepted by the target of its own structure (none is TPKT-framed: `frame` gets its
    /// inputs from its seeds).
    #[test]
    fn every_target_runs_every_capture_and_each_capture_reaches_its_own_oracle() {
        for target in TARGETS {
            for input in inputs() {
                target(input);
            }
        }
        let own_target: [(&[u8], Decoder); 9] = [
            (
                LICENSE_REQUEST,
                ("licensing_pdu", accepts::<LicensingPdu<'static>>),
            ),
            (
                &XRDP_REQUEST[8..],
                ("license_request", accepts::<ServerLicenseRequest<'static>>),
            ),
            (
                &UPGRADE[8..],
                ("upgrade_license", accepts::<ServerUpgradeLicense<'static>>),
            ),
            (
                &XRDP_ALERT[8..],
                ("error_message", accepts::<LicensingErrorMessage<'static>>),
            ),
            (
                &XF_NLR[8..],
                (
                    "new_license_request",
                    accepts::<ClientNewLicenseRequest<'static>>,
                ),
            ),
            (
                &XF_RESPONSE[8..],
                (
                    "challenge_response",
                    accepts::<ClientPlatformChallengeResponse<'static>>,
                ),
            ),
            (
                &XF_INFO[8..],
                ("license_info", accepts::<ClientLicenseInfo<'static>>),
            ),
            (
                NEW_LICENSE_INFO,
                ("new_license_info", accepts::<NewLicenseInfo<'static>>),
            ),
            (CAL, ("cal", |data| parse_cal_container(data).is_ok())),
        ];
        for (capture, (target, decodes)) in own_target {
            assert!(decodes(capture), "{target} rejects its capture");
            assert!(
                inputs().contains(&capture),
                "{target}: not among the inputs"
            );
        }
    }

    #[test]
    fn structured_target_runs_over_fixed_buffers() {
        let counting: Vec<u8> = (0..=255).collect();
        let buffers: [&[u8]; 5] = [&[], &[0; 64], &[0xff; 512], &counting, LICENSE_REQUEST];
        for buffer in buffers {
            licensing_pdu_structured(buffer);
        }
    }

    #[test]
    fn cal_target_runs_over_its_seeds_and_fixed_buffers() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/cal");
        for entry in std::fs::read_dir(seeds).unwrap() {
            cal(&std::fs::read(entry.unwrap().path()).unwrap());
        }
        let counting: Vec<u8> = (0..=255).collect();
        let truncated = &NEW_LICENSE_INFO[..NEW_LICENSE_INFO.len() - 1];
        let buffers: [&[u8]; 7] = [
            &[],
            &[0x30],
            &[0x30, 0x82, 0xff, 0xff],
            &[0; 64],
            &counting,
            &CAL[..CAL.len() / 2],
            truncated,
        ];
        for buffer in buffers {
            cal(buffer);
        }
    }

    fn accepts<T: Target>(data: &[u8]) -> bool {
        T::Value::decode(data).is_ok()
    }

    /// A target's name (its seed directory) and whether its parser accepts some bytes.
    type Decoder = (&'static str, fn(&[u8]) -> bool);

    /// The committed seed corpora (`fuzz/seeds/<target>/`, made by `fuzz/make-seeds.sh`) decode
    /// with their target's parser, so the fuzzer starts from inputs that reach the oracle.
    #[test]
    fn every_seed_decodes_with_its_target() {
        let seeds = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds");
        let decoders: [Decoder; 15] = [
            ("frame", accepts::<LicensingFrame<'static>>),
            ("licensing_pdu", accepts::<LicensingPdu<'static>>),
            ("license_request", accepts::<ServerLicenseRequest<'static>>),
            (
                "new_license_request",
                accepts::<ClientNewLicenseRequest<'static>>,
            ),
            ("license_info", accepts::<ClientLicenseInfo<'static>>),
            (
                "platform_challenge",
                accepts::<ServerPlatformChallenge<'static>>,
            ),
            (
                "challenge_response",
                accepts::<ClientPlatformChallengeResponse<'static>>,
            ),
            ("new_license", accepts::<ServerNewLicense<'static>>),
            ("upgrade_license", accepts::<ServerUpgradeLicense<'static>>),
            ("error_message", accepts::<LicensingErrorMessage<'static>>),
            ("server_certificate", accepts::<ServerCertificate<'static>>),
            ("new_license_info", accepts::<NewLicenseInfo<'static>>),
            (
                "challenge_response_data",
                accepts::<PlatformChallengeResponseData<'static>>,
            ),
            ("hwid", accepts::<ClientHardwareId>),
            ("cal", |data| parse_cal_container(data).is_ok()),
        ];
        for (target, decodes) in decoders {
            let mut count = 0;
            for entry in std::fs::read_dir(seeds.join(target)).unwrap() {
                let path = entry.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                assert!(decodes(&data), "{} is rejected", path.display());
                count += 1;
            }
            assert!(count > 0, "no seeds for {target}");
        }
    }

    #[test]
    fn real_messages_reach_the_oracle() {
        // The oracle only checks what decodes; make sure the captures do, in their framing.
        assert!(LicensingPdu::decode(LICENSE_REQUEST).is_ok());
        assert!(ServerLicenseRequest::decode(&XRDP_REQUEST[8..]).is_ok());
        assert!(ServerUpgradeLicense::decode(&UPGRADE[8..]).is_ok());
        assert!(NewLicenseInfo::decode(NEW_LICENSE_INFO).is_ok());
        assert!(ClientLicenseInfo::decode(&XF_INFO[8..]).is_ok());
    }
}

//! Property tests: every wire structure, generated with `arbitrary`, encodes to bytes that
//! decode to the same value and re-encode to the same bytes.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use rdpele_proto::wire::*;

/// The only acceptable encoder failure for a generated value is a length or count that really
/// exceeds its field.
fn assert_legitimate(error: EncodeError) {
    match error {
        EncodeError::TooLong { length, max, .. } => {
            assert!(u64::try_from(length).unwrap() > max, "{error}")
        }
        EncodeError::TooMany { count, max, .. } => {
            assert!(u64::try_from(count).unwrap() > max, "{error}")
        }
        other => panic!("unexpected encode error {other}"),
    }
}

macro_rules! round_trip_property {
    ($($name:ident: $ty:ty,)*) => {$(
        #[test]
        fn $name() {
            arbtest::arbtest(|u| {
                let value: $ty = u.arbitrary()?;
                match value.to_vec() {
                    Ok(bytes) => {
                        assert_eq!(bytes.len(), value.encoded_len());
                        let decoded = <$ty>::decode(&bytes)
                            .unwrap_or_else(|e| panic!("{value:?} encoded to undecodable bytes: {e}"));
                        assert_eq!(decoded, value);
                        assert_eq!(decoded.to_vec().unwrap(), bytes);
                    }
                    Err(error) => assert_legitimate(error),
                }
                Ok(())
            })
            .budget_ms(400);
        }
    )*};
}

round_trip_property! {
    license_preamble: LicensePreamble,
    license_binary_blob: LicenseBinaryBlob<'_>,
    product_info: ProductInfo<'_>,
    key_exchange_list: KeyExchangeList<'_>,
    scope: Scope<'_>,
    scope_list: ScopeList<'_>,
    rsa_public_key: RsaPublicKey<'_>,
    proprietary_certificate: ProprietaryCertificate<'_>,
    cert_blob: CertBlob<'_>,
    x509_certificate_chain: X509CertificateChain<'_>,
    server_certificate: ServerCertificate<'_>,
    server_certificate_blob: ServerCertificateBlob<'_>,
    server_license_request: ServerLicenseRequest<'_>,
    client_new_license_request: ClientNewLicenseRequest<'_>,
    client_license_info: ClientLicenseInfo<'_>,
    server_platform_challenge: ServerPlatformChallenge<'_>,
    client_platform_challenge_response: ClientPlatformChallengeResponse<'_>,
    server_new_license: ServerNewLicense<'_>,
    server_upgrade_license: ServerUpgradeLicense<'_>,
    licensing_error_message: LicensingErrorMessage<'_>,
    new_license_info: NewLicenseInfo<'_>,
    platform_challenge_response_data: PlatformChallengeResponseData<'_>,
    client_hardware_id: ClientHardwareId,
    licensing_pdu: LicensingPdu<'_>,
}

//! Every licensing structure ([MS-RDPELE] 2.2, [MS-RDPBCGR] 2.2.1.12) as a [`Wire`] type.
//! Decoders borrow from the input and never allocate; encoders append to a caller-provided
//! [`bytes::BufMut`]. Each type's documentation names its specification section.
//!
//! [MS-RDPELE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpele/3d3f160a-3ab3-4dfb-ba4e-47c27cd79409
//! [MS-RDPBCGR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/c330f4c8-896f-4d41-983c-aec97fbdbb90

pub(crate) mod codec;
pub(crate) mod error;
pub(crate) mod open_enum;

mod blob;
mod challenge_response;
mod challenge_response_data;
mod error_message;
mod hwid;
mod key_exchange_list;
mod license_info;
mod license_request;
mod licensing_pdu;
mod list;
mod new_license;
mod new_license_info;
mod new_license_request;
mod platform_challenge;
mod preamble;
mod product_info;
mod proprietary_certificate;
mod scope_list;
mod server_certificate;
mod text;
mod x509_chain;

pub use blob::{BlobType, LicenseBinaryBlob};
pub use challenge_response::ClientPlatformChallengeResponse;
pub use challenge_response_data::{ClientType, LicenseDetailLevel, PlatformChallengeResponseData};
pub use codec::Wire;
pub use error::{EncodeError, WireError, WireErrorKind};
pub use error_message::{ErrorCode, LicensingErrorMessage, StateTransition};
pub use hwid::ClientHardwareId;
pub use key_exchange_list::{KeyExchangeList, KEY_EXCHANGE_ALG_RSA};
pub use license_info::ClientLicenseInfo;
pub use license_request::ServerLicenseRequest;
pub use licensing_pdu::{LicensingMessage, LicensingPdu};
pub use list::Counted;
pub use new_license::{ServerLicense, ServerNewLicense, ServerUpgradeLicense};
pub use new_license_info::NewLicenseInfo;
pub use new_license_request::ClientNewLicenseRequest;
pub use platform_challenge::ServerPlatformChallenge;
pub use preamble::{LicensePreamble, MessageType, PreambleFlags};
pub use product_info::ProductInfo;
pub use proprietary_certificate::{ProprietaryCertificate, RsaPublicKey, SIGNATURE_ALG_RSA};
pub use scope_list::{Scope, ScopeList};
pub use server_certificate::{
    CertificateChain, ServerCertificate, ServerCertificateBlob, CERT_CHAIN_VERSION_1,
    CERT_CHAIN_VERSION_2, CERT_TEMPORARILY_ISSUED,
};
pub use text::{Ascii, Utf16};
pub use x509_chain::{CertBlob, X509CertificateChain, MAX_CERTIFICATES};

//! Parsers and encoders for every licensing structure (MS-RDPELE 2.2, MS-RDPBCGR 2.2.1.12), one
//! module per structure. Parsers borrow from the input and never allocate; encoders append to a
//! caller-provided [`bytes::BufMut`].

pub(crate) mod open_enum;

pub mod blob;
pub mod challenge_response;
pub mod challenge_response_data;
pub mod codec;
pub mod error;
pub mod error_message;
pub mod hwid;
pub mod key_exchange_list;
pub mod license_info;
pub mod license_request;
pub mod licensing_pdu;
pub mod list;
pub mod new_license;
pub mod new_license_info;
pub mod new_license_request;
pub mod platform_challenge;
pub mod preamble;
pub mod product_info;
pub mod proprietary_certificate;
pub mod scope_list;
pub mod server_certificate;
pub mod text;
pub mod x509_chain;

pub use blob::{BlobType, LicenseBinaryBlob};
pub use challenge_response::ClientPlatformChallengeResponse;
pub use challenge_response_data::{ClientType, LicenseDetailLevel, PlatformChallengeResponseData};
pub use codec::Wire;
pub use error::{EncodeError, WireError, WireErrorKind};
pub use error_message::{ErrorCode, LicensingErrorMessage, StateTransition};
pub use hwid::ClientHardwareId;
pub use key_exchange_list::KeyExchangeList;
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
pub use proprietary_certificate::{ProprietaryCertificate, RsaPublicKey};
pub use scope_list::{Scope, ScopeList};
pub use server_certificate::{CertificateChain, ServerCertificate, ServerCertificateBlob};
pub use text::{Ascii, Utf16};
pub use x509_chain::{CertBlob, X509CertificateChain};

//! `rdpele serve --config FILE`: what the emulated session host is (version, licensing mode,
//! what its License Request announces, which certificate it proves itself with) and the faults
//! it injects into licensing. Every field is optional; `examples/serve.toml` documents them all.

use std::path::Path;
use std::time::{Duration, SystemTime};

use rdpele_proto::crypto::{RsaBackend, MAX_MODULUS_BITS, MIN_MODULUS_BITS};
use rdpele_proto::machine::{ChallengeCheck, ChallengeSource};
use rdpele_proto::wire::{ErrorCode, StateTransition};
use serde::Deserialize;

use rdpele_license_server::clock::parse_instant;
use rdpele_license_server::model::{LicensingMode, WindowsVersion};

/// The largest config file read: a config is a few hundred bytes.
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Why a config file was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    #[error("{path}: cannot read it: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: larger than {MAX_CONFIG_BYTES} bytes")]
    TooLarge { path: String },
    #[error("{path}: not UTF-8: {source}")]
    NotUtf8 {
        path: String,
        source: std::str::Utf8Error,
    },
    #[error("{path}: {source}")]
    Invalid { path: String, source: InvalidConfig },
}

/// Why a config's text was not taken: TOML that does not parse, or a key whose value is not
/// one it accepts.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidConfig {
    #[error("{0}")]
    Toml(#[from] toml::de::Error),
    #[error("{key}: {reason}")]
    Value { key: String, reason: String },
}

impl InvalidConfig {
    fn value(key: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Value {
            key: key.into(),
            reason: reason.to_string(),
        }
    }
}

/// The parsed configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostConfig {
    /// Written into the data directory's session host settings at start, when given; otherwise
    /// the data directory's (`rdpele admin server set`) stay.
    pub version: Option<WindowsVersion>,
    pub mode: Option<LicensingMode>,
    /// Replaces the recorded start of the 120-day grace period.
    pub grace_period_start: Option<SystemTime>,
    pub product: Product,
    pub certificate: CertificateKind,
    /// What a Client Platform Challenge Response must get right beyond its MAC.
    pub challenge_check: ChallengeCheck,
    /// What the Platform Challenge carries: Windows' "TEST\0" unless told otherwise.
    pub challenge: ChallengeSource,
    /// The size of the host's licensing key when the host makes it; `None` keeps the data
    /// directory's key, or makes a 2048-bit one.
    pub licensing_key_bits: Option<usize>,
    /// Who does the RSA private-key operations: the host's premaster decryption and, with the
    /// embedded license server, its CAL signatures.
    pub rsa_backend: RsaBackend,
    /// Which security layer the host accepts clients with.
    pub security: SecurityLayer,
    /// What Standard RDP Security encrypts, when a client comes without TLS.
    pub encryption_level: EncryptionLevel,
    pub faults: Faults,
}

/// The host's security layer, as Windows' "Require use of specific security layer" setting
/// names them (MS-RDPBCGR 5.3 Standard RDP Security, 5.4 Enhanced RDP Security with TLS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SecurityLayer {
    /// Windows' default: TLS when the client offers it, Standard RDP Security when it offers
    /// nothing else.
    #[default]
    Negotiate,
    /// TLS only: a client that does not offer it gets SSL_REQUIRED_BY_SERVER.
    Tls,
    /// Standard RDP Security only: a client that offers TLS gets SSL_NOT_ALLOWED_BY_SERVER
    /// (MS-RDPBCGR 2.2.1.2.2) and may come back without it.
    Rdp,
}

/// The encryption level of Standard RDP Security (MS-RDPBCGR 5.3.1, 2.2.1.4.3), FIPS aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, PartialOrd, Ord)]
pub enum EncryptionLevel {
    /// Nothing encrypted: no server random, no Security Exchange.
    None,
    /// What the client sends is encrypted, what the host sends is not.
    Low,
    /// Windows' default: both directions, at the strongest method the client offers.
    #[default]
    ClientCompatible,
    /// Both directions at 128 bits; a client that cannot is refused.
    High,
}

impl EncryptionLevel {
    /// `encryptionLevel` of the Server Security Data.
    pub fn wire(self) -> u32 {
        match self {
            Self::None => 0,
            Self::Low => 1,
            Self::ClientCompatible => 2,
            Self::High => 3,
        }
    }
}

impl Default for HostConfig {
    fn default() -> Self {
        Self {
            version: None,
            mode: None,
            grace_period_start: None,
            product: Product::default(),
            certificate: CertificateKind::default(),
            // Windows checks the MAC only (see ChallengeCheck); so does the emulated host
            // unless told to be strict.
            challenge_check: ChallengeCheck::MacOnly,
            challenge: ChallengeSource::Windows,
            licensing_key_bits: None,
            rsa_backend: RsaBackend::default(),
            security: SecurityLayer::default(),
            encryption_level: EncryptionLevel::default(),
            faults: Faults::default(),
        }
    }
}

/// What the License Request announces (MS-RDPELE 2.2.2.1 PRODUCT_INFO and SCOPE_LIST).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Product {
    pub company_name: String,
    pub product_id: String,
    /// PRODUCT_INFO dwVersion; `None` derives it from the host version.
    pub version: Option<u32>,
    pub scope: String,
}

impl Default for Product {
    fn default() -> Self {
        Self {
            company_name: "Microsoft Corporation".to_owned(),
            product_id: "A02".to_owned(),
            version: None,
            scope: "microsoft.com".to_owned(),
        }
    }
}

/// The SERVER_CERTIFICATE the License Request carries (MS-RDPBCGR 2.2.1.4.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum CertificateKind {
    /// CERT_CHAIN_VERSION_1 with an RSA key signed by the Terminal Services key.
    Proprietary,
    /// CERT_CHAIN_VERSION_2: the license server's certificate and the host's, issued by it —
    /// what Windows hosts send (the 2008 capture) and the only kind IronRDP 0.12 can use (it
    /// reads a proprietary certificate's little-endian modulus as big-endian).
    #[default]
    X509,
}

/// A licensing step, as fault injection names them: the client's messages the host answers,
/// and the host's own messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    LicenseRequest,
    NewLicenseRequest,
    LicenseInfo,
    PlatformChallenge,
    ChallengeResponse,
    NewLicense,
    UpgradeLicense,
}

impl Step {
    const NAMES: [(&'static str, Step); 7] = [
        ("license-request", Step::LicenseRequest),
        ("new-license-request", Step::NewLicenseRequest),
        ("license-info", Step::LicenseInfo),
        ("platform-challenge", Step::PlatformChallenge),
        ("challenge-response", Step::ChallengeResponse),
        ("new-license", Step::NewLicense),
        ("upgrade-license", Step::UpgradeLicense),
    ];

    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(_, step)| *step == self)
            .map_or("?", |(name, _)| name)
    }

    fn parse(text: &str) -> Option<Self> {
        Self::NAMES
            .iter()
            .find(|(name, _)| *name == text)
            .map(|(_, step)| *step)
    }

    fn list() -> String {
        Self::NAMES.map(|(name, _)| name).join(", ")
    }

    /// Whether the step is a message the client sends (answerable with an error).
    pub fn from_client(self) -> bool {
        matches!(
            self,
            Step::NewLicenseRequest | Step::LicenseInfo | Step::ChallengeResponse
        )
    }
}

/// Faults injected into licensing.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Faults {
    /// Answer the client's message at a step with this Licensing Error Message instead.
    pub answer_with_error: Vec<(Step, ErrorCode, StateTransition)>,
    /// Corrupt the MAC of the host's message at these steps.
    pub corrupt_mac: Vec<Step>,
    /// Hold the host's message at a step this long before sending it.
    pub delays: Vec<(Step, Duration)>,
    /// Behave as if the license server could not be reached.
    pub license_server_unreachable: bool,
    /// Behave as if every CAL pack were fully allocated.
    pub pool_exhausted: bool,
}

impl Faults {
    pub fn error_for(&self, step: Step) -> Option<(ErrorCode, StateTransition)> {
        self.answer_with_error
            .iter()
            .find(|(at, _, _)| *at == step)
            .map(|(_, code, transition)| (*code, *transition))
    }

    pub fn corrupts_mac(&self, step: Step) -> bool {
        self.corrupt_mac.contains(&step)
    }

    pub fn delay(&self, step: Step) -> Option<Duration> {
        self.delays
            .iter()
            .find(|(at, _)| *at == step)
            .map(|(_, delay)| *delay)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    host: RawHost,
    #[serde(default)]
    product: RawProduct,
    #[serde(default)]
    fault: Vec<RawFault>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHost {
    version: Option<String>,
    licensing_mode: Option<String>,
    certificate: Option<String>,
    grace_period_start: Option<String>,
    challenge_check: Option<String>,
    challenge: Option<String>,
    licensing_key_bits: Option<usize>,
    rsa_backend: Option<String>,
    security: Option<String>,
    encryption_level: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProduct {
    company_name: Option<String>,
    product_id: Option<String>,
    version: Option<u32>,
    scope: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFault {
    kind: String,
    step: Option<String>,
    error_code: Option<String>,
    state_transition: Option<String>,
    delay_ms: Option<u64>,
}

impl HostConfig {
    /// Reads and checks a config file, refusing one over a megabyte rather than reading it.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        use std::io::Read;
        let path_text = || path.display().to_string();
        let mut bytes = Vec::new();
        std::fs::File::open(path)
            .and_then(|file| file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes))
            .map_err(|source| ConfigError::Read {
                path: path_text(),
                source,
            })?;
        if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_CONFIG_BYTES {
            return Err(ConfigError::TooLarge { path: path_text() });
        }
        let text = std::str::from_utf8(&bytes).map_err(|source| ConfigError::NotUtf8 {
            path: path_text(),
            source,
        })?;
        Self::parse(text).map_err(|source| ConfigError::Invalid {
            path: path_text(),
            source,
        })
    }

    /// Parses a config's TOML text; errors name the key and what it accepts.
    pub fn parse(text: &str) -> Result<Self, InvalidConfig> {
        let raw: RawConfig = toml::from_str(text)?;
        let defaults = Product::default();
        let product = Product {
            company_name: raw.product.company_name.unwrap_or(defaults.company_name),
            product_id: raw.product.product_id.unwrap_or(defaults.product_id),
            version: raw.product.version,
            scope: raw.product.scope.unwrap_or(defaults.scope),
        };
        let mut faults = Faults::default();
        for (index, fault) in raw.fault.iter().enumerate() {
            add_fault(&mut faults, index, fault)?;
        }
        Ok(Self {
            version: raw
                .host
                .version
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| InvalidConfig::value("host.version", e))?,
            mode: raw
                .host
                .licensing_mode
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|e| InvalidConfig::value("host.licensing-mode", e))?,
            grace_period_start: raw
                .host
                .grace_period_start
                .as_deref()
                .map(parse_instant)
                .transpose()
                .map_err(|e| InvalidConfig::value("host.grace-period-start", e))?,
            certificate: match raw.host.certificate.as_deref() {
                None | Some("x509") => CertificateKind::X509,
                Some("proprietary") => CertificateKind::Proprietary,
                Some(other) => {
                    return Err(InvalidConfig::value(
                        "host.certificate",
                        format!("{other:?} is neither \"proprietary\" nor \"x509\""),
                    ))
                }
            },
            challenge_check: match raw.host.challenge_check.as_deref() {
                None | Some("mac-only") => ChallengeCheck::MacOnly,
                Some("strict") => ChallengeCheck::Strict,
                Some(other) => {
                    return Err(InvalidConfig::value(
                        "host.challenge-check",
                        format!("{other:?} is neither \"mac-only\" nor \"strict\""),
                    ))
                }
            },
            challenge: match raw.host.challenge.as_deref() {
                None | Some("windows") => ChallengeSource::Windows,
                Some("random") => ChallengeSource::Random,
                Some(other) => {
                    return Err(InvalidConfig::value(
                        "host.challenge",
                        format!("{other:?} is neither \"windows\" nor \"random\""),
                    ))
                }
            },
            licensing_key_bits: raw
                .host
                .licensing_key_bits
                .map(check_key_bits)
                .transpose()?,
            rsa_backend: match raw.host.rsa_backend.as_deref() {
                None => RsaBackend::default(),
                Some(name) => rsa_backend(name)?,
            },
            security: match raw.host.security.as_deref() {
                None | Some("negotiate") => SecurityLayer::Negotiate,
                Some("tls") => SecurityLayer::Tls,
                Some("rdp") => SecurityLayer::Rdp,
                Some(other) => {
                    return Err(InvalidConfig::value(
                        "host.security",
                        format!("{other:?} is not \"negotiate\", \"tls\" or \"rdp\""),
                    ))
                }
            },
            encryption_level: match raw.host.encryption_level.as_deref() {
                None | Some("client-compatible") => EncryptionLevel::ClientCompatible,
                Some("none") => EncryptionLevel::None,
                Some("low") => EncryptionLevel::Low,
                Some("high") => EncryptionLevel::High,
                Some(other) => {
                    return Err(InvalidConfig::value(
                        "host.encryption-level",
                        format!(
                            "{other:?} is not \"none\", \"low\", \"client-compatible\" or \"high\" (FIPS is not implemented)"
                        ),
                    ))
                }
            },
            product,
            faults,
        })
    }
}

fn add_fault(faults: &mut Faults, index: usize, fault: &RawFault) -> Result<(), InvalidConfig> {
    let bad = |reason: String| InvalidConfig::value(format!("fault[{index}]"), reason);
    let step = || {
        fault
            .step
            .as_deref()
            .ok_or_else(|| format!("kind {:?} needs a step ({})", fault.kind, Step::list()))
            .and_then(|text| {
                Step::parse(text)
                    .ok_or_else(|| format!("unknown step {text:?}; steps: {}", Step::list()))
            })
            .map_err(bad)
    };
    match fault.kind.as_str() {
        "error" => {
            let step = step()?;
            if !step.from_client() {
                return Err(bad(format!(
                    "an error answers a client message: step {:?} is the host's own",
                    step.name()
                )));
            }
            let code = fault.error_code.as_deref().ok_or_else(|| {
                bad("kind \"error\" needs error-code (e.g. \"ERR_NO_LICENSE\")".into())
            })?;
            let code = ErrorCode::from_name(code)
                .ok_or_else(|| bad(format!("unknown error-code {code:?}")))?;
            let transition = match fault.state_transition.as_deref() {
                None => StateTransition::ST_TOTAL_ABORT,
                Some(name) => StateTransition::from_name(name)
                    .ok_or_else(|| bad(format!("unknown state-transition {name:?}")))?,
            };
            faults.answer_with_error.push((step, code, transition));
        }
        "corrupt-mac" => {
            let step = step()?;
            if !matches!(
                step,
                Step::PlatformChallenge | Step::NewLicense | Step::UpgradeLicense
            ) {
                return Err(bad(format!(
                    "the host's messages with a MAC are platform-challenge, new-license and \
                     upgrade-license, not {:?}",
                    step.name()
                )));
            }
            faults.corrupt_mac.push(step);
        }
        "delay" => {
            let step = step()?;
            if step.from_client() {
                return Err(bad(format!(
                    "a delay holds one of the host's messages: {:?} is the client's",
                    step.name()
                )));
            }
            let ms = fault
                .delay_ms
                .ok_or_else(|| bad("kind \"delay\" needs delay-ms".into()))?;
            faults.delays.push((step, Duration::from_millis(ms)));
        }
        "license-server-unreachable" => faults.license_server_unreachable = true,
        "pool-exhausted" => faults.pool_exhausted = true,
        other => {
            return Err(bad(format!(
                "unknown kind {other:?}; kinds: error, corrupt-mac, delay, \
                 license-server-unreachable, pool-exhausted"
            )))
        }
    }
    Ok(())
}

/// A licensing key size: whole bytes (the wire measures keys in bytes), within what the crypto
/// module accepts.
/// An RSA backend this build has: "openssl" needs the `openssl` cargo feature.
fn rsa_backend(name: &str) -> Result<RsaBackend, InvalidConfig> {
    let bad = |reason: String| InvalidConfig::value("host.rsa-backend", reason);
    let known: Vec<String> = RsaBackend::ALL
        .iter()
        .filter(|backend| backend.is_available())
        .map(ToString::to_string)
        .collect();
    let backend: RsaBackend = name
        .parse()
        .map_err(|_| bad(format!("{name:?}: one of {}", known.join(", "))))?;
    if !backend.is_available() {
        return Err(bad(format!(
            "{name:?} is not in this build (built without the `openssl` feature): one of {}",
            known.join(", ")
        )));
    }
    Ok(backend)
}

fn check_key_bits(bits: usize) -> Result<usize, InvalidConfig> {
    if (MIN_MODULUS_BITS..=MAX_MODULUS_BITS).contains(&bits) && bits.is_multiple_of(8) {
        Ok(bits)
    } else {
        Err(InvalidConfig::value(
            "host.licensing-key-bits",
            format!("{bits}: a multiple of 8 from {MIN_MODULUS_BITS} to {MAX_MODULUS_BITS}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_with_its_documented_values() {
        let text = include_str!("../../../examples/serve.toml");
        let config = HostConfig::parse(text).unwrap();
        assert_eq!(config.version, Some(WindowsVersion::V2022));
        assert_eq!(config.mode, Some(LicensingMode::PerDevice));
        assert_eq!(config.certificate, CertificateKind::X509);
        assert_eq!(config.challenge_check, ChallengeCheck::Strict);
        assert_eq!(
            HostConfig::default().challenge_check,
            ChallengeCheck::MacOnly
        );
        assert_eq!(config.challenge, ChallengeSource::Random);
        assert_eq!(HostConfig::default().challenge, ChallengeSource::Windows);
        assert_eq!(config.product.scope, "microsoft.com");
        assert_eq!(config.licensing_key_bits, None);
        assert!(config.faults.answer_with_error.is_empty());
        assert!(!config.faults.pool_exhausted);
    }

    #[test]
    fn the_rsa_backend_is_read_and_an_unknown_one_is_refused() {
        let config = HostConfig::parse("[host]\nrsa-backend = \"rust\"").unwrap();
        assert_eq!(config.rsa_backend, RsaBackend::Rust);
        assert_eq!(HostConfig::default().rsa_backend, RsaBackend::default());
        let error = HostConfig::parse("[host]\nrsa-backend = \"gmp\"").unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("host.rsa-backend: \"gmp\": one of rust"),
            "{error}"
        );
    }

    #[test]
    fn the_licensing_key_size_is_read() {
        let config = HostConfig::parse("[host]\nlicensing-key-bits = 512").unwrap();
        assert_eq!(config.licensing_key_bits, Some(512));
        assert_eq!(HostConfig::default().licensing_key_bits, None);
    }

    #[test]
    fn faults_parse_with_their_parameters() {
        let config = HostConfig::parse(
            r#"
            [[fault]]
            kind = "error"
            step = "license-info"
            error-code = "ERR_NO_LICENSE"
            state-transition = "ST_RESEND_LAST_MESSAGE"
            [[fault]]
            kind = "corrupt-mac"
            step = "new-license"
            [[fault]]
            kind = "delay"
            step = "platform-challenge"
            delay-ms = 1500
            [[fault]]
            kind = "pool-exhausted"
            [[fault]]
            kind = "license-server-unreachable"
            "#,
        )
        .unwrap();
        let faults = config.faults;
        assert_eq!(
            faults.error_for(Step::LicenseInfo),
            Some((
                ErrorCode::ERR_NO_LICENSE,
                StateTransition::ST_RESEND_LAST_MESSAGE
            ))
        );
        assert_eq!(faults.error_for(Step::NewLicenseRequest), None);
        assert!(faults.corrupts_mac(Step::NewLicense));
        assert!(!faults.corrupts_mac(Step::UpgradeLicense));
        assert_eq!(
            faults.delay(Step::PlatformChallenge),
            Some(Duration::from_millis(1500))
        );
        assert!(faults.pool_exhausted && faults.license_server_unreachable);
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("[host]\nversion = \"2020\"", "host.version"),
            ("[host]\nlicensing-mode = \"per-seat\"", "host.licensing-mode"),
            ("[host]\ncertificate = \"pem\"", "host.certificate"),
            ("[host]\nchallenge-check = \"lax\"", "host.challenge-check"),
            ("[host]\ngrace-period-start = \"yesterday\"", "host.grace-period-start"),
            ("[host]\nlicensing-key-bits = 500", "host.licensing-key-bits"),
            ("[host]\nlicensing-key-bits = 256", "host.licensing-key-bits"),
            ("[[fault]]\nkind = \"explode\"", "unknown kind"),
            ("[[fault]]\nkind = \"error\"\nstep = \"license-info\"", "error-code"),
            (
                "[[fault]]\nkind = \"error\"\nstep = \"license-info\"\nerror-code = \"ERR_NOPE\"",
                "unknown error-code",
            ),
            (
                "[[fault]]\nkind = \"error\"\nstep = \"new-license\"\nerror-code = \"ERR_NO_LICENSE\"",
                "the host's own",
            ),
            ("[[fault]]\nkind = \"corrupt-mac\"\nstep = \"license-request\"", "MAC"),
            ("[[fault]]\nkind = \"delay\"\nstep = \"platform-challenge\"", "delay-ms"),
            ("[[fault]]\nkind = \"delay\"\nstep = \"wat\"\ndelay-ms = 1", "unknown step"),
            ("[hots]\nversion = \"2022\"", "unknown field"),
            ("[host]\nchallenge = \"TEST\"", "host.challenge"),
        ];
        for (text, expected) in cases {
            let error = HostConfig::parse(text).unwrap_err();
            assert!(error.to_string().contains(expected), "{text:?}: {error}");
        }
    }
}

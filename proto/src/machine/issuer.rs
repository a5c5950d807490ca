//! What the server state machine asks of a license server (MS-RDPELE 3.2.5.2–3.2.5.5): the
//! decisions are the license server's, the protocol is the machine's.

use std::sync::Arc;
use std::time::SystemTime;

use crate::cal::Cal;
use crate::wire::{ClientHardwareId, ErrorCode, StateTransition};

/// The client behind a New License Request whose platform challenge succeeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientInfo {
    pub hwid: ClientHardwareId,
    pub platform_id: u32,
    pub user_name: String,
    pub machine_name: String,
}

/// A CAL presented in a License Info, with the HWID the client proved (MAC-checked) and the
/// CAL already parsed and matched against that HWID (the parse shared with the host's
/// [`crate::cal::CalCache`]).
#[derive(Clone, Debug)]
pub struct PresentedLicense {
    pub hwid: ClientHardwareId,
    pub platform_id: u32,
    /// The CAL exactly as presented (pbLicenseInfo).
    pub license_info: Vec<u8>,
    pub cal: Arc<Cal>,
}

/// How a presented license fares before any challenge (MS-RDPELE 3.2.5.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Assessment {
    /// Case 1: valid, nothing to upgrade: STATUS_VALID_CLIENT ends licensing.
    Valid,
    /// The license needs an upgrade (temporary → permanent, or renewal): challenge the client,
    /// then ask [`LicenseIssuer::upgrade_license`].
    Upgrade,
    Refuse(Refusal),
}

/// What to answer once the client has passed the platform challenge (MS-RDPELE 3.2.5.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Send this CAL (`pbLicenseInfo`) in a New License or an Upgrade License.
    Issue(Vec<u8>),
    /// STATUS_VALID_CLIENT without a new CAL (a grace period, or the license server is away and
    /// the old license still holds).
    Valid,
    Refuse(Refusal),
}

/// A Licensing Error Message to end with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error_code: ErrorCode,
    pub state_transition: StateTransition,
}

impl Refusal {
    pub const fn abort(error_code: ErrorCode) -> Self {
        Self {
            error_code,
            state_transition: StateTransition::ST_TOTAL_ABORT,
        }
    }
}

/// What the server machine asks the license server, handed out by
/// [`super::ServerMachine::poll_query`] so the caller can decide off the machine's thread (the
/// way rustls' `Acceptor` hands the ClientHello out): a store transaction and a CAL signature
/// need not block whoever drives the protocol. Answer with [`super::ServerMachine::answer`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum LicenseQuery {
    /// MS-RDPELE 3.2.5.5 after a New License Request: answered with a [`Decision`].
    NewLicense(ClientInfo),
    /// MS-RDPELE 3.2.5.3, a License Info before any challenge: answered with an [`Assessment`].
    AssessLicense(Box<PresentedLicense>),
    /// MS-RDPELE 3.2.5.5 after an `Upgrade` assessment and a passed challenge: answered with a
    /// [`Decision`].
    UpgradeLicense(Box<PresentedLicense>),
}

/// The license server's answer to a [`LicenseQuery`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LicenseAnswer {
    Assessment(Assessment),
    Decision(Decision),
}

impl LicenseQuery {
    /// Asks `issuer` synchronously: for callers with nothing to gain from deciding elsewhere
    /// (tests, fuzzing, benchmarks, a license server answering over HTTP).
    pub fn ask(&self, now: SystemTime, issuer: &mut impl LicenseIssuer) -> LicenseAnswer {
        match self {
            Self::NewLicense(client) => LicenseAnswer::Decision(issuer.new_license(now, client)),
            Self::AssessLicense(presented) => {
                LicenseAnswer::Assessment(issuer.assess_license(now, presented))
            }
            Self::UpgradeLicense(presented) => {
                LicenseAnswer::Decision(issuer.upgrade_license(now, presented))
            }
        }
    }
}

/// The license server as the session host's state machine sees it. Calls happen only after the
/// client has proved its keys (valid MACs), so nothing is issued to a client that fails the
/// protocol; `upgrade_license` follows only an `Upgrade` assessment of the same license.
pub trait LicenseIssuer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision;
    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment;
    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision;
}

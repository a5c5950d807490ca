//! The license server as the session host and the admin CLI use it: one decision path that
//! reads the virtual clock, lets the [`policy`](super::policy) decide inside a [`Store`]
//! transaction, and builds the CAL the decision grants with [`rdpele_proto::cal`]. It is also
//! the [`LicenseIssuer`] the protocol state machine asks.

use std::borrow::Cow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_proto::cal::{
    build_cal, Cal, CalError, CalKind, CalRequest, CalType, LicenseSerial, LicenseServerIdentity,
    ProductVersion,
};
use rdpele_proto::crypto::LicensingPrivateKey;
use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseIssuer, PresentedLicense, Refusal,
};
use rdpele_proto::wire::{ClientHardwareId, ErrorCode, StateTransition};

use super::clock::{Clock, ClockError};
use super::decision::{Change, PolicyDecision, Snapshot};
use super::model::{
    HostInfo, IssuedLicense, LicenseRefusal, LicenseRequest, LicenseStatus, LicensingMode,
    PresentedCal, RequestOutcome, WindowsVersion,
};
use super::policy;
use super::store::{Holder, Store, StoreError};

/// The license server's signing key, kept in the data directory beside the store.
pub const KEY_FILE: &str = "license_server_key.pem";
/// Windows license servers sign with 2048-bit RSA.
const KEY_BITS: usize = 2048;
/// Validity of the license server's self-signed certificate in every CAL: wide enough for any
/// virtual date, and within X.509 UTCTime (which ends with 2049).
const IDENTITY_NOT_BEFORE: Duration = Duration::from_secs(946_684_800); // 2000-01-01T00:00:00Z
const IDENTITY_NOT_AFTER: Duration = Duration::from_secs(2_524_607_999); // 2049-12-31T23:59:59Z

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("virtual clock: {0}")]
    Clock(#[from] ClockError),
    #[error("license server key {path}: {reason}")]
    Key { path: String, reason: String },
    #[error("building the CAL: {0}")]
    Cal(#[from] CalError),
}

/// What a client gets: the outcome, and the CAL bytes when one is issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Granted {
    pub outcome: RequestOutcome,
    /// `pbLicenseInfo`, exactly as the protocol carries it.
    pub cal: Option<Vec<u8>>,
}

/// The emulated license server over one data directory.
#[derive(Debug)]
pub struct LicenseServer {
    store: Store,
    clock: Clock,
    key: LicensingPrivateKey,
    host: HostInfo,
    rng: StdRng,
    /// The self-signed license server certificate put in every CAL, built (one RSA signature)
    /// once per name/domain/product id rather than once per CAL.
    identity: Option<(IdentityKey, LicenseServerIdentity)>,
    /// Fault injection: decide as if every pack were fully allocated.
    pool_exhausted: bool,
}

/// What the license server's certificate names; a change in settings makes a new one.
type IdentityKey = (String, String, String);

impl LicenseServer {
    /// Opens the store in `dir` and its signing key (created on first use) for a session host
    /// described by `host`.
    pub fn open(dir: &Path, host: HostInfo) -> Result<Self, ServerError> {
        let store = Store::open(dir)?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        Ok(Self {
            store,
            clock: Clock::system(),
            key,
            host,
            rng: StdRng::from_rng(&mut rand::rng()),
            identity: None,
            pool_exhausted: false,
        })
    }

    /// Replaces the clock and the randomness, for reproducible runs.
    pub fn with_clock_and_seed(mut self, clock: Clock, seed: u64) -> Self {
        self.clock = clock;
        self.rng = StdRng::seed_from_u64(seed);
        self
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn host(&self) -> HostInfo {
        self.host
    }

    /// Makes every decision see each pack fully allocated (nothing is written to the packs):
    /// the session host's `pool-exhausted` fault.
    pub fn set_pool_exhausted(&mut self, exhausted: bool) {
        self.pool_exhausted = exhausted;
    }

    /// Changes the session host the next decisions are for: a remote license server serves
    /// several hosts, each request naming its own.
    pub fn set_host(&mut self, host: HostInfo) {
        self.host = host;
    }

    /// The virtual now: real time plus the offset kept in the store.
    pub fn now(&self) -> Result<SystemTime, ServerError> {
        self.clock.now(&self.store).map_err(ServerError::from)
    }

    /// Decides `request` at `now`, records the decision and builds and signs the CAL it
    /// grants, if any.
    pub fn decide(
        &mut self,
        request: &LicenseRequest,
        now: SystemTime,
    ) -> Result<Granted, ServerError> {
        let rng = &mut self.rng;
        let exhausted = self.pool_exhausted;
        let decision = self.store.decide(&holder(request), now, |snapshot| {
            policy::decide(request, &seen(snapshot, exhausted), rng)
        })?;
        let cal = inserted(&decision).map(|row| self.build(row)).transpose()?;
        Ok(Granted {
            outcome: decision.outcome,
            cal,
        })
    }

    /// What [`LicenseServer::decide`] would answer, without writing anything: the assessment
    /// the protocol makes before the platform challenge, so a client that then fails the
    /// challenge has taken nothing from the pool.
    pub fn assess(
        &mut self,
        request: &LicenseRequest,
        now: SystemTime,
    ) -> Result<RequestOutcome, ServerError> {
        let rng = &mut self.rng;
        let exhausted = self.pool_exhausted;
        let decision = self
            .store
            .decide(&holder(request), now, |snapshot| PolicyDecision {
                outcome: policy::decide(request, &seen(snapshot, exhausted), rng).outcome,
                changes: Vec::new(),
            })?;
        Ok(decision.outcome)
    }

    /// The license server's identity under the current settings.
    fn identity(&mut self) -> Result<&LicenseServerIdentity, ServerError> {
        let settings = self.store.settings()?;
        let key = (
            settings.name,
            settings.domain_or_workgroup,
            settings.product_id,
        );
        let identity = match self.identity.take() {
            Some((cached, identity)) if cached == key => identity,
            _ => LicenseServerIdentity::self_signed(
                &key.0,
                &key.1,
                &key.2,
                self.key.to_rsa_private_key().clone(),
                SystemTime::UNIX_EPOCH + IDENTITY_NOT_BEFORE,
                SystemTime::UNIX_EPOCH + IDENTITY_NOT_AFTER,
            )?,
        };
        Ok(&self.identity.insert((key, identity)).1)
    }

    /// Signs the CAL recording `row`.
    fn build(&mut self, row: &IssuedLicense) -> Result<Vec<u8>, ServerError> {
        let not_after = row.expiration_date;
        let kind = match row.status {
            LicenseStatus::Temporary => CalKind::Temporary,
            _ => CalKind::Permanent,
        };
        let cal_type = match row.license_type {
            LicensingMode::PerDevice => CalType::PerDevice,
            LicensingMode::PerUser => CalType::PerUser,
        };
        let validity = not_after
            .duration_since(row.issue_date)
            .unwrap_or(Duration::from_secs(1));
        let request = CalRequest::new(
            &row.issued_to_computer,
            &row.issued_to_user,
            ClientHardwareId::from_bytes(row.hardware_id),
            kind,
            cal_type,
            product_version(row.product_version),
            row.issue_date,
            validity,
            LicenseSerial {
                key_pack_id: row.key_pack_id.unwrap_or(0),
                license_id: row.license_id,
            },
        )?;
        Ok(build_cal(&request, self.identity()?)?)
    }

    fn request(
        &self,
        hwid: &ClientHardwareId,
        machine: &str,
        user: &str,
        presented: Option<PresentedCal>,
    ) -> LicenseRequest {
        LicenseRequest {
            host: self.host,
            hardware_id: hwid.to_bytes(),
            machine: machine.to_owned(),
            user: user.to_owned(),
            presented,
        }
    }
}

/// The snapshot a decision sees: as loaded, or with every pack full when the pool is made
/// exhausted.
fn seen(snapshot: &Snapshot, exhausted: bool) -> Cow<'_, Snapshot> {
    if !exhausted {
        return Cow::Borrowed(snapshot);
    }
    let mut full = snapshot.clone();
    for usage in &mut full.packs {
        usage.in_use = usage.in_use.max(usage.pack.total_licenses);
    }
    Cow::Owned(full)
}

/// Whose licenses a decision reads: the device, or the user on a per-user host.
fn holder(request: &LicenseRequest) -> Holder {
    match request.host.mode {
        LicensingMode::PerDevice => Holder::HardwareId(request.hardware_id),
        LicensingMode::PerUser => Holder::User(request.user.clone()),
    }
}

/// The license row a decision inserts (the one the client's new CAL records).
fn inserted(decision: &PolicyDecision) -> Option<&IssuedLicense> {
    decision.changes.iter().find_map(|change| match change {
        Change::Insert(row) => Some(row),
        Change::SetStatus { .. } => None,
    })
}

/// The product version a CAL of each release carries ("A02-<major>.<minor>-S"). 6.00 and
/// 10.01 are seen in real CALs (Windows Server 2008 and 2019); the others follow Windows'
/// internal version numbers and are hypotheses.
pub fn product_version(version: WindowsVersion) -> ProductVersion {
    let (major, minor) = match version {
        WindowsVersion::V2008R2 => (6, 1),
        WindowsVersion::V2012 => (6, 2),
        WindowsVersion::V2016 => (10, 0),
        WindowsVersion::V2019 => (10, 1),
        WindowsVersion::V2022 => (10, 2),
        WindowsVersion::V2025 => (10, 3),
    };
    ProductVersion { major, minor }
}

/// The release a CAL's product version names; anything older than 2008 R2 counts as 2008 R2,
/// anything newer than the last known as the newest.
pub fn windows_version(version: ProductVersion) -> WindowsVersion {
    match (version.major, version.minor) {
        (0..=6, 0..=1) | (0..=5, _) => WindowsVersion::V2008R2,
        (6, _) => WindowsVersion::V2012,
        (7..=10, 0) => WindowsVersion::V2016,
        (10, 1) => WindowsVersion::V2019,
        (10, 2) => WindowsVersion::V2022,
        _ => WindowsVersion::V2025,
    }
}

/// What the policy needs of a CAL the protocol already validated.
pub fn presented_cal(cal: &Cal) -> PresentedCal {
    PresentedCal {
        license_id: cal.client_license.serial().map(|serial| serial.license_id),
        temporary: cal.kind == CalKind::Temporary,
        license_type: match cal.cal_type {
            CalType::PerUser => LicensingMode::PerUser,
            _ => LicensingMode::PerDevice,
        },
        product_version: windows_version(cal.product.version),
        not_after: cal.client_license.not_after,
    }
}

/// The Licensing Error Message a refusal is sent as.
pub fn refusal(reason: LicenseRefusal) -> Refusal {
    let error_code = match reason {
        LicenseRefusal::WrongLicenseType | LicenseRefusal::CalVersionTooOld => {
            ErrorCode::ERR_INVALID_PRODUCTID
        }
        LicenseRefusal::GracePeriodOver => ErrorCode::ERR_NO_LICENSE_SERVER,
        LicenseRefusal::TemporaryExpiredNoneFree | LicenseRefusal::Expired => {
            ErrorCode::ERR_INVALID_CLIENT
        }
    };
    Refusal {
        error_code,
        state_transition: StateTransition::ST_TOTAL_ABORT,
    }
}

/// Reads the RSA key in `path`, or makes a 2048-bit one there on first use.
pub fn load_or_create_key(path: &Path) -> Result<LicensingPrivateKey, ServerError> {
    let key_error = |reason: String| ServerError::Key {
        path: path.display().to_string(),
        reason,
    };
    match std::fs::read_to_string(path) {
        Ok(pem) => LicensingPrivateKey::from_pem(&pem).map_err(|e| key_error(e.to_string())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = LicensingPrivateKey::generate(KEY_BITS, &mut rand::rng())
                .map_err(|e| key_error(e.to_string()))?;
            let pem = key.to_pkcs8_pem().map_err(|e| key_error(e.to_string()))?;
            std::fs::write(path, pem).map_err(|e| key_error(e.to_string()))?;
            Ok(key)
        }
        Err(error) => Err(key_error(error.to_string())),
    }
}

/// A store or signing failure is the license server being unreachable, as far as the client
/// can tell.
pub fn unavailable() -> Refusal {
    Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER)
}

fn protocol_decision(granted: Result<Granted, ServerError>) -> Decision {
    match granted {
        Ok(Granted { cal: Some(cal), .. }) => Decision::Issue(cal),
        Ok(Granted {
            outcome: RequestOutcome::Refused { reason },
            ..
        }) => Decision::Refuse(refusal(reason)),
        Ok(_) => Decision::Valid,
        Err(_) => Decision::Refuse(unavailable()),
    }
}

impl LicenseIssuer for LicenseServer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision {
        let request = self.request(&client.hwid, &client.machine_name, &client.user_name, None);
        protocol_decision(self.decide(&request, now))
    }

    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment {
        let client = &presented.cal.client_license;
        let request = self.request(
            &presented.hwid,
            &client.machine,
            &client.user,
            Some(presented_cal(&presented.cal)),
        );
        match self.assess(&request, now) {
            Ok(RequestOutcome::Valid { .. }) => Assessment::Valid,
            Ok(RequestOutcome::Refused { reason }) => Assessment::Refuse(refusal(reason)),
            Ok(_) => Assessment::Upgrade,
            Err(_) => Assessment::Refuse(unavailable()),
        }
    }

    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision {
        let client = &presented.cal.client_license;
        let request = self.request(
            &presented.hwid,
            &client.machine,
            &client.user,
            Some(presented_cal(&presented.cal)),
        );
        protocol_decision(self.decide(&request, now))
    }
}

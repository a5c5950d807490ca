//! The license server as the session host and the admin CLI use it: one decision path that
//! reads the virtual clock, lets the [`policy`] decide inside a [`Store`]
//! transaction, and builds the CAL the decision grants with [`rdpele_proto::cal`]. It is also
//! the [`LicenseIssuer`] the protocol state machine asks.

use std::borrow::Cow;
use std::cell::OnceCell;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::SeedableRng;
use rdpele_proto::cal::{
    build_cal, clearinghouse, Cal, CalError, CalKind, CalRequest, CalType, LicenseSerial,
    LicenseServerIdentity, ProductVersion,
};
use rdpele_proto::crypto::{CryptoError, LicensingPrivateKey, RsaBackend};
use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseAnswer, LicenseIssuer, LicenseQuery, PresentedLicense,
    Refusal,
};
use rdpele_proto::wire::{ClientHardwareId, ErrorCode, StateTransition};

use super::clock::{Clock, ClockError};
use super::decision::{Change, PolicyDecision, Snapshot};
use super::model::{
    HostInfo, IssuedLicense, LicenseRefusal, LicenseRequest, LicenseStatus, LicensingMode,
    PresentedCal, RequestOutcome, ServerSettings, WindowsVersion,
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
/// When an activated server's certificate says it was activated: a constant, so a restart
/// (or another process on the same data directory) builds the same certificate, without a
/// column in the store for it. The earliest the clearinghouse's intermediate allows
/// (2012-06-06T20:42:38Z), so CALs dated at any virtual time since then fall inside it; it
/// runs to the intermediate's notAfter (2049-12-31).
const ACTIVATED_AT: Duration = clearinghouse::INTERMEDIATE_NOT_BEFORE;
/// The key pack id a temporary CAL's serial number carries (MS-RDPELE gives none; both Windows
/// samples' temporary CALs have 5-byte serials, key pack 3 and 6 in the high bits:
/// captures/cal_temporary.p7b, captures/windows2019_cal_temporary.p7b). Temporary CALs come
/// from no installed pack (their `key_pack_id` is NULL in the store), so rdpele numbers its
/// built-in temporary pool 0x7F: the largest id whose serial stays at 5 bytes (0x80 and up
/// would need a leading zero byte to keep the INTEGER positive), and far from the ids
/// installed packs take (1, 2, … in installation order). Nothing reads it back: a presented
/// CAL is matched by its license id alone.
pub const TEMPORARY_KEY_PACK_ID: u32 = 0x7F;
/// The product id of a store whose administrator never set one (store/schema.rs, migration 1):
/// the 2008 format, as "78440-006-5867045-70347" in captures/cal_temporary.p7b.
pub const DEFAULT_PRODUCT_ID: &str = "00000-000-0000000-00000";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("virtual clock: {0}")]
    Clock(#[from] ClockError),
    #[error("signing key: {0}")]
    Crypto(#[from] CryptoError),
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
    signer: Arc<CalSigner>,
    host: HostInfo,
    rng: StdRng,
    /// Fault injection: decide as if every pack were fully allocated.
    pool_exhausted: bool,
}

/// What the license server's certificate(s) in a CAL depend on; a change in settings makes a
/// new identity.
#[derive(Clone, Debug, PartialEq, Eq)]
struct IdentityKey {
    name: String,
    domain_or_workgroup: String,
    product_id: String,
    /// Activated: the clearinghouse's chain (the 2019 shape); else self-signed (2008).
    activated: bool,
}

/// The identity a CAL decided under `settings` carries.
fn identity_key(settings: &ServerSettings) -> IdentityKey {
    IdentityKey {
        name: settings.name.clone(),
        domain_or_workgroup: settings.domain_or_workgroup.clone(),
        product_id: settings.product_id.clone(),
        activated: settings.activated,
    }
}

/// The product id an activated server writes in MS_LICENSE_SERVER_INFO (IssuerId). Windows
/// 2019's has another format than 2008's: "00429-00000-34972-AT353"
/// (captures/windows2019_cal_temporary.p7b, extension 1.3.6.1.4.1.311.18.6) against
/// "78440-006-5867045-70347" (captures/cal_temporary.p7b). A product id an administrator set is
/// kept as set; the store's [`DEFAULT_PRODUCT_ID`] becomes one of the 2019 format, stable for
/// the server's key: `00429-00000-NNNNN-ATMMM`, the sample's first two groups and letters
/// (their meaning is not known), N and M the first 4 and next 2 bytes of the key's identifier
/// (RFC 5280 method 1) as big-endian numbers, modulo 100000 and 1000.
fn activated_product_id(
    configured: &str,
    key: &LicensingPrivateKey,
) -> Result<String, ServerError> {
    if configured != DEFAULT_PRODUCT_ID {
        return Ok(configured.to_owned());
    }
    let [n0, n1, n2, n3, m0, m1, ..] = key.public_key().key_identifier()?;
    let n = u32::from_be_bytes([n0, n1, n2, n3]) % 100_000;
    let m = u16::from_be_bytes([m0, m1]) % 1000;
    Ok(format!("00429-00000-{n:05}-AT{m:03}"))
}

/// The product id the CALs a license server with `settings` and signing key `key` signs carry
/// in MS_LICENSE_SERVER_INFO: the configured one, or for an activated server still holding
/// [`DEFAULT_PRODUCT_ID`] the 2019-format one derived from its key.
pub fn cal_product_id(
    settings: &ServerSettings,
    key: &LicensingPrivateKey,
) -> Result<String, ServerError> {
    if settings.activated {
        activated_product_id(&settings.product_id, key)
    } else {
        Ok(settings.product_id.clone())
    }
}

/// Signs the CALs decisions grant. Shared by the server and the [`CalOrder`]s it hands out, so
/// a signature (an RSA private-key operation) runs outside whatever lock guards the store.
#[derive(Debug)]
struct CalSigner {
    key: LicensingPrivateKey,
    /// The license server certificate(s) put in every CAL, built (one RSA signature) once per
    /// name/domain/product id/activation rather than once per CAL. Held only to fetch or
    /// replace it, never while signing a CAL.
    identity: Mutex<Option<(IdentityKey, Arc<LicenseServerIdentity>)>>,
}

impl CalSigner {
    /// The license server's identity under `names`.
    fn identity(&self, names: &IdentityKey) -> Result<Arc<LicenseServerIdentity>, ServerError> {
        let cached = self
            .identity
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|(cached, _)| cached == names)
            .map(|(_, identity)| Arc::clone(identity));
        if let Some(identity) = cached {
            return Ok(identity);
        }
        let identity = Arc::new(if names.activated {
            LicenseServerIdentity::activated(
                &names.name,
                &names.domain_or_workgroup,
                &activated_product_id(&names.product_id, &self.key)?,
                self.key.clone(),
                UNIX_EPOCH + ACTIVATED_AT,
            )?
        } else {
            LicenseServerIdentity::self_signed(
                &names.name,
                &names.domain_or_workgroup,
                &names.product_id,
                self.key.clone(),
                UNIX_EPOCH + IDENTITY_NOT_BEFORE,
                UNIX_EPOCH + IDENTITY_NOT_AFTER,
            )?
        });
        *self.identity.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((names.clone(), Arc::clone(&identity)));
        Ok(identity)
    }
}

/// A CAL a decision has recorded in the store and that is still to be signed: the store's
/// transaction decides and records, the signature comes after, outside any lock other
/// decisions wait on. Signing cannot un-record the decision; a failed signature is answered
/// as an unavailable license server, as any other failure after the store committed.
#[derive(Debug)]
pub struct CalOrder {
    signer: Arc<CalSigner>,
    row: IssuedLicense,
    names: IdentityKey,
}

impl CalOrder {
    /// Builds and signs the CAL recording the license the decision inserted.
    pub fn sign(&self) -> Result<Vec<u8>, ServerError> {
        let row = &self.row;
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
                key_pack_id: row.key_pack_id.unwrap_or(TEMPORARY_KEY_PACK_ID),
                license_id: row.license_id,
            },
        )?;
        let identity = self.signer.identity(&self.names)?;
        Ok(build_cal(&request, &identity)?)
    }
}

/// A decision taken and recorded, its CAL (if any) not signed yet.
#[derive(Debug)]
pub struct Decided {
    pub outcome: RequestOutcome,
    pub order: Option<CalOrder>,
}

impl Decided {
    /// Signs the CAL, if the decision grants one.
    pub fn sign(self) -> Result<Granted, ServerError> {
        let cal = self.order.as_ref().map(CalOrder::sign).transpose()?;
        Ok(Granted {
            outcome: self.outcome,
            cal,
        })
    }
}

/// A protocol query answered by the store, the CAL still to be signed where one is issued:
/// [`LicenseServer::decide_query`] runs under the store's lock, [`DecidedQuery::finish`]
/// outside it.
#[derive(Debug)]
pub enum DecidedQuery {
    Answered(LicenseAnswer),
    Sign(Box<CalOrder>),
}

impl DecidedQuery {
    /// What a license server that cannot decide answers `query`.
    pub fn unavailable(query: &LicenseQuery) -> Self {
        Self::Answered(unavailable_answer(query))
    }

    /// The machine's answer, signing the CAL if there is one to sign.
    pub fn finish(self) -> LicenseAnswer {
        match self {
            Self::Answered(answer) => answer,
            Self::Sign(order) => LicenseAnswer::Decision(match order.sign() {
                Ok(cal) => Decision::Issue(cal),
                Err(_) => Decision::Refuse(unavailable()),
            }),
        }
    }
}

impl LicenseServer {
    /// Opens the store in `dir` and its signing key (created on first use) for a session host
    /// described by `host`.
    pub fn open(dir: &Path, host: HostInfo) -> Result<Self, ServerError> {
        let store = Store::open(dir)?;
        let key = load_or_create_key(&dir.join(KEY_FILE))?;
        Ok(Self {
            store,
            clock: Clock::system(),
            signer: Arc::new(CalSigner {
                key,
                identity: Mutex::new(None),
            }),
            host,
            rng: StdRng::from_rng(&mut rand::rng()),
            pool_exhausted: false,
        })
    }

    /// Signs CALs with `backend` (the key and its certificate stay the same; the signatures are
    /// byte for byte the same too, only faster or slower).
    pub fn with_rsa_backend(mut self, backend: RsaBackend) -> Result<Self, ServerError> {
        let key = self.signer.key.clone().with_backend(backend)?;
        self.signer = Arc::new(CalSigner {
            key,
            identity: Mutex::new(None),
        });
        Ok(self)
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

    /// A session host's report that a sign-in completed with temporary CAL `license_id` of the
    /// device `hardware_id` (its session reached the active state), recorded at the license
    /// server's now: the CAL may be upgraded at the device's next logon. True if this validated
    /// it; false if it was validated already or is not that device's temporary CAL on record
    /// ([`Store::record_validation`]).
    pub fn record_validation(
        &self,
        license_id: u32,
        hardware_id: &[u8; 20],
    ) -> Result<bool, ServerError> {
        let now = self.now()?;
        Ok(self.store.record_validation(license_id, hardware_id, now)?)
    }

    /// [`LicenseServer::record_validation`] for several temporary CALs in one store
    /// transaction, at the license server's now; the answers in order.
    pub fn record_validations(
        &self,
        licenses: &[(u32, [u8; 20])],
    ) -> Result<Vec<bool>, ServerError> {
        let now = self.now()?;
        Ok(self.store.record_validations(licenses, now)?)
    }

    /// Decides `request` at `now`, records the decision and builds and signs the CAL it
    /// grants, if any.
    pub fn decide(
        &mut self,
        request: &LicenseRequest,
        now: SystemTime,
    ) -> Result<Granted, ServerError> {
        self.decide_unsigned(request, now)?.sign()
    }

    /// Decides `request` at `now` and records the decision in one store transaction; the CAL
    /// it grants is left to sign ([`Decided::sign`]), so a caller holding this server behind
    /// a lock can sign after releasing it.
    pub fn decide_unsigned(
        &mut self,
        request: &LicenseRequest,
        now: SystemTime,
    ) -> Result<Decided, ServerError> {
        let rng = &mut self.rng;
        let exhausted = self.pool_exhausted;
        let mut names = None;
        let decision = self.store.decide(&holder(request), now, |snapshot| {
            names = Some(identity_key(&snapshot.settings));
            policy::decide(request, &seen(snapshot, exhausted), rng)
        })?;
        let order = granted_cal_row(&decision)
            .zip(names)
            .map(|(row, names)| self.order(row, names));
        Ok(Decided {
            outcome: decision.outcome,
            order,
        })
    }

    /// Answers the protocol machine's `query` at `now`: the store's part (reading, deciding,
    /// recording) now, the signature, if a CAL is issued, when the caller finishes it.
    pub fn decide_query(&mut self, now: SystemTime, query: &LicenseQuery) -> DecidedQuery {
        let host = self.host;
        self.decide_queries(now, &[(host, query)])
            .pop()
            .unwrap_or_else(|| DecidedQuery::unavailable(query))
    }

    /// Answers several queries, each for its own host, at `now` in one store transaction
    /// (one commit, one fsync: group commit), each decided as if after the ones before it. The
    /// CALs granted are left to sign; a failed transaction answers every query as an
    /// unavailable license server would, and records nothing.
    pub fn decide_queries(
        &mut self,
        now: SystemTime,
        queries: &[(HostInfo, &LicenseQuery)],
    ) -> Vec<DecidedQuery> {
        self.decide_queries_then(now, queries, |decided| decided)
            .unwrap_or_else(|_| {
                queries
                    .iter()
                    .map(|(_, query)| DecidedQuery::unavailable(query))
                    .collect()
            })
    }

    /// [`LicenseServer::decide_queries`], handing the answers to `before_commit` while the
    /// transaction is still open, so the CALs can be signed while the commit waits for the
    /// disk. None of them may reach a client before this returns `Ok` (the transaction
    /// committed); on `Err` none of the decisions hold.
    pub fn decide_queries_then<R>(
        &mut self,
        now: SystemTime,
        queries: &[(HostInfo, &LicenseQuery)],
        before_commit: impl FnOnce(Vec<DecidedQuery>) -> R,
    ) -> Result<R, StoreError> {
        /// A query the store decides, and the certificate names its snapshot had.
        struct Pending {
            request: LicenseRequest,
            assess: bool,
            names: OnceCell<IdentityKey>,
        }
        let pending: Vec<Option<Pending>> = queries
            .iter()
            .map(|(host, query)| {
                Some(Pending {
                    request: query_request(*host, query)?,
                    assess: matches!(query, LicenseQuery::AssessLicense(_)),
                    names: OnceCell::new(),
                })
            })
            .collect();
        let decidable: Vec<(Holder, SystemTime, &Pending)> = pending
            .iter()
            .flatten()
            .map(|pending| (holder(&pending.request), now, pending))
            .collect();
        let rng = &mut self.rng;
        let exhausted = self.pool_exhausted;
        let signer = &self.signer;
        let decide = |pending: &&Pending, snapshot: &Snapshot| {
            let _ = pending.names.set(identity_key(&snapshot.settings));
            let decision = policy::decide(&pending.request, &seen(snapshot, exhausted), rng);
            if pending.assess {
                // An assessment takes nothing: a client that then fails the challenge has
                // taken nothing from the pool.
                PolicyDecision {
                    outcome: decision.outcome,
                    changes: Vec::new(),
                }
            } else {
                decision
            }
        };
        let answer = |decided: Vec<Result<PolicyDecision, StoreError>>| {
            let mut decided = decided.into_iter();
            let answers = queries
                .iter()
                .zip(&pending)
                .map(|((_, query), pending)| {
                    let decided = pending
                        .as_ref()
                        .and_then(|pending| Some((pending, decided.next()?)));
                    let Some((pending, Ok(decision))) = decided else {
                        return DecidedQuery::unavailable(query);
                    };
                    if pending.assess {
                        let assessed = assessment(decision.outcome);
                        return DecidedQuery::Answered(LicenseAnswer::Assessment(assessed));
                    }
                    match (granted_cal_row(&decision), pending.names.get()) {
                        (Some(row), Some(names)) => DecidedQuery::Sign(Box::new(CalOrder {
                            signer: Arc::clone(signer),
                            row: row.clone(),
                            names: names.clone(),
                        })),
                        (Some(_), None) => DecidedQuery::unavailable(query),
                        (None, _) => DecidedQuery::Answered(LicenseAnswer::Decision(
                            match decision.outcome {
                                RequestOutcome::Refused { reason } => {
                                    Decision::Refuse(refusal(reason))
                                }
                                _ => Decision::Valid,
                            },
                        )),
                    }
                })
                .collect();
            before_commit(answers)
        };
        // Assessments take nothing: a batch of them needs no write lock, so valid clients
        // are answered while another process holds it.
        let only_assessments = pending
            .iter()
            .all(|pending| pending.as_ref().is_some_and(|pending| pending.assess));
        if only_assessments {
            self.store.assess_many_then(&decidable, decide, answer)
        } else {
            self.store.decide_many_then(&decidable, decide, answer)
        }
    }

    /// The order to sign the CAL recording `row` under the certificate `names`.
    fn order(&self, row: &IssuedLicense, names: IdentityKey) -> CalOrder {
        CalOrder {
            signer: Arc::clone(&self.signer),
            row: row.clone(),
            names,
        }
    }

    /// What [`LicenseServer::decide`] would answer, without writing anything: the assessment
    /// the protocol makes before the platform challenge, so a client that then fails the
    /// challenge has taken nothing from the pool.
    pub fn assess(
        &mut self,
        request: &LicenseRequest,
        now: SystemTime,
    ) -> Result<RequestOutcome, ServerError> {
        let outcome = assess_on(
            &self.store,
            request,
            now,
            self.pool_exhausted,
            &mut self.rng,
        )?;
        Ok(outcome)
    }

    /// This server's clock over a store handle of its own (a second SQLite connection on the
    /// same database), so a reader of the virtual now never waits for a decision holding this
    /// server: the remote license server's health check.
    pub fn open_clock_reader(&self) -> Result<(Clock, Store), ServerError> {
        // The store's path is `dir/DATABASE_FILE`: it always has a parent, `""` for a
        // relative file name, which `Store::open` reads as the current directory.
        let dir = self.store.path().parent().unwrap_or(Path::new(""));
        Ok((self.clock, Store::open(dir)?))
    }
}

/// What a client asks of the license server, for a session host `host`.
fn request(
    host: HostInfo,
    hwid: &ClientHardwareId,
    machine: &str,
    user: &str,
    presented: Option<PresentedCal>,
) -> LicenseRequest {
    LicenseRequest {
        host,
        hardware_id: hwid.to_bytes(),
        machine: machine.to_owned(),
        user: user.to_owned(),
        presented,
    }
}

/// The request a presented CAL makes: its holder as the CAL names it.
fn presented_request(host: HostInfo, presented: &PresentedLicense) -> LicenseRequest {
    let client = &presented.cal.client_license;
    request(
        host,
        &presented.hwid,
        &client.machine,
        &client.user,
        Some(presented_cal(&presented.cal)),
    )
}

/// The request behind one of the protocol machine's queries; `None` for a kind this server
/// does not know.
fn query_request(host: HostInfo, query: &LicenseQuery) -> Option<LicenseRequest> {
    match query {
        LicenseQuery::NewLicense(client) => Some(request(
            host,
            &client.hwid,
            &client.machine_name,
            &client.user_name,
            None,
        )),
        LicenseQuery::AssessLicense(presented) | LicenseQuery::UpgradeLicense(presented) => {
            Some(presented_request(host, presented))
        }
        _ => None,
    }
}

/// The snapshot a decision sees: as loaded, or with every pack full when the pool is made
/// exhausted. Unread packs are seen as they are, so that an ask for them is noted on the
/// store's snapshot, not on a copy.
fn seen(snapshot: &Snapshot, exhausted: bool) -> Cow<'_, Snapshot> {
    if !exhausted || !snapshot.packs.is_read() {
        return Cow::Borrowed(snapshot);
    }
    let mut full = snapshot.clone();
    if let Some(usages) = full.packs.usage_mut() {
        for usage in usages {
            usage.in_use = usage.in_use.max(usage.pack.total_licenses);
        }
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

/// The license row a decision inserts that the client gets a CAL for. A per-user record is
/// none: Windows tracks per-user CALs on the user account and a per-user host stores nothing
/// on the client (DESIGN §5, "per-user CALs are not issued to the device"), so the client is
/// answered STATUS_VALID_CLIENT and whatever CAL it holds stays as it is.
fn granted_cal_row(decision: &PolicyDecision) -> Option<&IssuedLicense> {
    decision.changes.iter().find_map(|change| match change {
        Change::Insert(row) if row.license_type == LicensingMode::PerDevice => Some(row),
        Change::Insert(_) | Change::SetStatus { .. } => None,
    })
}

/// The product version a CAL of each release carries (`"A02-<major>.<minor>-S"`). 6.00 and
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
        LicenseRefusal::WrongLicenseType => ErrorCode::ERR_INVALID_PRODUCTID,
        LicenseRefusal::GracePeriodOver => ErrorCode::ERR_NO_LICENSE_SERVER,
        LicenseRefusal::TemporaryExpiredNoneFree
        | LicenseRefusal::TemporaryExpiredNotValidated
        | LicenseRefusal::Expired => ErrorCode::ERR_INVALID_CLIENT,
    };
    Refusal {
        error_code,
        state_transition: StateTransition::ST_TOTAL_ABORT,
    }
}

/// Reads the RSA key in `path`, or makes a 2048-bit one there on first use.
pub fn load_or_create_key(path: &Path) -> Result<LicensingPrivateKey, ServerError> {
    load_or_create_key_bits(path, KEY_BITS)
}

/// Reads the RSA key in `path`, or makes a `bits`-bit one there on first use: 0600, written
/// whole before it takes the name, and never over a key another process wrote first (that
/// one is read instead). An existing key file others can read is used, with a warning.
pub fn load_or_create_key_bits(
    path: &Path,
    bits: usize,
) -> Result<LicensingPrivateKey, ServerError> {
    let key_error = |reason: String| ServerError::Key {
        path: path.display().to_string(),
        reason,
    };
    let read = || -> Result<LicensingPrivateKey, ServerError> {
        let pem = std::fs::read_to_string(path).map_err(|e| key_error(e.to_string()))?;
        crate::private_files::warn_if_open_to_others(path);
        LicensingPrivateKey::from_pem(&pem).map_err(|e| key_error(e.to_string()))
    };
    if path.exists() {
        return read();
    }
    let key = LicensingPrivateKey::generate(bits, &mut rand::rng())
        .map_err(|e| key_error(e.to_string()))?;
    let pem = key.to_pkcs8_pem().map_err(|e| key_error(e.to_string()))?;
    match crate::private_files::create_private_file(path, pem.as_bytes()) {
        Ok(true) => Ok(key),
        Ok(false) => read(),
        Err(error) => Err(key_error(error.to_string())),
    }
}

/// A store or signing failure is the license server being unreachable, as far as the client
/// can tell.
pub fn unavailable() -> Refusal {
    Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER)
}

fn unavailable_decision() -> Decision {
    Decision::Refuse(unavailable())
}

/// What a license server that cannot decide answers `query`: ERR_NO_LICENSE_SERVER, as an
/// assessment or a decision as the query asks.
pub fn unavailable_answer(query: &LicenseQuery) -> LicenseAnswer {
    match query {
        LicenseQuery::AssessLicense(_) => {
            LicenseAnswer::Assessment(Assessment::Refuse(unavailable()))
        }
        _ => LicenseAnswer::Decision(unavailable_decision()),
    }
}

/// The answer [`LicenseServer::decide_queries`] gives an `AssessLicense` query for `host`'s
/// client presenting `presented`, read on `store` at `now` without the server: a session host
/// assesses on a store handle of its own instead of queueing behind decisions that wait for
/// the write lock (an assessment writes nothing). `pool_exhausted` is the fault
/// [`LicenseServer::set_pool_exhausted`] injects.
pub fn assess_presented(
    store: &Store,
    now: SystemTime,
    host: HostInfo,
    presented: &PresentedLicense,
    pool_exhausted: bool,
) -> Result<Assessment, StoreError> {
    let request = presented_request(host, presented);
    // The generator only draws the lifetime of a CAL the decision would issue, which an
    // assessment does not.
    let outcome = assess_on(store, &request, now, pool_exhausted, &mut rand::rng())?;
    Ok(assessment(outcome))
}

/// The policy's outcome for `request` on a snapshot read in a read transaction on `store`,
/// with nothing written.
fn assess_on(
    store: &Store,
    request: &LicenseRequest,
    now: SystemTime,
    pool_exhausted: bool,
    rng: &mut (impl rand::Rng + ?Sized),
) -> Result<RequestOutcome, StoreError> {
    store.assess(&holder(request), now, |snapshot| {
        policy::decide(request, &seen(snapshot, pool_exhausted), rng).outcome
    })
}

/// The assessment a policy outcome amounts to before the challenge (MS-RDPELE 3.2.5.3).
fn assessment(outcome: RequestOutcome) -> Assessment {
    match outcome {
        RequestOutcome::Valid { .. } => Assessment::Valid,
        RequestOutcome::Refused { reason } => Assessment::Refuse(refusal(reason)),
        _ => Assessment::Upgrade,
    }
}

impl LicenseIssuer for LicenseServer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision {
        let query = LicenseQuery::NewLicense(client.clone());
        decision(self.decide_query(now, &query).finish())
    }

    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment {
        let request = presented_request(self.host, presented);
        self.assess(&request, now)
            .map_or_else(|_| Assessment::Refuse(unavailable()), assessment)
    }

    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision {
        let query = LicenseQuery::UpgradeLicense(Box::new(presented.clone()));
        decision(self.decide_query(now, &query).finish())
    }
}

/// The decision in an answer to a new or upgrade query (which is never an assessment).
fn decision(answer: LicenseAnswer) -> Decision {
    match answer {
        LicenseAnswer::Decision(decision) => decision,
        LicenseAnswer::Assessment(_) => unavailable_decision(),
    }
}

//! The license server over the network: one [`LicenseServer`] serving several session hosts
//! through a small HTTP+JSON API ([`serve`]), and the [`LicenseIssuer`] a session host uses to
//! reach it ([`RemoteIssuer`]).
//!
//! Windows session hosts find their RD License Server over the network and several hosts share
//! one; this is that arrangement for the emulator. The API is versioned by its path prefix
//! (`/v1`), carries one call per [`LicenseIssuer`] method, and needs
//! `Authorization: Bearer <token>` on every call but the health check:
//!
//! ```text
//! POST /v1/new_license      {"host": HOST, "client": {"hwid": HEX20, "platform_id": u32,
//!                            "user_name": str, "machine_name": str}}
//!                        -> DECISION
//! POST /v1/assess_license   {"host": HOST, "license": {"hwid": HEX20, "platform_id": u32,
//!                            "license_info": HEX}}
//!                        -> {"assessment": "valid" | "upgrade"}
//!                         | {"assessment": "refuse", "error_code": u32, "state_transition": u32}
//! POST /v1/upgrade_license  same body as assess_license -> DECISION
//! GET  /v1/health        -> {"status": "ok", "version": str, "now": RFC3339, "now_unix": i64}
//!
//! HOST     = {"version": "2008R2" | "2012" | "2016" | "2019" | "2022" | "2025",
//!             "mode": "per-device" | "per-user"}
//! DECISION = {"decision": "issue", "cal": HEX} | {"decision": "valid"}
//!          | {"decision": "refuse", "error_code": u32, "state_transition": u32}
//! errors   = {"error": str, "field": "client.hwid"}   (field only when one is at fault):
//!            400 malformed (the field named), 401 no or wrong token, 404 no such endpoint,
//!            413 body over MAX_BODY_BYTES, 503 the license server cannot decide
//! ```
//!
//! The host comes with every request, not once per server: the same license server answers a
//! 2019 per-device host and a 2022 per-user host, each by its own rules. HWIDs are the 20
//! bytes of CLIENT_HARDWARE_ID and `license_info` the CAL exactly as presented, both in hex;
//! the server parses the CAL with the parser the protocol machine uses, so a CAL the session
//! host accepted reads the same on both sides. Versions, modes and codes are spelled as
//! `rdpele admin` spells them.
//!
//! Decisions use the license server's own virtual clock ([`LicenseServer::now`]), never the
//! caller's: `rdpele admin clock advance --data DIR` on the server's data directory is the
//! one time every host sees, as every Windows host trusts its license server's answer.

use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rdpele_proto::cal::parse_cal;
use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseIssuer, PresentedLicense, Refusal,
};
use rdpele_proto::wire::{ClientHardwareId, ErrorCode, StateTransition};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::clock::format_instant;
use super::model::{HostInfo, LicensingMode, WindowsVersion};
use super::server::{unavailable, LicenseServer, ServerError};

/// The largest request body the server reads (and response body the client reads): a CAL is
/// a few KiB (the 2019 capture is 5112 bytes), twice that in hex.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The host the server is opened for. Never decides anything: every decision first sets the
/// host its request names.
const OPENING_HOST: HostInfo = HostInfo {
    version: WindowsVersion::V2022,
    mode: LicensingMode::PerDevice,
};

/// Versions and modes as they travel, spelled as `rdpele admin` writes them.
const VERSIONS: [(WindowsVersion, &str); 6] = [
    (WindowsVersion::V2008R2, "2008R2"),
    (WindowsVersion::V2012, "2012"),
    (WindowsVersion::V2016, "2016"),
    (WindowsVersion::V2019, "2019"),
    (WindowsVersion::V2022, "2022"),
    (WindowsVersion::V2025, "2025"),
];
const MODES: [(LicensingMode, &str); 2] = [
    (LicensingMode::PerDevice, "per-device"),
    (LicensingMode::PerUser, "per-user"),
];

/// Why the remote license server could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    #[error("opening the license server: {0}")]
    Open(#[from] ServerError),
    #[error("opening the license server: {0}")]
    OpenTask(#[from] tokio::task::JoinError),
    #[error("an empty token would let any caller in")]
    EmptyToken,
    #[error("serving http: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves the license server over `dir` on `listener` until `shutdown` completes, then lets
/// the requests in flight finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dir: PathBuf,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    // Opening may generate the 2048-bit signing key: not on the runtime's threads.
    let server =
        tokio::task::spawn_blocking(move || LicenseServer::open(&dir, OPENING_HOST)).await??;
    serve_with(listener, server, token, shutdown).await
}

/// [`serve`] with a license server the caller opened (a frozen clock and a seed, in tests).
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    server: LicenseServer,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    let app = router(server, token)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await?;
    Ok(())
}

/// The API's routes over `server`, for a caller that serves them itself.
pub fn router(server: LicenseServer, token: String) -> Result<Router, RemoteError> {
    if token.is_empty() {
        return Err(RemoteError::EmptyToken);
    }
    let shared = Shared {
        server: Arc::new(Mutex::new(server)),
        token: Arc::from(token),
    };
    let decisions = Router::new()
        .route("/v1/new_license", post(new_license))
        .route("/v1/assess_license", post(assess_license))
        .route("/v1/upgrade_license", post(upgrade_license))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    Ok(Router::new()
        .route("/v1/health", get(health))
        .merge(decisions)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, None, "no such endpoint") })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(shared))
}

/// One license server for every connection. Its store is one SQLite connection, so decisions
/// take turns; each runs off the runtime's threads (it signs RSA and writes SQLite).
#[derive(Clone)]
struct Shared {
    server: Arc<Mutex<LicenseServer>>,
    token: Arc<str>,
}

impl Shared {
    /// Reads a request with `parse`, then runs `decide` on it for the host it names, at the
    /// server's virtual now, and answers with what `decide` returns.
    async fn answer<R, T>(
        &self,
        body: Body,
        parse: fn(&[u8]) -> Parsed<R>,
        decide: impl FnOnce(&mut LicenseServer, SystemTime, R) -> T + Send + 'static,
    ) -> Response
    where
        R: Send + 'static,
        T: Serialize + Send + 'static,
    {
        let (host, request) = match body.map_err(ApiError::from).and_then(|body| parse(&body)) {
            Ok(parsed) => parsed,
            Err(error) => return error.into_response(),
        };
        let server = Arc::clone(&self.server);
        let joined = tokio::task::spawn_blocking(move || {
            // A decision is one store transaction: one that panicked has left nothing half
            // written, so the server is still usable.
            let mut server = server.lock().unwrap_or_else(PoisonError::into_inner);
            server.set_host(host);
            let now = server.now()?;
            Ok::<T, ServerError>(decide(&mut server, now, request))
        })
        .await;
        let reason = match joined {
            Ok(Ok(answer)) => return Json(answer).into_response(),
            Ok(Err(error)) => error.to_string(),
            Err(error) => error.to_string(),
        };
        tracing::warn!(%reason, "license server cannot decide");
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, reason).into_response()
    }
}

/// A request body, or why axum could not read it (too large, cut short).
type Body = Result<Bytes, BytesRejection>;

/// A request read: the host it is for, and what it asks.
type Parsed<R> = Result<(HostInfo, R), ApiError>;

async fn new_license(State(shared): State<Shared>, body: Body) -> Response {
    let decide = |server: &mut LicenseServer, now, client: ClientInfo| {
        DecisionBody::from(server.new_license(now, &client))
    };
    shared.answer(body, parse_new_license, decide).await
}

async fn assess_license(State(shared): State<Shared>, body: Body) -> Response {
    let decide = |server: &mut LicenseServer, now, presented: PresentedLicense| {
        AssessmentBody::from(server.assess_license(now, &presented))
    };
    shared.answer(body, parse_presented, decide).await
}

async fn upgrade_license(State(shared): State<Shared>, body: Body) -> Response {
    let decide = |server: &mut LicenseServer, now, presented: PresentedLicense| {
        DecisionBody::from(server.upgrade_license(now, &presented))
    };
    shared.answer(body, parse_presented, decide).await
}

async fn require_token(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    match presented {
        Some(token) if tokens_match(token.as_bytes(), shared.token.as_bytes()) => {
            next.run(request).await
        }
        _ => {
            let mut response = ApiError::new(
                StatusCode::UNAUTHORIZED,
                None,
                "missing or wrong bearer token",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
    }
}

/// Compares the presented token with the expected one in a time that depends only on the
/// expected token's length, so a caller cannot guess it byte by byte from response times.
fn tokens_match(presented: &[u8], expected: &[u8]) -> bool {
    let mut difference = u8::from(presented.len() != expected.len());
    for (index, byte) in expected.iter().enumerate() {
        difference |= byte ^ presented.get(index).copied().unwrap_or(0);
    }
    std::hint::black_box(difference) == 0
}

async fn health(State(shared): State<Shared>) -> Response {
    let server = Arc::clone(&shared.server);
    let now = tokio::task::spawn_blocking(move || {
        server
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .now()
            .map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()));
    let written = now.and_then(|now| {
        let text = format_instant(now).ok_or("virtual time out of range")?;
        let unix = super::store::unix_seconds(now).map_err(|error| error.to_string())?;
        Ok((text, unix))
    });
    match written {
        Ok((now, now_unix)) => Json(HealthBody {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            now,
            now_unix,
        })
        .into_response(),
        Err(reason) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, reason).into_response(),
    }
}

/// An error answer: the status, and the request field at fault when there is one.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    field: Option<String>,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, field: Option<String>, message: impl Into<String>) -> Self {
        Self {
            status,
            field,
            message: message.into(),
        }
    }

    fn bad_field(field: String, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, Some(field), message)
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        Self::new(
            rejection.status(),
            Some("body".into()),
            rejection.body_text(),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.message));
        if let Some(field) = self.field {
            body.insert("field".into(), Value::String(field));
        }
        (self.status, Json(Value::Object(body))).into_response()
    }
}

/// The members of one JSON object of a request, read by name so that every error names the
/// field at fault by its path (`client.hwid`).
struct Fields<'a> {
    prefix: String,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn body(body: &'a Value) -> Result<Self, ApiError> {
        match body {
            Value::Object(object) => Ok(Self {
                prefix: String::new(),
                object,
            }),
            _ => Err(ApiError::bad_field("body".into(), "expected a JSON object")),
        }
    }

    fn path(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    fn value(&self, name: &str) -> Result<&'a Value, ApiError> {
        self.object
            .get(name)
            .ok_or_else(|| ApiError::bad_field(self.path(name), "missing"))
    }

    fn object(&self, name: &str) -> Result<Fields<'a>, ApiError> {
        match self.value(name)? {
            Value::Object(object) => Ok(Fields {
                prefix: format!("{}.", self.path(name)),
                object,
            }),
            _ => Err(ApiError::bad_field(self.path(name), "expected an object")),
        }
    }

    fn string(&self, name: &str) -> Result<&'a str, ApiError> {
        self.value(name)?
            .as_str()
            .ok_or_else(|| ApiError::bad_field(self.path(name), "expected a string"))
    }

    fn u32(&self, name: &str) -> Result<u32, ApiError> {
        self.value(name)?
            .as_u64()
            .and_then(|number| u32::try_from(number).ok())
            .ok_or_else(|| {
                ApiError::bad_field(self.path(name), "expected an integer 0..=4294967295")
            })
    }

    fn hex(&self, name: &str) -> Result<Vec<u8>, ApiError> {
        hex::decode(self.string(name)?)
            .map_err(|error| ApiError::bad_field(self.path(name), format!("not hex: {error}")))
    }

    fn hwid(&self, name: &str) -> Result<ClientHardwareId, ApiError> {
        let bytes = <[u8; ClientHardwareId::LEN]>::try_from(self.hex(name)?).map_err(|_| {
            ApiError::bad_field(self.path(name), "expected 20 bytes (CLIENT_HARDWARE_ID)")
        })?;
        Ok(ClientHardwareId::from_bytes(bytes))
    }

    fn host(&self, name: &str) -> Result<HostInfo, ApiError> {
        let host = self.object(name)?;
        let version = host.string("version")?;
        let mode = host.string("mode")?;
        Ok(HostInfo {
            version: lookup(&VERSIONS, version).ok_or_else(|| {
                ApiError::bad_field(
                    host.path("version"),
                    format!("unknown version {version:?} (expected 2008R2 … 2025)"),
                )
            })?,
            mode: lookup(&MODES, mode).ok_or_else(|| {
                ApiError::bad_field(
                    host.path("mode"),
                    format!("unknown mode {mode:?} (expected per-device or per-user)"),
                )
            })?,
        })
    }
}

fn lookup<T: Copy>(table: &[(T, &str)], text: &str) -> Option<T> {
    table
        .iter()
        .find(|(_, spelling)| *spelling == text)
        .map(|(value, _)| *value)
}

fn spelling<T: PartialEq>(table: &[(T, &'static str)], value: T) -> &'static str {
    table
        .iter()
        .find(|(known, _)| *known == value)
        .map_or("", |(_, spelling)| spelling)
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_field("body".into(), format!("not JSON: {error}")))
}

/// A `new_license` body: the host and the client that passed the platform challenge.
fn parse_new_license(body: &[u8]) -> Parsed<ClientInfo> {
    let body = json_body(body)?;
    let fields = Fields::body(&body)?;
    let host = fields.host("host")?;
    let client = fields.object("client")?;
    Ok((
        host,
        ClientInfo {
            hwid: client.hwid("hwid")?,
            platform_id: client.u32("platform_id")?,
            user_name: client.string("user_name")?.to_owned(),
            machine_name: client.string("machine_name")?.to_owned(),
        },
    ))
}

/// An `assess_license` or `upgrade_license` body: the host and a presented CAL, parsed again
/// here and checked against the HWID, as the protocol machine checked it.
fn parse_presented(body: &[u8]) -> Parsed<PresentedLicense> {
    let body = json_body(body)?;
    let fields = Fields::body(&body)?;
    let host = fields.host("host")?;
    let license = fields.object("license")?;
    let hwid = license.hwid("hwid")?;
    let platform_id = license.u32("platform_id")?;
    let license_info = license.hex("license_info")?;
    let cal = parse_cal(&license_info).map_err(|error| {
        ApiError::bad_field(license.path("license_info"), format!("not a CAL: {error}"))
    })?;
    if cal.client_license.hwid != hwid {
        return Err(ApiError::bad_field(
            license.path("hwid"),
            "not the HWID the CAL was issued to",
        ));
    }
    Ok((
        host,
        PresentedLicense {
            hwid,
            platform_id,
            license_info,
            cal,
        },
    ))
}

/// What `new_license` and `upgrade_license` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
enum DecisionBody {
    Issue { cal: String },
    Valid,
    Refuse(RefusalBody),
}

/// What `assess_license` answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "assessment", rename_all = "snake_case")]
enum AssessmentBody {
    Valid,
    Upgrade,
    Refuse(RefusalBody),
}

/// A Licensing Error Message's two codes, as their wire integers (unknown ones survive).
#[derive(Debug, Serialize, Deserialize)]
struct RefusalBody {
    error_code: u32,
    state_transition: u32,
}

impl From<Decision> for DecisionBody {
    fn from(decision: Decision) -> Self {
        match decision {
            Decision::Issue(cal) => Self::Issue {
                cal: hex::encode(cal),
            },
            Decision::Valid => Self::Valid,
            Decision::Refuse(refusal) => Self::Refuse(refusal.into()),
        }
    }
}

impl From<Assessment> for AssessmentBody {
    fn from(assessment: Assessment) -> Self {
        match assessment {
            Assessment::Valid => Self::Valid,
            Assessment::Upgrade => Self::Upgrade,
            Assessment::Refuse(refusal) => Self::Refuse(refusal.into()),
        }
    }
}

impl From<Refusal> for RefusalBody {
    fn from(refusal: Refusal) -> Self {
        Self {
            error_code: refusal.error_code.0,
            state_transition: refusal.state_transition.0,
        }
    }
}

impl From<RefusalBody> for Refusal {
    fn from(body: RefusalBody) -> Self {
        Self {
            error_code: ErrorCode(body.error_code),
            state_transition: StateTransition(body.state_transition),
        }
    }
}

/// What `/v1/health` answers.
#[derive(Debug, Serialize, Deserialize)]
struct HealthBody {
    status: String,
    version: String,
    /// The license server's virtual now, RFC 3339.
    now: String,
    now_unix: i64,
}

/// Why a call to the remote license server gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCallError {
    #[error("{0}")]
    Transport(#[from] ureq::Error),
    #[error("answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unreadable answer: {0}")]
    Answer(String),
}

/// The license server's answer to `/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHealth {
    /// The rdpele version the license server runs.
    pub version: String,
    /// Its virtual now: what it decides by.
    pub now: SystemTime,
}

/// A remote license server as the session host's protocol machine asks it. Calls block (the
/// session host makes them from `spawn_blocking`), each bounded by the timeout. A call that
/// fails in any way — no connection, a timeout, an error status, an unreadable answer — is
/// answered as a Windows session host answers when it cannot reach its license server:
/// ERR_NO_LICENSE_SERVER, the same refusal the embedded server gives when its store fails;
/// [`RemoteIssuer::take_failure`] tells that refusal from one the license server decided.
///
/// Clones share one connection pool, so a session host can keep one and clone it per
/// connection.
#[derive(Clone)]
pub struct RemoteIssuer {
    agent: ureq::Agent,
    base_url: String,
    authorization: String,
    host: HostInfo,
    failure: Option<String>,
}

impl fmt::Debug for RemoteIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteIssuer")
            .field("base_url", &self.base_url)
            .field("authorization", &"<redacted>")
            .field("host", &self.host)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

impl RemoteIssuer {
    /// An issuer asking the license server at `base_url` (`http://127.0.0.1:4000`) for the
    /// session host `host`, each call given at most `timeout` in all.
    pub fn new(base_url: &str, token: &str, host: HostInfo, timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .build()
            .into();
        Self {
            agent,
            base_url: base_url.trim_end_matches('/').to_owned(),
            authorization: format!("Bearer {token}"),
            host,
            failure: None,
        }
    }

    pub fn host(&self) -> HostInfo {
        self.host
    }

    /// A clone asking for `host` (sharing this one's connection pool).
    pub fn for_host(&self, host: HostInfo) -> Self {
        Self {
            host,
            failure: None,
            ..self.clone()
        }
    }

    /// Why the last call got no answer from the license server (and was refused with
    /// ERR_NO_LICENSE_SERVER), if it got none; reading it clears it. A session host without
    /// its license server may apply its own rules instead (the grace period).
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// The license server's version and virtual now.
    pub fn health(&self) -> Result<RemoteHealth, RemoteCallError> {
        let response = self
            .agent
            .get(format!("{}/v1/health", self.base_url))
            .call()?;
        let body: HealthBody = answer(response)?;
        let now = u64::try_from(body.now_unix)
            .ok()
            .and_then(|seconds| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)))
            .ok_or_else(|| RemoteCallError::Answer(format!("now_unix {}", body.now_unix)))?;
        Ok(RemoteHealth {
            version: body.version,
            now,
        })
    }

    fn post<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<T, RemoteCallError> {
        let response = self
            .agent
            .post(format!("{}/v1/{endpoint}", self.base_url))
            .header("Authorization", &self.authorization)
            .send_json(body)?;
        answer(response)
    }

    fn host_json(&self) -> Value {
        json!({
            "version": spelling(&VERSIONS, self.host.version),
            "mode": spelling(&MODES, self.host.mode),
        })
    }

    fn presented(&self, presented: &PresentedLicense) -> Value {
        json!({
            "host": self.host_json(),
            "license": {
                "hwid": hex::encode(presented.hwid.to_bytes()),
                "platform_id": presented.platform_id,
                "license_info": hex::encode(&presented.license_info),
            },
        })
    }

    fn decision(&mut self, endpoint: &str, body: &Value) -> Decision {
        let answer = self
            .post::<DecisionBody>(endpoint, body)
            .and_then(|answer| match answer {
                DecisionBody::Issue { cal } => hex::decode(&cal)
                    .map(Decision::Issue)
                    .map_err(|error| RemoteCallError::Answer(format!("cal: {error}"))),
                DecisionBody::Valid => Ok(Decision::Valid),
                DecisionBody::Refuse(refusal) => Ok(Decision::Refuse(refusal.into())),
            });
        answer.unwrap_or_else(|error| Decision::Refuse(self.unreachable(endpoint, &error)))
    }

    fn unreachable(&mut self, endpoint: &str, error: &RemoteCallError) -> Refusal {
        self.failure = Some(format!("{endpoint}: {error}"));
        tracing::warn!(
            license_server = %self.base_url,
            endpoint,
            %error,
            "license server unavailable: refusing with ERR_NO_LICENSE_SERVER"
        );
        unavailable()
    }
}

fn answer<T: DeserializeOwned>(
    mut response: ureq::http::Response<ureq::Body>,
) -> Result<T, RemoteCallError> {
    let limit = u64::try_from(MAX_BODY_BYTES).unwrap_or(u64::MAX);
    let status = response.status();
    let body = response.body_mut().with_config().limit(limit);
    if !status.is_success() {
        let text = body.read_to_string().unwrap_or_default();
        return Err(RemoteCallError::Status {
            status: status.as_u16(),
            body: text,
        });
    }
    body.read_json()
        .map_err(|error| RemoteCallError::Answer(error.to_string()))
}

impl LicenseIssuer for RemoteIssuer {
    /// `now` is not sent: the license server decides on its own virtual clock.
    fn new_license(&mut self, _now: SystemTime, client: &ClientInfo) -> Decision {
        self.failure = None;
        let body = json!({
            "host": self.host_json(),
            "client": {
                "hwid": hex::encode(client.hwid.to_bytes()),
                "platform_id": client.platform_id,
                "user_name": client.user_name,
                "machine_name": client.machine_name,
            },
        });
        self.decision("new_license", &body)
    }

    fn assess_license(&mut self, _now: SystemTime, presented: &PresentedLicense) -> Assessment {
        self.failure = None;
        let body = self.presented(presented);
        match self.post::<AssessmentBody>("assess_license", &body) {
            Ok(AssessmentBody::Valid) => Assessment::Valid,
            Ok(AssessmentBody::Upgrade) => Assessment::Upgrade,
            Ok(AssessmentBody::Refuse(refusal)) => Assessment::Refuse(refusal.into()),
            Err(error) => Assessment::Refuse(self.unreachable("assess_license", &error)),
        }
    }

    fn upgrade_license(&mut self, _now: SystemTime, presented: &PresentedLicense) -> Decision {
        self.failure = None;
        let body = self.presented(presented);
        self.decision("upgrade_license", &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_only_when_equal() {
        assert!(tokens_match(b"secret", b"secret"));
        assert!(!tokens_match(b"secreT", b"secret"));
        assert!(!tokens_match(b"secret-and-more", b"secret"));
        assert!(!tokens_match(b"secre", b"secret"));
        assert!(!tokens_match(b"", b"secret"));
    }

    #[test]
    fn versions_and_modes_round_trip_through_their_spellings() {
        for (version, text) in VERSIONS {
            assert_eq!(
                lookup(&VERSIONS, spelling(&VERSIONS, version)),
                Some(version)
            );
            assert_eq!(spelling(&VERSIONS, version), text);
        }
        for (mode, _) in MODES {
            assert_eq!(lookup(&MODES, spelling(&MODES, mode)), Some(mode));
        }
    }
}

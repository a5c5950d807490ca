//! The license server's side of the API: an axum router over one [`LicenseServer`], served
//! by hyper's own connection loop under [`Limits`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rdpele_proto::cal::parse_cal;
use rdpele_proto::crypto::RsaBackend;
use rdpele_proto::machine::{ClientInfo, LicenseAnswer, LicenseQuery, PresentedLicense};
use rdpele_proto::wire::ClientHardwareId;
use serde::Serialize;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::answered::{AnsweredRequests, Claim, Outcome};
use super::{AssessmentBody, DecisionBody, HealthBody, ValidatedBody, MAX_BODY_BYTES};
use crate::clock::{format_instant, Clock};
use crate::model::{HostInfo, LicensingMode, WindowsVersion};
use crate::server::{LicenseServer, ServerError};
use crate::store::Store;

/// The host the server is opened for. Never decides anything: every decision first sets the
/// host its request names.
const OPENING_HOST: HostInfo = HostInfo {
    version: WindowsVersion::V2022,
    mode: LicensingMode::PerDevice,
};

/// How long a failed `accept` (out of file descriptors, most likely) waits before the next
/// one, so the loop does not spin while connections are closing.
const ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

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
    #[error("max_connections is 0: no connection would ever be served")]
    NoConnections,
}

/// What a client may hold of the server, so that slow or hostile clients (slowloris, bodies
/// that never end, connections left open) cannot keep the session hosts from their answers.
/// Every request of the API is a few hundred bytes of header and at most [`MAX_BODY_BYTES`]
/// of body, sent at once by a program: the defaults are generous for that and still bound
/// what an idle or stalled connection costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// How long a connection has to send a whole request head, counted from when the server
    /// starts waiting for it: on a fresh connection, and after each answer on a kept-alive
    /// one. So it is also how long a kept-alive connection may sit idle (hyper's header timer
    /// runs from the wait for the next request, not from its first byte). Default 10 s: a head
    /// arrives in one segment; a session host's connection pool reconnects after an idle close.
    pub header_timeout: Duration,
    /// How long a request has to send its whole body once its head is read, however it
    /// trickles in; answered 408 past that. Default 10 s, for at most 64 KiB.
    pub body_timeout: Duration,
    /// How many connections are served at once; the next ones wait in the listen backlog
    /// until one closes (which the timeouts above bound). Default 512: a fleet of session
    /// hosts needs a few dozen, and 512 stays under the usual soft limit of 1024 open files,
    /// so the cap is reached before `accept` fails for want of descriptors.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_connections: 512,
        }
    }
}

/// Serves the license server over `dir` on `listener` until `shutdown` completes, then lets
/// the requests in flight finish. Its CALs are signed by `rsa_backend`; with `tls`, every
/// connection is HTTPS ([`tls::server_config`](super::tls::server_config)).
pub async fn serve(
    listener: TcpListener,
    dir: PathBuf,
    token: String,
    rsa_backend: RsaBackend,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    // Opening may generate the 2048-bit signing key: not on the runtime's threads.
    let server = tokio::task::spawn_blocking(move || {
        LicenseServer::open(&dir, OPENING_HOST)?.with_rsa_backend(rsa_backend)
    })
    .await??;
    serve_with_limits(listener, server, token, Limits::default(), tls, shutdown).await
}

/// [`serve`] with a license server the caller opened (a frozen clock and a seed, in tests).
pub async fn serve_with(
    listener: TcpListener,
    server: LicenseServer,
    token: String,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    serve_with_limits(listener, server, token, Limits::default(), None, shutdown).await
}

/// [`serve_with`] under `limits` instead of the defaults, and over TLS with `tls`.
///
/// Each connection is served by a task holding one of `max_connections` permits; the loop
/// waits for a permit before it accepts. When `shutdown` completes the loop stops accepting,
/// every connection is told to close once its request in flight is answered (an idle one
/// closes at once), and this returns when all have closed: at most the timeouts later for a
/// slow client. A TLS handshake must complete within the header timeout.
pub async fn serve_with_limits(
    listener: TcpListener,
    server: LicenseServer,
    token: String,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    if limits.max_connections == 0 {
        return Err(RemoteError::NoConnections);
    }
    let service = TowerToHyperService::new(router(server, token, limits.body_timeout)?);
    let mut connections = http1::Builder::new();
    connections
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    // Past MAX_PERMITS (usize::MAX / 8) tokio panics; no machine serves that many anyway.
    let permits = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                // The semaphore is never closed: this loop owns it.
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    if !is_connection_error(&error) {
                        tracing::warn!(%error, "accepting a connection");
                        tokio::select! {
                            () = &mut shutdown => break,
                            () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                        }
                    }
                    continue;
                }
            },
        };
        let watcher = graceful.watcher();
        let connections = connections.clone();
        let service = service.clone();
        let acceptor = tls.clone().map(tokio_rustls::TlsAcceptor::from);
        tokio::spawn(async move {
            // Timeouts and clients going away end up in these errors: the client's business.
            let served = match acceptor {
                None => watcher
                    .watch(connections.serve_connection(TokioIo::new(stream), service))
                    .await
                    .map_err(|error| error.to_string()),
                Some(acceptor) => {
                    match tokio::time::timeout(limits.header_timeout, acceptor.accept(stream)).await
                    {
                        Ok(Ok(stream)) => watcher
                            .watch(connections.serve_connection(TokioIo::new(stream), service))
                            .await
                            .map_err(|error| error.to_string()),
                        Ok(Err(error)) => Err(format!("TLS handshake: {error}")),
                        Err(_) => Err("TLS handshake: timed out".to_owned()),
                    }
                }
            };
            if let Err(error) = served {
                tracing::debug!(%peer, %error, "connection ended");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// An `accept` error about the one connection being accepted (it went away before it was
/// accepted), rather than about the listener.
fn is_connection_error(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset, Interrupted};
    matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset | Interrupted
    )
}

/// The API's routes over `server`, reading each request body within `body_timeout`, for a
/// caller that serves them itself (with its own header timeout and connection cap).
pub fn router(
    server: LicenseServer,
    token: String,
    body_timeout: Duration,
) -> Result<Router, RemoteError> {
    if token.is_empty() {
        return Err(RemoteError::EmptyToken);
    }
    let (clock, store) = server.open_clock_reader()?;
    let shared = Shared {
        server: Arc::new(Mutex::new(server)),
        answered: Arc::new(AnsweredRequests::default()),
        clock: Arc::new(ClockReader {
            clock,
            store: Mutex::new(store),
        }),
        token: Arc::from(token),
        body_timeout,
    };
    let decisions = Router::new()
        .route("/v1/new_license", post(new_license))
        .route("/v1/assess_license", post(assess_license))
        .route("/v1/upgrade_license", post(upgrade_license))
        .route("/v1/validate_license", post(validate_license))
        .route_layer(middleware::from_fn_with_state(
            shared.clone(),
            require_token,
        ));
    Ok(Router::new()
        .route("/v1/health", get(health))
        .merge(decisions)
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, None, "no such endpoint") })
        .with_state(shared))
}

/// One license server for every connection. Its store is one SQLite connection, so the store's
/// part of each decision takes turns under the lock; the CAL it grants is signed after the lock
/// is released, so signatures for different clients run side by side. Both run off the
/// runtime's threads (SQLite with fsync, and RSA). The health check reads the virtual now
/// through a connection of its own, so it answers while decisions queue.
#[derive(Clone)]
struct Shared {
    server: Arc<Mutex<LicenseServer>>,
    answered: Arc<AnsweredRequests>,
    clock: Arc<ClockReader>,
    token: Arc<str>,
    body_timeout: Duration,
}

/// The license server's clock over its second store handle. A health check reads one row
/// under this lock, never behind a decision.
struct ClockReader {
    clock: Clock,
    store: Mutex<Store>,
}

impl Shared {
    /// Reads a request with `parse` as the protocol machine's query, lets the license server
    /// decide it for the host it names at its virtual now, and answers with `body` of the
    /// answer. A request with a `request_id` seen before (with the same body) gets the first
    /// one's answer instead of a new decision ([`AnsweredRequests`]).
    async fn answer<T>(
        &self,
        body: Body,
        parse: fn(&Value) -> Parsed<LicenseQuery>,
        answer_body: fn(LicenseAnswer) -> T,
    ) -> Response
    where
        T: Serialize + Send + 'static,
    {
        let read = self.read_body(body).await.and_then(|bytes| {
            let value = json_body(&bytes)?;
            let request_id = Fields::body(&value)?.request_id()?;
            Ok((bytes, request_id, parse(&value)?))
        });
        let (bytes, request_id, (host, query)) = match read {
            Ok(read) => read,
            Err(error) => return error.into_response(),
        };
        let decide = self.decide(host, query, answer_body);
        let Some(request_id) = request_id else {
            return respond(decide.await);
        };
        let mut outcome = match self.answered.claim(&request_id, &bytes, Instant::now()) {
            Claim::Await(outcome) => outcome,
            Claim::Conflict => {
                return ApiError::new(
                    StatusCode::CONFLICT,
                    Some("request_id".into()),
                    "already used for another request",
                )
                .into_response()
            }
            Claim::Decide(sender) => {
                let outcome = sender.subscribe();
                let answered = Arc::clone(&self.answered);
                // Its own task: the decision is made and remembered even if this caller has
                // gone (timed out), for its retry to find.
                tokio::spawn(async move {
                    let decided = decide.await;
                    if decided.is_err() {
                        answered.forget(&request_id);
                    }
                    let _ = sender.send(Some(decided));
                });
                outcome
            }
        };
        let decided = match outcome.wait_for(Option::is_some).await {
            Ok(decided) => decided.clone(),
            Err(_) => None,
        };
        respond(decided.unwrap_or_else(|| Err("the deciding task ended without an answer".into())))
    }

    /// The decision of `query` for `host`, as the answer's JSON (off the runtime's threads:
    /// SQLite with fsync, and RSA).
    fn decide<T>(
        &self,
        host: HostInfo,
        query: LicenseQuery,
        answer_body: fn(LicenseAnswer) -> T,
    ) -> impl Future<Output = Outcome> + Send + 'static
    where
        T: Serialize + Send + 'static,
    {
        let server = Arc::clone(&self.server);
        async move {
            let joined = tokio::task::spawn_blocking(move || {
                let decided = {
                    // A decision is one store transaction: one that panicked has left nothing
                    // half written, so the server is still usable.
                    let mut server = server.lock().unwrap_or_else(PoisonError::into_inner);
                    server.set_host(host);
                    let now = server.now()?;
                    server.decide_query(now, &query)
                };
                Ok::<T, ServerError>(answer_body(decided.finish()))
            })
            .await;
            match joined {
                Ok(Ok(answer)) => serde_json::to_value(answer)
                    .map(Arc::new)
                    .map_err(|error| error.to_string()),
                Ok(Err(error)) => Err(error.to_string()),
                Err(error) => Err(error.to_string()),
            }
        }
    }

    /// The whole request body, at most [`MAX_BODY_BYTES`], read within the body timeout in
    /// all: a per-read timeout would let a client trickle a byte at a time for hours.
    async fn read_body(&self, body: Body) -> Result<Bytes, ApiError> {
        let read = Limited::new(body, MAX_BODY_BYTES).collect();
        match tokio::time::timeout(self.body_timeout, read).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(error)) if error.is::<LengthLimitError>() => Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                Some("body".into()),
                format!("over {MAX_BODY_BYTES} bytes"),
            )),
            Ok(Err(error)) => Err(ApiError::bad_field(
                "body".into(),
                format!("cut short: {error}"),
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                Some("body".into()),
                format!("not received within {:?}", self.body_timeout),
            )),
        }
    }

    /// Whether `headers` carry `Authorization: Bearer <the token>` (the scheme in any case,
    /// RFC 7235).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .is_some_and(|(_, token)| tokens_match(token.trim().as_bytes(), self.token.as_bytes()))
    }
}

/// A request body read: the host it is for, and what it asks.
type Parsed<R> = Result<(HostInfo, R), ApiError>;

/// A decision's answer, or 503 with why the license server could not decide.
fn respond(outcome: Outcome) -> Response {
    match outcome {
        Ok(answer) => Json(&*answer).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "license server cannot decide");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, reason).into_response()
        }
    }
}

async fn new_license(State(shared): State<Shared>, body: Body) -> Response {
    let parse = |body: &Value| {
        parse_new_license(body).map(|(host, client)| (host, LicenseQuery::NewLicense(client)))
    };
    shared.answer(body, parse, DecisionBody::from_answer).await
}

async fn assess_license(State(shared): State<Shared>, body: Body) -> Response {
    let parse = |body: &Value| {
        parse_presented(body)
            .map(|(host, presented)| (host, LicenseQuery::AssessLicense(Box::new(presented))))
    };
    shared
        .answer(body, parse, AssessmentBody::from_answer)
        .await
}

async fn upgrade_license(State(shared): State<Shared>, body: Body) -> Response {
    let parse = |body: &Value| {
        parse_presented(body)
            .map(|(host, presented)| (host, LicenseQuery::UpgradeLicense(Box::new(presented))))
    };
    shared.answer(body, parse, DecisionBody::from_answer).await
}

/// Marks a temporary CAL validated (off the runtime's threads: a store write with fsync).
async fn validate_license(State(shared): State<Shared>, body: Body) -> Response {
    let read = shared.read_body(body).await.and_then(|bytes| {
        let value = json_body(&bytes)?;
        let fields = Fields::body(&value)?;
        Ok((fields.u32("license_id")?, fields.hwid("hwid")?))
    });
    let (license_id, hwid) = match read {
        Ok(read) => read,
        Err(error) => return error.into_response(),
    };
    let server = Arc::clone(&shared.server);
    let recorded = tokio::task::spawn_blocking(move || {
        let server = server.lock().unwrap_or_else(PoisonError::into_inner);
        server
            .record_validation(license_id, &hwid.to_bytes())
            .map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()));
    match recorded {
        Ok(validated) => Json(ValidatedBody { validated }).into_response(),
        Err(reason) => {
            tracing::warn!(%reason, "license server cannot record a validation");
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, None, reason).into_response()
        }
    }
}

async fn require_token(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    if shared.authorized(request.headers()) {
        next.run(request).await
    } else {
        unauthorized()
    }
}

fn unauthorized() -> Response {
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

/// Compares the presented token with the expected one in constant time for equal lengths, so
/// a caller cannot guess it byte by byte from response times (its length may show).
fn tokens_match(presented: &[u8], expected: &[u8]) -> bool {
    presented.ct_eq(expected).into()
}

/// Needs no token; one that is presented must be right, so a session host can check its
/// token at startup with this call.
async fn health(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if headers.contains_key(header::AUTHORIZATION) && !shared.authorized(&headers) {
        return unauthorized();
    }
    let reader = Arc::clone(&shared.clock);
    let now = tokio::task::spawn_blocking(move || {
        let store = reader.store.lock().unwrap_or_else(PoisonError::into_inner);
        reader.clock.now(&store).map_err(|error| error.to_string())
    })
    .await
    .unwrap_or_else(|error| Err(error.to_string()));
    let written = now.and_then(|now| {
        let text = format_instant(now).ok_or("virtual time out of range")?;
        let unix = crate::store::unix_seconds(now).map_err(|error| error.to_string())?;
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

    /// The optional `request_id`: 1 to 64 letters, digits, `-` or `_`.
    fn request_id(&self) -> Result<Option<String>, ApiError> {
        let Some(value) = self.object.get("request_id") else {
            return Ok(None);
        };
        let id = value
            .as_str()
            .filter(|id| {
                (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
            })
            .ok_or_else(|| {
                ApiError::bad_field(
                    self.path("request_id"),
                    "expected 1 to 64 letters, digits, '-' or '_'",
                )
            })?;
        Ok(Some(id.to_owned()))
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
            version: version.parse().map_err(|_| {
                ApiError::bad_field(
                    host.path("version"),
                    format!("unknown version {version:?} (expected 2008R2 … 2025)"),
                )
            })?,
            mode: mode.parse().map_err(|_| {
                ApiError::bad_field(
                    host.path("mode"),
                    format!("unknown mode {mode:?} (expected per-device or per-user)"),
                )
            })?,
        })
    }
}

fn json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_field("body".into(), format!("not JSON: {error}")))
}

/// A `new_license` body: the host and the client that passed the platform challenge.
fn parse_new_license(body: &Value) -> Parsed<ClientInfo> {
    let fields = Fields::body(body)?;
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
fn parse_presented(body: &Value) -> Parsed<PresentedLicense> {
    let fields = Fields::body(body)?;
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
            cal: Arc::new(cal),
        },
    ))
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
}

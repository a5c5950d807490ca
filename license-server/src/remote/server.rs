//! The license server's side of the API: an axum router over one [`LicenseServer`].

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rdpele_proto::cal::parse_cal;
use rdpele_proto::crypto::RsaBackend;
use rdpele_proto::machine::{ClientInfo, LicenseAnswer, LicenseQuery, PresentedLicense};
use rdpele_proto::wire::ClientHardwareId;
use serde::Serialize;
use serde_json::{Map, Value};

use super::{AssessmentBody, DecisionBody, HealthBody, MAX_BODY_BYTES};
use crate::clock::format_instant;
use crate::model::{HostInfo, LicensingMode, WindowsVersion};
use crate::server::{LicenseServer, ServerError};

/// The host the server is opened for. Never decides anything: every decision first sets the
/// host its request names.
const OPENING_HOST: HostInfo = HostInfo {
    version: WindowsVersion::V2022,
    mode: LicensingMode::PerDevice,
};

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
/// the requests in flight finish. Its CALs are signed by `rsa_backend`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dir: PathBuf,
    token: String,
    rsa_backend: RsaBackend,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RemoteError> {
    // Opening may generate the 2048-bit signing key: not on the runtime's threads.
    let server = tokio::task::spawn_blocking(move || {
        LicenseServer::open(&dir, OPENING_HOST)?.with_rsa_backend(rsa_backend)
    })
    .await??;
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

/// One license server for every connection. Its store is one SQLite connection, so the store's
/// part of each decision takes turns under the lock; the CAL it grants is signed after the lock
/// is released, so signatures for different clients run side by side. Both run off the
/// runtime's threads (SQLite with fsync, and RSA).
#[derive(Clone)]
struct Shared {
    server: Arc<Mutex<LicenseServer>>,
    token: Arc<str>,
}

impl Shared {
    /// Reads a request with `parse` as the protocol machine's query, lets the license server
    /// decide it for the host it names at its virtual now, and answers with `body` of the
    /// answer.
    async fn answer<T>(
        &self,
        body: Body,
        parse: fn(&[u8]) -> Parsed<LicenseQuery>,
        answer_body: fn(LicenseAnswer) -> T,
    ) -> Response
    where
        T: Serialize + Send + 'static,
    {
        let (host, query) = match body.map_err(ApiError::from).and_then(|body| parse(&body)) {
            Ok(parsed) => parsed,
            Err(error) => return error.into_response(),
        };
        let server = Arc::clone(&self.server);
        let joined = tokio::task::spawn_blocking(move || {
            let decided = {
                // A decision is one store transaction: one that panicked has left nothing half
                // written, so the server is still usable.
                let mut server = server.lock().unwrap_or_else(PoisonError::into_inner);
                server.set_host(host);
                let now = server.now()?;
                server.decide_query(now, &query)
            };
            Ok::<T, ServerError>(answer_body(decided.finish()))
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
    let parse = |body: &[u8]| {
        parse_new_license(body).map(|(host, client)| (host, LicenseQuery::NewLicense(client)))
    };
    shared.answer(body, parse, DecisionBody::from_answer).await
}

async fn assess_license(State(shared): State<Shared>, body: Body) -> Response {
    let parse = |body: &[u8]| {
        parse_presented(body)
            .map(|(host, presented)| (host, LicenseQuery::AssessLicense(Box::new(presented))))
    };
    shared
        .answer(body, parse, AssessmentBody::from_answer)
        .await
}

async fn upgrade_license(State(shared): State<Shared>, body: Body) -> Response {
    let parse = |body: &[u8]| {
        parse_presented(body)
            .map(|(host, presented)| (host, LicenseQuery::UpgradeLicense(Box::new(presented))))
    };
    shared.answer(body, parse, DecisionBody::from_answer).await
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

//! The session host's side of the API: [`RemoteIssuer`], asking a remote license server the
//! protocol machine's queries over HTTP (hyper, the stack the server side is built on).

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseAnswer, LicenseIssuer, LicenseQuery, PresentedLicense,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{AssessmentBody, DecisionBody, HealthBody, ValidatedBody, MAX_BODY_BYTES};
use crate::model::HostInfo;
use crate::server::{unavailable, unavailable_answer};

/// Why a call to the remote license server gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCallError {
    #[error("{url}: not a URL the client can call: {reason}")]
    Url { url: String, reason: String },
    #[error("{}", with_causes(.0))]
    Transport(#[from] hyper_util::client::legacy::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("reading the answer: {0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    #[error("answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unreadable answer: {0}")]
    Answer(serde_json::Error),
    #[error("unreadable answer: cal: {0}")]
    Cal(hex::FromHexError),
    #[error("unreadable answer: now_unix {0}")]
    Now(i64),
    #[error("the certificates to trust: {0}")]
    Trust(String),
    /// The blocking calls run their own runtime; it could not be built.
    #[error("starting the blocking call's runtime: {0}")]
    Runtime(std::io::Error),
}

impl RemoteCallError {
    /// Whether the license server could not be reached at all (no connection, no answer in
    /// time, or it answered that it cannot decide, 5xx), as opposed to a host that reached
    /// something and was turned away or misunderstood: a wrong token (401/403), a wrong URL
    /// (404, not HTTP, not the API). Windows admits clients through the grace period only in
    /// the first case; in the second the host is misconfigured and must fail closed, or a typo
    /// in its configuration would admit everyone for 120 days.
    pub fn is_unreachable(&self) -> bool {
        match self {
            // A TLS handshake that failed (an untrusted certificate, say) is reported as a
            // connect error too, but the server was there: that is a misconfiguration.
            Self::Transport(error) => error.is_connect() && !failed_in_tls(error),
            Self::Timeout(_) => true,
            Self::Status { status, .. } => *status >= 500,
            Self::Url { .. }
            | Self::Body(_)
            | Self::Answer(_)
            | Self::Cal(_)
            | Self::Now(_)
            | Self::Trust(_)
            | Self::Runtime(_) => false,
        }
    }
}

/// `error` and each of its causes, `: `-separated: hyper's own text ("client error
/// (Connect)") does not say what failed.
fn with_causes(error: &hyper_util::client::legacy::Error) -> String {
    let mut text = if failed_in_tls(error) {
        format!("TLS handshake failed: {error}")
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `error` comes from a TLS handshake (an untrusted certificate, a server that does
/// not speak TLS) rather than from reaching the server. rustls' errors arrive wrapped in
/// `io::Error`s, whose `source` skips the wrapped error: look inside each.
fn failed_in_tls(error: &hyper_util::client::legacy::Error) -> bool {
    fn is_tls(cause: &(dyn std::error::Error + Send + Sync + 'static)) -> bool {
        match cause.downcast_ref::<std::io::Error>() {
            Some(io) => {
                io.kind() == std::io::ErrorKind::InvalidData || io.get_ref().is_some_and(is_tls)
            }
            None => cause.is::<rustls::Error>(),
        }
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let io = cause.downcast_ref::<std::io::Error>();
        if cause.is::<rustls::Error>()
            || io.is_some_and(|io| io.kind() == std::io::ErrorKind::InvalidData)
            || io.and_then(std::io::Error::get_ref).is_some_and(is_tls)
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// The license server's answer to `/v1/health`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteHealth {
    /// The rdpele version the license server runs.
    pub version: String,
    /// Its virtual now: what it decides by.
    pub now: SystemTime,
}

/// A remote license server as the session host asks it: [`RemoteIssuer::ask`] answers the
/// protocol machine's queries on the caller's runtime, each call bounded by the timeout.
///
/// Clones share one connection pool, so a session host can keep one and clone it per
/// connection. For callers without a runtime (tests, tools) the blocking
/// [`LicenseIssuer`] methods and [`RemoteIssuer::health`] run each call on a runtime and
/// connection of their own. A blocking call that fails in any way — no connection, a timeout,
/// an error status, an unreadable answer — is answered as a Windows session host answers when
/// it cannot reach its license server: ERR_NO_LICENSE_SERVER, the same refusal the embedded
/// server gives when its store fails; [`RemoteIssuer::take_failure`] tells that refusal from
/// one the license server decided.
#[derive(Clone)]
pub struct RemoteIssuer {
    client: HttpClient,
    /// What https:// trusts, kept to rebuild connection pools ([`Self::on_own_connection`]).
    roots: Arc<rustls::RootCertStore>,
    tls: Arc<rustls::ClientConfig>,
    base_url: String,
    authorization: String,
    host: HostInfo,
    timeout: Duration,
    failure: Option<String>,
}

impl fmt::Debug for RemoteIssuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RemoteIssuer")
            .field("base_url", &self.base_url)
            .field("authorization", &"<redacted>")
            .field("host", &self.host)
            .field("timeout", &self.timeout)
            .field("failure", &self.failure)
            .finish_non_exhaustive()
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A connection pool for http:// and https:// URLs, trusting what `tls` trusts.
fn new_client(tls: &rustls::ClientConfig) -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls.clone())
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// TLS trusting `roots`, for https:// license servers.
fn tls_config(roots: rustls::RootCertStore) -> Result<rustls::ClientConfig, RemoteCallError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| RemoteCallError::Trust(error.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// The operating system's trusted roots (what `https://` trusts without a CA file); a store
/// that cannot be read leaves only the CA file to trust.
fn system_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for error in &found.errors {
        tracing::debug!(%error, "reading the system's trusted certificates");
    }
    roots.add_parsable_certificates(found.certs);
    roots
}

impl RemoteIssuer {
    /// An issuer asking the license server at `base_url` (`http://127.0.0.1:4000`) for the
    /// session host `host`, each call given at most `timeout` in all. A URL the client cannot
    /// call (another scheme, no host, a query) or a token that cannot go in a header is an
    /// error here, not a refusal at the first client.
    pub fn new(
        base_url: &str,
        token: &str,
        host: HostInfo,
        timeout: Duration,
    ) -> Result<Self, RemoteCallError> {
        let base_url = base_url.trim_end_matches('/').to_owned();
        let url_error = |reason: &str| RemoteCallError::Url {
            url: base_url.clone(),
            reason: reason.to_owned(),
        };
        let uri: Uri = base_url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| url_error(&e.to_string()))?;
        let roots = match uri.scheme_str() {
            Some("http") => rustls::RootCertStore::empty(),
            Some("https") => system_roots(),
            Some(other) => {
                return Err(url_error(&format!(
                    "the {other}:// scheme is not supported (http:// or https://)"
                )))
            }
            None => {
                return Err(url_error(
                    "no scheme (expected http:// or https://HOST:PORT)",
                ))
            }
        };
        if uri.host().is_none_or(str::is_empty) {
            return Err(url_error("no host"));
        }
        if uri.query().is_some() {
            return Err(url_error("a query has no place in the base URL"));
        }
        let authorization = format!("Bearer {token}");
        HeaderValue::from_str(&authorization)
            .map_err(|_| url_error("the token cannot be sent in an HTTP header"))?;
        let tls = tls_config(roots.clone())?;
        Ok(Self {
            client: new_client(&tls),
            roots: Arc::new(roots),
            tls: Arc::new(tls),
            base_url,
            authorization,
            host,
            timeout,
            failure: None,
        })
    }

    /// This issuer also trusting the certificates in `pem` (a license server's self-signed
    /// certificate, or the CA that signed it) for an https:// URL.
    pub fn trusting(self, pem: &[u8]) -> Result<Self, RemoteCallError> {
        let mut roots = (*self.roots).clone();
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|error| RemoteCallError::Trust(error.to_string()))?;
            roots
                .add(cert)
                .map_err(|error| RemoteCallError::Trust(error.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(RemoteCallError::Trust("no PEM certificate in it".into()));
        }
        let tls = tls_config(roots.clone())?;
        Ok(Self {
            client: new_client(&tls),
            roots: Arc::new(roots),
            tls: Arc::new(tls),
            ..self
        })
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

    /// Why the last blocking call got no answer from the license server (and was refused with
    /// ERR_NO_LICENSE_SERVER), if it got none; reading it clears it. A session host without
    /// its license server may apply its own rules instead (the grace period).
    pub fn take_failure(&mut self) -> Option<String> {
        self.failure.take()
    }

    /// Asks the license server `query` for this issuer's host. `Err` when it gave no answer;
    /// the caller decides what that means (a session host applies the grace-period rules).
    pub async fn ask(&self, query: &LicenseQuery) -> Result<LicenseAnswer, RemoteCallError> {
        match query {
            LicenseQuery::NewLicense(client) => {
                let body = json!({
                    "request_id": new_request_id(),
                    "host": self.host_json(),
                    "client": {
                        "hwid": hex::encode(client.hwid.to_bytes()),
                        "platform_id": client.platform_id,
                        "user_name": client.user_name,
                        "machine_name": client.machine_name,
                    },
                });
                self.decision(endpoint(query), &body).await
            }
            LicenseQuery::AssessLicense(presented) => {
                let body = self.presented(presented, false);
                let assessment = match self.post(endpoint(query), &body).await? {
                    AssessmentBody::Valid => Assessment::Valid,
                    AssessmentBody::Upgrade => Assessment::Upgrade,
                    AssessmentBody::Refuse(refusal) => Assessment::Refuse(refusal.into()),
                };
                Ok(LicenseAnswer::Assessment(assessment))
            }
            LicenseQuery::UpgradeLicense(presented) => {
                let body = self.presented(presented, true);
                self.decision(endpoint(query), &body).await
            }
            _ => Ok(unavailable_answer(query)),
        }
    }

    /// Reports that a sign-in completed with temporary CAL `license_id` of the device
    /// `hardware_id`; true if the license server marked it validated now.
    pub async fn validate_license(
        &self,
        license_id: u32,
        hardware_id: &[u8; 20],
    ) -> Result<bool, RemoteCallError> {
        let body = json!({
            "license_id": license_id,
            "hwid": hex::encode(hardware_id),
        });
        let answer: ValidatedBody = self.post("validate_license", &body).await?;
        Ok(answer.validated)
    }

    /// The license server's version and virtual now, on the caller's runtime; with the token,
    /// so a wrong one is an error (401) here as it would be at the first decision.
    pub async fn check_health(&self) -> Result<RemoteHealth, RemoteCallError> {
        let body: HealthBody = self.call(Method::GET, "health", None).await?;
        let now = u64::try_from(body.now_unix)
            .ok()
            .and_then(|seconds| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(seconds)))
            .ok_or(RemoteCallError::Now(body.now_unix))?;
        Ok(RemoteHealth {
            version: body.version,
            now,
        })
    }

    /// [`RemoteIssuer::check_health`] for a caller without a runtime.
    pub fn health(&self) -> Result<RemoteHealth, RemoteCallError> {
        let own = self.on_own_connection();
        block_on(async move { own.check_health().await })?
    }

    /// A new or upgrade decision. `body` carries a request id: when the first call times out
    /// (the license server may have decided and recorded a CAL), the call is made once more
    /// with the same id, and the license server answers it with that decision, not a second
    /// one.
    async fn decision(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<LicenseAnswer, RemoteCallError> {
        let answer = match self.post(endpoint, body).await {
            Err(RemoteCallError::Timeout(timeout)) => {
                tracing::warn!(
                    license_server = %self.base_url,
                    endpoint,
                    ?timeout,
                    "no decision in time: asking once more with the same request id"
                );
                self.post(endpoint, body).await?
            }
            answer => answer?,
        };
        let decision = match answer {
            DecisionBody::Issue { cal } => {
                Decision::Issue(hex::decode(&cal).map_err(RemoteCallError::Cal)?)
            }
            DecisionBody::Valid => Decision::Valid,
            DecisionBody::Refuse(refusal) => Decision::Refuse(refusal.into()),
        };
        Ok(LicenseAnswer::Decision(decision))
    }

    async fn post<T: DeserializeOwned>(
        &self,
        endpoint: &str,
        body: &Value,
    ) -> Result<T, RemoteCallError> {
        self.call(Method::POST, endpoint, Some(body)).await
    }

    /// One call to `/v1/<endpoint>`, within the timeout, reading at most
    /// [`MAX_BODY_BYTES`] of the answer.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        endpoint: &str,
        body: Option<&Value>,
    ) -> Result<T, RemoteCallError> {
        let url = format!("{}/v1/{endpoint}", self.base_url);
        let url_error = |reason: String| RemoteCallError::Url {
            url: url.clone(),
            reason,
        };
        let uri: Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| url_error(e.to_string()))?;
        let authorization =
            HeaderValue::from_str(&self.authorization).map_err(|e| url_error(e.to_string()))?;
        // The token goes with the health check too: the server answers 401 to a wrong one,
        // which is how a host finds out at startup.
        let mut request = Request::builder()
            .method(method)
            .uri(uri)
            .header(AUTHORIZATION, authorization);
        if body.is_some() {
            request = request.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        let payload = body.map(Value::to_string).unwrap_or_default();
        let request = request
            .body(Full::new(Bytes::from(payload)))
            .map_err(|e| url_error(e.to_string()))?;
        let exchange = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            let bytes = Limited::new(response.into_body(), MAX_BODY_BYTES)
                .collect()
                .await
                .map_err(RemoteCallError::Body)?
                .to_bytes();
            Ok::<_, RemoteCallError>((status, bytes))
        };
        let (status, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| RemoteCallError::Timeout(self.timeout))??;
        if !status.is_success() {
            return Err(RemoteCallError::Status {
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(RemoteCallError::Answer)
    }

    fn host_json(&self) -> Value {
        json!({
            "version": self.host.version,
            "mode": self.host.mode,
        })
    }

    /// The body presenting a CAL; `with_request_id` for a decision (upgrade), not for an
    /// assessment, which records nothing.
    fn presented(&self, presented: &PresentedLicense, with_request_id: bool) -> Value {
        let mut body = json!({
            "host": self.host_json(),
            "license": {
                "hwid": hex::encode(presented.hwid.to_bytes()),
                "platform_id": presented.platform_id,
                "license_info": hex::encode(&presented.license_info),
            },
        });
        if let (true, Value::Object(fields)) = (with_request_id, &mut body) {
            fields.insert("request_id".into(), Value::from(new_request_id()));
        }
        body
    }

    /// A clone with a connection pool of its own, for a blocking call's own runtime: pooled
    /// connections are driven by the runtime that opened them.
    fn on_own_connection(&self) -> Self {
        Self {
            client: new_client(&self.tls),
            failure: None,
            ..self.clone()
        }
    }

    /// Asks `query` from a caller without a runtime; no answer is ERR_NO_LICENSE_SERVER, with
    /// the cause kept for [`RemoteIssuer::take_failure`].
    fn ask_blocking(&mut self, query: LicenseQuery) -> LicenseAnswer {
        self.failure = None;
        let own = self.on_own_connection();
        let endpoint = endpoint(&query);
        let unavailable = unavailable_answer(&query);
        let answer = block_on(async move { own.ask(&query).await }).and_then(|answer| answer);
        answer.unwrap_or_else(|error| {
            self.failure = Some(format!("{endpoint}: {error}"));
            tracing::warn!(
                license_server = %self.base_url,
                endpoint,
                %error,
                "license server unavailable: refusing with ERR_NO_LICENSE_SERVER"
            );
            unavailable
        })
    }
}

/// A request id for one decision (and its retry): 128 random bits in hex.
fn new_request_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// The API endpoint that answers `query`.
fn endpoint(query: &LicenseQuery) -> &'static str {
    match query {
        LicenseQuery::AssessLicense(_) => "assess_license",
        LicenseQuery::UpgradeLicense(_) => "upgrade_license",
        _ => "new_license",
    }
}

/// Runs `future` to completion on a runtime of its own.
fn block_on<F: Future>(future: F) -> Result<F::Output, RemoteCallError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(RemoteCallError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Blocking, for callers without a runtime; `now` is not sent: the license server decides on
/// its own virtual clock.
impl LicenseIssuer for RemoteIssuer {
    fn new_license(&mut self, _now: SystemTime, client: &ClientInfo) -> Decision {
        let query = LicenseQuery::NewLicense(client.clone());
        match self.ask_blocking(query) {
            LicenseAnswer::Decision(decision) => decision,
            LicenseAnswer::Assessment(_) => Decision::Refuse(unavailable()),
        }
    }

    fn assess_license(&mut self, _now: SystemTime, presented: &PresentedLicense) -> Assessment {
        let query = LicenseQuery::AssessLicense(Box::new(presented.clone()));
        match self.ask_blocking(query) {
            LicenseAnswer::Assessment(assessment) => assessment,
            LicenseAnswer::Decision(_) => Assessment::Refuse(unavailable()),
        }
    }

    fn upgrade_license(&mut self, _now: SystemTime, presented: &PresentedLicense) -> Decision {
        let query = LicenseQuery::UpgradeLicense(Box::new(presented.clone()));
        match self.ask_blocking(query) {
            LicenseAnswer::Decision(decision) => decision,
            LicenseAnswer::Assessment(_) => Decision::Refuse(unavailable()),
        }
    }
}

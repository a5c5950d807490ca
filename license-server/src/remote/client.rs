//! The session host's side of the API: [`RemoteIssuer`], a [`LicenseIssuer`] over HTTP.

use std::fmt;
use std::time::{Duration, SystemTime};

use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseIssuer, PresentedLicense, Refusal,
};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::{AssessmentBody, DecisionBody, HealthBody, MAX_BODY_BYTES};
use crate::model::HostInfo;
use crate::server::unavailable;

/// Why a call to the remote license server gave no answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteCallError {
    #[error("{0}")]
    Transport(#[from] ureq::Error),
    #[error("answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("unreadable answer: {0}")]
    Answer(ureq::Error),
    #[error("unreadable answer: cal: {0}")]
    Cal(hex::FromHexError),
    #[error("unreadable answer: now_unix {0}")]
    Now(i64),
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
            .ok_or(RemoteCallError::Now(body.now_unix))?;
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
            "version": self.host.version,
            "mode": self.host.mode,
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
                    .map_err(RemoteCallError::Cal),
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
    body.read_json().map_err(RemoteCallError::Answer)
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

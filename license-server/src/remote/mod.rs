//! The license server over the network: one [`LicenseServer`](crate::server::LicenseServer) serving several session hosts
//! through a small HTTP+JSON API ([`serve`]), and the [`LicenseIssuer`](rdpele_proto::machine::LicenseIssuer) a session host uses to
//! reach it ([`RemoteIssuer`]).
//!
//! Windows session hosts find their RD License Server over the network and several hosts share
//! one; this is that arrangement for the emulator. The API is versioned by its path prefix
//! (`/v1`), carries one call per [`LicenseIssuer`](rdpele_proto::machine::LicenseIssuer) method, and needs
//! `Authorization: Bearer <token>` on every call but the health check. The health check takes
//! a token too: without one it answers anybody, with a wrong one it answers 401, so a session
//! host can check its token at startup:
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
//!                        (new_license and upgrade_license take an optional
//!                         "request_id": 1-64 of [A-Za-z0-9_-]; see below)
//! POST /v1/validate_license {"license_id": u32, "hwid": HEX20}
//!                        -> {"validated": bool}
//!                        (a sign-in completed with that temporary CAL; see below)
//! GET  /v1/health        -> {"status": "ok", "version": str, "now": RFC3339, "now_unix": i64}
//!
//! HOST     = {"version": "2008R2" | "2012" | "2016" | "2019" | "2022" | "2025",
//!             "mode": "per-device" | "per-user"}
//! DECISION = {"decision": "issue", "cal": HEX} | {"decision": "valid"}
//!          | {"decision": "refuse", "error_code": u32, "state_transition": u32}
//! errors   = {"error": str, "field": "client.hwid"}   (field only when one is at fault):
//!            400 malformed (the field named), 401 no or wrong token, 404 no such endpoint,
//!            408 body not received in time, 409 request_id reused for another body,
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
//! A decision is recorded before it is answered, so a host that stops waiting (its timeout)
//! could leave a CAL recorded for a client that never got it. [`RemoteIssuer`] sends a fresh
//! `request_id` with each new or upgrade decision and, when the call times out, asks once more
//! with the same id; the server answers a repeated id with the first decision (waiting for it
//! if it is still being made) instead of deciding again. Ids are remembered for two minutes,
//! at most 1,024 of them; a decision that failed (503) is forgotten, so its retry decides.
//!
//! `validate_license` is the session host's report that a session licensed with a temporary
//! CAL reached the active state (the user signed in): the license server marks that CAL
//! validated at its now, and only a validated temporary CAL is upgraded at the device's next
//! logon. `validated` is false when there was nothing to mark (validated already, or not that
//! device's temporary CAL on record); repeating the call changes nothing.
//!
//! Decisions use the license server's own virtual clock ([`LicenseServer::now`](crate::server::LicenseServer::now)), never the
//! caller's: `rdpele admin clock advance --data DIR` on the server's data directory is the
//! one time every host sees, as every Windows host trusts its license server's answer. The
//! health check reads that clock through a store connection of its own, so it answers at once
//! even while decisions wait for the store.
//!
//! Slow and hostile clients are bounded by [`Limits`] (HTTP/1.1 only, on hyper's own
//! connection loop): a request head must arrive whole within `header_timeout` (10 s), which
//! is also how long a kept-alive connection may wait idle for its next request, since the
//! timer runs from the moment the server waits for a head; a body must arrive whole within
//! `body_timeout` (10 s) of its head, else 408; and at most `max_connections` (512) are served
//! at once, the others waiting in the listen backlog. Past a timeout the connection is closed.

#[cfg(feature = "http-server")]
mod answered;
#[cfg(feature = "http-client")]
mod client;
#[cfg(feature = "http-server")]
mod server;
#[cfg(feature = "http-server")]
pub mod tls;

#[cfg(feature = "http-server")]
use rdpele_proto::machine::LicenseAnswer;
use rdpele_proto::machine::{Assessment, Decision, Refusal};
use rdpele_proto::wire::{ErrorCode, StateTransition};
use serde::{Deserialize, Serialize};

#[cfg(feature = "http-client")]
pub use client::{RemoteCallError, RemoteHealth, RemoteIssuer};
#[cfg(feature = "http-server")]
pub use server::{router, serve, serve_with, serve_with_limits, Limits, RemoteError};

/// The largest request body the server reads (and response body the client reads): a CAL is
/// a few KiB (the 2019 capture is 5112 bytes), twice that in hex.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// What `new_license` and `upgrade_license` answer.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub(crate) enum DecisionBody {
    Issue { cal: String },
    Valid,
    Refuse(RefusalBody),
}

/// What `assess_license` answers.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "assessment", rename_all = "snake_case")]
pub(crate) enum AssessmentBody {
    Valid,
    Upgrade,
    Refuse(RefusalBody),
}

/// A Licensing Error Message's two codes, as their wire integers (unknown ones survive).
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct RefusalBody {
    error_code: u32,
    state_transition: u32,
}

impl DecisionBody {
    /// The body of a new or upgrade query's answer (never an assessment).
    #[cfg(feature = "http-server")]
    fn from_answer(answer: LicenseAnswer) -> Self {
        match answer {
            LicenseAnswer::Decision(decision) => decision.into(),
            LicenseAnswer::Assessment(_) => Self::Refuse(crate::server::unavailable().into()),
        }
    }
}

impl AssessmentBody {
    /// The body of an assess query's answer (never a decision).
    #[cfg(feature = "http-server")]
    fn from_answer(answer: LicenseAnswer) -> Self {
        match answer {
            LicenseAnswer::Assessment(assessment) => assessment.into(),
            LicenseAnswer::Decision(_) => Self::Refuse(crate::server::unavailable().into()),
        }
    }
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

/// What `validate_license` answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ValidatedBody {
    pub validated: bool,
}

/// What `/v1/health` answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HealthBody {
    pub status: String,
    pub version: String,
    /// The license server's virtual now, RFC 3339.
    pub now: String,
    pub now_unix: i64,
}

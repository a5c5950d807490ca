//! What one connection of the emulated client came to.

use std::time::Duration;

use rdpele_proto::wire::{ErrorCode, StateTransition};

/// How licensing ended (MS-RDPELE 3.3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LicensingOutcome {
    /// A New License: a CAL for a client that presented none (often a temporary one).
    New,
    /// An Upgrade License replaced the presented CAL (temporary → permanent, or a renewal).
    Upgraded,
    /// STATUS_VALID_CLIENT: the presented CAL is valid as it is, or the host admitted the
    /// client without one (e.g. in its grace period).
    Valid,
    /// The server ended licensing with this Licensing Error Message.
    Refused {
        error_code: ErrorCode,
        state_transition: StateTransition,
    },
    /// The client ended licensing itself and told the server with this error code (a bad MAC
    /// on the server's message, an unusable server certificate, ...).
    Aborted {
        error_code: ErrorCode,
        reason: &'static str,
    },
}

/// How the connection ended after licensing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The server sent MCS Disconnect Provider Ultimatum.
    ServerDisconnected,
    /// The server closed the connection without one.
    ServerClosed,
    /// The client disconnected: once active, when asked to; after aborting licensing.
    ClientDisconnected,
    /// Nothing came from the server within the timeout while the client waited at `stage`;
    /// the client disconnected.
    TimedOut { stage: &'static str },
    /// The connection failed after licensing (the outcome above still stands).
    Failed { stage: &'static str, detail: String },
}

/// Where the time went, measured on the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timings {
    /// TCP connect to the Client Info PDU sent: X.224, TLS, MCS and channel joins.
    pub connection: Duration,
    /// Client Info PDU sent to the end of licensing (the host starts licensing on Client Info).
    pub licensing: Duration,
    /// End of licensing to the Font Map, when the session became active.
    pub activation: Option<Duration>,
    /// The whole connection, to its end.
    pub total: Duration,
}

/// One connection's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientReport {
    pub licensing: LicensingOutcome,
    /// The CAL (`pbLicenseInfo`) stored during this connection, if one was.
    pub stored: Option<Vec<u8>>,
    /// The server sent a Server Platform Challenge (MS-RDPELE 2.2.2.4): it asked its license
    /// server for a decision rather than accepting the CAL presented as it was. A
    /// STATUS_VALID_CLIENT after one, with no CAL stored, is how a per-user host answers the
    /// user it has just recorded (or renewed), and how any host admits a client in its grace
    /// period.
    pub challenged: bool,
    /// The session reached the active state (Font Map received).
    pub active: bool,
    /// The last Set Error Info code the server sent (MS-RDPBCGR 2.2.5.1.1), e.g.
    /// ERRINFO_LICENSE_NO_LICENSE (0x102) after a refusal, ERRINFO_LOGOFF_BY_USER (0xC).
    pub error_info: Option<u32>,
    pub ending: Ending,
    pub timings: Timings,
}

//! The session host's licensing grace period: 120 days without a license server.
//!
//! # Rules
//!
//! - "There's a licensing grace period of 120 days during which no license server is required.
//!   Once the grace period ends, clients must have a valid RDS CAL issued by a license server
//!   before they can sign in a remote session" (*[CAL]*). The page once said 180 days; Microsoft
//!   corrected it to 120 (MicrosoftDocs/windowsserverdocs#4758, #4832). [`GRACE_PERIOD`].
//! - The period is counted from `host_first_use`, which the caller supplies: "The grace period
//!   begins the first time the … RD Session Host server accepts a client connection"
//!   (Windows Server 2008 R2 TechNet, "Understand the licensing grace period", hh553157). The
//!   session host records it when its first client is through licensing, whether a license
//!   server licensed it or the grace period admitted it, so an outage after day 120 finds the
//!   period over. It does not depend on the licensing mode.
//! - While it runs, a host without a license server admits every client ([`GraceState::Within`]).
//!   After it, [`admit_without_license_server`]: a per-device client presenting a CAL that is
//!   still valid for the host is admitted until that CAL expires — the host checks the CAL
//!   itself, a license server is needed only to issue or renew one — and everyone else is
//!   refused with [`LicenseRefusal::GracePeriodOver`] (Windows: "The remote session was
//!   disconnected because there are no Remote Desktop License Servers available to provide a
//!   license", MicrosoftDocs SupportArticles-docs, "Cannot connect to RDS because no RD Licensing
//!   servers are available"). A per-user host has nothing to check without a license server, so
//!   it refuses everyone once the period is over.
//!
//! - **A CAL due for upgrade gets itself back** (MS-RDPELE 3.2.5.5, case 1): "If the license
//!   server cannot be contacted to upgrade the license, and the old license is still valid, the
//!   terminal server sends the Server Upgrade License … and returns the old license to the
//!   client." Due for upgrade means what the license server would upgrade: a per-device
//!   temporary CAL, or a permanent one within [`RENEWAL_WINDOW`] of its expiry, that serves the
//!   host. [`returns_old_license`]. A CAL that is not due is answered as above.
//!
//! [CAL]: https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license
//! [`LicenseRefusal::GracePeriodOver`]: crate::model::LicenseRefusal::GracePeriodOver

use std::time::{Duration, SystemTime};

use super::per_device::RENEWAL_WINDOW;
use super::versions::serves;
use super::{days, expires_within, has_expired, later};
use crate::model::{HostInfo, LicenseRefusal, LicensingMode, PresentedCal, RequestOutcome};

/// How long a session host runs without a license server.
pub const GRACE_PERIOD: Duration = days(120);

/// Where a session host stands in its grace period.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GraceState {
    /// Clients are admitted without a license server until `ends_at`.
    Within { ends_at: SystemTime },
    /// The grace period ended at `ended_at`: a license server (or a valid CAL) is needed.
    Over { ended_at: SystemTime },
}

impl GraceState {
    /// The refusal a client without a valid CAL gets, once the period is over.
    pub fn refusal(&self) -> Option<LicenseRefusal> {
        match self {
            Self::Within { .. } => None,
            Self::Over { .. } => Some(LicenseRefusal::GracePeriodOver),
        }
    }
}

/// The grace period of a session host first used at `host_first_use`, at `now`.
pub fn grace_period(host_first_use: SystemTime, now: SystemTime) -> GraceState {
    let end = later(host_first_use, GRACE_PERIOD);
    if has_expired(end, now) {
        GraceState::Over { ended_at: end }
    } else {
        GraceState::Within { ends_at: end }
    }
}

/// What a session host with no license server answers a client: admitted during the grace
/// period (until its end); afterwards admitted only on a per-device CAL still valid for the
/// host, else refused.
pub fn admit_without_license_server(
    host: &HostInfo,
    host_first_use: SystemTime,
    now: SystemTime,
    presented: Option<&PresentedCal>,
) -> RequestOutcome {
    match grace_period(host_first_use, now) {
        GraceState::Within { ends_at } => RequestOutcome::Valid {
            expires_at: ends_at,
        },
        GraceState::Over { .. } => match presented {
            Some(cal) if opens_host(host, cal, now) => RequestOutcome::Valid {
                expires_at: cal.not_after,
            },
            _ => RequestOutcome::Refused {
                reason: LicenseRefusal::GracePeriodOver,
            },
        },
    }
}

/// Whether a host without a license server answers `presented` with an Upgrade License
/// returning the same CAL (MS-RDPELE 3.2.5.5 case 1): a per-device CAL still valid for the host
/// that a license server would upgrade (temporary) or renew (within [`RENEWAL_WINDOW`]).
pub fn returns_old_license(host: &HostInfo, presented: &PresentedCal, now: SystemTime) -> bool {
    opens_host(host, presented, now)
        && (presented.temporary || expires_within(presented.not_after, now, RENEWAL_WINDOW))
}

/// Whether `cal` lets its device into `host` at `now` with no license server to ask: a
/// per-device CAL, on a per-device host, of a version that serves it, not yet expired.
fn opens_host(host: &HostInfo, cal: &PresentedCal, now: SystemTime) -> bool {
    host.mode == LicensingMode::PerDevice
        && cal.license_type == LicensingMode::PerDevice
        && serves(cal.product_version, host.version)
        && !has_expired(cal.not_after, now)
}

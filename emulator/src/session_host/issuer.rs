//! Where the session host's licensing decisions come from: the license server embedded over
//! the same data directory, or a remote one over HTTP; and what the host does when it has none
//! (MS-RDPELE leaves that to the host; Windows admits clients for a 120-day grace period and
//! then only on a still-valid CAL, see [`admit_without_license_server`]). Every decision is
//! logged here, once, with the client, its HWID, the outcome and the CAL's expiry.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rdpele_proto::cal::{parse_cal, Cal, CalKind};
use rdpele_proto::machine::{
    Assessment, ClientInfo, Decision, LicenseIssuer, PresentedLicense, Refusal,
};
use tracing::{info, warn};

use rdpele_license_server::clock::{format_instant, Clock, ClockError};
use rdpele_license_server::model::{HostInfo, RequestOutcome};
use rdpele_license_server::policy::admit_without_license_server;
use rdpele_license_server::remote::RemoteIssuer;
use rdpele_license_server::server::{presented_cal, refusal, unavailable, LicenseServer};
use rdpele_license_server::store::{Store, StoreError};

/// The license server behind a host.
pub enum Source {
    Embedded(Box<Mutex<LicenseServer>>),
    /// `rdpele license-server`; its clones share one connection pool.
    Remote(RemoteIssuer),
}

/// What every connection's licensing shares.
pub struct Backend {
    pub source: Source,
    /// The host's own data directory: its settings, virtual clock and grace period.
    pub local: Mutex<Store>,
    pub clock: Clock,
    /// Fault injection: act as if the license server could not be reached.
    pub unreachable: bool,
}

impl Backend {
    /// The host's virtual now.
    pub fn now(&self) -> Result<SystemTime, ClockError> {
        let store = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        self.clock.now(&store)
    }

    /// The host's settings as they are now (an `admin server set` while serving applies to the
    /// next connection).
    pub fn host(&self) -> Result<HostInfo, StoreError> {
        let store = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        store.session_host().map(|host| host.info())
    }
}

/// One connection's view of the backend: the [`LicenseIssuer`] its server machine asks.
pub struct HostIssuer {
    backend: Arc<Backend>,
    host: HostInfo,
    /// For the log: who the connection says it is.
    peer: String,
}

impl HostIssuer {
    pub fn new(backend: Arc<Backend>, host: HostInfo, peer: String) -> Self {
        Self {
            backend,
            host,
            peer,
        }
    }

    /// Without a license server: the grace-period rules, counted from the host's first use.
    fn without_license_server(
        &self,
        now: SystemTime,
        presented: Option<&PresentedLicense>,
    ) -> Result<RequestOutcome, StoreError> {
        let store = self
            .backend
            .local
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let first_use = store.record_host_first_use(now)?;
        let presented = presented.map(|p| presented_cal(&p.cal));
        Ok(admit_without_license_server(
            &self.host,
            first_use,
            now,
            presented.as_ref(),
        ))
    }

    /// The grace-period answer, as a [`Decision`].
    fn fallback_decision(
        &self,
        now: SystemTime,
        presented: Option<&PresentedLicense>,
        why: &str,
    ) -> Decision {
        warn!(peer = %self.peer, "no license server ({why}): applying the grace-period rules");
        match self.without_license_server(now, presented) {
            Ok(RequestOutcome::Refused { reason }) => Decision::Refuse(refusal(reason)),
            Ok(_) => Decision::Valid,
            Err(error) => {
                warn!(peer = %self.peer, %error, "session host store unavailable");
                Decision::Refuse(unavailable())
            }
        }
    }

    /// Asks the license server, or falls back to the grace-period rules when there is none
    /// (a fault injected, or the remote one not answering).
    fn ask<T>(
        &mut self,
        now: SystemTime,
        presented: Option<&PresentedLicense>,
        ask: impl FnOnce(&mut dyn LicenseIssuer) -> T,
        fallback: impl FnOnce(Decision) -> T,
    ) -> T {
        if self.backend.unreachable {
            return fallback(self.fallback_decision(now, presented, "fault injected"));
        }
        match &self.backend.source {
            Source::Embedded(server) => {
                let mut server = server.lock().unwrap_or_else(PoisonError::into_inner);
                server.set_host(self.host);
                ask(&mut *server)
            }
            Source::Remote(remote) => {
                let mut remote = remote.for_host(self.host);
                let answer = ask(&mut remote);
                match remote.take_failure() {
                    None => answer,
                    Some(why) => fallback(self.fallback_decision(now, presented, &why)),
                }
            }
        }
    }

    fn log(
        &self,
        client: &str,
        user: &str,
        hwid: &str,
        decision: &Decision,
        presented: Option<&Cal>,
    ) {
        match decision {
            Decision::Issue(cal) => match parse_cal(cal) {
                Ok(parsed) => {
                    let outcome = match (parsed.kind, presented.map(|cal| cal.kind)) {
                        (CalKind::Temporary, _) => "temporary",
                        (CalKind::Permanent, Some(CalKind::Permanent)) => "renewed",
                        (CalKind::Permanent, _) => "permanent",
                    };
                    let expires = format_instant(parsed.client_license.not_after)
                        .unwrap_or_else(|| "?".to_owned());
                    info!(peer = %self.peer, client, user, hwid, outcome, expires = %expires, "licensing decision");
                }
                Err(error) => {
                    warn!(peer = %self.peer, client, hwid, %error, "the license server issued a CAL we cannot parse");
                }
            },
            Decision::Valid => {
                // Valid as presented: the presented CAL's expiry; admitted without one: none.
                let expires = presented
                    .and_then(|cal| format_instant(cal.client_license.not_after))
                    .unwrap_or_else(|| "none".to_owned());
                info!(peer = %self.peer, client, user, hwid, outcome = "valid", expires = %expires, "licensing decision");
            }
            Decision::Refuse(Refusal {
                error_code,
                state_transition,
            }) => {
                info!(peer = %self.peer, client, user, hwid, outcome = "refused", error = %error_code, transition = %state_transition, "licensing decision");
            }
        }
    }
}

impl LicenseIssuer for HostIssuer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision {
        let decision = self.ask(
            now,
            None,
            |issuer| issuer.new_license(now, client),
            |fallback| fallback,
        );
        let hwid = hex::encode(client.hwid.to_bytes());
        self.log(
            &client.machine_name,
            &client.user_name,
            &hwid,
            &decision,
            None,
        );
        decision
    }

    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment {
        let assessment = self.ask(
            now,
            Some(presented),
            |issuer| issuer.assess_license(now, presented),
            |fallback| match fallback {
                Decision::Refuse(refusal) => Assessment::Refuse(refusal),
                Decision::Valid | Decision::Issue(_) => Assessment::Valid,
            },
        );
        // An upgrade is logged once decided; a verdict now is the decision.
        let decision = match &assessment {
            Assessment::Upgrade => return assessment,
            Assessment::Valid => Decision::Valid,
            Assessment::Refuse(refusal) => Decision::Refuse(*refusal),
        };
        let client = &presented.cal.client_license;
        let hwid = hex::encode(presented.hwid.to_bytes());
        self.log(
            &client.machine,
            &client.user,
            &hwid,
            &decision,
            Some(&presented.cal),
        );
        assessment
    }

    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision {
        let decision = self.ask(
            now,
            Some(presented),
            |issuer| issuer.upgrade_license(now, presented),
            |fallback| fallback,
        );
        let client = &presented.cal.client_license;
        let hwid = hex::encode(presented.hwid.to_bytes());
        self.log(
            &client.machine,
            &client.user,
            &hwid,
            &decision,
            Some(&presented.cal),
        );
        decision
    }
}

//! Where the session host's licensing decisions come from: the license server embedded over
//! the same data directory, or a remote one over HTTP; and what the host does when it has none
//! (MS-RDPELE leaves that to the host; Windows admits clients for a 120-day grace period and
//! then only on a still-valid CAL, see [`admit_without_license_server`]). Every decision is
//! logged here, once, with the client, its HWID, the outcome and the CAL's expiry. A session
//! licensed with a temporary CAL that becomes active is reported here too
//! ([`Backend::validate`]): the sign-in that lets the license server upgrade that CAL.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rdpele_proto::cal::{parse_cal, Cal, CalError, CalKind};
use rdpele_proto::machine::{
    Assessment, Decision, LicenseAnswer, LicenseQuery, PresentedLicense, Refusal,
};
use tracing::{info, warn};

use rdpele_license_server::clock::{format_instant, Clock, ClockError};
use rdpele_license_server::decider::{Decider, Reply};
use rdpele_license_server::model::{HostInfo, RequestOutcome};
use rdpele_license_server::policy::{admit_without_license_server, returns_old_license};
use rdpele_license_server::remote::RemoteIssuer;
use rdpele_license_server::server::{
    assess_presented, presented_cal, refusal, unavailable, unavailable_answer, DecidedQuery,
};
use rdpele_license_server::store::{Store, StoreError};

/// The license server behind a host.
pub enum Source {
    /// The license server on its deciding thread: decisions queued while one commits are
    /// committed together; each CAL is signed by the connection that gets it while the
    /// commit is under way, and sent once it is done.
    Embedded(Decider),
    /// `rdpele license-server`; its clones share one connection pool.
    Remote(Box<RemoteIssuer>),
}

/// What every connection's licensing shares. The host's own store is read and written on the
/// blocking pool, except the reads on a handle that never waits ([`HostReads`]): a query can
/// wait up to the store's busy timeout for another process's write lock, and a runtime thread
/// waiting for it (or for a mutex held across it) stalls every other connection.
pub struct Backend {
    pub source: Source,
    /// The host's settings, read at each connection, and assessments of presented CALs.
    pub reads: HostReads,
    /// The same directory for the rules without a license server: the virtual clock and the
    /// grace period's first use, whose recording waits for the write lock while another
    /// holds it.
    pub grace_period: Mutex<Store>,
    pub clock: Clock,
    /// Whether the host's first use (the start of its grace period) is in the store, so
    /// connections after it need not look.
    pub first_use_recorded: AtomicBool,
    /// Fault injection: act as if the license server could not be reached.
    pub unreachable: bool,
}

/// Why the host's settings could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostSettingsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the task reading them failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Each connection's read of the host's settings, on handles of their own so it never queues
/// behind the grace period's write on [`Backend::grace_period`] (in WAL mode SQLite reads
/// while another connection or process holds the write lock); and the assessment of a CAL a
/// client presents, which reads only.
pub struct HostReads {
    /// Read on the connection's own task: it never waits for a lock (SQLITE_BUSY at once), and
    /// the settings' pages are in memory. Handing every read to the blocking pool cost ~6 % of
    /// the CPU of `serve_handshake/valid/16` in spawns and wake-ups (BENCHMARKS.md).
    now: Mutex<Store>,
    /// For when that handle is in use by another connection or SQLite says busy: read on the
    /// blocking pool, where it may wait up to the busy timeout.
    waiting: Arc<Mutex<Store>>,
    /// The embedded license server's clock, for assessments.
    clock: Clock,
    /// Fault injection: the embedded license server's packs are all taken (the server holds
    /// its own copy of the flag; this one is for assessments read here).
    pool_exhausted: bool,
}

impl HostReads {
    /// Two handles on the host's data directory, whose license server keeps time with `clock`.
    pub fn open(
        data: &std::path::Path,
        clock: Clock,
        pool_exhausted: bool,
    ) -> Result<Self, StoreError> {
        Ok(Self {
            now: Mutex::new(Store::open(data)?.without_waiting()?),
            waiting: Arc::new(Mutex::new(Store::open(data)?)),
            clock,
            pool_exhausted,
        })
    }

    /// The host's settings as they are now (an `admin server set` while serving applies to the
    /// next connection).
    pub async fn settings(&self) -> Result<HostInfo, HostSettingsError> {
        if let Ok(store) = self.now.try_lock() {
            match store.session_host() {
                Ok(host) => return Ok(host.info()),
                Err(error) if error.is_busy() => {}
                Err(error) => return Err(error.into()),
            }
        }
        let waiting = Arc::clone(&self.waiting);
        let host = tokio::task::spawn_blocking(move || {
            let store = waiting.lock().unwrap_or_else(PoisonError::into_inner);
            store.session_host().map(|host| host.info())
        })
        .await??;
        Ok(host)
    }

    /// The embedded license server's assessment of `presented` for `host`'s client (see
    /// [`assess_presented`]), read on the connection's task on the handle that never waits.
    /// `None` when that handle is in use, SQLite says busy or the read fails: the caller asks
    /// the license server's thread, which decides in queue order and reports its own errors.
    /// Answered here, a client with a valid CAL neither waits for a batch of decisions stuck
    /// behind another process's write lock nor costs the thread hand-offs (BENCHMARKS.md).
    /// It reads what is committed, so the caller leaves to that thread what depends on work
    /// still in its queue.
    pub fn assess(&self, host: HostInfo, presented: &PresentedLicense) -> Option<Assessment> {
        let store = self.now.try_lock().ok()?;
        let now = self.clock.now(&store).ok()?;
        assess_presented(&store, now, host, presented, self.pool_exhausted).ok()
    }
}

impl Backend {
    /// Records the host's first use at the virtual now unless it is recorded already: the
    /// grace period runs from the host's first client, whether or not a license server
    /// answered it, so an outage after day 120 finds it over. A failure is logged and tried
    /// again at the next licensed connection.
    pub async fn record_first_use(self: &Arc<Self>) {
        if self.first_use_recorded.load(Ordering::Acquire) {
            return;
        }
        let backend = Arc::clone(self);
        let recorded = tokio::task::spawn_blocking(move || backend.now_and_first_use()).await;
        match recorded {
            Ok(Ok((_, first_use))) => {
                info!(
                    first_use = format_instant(first_use).unwrap_or_default(),
                    "the session host's first use (the grace period's start)"
                );
            }
            Ok(Err(error)) => warn!(%error, "could not record the session host's first use"),
            Err(error) => warn!(%error, "the task recording the session host's first use failed"),
        }
    }

    /// Reports that a sign-in completed with `temporary` (the session reached the active
    /// state) to the license server, which marks it validated. The embedded license server
    /// takes the report in its queue, in order with the decisions, and the connection does not
    /// wait for it (the reports queued together are one transaction); a remote one is asked
    /// on this task. A failure is logged, not retried: the CAL stays unvalidated until a
    /// later session with it becomes active.
    pub async fn validate(&self, temporary: &TemporaryCal, peer: &str) {
        let TemporaryCal {
            license_id,
            hardware_id,
        } = *temporary;
        let report = move |recorded: Result<bool, String>, peer: &str| match recorded {
            Ok(validated) => {
                info!(
                    peer,
                    license_id, validated, "sign-in with a temporary CAL reported"
                );
            }
            Err(error) => {
                warn!(peer, license_id, %error, "could not report the sign-in: the temporary CAL stays unvalidated");
            }
        };
        if self.unreachable {
            return report(Err("fault injected: no license server".to_owned()), peer);
        }
        match &self.source {
            Source::Embedded(decider) => {
                let peer = peer.to_owned();
                decider.validate(
                    license_id,
                    hardware_id,
                    Box::new(move |recorded| report(recorded, &peer)),
                );
            }
            Source::Remote(remote) => {
                let recorded = remote
                    .validate_license(license_id, &hardware_id)
                    .await
                    .map_err(|error| error.to_string());
                report(recorded, peer);
            }
        }
    }

    /// The host's virtual now and its first use, recorded as now if there is none yet. Blocking:
    /// the grace-period store is held across a write that may wait for another process's write
    /// lock; only other callers wait for it, on the blocking pool too, and they need the first
    /// use recorded as well.
    fn now_and_first_use(&self) -> Result<(SystemTime, SystemTime), ClockError> {
        let store = self
            .grace_period
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now(&store)?;
        let first_use = store.record_host_first_use(now)?;
        self.first_use_recorded.store(true, Ordering::Release);
        Ok((now, first_use))
    }
}

/// A temporary CAL a client was admitted with: validated once its session is active.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemporaryCal {
    /// The license it records (its serial number's license id).
    pub license_id: u32,
    pub hardware_id: [u8; 20],
}

impl TemporaryCal {
    fn of(cal: &Cal) -> Option<Self> {
        if cal.kind != CalKind::Temporary {
            return None;
        }
        Some(Self {
            license_id: cal.client_license.serial()?.license_id,
            hardware_id: cal.client_license.hwid.to_bytes(),
        })
    }

    /// The temporary CAL `query` presents, if any.
    fn presented(query: &LicenseQuery) -> Option<Self> {
        match query {
            LicenseQuery::AssessLicense(presented) | LicenseQuery::UpgradeLicense(presented) => {
                Self::of(&presented.cal)
            }
            _ => None,
        }
    }
}

/// A decision as it is logged, borrowing what the answer holds.
enum Logged<'a> {
    Issued {
        cal: &'a [u8],
        parsed: &'a Result<Cal, CalError>,
    },
    Valid,
    Refused(Refusal),
}

/// One connection's view of the backend: it answers the server machine's queries.
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

    /// Answers `query` and logs the decision. The embedded license server decides on its own
    /// thread, in batches (group commit), at its own virtual now, and the CAL is signed on the
    /// blocking pool while the batch commits; a permanent CAL a client presents is assessed on
    /// this task when the store allows ([`HostReads::assess`]); a remote license server is
    /// asked on this task. When the license server cannot be reached, the grace-period rules
    /// decide; when a remote one turns the host away (a wrong token, a URL that is not the
    /// API), the client is refused with ERR_NO_LICENSE_SERVER.
    ///
    /// Also returns the temporary CAL the client holds after this answer, if any (a temporary
    /// CAL issued to it, or the one it presented when that is admitted as it is): the one its
    /// session validates once active. An issued CAL is parsed once, for both.
    pub async fn answer(&self, query: LicenseQuery) -> (LicenseAnswer, Option<TemporaryCal>) {
        let presented = TemporaryCal::presented(&query);
        let answer = self.ask(&query).await;
        let issued = match &answer {
            LicenseAnswer::Decision(Decision::Issue(cal)) => Some(parse_cal(cal)),
            _ => None,
        };
        self.log(&query, &answer, issued.as_ref());
        let temporary = match (&answer, issued) {
            (_, Some(Ok(cal))) => TemporaryCal::of(&cal),
            (
                LicenseAnswer::Decision(Decision::Valid)
                | LicenseAnswer::Assessment(Assessment::Valid),
                _,
            ) => presented,
            _ => None,
        };
        (answer, temporary)
    }

    async fn ask(&self, query: &LicenseQuery) -> LicenseAnswer {
        if self.backend.unreachable {
            return self.fallback(query, "fault injected").await;
        }
        match &self.backend.source {
            Source::Embedded(decider) => {
                // Only a permanent CAL: a temporary one's assessment depends on whether its
                // sign-in was recorded, and that report waits in the license server's queue
                // (Backend::validate), which answers in order.
                if let LicenseQuery::AssessLicense(presented) = query {
                    if presented.cal.kind == CalKind::Permanent {
                        if let Some(assessed) = self.backend.reads.assess(self.host, presented) {
                            return LicenseAnswer::Assessment(assessed);
                        }
                    }
                }
                let (decided_tx, decided) = tokio::sync::oneshot::channel();
                let (committed_tx, committed) = tokio::sync::oneshot::channel();
                decider.submit(
                    self.host,
                    query.clone(),
                    Reply {
                        decided: Box::new(move |decided| {
                            let _ = decided_tx.send(decided);
                        }),
                        committed: Box::new(move |committed| {
                            let _ = committed_tx.send(committed);
                        }),
                    },
                );
                let answer = match decided.await {
                    Ok(DecidedQuery::Answered(answer)) => answer,
                    // The CAL is signed here, beside other connections' signatures, while the
                    // store's commit waits for the disk.
                    Ok(decided) => tokio::task::spawn_blocking(move || decided.finish())
                        .await
                        .unwrap_or_else(|error| {
                            warn!(peer = %self.peer, %error, "signing task failed");
                            unavailable_answer(query)
                        }),
                    Err(_) => {
                        warn!(peer = %self.peer, "license server gone");
                        return unavailable_answer(query);
                    }
                };
                // Nothing reaches the client before the decision is durable.
                match committed.await {
                    Ok(true) => answer,
                    Ok(false) | Err(_) => unavailable_answer(query),
                }
            }
            Source::Remote(remote) => match remote.for_host(self.host).ask(query).await {
                Ok(answer) => answer,
                Err(error) if error.is_unreachable() => {
                    self.fallback(query, &error.to_string()).await
                }
                // Reached, and turned away or not understood: a misconfigured host refuses
                // rather than admitting everyone through the grace period.
                Err(error) => {
                    warn!(
                        peer = %self.peer,
                        %error,
                        "the license server refused the host or is not one (check --license-server \
                         and the token): refusing with ERR_NO_LICENSE_SERVER"
                    );
                    unavailable_answer(query)
                }
            },
        }
    }

    /// Without a license server: the grace-period rules at the host's virtual now, counted from
    /// its first use (the host's own store, off the runtime's threads). A still-valid CAL due
    /// for upgrade is challenged and then sent back in an Upgrade License (MS-RDPELE 3.2.5.5
    /// case 1, [`returns_old_license`]).
    async fn fallback(&self, query: &LicenseQuery, why: &str) -> LicenseAnswer {
        warn!(peer = %self.peer, "no license server ({why}): applying the grace-period rules");
        let presented = match query {
            LicenseQuery::AssessLicense(presented) | LicenseQuery::UpgradeLicense(presented) => {
                Some(presented_cal(&presented.cal))
            }
            _ => None,
        };
        let backend = Arc::clone(&self.backend);
        let host = self.host;
        let outcome = tokio::task::spawn_blocking(move || {
            let (now, first_use) = backend.now_and_first_use()?;
            let old_license = presented
                .as_ref()
                .is_some_and(|cal| returns_old_license(&host, cal, now));
            let outcome = admit_without_license_server(&host, first_use, now, presented.as_ref());
            Ok::<_, ClockError>((outcome, old_license))
        })
        .await;
        let decision = match outcome {
            Ok(Ok((RequestOutcome::Refused { reason }, _))) => Decision::Refuse(refusal(reason)),
            Ok(Ok((_, true))) => match query {
                LicenseQuery::AssessLicense(_) => {
                    return LicenseAnswer::Assessment(Assessment::Upgrade)
                }
                LicenseQuery::UpgradeLicense(presented) => {
                    Decision::Issue(presented.license_info.clone())
                }
                _ => Decision::Valid,
            },
            Ok(Ok(_)) => Decision::Valid,
            Ok(Err(error)) => {
                warn!(peer = %self.peer, %error, "session host store unavailable");
                Decision::Refuse(unavailable())
            }
            Err(error) => {
                warn!(peer = %self.peer, %error, "session host store task failed");
                Decision::Refuse(unavailable())
            }
        };
        as_answer(query, decision)
    }

    /// One `licensing decision` line per decision; an upgrade assessment is logged once the
    /// upgrade is decided.
    fn log(
        &self,
        query: &LicenseQuery,
        answer: &LicenseAnswer,
        issued: Option<&Result<Cal, CalError>>,
    ) {
        let decision = match answer {
            LicenseAnswer::Decision(Decision::Issue(cal)) => match issued {
                Some(parsed) => Logged::Issued { cal, parsed },
                None => return,
            },
            LicenseAnswer::Decision(Decision::Valid)
            | LicenseAnswer::Assessment(Assessment::Valid) => Logged::Valid,
            LicenseAnswer::Decision(Decision::Refuse(refusal))
            | LicenseAnswer::Assessment(Assessment::Refuse(refusal)) => Logged::Refused(*refusal),
            LicenseAnswer::Assessment(Assessment::Upgrade) => return,
        };
        match query {
            LicenseQuery::NewLicense(client) => {
                let hwid = hex::encode(client.hwid.to_bytes());
                self.log_decision(
                    &client.machine_name,
                    &client.user_name,
                    &hwid,
                    &decision,
                    None,
                );
            }
            LicenseQuery::AssessLicense(presented) | LicenseQuery::UpgradeLicense(presented) => {
                let client = &presented.cal.client_license;
                let hwid = hex::encode(presented.hwid.to_bytes());
                if matches!(decision, Logged::Issued { cal, .. } if *cal == presented.license_info)
                {
                    let expires = format_instant(client.not_after).unwrap_or_default();
                    info!(peer = %self.peer, client = %client.machine, user = %client.user, hwid, outcome = "returned", expires = %expires, "licensing decision");
                    return;
                }
                self.log_decision(
                    &client.machine,
                    &client.user,
                    &hwid,
                    &decision,
                    Some(&presented.cal),
                );
            }
            _ => {}
        }
    }

    fn log_decision(
        &self,
        client: &str,
        user: &str,
        hwid: &str,
        decision: &Logged<'_>,
        presented: Option<&Cal>,
    ) {
        match decision {
            Logged::Issued { parsed, .. } => match parsed {
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
            Logged::Valid => {
                // Valid as presented: the presented CAL's expiry; admitted without one: none.
                let expires = presented
                    .and_then(|cal| format_instant(cal.client_license.not_after))
                    .unwrap_or_else(|| "none".to_owned());
                info!(peer = %self.peer, client, user, hwid, outcome = "valid", expires = %expires, "licensing decision");
            }
            Logged::Refused(Refusal {
                error_code,
                state_transition,
            }) => {
                info!(peer = %self.peer, client, user, hwid, outcome = "refused", error = %error_code, transition = %state_transition, "licensing decision");
            }
        }
    }
}

/// `decision` as the answer `query` asks for: an assessment refuses or admits.
fn as_answer(query: &LicenseQuery, decision: Decision) -> LicenseAnswer {
    match query {
        LicenseQuery::AssessLicense(_) => LicenseAnswer::Assessment(match decision {
            Decision::Refuse(refusal) => Assessment::Refuse(refusal),
            Decision::Valid | Decision::Issue(_) => Assessment::Valid,
        }),
        _ => LicenseAnswer::Decision(decision),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use rdpele_license_server::model::{LicensingMode, WindowsVersion};

    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap()
    }

    /// Read on the task or, while another connection holds the task's handle, on the blocking
    /// pool: either way what `admin server set` wrote last.
    #[test]
    fn the_settings_read_sees_each_change_on_either_handle() {
        let dir = tempfile::tempdir().unwrap();
        let admin = Store::open(dir.path()).unwrap();
        let set = |mode, version| {
            admin.set_session_host(mode, version).unwrap();
            HostInfo { version, mode }
        };
        let first = set(LicensingMode::PerDevice, WindowsVersion::V2019);
        let reads = HostReads::open(dir.path(), Clock::system(), false).unwrap();
        let runtime = runtime();
        let read = || runtime.block_on(reads.settings()).unwrap();
        assert_eq!(read(), first);

        let inline = set(LicensingMode::PerUser, WindowsVersion::V2022);
        assert_eq!(read(), inline);

        let held = reads.now.lock().unwrap();
        let pooled = set(LicensingMode::PerDevice, WindowsVersion::V2025);
        assert_eq!(read(), pooled);
        drop(held);
    }
}

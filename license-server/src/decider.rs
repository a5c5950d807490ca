//! Group commit for the protocol's license decisions. Every decision is a store transaction
//! ending in an fsync (`synchronous = FULL`: a CAL a client holds is never missing from the
//! store after a crash); one transaction per decision makes the fsync the pace of every
//! client. The [`Decider`] owns the license server on a thread of its own and decides what
//! has queued up while the previous transaction committed together, in one transaction
//! ([`LicenseServer::decide_queries_then`]): one fsync for the batch, each decision still made
//! as if after the ones before it. Answers go back unsigned ([`DecidedQuery`]) before the
//! transaction commits, so the caller signs the CAL while the commit waits for the disk, outside
//! anything other decisions wait for; the caller hands it to the client only once told the
//! transaction committed. Session hosts' reports that a sign-in validated a temporary CAL
//! ([`Decider::validate`]) queue on the same thread, in order with the decisions, and the
//! reports that queue up together are recorded in one transaction too.

use std::sync::mpsc;

use rdpele_proto::machine::LicenseQuery;

use crate::model::HostInfo;
use crate::server::{DecidedQuery, LicenseServer};

/// The most decisions one transaction takes: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 64;

/// Where a decision's answer goes, in two steps on the deciding thread: `decided` once it is
/// made, before its transaction commits (the answer must not reach the client yet); then
/// `committed`, true once the transaction is durable, false if it failed (the decision does
/// not hold, and the client gets what an unavailable license server gives). Each is called
/// exactly once, in that order.
pub struct Reply {
    pub decided: Box<dyn FnOnce(DecidedQuery) + Send>,
    pub committed: Box<dyn FnOnce(bool) + Send>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply").finish_non_exhaustive()
    }
}

struct Job {
    host: HostInfo,
    query: LicenseQuery,
    reply: Reply,
}

/// A session host's report that a sign-in completed with a temporary CAL
/// ([`LicenseServer::record_validation`]), answered with whether it validated the CAL.
struct Validation {
    license_id: u32,
    hardware_id: [u8; 20],
    reply: ValidationReply,
}

/// Where a validation's outcome goes, on the deciding thread, once its transaction committed
/// (or failed: why, as text).
pub type ValidationReply = Box<dyn FnOnce(Result<bool, String>) + Send>;

/// What the deciding thread is asked, in the order it was asked.
enum Work {
    Decide(Job),
    Validate(Validation),
}

/// The license server behind a queue of decisions, decided in batches on its own thread.
/// Clones share the queue; the thread ends when the last clone is gone.
#[derive(Clone, Debug)]
pub struct Decider {
    jobs: mpsc::Sender<Work>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("host", &self.host)
            .field("query", &self.query)
            .finish_non_exhaustive()
    }
}

impl Decider {
    /// Starts the deciding thread over `server`.
    pub fn spawn(server: LicenseServer) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Work>();
        std::thread::Builder::new()
            .name("rdpele-decider".to_owned())
            .spawn(move || run(server, &queue))?;
        Ok(Self { jobs })
    }

    /// Queues `query` for a session host `host`; `reply` gets the answer on the deciding
    /// thread. If the thread is gone, `reply` is dropped uncalled: a caller waiting on a
    /// channel sees it closed.
    pub fn submit(&self, host: HostInfo, query: LicenseQuery, reply: Reply) {
        let _ = self.jobs.send(Work::Decide(Job { host, query, reply }));
    }

    /// Queues the report that a sign-in completed with temporary CAL `license_id` of the
    /// device `hardware_id`. Work is done in the order it is queued, so a decision queued after
    /// this report sees the CAL validated. If the thread is gone, `reply` is dropped uncalled.
    pub fn validate(&self, license_id: u32, hardware_id: [u8; 20], reply: ValidationReply) {
        let _ = self.jobs.send(Work::Validate(Validation {
            license_id,
            hardware_id,
            reply,
        }));
    }
}

fn run(mut server: LicenseServer, queue: &mpsc::Receiver<Work>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        // Runs of the same kind, in queue order: each run of decisions is one transaction, and
        // so is each run of validations.
        let mut decisions = Vec::new();
        let mut validations = Vec::new();
        for work in batch {
            match work {
                Work::Decide(job) => {
                    if !validations.is_empty() {
                        validate(&server, std::mem::take(&mut validations));
                    }
                    decisions.push(job);
                }
                Work::Validate(validation) => {
                    if !decisions.is_empty() {
                        decide(&mut server, std::mem::take(&mut decisions));
                    }
                    validations.push(validation);
                }
            }
        }
        if !decisions.is_empty() {
            decide(&mut server, decisions);
        }
        if !validations.is_empty() {
            validate(&server, validations);
        }
    }
}

/// One transaction for `jobs`' decisions (group commit).
fn decide(server: &mut LicenseServer, jobs: Vec<Job>) {
    let mut queries = Vec::with_capacity(jobs.len());
    let mut decided = Vec::with_capacity(jobs.len());
    let mut committed = Vec::with_capacity(jobs.len());
    for job in jobs {
        queries.push((job.host, job.query));
        decided.push(job.reply.decided);
        committed.push(job.reply.committed);
    }
    let asked: Vec<(HostInfo, &LicenseQuery)> =
        queries.iter().map(|(host, query)| (*host, query)).collect();
    let mut decided = decided.into_iter();
    let outcome = match server.now() {
        Ok(now) => server
            .decide_queries_then(now, &asked, |answers| {
                for (reply, answer) in decided.by_ref().zip(answers) {
                    reply(answer);
                }
            })
            .map_err(|error| error.to_string()),
        Err(error) => Err(error.to_string()),
    };
    if let Err(error) = &outcome {
        tracing::warn!(%error, "license server store unavailable: no decision in this batch holds");
    }
    // A transaction that could not begin reached none of the replies; one that began
    // handed every answer out.
    for (reply, (_, query)) in decided.zip(&asked) {
        reply(DecidedQuery::unavailable(query));
    }
    for reply in committed {
        reply(outcome.is_ok());
    }
}

/// One transaction for `validations`.
fn validate(server: &LicenseServer, validations: Vec<Validation>) {
    let licenses: Vec<(u32, [u8; 20])> = validations
        .iter()
        .map(|validation| (validation.license_id, validation.hardware_id))
        .collect();
    match server.record_validations(&licenses) {
        Ok(validated) => {
            for (validation, validated) in validations.into_iter().zip(validated) {
                (validation.reply)(Ok(validated));
            }
        }
        Err(error) => {
            let error = error.to_string();
            for validation in validations {
                (validation.reply)(Err(error.clone()));
            }
        }
    }
}

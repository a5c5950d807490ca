//! Group commit for the protocol's license decisions. Every decision is a store transaction
//! ending in an fsync (`synchronous = FULL`: a CAL a client holds is never missing from the
//! store after a crash); one transaction per decision makes the fsync the pace of every
//! client. The [`Decider`] owns the license server on a thread of its own and decides what
//! has queued up while the previous transaction committed together, in one transaction
//! ([`LicenseServer::decide_queries`]): one fsync for the batch, each decision still made as if
//! after the ones before it. Answers go back unsigned ([`DecidedQuery`]); the caller signs the
//! CAL, outside anything other decisions wait for.

use std::sync::mpsc;

use rdpele_proto::machine::LicenseQuery;

use crate::model::HostInfo;
use crate::server::{DecidedQuery, LicenseServer};

/// The most decisions one transaction takes: bounds how long the first of a batch waits.
const MAX_BATCH: usize = 64;

/// Where a decision's answer goes.
pub type Reply = Box<dyn FnOnce(DecidedQuery) + Send>;

struct Job {
    host: HostInfo,
    query: LicenseQuery,
    reply: Reply,
}

/// The license server behind a queue of decisions, decided in batches on its own thread.
/// Clones share the queue; the thread ends when the last clone is gone.
#[derive(Clone, Debug)]
pub struct Decider {
    jobs: mpsc::Sender<Job>,
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
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("rdpele-decider".to_owned())
            .spawn(move || run(server, &queue))?;
        Ok(Self { jobs })
    }

    /// Queues `query` for a session host `host`; `reply` gets the answer on the deciding
    /// thread. If the thread is gone, `reply` is dropped unanswered: a caller waiting on a
    /// channel sees it closed.
    pub fn submit(&self, host: HostInfo, query: LicenseQuery, reply: Reply) {
        let _ = self.jobs.send(Job { host, query, reply });
    }
}

fn run(mut server: LicenseServer, queue: &mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        batch.extend(queue.try_iter().take(MAX_BATCH - 1));
        let queries: Vec<(HostInfo, &LicenseQuery)> =
            batch.iter().map(|job| (job.host, &job.query)).collect();
        let decided = match server.now() {
            Ok(now) => server.decide_queries(now, &queries),
            Err(error) => {
                tracing::warn!(%error, "license server clock unavailable");
                queries
                    .iter()
                    .map(|(_, query)| DecidedQuery::unavailable(query))
                    .collect()
            }
        };
        for (job, decided) in batch.into_iter().zip(decided) {
            (job.reply)(decided);
        }
    }
}

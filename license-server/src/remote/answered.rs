//! Decisions by request id: a session host that gave up waiting for a decision (its timeout)
//! asks again with the same `request_id` and gets the decision made the first time — the CAL
//! already recorded as issued — instead of a second decision, so no CAL is recorded for a
//! client that never got it while another one went out.
//!
//! An id is remembered from its first request until [`KEEP_FOR`] after it, at most
//! [`MAX_REMEMBERED`] of them (the oldest go first): long enough for a host's retry, bounded
//! whatever the callers send. A decision that failed (503) is forgotten at once: nothing was
//! recorded, so the retry decides anew.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;

/// How long an answered request id is remembered.
pub const KEEP_FOR: Duration = Duration::from_secs(120);
/// The most request ids remembered at once (a CAL is a few KiB of hex: ~10 MiB at most).
pub const MAX_REMEMBERED: usize = 1024;

/// A decision's outcome as the API sends it: the answer's JSON, or why there is none.
pub type Outcome = Result<Arc<Value>, String>;

/// Where a decision's outcome appears once made (`None` until then).
pub type Pending = watch::Receiver<Option<Outcome>>;

/// What to do with a request that carries an id.
#[derive(Debug)]
pub enum Claim {
    /// First seen: decide it, and send the outcome here (waiters subscribe to it).
    Decide(watch::Sender<Option<Outcome>>),
    /// Seen before with the same body: wait for (or take) the first request's outcome.
    Await(Pending),
    /// Seen before with another body: a caller bug, refused.
    Conflict,
}

#[derive(Debug)]
struct Entry {
    fingerprint: u64,
    since: Instant,
    outcome: Pending,
}

/// The request ids answered or being decided.
#[derive(Debug, Default)]
pub struct AnsweredRequests {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    entries: HashMap<String, Entry>,
    /// Ids in the order they were first seen, to forget the oldest first.
    order: VecDeque<(Instant, String)>,
}

impl AnsweredRequests {
    /// Claims `id` for a request whose body is `body`, at `now`.
    pub fn claim(&self, id: &str, body: &[u8], now: Instant) -> Claim {
        let fingerprint = fingerprint(body);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.forget_old(now);
        if let Some(entry) = state.entries.get(id) {
            return if entry.fingerprint == fingerprint {
                Claim::Await(entry.outcome.clone())
            } else {
                Claim::Conflict
            };
        }
        let (decide, outcome) = watch::channel(None);
        state.entries.insert(
            id.to_owned(),
            Entry {
                fingerprint,
                since: now,
                outcome,
            },
        );
        state.order.push_back((now, id.to_owned()));
        Claim::Decide(decide)
    }

    /// Forgets `id` (its decision failed: a retry must decide again).
    pub fn forget(&self, id: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.entries.remove(id);
    }

    #[cfg(test)]
    fn remembered(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entries
            .len()
    }
}

impl State {
    fn forget_old(&mut self, now: Instant) {
        while let Some((since, id)) = self.order.front() {
            let expired = now.saturating_duration_since(*since) >= KEEP_FOR;
            if !expired && self.order.len() < MAX_REMEMBERED {
                break;
            }
            // The entry under this id may be a newer one (forgotten, then claimed again).
            if self
                .entries
                .get(id)
                .is_some_and(|entry| entry.since == *since)
            {
                self.entries.remove(id);
            }
            self.order.pop_front();
        }
    }
}

fn fingerprint(body: &[u8]) -> u64 {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn a_second_claim_with_the_same_body_awaits_the_first_outcome() {
        let answered = AnsweredRequests::default();
        let now = Instant::now();
        let Claim::Decide(decide) = answered.claim("a", b"body", now) else {
            panic!("first claim decides");
        };
        let Claim::Await(outcome) = answered.claim("a", b"body", now) else {
            panic!("second claim awaits");
        };
        assert!(outcome.borrow().is_none());
        decide.send(Some(Ok(Arc::new(Value::from("cal"))))).unwrap();
        assert_eq!(
            outcome.borrow().clone().unwrap().unwrap().as_str(),
            Some("cal")
        );
        assert!(matches!(
            answered.claim("a", b"another body", now),
            Claim::Conflict
        ));
    }

    #[test]
    fn a_forgotten_id_is_decided_again() {
        let answered = AnsweredRequests::default();
        let now = Instant::now();
        assert!(matches!(answered.claim("a", b"b", now), Claim::Decide(_)));
        answered.forget("a");
        assert!(matches!(answered.claim("a", b"b", now), Claim::Decide(_)));
        // The first claim's place in the order does not evict the second.
        assert!(matches!(answered.claim("a", b"b", now), Claim::Await(_)));
    }

    #[test]
    fn ids_are_forgotten_after_a_while_and_beyond_the_bound() {
        let answered = AnsweredRequests::default();
        let start = Instant::now();
        for index in 0..MAX_REMEMBERED + 10 {
            let _ = answered.claim(&index.to_string(), b"b", start);
        }
        assert_eq!(answered.remembered(), MAX_REMEMBERED);
        assert!(matches!(answered.claim("0", b"b", start), Claim::Decide(_)));
        let _ = answered.claim("late", b"b", start + KEEP_FOR);
        assert_eq!(answered.remembered(), 1);
    }
}

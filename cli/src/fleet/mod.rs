//! `rdpele fleet`: many emulated clients against one session host over virtual days, to see
//! how a CAL pool behaves over months — which devices stay temporary, when renewals come, when
//! refusals start — with totals that reconcile with the license server's own report.
//!
//! Each device is an emulated client ([`rdpele_emulator::client`]) with its own license store in memory
//! and a hardware id derived from the seed ([`device`]); the schedule says who connects on
//! which day ([`schedule`]); the day loop connects them and moves the server's virtual clock
//! through its data directory ([`run`](mod@run)); [`held`] counts CALs the way the license server does,
//! and [`summary`] and [`plot`] show the result.
//!
//! Devices go on to an active session after licensing ([`rdpele_emulator::client::connect`]):
//! the session host validates a temporary CAL when the session becomes active, and only a
//! validated one is upgraded, so a fleet that left after licensing would never see a permanent
//! CAL. `--licensing-only` ([`rdpele_emulator::client::connect_through_licensing`]) is faster
//! and shows exactly that.

pub mod device;
pub mod held;
pub mod outcome;
pub mod plot;
pub mod run;
pub mod schedule;
pub mod summary;

pub use run::{run, FleetError, FleetOptions, Progress};

/// The largest fleet: each device keeps its CAL (about 2 KB) in memory.
pub const MAX_DEVICES: u32 = 100_000;
/// The longest run, in virtual days: ten years.
pub const MAX_DAYS: u32 = 3_650;

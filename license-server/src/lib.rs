//! The emulated RD License Server: the Windows CAL rules ([`policy`]) over a durable store,
//! on a virtual clock.

pub mod clock;
pub mod decider;
pub mod decision;
pub mod model;
pub mod policy;
pub mod pool_over_time;
pub mod private_files;
#[cfg(any(feature = "http-server", feature = "http-client"))]
pub mod remote;
pub mod server;
pub mod store;
pub mod token;

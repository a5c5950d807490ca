//! The license server's integration tests, in one binary so a change links the crate once.

// Test code: unwrap/expect/panic/indexing are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod license_server;
mod policy;
mod remote_limits;
mod simulation;
mod store;
mod store_crash;

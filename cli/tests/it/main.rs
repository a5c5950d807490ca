//! rdpele's integration tests, in one binary so a change links the crates once: the `rdpele`
//! command (decode, cal, keys, admin, demo, fleet, client), the session host and the emulated
//! client in-process, and the interop tests against real peers (xfreerdp, IronRDP, xrdp), which
//! fail rather than skip when a peer is missing.

// Test code: unwrap/expect/panic/indexing are fine here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod support;

mod admin;
mod cal;
mod capture_rdp_security;
mod captures;
mod client_cli;
mod decode;
mod decrypt;
mod demo;
mod emulated_client;
mod fail_closed;
mod fleet;
mod hostile_client;
mod interop_aardwolf;
mod interop_ironrdp;
mod interop_rdesktop;
mod interop_xfreerdp;
mod interop_xfreerdp_faults;
mod keys;
mod locked_store;
mod operator_input;
mod private_files;
mod remote_https;
mod remote_license_server;

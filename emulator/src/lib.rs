//! rdpele-emulator: the `rdpele` command's machinery — looking inside captures, and the emulated
//! license server — as a library, so tests and benchmarks reach it directly.

pub mod cli;
pub mod client;
pub mod fleet;
pub mod framed;
pub mod inspect;
pub mod license_server;
pub mod session_host;

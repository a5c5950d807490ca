//! rdpele: the command line ([`command`]) and what only it needs: capture inspection
//! ([`inspect`]) and fleets of emulated clients over virtual days ([`fleet`]).

pub mod command;
pub mod fleet;
pub mod inspect;
pub mod plot;

//! rdpele-emulator: the emulated RD Session Host ([`session_host`], `rdpele serve`) and the
//! emulated RDP client ([`client`], `rdpele client`), both moving licensing PDUs through one
//! [`transport`] and leaving every licensing decision to rdpele-proto's state machines and the
//! license server of rdpele-license-server.

pub mod client;
pub mod session_host;
pub mod transport;

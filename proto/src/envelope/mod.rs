//! The framing around licensing PDUs, enough to pull licensing messages out of a raw RDP byte
//! stream and to wrap them back, byte for byte: TPKT (T.123), X.224 class 0, MCS Send Data
//! (T.125, PER), the security headers ([MS-RDPBCGR] 2.2.8.1.1.2) and fast-path framing.
//! [`LicensingFrame`] is a whole licensing PDU on the wire ([MS-RDPELE] 2.2.2),
//! [`LicensingFrame::payload`] finds one in a frame without parsing it, and [`walk`] goes
//! through a captured stream PDU by PDU. [`SetErrorInfoPdu`] is how a server says why it ends
//! the session, a licensing refusal included.
//!
//! [MS-RDPELE]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpele/3d3f160a-3ab3-4dfb-ba4e-47c27cd79409
//! [MS-RDPBCGR]: https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-rdpbcgr/c330f4c8-896f-4d41-983c-aec97fbdbb90

mod fast_path;
mod licensing_frame;
mod mcs;
mod rdp_security_layer;
mod secured_licensing_pdu;
mod security_exchange;
mod security_header;
mod server_security_data;
mod set_error_info;
mod stream;
mod tpkt;
mod x224;

pub use fast_path::FastPathPdu;
pub use licensing_frame::{LicensingFrame, LicensingPayload};
pub use mcs::{ConnectPdu, DomainMcsPdu, McsPduType, McsSendData, SendDataDirection};
pub use rdp_security_layer::{Opened, RdpSecurityLayer, SecurityLayerError};
pub use secured_licensing_pdu::SecuredLicensingPdu;
pub use security_exchange::SecurityExchangePdu;
pub use security_header::{
    AnySecurityHeader, FipsSecurityHeader, NonFipsSecurityHeader, SecurityFlags, SecurityHeader,
    SecurityHeaderKind,
};
pub use server_security_data::ServerSecurityData;
pub use set_error_info::{ErrorInfo, SetErrorInfoPdu};
pub use stream::{walk, StreamItem, StreamPdu, Walk};
pub use tpkt::Tpkt;
pub use x224::{TpduCode, X224Data};

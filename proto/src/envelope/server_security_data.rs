//! The Server Security Data (MS-RDPBCGR 2.2.1.4.3) as a capture shows it: found in a server's
//! byte stream, for what Standard RDP Security's keys need from it (the method and the server
//! random). The GCC blocks around it are not parsed: the block is found by its header.

use super::mcs::{ConnectPdu, McsPduType};
use super::stream::{walk, StreamPdu};
use crate::crypto::{EncryptionMethod, SERVER_RANDOM_LEN};

/// SC_SECURITY, the block's header type.
const SC_SECURITY: [u8; 2] = [0x02, 0x0C];

/// What the Server Security Data of a Connect Response says of Standard RDP Security.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerSecurityData {
    pub method: EncryptionMethod,
    pub server_random: [u8; SERVER_RANDOM_LEN],
}

impl ServerSecurityData {
    /// The block in the MCS Connect Response of `server_to_client` (a server's PDUs back to
    /// back): the one whose header is SC_SECURITY and whose serverRandomLen is 32, with an RC4
    /// method. `None` when the connection did not use Standard RDP Security with encryption.
    pub fn find(server_to_client: &[u8]) -> Option<Self> {
        let response = walk(server_to_client)
            .map_while(Result::ok)
            .find(|item| {
                item.pdu == StreamPdu::Mcs(McsPduType::Connect(ConnectPdu::CONNECT_RESPONSE))
            })?
            .bytes;
        let u32_at = |at: usize| -> Option<u32> {
            Some(u32::from_le_bytes(
                response.get(at..at + 4)?.try_into().ok()?,
            ))
        };
        // header (4), encryptionMethod, encryptionLevel, serverRandomLen, serverCertLen, then
        // the random.
        (0..response.len()).find_map(|at| {
            if response.get(at..at + 2)? != SC_SECURITY || u32_at(at + 12)? != 32 {
                return None;
            }
            Some(Self {
                method: EncryptionMethod::from_wire(u32_at(at + 4)?)?,
                server_random: response.get(at + 20..at + 52)?.try_into().ok()?,
            })
        })
    }
}

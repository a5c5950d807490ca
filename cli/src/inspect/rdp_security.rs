//! Standard RDP Security in a capture (MS-RDPBCGR 5.3): the session keys of one TCP connection
//! from its Server Security Data (server random), its Security Exchange (client random, which
//! a server key decrypts) and the encryption method, so `rdpele decode` can open every
//! encrypted PDU of both directions in order and check its MAC.

use rdpele_proto::crypto::{
    derive_rdp_session_keys, EncryptionMethod, LicensingPrivateKey, RdpSessionKeys,
    SERVER_RANDOM_LEN,
};
use rdpele_proto::envelope::{self, ConnectPdu, McsPduType, SecurityExchangePdu, StreamPdu};
use rdpele_proto::wire::Wire;

/// SC_SECURITY, the Server Security Data's header type (MS-RDPBCGR 2.2.1.4.3).
const SC_SECURITY: [u8; 2] = [0x02, 0x0C];

/// What the Server Security Data of a Connect Response says.
struct ServerSecurity {
    method: EncryptionMethod,
    server_random: [u8; SERVER_RANDOM_LEN],
}

/// The Server Security Data in the MCS Connect Response of `server_to_client`: the block whose
/// header is SC_SECURITY and whose serverRandomLen is 32, with an RC4 method. `None` when the
/// connection did not use Standard RDP Security with encryption.
fn server_security(server_to_client: &[u8]) -> Option<ServerSecurity> {
    let response = envelope::walk(server_to_client)
        .map_while(Result::ok)
        .find(|item| item.pdu == StreamPdu::Mcs(McsPduType::Connect(ConnectPdu::CONNECT_RESPONSE)))?
        .bytes;
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            response.get(at..at + 4)?.try_into().ok()?,
        ))
    };
    (0..response.len()).find_map(|at| {
        if response.get(at..at + 2)? != SC_SECURITY || u32_at(at + 12)? != 32 {
            return None;
        }
        let method = EncryptionMethod::from_wire(u32_at(at + 4)?)?;
        let server_random = response.get(at + 20..at + 52)?.try_into().ok()?;
        Some(ServerSecurity {
            method,
            server_random,
        })
    })
}

/// The session keys of the connection whose directions are `server_to_client` and
/// `client_to_server`, when it used Standard RDP Security and one of `keys` decrypts its
/// client random; otherwise why not, for a note (`None` when it did not use it at all).
pub fn session_keys(
    server_to_client: &[u8],
    client_to_server: &[u8],
    keys: &[LicensingPrivateKey],
) -> Option<Result<RdpSessionKeys, String>> {
    let server = server_security(server_to_client)?;
    let exchange = envelope::walk(client_to_server)
        .map_while(Result::ok)
        .find_map(|item| match item.pdu {
            StreamPdu::SendData(data) => SecurityExchangePdu::decode(data.user_data).ok(),
            _ => None,
        });
    let Some(exchange) = exchange else {
        return Some(Err(format!(
            "Standard RDP Security ({}) without a Security Exchange PDU in the capture",
            server.method
        )));
    };
    if keys.is_empty() {
        return Some(Err(format!(
            "Standard RDP Security ({}): its PDUs are encrypted; --server-key with the host's key decrypts them",
            server.method
        )));
    }
    let client_random = keys.iter().find_map(|key| {
        key.decrypt_client_random(exchange.encrypted_client_random, &mut rand::rng())
            .ok()
    });
    Some(match client_random {
        Some(client_random) => Ok(derive_rdp_session_keys(
            &client_random,
            &server.server_random,
            server.method,
        )),
        None => Err(format!(
            "Standard RDP Security ({}): no --server-key decrypts the client random of the Security Exchange",
            server.method
        )),
    })
}

//! Standard RDP Security in a capture (MS-RDPBCGR 5.3): the session keys of one TCP connection
//! from its Server Security Data (server random), its Security Exchange (client random, which
//! a server key decrypts) and the encryption method, so `rdpele decode` can open every
//! encrypted PDU of both directions in order and check its MAC.

use rdpele_proto::crypto::{derive_rdp_session_keys, LicensingPrivateKey, RdpSessionKeys};
use rdpele_proto::envelope::{self, SecurityExchangePdu, ServerSecurityData, StreamPdu};
use rdpele_proto::wire::Wire;

/// The session keys of the connection whose directions are `server_to_client` and
/// `client_to_server`, when it used Standard RDP Security and one of `keys` decrypts its
/// client random; otherwise why not, for a note (`None` when it did not use it at all).
pub fn session_keys(
    server_to_client: &[u8],
    client_to_server: &[u8],
    keys: &[LicensingPrivateKey],
) -> Option<Result<RdpSessionKeys, String>> {
    let server = ServerSecurityData::find(server_to_client)?;
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

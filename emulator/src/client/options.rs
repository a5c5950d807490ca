//! Who the emulated client is, and the licensing identity it derives from that: the
//! [`ClientConfig`] a Windows client would answer the License Request with.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use rdpele_proto::crypto::PublicKeyCache;
use rdpele_proto::machine::ClientConfig;
use rdpele_proto::wire::{ClientHardwareId, ClientType, LicenseDetailLevel, PreambleFlags};

/// PlatformId of every client seen (MS-RDPELE 2.2.2.2): OS "Windows NT" (0x04) in the high
/// byte, ISV Microsoft (0x01) — mstsc and xfreerdp both send it.
pub const PLATFORM_ID: u32 = 0x0401_0000;

/// What the client is asked to do.
#[derive(Clone)]
pub struct ClientOptions {
    /// The client machine name: Client Core Data clientName (cut to 15 characters there, as
    /// the field holds) and the New License Request's ClientMachineName (in full).
    pub machine: String,
    pub user: String,
    pub password: String,
    /// The hardware id the client proves itself with; it, not the machine name, is the
    /// device's identity to a per-device license server.
    pub hwid: ClientHardwareId,
    /// The longest the client waits for any one server PDU or write.
    pub timeout: Duration,
    /// Close the connection as soon as the session is active, instead of reading on until the
    /// server ends it.
    pub disconnect_after_activation: bool,
    /// The security layer the client asks for.
    pub security: ClientSecurity,
}

/// The security layer the emulated client asks for in its X.224 Connection Request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ClientSecurity {
    /// As mstsc does: TLS, and Standard RDP Security on a new connection when the server
    /// answers SSL_NOT_ALLOWED_BY_SERVER.
    #[default]
    Negotiate,
    /// TLS only.
    Tls,
    /// Standard RDP Security only (PROTOCOL_RDP): RC4 at the strongest of 40, 56 and 128 bits
    /// the server picks.
    Rdp,
}

/// The password stays out of logs and panic messages.
impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("machine", &self.machine)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("hwid", &self.hwid)
            .field("timeout", &self.timeout)
            .field(
                "disconnect_after_activation",
                &self.disconnect_after_activation,
            )
            .field("security", &self.security)
            .finish()
    }
}

/// The public keys of the hosts this process's clients have met: a fleet or a benchmark
/// connects to the same host thousands of times, and its key is built once.
pub(super) fn server_keys() -> &'static Arc<PublicKeyCache> {
    static KEYS: LazyLock<Arc<PublicKeyCache>> = LazyLock::new(Arc::default);
    &KEYS
}

impl ClientOptions {
    /// The licensing identity of a Windows client with these names: preamble version 3 with
    /// EXTENDED_ERROR_MSG_SUPPORTED (0x83), PlatformId 0x04010000, and the platform challenge
    /// answered as FreeRDP answers it (wClientType OTHER_PLATFORMCHALLENGE_TYPE, detail level
    /// LICENSE_DETAIL_DETAIL) — mstsc's own values are not documented, and FreeRDP's are
    /// accepted by Windows hosts. `gcc_server_certificate` is the Server Security Data's
    /// certificate, for a License Request that carries none (MS-RDPBCGR 2.2.1.4.3).
    pub fn licensing_config(&self, gcc_server_certificate: Option<Vec<u8>>) -> ClientConfig {
        ClientConfig {
            preamble_flags: PreambleFlags(
                PreambleFlags::PREAMBLE_VERSION_3_0 | PreambleFlags::EXTENDED_ERROR_MSG_SUPPORTED,
            ),
            platform_id: PLATFORM_ID,
            hwid: self.hwid,
            user_name: self.user.clone(),
            machine_name: self.machine.clone(),
            client_type: ClientType::OTHER_PLATFORMCHALLENGE_TYPE,
            license_detail_level: LicenseDetailLevel::LICENSE_DETAIL_DETAIL,
            // MS-RDPBCGR 5.3.3.1.3: the client MUST check a proprietary certificate's
            // signature, as mstsc does (FreeRDP does not); a host whose certificate fails it is
            // told ERR_INVALID_SERVER_CERTIFICATE, which is a finding, not a nuisance.
            verify_server_certificate: true,
            gcc_server_certificate,
            public_keys: Arc::clone(server_keys()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ClientOptions {
        ClientOptions {
            machine: "WS-01".to_owned(),
            user: "alice".to_owned(),
            password: "hunter2".to_owned(),
            hwid: ClientHardwareId {
                platform_id: PLATFORM_ID,
                data: [7; 16],
            },
            timeout: Duration::from_secs(1),
            disconnect_after_activation: false,
            security: ClientSecurity::default(),
        }
    }

    #[test]
    fn the_licensing_identity_is_a_windows_clients() {
        let config = options().licensing_config(None);
        assert_eq!(config.preamble_flags, PreambleFlags(0x83));
        assert_eq!(config.platform_id, 0x0401_0000);
        assert_eq!(config.client_type, ClientType(0xFF00));
        assert_eq!(config.license_detail_level, LicenseDetailLevel(0x0003));
        assert_eq!(
            (config.machine_name.as_str(), config.user_name.as_str()),
            ("WS-01", "alice")
        );
        assert_eq!(config.hwid.data, [7; 16]);
    }

    #[test]
    fn debug_output_leaves_the_password_out() {
        let printed = format!("{:?}", options());
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("alice"));
    }
}

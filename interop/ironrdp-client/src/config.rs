//! The IronRDP connector configuration for one licensing run: TLS security only (no CredSSP), and a
//! client identity (name, HWID) derived from `--machine` so repeated runs look like one device.

use std::sync::Arc;

use ironrdp_connector::{Config, Credentials, DesktopSize, LicenseCache};
use ironrdp_pdu::gcc;
use ironrdp_pdu::rdp::capability_sets::{MajorPlatformType, RailSupportLevel};
use sha2::{Digest as _, Sha256};

/// What the client identifies as; everything else is fixed.
#[derive(Debug)]
pub struct ClientIdentity {
    pub machine: String,
    pub user: String,
    pub password: String,
}

pub fn connector_config(identity: &ClientIdentity, license_cache: Arc<dyn LicenseCache>) -> Config {
    Config {
        desktop_size: DesktopSize {
            width: 1024,
            height: 768,
        },
        monitor_layout: None,
        desktop_scale_factor: 0,
        desktop_physical_size: None,
        desktop_orientation: None,
        device_scale_factor: None,
        monitor_extended_layout: None,
        relative_mouse_input: false,
        // TLS security only: the servers this harness drives (rdpele serve, xrdp) do not run CredSSP,
        // and licensing is the same on either security protocol.
        enable_tls: true,
        enable_credssp: false,
        enable_standard_rdp_security: false,
        credentials: Credentials::UsernamePassword {
            username: identity.user.clone(),
            password: identity.password.clone(),
        },
        domain: None,
        client_build: 0,
        // IronRDP truncates this to 15 characters for the GCC Client Core Data. Note that its
        // licensing code does not use it: CLIENT_NEW_LICENSE_REQUEST's machine name is the HWID.
        client_name: identity.machine.clone(),
        keyboard_type: gcc::KeyboardType::IBM_ENHANCED,
        keyboard_subtype: 0,
        keyboard_functional_keys_count: 12,
        keyboard_layout: 0,
        connection_type: gcc::ConnectionType::Lan,
        ime_file_name: String::new(),
        bitmap: None,
        dig_product_id: String::new(),
        client_dir: String::new(),
        alternate_shell: String::new(),
        work_dir: String::new(),
        remote_application_mode: false,
        rail_support_level: RailSupportLevel::empty(),
        platform: MajorPlatformType::UNIX,
        // IronRDP sends all-zero HWIDs when this is `None`, which would make every client the same
        // device to a license server.
        hardware_id: Some(hardware_id(&identity.machine)),
        request_data: None,
        autologon: !identity.password.is_empty(),
        enable_audio_playback: false,
        enable_audio_capture: false,
        performance_flags: Default::default(),
        license_cache: Some(license_cache),
        timezone_info: Default::default(),
        compression_type: None,
        enable_server_pointer: false,
        pointer_software_rendering: false,
        multitransport_flags: None,
        support_dyn_vc_gfx_protocol: false,
    }
}

/// The four HWID words (CLIENT_HARDWARE_ID Data1..Data4) as the first 16 bytes of SHA-256 of the
/// machine name: stable across runs for one `--machine`, distinct between machines.
pub fn hardware_id(machine: &str) -> [u32; 4] {
    let digest = Sha256::digest(machine.as_bytes());
    let (chunks, _) = digest.as_chunks::<4>();
    let mut words = [0u32; 4];
    for (word, chunk) in words.iter_mut().zip(chunks) {
        *word = u32::from_le_bytes(*chunk);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_id_is_stable_and_per_machine() {
        assert_eq!(hardware_id("CLIENT1"), hardware_id("CLIENT1"));
        assert_ne!(hardware_id("CLIENT1"), hardware_id("CLIENT2"));
        assert_ne!(hardware_id("CLIENT1"), [0; 4]);
    }
}

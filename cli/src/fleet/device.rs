//! One device of the fleet: its identity (machine name, user, a hardware id derived from the
//! seed), its license store in memory, and what it knows of the CAL it holds.

use std::time::{Duration, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdpele_proto::cal::{parse_cal, CalError, CalKind};
use rdpele_proto::wire::ClientHardwareId;

use rdpele_emulator::client::{ClientOptions, ClientSecurity, MemoryLicenses, PLATFORM_ID};

/// Mixed into the seed for the hardware ids' stream (the schedule has its own).
const HWID_STREAM: u64 = 0x4857_4944_0000_0000;
/// An odd constant spreading device numbers over the seed space.
const DEVICE_SPREAD: u64 = 0xD1B5_4A32_D192_ED03;
/// Every device's password: the emulated host accepts any.
const PASSWORD: &str = "fleet";

/// Names and hardware ids of the devices.
#[derive(Clone, Debug)]
pub struct Identities {
    /// Machine names are `<prefix>-0001`, ...
    pub prefix: String,
    pub devices: u32,
    /// Device `n` signs in as user `((n - 1) mod users) + 1`.
    pub users: u32,
    pub seed: u64,
}

impl Identities {
    /// The machine name of device `index` (0-based): `fleet-0001` for 0, with as many digits
    /// as the largest number needs, at least four.
    pub fn machine(&self, index: u32) -> String {
        numbered(&self.prefix, index, self.devices)
    }

    /// The user device `index` signs in as: `user-0001`, ...
    pub fn user(&self, index: u32) -> String {
        numbered(
            "user",
            index.checked_rem(self.users).unwrap_or(0),
            self.users,
        )
    }

    /// Device `index`'s hardware id: 16 bytes from its own stream of the seed, so device n is
    /// the same device in every run with that seed, whatever the fleet's size.
    pub fn hwid(&self, index: u32) -> ClientHardwareId {
        let device_seed = u64::from(index).wrapping_add(1).wrapping_mul(DEVICE_SPREAD);
        let mut rng = StdRng::seed_from_u64(self.seed ^ HWID_STREAM ^ device_seed);
        let mut data = [0u8; 16];
        rng.fill_bytes(&mut data);
        ClientHardwareId {
            platform_id: PLATFORM_ID,
            data,
        }
    }

    pub fn device(&self, index: u32, timeout: Duration) -> Device {
        Device {
            index,
            options: ClientOptions {
                machine: self.machine(index),
                user: self.user(index),
                password: PASSWORD.to_owned(),
                hwid: self.hwid(index),
                timeout,
                // Leave once the session is active (the sign-in that validates a temporary
                // CAL), as a fleet has nothing to do in it.
                disconnect_after_activation: true,
                security: ClientSecurity::default(),
            },
            store: MemoryLicenses::default(),
            held: None,
        }
    }
}

/// `prefix-NNNN`, numbered from 1, zero-padded to the width of `count` (at least 4 digits).
fn numbered(prefix: &str, index: u32, count: u32) -> String {
    let width = count.to_string().len().max(4);
    let number = u64::from(index).saturating_add(1);
    format!("{prefix}-{number:0width$}")
}

/// A device and its state between connections.
#[derive(Debug)]
pub struct Device {
    /// 0-based.
    pub index: u32,
    pub options: ClientOptions,
    pub store: MemoryLicenses,
    /// The CAL the device holds: the last one the host issued it.
    pub held: Option<HeldCal>,
}

/// What the fleet needs of a CAL: read once when it is stored, not at every count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeldCal {
    pub kind: CalKind,
    /// From the client license's serial number (0 for a CAL without one).
    pub license_id: u32,
    pub not_after: SystemTime,
}

impl HeldCal {
    pub fn read(cal: &[u8]) -> Result<Self, CalError> {
        let cal = parse_cal(cal)?;
        let serial = cal.client_license.serial();
        Ok(Self {
            kind: cal.kind,
            license_id: serial.map_or(0, |serial| serial.license_id),
            not_after: cal.client_license.not_after,
        })
    }

    /// Whether the CAL is still good at `now` (the license server counts a CAL as held until
    /// its expiration date, exclusive).
    pub fn held_at(&self, now: SystemTime) -> bool {
        self.not_after > now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identities(devices: u32, users: u32, seed: u64) -> Identities {
        Identities {
            prefix: "fleet".to_owned(),
            devices,
            users,
            seed,
        }
    }

    #[test]
    fn names_are_numbered_from_one_and_padded() {
        let small = identities(12, 3, 1);
        assert_eq!(small.machine(0), "fleet-0001");
        assert_eq!(small.machine(11), "fleet-0012");
        assert_eq!(
            (0..5).map(|i| small.user(i)).collect::<Vec<_>>(),
            [
                "user-0001",
                "user-0002",
                "user-0003",
                "user-0001",
                "user-0002"
            ]
        );
        let large = identities(123_456, 123_456, 1);
        assert_eq!(large.machine(41), "fleet-000042");
        assert_eq!(large.user(41), "user-000042");
    }

    #[test]
    fn hardware_ids_follow_the_seed_and_the_device() {
        let fleet = identities(1000, 1000, 42);
        assert_eq!(fleet.hwid(7), identities(8, 8, 42).hwid(7));
        assert_ne!(fleet.hwid(7), fleet.hwid(8));
        assert_ne!(fleet.hwid(7), identities(1000, 1000, 43).hwid(7));
        assert_eq!(fleet.hwid(7).platform_id, PLATFORM_ID);
        let device = fleet.device(7, Duration::from_secs(1));
        assert_eq!(device.options.machine, "fleet-0008");
        assert_eq!(device.options.hwid, fleet.hwid(7));
    }
}

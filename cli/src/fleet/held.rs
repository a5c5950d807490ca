//! CALs held by kind, counted the way the license server counts its records, so the fleet's
//! totals can be set beside `rdpele admin report`'s.
//!
//! The holder is whoever the license server keys a record by: the device (its hardware id) for
//! a per-device CAL, the user for a per-user one. Each holder counts once, with the newest CAL
//! it was given (highest license id): an upgrade or renewal supersedes the CAL before it on the
//! server, and a per-user record renewed through one device supersedes the copy another device
//! of the same user still keeps. A CAL counts while it has not expired at the given instant.
//!
//! | fleet count | `rdpele admin report --json` |
//! |---|---|
//! | `per_device.permanent` | `totals["per-device"].issued + totals["per-device"].revoked` |
//! | `per_device.temporary` | `totals["per-device"].temporary` |
//! | `per_user.issued` | `totals["per-user"].issued` |
//! | `per_user.overused` | `totals["per-user"].overused` |
//!
//! They are equal when the fleet's devices are the license server's only clients and no
//! connection failed between the server recording a CAL and the device storing it.

use std::collections::HashMap;
use std::time::SystemTime;

use rdpele_proto::cal::CalKind;
use serde::Serialize;

use super::device::Device;

/// CALs held at one instant, by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Held {
    pub per_device: PerDevice,
    pub per_user: PerUser,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerDevice {
    /// Devices holding a permanent per-device CAL.
    pub permanent: u64,
    /// Devices holding a temporary CAL.
    pub temporary: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PerUser {
    /// Users whose newest per-user CAL came from a pack.
    pub issued: u64,
    /// Users whose newest per-user CAL came from no pack (the OverUsed pool).
    pub overused: u64,
}

/// Counts the CALs `devices` hold at `now`.
pub fn count<'a>(devices: impl IntoIterator<Item = &'a Device>, now: SystemTime) -> Held {
    let mut held = Held::default();
    // Per user: the newest CAL any of the user's devices holds.
    let mut users: HashMap<&str, super::device::HeldCal> = HashMap::new();
    for device in devices {
        let Some(cal) = device.held else { continue };
        if cal.per_user {
            let newest = users.entry(device.options.user.as_str()).or_insert(cal);
            if cal.license_id > newest.license_id {
                *newest = cal;
            }
            continue;
        }
        if !cal.held_at(now) {
            continue;
        }
        match cal.kind {
            CalKind::Temporary => held.per_device.temporary += 1,
            CalKind::Permanent => held.per_device.permanent += 1,
        }
    }
    for cal in users.values().filter(|cal| cal.held_at(now)) {
        if cal.key_pack_id == 0 {
            held.per_user.overused += 1;
        } else {
            held.per_user.issued += 1;
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fleet::device::{HeldCal, Identities};

    fn device(index: u32, users: u32, cal: Option<HeldCal>) -> Device {
        let identities = Identities {
            prefix: "fleet".to_owned(),
            devices: 10,
            users,
            seed: 1,
        };
        let mut device = identities.device(index, Duration::from_secs(1));
        device.held = cal;
        device
    }

    fn at(day: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(day * 86_400)
    }

    fn cal(kind: CalKind, per_user: bool, pack: u32, id: u32, expires_day: u64) -> HeldCal {
        HeldCal {
            kind,
            per_user,
            key_pack_id: pack,
            license_id: id,
            not_after: at(expires_day),
        }
    }

    #[test]
    fn per_device_cals_count_by_kind_until_they_expire() {
        let devices = [
            device(0, 10, Some(cal(CalKind::Permanent, false, 1, 5, 60))),
            device(1, 10, Some(cal(CalKind::Temporary, false, 0, 2, 90))),
            device(2, 10, Some(cal(CalKind::Temporary, false, 0, 3, 10))),
            device(3, 10, None),
        ];
        let held = count(&devices, at(10));
        assert_eq!(
            held.per_device,
            PerDevice {
                permanent: 1,
                temporary: 1
            }
        );
        assert_eq!(count(&devices, at(9)).per_device.temporary, 2);
    }

    #[test]
    fn a_user_counts_once_with_the_newest_record() {
        // Devices 0 and 2 share user-0001 (two users): device 2 renewed the record device 0
        // still keeps a copy of. Device 1's user is OverUsed.
        let devices = [
            device(0, 2, Some(cal(CalKind::Permanent, true, 1, 1, 20))),
            device(1, 2, Some(cal(CalKind::Permanent, true, 0, 2, 60))),
            device(2, 2, Some(cal(CalKind::Permanent, true, 1, 3, 70))),
        ];
        let at_10 = count(&devices, at(10));
        assert_eq!(
            at_10.per_user,
            PerUser {
                issued: 1,
                overused: 1
            }
        );
        assert_eq!(at_10.per_device, PerDevice::default());
        assert_eq!(
            count(&devices, at(65)).per_user,
            PerUser {
                issued: 1,
                overused: 0
            }
        );
        // Only the newest record counts, even where an older copy would still be good.
        let odd = [
            device(0, 1, Some(cal(CalKind::Permanent, true, 1, 1, 80))),
            device(1, 1, Some(cal(CalKind::Permanent, true, 1, 2, 70))),
        ];
        assert_eq!(count(&odd, at(75)).per_user, PerUser::default());
    }
}

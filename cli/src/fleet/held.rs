//! CALs held by kind, counted the way the license server counts its records, so the fleet's
//! totals can be set beside `rdpele admin report`'s.
//!
//! Per device, the holder is the device (its hardware id), counted once with the CAL it
//! holds while that CAL has not expired. Per user, the devices hold nothing: a per-user host
//! stores nothing on the client (DESIGN §5) and answers every user it admits with
//! STATUS_VALID_CLIENT after a Platform Challenge, whether it recorded, renewed or only
//! looked the user up. [`UserRecords`] follows the record as Windows keeps it: made at the
//! first sign-in, shown valid for 60 days, renewed by a sign-in in its last 7, made anew by a
//! sign-in after it lapsed (the per-user rules of `rdpele_license_server::policy::per_user`).
//!
//! | fleet count | `rdpele admin report --json` |
//! |---|---|
//! | `per_device.permanent` | `totals["per-device"].issued + totals["per-device"].revoked` |
//! | `per_device.temporary` | `totals["per-device"].temporary` |
//! | `per_user.recorded` | `totals["per-user"].issued + totals["per-user"].overused` |
//!
//! They are equal when the fleet's devices are the license server's only clients, no
//! connection failed between the server deciding and the device learning of it, and the host
//! had a license server throughout (a host in its grace period admits clients after a
//! challenge too, and records nothing).

use std::collections::HashMap;
use std::time::SystemTime;

use rdpele_license_server::policy::per_user::{EXTENSION_WINDOW, SHOWN_LIFETIME};
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
    /// Users with a live per-user record.
    pub recorded: u64,
}

/// The per-user records a host keeps for the fleet's users, as far as the fleet can tell:
/// each user's record's start.
#[derive(Debug, Default)]
pub struct UserRecords {
    since: HashMap<String, SystemTime>,
}

impl UserRecords {
    /// `user` was admitted after a challenge, without a CAL, at `now`: a new record if there
    /// was none or it lapsed, a renewal within its last 7 days, else the record stands.
    pub fn admitted(&mut self, user: &str, now: SystemTime) {
        let renew = match self.since.get(user) {
            None => true,
            Some(since) => expiry(*since)
                .and_then(|expires_at| expires_at.checked_sub(EXTENSION_WINDOW))
                .is_none_or(|window_opens| window_opens <= now),
        };
        if renew {
            self.since.insert(user.to_owned(), now);
        }
    }

    /// A user with a record, if any.
    pub fn any_user(&self) -> Option<&str> {
        self.since.keys().next().map(String::as_str)
    }

    /// Users whose record is live at `now`.
    fn live(&self, now: SystemTime) -> u64 {
        let live = self
            .since
            .values()
            .filter(|since| expiry(**since).is_some_and(|expires_at| expires_at > now))
            .count();
        u64::try_from(live).unwrap_or(u64::MAX)
    }
}

/// When a record made at `since` lapses.
fn expiry(since: SystemTime) -> Option<SystemTime> {
    since.checked_add(SHOWN_LIFETIME)
}

/// Counts the CALs `devices` hold, and the users with a record, at `now`.
pub fn count<'a>(
    devices: impl IntoIterator<Item = &'a Device>,
    users: &UserRecords,
    now: SystemTime,
) -> Held {
    let mut held = Held::default();
    for cal in devices.into_iter().filter_map(|device| device.held) {
        if !cal.held_at(now) {
            continue;
        }
        match cal.kind {
            CalKind::Temporary => held.per_device.temporary += 1,
            CalKind::Permanent => held.per_device.permanent += 1,
        }
    }
    held.per_user.recorded = users.live(now);
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

    fn cal(kind: CalKind, id: u32, expires_day: u64) -> HeldCal {
        HeldCal {
            kind,
            license_id: id,
            not_after: at(expires_day),
        }
    }

    #[test]
    fn per_device_cals_count_by_kind_until_they_expire() {
        let devices = [
            device(0, 10, Some(cal(CalKind::Permanent, 5, 60))),
            device(1, 10, Some(cal(CalKind::Temporary, 2, 90))),
            device(2, 10, Some(cal(CalKind::Temporary, 3, 10))),
            device(3, 10, None),
        ];
        let users = UserRecords::default();
        let held = count(&devices, &users, at(10));
        assert_eq!(
            held.per_device,
            PerDevice {
                permanent: 1,
                temporary: 1
            }
        );
        assert_eq!(held.per_user, PerUser::default());
        assert_eq!(count(&devices, &users, at(9)).per_device.temporary, 2);
    }

    #[test]
    fn a_user_record_lasts_60_days_and_is_renewed_only_in_its_last_7() {
        let mut users = UserRecords::default();
        users.admitted("alice", at(0));
        users.admitted("bob", at(5));
        // A sign-in on day 10 leaves alice's record as it is: it lapses on day 60.
        users.admitted("alice", at(10));
        assert_eq!(users.live(at(59)), 2);
        assert_eq!(users.live(at(60)), 1);
        // Bob signs in on day 58, within the last 7 days of his record (day 65): renewed to 118.
        users.admitted("bob", at(58));
        assert_eq!(users.live(at(117)), 1);
        assert_eq!(users.live(at(118)), 0);
        // Alice lapsed on day 60; signing in again on day 70 records her anew.
        users.admitted("alice", at(70));
        assert_eq!(users.live(at(129)), 1);
        assert_eq!(
            count(&[device(0, 1, None)], &users, at(100))
                .per_user
                .recorded,
            2
        );
    }
}

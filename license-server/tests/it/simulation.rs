//! A year of a per-device deployment on a virtual clock: 1,000 devices with a random but seeded
//! connection pattern, a 300-CAL pack installed on day 0 (and more later), revocations mid-year,
//! the policy deciding every connection over an in-memory store that applies the [`Change`]s as
//! the contract says. Every simulated day the invariants are checked: no pack over-allocated,
//! every client holding a valid CAL admitted, the pool's counts reconciling with the rows,
//! license ids unique, one live CAL per device, the revocation limit kept.

// Test code: a failed unwrap or index is the test failing, with its message.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rdpele_license_server::decision::{Change, PackUsage, Packs, PolicyDecision, Snapshot};
use rdpele_license_server::model::{
    HostInfo, IssuedLicense, KeyPack, LicenseRefusal, LicenseRequest, LicenseStatus, LicensingMode,
    PresentedCal, RequestOutcome, ServerSettings, WindowsVersion,
};
use rdpele_license_server::policy::{
    self, days, install_pack, revoke, InstallError, RevocationLimitSnapshot, RevokeRefusal,
};

const SEED: u64 = 0x5EED_2024;
const DEVICES: usize = 1_000;
const SIMULATED_DAYS: u64 = 365;
const HOST: HostInfo = HostInfo {
    version: WindowsVersion::V2022,
    mode: LicensingMode::PerDevice,
};

fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_704_067_200) // 2024-01-01T00:00:00Z
}

fn day(n: u64) -> SystemTime {
    t0() + days(n)
}

/// The store, in memory: rows applied exactly as the decision contract says, `in_use` counted
/// as the real store counts it (Active and unexpired), from an index kept up to date as
/// changes are applied — which the daily check reconciles with a full scan of the rows.
struct MemoryStore {
    settings: ServerSettings,
    packs: Vec<KeyPack>,
    /// `rows[i]` is license `i + 1`.
    rows: Vec<IssuedLicense>,
    by_hwid: HashMap<[u8; 20], Vec<usize>>,
    /// Per pack, the ids of its Active rows not yet seen expired (pruned as time passes).
    active: HashMap<u32, Vec<u32>>,
}

impl MemoryStore {
    fn new(settings: ServerSettings) -> Self {
        Self {
            settings,
            packs: Vec::new(),
            rows: Vec::new(),
            by_hwid: HashMap::new(),
            active: HashMap::new(),
        }
    }

    fn install(&mut self, pack: KeyPack) -> Result<(), InstallError> {
        install_pack(&self.settings, &pack)?;
        self.active.insert(pack.key_pack_id, Vec::new());
        self.packs.push(pack);
        Ok(())
    }

    fn row(&self, license_id: u32) -> &IssuedLicense {
        &self.rows[usize::try_from(license_id - 1).unwrap()]
    }

    fn in_use(&mut self, key_pack_id: u32, now: SystemTime) -> u32 {
        let rows = &self.rows;
        let active = self.active.get_mut(&key_pack_id).unwrap();
        active.retain(|id| rows[usize::try_from(id - 1).unwrap()].expiration_date > now);
        u32::try_from(active.len()).unwrap()
    }

    fn snapshot(&mut self, now: SystemTime, hardware_id: &[u8; 20]) -> Snapshot {
        let packs: Vec<KeyPack> = self.packs.clone();
        let packs = Packs::read(
            packs
                .into_iter()
                .map(|pack| {
                    let in_use = self.in_use(pack.key_pack_id, now);
                    PackUsage { pack, in_use }
                })
                .collect(),
        );
        let mut holder: Vec<IssuedLicense> = self
            .by_hwid
            .get(hardware_id)
            .map(|indexes| indexes.iter().map(|&i| self.rows[i].clone()).collect())
            .unwrap_or_default();
        holder.reverse(); // newest first
        Snapshot {
            now,
            settings: self.settings.clone(),
            packs,
            holder,
            next_license_id: u32::try_from(self.rows.len() + 1).unwrap(),
        }
    }

    /// What the real store's `record_validation` does for a temporary CAL.
    fn validate(&mut self, license_id: u32, now: SystemTime) {
        let row = &mut self.rows[usize::try_from(license_id - 1).unwrap()];
        if row.status == LicenseStatus::Temporary && row.validated_at.is_none() {
            row.validated_at = Some(now);
        }
    }

    /// Applies a decision's changes in order, as the contract says, then refuses (panics) if
    /// any pack went over its total — the real store's guard.
    fn apply(&mut self, changes: &[Change], now: SystemTime) {
        for change in changes {
            match change {
                Change::Insert(license) => {
                    let expected = u32::try_from(self.rows.len() + 1).unwrap();
                    assert_eq!(license.license_id, expected, "inserted with the next id");
                    if license.status == LicenseStatus::Active {
                        if let Some(pack) = license.key_pack_id {
                            self.active.get_mut(&pack).unwrap().push(license.license_id);
                        }
                    }
                    self.by_hwid
                        .entry(license.hardware_id)
                        .or_default()
                        .push(self.rows.len());
                    self.rows.push(license.clone());
                }
                Change::SetStatus { license_id, status } => {
                    let index = usize::try_from(license_id - 1).unwrap();
                    let row = &mut self.rows[index];
                    if row.status == LicenseStatus::Active {
                        if let Some(pack) = row.key_pack_id {
                            self.active
                                .get_mut(&pack)
                                .unwrap()
                                .retain(|id| id != license_id);
                        }
                    }
                    if *status == LicenseStatus::Revoked {
                        row.revoked_at = Some(now);
                    }
                    row.status = *status;
                }
            }
        }
        for pack in self.packs.clone() {
            assert!(
                self.in_use(pack.key_pack_id, now) <= pack.total_licenses,
                "pack {} over-allocated",
                pack.key_pack_id
            );
        }
    }

    fn revocation_snapshot(&self, now: SystemTime) -> RevocationLimitSnapshot {
        RevocationLimitSnapshot {
            now,
            packs: self.packs.clone(),
            revoked: self
                .rows
                .iter()
                .filter(|row| row.status == LicenseStatus::Revoked && row.expiration_date > now)
                .cloned()
                .collect(),
        }
    }
}

/// How often a device connects.
#[derive(Clone, Copy, Debug)]
enum Pattern {
    Daily,
    Weekly,
    Monthly,
    Rare,
}

impl Pattern {
    fn probability(self) -> f64 {
        match self {
            Self::Daily => 0.8,
            Self::Weekly => 0.2,
            Self::Monthly => 0.04,
            Self::Rare => 0.01,
        }
    }
}

struct Device {
    hardware_id: [u8; 20],
    machine: String,
    user: String,
    pattern: Pattern,
    first_day: u64,
    last_day: u64,
    /// The CAL the client stores (MSLicensing), presented at each connection.
    cal: Option<PresentedCal>,
    /// The name it had at first issue, which the license server keeps showing.
    first_name: Option<String>,
}

fn hardware_id(serial: u32) -> [u8; 20] {
    let mut hwid = [0u8; 20];
    hwid[..4].copy_from_slice(&0x0401_0000u32.to_le_bytes());
    hwid[4..8].copy_from_slice(&serial.to_le_bytes());
    hwid
}

fn presented(license: &IssuedLicense) -> PresentedCal {
    PresentedCal {
        license_id: Some(license.license_id),
        temporary: license.status == LicenseStatus::Temporary,
        license_type: license.license_type,
        product_version: license.product_version,
        not_after: license.expiration_date,
    }
}

#[derive(Debug, Default)]
struct Totals {
    connections: u64,
    temporary: u64,
    permanent: u64,
    renewed: u64,
    valid: u64,
    refused: BTreeMap<String, u64>,
    wiped: u64,
    renamed: u64,
    revoked: u64,
    revocations_refused: u64,
    peak_in_use: u32,
    peak_holders: usize,
    refused_while_free: u64,
    /// The decisions made again on the snapshot without its packs that did not ask for them,
    /// and those that did.
    decided_without_packs: u64,
    asked_for_packs: u64,
}

#[test]
fn a_year_of_1000_devices_on_300_cals_keeps_every_invariant() {
    let mut world = StdRng::seed_from_u64(SEED);
    let mut policy_rng = StdRng::seed_from_u64(SEED ^ 0xCA1);
    let mut store = MemoryStore::new(ServerSettings {
        version: WindowsVersion::V2022,
        activated: true,
        name: "RDPELE-LS".into(),
        domain_or_workgroup: "WORKGROUP".into(),
        product_id: "00000-000-0000000-00000".into(),
    });
    let mut totals = Totals::default();
    let mut next_serial = 0u32;
    let mut devices: Vec<Device> = (0..DEVICES)
        .map(|index| {
            next_serial += 1;
            let pattern = match world.random_range(0..100) {
                0..25 => Pattern::Daily,
                25..60 => Pattern::Weekly,
                60..85 => Pattern::Monthly,
                _ => Pattern::Rare,
            };
            let first_day = if world.random_bool(0.6) {
                0
            } else {
                world.random_range(0..300)
            };
            let last_day = if world.random_bool(0.2) {
                world.random_range(first_day..SIMULATED_DAYS)
            } else {
                SIMULATED_DAYS
            };
            Device {
                hardware_id: hardware_id(next_serial),
                machine: format!("PC-{index:04}"),
                user: format!("user{index:04}"),
                pattern,
                first_day,
                last_day,
                cal: None,
                first_name: None,
            }
        })
        .collect();

    // Day 0: 300 per-device 2022 CALs. A 2025 pack is refused by the 2022 license server.
    let pack = |id, version, total, on| KeyPack {
        key_pack_id: id,
        key_pack_type: LicensingMode::PerDevice,
        product_version: version,
        total_licenses: total,
        installed_at: day(on),
    };
    store
        .install(pack(1, WindowsVersion::V2022, 300, 0))
        .unwrap();
    assert_eq!(
        store.install(pack(9, WindowsVersion::V2025, 300, 0)),
        Err(InstallError::NewerThanServer {
            pack: WindowsVersion::V2025,
            server: WindowsVersion::V2022
        })
    );

    for today in 0..SIMULATED_DAYS {
        if today == 200 {
            // More CALs: 50 of 2022, which serve the 2022 host, and 100 of 2019, which don't.
            store
                .install(pack(2, WindowsVersion::V2022, 50, today))
                .unwrap();
            store
                .install(pack(3, WindowsVersion::V2019, 100, today))
                .unwrap();
        }
        if today == 120 || today == 240 {
            revoke_some(&mut store, day(today), today, &mut totals);
        }
        if today == 180 {
            // Some devices are renamed; the license server keeps their first name.
            for device in devices.iter_mut().step_by(50) {
                device.machine = format!("{}-RENAMED", device.machine);
                totals.renamed += 1;
            }
        }

        let mut connecting: Vec<usize> = (0..devices.len())
            .filter(|&i| {
                let device = &devices[i];
                (device.first_day..device.last_day).contains(&today)
                    && world.random_bool(device.pattern.probability())
            })
            .collect();
        // A random order through the day, one connection every few seconds.
        for i in (1..connecting.len()).rev() {
            connecting.swap(i, world.random_range(0..=i));
        }
        let step = 86_000 / u64::try_from(connecting.len().max(1)).unwrap();
        for (slot, &index) in connecting.iter().enumerate() {
            let now = day(today) + Duration::from_secs(u64::try_from(slot).unwrap() * step);
            let device = &mut devices[index];
            if world.random_bool(0.001) {
                // The user deleted MSLicensing: a new HWID, a new device to the license server.
                next_serial += 1;
                device.hardware_id = hardware_id(next_serial);
                device.cal = None;
                device.first_name = None;
                totals.wiped += 1;
            }
            connect(&mut store, device, now, &mut policy_rng, &mut totals);
        }

        check_invariants(
            &mut store,
            &devices,
            day(today + 1) - Duration::from_secs(1),
            &mut totals,
        );
    }

    println!("{totals:#?}");
    println!(
        "rows: {}, devices seen: {}",
        store.rows.len(),
        store.by_hwid.len()
    );
    assert_eq!(totals.refused_while_free, 0);
    assert!(totals.temporary >= 1_000, "every device starts temporary");
    assert!(totals.permanent > 300, "the pool turns over");
    assert!(totals.renewed > 100, "regular devices renew");
    assert!(
        totals.refused.values().sum::<u64>() > 0,
        "the pool runs out"
    );
    assert_eq!(
        totals.peak_in_use, 300,
        "pack 1 is used to the last CAL, never beyond"
    );
    assert!(
        totals.peak_holders > 300,
        "revoked holders keep their CAL: more holders than CALs ({})",
        totals.peak_holders
    );
    assert!(totals.revoked >= 60 && totals.revocations_refused > 0);
    assert!(
        totals.decided_without_packs > 10_000 && totals.asked_for_packs > 1_000,
        "both kinds of decision occur: {} without the packs, {} asking for them",
        totals.decided_without_packs,
        totals.asked_for_packs
    );
}

/// One connection: the policy decides over a snapshot, the store applies, the client stores
/// what it was given. Checks the per-connection rules.
fn connect(
    store: &mut MemoryStore,
    device: &mut Device,
    now: SystemTime,
    rng: &mut StdRng,
    totals: &mut Totals,
) {
    let request = LicenseRequest {
        host: HOST,
        hardware_id: device.hardware_id,
        machine: device.machine.clone(),
        user: device.user.clone(),
        presented: device.cal.clone(),
    };
    let holds_valid_cal = device.cal.as_ref().is_some_and(|cal| {
        cal.license_type == LicensingMode::PerDevice
            && cal.product_version >= HOST.version
            && cal.not_after > now
    });
    let snapshot = store.snapshot(now, &device.hardware_id);
    let unread = Snapshot {
        packs: Packs::unread(),
        ..snapshot.clone()
    };
    // Another generator: an answer that drew from it would not match.
    let without_packs = policy::decide(&request, &unread, &mut StdRng::seed_from_u64(0));
    let decision: PolicyDecision = policy::decide(&request, &snapshot, rng);
    totals.connections += 1;
    // What lets the store skip counting the pool for an assessment (`Packs`): an answer for
    // which the policy did not ask for the packs is the answer it gives with them.
    if unread.packs.asked_unread() {
        totals.asked_for_packs += 1;
    } else {
        totals.decided_without_packs += 1;
        assert_eq!(
            without_packs, decision,
            "decided without asking for the packs"
        );
    }
    store.apply(&decision.changes, now);

    let issued = decision.changes.iter().find_map(|change| match change {
        Change::Insert(license) => Some(license.clone()),
        Change::SetStatus { .. } => None,
    });
    match &decision.outcome {
        RequestOutcome::Temporary {
            license_id,
            expires_at,
        } => {
            totals.temporary += 1;
            assert!(
                snapshot.holder.is_empty(),
                "a temporary CAL only on first logon"
            );
            assert_eq!(*expires_at, now + days(90));
            let license = issued.unwrap();
            assert_eq!(
                (license.license_id, license.key_pack_id),
                (*license_id, None)
            );
            device.first_name = Some(license.issued_to_computer.clone());
            device.cal = Some(presented(&license));
        }
        RequestOutcome::Permanent {
            license_id,
            expires_at,
        }
        | RequestOutcome::Renewed {
            license_id,
            expires_at,
        } => {
            if matches!(decision.outcome, RequestOutcome::Renewed { .. }) {
                totals.renewed += 1;
            } else {
                totals.permanent += 1;
            }
            let license = issued.unwrap();
            assert_eq!(license.license_id, *license_id);
            let lifetime = expires_at.duration_since(now).unwrap().as_secs() / 86_400;
            assert!((52..=89).contains(&lifetime), "{lifetime} days");
            assert_ne!(license.key_pack_id, Some(3), "a 2019 CAL for a 2022 host");
            assert_eq!(
                Some(&license.issued_to_computer),
                device.first_name.as_ref(),
                "the name at first issue"
            );
            device.cal = Some(presented(&license));
        }
        RequestOutcome::Valid { expires_at } => {
            totals.valid += 1;
            assert!(issued.is_none());
            assert_eq!(
                Some(*expires_at),
                device.cal.as_ref().map(|cal| cal.not_after)
            );
        }
        RequestOutcome::Refused { reason } => {
            assert!(
                !holds_valid_cal,
                "a client holding a valid CAL was refused: {reason:?}"
            );
            if matches!(
                reason,
                LicenseRefusal::TemporaryExpiredNoneFree | LicenseRefusal::Expired
            ) {
                let free = snapshot
                    .packs
                    .usage()
                    .iter()
                    .filter(|usage| usage.pack.product_version >= HOST.version)
                    .any(|usage| usage.available() > 0);
                if free {
                    totals.refused_while_free += 1;
                }
            }
            *totals.refused.entry(format!("{reason:?}")).or_default() += 1;
        }
    }
    if holds_valid_cal {
        assert!(!matches!(decision.outcome, RequestOutcome::Refused { .. }));
    }
    // Every admitted user signs in: the session host validates the temporary CAL held.
    let admitted = !matches!(decision.outcome, RequestOutcome::Refused { .. });
    if let (
        true,
        Some(PresentedCal {
            license_id: Some(license_id),
            temporary: true,
            ..
        }),
    ) = (admitted, &device.cal)
    {
        store.validate(*license_id, now);
    }
}

/// The administrator revokes CALs in bulk: 20 % of the 2022 CALs at most, then refused with
/// the date the next revocation is allowed.
fn revoke_some(store: &mut MemoryStore, now: SystemTime, today: u64, totals: &mut Totals) {
    let candidates: Vec<u32> = store
        .rows
        .iter()
        .filter(|row| row.status == LicenseStatus::Active && row.expiration_date > now)
        .map(|row| row.license_id)
        .take(80)
        .collect();
    let mut granted = 0u32;
    for license_id in candidates {
        let license = store.row(license_id).clone();
        let snapshot = store.revocation_snapshot(now);
        match revoke(&license, &snapshot) {
            Ok(revocation) => {
                store.apply(&[revocation.change()], now);
                assert_eq!(
                    store.row(license_id).revoked_at,
                    Some(revocation.revoked_at)
                );
                granted += 1;
                totals.revoked += 1;
            }
            Err(RevokeRefusal::LimitReached {
                limit,
                next_revoke_allowed_on,
                ..
            }) => {
                let earliest = snapshot
                    .revoked
                    .iter()
                    .map(|row| row.expiration_date)
                    .min()
                    .unwrap();
                assert_eq!(next_revoke_allowed_on, earliest);
                assert!(next_revoke_allowed_on > now);
                let installed: u32 = store
                    .packs
                    .iter()
                    .filter(|pack| pack.product_version == WindowsVersion::V2022)
                    .map(|pack| pack.total_licenses)
                    .sum();
                assert_eq!(limit, installed / 5);
                totals.revocations_refused += 1;
            }
            Err(other) => panic!("day {today}: {other}"),
        }
    }
    if today == 120 {
        assert_eq!(granted, 60, "20 % of 300");
    }
}

/// The daily check, at the day's last second.
fn check_invariants(
    store: &mut MemoryStore,
    devices: &[Device],
    now: SystemTime,
    totals: &mut Totals,
) {
    // License ids unique, in insertion order.
    let mut ids = HashSet::new();
    for (index, row) in store.rows.iter().enumerate() {
        assert_eq!(usize::try_from(row.license_id).unwrap(), index + 1);
        assert!(ids.insert(row.license_id));
    }
    // Per pack: Active unexpired ≤ total, and the pool's count reconciles with the rows.
    for pack in store.packs.clone() {
        let in_rows = store
            .rows
            .iter()
            .filter(|row| {
                row.key_pack_id == Some(pack.key_pack_id)
                    && row.status == LicenseStatus::Active
                    && row.expiration_date > now
            })
            .count();
        let revoked_holders = store
            .rows
            .iter()
            .filter(|row| {
                row.key_pack_id == Some(pack.key_pack_id)
                    && row.status == LicenseStatus::Revoked
                    && row.expiration_date > now
            })
            .count();
        let in_use = store.in_use(pack.key_pack_id, now);
        assert_eq!(
            usize::try_from(in_use).unwrap(),
            in_rows,
            "pack {}",
            pack.key_pack_id
        );
        assert!(
            in_use <= pack.total_licenses,
            "pack {} over-allocated",
            pack.key_pack_id
        );
        let usage = PackUsage {
            pack: pack.clone(),
            in_use,
        };
        assert_eq!(usage.available() + in_use, pack.total_licenses);
        if pack.key_pack_id == 1 {
            totals.peak_in_use = totals.peak_in_use.max(in_use);
            totals.peak_holders = totals.peak_holders.max(in_rows + revoked_holders);
        }
        if pack.product_version < WindowsVersion::V2022 {
            assert_eq!(in_rows, 0, "an older pack never serves the 2022 host");
        }
    }
    // One live CAL per device; its name the one from first issue.
    for indexes in store.by_hwid.values() {
        let rows: Vec<&IssuedLicense> = indexes.iter().map(|&i| &store.rows[i]).collect();
        let live = rows
            .iter()
            .filter(|row| {
                matches!(row.status, LicenseStatus::Temporary | LicenseStatus::Active)
                    && row.expiration_date > now
            })
            .count();
        assert!(live <= 1, "{live} live CALs for one device");
        assert!(rows
            .iter()
            .all(|row| row.issued_to_computer == rows[0].issued_to_computer));
    }
    // Revoked CALs of 2022 still within their validity: at most 20 % of those installed.
    let installed: u32 = store
        .packs
        .iter()
        .filter(|pack| pack.product_version == WindowsVersion::V2022)
        .map(|pack| pack.total_licenses)
        .sum();
    let revoked = store
        .rows
        .iter()
        .filter(|row| row.status == LicenseStatus::Revoked && row.expiration_date > now)
        .count();
    assert!(u32::try_from(revoked).unwrap() <= (installed / 5).max(1));
    // Every client's stored CAL is one the store knows, with the same expiry.
    for device in devices {
        if let Some(cal) = &device.cal {
            let row = store.row(cal.license_id.unwrap());
            assert_eq!(row.hardware_id, device.hardware_id);
            assert_eq!(row.expiration_date, cal.not_after);
        }
    }
}

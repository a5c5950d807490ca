//! The day loop: each virtual day the devices the schedule names connect, at most
//! `concurrency` at a time, each through licensing only; then the fleet moves the license
//! server's virtual clock one day on, through its data directory, as `rdpele admin clock
//! advance 1d` does. No connection is in flight while the clock moves, so every decision of a
//! day is taken at that day's virtual time.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use tokio::task::JoinSet;

use super::device::{Device, HeldCal, Identities};
use super::held::{self, UserRecords};
use super::outcome::{classify, Outcome};
use super::schedule::{Pattern, Schedule};
use super::summary::{DayReport, FleetReport, ServerTotals, Tally};
use rdpele_emulator::client::{connect, connect_through_licensing, ClientError, ClientReport};
use rdpele_license_server::clock::{Clock, ClockError};
use rdpele_license_server::store::{Holder, Store, StoreError, DATABASE_FILE};

const DAY: Duration = Duration::from_secs(86_400);

/// What the fleet is asked to do.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub address: SocketAddr,
    /// The data directory of the host at `address` (or of its license server; both, when the
    /// license server is remote): whose virtual clock the fleet moves.
    pub data: Vec<PathBuf>,
    pub identities: Identities,
    pub days: u32,
    pub pattern: Pattern,
    /// Connections in flight at once.
    pub concurrency: usize,
    /// Each client's wait for any one server PDU.
    pub timeout: Duration,
    /// Go on to an active session after licensing (the sign-in that validates a temporary
    /// CAL), as mstsc does; false: disconnect once licensing ends, so no temporary CAL is
    /// ever validated or upgraded.
    pub activate: bool,
}

/// Told how the run advances (a progress bar); every method may do nothing.
pub trait Progress {
    /// The run starts with this many connections to make.
    fn begin(&mut self, _connections: u64) {}
    /// Day `day` starts: `devices` connect.
    fn day(&mut self, _day: u32, _date: time::Date, _devices: usize) {}
    /// One connection ended.
    fn connected(&mut self) {}
}

/// No progress shown.
impl Progress for () {}

/// Why a fleet run stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    #[error("no data directory: the fleet moves the virtual clock of the host's")]
    NoDataDirectory,
    #[error(
        "{}: no license server store here ({DATABASE_FILE}); --data must be the data directory \
         of the host at --connect (or of its license server)",
        .0.display()
    )]
    NotADataDirectory(PathBuf),
    #[error("{}: {source}", path.display())]
    Store { path: PathBuf, source: StoreError },
    #[error("{}: virtual clock: {source}", path.display())]
    Clock { path: PathBuf, source: ClockError },
    #[error("cannot connect to {address}: {source}")]
    Unreachable {
        address: SocketAddr,
        source: std::io::Error,
    },
    #[error("{address} stopped accepting connections on day {day}: {detail}")]
    Lost {
        address: SocketAddr,
        day: u32,
        detail: String,
    },
    #[error(
        "the CALs {address} issues are not recorded in {dirs}: --data must be the data \
         directory of the host at --connect (or of its license server)"
    )]
    WrongDataDirectory { address: SocketAddr, dirs: String },
    #[error("the virtual calendar ends before day {0}")]
    Calendar(u32),
    #[error("a connection task failed: {0}")]
    Task(tokio::task::JoinError),
}

/// A data directory the fleet moves the clock of.
struct DataDirectory {
    path: PathBuf,
    store: Store,
}

impl DataDirectory {
    fn open(path: &Path) -> Result<Self, FleetError> {
        if !path.join(DATABASE_FILE).is_file() {
            return Err(FleetError::NotADataDirectory(path.to_owned()));
        }
        let store = Store::open(path).map_err(|source| FleetError::Store {
            path: path.to_owned(),
            source,
        })?;
        Ok(Self {
            path: path.to_owned(),
            store,
        })
    }

    fn clock_error(&self, source: ClockError) -> FleetError {
        FleetError::Clock {
            path: self.path.clone(),
            source,
        }
    }

    fn store_error(&self, source: StoreError) -> FleetError {
        FleetError::Store {
            path: self.path.clone(),
            source,
        }
    }
}

/// Runs the fleet to its last day.
pub async fn run(
    options: &FleetOptions,
    progress: &mut impl Progress,
) -> Result<FleetReport, FleetError> {
    let wall = Instant::now();
    let directories = options
        .data
        .iter()
        .map(|path| DataDirectory::open(path))
        .collect::<Result<Vec<_>, _>>()?;
    let clock = Clock::system();
    let first = directories.first().ok_or(FleetError::NoDataDirectory)?;
    let started_at = clock.now(&first.store).map_err(|e| first.clock_error(e))?;
    let start = time::OffsetDateTime::from(started_at).date();
    let schedule = Schedule {
        pattern: options.pattern,
        devices: options.identities.devices,
        seed: options.identities.seed,
        start,
    };
    check_reachable(options.address, options.timeout).await?;

    let mut devices: Vec<Option<Device>> = (0..options.identities.devices)
        .map(|index| Some(options.identities.device(index, options.timeout)))
        .collect();
    progress.begin(schedule.connections(options.days));
    let mut users = UserRecords::default();
    // Which data directory records the fleet's CALs, once one was issued.
    let mut recording: Option<usize> = None;
    let mut days = Vec::new();
    let mut totals = Tally::default();
    let mut now = started_at;
    for day in 0..options.days {
        let date = schedule.date(day).ok_or(FleetError::Calendar(day))?;
        let today = schedule.devices_on(day);
        progress.day(day, date, today.len());
        let tally = connect_all(
            &mut devices,
            &mut users,
            &today,
            options,
            (day, now),
            progress,
        )
        .await?;
        if recording.is_none() {
            recording = find_recording(&directories, &devices, &users, options.address)?;
        }
        let mut advanced = Vec::with_capacity(directories.len());
        for directory in &directories {
            let moved = clock
                .advance(&directory.store, DAY)
                .map_err(|e| directory.clock_error(e))?;
            advanced.push(moved);
        }
        // CALs are counted at the virtual now of the server that records them.
        now = advanced.get(recording.unwrap_or(0)).copied().unwrap_or(now);
        let held = held::count(devices.iter().flatten(), &users, now);
        totals.merge(&tally);
        days.push(DayReport {
            day,
            date,
            tally,
            held,
        });
    }

    let recorder = recording
        .and_then(|index| directories.get(index))
        .unwrap_or(first);
    let report = recorder
        .store
        .pool_report(now)
        .map_err(|e| recorder.store_error(e))?;
    let server = ServerTotals::from_report(&report);
    let held = days.last().map(|day| day.held).unwrap_or_default();
    Ok(FleetReport {
        connect: options.address.to_string(),
        devices: options.identities.devices,
        users: options.identities.users,
        pattern: options.pattern.name(),
        seed: options.identities.seed,
        concurrency: options.concurrency,
        days,
        totals,
        held,
        server,
        started_at,
        ended_at: now,
        wall: wall.elapsed(),
    })
}

/// Fails early, before the clock moves, when nothing listens at `address`. The host sees a
/// client that connects and leaves.
async fn check_reachable(address: SocketAddr, timeout: Duration) -> Result<(), FleetError> {
    let unreachable = |source| FleetError::Unreachable { address, source };
    let attempt = tokio::time::timeout(timeout, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| unreachable(std::io::ErrorKind::TimedOut.into()))?;
    attempt.map(drop).map_err(unreachable)
}

/// Day `day`'s connections, at virtual `now`, at most `concurrency` at once; each device's
/// task owns the device until its connection ends.
async fn connect_all(
    devices: &mut [Option<Device>],
    users: &mut UserRecords,
    today: &[u32],
    options: &FleetOptions,
    (day, now): (u32, SystemTime),
    progress: &mut impl Progress,
) -> Result<Tally, FleetError> {
    let mut tally = Tally::default();
    let mut waiting = today.iter();
    let mut tasks = JoinSet::new();
    // A host that refuses every connection of a day is gone; the run stops there.
    let mut refused_tcp = 0usize;
    let mut last_tcp_error = None;
    loop {
        while tasks.len() < options.concurrency.max(1) {
            let Some(device) = waiting.next().and_then(|&index| take(devices, index)) else {
                break;
            };
            let address = options.address;
            let activate = options.activate;
            tasks.spawn(async move {
                let mut device = device;
                let result = if activate {
                    connect(address, &device.options, &mut device.store).await
                } else {
                    connect_through_licensing(address, &device.options, &mut device.store).await
                };
                (device, result)
            });
        }
        let Some(joined) = tasks.join_next().await else {
            break;
        };
        let (mut device, result) = joined.map_err(FleetError::Task)?;
        if let Err(error @ ClientError::Connect { .. }) = &result {
            refused_tcp += 1;
            last_tcp_error = Some(error.to_string());
        }
        tally.add(&settle(&mut device, users, &result, now));
        let index = usize::try_from(device.index).unwrap_or(usize::MAX);
        if let Some(slot) = devices.get_mut(index) {
            *slot = Some(device);
        }
        progress.connected();
    }
    if refused_tcp > 0 && refused_tcp == today.len() {
        return Err(FleetError::Lost {
            address: options.address,
            day,
            detail: last_tcp_error.unwrap_or_default(),
        });
    }
    Ok(tally)
}

fn take(devices: &mut [Option<Device>], index: u32) -> Option<Device> {
    devices
        .get_mut(usize::try_from(index).ok()?)
        .and_then(Option::take)
}

/// The outcome of `device`'s connection at virtual `now`, and the CAL it holds after it (or
/// its user's record, when the host admitted it after a challenge without a CAL).
///
/// Only a device that presented no CAL counts as a user recorded: a per-device host answers
/// a New License Request with a CAL, while it answers STATUS_VALID_CLIENT after the challenge
/// to a device whose temporary CAL it could not upgrade (no CAL free).
fn settle(
    device: &mut Device,
    users: &mut UserRecords,
    result: &Result<ClientReport, ClientError>,
    now: SystemTime,
) -> Outcome {
    let stored = result
        .as_ref()
        .ok()
        .and_then(|report| report.stored.as_deref())
        .map(|cal| HeldCal::read(cal).map_err(|error| error.to_string()));
    let outcome = classify(device.held.as_ref(), result, stored.as_ref());
    let presented_none = device.held.is_none();
    if let Some(Ok(cal)) = stored {
        device.held = Some(cal);
    }
    if outcome == Outcome::Valid
        && presented_none
        && result.as_ref().is_ok_and(|report| report.challenged)
    {
        users.admitted(&device.options.user, now);
    }
    outcome
}

/// The data directory that records the licenses the host issued the fleet: the first device
/// holding a CAL is looked up by license id and hardware id, else the first user a host
/// recorded without a CAL, by name. `None` while the host has issued nothing; an error when
/// none of the directories has it (the fleet would be moving the clock of a server that is
/// not the one licensing it).
fn find_recording(
    directories: &[DataDirectory],
    devices: &[Option<Device>],
    users: &UserRecords,
    address: SocketAddr,
) -> Result<Option<usize>, FleetError> {
    let wanted = if let Some((device, cal)) = devices
        .iter()
        .flatten()
        .find_map(|device| device.held.map(|cal| (device, cal)))
    {
        Wanted::Cal {
            license_id: cal.license_id,
            hwid: device.options.hwid.to_bytes(),
        }
    } else if let Some(user) = users.any_user() {
        Wanted::User(user.to_owned())
    } else {
        return Ok(None);
    };
    for (index, directory) in directories.iter().enumerate() {
        let found = match &wanted {
            Wanted::Cal { license_id, hwid } => directory
                .store
                .license(*license_id)
                .map(|license| license.is_some_and(|license| license.hardware_id == *hwid)),
            Wanted::User(user) => directory
                .store
                .holder_licenses(&Holder::User(user.clone()))
                .map(|licenses| !licenses.is_empty()),
        }
        .map_err(|e| directory.store_error(e))?;
        if found {
            return Ok(Some(index));
        }
    }
    Err(FleetError::WrongDataDirectory {
        address,
        dirs: directories
            .iter()
            .map(|directory| directory.path.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// What [`find_recording`] looks for.
enum Wanted {
    Cal { license_id: u32, hwid: [u8; 20] },
    User(String),
}

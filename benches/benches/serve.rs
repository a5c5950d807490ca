//! `rdpele serve` over loopback TLS, driven by the emulated client, both in this process:
//! licensing handshakes per second and per-connection latency at 1, 16 and 256 concurrent
//! clients, and the memory an idle active session costs. See BENCHMARKS.md, "Session host over
//! loopback TLS", for how to run and the results.
//!
//! The host is the real one (`session_host::Shared::open` + `session_host::serve` on
//! 127.0.0.1:0) with the license server embedded over a data directory in a temporary
//! directory: activated, Windows Server 2022, per device, one pack of 1,000,000 CALs. Its
//! licensing key and the license server's are 2048-bit RSA, as `rdpele serve` makes them. The
//! client is `rdpele_emulator::client::connect`; each connection is a whole one: TCP, X.224,
//! TLS (a full handshake every time: no session resumption), MCS, Client Info, licensing,
//! capability exchange and finalization, then the host's Set Error Info and disconnect
//! (`session_seconds = None`). Host and clients share one two-worker tokio runtime; the host
//! drives the licensing state machine on each connection's task, and its embedded license
//! server decides on its own thread (group commit) with CALs signed on the blocking pool; a
//! permanent CAL a client presents is assessed on the connection's task.
//!
//! Groups:
//! - `serve_handshake/new_device/<concurrency>`: each connection is a device never seen before,
//!   so the host decrypts its premaster (RSA-2048), the license server signs a temporary CAL
//!   (RSA-2048) and records it (an SQLite insert and fsync).
//! - `serve_handshake/valid/<concurrency>`: each connection presents a permanent CAL the device
//!   got before timing (256 devices, licensed twice each: New, then Upgrade), answered
//!   STATUS_VALID_CLIENT: the premaster decryption and reading the store, no signature.
//! - `serve_handshake/new_device_rdp_security/16`, `valid_rdp_security/16`: the same two over
//!   Standard RDP Security (PROTOCOL_RDP, the Security Exchange with the 2048-bit key, 128-bit
//!   RC4 and MACs on every PDU) instead of TLS, in the same run.
//! - `serve_idle`: not timed by criterion. 256 clients connect at once and stay in the active
//!   session (`session_seconds` set, the client reading on); `VmRSS` of this process is sampled
//!   every 10 ms, and the median over the interval when all 256 sessions were active, less the
//!   figure before they connected, divided by 256, is printed: the memory of one idle
//!   connection, host and client sides together.
//!
//! One iteration is `<concurrency>` connections started together and awaited; throughput is one
//! element per connection, so criterion's `thrpt` is handshakes per second. Every connection's
//! report is checked (the expected licensing outcome, the session active), so no figure times
//! a failure. Each benchmark also prints the p50 and p99 of the connections' durations over
//! all its iterations (warm-up included), whole and licensing phase alone.

// A benchmark harness: a fixture that fails must stop the run loudly.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use rdpele_emulator::client::{
    connect, ClientOptions, ClientReport, ClientSecurity, LicensingOutcome, MemoryLicenses,
    PLATFORM_ID,
};
use rdpele_emulator::session_host::config::HostConfig;
use rdpele_emulator::session_host::{serve, Options, Shared};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{LicensingMode, WindowsVersion};
use rdpele_license_server::store::{NewKeyPack, Store};
use rdpele_proto::wire::ClientHardwareId;
use tokio::net::TcpSocket;
use tokio::runtime::Runtime;
use tokio::sync::oneshot;

const CONCURRENCY: [usize; 3] = [1, 16, 256];
/// Clients at once in the Standard RDP Security benchmarks: the concurrency of the targets.
const RDP_SECURITY_CONCURRENCY: usize = 16;
/// Devices holding a permanent CAL for the `valid` benchmarks: one per concurrent client.
const LICENSED_DEVICES: usize = 256;
/// Idle sessions held for the memory figure.
const IDLE_SESSIONS: usize = 256;
/// CALs in the pack: more than any run issues.
const PACK_SIZE: u32 = 1_000_000;
/// Pending connections the host's listener queues (see [`Host::start`]).
const LISTEN_BACKLOG: u32 = 1024;
/// Generous: at 256 concurrent clients a connection waits for others' RSA operations.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// `rdpele serve` on a loopback port, over a provisioned data directory; stops when dropped.
struct Host {
    address: SocketAddr,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

impl Host {
    fn start(runtime: &Runtime, session_seconds: Option<u64>) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        provision(&data);
        let shared = Shared::open(Options {
            data,
            config: HostConfig {
                version: Some(WindowsVersion::V2022),
                mode: Some(LicensingMode::PerDevice),
                ..HostConfig::default()
            },
            license_server: None,
            session_seconds,
            max_connections: 1024,
            max_connections_per_source: 1024,
            step_timeout: CLIENT_TIMEOUT,
            record: None,
            pcap: None,
            host_name: "rdpele-bench".to_owned(),
        })
        .unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let address = runtime.block_on(async {
            // A listen backlog of 1024, not the 128 of `TcpListener::bind`: 256 clients
            // connecting at once overflow 128 while the two workers are busy with handshakes,
            // and each dropped SYN costs the client a 1 s retransmission.
            let socket = TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let listener = socket.listen(LISTEN_BACKLOG).unwrap();
            let address = listener.local_addr().unwrap();
            tokio::spawn(serve(listener, shared, async {
                let _ = stopped.await;
            }));
            address
        });
        Host {
            address,
            _stop: stop,
            _dir: dir,
        }
    }
}

/// What `rdpele admin server set --activated true --version 2022` and `install --type
/// per-device --version 2022 --count 1000000` do.
fn provision(data: &Path) {
    std::fs::create_dir_all(data).unwrap();
    let store = Store::open(data).unwrap();
    let mut settings = store.settings().unwrap();
    settings.activated = true;
    settings.version = WindowsVersion::V2022;
    store.set_settings(&settings).unwrap();
    let now = Clock::system().now(&store).unwrap();
    store
        .install_pack(&NewKeyPack {
            key_pack_type: LicensingMode::PerDevice,
            product_version: WindowsVersion::V2022,
            total_licenses: PACK_SIZE,
            installed_at: now,
        })
        .unwrap();
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Device `n`: its own hardware id and machine name, over TLS.
fn device(n: u64, disconnect_after_activation: bool) -> ClientOptions {
    device_over(n, disconnect_after_activation, ClientSecurity::Tls)
}

/// Device `n` asking for `security`.
fn device_over(
    n: u64,
    disconnect_after_activation: bool,
    security: ClientSecurity,
) -> ClientOptions {
    let mut data = [0u8; 16];
    data[..8].copy_from_slice(&n.to_le_bytes());
    data[8..].copy_from_slice(&(n ^ 0x5EED_0000_0000_0000).to_le_bytes());
    ClientOptions {
        machine: format!("WS-{n:06}"),
        user: format!("user{n}"),
        password: "secret".to_owned(),
        hwid: ClientHardwareId {
            platform_id: PLATFORM_ID,
            data,
        },
        timeout: CLIENT_TIMEOUT,
        disconnect_after_activation,
        security,
    }
}

/// One connection, checked: the expected outcome and an active session.
async fn connection(
    address: SocketAddr,
    options: ClientOptions,
    mut store: MemoryLicenses,
    expected: LicensingOutcome,
) -> (ClientReport, MemoryLicenses) {
    let report = connect(address, &options, &mut store)
        .await
        .unwrap_or_else(|error| panic!("{}: {error}", options.machine));
    assert_eq!(
        report.licensing, expected,
        "{}: {report:?}",
        options.machine
    );
    assert!(report.active, "{}: {report:?}", options.machine);
    (report, store)
}

/// Runs `jobs` connections `batch` at a time; the stores come back in order.
async fn in_batches(
    address: SocketAddr,
    jobs: Vec<(ClientOptions, MemoryLicenses)>,
    expected: LicensingOutcome,
    batch: usize,
) -> Vec<(ClientReport, MemoryLicenses)> {
    let mut done = Vec::with_capacity(jobs.len());
    let mut jobs = jobs.into_iter().peekable();
    while jobs.peek().is_some() {
        let tasks: Vec<_> = jobs
            .by_ref()
            .take(batch)
            .map(|(options, store)| {
                tokio::spawn(connection(address, options, store, expected.clone()))
            })
            .collect();
        for task in tasks {
            done.push(task.await.unwrap());
        }
    }
    done
}

/// Durations of connections, for percentiles.
#[derive(Default)]
struct Latencies {
    total: Vec<Duration>,
    licensing: Vec<Duration>,
}

impl Latencies {
    fn record(&mut self, report: &ClientReport) {
        self.total.push(report.timings.total);
        self.licensing.push(report.timings.licensing);
    }

    /// Prints the percentiles, if the benchmark ran (a filter may have skipped it).
    fn print(&self, name: &str) {
        if self.total.is_empty() {
            return;
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "{name}: {} connections; whole connection p50 {:.2} ms, p99 {:.2} ms; \
             licensing p50 {:.2} ms, p99 {:.2} ms",
            self.total.len(),
            ms(percentile(&self.total, 50)),
            ms(percentile(&self.total, 99)),
            ms(percentile(&self.licensing, 50)),
            ms(percentile(&self.licensing, 99)),
        );
    }
}

/// Nearest-rank percentile.
fn percentile(durations: &[Duration], p: usize) -> Duration {
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn handshakes(c: &mut Criterion) {
    let runtime = runtime();
    let host = Host::start(&runtime, None);
    let address = host.address;

    // The devices of the `valid` benchmarks: a temporary CAL, then a permanent one.
    let devices: Vec<(ClientOptions, MemoryLicenses)> = (0..LICENSED_DEVICES)
        .map(|n| {
            (
                device(u64::try_from(n).unwrap(), false),
                MemoryLicenses::default(),
            )
        })
        .collect();
    let licensed = runtime.block_on(async {
        let first = in_batches(address, devices, LicensingOutcome::New, 32).await;
        let again = first
            .into_iter()
            .enumerate()
            .map(|(n, (_, store))| (device(u64::try_from(n).unwrap(), false), store))
            .collect();
        in_batches(address, again, LicensingOutcome::Upgraded, 32).await
    });
    let licensed: Vec<MemoryLicenses> = licensed.into_iter().map(|(_, store)| store).collect();
    let mut next_device = u64::try_from(LICENSED_DEVICES).unwrap();

    let mut group = c.benchmark_group("serve_handshake");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(10));
    for concurrency in CONCURRENCY {
        group.throughput(Throughput::Elements(u64::try_from(concurrency).unwrap()));

        let mut latencies = Latencies::default();
        group.bench_with_input(
            BenchmarkId::new("new_device", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..iters {
                            let jobs = (0..concurrency)
                                .map(|_| {
                                    next_device += 1;
                                    (device(next_device, false), MemoryLicenses::default())
                                })
                                .collect();
                            let started = Instant::now();
                            let done =
                                in_batches(address, jobs, LicensingOutcome::New, concurrency).await;
                            elapsed += started.elapsed();
                            for (report, _) in &done {
                                latencies.record(report);
                            }
                        }
                        elapsed
                    })
                });
            },
        );
        latencies.print(&format!("serve_handshake/new_device/{concurrency}"));

        let mut latencies = Latencies::default();
        group.bench_with_input(
            BenchmarkId::new("valid", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..iters {
                            let jobs = licensed
                                .iter()
                                .take(concurrency)
                                .enumerate()
                                .map(|(n, store)| {
                                    (device(u64::try_from(n).unwrap(), false), store.clone())
                                })
                                .collect();
                            let started = Instant::now();
                            let done =
                                in_batches(address, jobs, LicensingOutcome::Valid, concurrency)
                                    .await;
                            elapsed += started.elapsed();
                            for (report, _) in &done {
                                latencies.record(report);
                            }
                        }
                        elapsed
                    })
                });
            },
        );
        latencies.print(&format!("serve_handshake/valid/{concurrency}"));
    }

    // The same two handshakes under Standard RDP Security (PROTOCOL_RDP, 128-bit RC4), beside
    // TLS in the same run: the client announces RNS_UD_CS_STRONG_ASYMMETRIC_KEYS, so the host
    // decrypts its client random with the 2048-bit key, an RSA operation TLS does not have.
    for (name, outcome) in [
        ("new_device_rdp_security", LicensingOutcome::New),
        ("valid_rdp_security", LicensingOutcome::Valid),
    ] {
        let concurrency = RDP_SECURITY_CONCURRENCY;
        group.throughput(Throughput::Elements(u64::try_from(concurrency).unwrap()));
        let mut latencies = Latencies::default();
        group.bench_with_input(
            BenchmarkId::new(name, concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iters| {
                    runtime.block_on(async {
                        let mut elapsed = Duration::ZERO;
                        for _ in 0..iters {
                            let jobs = (0..concurrency)
                                .map(|n| {
                                    if outcome == LicensingOutcome::New {
                                        next_device += 1;
                                        let device =
                                            device_over(next_device, false, ClientSecurity::Rdp);
                                        (device, MemoryLicenses::default())
                                    } else {
                                        let n64 = u64::try_from(n).unwrap();
                                        let device = device_over(n64, false, ClientSecurity::Rdp);
                                        (device, licensed[n].clone())
                                    }
                                })
                                .collect();
                            let started = Instant::now();
                            let done =
                                in_batches(address, jobs, outcome.clone(), concurrency).await;
                            elapsed += started.elapsed();
                            for (report, _) in &done {
                                latencies.record(report);
                            }
                        }
                        elapsed
                    })
                });
            },
        );
        latencies.print(&format!("serve_handshake/{name}/{concurrency}"));
    }
    group.finish();
}

/// This process's resident set, in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn idle_sessions(_: &mut Criterion) {
    // Under `--test` (CI runs every bench once) the sessions are held just long enough for
    // all 256 to be active at once on a quiet machine (they all are within ~0.5 s); a loaded
    // one may not get there, which `--test` reports instead of failing.
    let test_mode = std::env::args().any(|arg| arg == "--test");
    let hold = if test_mode { 3 } else { 10 };
    let runtime = runtime();
    let host = Host::start(&runtime, Some(hold));
    let address = host.address;

    runtime.block_on(async {
        // Warm up everything a connection touches once (TLS, SQLite, the blocking pool).
        connection(
            address,
            device(0, true),
            MemoryLicenses::default(),
            LicensingOutcome::New,
        )
        .await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let baseline = rss_kib();

        let (stop, mut stopped) = oneshot::channel::<()>();
        let sampler = tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            loop {
                tokio::select! {
                    _ = tick.tick() => samples.push((Instant::now(), rss_kib())),
                    _ = &mut stopped => return samples,
                }
            }
        });
        let clients: Vec<_> = (1..=IDLE_SESSIONS)
            .map(|n| {
                let options = device(u64::try_from(n).unwrap(), false);
                tokio::spawn(async move {
                    let started = Instant::now();
                    let (report, _) = connection(
                        address,
                        options,
                        MemoryLicenses::default(),
                        LicensingOutcome::New,
                    )
                    .await;
                    (started, report)
                })
            })
            .collect();
        let mut reports = Vec::with_capacity(IDLE_SESSIONS);
        for client in clients {
            reports.push(client.await.unwrap());
        }
        let _ = stop.send(());
        let samples = sampler.await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        let after = rss_kib();

        // All sessions were active from the last Font Map to the first end.
        let all_active = reports
            .iter()
            .map(|(started, report)| {
                let timings = report.timings;
                *started + timings.connection + timings.licensing + timings.activation.unwrap()
            })
            .max()
            .unwrap();
        let first_end = reports
            .iter()
            .map(|(started, report)| *started + report.timings.total)
            .min()
            .unwrap();
        let mut held: Vec<u64> = samples
            .iter()
            .filter(|(at, _)| *at >= all_active && *at <= first_end)
            .map(|(_, rss)| *rss)
            .collect();
        if held.is_empty() {
            assert!(
                test_mode,
                "the sessions were never all active at once: raise the hold time"
            );
            println!(
                "serve_idle/{IDLE_SESSIONS}: the sessions were never all active at once \
                 (the machine is busy); no figure"
            );
            return;
        }
        held.sort_unstable();
        let median = held[held.len() / 2];
        let grown = u32::try_from(median.saturating_sub(baseline)).unwrap();
        let per_connection = f64::from(grown) / f64::from(u32::try_from(IDLE_SESSIONS).unwrap());
        println!(
            "serve_idle/{IDLE_SESSIONS}: VmRSS {baseline} KiB before, {median} KiB with all \
             sessions active (median of {} samples over {:.1} s), {after} KiB after they ended; \
             {per_connection:.1} KiB per idle connection (host and client sides together)",
            held.len(),
            first_end.duration_since(all_active).as_secs_f64(),
        );
    });
}

criterion_group!(benches, idle_sessions, handshakes);
criterion_main!(benches);

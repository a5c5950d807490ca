// Test code: unwrap/expect/panic/indexing are fine here.
//! What the session host tests share: a `rdpele serve` process on a free loopback port, the
//! admin CLI on its data directory, and real clients (xfreerdp 2.11.7 under Xvfb, IronRDP's
//! connector through `rdpele-ironrdp-client`) each with its own home directory.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

pub const RDPELE: &str = env!("CARGO_BIN_EXE_rdpele");
/// Longest one client connection may take; a connection with licensing and activation takes
/// about 1.5 s (xfreerdp polls every 100 ms), so this only catches hangs.
const CLIENT_DEADLINE: Duration = Duration::from_secs(60);

/// `rdpele serve` in the background, killed on drop.
pub struct Host {
    child: Child,
    pub port: u16,
    pub data: PathBuf,
    log: PathBuf,
}

impl Host {
    /// Starts a host on `data` with extra arguments (`--config`, `--timeout`, ...).
    pub fn start(data: &Path, extra: &[&str]) -> Host {
        // The host makes `data` itself (0700), as on a fresh machine.
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        let log = data.with_extension("serve.log");
        let child = Command::new(RDPELE)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env("RDPELE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut host = Host {
            child,
            port: 0,
            data: data.to_owned(),
            log,
        };
        let stdout = host.child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve did not start: {line:?}\n{}", host.log()));
        host.port = address.rsplit(':').next().unwrap().parse().unwrap();
        host
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// What the host logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The host's log once it holds `needle`, or panics with the log after 10 s. For lines
    /// the host writes after its last PDU (a refusal's connection end, an ERRINFO): the
    /// client may have read the PDU and exited before the host logged.
    pub fn log_once_it_holds(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "the host did not log {needle:?} within 10 s:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The host's "licensing decision" log lines.
    pub fn decisions(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| line.contains("licensing decision"))
            .map(str::to_owned)
            .collect()
    }

    /// Whether the host process is still running.
    pub fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// `rdpele license-server` in the background, killed on drop.
pub struct RemoteLicenseServer {
    child: Child,
    pub url: String,
}

impl RemoteLicenseServer {
    pub fn start(data: &Path, token: &str) -> RemoteLicenseServer {
        Self::start_with(data, &["--token", token])
    }

    /// Started with `extra` arguments (`--token-file F`, ...).
    pub fn start_with(data: &Path, extra: &[&str]) -> RemoteLicenseServer {
        Self::start_on("127.0.0.1:0", data, extra)
    }

    /// Listening on `address`.
    pub fn start_on(address: &str, data: &Path, extra: &[&str]) -> RemoteLicenseServer {
        let mut child = Command::new(RDPELE)
            .args(["license-server", "--listen", address, "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap()
            .to_owned();
        RemoteLicenseServer {
            child,
            url: format!("http://{address}"),
        }
    }
}

impl Drop for RemoteLicenseServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `rdpele admin --data DIR --json ARGS` and returns its JSON answer.
pub fn admin(data: &Path, args: &[&str]) -> Value {
    let output = Command::new(RDPELE)
        .args(["admin", "--json", "--data"])
        .arg(data)
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "admin {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A license server with a per-device (or per-user) pack of `count` CALs of `version`,
/// activated, for a host of `host_version` in `mode`.
pub fn provision(data: &Path, mode: &str, host_version: &str, pack_version: &str, count: u32) {
    admin(
        data,
        &[
            "server",
            "set",
            "--activated",
            "true",
            "--mode",
            mode,
            "--host-version",
            host_version,
        ],
    );
    admin(
        data,
        &[
            "install",
            "--type",
            mode,
            "--version",
            pack_version,
            "--count",
            &count.to_string(),
        ],
    );
}

/// `rdpele cal inspect --json FILE`.
pub fn inspect(cal: &Path) -> Value {
    let output = Command::new(RDPELE)
        .args(["cal", "inspect", "--json"])
        .arg(cal)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "cal inspect {}: {}",
        cal.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Sets the virtual clock to `days_before` days before `instant` (RFC 3339).
pub fn set_clock_before(data: &Path, instant: &str, days_before: u64) {
    let at = time::OffsetDateTime::parse(instant, &time::format_description::well_known::Rfc3339)
        .unwrap()
        - time::Duration::days(i64::try_from(days_before).unwrap());
    let at = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    admin(data, &["clock", "set", &at]);
}

/// Days between two RFC 3339 instants.
pub fn days_between(from: &str, to: &str) -> i64 {
    let parse = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap()
    };
    (parse(to) - parse(from)).whole_days()
}

/// What a client run left behind.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub output: String,
}

/// Waits for `child` at most [`CLIENT_DEADLINE`], killing it if it hangs.
fn finish(mut child: Child, what: &str) -> Run {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut output = String::new();
            if let Some(mut out) = child.stdout.take() {
                out.read_to_string(&mut output).unwrap();
            }
            return Run { status, output };
        }
        if started.elapsed() > CLIENT_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {CLIENT_DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// xfreerdp 2.11.7 as a device named `hostname` whose license store is under `home`.
pub struct Xfreerdp {
    pub home: PathBuf,
    pub hostname: String,
    pub user: String,
}

impl Xfreerdp {
    pub fn new(root: &Path, hostname: &str, user: &str) -> Xfreerdp {
        let home = root.join(format!("home-{hostname}"));
        std::fs::create_dir_all(&home).unwrap();
        Xfreerdp {
            home,
            hostname: hostname.to_owned(),
            user: user.to_owned(),
        }
    }

    /// One connection over TLS through licensing to the end the host chooses.
    pub fn connect(&self, host: &Host) -> Run {
        self.connect_with(host, "/sec:tls")
    }

    /// [`Self::connect`] with `security` (`/sec:tls`, `/sec:rdp`) for the security layer.
    pub fn connect_with(&self, host: &Host, security: &str) -> Run {
        // xfreerdp logs to both streams; one file keeps them in order.
        let log = self.home.join("xfreerdp.log");
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new("xvfb-run")
            .args(["-a", "xfreerdp"])
            .arg(format!("/v:{}", host.address()))
            .arg(format!("/u:{}", self.user))
            .args(["/p:secret", "/cert:ignore", security])
            .arg(format!("/client-hostname:{}", self.hostname))
            .env("HOME", &self.home)
            .env("XDG_CONFIG_HOME", self.home.join(".config"))
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("xvfb-run / xfreerdp must be installed (./scripts/test installs them)");
        let mut run = finish(child, "xfreerdp");
        run.output = std::fs::read_to_string(&log).unwrap_or_default();
        run
    }

    /// The CAL xfreerdp keeps for this device, if any: the one file in its license
    /// directory (named after SHA-1 of the client hostname).
    pub fn cal(&self) -> Option<PathBuf> {
        let dir = self.home.join(".config/freerdp/licenses");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "cal"))
            .collect();
        assert!(files.len() <= 1, "one device, one CAL: {files:?}");
        files.pop()
    }
}

/// Runs `openssl ARGS PATH`, which must succeed, and returns its output. openssl is part of
/// the test environment (`./scripts/test` installs it): without it the test fails, not skips.
pub fn openssl(args: &[&str], path: &Path) -> String {
    let output = Command::new("openssl")
        .args(args)
        .arg(path)
        .output()
        .expect("openssl must be installed (apt-get install openssl)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// rdesktop 1.9.0 as a device named `hostname` whose files (its certificate exceptions and
/// licenses) are under `home`.
pub struct Rdesktop {
    pub home: PathBuf,
    pub hostname: String,
    pub user: String,
}

impl Rdesktop {
    pub fn new(root: &Path, hostname: &str, user: &str) -> Rdesktop {
        let home = root.join(format!("home-{hostname}"));
        // rdesktop makes .local/share/rdesktop/{certs,licenses} but not their parent.
        std::fs::create_dir_all(home.join(".local/share/rdesktop")).unwrap();
        Rdesktop {
            home,
            hostname: hostname.to_owned(),
            user: user.to_owned(),
        }
    }

    /// One connection under Xvfb, answering "yes" when rdesktop asks whether to trust the
    /// host's self-signed certificate; it ends when the host logs the session off.
    pub fn connect(&self, host: &Host) -> Run {
        let log = self.home.join("rdesktop.log");
        let file = std::fs::File::create(&log).unwrap();
        let mut child = Command::new("xvfb-run")
            .args(["-a", "rdesktop"])
            .args(["-u", &self.user, "-p", "secret", "-n", &self.hostname])
            .arg(host.address())
            .env("HOME", &self.home)
            .stdin(Stdio::piped())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("xvfb-run / rdesktop must be installed (./scripts/test installs them)");
        child.stdin.take().unwrap().write_all(b"yes\n").unwrap();
        let mut run = finish(child, "rdesktop");
        run.output = std::fs::read_to_string(&log).unwrap_or_default();
        run
    }

    /// The CAL rdesktop keeps for this device, if any: the one file in its license directory
    /// (`~/.local/share/rdesktop/licenses/<sha1 of the client name>.cal`).
    pub fn cal(&self) -> Option<PathBuf> {
        let dir = self.home.join(".local/share/rdesktop/licenses");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .map(|entry| entry.unwrap().path())
            .collect();
        assert!(files.len() <= 1, "one device, one CAL: {files:?}");
        files.pop()
    }
}

/// The IronRDP-based client (`interop/ironrdp-client`, its own Cargo workspace), built once per
/// test process: `cargo build` is a no-op when `./scripts/test` has built it already.
pub fn ironrdp_client() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let project = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("interop/ironrdp-client");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let build = Command::new(cargo)
            .args(["build", "--release", "--manifest-path"])
            .arg(project.join("Cargo.toml"))
            .arg("--target-dir")
            .arg(project.join("target"))
            .stdin(Stdio::null())
            .output()
            .expect("cargo must be runnable to build the IronRDP client");
        assert!(
            build.status.success(),
            "building {} failed:\n{}",
            project.display(),
            String::from_utf8_lossy(&build.stderr)
        );
        project.join("target/release/rdpele-ironrdp-client")
    })
}

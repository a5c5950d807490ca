//! `rdpele-ironrdp-client`: connects to an RDP server with IronRDP, goes through licensing with a
//! file-backed license cache, and prints one JSON line saying how far it got.

mod config;
mod connect;
mod interceptor;
mod license_cache;
mod licensing;
mod mutation;
mod set_error_info;
mod slow_path;
mod tls;
mod workarounds;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use clap::Parser;
use ironrdp_connector::LicenseCache;
use tracing_subscriber::filter::LevelFilter;

use crate::config::ClientIdentity;
use crate::interceptor::{Settings, SharedWireLog, WireLog};
use crate::license_cache::{CacheActivity, FileLicenseCache};
use crate::mutation::Mutator;
use crate::workarounds::Workarounds;

/// The IronRDP connector this binary is built against, as pinned in this project's Cargo.lock
/// (kept in sync by the `client_version_matches_lockfile` test).
const CLIENT: &str = "ironrdp-connector 0.12.0";

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Server address, e.g. 127.0.0.1:3389
    #[arg(long)]
    connect: SocketAddr,
    /// Directory holding the license cache (one `<sha256>.cal` file per license); created if missing
    #[arg(long)]
    cache: PathBuf,
    #[arg(long)]
    user: String,
    #[arg(long, default_value = "")]
    password: String,
    /// Client machine name: sent as the client name and hashed into the HWID and the cache key
    #[arg(long)]
    machine: String,
    /// Give up if the active session is not reached within this many seconds
    #[arg(long, default_value_t = 20)]
    timeout_secs: u64,
    /// Log IronRDP's connection sequence to stderr
    #[arg(long)]
    verbose: bool,
    /// Hostile mode: damage every licensing PDU the client sends, deterministically from SEED
    /// (flipped bytes, truncation, extension, broken TPKT/MCS/blob lengths, ...)
    #[arg(long, value_name = "SEED")]
    mutate_licensing: Option<u64>,
    /// Work around one of IronRDP's licensing bugs (repeatable; see README): proprietary-key,
    /// challenge-response-padding, premaster-length, or all
    #[arg(long = "workaround", value_name = "NAME", value_enum)]
    workarounds: Vec<WorkaroundArg>,
}

/// `--workaround` values: one per [`workarounds`] bug, or all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum WorkaroundArg {
    ProprietaryKey,
    ChallengeResponsePadding,
    PremasterLength,
    All,
}

fn workarounds(args: &[WorkaroundArg]) -> Workarounds {
    let wanted = |one| {
        args.iter()
            .any(|arg| *arg == one || *arg == WorkaroundArg::All)
    };
    Workarounds {
        proprietary_key: wanted(WorkaroundArg::ProprietaryKey),
        challenge_response_padding: wanted(WorkaroundArg::ChallengeResponsePadding),
        premaster_length: wanted(WorkaroundArg::PremasterLength),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if args.verbose {
            LevelFilter::DEBUG
        } else {
            LevelFilter::WARN
        })
        .init();

    let (result, activity, wire) = run(&args).await;
    let report = serde_json::json!({
        "client": CLIENT,
        "connected": result.is_ok(),
        "licensing": activity.summary(),
        "stored_license": activity.stored,
        "presented_license": activity.presented,
        "error": result.as_ref().err().map(|error| format!("{error:#}")),
        "server_licensing": wire.server_licensing,
        "server_error": wire.server_error.map(|alert| alert.to_json()),
        "server_error_info": wire.error_info.map(set_error_info::error_info_name),
        "server_disconnected": wire.disconnected,
        "mutations": args.mutate_licensing.map(|_| {
            wire.mutations.iter().map(|record| record.to_json()).collect::<Vec<_>>()
        }),
        "workarounds": wire.workarounds,
    });
    println!("{report}");

    if result.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Returns the outcome together with what the license cache and the wire saw, which are reported
/// either way.
async fn run(args: &Args) -> (anyhow::Result<()>, CacheActivity, WireLog) {
    // Absolute, so the paths in the report still work from another working directory.
    let cache_dir =
        match std::fs::create_dir_all(&args.cache).and_then(|()| args.cache.canonicalize()) {
            Ok(dir) => dir,
            Err(error) => {
                let error = anyhow::Error::new(error).context(format!(
                    "prepare license cache directory {}",
                    args.cache.display()
                ));
                return (Err(error), CacheActivity::default(), WireLog::default());
            }
        };
    let cache = Arc::new(FileLicenseCache::new(cache_dir, args.machine.clone()));
    let identity = ClientIdentity {
        machine: args.machine.clone(),
        user: args.user.clone(),
        password: args.password.clone(),
    };
    // IronRDP takes the cache as a trait object; this handle keeps the concrete type for `activity`.
    let license_cache: Arc<dyn LicenseCache> = Arc::<FileLicenseCache>::clone(&cache);
    let config = config::connector_config(&identity, license_cache);
    let settings = Settings {
        mutator: args.mutate_licensing.map(Mutator::new),
        workarounds: workarounds(&args.workarounds),
    };
    let wire = SharedWireLog::default();
    let result = match tokio::time::timeout(
        Duration::from_secs(args.timeout_secs),
        connect::connect(args.connect, config, settings, wire.clone()),
    )
    .await
    {
        Ok(connected) => connected.map_err(anyhow::Error::new),
        Err(_) => Err(anyhow!(
            "active session not reached within {} s",
            args.timeout_secs
        )),
    };
    (result, cache.activity(), wire.snapshot())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_version_matches_lockfile() {
        let lockfile = include_str!("../Cargo.lock");
        let version = CLIENT.strip_prefix("ironrdp-connector ").unwrap();
        assert!(lockfile.contains(&format!(
            "name = \"ironrdp-connector\"\nversion = \"{version}\"\n"
        )));
    }
}

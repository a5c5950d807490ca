//! The `rdpele` command line: one module per subcommand.

mod admin;
mod cal;
mod client;
mod decode;
mod demo;
mod fleet;
mod keys;
mod serve;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// RDP licensing (MS-RDPELE) test harness and emulator.
#[derive(Debug, Parser)]
#[command(name = "rdpele", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Decode(decode::DecodeArgs),
    Cal(cal::CalArgs),
    Keys(keys::KeysArgs),
    Admin(admin::AdminArgs),
    Demo(demo::DemoArgs),
    Serve(serve::ServeArgs),
    LicenseServer(serve::LicenseServerArgs),
    Client(client::ClientArgs),
    Fleet(fleet::FleetArgs),
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return admin::parse_error(error),
    };
    match cli.command {
        Command::Decode(args) => decode::run(&args),
        Command::Cal(args) => cal::run(&args),
        Command::Keys(args) => keys::run(&args),
        Command::Admin(args) => admin::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Serve(args) => serve::run_serve(&args),
        Command::LicenseServer(args) => serve::run_license_server(&args),
        Command::Client(args) => client::run(&args),
        Command::Fleet(args) => fleet::run(&args),
    }
}

/// Reads FILE, or standard input for `-`, refusing inputs over `max_bytes` rather than reading
/// them into memory.
pub(crate) fn read_input(path: &std::path::Path, max_bytes: u64) -> anyhow::Result<Vec<u8>> {
    use anyhow::Context;
    use std::io::Read;
    let mut data = Vec::new();
    if path == std::path::Path::new("-") {
        std::io::stdin()
            .take(max_bytes + 1)
            .read_to_end(&mut data)
            .context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(max_bytes + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if u64::try_from(data.len()).unwrap_or(u64::MAX) > max_bytes {
        anyhow::bail!("{}: larger than {max_bytes} bytes", path.display());
    }
    Ok(data)
}

/// Writes `text` to standard output. A reader that goes away (`rdpele ... | head`) ends the
/// output quietly instead of panicking, as `println!` would.
pub(crate) fn print_out(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

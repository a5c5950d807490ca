//! The `rdpele` command line: one module per subcommand.

mod cal;
mod decode;
mod keys;

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
}

pub fn run() -> ExitCode {
    match Cli::parse().command {
        Command::Decode(args) => decode::run(&args),
        Command::Cal(args) => cal::run(&args),
        Command::Keys(args) => keys::run(&args),
    }
}

//! `rdpele admin`: the emulated RD License Server's administration, over its data directory —
//! what RD Licensing Manager and the WMI provider let a Windows administrator do (settings,
//! CAL packs, revocation, reports), plus what only an emulator can: ask for a client's CAL on
//! the virtual clock, and move that clock.
//!
//! Each command opens the store for itself; SQLite (WAL, a busy timeout) lets it run beside a
//! server on the same directory. Arguments are all checked by clap before the store is opened,
//! so a malformed one changes nothing.

mod args;
mod clock;
mod install;
mod plot;
mod report;
mod request;
pub(super) mod revoke;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use serde_json::Value;

/// Administer the emulated RD License Server in a data directory.
///
/// The data directory holds the license server's store (license_server.sqlite: settings, CAL
/// packs, every CAL issued, the virtual clock) and its signing key (license_server_key.pem,
/// created by the first `request`). It is created if missing. The commands work on a stopped
/// store and while a server runs on the same directory.
///
/// Times are on the virtual clock (real time plus an offset kept in the store, moved by
/// `clock advance` and `clock set`), written in RFC 3339 (UTC).
///
/// Exit status: 0 done; 1 the store or a file could not be used; 2 an argument is invalid
/// (nothing was changed); 3 the license server refuses (a pack newer than itself, the
/// revocation limit, nothing to revoke). Errors are one line on stderr.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct AdminArgs {
    /// The license server's data directory.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Answer with one JSON document on stdout instead of text (`request` always does).
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
enum AdminCommand {
    #[command(subcommand)]
    Server(server::ServerCommand),
    Install(install::InstallArgs),
    Revoke(revoke::RevokeArgs),
    Request(request::RequestArgs),
    #[command(subcommand)]
    Clock(clock::ClockCommand),
    Report(report::ReportArgs),
}

/// What a command was given beside its own arguments.
#[derive(Debug)]
struct Context<'a> {
    data: &'a std::path::Path,
    json: bool,
}

/// A command that did not complete: the exit status and the one line that says why.
#[derive(Debug)]
struct Failure {
    status: u8,
    error: anyhow::Error,
}

impl Failure {
    /// An argument is invalid (exit 2): nothing was changed.
    fn invalid(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: 2,
            error: error.into(),
        }
    }

    /// The license server's rules refuse the operation (exit 3): nothing was changed.
    fn refused(error: impl Into<anyhow::Error>) -> Self {
        Self {
            status: 3,
            error: error.into(),
        }
    }
}

/// Any other error: the store, the clock or a file (exit 1).
impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(error: E) -> Self {
        Self {
            status: 1,
            error: error.into(),
        }
    }
}

type CommandResult = Result<(), Failure>;

pub fn run(args: &AdminArgs) -> ExitCode {
    let context = Context {
        data: &args.data,
        json: args.json,
    };
    let (name, result) = match &args.command {
        AdminCommand::Server(command) => ("server", server::run(&context, command)),
        AdminCommand::Install(args) => ("install", install::run(&context, args)),
        AdminCommand::Revoke(args) => ("revoke", revoke::run(&context, args)),
        AdminCommand::Request(args) => ("request", request::run(&context, args)),
        AdminCommand::Clock(command) => ("clock", clock::run(&context, command)),
        AdminCommand::Report(args) => ("report", report::run(&context, args)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!(
                "rdpele admin {name}: {}",
                one_line(&format!("{:#}", failure.error))
            );
            ExitCode::from(failure.status)
        }
    }
}

/// Handles a command line clap refused. For `rdpele admin`, the error is printed as one line
/// (exit 2), as the admin commands promise; help and version requests, and every other
/// command's errors, are left to clap as `Parser::parse` would.
pub fn parse_error(error: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let admin = std::env::args_os().nth(1).is_some_and(|arg| arg == "admin");
    if !admin
        || matches!(
            error.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        )
    {
        error.exit()
    }
    eprintln!("rdpele admin: {}", clap_line(&error.to_string()));
    ExitCode::from(2)
}

/// Clap's message without its usage and help hints, on one line.
fn clap_line(rendered: &str) -> String {
    let kept: Vec<&str> = rendered
        .lines()
        .take_while(|line| !line.starts_with("Usage:") && !line.starts_with("For more information"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    let joined = kept.join(" ");
    joined.strip_prefix("error: ").unwrap_or(&joined).to_owned()
}

/// `text` with line breaks as spaces.
fn one_line(text: &str) -> String {
    text.split(['\r', '\n'])
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Prints a command's answer: `document` as one line of JSON with `--json`, else `text`.
fn answer(context: &Context<'_>, document: &Value, text: impl FnOnce() -> String) {
    if context.json {
        super::print_out(&format!("{document}\n"));
    } else {
        super::print_out(&text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: invalid value '-5' for '--count <N>': a CAL count cannot be \
                        negative\n\nFor more information, try '--help'.\n";
        assert_eq!(
            clap_line(rendered),
            "invalid value '-5' for '--count <N>': a CAL count cannot be negative"
        );
        let missing = "error: the following required arguments were not provided:\n  \
                       --count <N>\n\nUsage: rdpele admin install --count <N>\n\nFor more \
                       information, try '--help'.\n";
        assert_eq!(
            clap_line(missing),
            "the following required arguments were not provided: --count <N>"
        );
    }
}

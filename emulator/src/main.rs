//! `rdpele`: the command-line front end.

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}

//! `rdpele`: the command-line front end.

mod cli;
mod inspect;

fn main() -> std::process::ExitCode {
    cli::run()
}

//! `rdpele`: the command-line front end.

fn main() -> std::process::ExitCode {
    rdpele::command::run()
}

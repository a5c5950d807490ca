//! `rdpele`: the command-line front end.

fn main() -> std::process::ExitCode {
    rdpele_emulator::cli::run()
}

//! `rdpele decode`: look inside captured licensing traffic.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use serde_json::Value;

use crate::inspect::{self, Decoded, Framing, Outcome};

/// Inputs larger than this are refused rather than read into memory.
const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Decode RDP licensing messages (MS-RDPELE) from a file or standard input.
///
/// The framing is detected: a bare licensing message (starting at LICENSE_PREAMBLE), a security
/// header followed by the message, one or more TPKT frames (TPKT / X.224 / MCS Send Data /
/// security header), a pcap or pcapng capture of an RDP connection that used Standard RDP
/// Security (licensing PDUs travel in plain text there; TCP is reassembled), or a decrypted
/// NEW_LICENSE_INFO.
///
/// Exit status: 0 decoded; 1 the input could not be read, or --roundtrip found a difference;
/// 2 malformed input or no licensing message found (one line on stderr names the structure,
/// field and byte offset).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DecodeArgs {
    /// File to decode; `-` reads standard input.
    #[arg(value_name = "FILE|-", default_value = "-")]
    input: PathBuf,
    /// Print one JSON document per licensing message, one per line, instead of a tree. Each
    /// document's `message_type` is the spec's structure name (SERVER_LICENSE_REQUEST, ...).
    #[arg(long)]
    json: bool,
    /// Show every byte: blobs and certificates in full, and each message's raw bytes.
    #[arg(long)]
    hex: bool,
    /// Re-encode every decoded message with its framing and fail if any byte differs.
    #[arg(long)]
    roundtrip: bool,
    /// Framing of the input, when detection guesses wrong.
    #[arg(long, value_enum, default_value_t = FramingArg::Auto)]
    framing: FramingArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FramingArg {
    Auto,
    Bare,
    SecurityHeader,
    Tpkt,
    Pcap,
    NewLicenseInfo,
}

pub fn run(args: &DecodeArgs) -> ExitCode {
    let data = match read_input(&args.input) {
        Ok(data) => data,
        Err(error) => {
            eprintln!("rdpele decode: {error:#}");
            return ExitCode::from(1);
        }
    };
    let framing = match args.framing {
        FramingArg::Auto => inspect::detect_framing(&data),
        FramingArg::Bare => Framing::Bare,
        FramingArg::SecurityHeader => Framing::SecurityHeader,
        FramingArg::Tpkt => Framing::Tpkt,
        FramingArg::Pcap => Framing::Pcap,
        FramingArg::NewLicenseInfo => Framing::NewLicenseInfo,
    };
    let decoded = inspect::decode(&data, framing, args.hex);
    print(&decoded, args);
    let name = args.input.display();
    for note in &decoded.notes {
        eprintln!("rdpele decode: {name}: {note}");
    }
    let mismatches = decoded
        .messages
        .iter()
        .filter(|m| args.roundtrip && !m.roundtrip_identical)
        .count();
    match &decoded.outcome {
        Outcome::Complete if decoded.messages.is_empty() => {
            eprintln!("rdpele decode: {name}: no licensing message found ({framing})");
            ExitCode::from(2)
        }
        Outcome::Complete if mismatches > 0 => {
            eprintln!("rdpele decode: {name}: {mismatches} message(s) re-encode differently");
            ExitCode::from(1)
        }
        Outcome::Complete => ExitCode::SUCCESS,
        Outcome::Malformed(error) => {
            eprintln!("rdpele decode: {name}: malformed input ({framing}): {error}");
            ExitCode::from(2)
        }
    }
}

fn read_input(path: &Path) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut data)
            .context("cannot read standard input")?;
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("cannot open {}", path.display()))?
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut data)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
    if u64::try_from(data.len()).unwrap_or(u64::MAX) > MAX_INPUT_BYTES {
        bail!("input is larger than {MAX_INPUT_BYTES} bytes");
    }
    Ok(data)
}

fn print(decoded: &Decoded, args: &DecodeArgs) {
    for message in &decoded.messages {
        let mut document = message.document.clone();
        if args.roundtrip {
            if let Value::Object(map) = &mut document {
                map.insert(
                    "roundtrip_identical".into(),
                    message.roundtrip_identical.into(),
                );
            }
        }
        if args.json {
            println!("{document}");
        } else {
            print!(
                "{}",
                inspect::render::tree(
                    &document,
                    &inspect::render::TreeOptions { full_hex: args.hex }
                )
            );
            println!();
        }
    }
}

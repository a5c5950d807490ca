//! `rdpele decode`: look inside captured licensing traffic.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, ValueEnum};
use rdpele_proto::crypto::{
    LicensingPrivateKey, Secret, CLIENT_RANDOM_LEN, PREMASTER_SECRET_LEN, SERVER_RANDOM_LEN,
};
use serde_json::Value;

use super::keys::parse_hex;
use crate::inspect::{self, Decoded, Framing, KeyOptions, Outcome};

/// Inputs larger than this are refused rather than read into memory.
const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Decode RDP licensing messages (MS-RDPELE) from a file or standard input.
///
/// The framing is detected: a bare licensing message (starting at LICENSE_PREAMBLE), a security
/// header followed by the message, one or more TPKT frames (TPKT / X.224 / MCS Send Data /
/// security header), a pcap or pcapng capture of an RDP connection that used Standard RDP
/// Security (TCP is reassembled; with --server-key each connection's client random is
/// decrypted from its Security Exchange and every RC4-encrypted PDU opened, its MAC checked,
/// as `rdp_security` in each licensing message shows), or a decrypted
/// NEW_LICENSE_INFO (the CAL in it is described: machine, user, validity, kind, type, license
/// server).
///
/// Decryption: with the licensing session keys (MS-RDPELE 5.1), every encrypted blob is shown
/// decrypted right after itself, named without `encrypted_`: platform_challenge (and
/// platform_challenge_text when it is UTF-16 text, "TEST" from Windows), hwid
/// (CLIENT_HARDWARE_ID), platform_challenge_response (PLATFORM_CHALLENGE_RESPONSE_DATA) and
/// license_info (NEW_LICENSE_INFO and its CAL), and premaster_secret when --server-key
/// recovers it; every MACData is checked, `mac_valid: true` or `false` next to `mac_data`. The
/// keys come from ClientRandom, ServerRandom and the premaster secret: each one from its
/// option, or else from the messages before it in the same input (ServerRandom from the
/// SERVER_LICENSE_REQUEST, ClientRandom from the CLIENT_NEW_LICENSE_REQUEST or
/// CLIENT_LICENSE_INFO, whose EncryptedPreMasterSecret --server-key decrypts). A note on stderr
/// names what could not be decrypted and what was missing. Hex may be upper or lower case, with
/// ':' or whitespace between bytes.
///
/// Exit status: 0 decoded; 1 the input could not be read, or --roundtrip found a difference;
/// 2 malformed input or no licensing message found (one line on stderr names the structure,
/// field and byte offset), or an option is invalid (bad hex, wrong length, unreadable key).
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
    /// ClientRandom, 32 bytes, for decrypting (default: from the client's New License Request
    /// or License Info in the input).
    #[arg(long, value_name = "HEX")]
    client_random: Option<String>,
    /// ServerRandom, 32 bytes, for decrypting (default: from the License Request in the
    /// input).
    #[arg(long, value_name = "HEX")]
    server_random: Option<String>,
    /// The decrypted premaster secret, 48 bytes.
    #[arg(long, value_name = "HEX")]
    premaster: Option<String>,
    /// The server's RSA private key (PKCS#8 or PKCS#1 PEM): recovers the premaster secret from
    /// the client's EncryptedPreMasterSecret and, in a capture of Standard RDP Security, the
    /// client random of its Security Exchange, so every encrypted PDU is decrypted and its MAC
    /// checked. May be given more than once; each key is tried. For `rdpele serve`:
    /// host_licensing_key.pem, and host_rdp_security_512.pem for clients that take only
    /// 512-bit keys (xfreerdp, rdesktop).
    #[arg(long, value_name = "PEM")]
    server_key: Vec<PathBuf>,
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
    let keys = match key_options(args) {
        Ok(keys) => keys,
        Err(error) => {
            eprintln!("rdpele decode: {error:#}");
            return ExitCode::from(2);
        }
    };
    let data = match super::read_input(&args.input, MAX_INPUT_BYTES) {
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
    let decoded = inspect::decode(&data, framing, args.hex, &keys);
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

fn key_options(args: &DecodeArgs) -> Result<KeyOptions> {
    Ok(KeyOptions {
        client_random: args
            .client_random
            .as_deref()
            .map(|text| parse_hex::<CLIENT_RANDOM_LEN>(text).context("--client-random"))
            .transpose()?,
        server_random: args
            .server_random
            .as_deref()
            .map(|text| parse_hex::<SERVER_RANDOM_LEN>(text).context("--server-random"))
            .transpose()?,
        premaster: args
            .premaster
            .as_deref()
            .map(|text| parse_hex::<PREMASTER_SECRET_LEN>(text).context("--premaster"))
            .transpose()?
            .map(Secret::new),
        server_keys: args
            .server_key
            .iter()
            .map(|path| server_key(path))
            .collect::<Result<_>>()?,
    })
}

fn server_key(path: &Path) -> Result<LicensingPrivateKey> {
    let pem = std::fs::read_to_string(path)
        .with_context(|| format!("--server-key: cannot read {}", path.display()))?;
    LicensingPrivateKey::from_pem(&pem).with_context(|| format!("--server-key {}", path.display()))
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
            super::print_out(&format!("{document}\n"));
        } else {
            super::print_out(&format!(
                "{}\n",
                inspect::render::tree(
                    &document,
                    &inspect::render::TreeOptions { full_hex: args.hex }
                )
            ));
        }
    }
}

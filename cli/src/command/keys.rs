//! `rdpele keys`: derive the licensing session keys from a premaster secret and the randoms.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::Args;
use rdpele_proto::crypto::{
    derive_session_keys, CLIENT_RANDOM_LEN, PREMASTER_SECRET_LEN, SERVER_RANDOM_LEN,
};
use serde_json::json;

/// Derive the licensing session keys (MS-RDPELE 5.1.2) from the premaster secret and randoms.
///
/// For decrypting and checking captured licensing traffic by hand. ServerRandom is in the
/// Server License Request; ClientRandom is in the client's New License Request or License Info.
/// The premaster secret travels RSA-encrypted next to ClientRandom, so only the client that
/// chose it, or the server holding the private key, can supply it.
///
/// Prints one JSON object, every value in hex:
///   master_secret             48 bytes
///   session_key_blob          48 bytes
///   mac_salt_key              16 bytes: keys MACData (MS-RDPELE 5.1.5)
///   licensing_encryption_key  16 bytes: the RC4 key of every encrypted licensing blob, each
///                             blob starting from a fresh RC4 state (5.1.3, 5.1.4)
///
/// Hex may be upper or lower case, with ':' or whitespace between bytes.
///
/// Exit status: 0 derived; 2 an argument is not hex or has the wrong length (one line on
/// stderr names it).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct KeysArgs {
    /// ClientRandom: 32 bytes.
    #[arg(long, value_name = "HEX")]
    client_random: String,
    /// ServerRandom: 32 bytes.
    #[arg(long, value_name = "HEX")]
    server_random: String,
    /// The decrypted premaster secret: 48 bytes.
    #[arg(long, value_name = "HEX")]
    premaster: String,
}

pub fn run(args: &KeysArgs) -> ExitCode {
    match derive(args) {
        Ok(document) => {
            super::print_out(&format!("{document}\n"));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rdpele keys: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn derive(args: &KeysArgs) -> Result<serde_json::Value> {
    let client_random =
        parse_hex::<CLIENT_RANDOM_LEN>(&args.client_random).context("--client-random")?;
    let server_random =
        parse_hex::<SERVER_RANDOM_LEN>(&args.server_random).context("--server-random")?;
    let premaster = parse_hex::<PREMASTER_SECRET_LEN>(&args.premaster).context("--premaster")?;
    let keys = derive_session_keys(&premaster, &client_random, &server_random);
    Ok(json!({
        "master_secret": hex::encode(keys.master_secret.expose()),
        "session_key_blob": hex::encode(keys.session_key_blob.expose()),
        "mac_salt_key": hex::encode(keys.mac_salt_key.expose()),
        "licensing_encryption_key": hex::encode(keys.licensing_encryption_key.expose()),
    }))
}

/// Exactly `N` bytes of hex, ignoring ':' and whitespace between digits (as Wireshark and
/// hexdumps print them).
pub(super) fn parse_hex<const N: usize>(text: &str) -> Result<[u8; N]> {
    let digits: String = text
        .chars()
        .filter(|c| *c != ':' && !c.is_whitespace())
        .collect();
    let bytes = hex::decode(&digits).map_err(|error| match error {
        hex::FromHexError::OddLength => {
            anyhow::anyhow!("odd number of hex digits ({})", digits.len())
        }
        other => anyhow::anyhow!("not hex: {other}"),
    })?;
    match <[u8; N]>::try_from(bytes.as_slice()) {
        Ok(array) => Ok(array),
        Err(_) => bail!(
            "expected {N} bytes ({} hex digits), got {}",
            N * 2,
            bytes.len()
        ),
    }
}

//! `rdpele cal`: look inside Client Access Licenses and issue ones of Windows' shape.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use rdpele_proto::cal::{
    build_cal, parse_cal_container, Cal, CalContainer, CalKind, CalRequest, CalType, LicenseSerial,
    LicenseServerIdentity, ProductVersion,
};
use rdpele_proto::crypto::LicensingPrivateKey;
use rdpele_proto::wire::ClientHardwareId;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::inspect::cal_view::{CalHolder, CalLicenseServer, CalValidity};
use crate::inspect::render::{tree, TreeOptions};
use rdpele_license_server::clock::format_instant;
use serde::Serialize;

/// CAL files are a few KB; anything this large is not one.
const MAX_INPUT_BYTES: u64 = 16 << 20;
/// Key size of a generated license server key (Windows' license servers use 2048 bits).
const GENERATED_KEY_BITS: usize = 2048;
const SECONDS_PER_DAY: u64 = 86_400;

/// Client Access Licenses (CALs): inspect the ones a Windows license server issues, issue ones
/// of the same shape.
///
/// A CAL is the certs-only PKCS#7 SignedData a license server sends in a New or Upgrade
/// License (NEW_LICENSE_INFO's pbLicenseInfo) and a client presents back in its License Info.
/// FreeRDP stores exactly those bytes in ~/.config/freerdp/licenses/<sha1(hostname)>.cal.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct CalArgs {
    #[command(subcommand)]
    command: CalCommand,
}

#[derive(Debug, Subcommand)]
enum CalCommand {
    Inspect(InspectArgs),
    // Boxed: the issue arguments are much larger than the inspect ones.
    Issue(Box<IssueArgs>),
}

/// Show what a CAL says: client machine, user and HWID, validity, temporary or permanent, per
/// device or per user, the licensed product and the license server that issued it.
///
/// FILE is a CAL (PKCS#7 DER: a .p7b, a FreeRDP .cal file, a pbLicenseInfo dump) or a
/// decrypted NEW_LICENSE_INFO holding one; which one is detected from the first byte.
///
/// The HWID is decoded from the client license's serialNumber attribute, where Windows stores
/// base64(HWID XOR a fixed 20-byte mask): `hwid` is the client's CLIENT_HARDWARE_ID,
/// `encoded_hwid` the 20 bytes as stored. `hwid_hash` (the name the licensing issue asked
/// for) is the 20 bytes the CAL stores for the HWID (masked, not a hash): the same value as
/// `encoded_hwid`.
///
/// Exit status: 0 shown; 1 the file could not be read; 2 not a CAL (one line on stderr names
/// the structure, field and byte offset).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct InspectArgs {
    /// The CAL or NEW_LICENSE_INFO file; `-` reads standard input.
    #[arg(value_name = "FILE|-")]
    input: PathBuf,
    /// Print one JSON document instead of a tree. Times are RFC 3339 (UTC), byte strings hex.
    #[arg(long)]
    json: bool,
}

/// Issue a CAL of the shape a Windows license server gives: the license server's self-signed
/// certificate and a client license for MACHINE / USER / HWID, signed RSA-SHA1 with the
/// license server's key, with Windows' extensions (MS-RDPELE 2.2.2.9).
///
/// The output is the PKCS#7 DER, usable as pbLicenseInfo and as a FreeRDP .cal file.
/// The same arguments (with --server-key and --not-before) give the same bytes.
///
/// The license server certificate is made from the key on each run: subject
/// CN=<--server-name>+L=<--server-domain>, valid from the CAL's start until the end of 2049
/// (or the CAL's end, if later).
///
/// Exit status: 0 written; 1 a file could not be read or written; 2 an argument is invalid
/// (one line on stderr names it).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct IssueArgs {
    /// Client machine name (the client license's CN).
    #[arg(long)]
    machine: String,
    /// Client user name (the client license's L).
    #[arg(long)]
    user: String,
    /// The client's CLIENT_HARDWARE_ID: 20 bytes in hex, as on the wire (PlatformId
    /// little-endian, then Data1..Data4). ':' or whitespace between bytes is allowed.
    #[arg(long, value_name = "HEX")]
    hwid: String,
    /// Temporary (the TEMPORARY_LICENSE flag) or permanent.
    #[arg(long, value_enum)]
    kind: KindArg,
    /// Validity in days from the start.
    #[arg(long, value_name = "N")]
    days: u32,
    /// Per device (product "A02-…") or per user ("C50-…").
    #[arg(long = "type", value_enum, default_value_t = TypeArg::PerDevice)]
    cal_type: TypeArg,
    /// The license server's RSA private key (PKCS#8 or PKCS#1 PEM). Without it a new
    /// 2048-bit key is generated, which takes a moment, and the CAL differs on every run.
    #[arg(long, value_name = "PEM")]
    server_key: Option<PathBuf>,
    /// Start of validity (RFC 3339, e.g. 2024-05-01T12:00:00Z); now if absent. Fractions of a
    /// second are dropped.
    #[arg(long, value_name = "RFC3339")]
    not_before: Option<String>,
    /// Licensed product version MAJOR.MINOR: 6.0 Windows Server 2008, 10.1 Windows Server 2019.
    #[arg(long, value_name = "MAJOR.MINOR", default_value = "6.0")]
    product_version: String,
    /// License server computer name.
    #[arg(long, default_value = "RDPELE-LS")]
    server_name: String,
    /// License server domain, or workgroup.
    #[arg(long, default_value = "WORKGROUP")]
    server_domain: String,
    /// License server product id.
    #[arg(long, default_value = "00000-000-0000000-00000")]
    server_product_id: String,
    /// Key pack id: the high 32 bits of the client license's serial number.
    #[arg(long, default_value_t = 2)]
    key_pack_id: u32,
    /// License id: the low 32 bits of the client license's serial number.
    #[arg(long, default_value_t = 1)]
    license_id: u32,
    /// Where to write the CAL.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum KindArg {
    Temporary,
    Permanent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum TypeArg {
    PerDevice,
    PerUser,
}

pub fn run(args: &CalArgs) -> ExitCode {
    match &args.command {
        CalCommand::Inspect(args) => inspect(args),
        CalCommand::Issue(args) => issue(args),
    }
}

fn inspect(args: &InspectArgs) -> ExitCode {
    let name = args.input.display();
    let data = match super::read_input(&args.input, MAX_INPUT_BYTES) {
        Ok(data) => data,
        Err(error) => {
            eprintln!("rdpele cal inspect: {error:#}");
            return ExitCode::from(1);
        }
    };
    let (container, cal) = match parse_cal_container(&data) {
        Ok(parsed) => parsed,
        Err(error) => {
            eprintln!("rdpele cal inspect: {name}: not a CAL: {error}");
            return ExitCode::from(2);
        }
    };
    let document = describe(container, &cal);
    if args.json {
        super::print_out(&format!("{document}\n"));
    } else {
        super::print_out(&tree(&document, &TreeOptions { full_hex: true }));
    }
    ExitCode::SUCCESS
}

/// The client license certificate, every field of it.
#[derive(Debug, Serialize)]
struct ClientLicenseView<'a> {
    #[serde(flatten)]
    holder: CalHolder<'a>,
    hwid_platform_id: u32,
    encoded_hwid: String,
    hwid_hash: String,
    #[serde(flatten)]
    validity: CalValidity,
    validity_days: Option<u64>,
    kind: &'static str,
    serial_number: String,
    key_pack_id: Option<u32>,
    license_id: Option<u32>,
    issuer: &'a str,
    extensions: Vec<Value>,
}

impl<'a> ClientLicenseView<'a> {
    fn of(cal: &'a Cal) -> Self {
        let client = &cal.client_license;
        let serial = client.serial();
        ClientLicenseView {
            holder: CalHolder::of(client),
            hwid_platform_id: client.hwid.platform_id,
            encoded_hwid: hex::encode(client.encoded_hwid),
            hwid_hash: hex::encode(client.encoded_hwid),
            validity: CalValidity::of(client),
            validity_days: client
                .not_after
                .duration_since(client.not_before)
                .map(|d| d.as_secs() / SECONDS_PER_DAY)
                .ok(),
            kind: cal.kind.name(),
            serial_number: hex::encode(&client.serial_number),
            key_pack_id: serial.map(|s| s.key_pack_id),
            license_id: serial.map(|s| s.license_id),
            issuer: &client.issuer,
            extensions: client
                .extensions
                .iter()
                .map(|e| json!({ "oid": e.oid, "critical": e.critical }))
                .collect(),
        }
    }
}

/// The CAL as one JSON document (the tree is rendered from it).
fn describe(container: CalContainer, cal: &Cal) -> Value {
    json!({
        "container": match container {
            CalContainer::Pkcs7 => "pkcs7",
            CalContainer::NewLicenseInfo => "new_license_info",
        },
        "kind": cal.kind.name(),
        "cal_type": cal.cal_type.name(),
        "client_license": ClientLicenseView::of(cal),
        "license_server": CalLicenseServer::of(cal),
        "product": {
            "product_id": cal.product.product_id,
            "sku": cal.product.sku,
            "version": {
                "major": cal.product.version.major,
                "minor": cal.product.version.minor,
            },
            "quantity": cal.product.quantity,
            "platform_id": cal.product.platform_id,
            "language_id": cal.product.language_id,
            "flags": cal.product.flags.0,
            "flag_names": cal.product.flags.names(),
        },
        "hydra_cert_version": cal.hydra_cert_version,
        "manufacturer": cal.manufacturer,
        "ms_18_9": cal.ms_18_9.as_deref().map(hex::encode),
        "certificates": cal.certificates.iter().map(|c| json!({
            "offset": c.offset,
            "subject": c.subject,
            "issuer": c.issuer,
            "serial_number": hex::encode(&c.serial_number),
        })).collect::<Vec<_>>(),
    })
}

fn issue(args: &IssueArgs) -> ExitCode {
    let request = match request(args) {
        Ok(request) => request,
        Err(error) => {
            eprintln!("rdpele cal issue: {error:#}");
            return ExitCode::from(2);
        }
    };
    let key = match server_key(args.server_key.as_deref()) {
        Ok(key) => key,
        Err(error) => {
            eprintln!("rdpele cal issue: {error:#}");
            return ExitCode::from(1);
        }
    };
    let written = issue_with(args, &request, key).and_then(|cal| {
        std::fs::write(&args.out, &cal)
            .with_context(|| format!("cannot write {}", args.out.display()))?;
        Ok(cal.len())
    });
    match written {
        Ok(len) => {
            super::print_out(&format!(
                "{}: {len} bytes, {} {} CAL for {} / {}, {} to {}\n",
                args.out.display(),
                request.product.sku,
                CalKind::of(&request.product).name(),
                request.machine,
                request.user,
                format_instant(request.not_before).as_deref().unwrap_or("?"),
                format_instant(request.not_after).as_deref().unwrap_or("?"),
            ));
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("rdpele cal issue: {error:#}");
            ExitCode::from(1)
        }
    }
}

fn issue_with(args: &IssueArgs, request: &CalRequest, key: LicensingPrivateKey) -> Result<Vec<u8>> {
    let end_of_2049 = UNIX_EPOCH + Duration::from_secs(2_524_607_999);
    let server = LicenseServerIdentity::self_signed(
        &args.server_name,
        &args.server_domain,
        &args.server_product_id,
        key.to_rsa_private_key().clone(),
        request.not_before,
        end_of_2049.max(request.not_after),
    )
    .context("license server certificate")?;
    build_cal(request, &server).context("client license")
}

fn request(args: &IssueArgs) -> Result<CalRequest> {
    let hwid = parse_hwid(&args.hwid).context("--hwid")?;
    let not_before = match &args.not_before {
        Some(text) => SystemTime::from(
            OffsetDateTime::parse(text, &Rfc3339)
                .with_context(|| format!("--not-before {text:?} is not RFC 3339"))?,
        ),
        None => SystemTime::now(),
    };
    let since_epoch = not_before
        .duration_since(UNIX_EPOCH)
        .map_err(|_| anyhow!("--not-before must not be before 1970"))?;
    let not_before = UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs());
    if args.days == 0 {
        bail!("--days must be at least 1");
    }
    let version = parse_version(&args.product_version).context("--product-version")?;
    let request = CalRequest::new(
        &args.machine,
        &args.user,
        hwid,
        match args.kind {
            KindArg::Temporary => CalKind::Temporary,
            KindArg::Permanent => CalKind::Permanent,
        },
        match args.cal_type {
            TypeArg::PerDevice => CalType::PerDevice,
            TypeArg::PerUser => CalType::PerUser,
        },
        version,
        not_before,
        Duration::from_secs(u64::from(args.days) * SECONDS_PER_DAY),
        LicenseSerial {
            key_pack_id: args.key_pack_id,
            license_id: args.license_id,
        },
    )?;
    Ok(request)
}

fn server_key(path: Option<&Path>) -> Result<LicensingPrivateKey> {
    match path {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            LicensingPrivateKey::from_pem(&pem)
                .with_context(|| format!("--server-key {}", path.display()))
        }
        None => {
            eprintln!(
                "rdpele cal issue: no --server-key: generating a {GENERATED_KEY_BITS}-bit RSA key \
                 for the license server (this takes a moment)"
            );
            LicensingPrivateKey::generate(GENERATED_KEY_BITS, &mut rand::rng())
                .context("generating the license server key")
        }
    }
}

fn parse_hwid(text: &str) -> Result<ClientHardwareId> {
    let digits: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    let bytes = hex::decode(&digits).map_err(|error| anyhow!("not hex: {error}"))?;
    let bytes = <[u8; ClientHardwareId::LEN]>::try_from(bytes.as_slice()).map_err(|_| {
        anyhow!(
            "{} bytes, a CLIENT_HARDWARE_ID has {}",
            bytes.len(),
            ClientHardwareId::LEN
        )
    })?;
    Ok(ClientHardwareId::from_bytes(bytes))
}

fn parse_version(text: &str) -> Result<ProductVersion> {
    let (major, minor) = text
        .split_once('.')
        .ok_or_else(|| anyhow!("{text:?} is not MAJOR.MINOR"))?;
    Ok(ProductVersion {
        major: major.parse().with_context(|| format!("major {major:?}"))?,
        minor: minor.parse().with_context(|| format!("minor {minor:?}"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hwid_and_version_arguments_parse() {
        let hwid = parse_hwid("02000000 f1:59:87:3e c9d898af 2402f8f3 293af026").ok();
        assert_eq!(hwid.map(|h| h.platform_id), Some(2));
        assert!(parse_hwid("0200").is_err());
        assert!(parse_hwid("zz").is_err());
        assert_eq!(
            parse_version("10.1").ok(),
            Some(ProductVersion::WINDOWS_SERVER_2019)
        );
        assert!(parse_version("10").is_err());
    }
}

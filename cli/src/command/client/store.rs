//! `rdpele client store`: show a license store, export it as a regedit `.reg` file, import one.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use rdpele_proto::cal::parse_cal;
use serde_json::{json, Value};

use super::{instant, local_hostname, LayoutArg};
use crate::command::{print_out, read_input};
use crate::inspect::cal_view::CalReceived;
use rdpele_emulator::client::{Layout, LicenseDir};

/// A .reg file of a few CALs is tens of KB; this bounds what import reads.
const MAX_REG_FILE: u64 = 16 << 20;

/// Show a license store, export it as a regedit .reg file, or import one.
#[derive(Debug, Args)]
pub(super) struct StoreArgs {
    #[command(subcommand)]
    command: StoreCommand,
}

#[derive(Debug, Subcommand)]
enum StoreCommand {
    Show(ShowArgs),
    Export(ExportArgs),
    Import(ImportArgs),
}

/// Show the store's HWID and CALs.
///
/// For each CAL: the product it is filed under, its kind, client and expiry. Exit status: 0
/// shown; 1 the store could not be read.
#[derive(Debug, Args)]
struct ShowArgs {
    /// The license store directory.
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// How the store is laid out.
    #[arg(long, value_enum, default_value_t = LayoutArg::Mstsc)]
    layout: LayoutArg,
    /// The client machine name a freerdp-layout store is kept for (this computer's by default).
    #[arg(long, value_name = "NAME")]
    machine: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// Export an mstsc-layout store as a regedit .reg file.
///
/// The file is a registry export of
/// HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\MSLicensing: UTF-16LE with a byte order mark, as
/// regedit writes ("Windows Registry Editor Version 5.00"). HardwareID\ClientHWID holds the
/// HWID; each Store\LICENSEnnn holds ClientLicense (the CAL), CompanyName, LicScope,
/// ProductID and Version. Exit status: 0 written; 1 failed.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
struct ExportArgs {
    /// The license store directory (mstsc layout).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The .reg file to write.
    #[arg(long, value_name = "FILE")]
    reg: PathBuf,
}

/// Make an mstsc-layout store from a .reg file.
///
/// The file is read as export writes it, or as REGEDIT4 / UTF-8, with comments and line
/// continuations: the HWID and every CAL byte for byte, in the same
/// LICENSEnnn slots. The store must be empty unless --replace. Exit status: 0 imported; 1
/// failed (errors name the .reg line).
#[derive(Debug, Args)]
struct ImportArgs {
    /// The license store directory to make (mstsc layout).
    #[arg(long, value_name = "DIR")]
    store: PathBuf,
    /// The .reg file to read; `-` reads standard input.
    #[arg(long, value_name = "FILE|-")]
    reg: PathBuf,
    /// Delete the store's HardwareID and Store first.
    #[arg(long)]
    replace: bool,
}

pub(super) fn run(args: &StoreArgs) -> Result<()> {
    match &args.command {
        StoreCommand::Show(show) => run_show(show),
        StoreCommand::Export(export) => run_export(export),
        StoreCommand::Import(import) => run_import(import),
    }
}

fn run_show(args: &ShowArgs) -> Result<()> {
    let machine = args.machine.clone().unwrap_or_else(local_hostname);
    let store = LicenseDir::open_as(&args.store, args.layout.layout(&machine))
        .context("opening the license store")?;
    let licenses: Vec<Value> = store
        .licenses()
        .iter()
        .map(|license| {
            let cal = parse_cal(&license.license_info);
            json!({
                "slot": license.slot,
                "file": license.path.display().to_string(),
                "product": license.product.as_ref().map(|product| json!({
                    "version": format!("{:#010x}", product.version),
                    "company_name": product.company_name,
                    "product_id": product.product_id,
                    "scope": product.scope,
                })),
                "cal_bytes": license.license_info.len(),
                "cal": cal.as_ref().ok().map(CalReceived::of),
                "cal_error": cal.as_ref().err().map(ToString::to_string),
            })
        })
        .collect();
    let shown = json!({
        "store": store.root().display().to_string(),
        "layout": store.layout().name(),
        "hwid": hex::encode(store.hwid().to_bytes()),
        "licenses": licenses,
    });
    if args.json {
        print_out(&format!("{shown}\n"));
        return Ok(());
    }
    let mut out = format!(
        "store: {} ({} layout)\nhwid: {}\n",
        store.root().display(),
        store.layout().name(),
        hex::encode(store.hwid().to_bytes())
    );
    if store.licenses().is_empty() {
        out.push_str("no CALs\n");
    }
    for license in store.licenses() {
        let filed = license.product.as_ref().map_or_else(
            || "any product".to_owned(),
            |product| {
                format!(
                    "{} {} version {:#010x}, scope {}",
                    product.company_name, product.product_id, product.version, product.scope
                )
            },
        );
        let cal = match parse_cal(&license.license_info) {
            Ok(cal) => format!(
                "{} CAL for {} (user {}), expires {}",
                cal.kind.name(),
                cal.client_license.machine,
                cal.client_license.user,
                instant(cal.client_license.not_after)
            ),
            Err(error) => format!("unreadable CAL ({error})"),
        };
        let name = license
            .path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        out.push_str(&format!("{name}: {filed}: {cal}\n"));
    }
    print_out(&out);
    Ok(())
}

fn run_export(args: &ExportArgs) -> Result<()> {
    let store = LicenseDir::open(&args.store).context("opening the license store")?;
    store.export_reg(&args.reg)?;
    print_out(&format!(
        "exported the HWID and {} CAL(s) of {} to {}\n",
        store.licenses().len(),
        store.root().display(),
        args.reg.display()
    ));
    Ok(())
}

fn run_import(args: &ImportArgs) -> Result<()> {
    let reg = read_input(&args.reg, MAX_REG_FILE)?;
    if args.replace {
        LicenseDir::reset(&args.store, &Layout::Mstsc).context("clearing the license store")?;
    }
    let store = LicenseDir::import_reg(&args.store, &args.reg, &reg)?;
    print_out(&format!(
        "imported the HWID and {} CAL(s) into {}\n",
        store.licenses().len(),
        store.root().display()
    ));
    Ok(())
}

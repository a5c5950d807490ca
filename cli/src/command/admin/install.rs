//! `rdpele admin install`: install a CAL pack (Win32_TSLicenseKeyPack), as the license
//! server's rules allow.

use anyhow::anyhow;
use clap::Args;
use serde_json::json;

use super::args::{instant, parse_count};
use super::{answer, CommandResult, Context, Failure};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{KeyPack, LicensingMode, WindowsVersion};
use rdpele_license_server::policy::{self, versions::version_name};
use rdpele_license_server::store::{NewKeyPack, Store};

/// Install a pack of CALs on the license server.
///
/// A license server holds CAL packs of its own version or older: a 2022 pack on a 2019
/// license server is refused (exit 3) — upgrade it first with `server set --version`. The
/// pack gets the next KeyPackId and is installed at the virtual now; its CALs are free at
/// once (an unactivated license server still issues only temporary CALs).
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(super) struct InstallArgs {
    /// The CALs' type: per device or per user.
    #[arg(long = "type", value_enum)]
    key_pack_type: LicensingMode,
    /// The CALs' Windows version.
    #[arg(long, value_enum)]
    version: WindowsVersion,
    /// How many CALs the pack holds (1 to 4294967295).
    #[arg(long, value_name = "N", value_parser = parse_count, allow_negative_numbers = true)]
    count: u32,
}

pub(super) fn run(context: &Context<'_>, args: &InstallArgs) -> CommandResult {
    let store = Store::open(context.data)?;
    let now = Clock::system().now(&store)?;
    let settings = store.settings()?;
    let pack = NewKeyPack {
        key_pack_type: args.key_pack_type,
        product_version: args.version,
        total_licenses: args.count,
        installed_at: now,
    };
    let proposed = KeyPack {
        key_pack_id: 0,
        key_pack_type: pack.key_pack_type,
        product_version: pack.product_version,
        total_licenses: pack.total_licenses,
        installed_at: pack.installed_at,
    };
    policy::install_pack(&settings, &proposed).map_err(|error| Failure::refused(anyhow!(error)))?;
    let installed = store.install_pack(&pack)?;
    let document = json!({
        "key_pack_id": installed.key_pack_id,
        "type": installed.key_pack_type.as_str(),
        "version": installed.product_version.as_str(),
        "total_licenses": installed.total_licenses,
        "installed_at": instant(installed.installed_at),
    });
    answer(context, &document, || {
        format!(
            "installed key pack {}: {} {} CALs, {}\n",
            installed.key_pack_id,
            installed.total_licenses,
            installed.key_pack_type.as_str(),
            version_name(installed.product_version)
        )
    });
    Ok(())
}

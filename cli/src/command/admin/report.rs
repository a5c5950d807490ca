//! `rdpele admin report`: the license server as RD Licensing Manager shows it — the key packs
//! (Win32_TSLicenseKeyPack, with the built-in Temporary and OverUsed pools) and the licenses
//! issued (Win32_TSIssuedLicense) — as text, JSON or CSV, and the pools over time as SVG.

use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::{anyhow, Context as _};
use clap::Args;
use serde_json::{json, Map, Value};

use super::args::instant;
use super::{plot, CommandResult, Context, Failure};
use rdpele_license_server::clock::Clock;
use rdpele_license_server::model::{IssuedLicense, LicenseStatus, LicensingMode};
use rdpele_license_server::pool_over_time::pool_over_time;
use rdpele_license_server::store::{PoolReport, Store};

/// Report the CAL pools and who holds which CAL, like RD Licensing Manager.
///
/// Key packs, at the virtual now: per pack installed, issued (active and unexpired),
/// available, revoked (back in the pool while their holders keep them until they expire) and
/// overused; then the built-in pools outside packs, per type and version: temporary CALs and
/// OverUsed per-user CALs.
///
/// Licenses: per license held now (temporary, active or revoked, and unexpired; with --all
/// every license ever issued, superseded and expired ones too): id, key pack, type, kind,
/// status, version, machine (the name at first issue), user, HWID, issued, expires, revoked,
/// validated (a temporary CAL: when a sign-in completed with it, which lets it be upgraded).
///
/// --json: {"now", "packs": [...], "totals": {"per-device": {...}, "per-user": {...}},
/// "licenses": [...], "plot"}. --csv: the packs table, a blank line, the licenses table,
/// each with a header line.
///
/// --plot FILE.svg also draws the pools over virtual time (from the store's event log): per
/// day installed, in use, temporary, revoked and OverUsed CALs, one chart per type.
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub(super) struct ReportArgs {
    /// Print CSV instead of text.
    #[arg(long)]
    csv: bool,
    /// List every license ever issued, not only those held now.
    #[arg(long)]
    all: bool,
    /// Draw the CAL pools over virtual time into this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    plot: Option<PathBuf>,
}

/// A table: named columns, and rows of values in that order.
struct Table {
    columns: &'static [&'static str],
    rows: Vec<Vec<Value>>,
}

impl Table {
    fn json(&self) -> Value {
        Value::Array(
            self.rows
                .iter()
                .map(|row| {
                    let object: Map<String, Value> = self
                        .columns
                        .iter()
                        .zip(row)
                        .map(|(column, value)| ((*column).to_owned(), value.clone()))
                        .collect();
                    Value::Object(object)
                })
                .collect(),
        )
    }

    fn csv(&self) -> String {
        let mut out = self.columns.join(",");
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|value| csv_cell(&cell(value, ""))).collect();
            out.push_str(&cells.join(","));
            out.push('\n');
        }
        out
    }

    /// Columns padded to their widest cell.
    fn text(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| row.iter().map(|value| cell(value, "-")).collect())
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, column)| {
                cells
                    .iter()
                    .filter_map(|row| row.get(index))
                    .map(|text| text.chars().count())
                    .chain([column.chars().count()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |texts: Vec<&str>| {
            let padded: Vec<String> = texts
                .iter()
                .zip(&widths)
                .map(|(text, width)| format!("{text:<width$}"))
                .collect();
            format!("{}\n", padded.join("  ").trim_end())
        };
        let mut out = line(self.columns.to_vec());
        for row in &cells {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// A value as a text or CSV cell; `null` is `missing`.
fn cell(value: &Value, missing: &str) -> String {
    match value {
        Value::Null => missing.to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// RFC 4180 quoting, when the cell needs it.
fn csv_cell(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

const PACK_COLUMNS: &[&str] = &[
    "key_pack_id",
    "key_pack",
    "type",
    "version",
    "installed",
    "issued",
    "available",
    "revoked",
    "overused",
    "installed_at",
];

const LICENSE_COLUMNS: &[&str] = &[
    "license_id",
    "key_pack_id",
    "type",
    "kind",
    "status",
    "version",
    "machine",
    "user",
    "hwid",
    "issued",
    "expires",
    "revoked",
    "validated",
];

/// The packs table: installed packs, then the built-in temporary and OverUsed pools.
fn packs(report: &PoolReport) -> Table {
    let mut rows = Vec::new();
    for pack in &report.packs {
        rows.push(vec![
            json!(pack.pack.key_pack_id),
            json!("installed"),
            json!(pack.pack.key_pack_type.as_str()),
            json!(pack.pack.product_version.as_str()),
            json!(pack.installed),
            json!(pack.issued),
            json!(pack.available),
            json!(pack.revoked),
            json!(0),
            json!(instant(pack.pack.installed_at)),
        ]);
    }
    for (name, counts) in [
        ("temporary", &report.temporary),
        ("overused", &report.overused),
    ] {
        for count in counts {
            let overused = if name == "overused" { count.issued } else { 0 };
            rows.push(vec![
                Value::Null,
                json!(name),
                json!(count.license_type.as_str()),
                json!(count.product_version.as_str()),
                json!(0),
                json!(count.issued),
                json!(0),
                json!(0),
                json!(overused),
                Value::Null,
            ]);
        }
    }
    Table {
        columns: PACK_COLUMNS,
        rows,
    }
}

/// Per licensing mode: the packs' sums and the built-in pools.
fn totals(report: &PoolReport) -> Value {
    let mut totals = Map::new();
    for mode in [LicensingMode::PerDevice, LicensingMode::PerUser] {
        let packs = report
            .packs
            .iter()
            .filter(|pack| pack.pack.key_pack_type == mode);
        let sum = |field: fn(&rdpele_license_server::store::PackReport) -> u32| {
            packs
                .clone()
                .map(|pack| u64::from(field(pack)))
                .sum::<u64>()
        };
        let built_in = |counts: &[rdpele_license_server::store::BuiltInCount]| {
            counts
                .iter()
                .filter(|count| count.license_type == mode)
                .map(|count| u64::from(count.issued))
                .sum::<u64>()
        };
        totals.insert(
            mode.as_str().to_owned(),
            json!({
                "installed": sum(|pack| pack.installed),
                "issued": sum(|pack| pack.issued),
                "available": sum(|pack| pack.available),
                "revoked": sum(|pack| pack.revoked),
                "temporary": built_in(&report.temporary),
                "overused": built_in(&report.overused),
            }),
        );
    }
    Value::Object(totals)
}

/// Held now: a temporary, active or revoked license not yet expired.
fn held(license: &IssuedLicense, now: SystemTime) -> bool {
    matches!(
        license.status,
        LicenseStatus::Temporary | LicenseStatus::Active | LicenseStatus::Revoked
    ) && license.expiration_date > now
}

/// The status as it stands at `now`: a license past its expiration date is expired, whether
/// or not a decision has marked it so yet.
fn status_at(license: &IssuedLicense, now: SystemTime) -> &'static str {
    let lapsed = matches!(
        license.status,
        LicenseStatus::Temporary | LicenseStatus::Active | LicenseStatus::Revoked
    ) && license.expiration_date <= now;
    if lapsed {
        LicenseStatus::Expired.as_str()
    } else {
        license.status.as_str()
    }
}

/// Temporary or permanent: a per-device license taken from no pack is a temporary CAL,
/// whatever its status became (superseded by its upgrade, expired).
fn kind(license: &IssuedLicense) -> &'static str {
    if license.license_type == LicensingMode::PerDevice && license.key_pack_id.is_none() {
        "temporary"
    } else {
        "permanent"
    }
}

fn licenses(all: &[IssuedLicense], now: SystemTime, every: bool) -> Table {
    let rows = all
        .iter()
        .filter(|license| every || held(license, now))
        .map(|license| {
            vec![
                json!(license.license_id),
                json!(license.key_pack_id),
                json!(license.license_type.as_str()),
                json!(kind(license)),
                json!(status_at(license, now)),
                json!(license.product_version.as_str()),
                json!(license.issued_to_computer),
                json!(license.issued_to_user),
                json!(hex::encode(license.hardware_id)),
                json!(instant(license.issue_date)),
                json!(instant(license.expiration_date)),
                json!(license.revoked_at.map(instant)),
                json!(license.validated_at.map(instant)),
            ]
        })
        .collect();
    Table {
        columns: LICENSE_COLUMNS,
        rows,
    }
}

pub(super) fn run(context: &Context<'_>, args: &ReportArgs) -> CommandResult {
    if args.csv && context.json {
        return Err(Failure::invalid(anyhow!(
            "--json and --csv exclude each other"
        )));
    }
    let store = Store::open(context.data)?;
    let now = Clock::system().now(&store)?;
    let pool = store.pool_report(now)?;
    let issued = store.issued_licenses()?;
    let plot_file = match &args.plot {
        Some(path) => {
            let packs: Vec<_> = store
                .packs(now)?
                .into_iter()
                .map(|usage| usage.pack)
                .collect();
            let events = store.license_events()?;
            let plot = pool_over_time(&packs, &issued, &events, now)?;
            let document = plot::svg(&plot)?;
            std::fs::write(path, document)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Some(path.display().to_string())
        }
        None => None,
    };
    let pack_table = packs(&pool);
    let license_table = licenses(&issued, now, args.all);
    if context.json {
        let document = json!({
            "now": instant(now),
            "packs": pack_table.json(),
            "totals": totals(&pool),
            "licenses": license_table.json(),
            "plot": plot_file,
        });
        super::super::print_out(&format!("{document}\n"));
    } else if args.csv {
        super::super::print_out(&format!("{}\n{}", pack_table.csv(), license_table.csv()));
    } else {
        let which = if args.all {
            "every license issued"
        } else {
            "licenses held now"
        };
        super::super::print_out(&format!(
            "CAL pools at {}\n\n{}\n{which}\n\n{}",
            instant(now),
            pack_table.text(),
            license_table.text()
        ));
        if let Some(file) = plot_file {
            super::super::print_out(&format!("\nplot written to {file}\n"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_they_must_be() {
        assert_eq!(csv_cell("WS-01"), "WS-01");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }

    #[test]
    fn text_tables_line_up() {
        let table = Table {
            columns: &["id", "machine"],
            rows: vec![vec![json!(1), json!("WS-01")], vec![json!(12), Value::Null]],
        };
        assert_eq!(table.text(), "id  machine\n1   WS-01\n12  -\n");
        assert_eq!(table.csv(), "id,machine\n1,WS-01\n12,\n");
    }
}

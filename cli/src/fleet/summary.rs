//! What a fleet run came to: outcomes per day and in all, CALs held by kind, the license
//! server's own totals beside them, as a text table or a JSON document for CI.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::held::Held;
use super::outcome::Outcome;
use rdpele_license_server::clock::format_instant;
use rdpele_license_server::model::LicensingMode;
use rdpele_license_server::store::PoolReport;

/// Connections by outcome, and refusals and failures by reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub connections: u64,
    pub temporary: u64,
    pub permanent: u64,
    pub renewed: u64,
    pub valid: u64,
    pub refused: u64,
    pub failed: u64,
    /// By Licensing Error Message code and Set Error Info.
    pub refusals: BTreeMap<String, u64>,
    /// By what went wrong.
    pub failures: BTreeMap<String, u64>,
}

impl Tally {
    pub fn add(&mut self, outcome: &Outcome) {
        self.connections += 1;
        match outcome {
            Outcome::Temporary => self.temporary += 1,
            Outcome::Permanent => self.permanent += 1,
            Outcome::Renewed => self.renewed += 1,
            Outcome::Valid => self.valid += 1,
            Outcome::Refused(refusal) => {
                self.refused += 1;
                *self.refusals.entry(refusal.label()).or_default() += 1;
            }
            Outcome::Failed { reason } => {
                self.failed += 1;
                *self.failures.entry(reason.clone()).or_default() += 1;
            }
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        self.connections += other.connections;
        self.temporary += other.temporary;
        self.permanent += other.permanent;
        self.renewed += other.renewed;
        self.valid += other.valid;
        self.refused += other.refused;
        self.failed += other.failed;
        for (reason, count) in &other.refusals {
            *self.refusals.entry(reason.clone()).or_default() += count;
        }
        for (reason, count) in &other.failures {
            *self.failures.entry(reason.clone()).or_default() += count;
        }
    }

    fn json(&self) -> Value {
        json!({
            "connections": self.connections,
            "temporary": self.temporary,
            "permanent": self.permanent,
            "renewed": self.renewed,
            "valid": self.valid,
            "refused": self.refused,
            "failed": self.failed,
            "refusals": self.refusals,
            "failures": self.failures,
        })
    }
}

/// One virtual day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayReport {
    /// From 0.
    pub day: u32,
    pub date: time::Date,
    pub tally: Tally,
    /// CALs held once the day is over: right after the clock moved to the next day.
    pub held: Held,
}

/// The license server's totals at the end, as `rdpele admin report --json` computes them
/// (`totals`), for the CALs [`Held`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerTotals {
    pub per_device_issued: u64,
    pub per_device_revoked: u64,
    pub per_device_temporary: u64,
    pub per_user_issued: u64,
    pub per_user_overused: u64,
}

impl ServerTotals {
    pub fn from_report(report: &PoolReport) -> Self {
        let packs =
            |mode: LicensingMode, field: fn(&rdpele_license_server::store::PackReport) -> u32| {
                report
                    .packs
                    .iter()
                    .filter(|pack| pack.pack.key_pack_type == mode)
                    .map(|pack| u64::from(field(pack)))
                    .sum::<u64>()
            };
        let built_in = |counts: &[rdpele_license_server::store::BuiltInCount], mode| {
            counts
                .iter()
                .filter(|count| count.license_type == mode)
                .map(|count| u64::from(count.issued))
                .sum::<u64>()
        };
        Self {
            per_device_issued: packs(LicensingMode::PerDevice, |pack| pack.issued),
            per_device_revoked: packs(LicensingMode::PerDevice, |pack| pack.revoked),
            per_device_temporary: built_in(&report.temporary, LicensingMode::PerDevice),
            per_user_issued: packs(LicensingMode::PerUser, |pack| pack.issued),
            per_user_overused: built_in(&report.overused, LicensingMode::PerUser),
        }
    }

    /// Whether the fleet's count of CALs held equals the server's (see [`super::held`]).
    pub fn reconciles(&self, held: &Held) -> bool {
        held.per_device.permanent == self.per_device_issued + self.per_device_revoked
            && held.per_device.temporary == self.per_device_temporary
            && held.per_user.recorded == self.per_user_issued + self.per_user_overused
    }
}

/// The whole run.
#[derive(Clone, Debug)]
pub struct FleetReport {
    pub connect: String,
    pub devices: u32,
    pub users: u32,
    pub pattern: &'static str,
    pub seed: u64,
    pub concurrency: usize,
    pub days: Vec<DayReport>,
    pub totals: Tally,
    /// CALs held at the end (the last day's [`DayReport::held`]).
    pub held: Held,
    pub server: ServerTotals,
    /// Virtual time at the start and at the end.
    pub started_at: SystemTime,
    pub ended_at: SystemTime,
    pub wall: Duration,
}

impl FleetReport {
    pub fn connections_per_second(&self) -> f64 {
        let seconds = self.wall.as_secs_f64();
        if seconds > 0.0 {
            // A fleet makes at most MAX_DEVICES × MAX_DAYS connections, well within u32.
            f64::from(u32::try_from(self.totals.connections).unwrap_or(u32::MAX)) / seconds
        } else {
            0.0
        }
    }

    pub fn reconciled(&self) -> bool {
        self.server.reconciles(&self.held)
    }

    /// The JSON document: settings, per-day counts, totals, CALs held against the server's
    /// totals, and under `run` the only fields that depend on when it ran (virtual start and
    /// end, wall time, throughput).
    pub fn json(&self) -> Value {
        let days: Vec<Value> = self
            .days
            .iter()
            .map(|day| {
                json!({
                    "day": day.day,
                    "date": date_text(day.date),
                    "weekday": weekday_text(day.date),
                    "outcomes": day.tally.json(),
                    "held": held_json(&day.held),
                })
            })
            .collect();
        json!({
            "connect": self.connect,
            "devices": self.devices,
            "users": self.users,
            "days": self.days.len(),
            "pattern": self.pattern,
            "seed": self.seed,
            "concurrency": self.concurrency,
            "per_day": days,
            "totals": self.totals.json(),
            "held": held_json(&self.held),
            "server": {
                "per-device": {
                    "issued": self.server.per_device_issued,
                    "revoked": self.server.per_device_revoked,
                    "temporary": self.server.per_device_temporary,
                },
                "per-user": {
                    "issued": self.server.per_user_issued,
                    "overused": self.server.per_user_overused,
                },
            },
            "reconciled": self.reconciled(),
            "run": {
                "started_at": format_instant(self.started_at),
                "ended_at": format_instant(self.ended_at),
                "wall_seconds": self.wall.as_secs_f64(),
                "connections_per_second": self.connections_per_second(),
            },
        })
    }

    /// The text summary: a line per day, the totals, refusals and failures by reason, CALs
    /// held at the end against the server's report.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let header = [
            "day",
            "date",
            "conn",
            "temp",
            "perm",
            "renewed",
            "valid",
            "refused",
            "failed",
            "held perm",
            "held temp",
            "users rec",
        ];
        let mut rows: Vec<[String; 12]> = self
            .days
            .iter()
            .map(|day| {
                let held = &day.held;
                row(
                    day.day.to_string(),
                    format!("{} {}", date_text(day.date), weekday_text(day.date)),
                    &day.tally,
                    [
                        held.per_device.permanent,
                        held.per_device.temporary,
                        held.per_user.recorded,
                    ],
                )
            })
            .collect();
        rows.push(row(
            "all".to_owned(),
            String::new(),
            &self.totals,
            [
                self.held.per_device.permanent,
                self.held.per_device.temporary,
                self.held.per_user.recorded,
            ],
        ));
        out.push_str(&table(&header, &rows));
        for (title, reasons) in [
            ("refusals", &self.totals.refusals),
            ("failures", &self.totals.failures),
        ] {
            if !reasons.is_empty() {
                let _ = writeln!(out, "\n{title}:");
                for (reason, count) in reasons {
                    let _ = writeln!(out, "  {count:>8}  {reason}");
                }
            }
        }
        let server = &self.server;
        let held = &self.held;
        let _ = writeln!(
            out,
            "\nCALs held at the end (virtual {}), fleet / license server:",
            format_instant(self.ended_at).unwrap_or_else(|| "?".to_owned())
        );
        let lines = [
            (
                "per-device permanent",
                held.per_device.permanent,
                server.per_device_issued + server.per_device_revoked,
                "issued + revoked",
            ),
            (
                "per-device temporary",
                held.per_device.temporary,
                server.per_device_temporary,
                "temporary",
            ),
            (
                "per-user recorded",
                held.per_user.recorded,
                server.per_user_issued + server.per_user_overused,
                "issued + overused",
            ),
        ];
        for (kind, fleet, server, field) in lines {
            let _ = writeln!(
                out,
                "  {kind:<22} {fleet:>8} / {server:<8} (report: {field})"
            );
        }
        let _ = writeln!(
            out,
            "  {}",
            if self.reconciled() {
                "the fleet's totals equal the license server's report"
            } else {
                "the fleet's totals DIFFER from the license server's report (other clients, \
                 revocations, or failed connections)"
            }
        );
        let _ = writeln!(
            out,
            "\n{} connections over {} virtual days in {:.1} s ({:.0} connections/s)",
            self.totals.connections,
            self.days.len(),
            self.wall.as_secs_f64(),
            self.connections_per_second()
        );
        out
    }
}

fn row(day: String, date: String, tally: &Tally, held: [u64; 3]) -> [String; 12] {
    let [permanent, temporary, users] = held;
    [
        day,
        date,
        tally.connections.to_string(),
        tally.temporary.to_string(),
        tally.permanent.to_string(),
        tally.renewed.to_string(),
        tally.valid.to_string(),
        tally.refused.to_string(),
        tally.failed.to_string(),
        permanent.to_string(),
        temporary.to_string(),
        users.to_string(),
    ]
}

/// Columns right-aligned to their widest cell, the date left-aligned.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(|title| title.chars().count());
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column == 1 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", padded.join("  ").trim_end());
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

fn held_json(held: &Held) -> Value {
    json!({
        "per-device": {
            "permanent": held.per_device.permanent,
            "temporary": held.per_device.temporary,
        },
        "per-user": {
            "recorded": held.per_user.recorded,
        },
    })
}

pub fn date_text(date: time::Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn weekday_text(date: time::Date) -> &'static str {
    use time::Weekday;
    match date.weekday() {
        Weekday::Monday => "Mon",
        Weekday::Tuesday => "Tue",
        Weekday::Wednesday => "Wed",
        Weekday::Thursday => "Thu",
        Weekday::Friday => "Fri",
        Weekday::Saturday => "Sat",
        Weekday::Sunday => "Sun",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::held::{PerDevice, PerUser};
    use crate::fleet::outcome::Refusal;
    use rdpele_proto::wire::ErrorCode;

    #[test]
    fn tallies_add_and_merge() {
        let mut day = Tally::default();
        day.add(&Outcome::Temporary);
        day.add(&Outcome::Valid);
        day.add(&Outcome::Refused(Refusal {
            error_code: ErrorCode::ERR_INVALID_CLIENT,
            error_info: Some(0x102),
        }));
        day.add(&Outcome::Failed {
            reason: "TLS handshake: reset".to_owned(),
        });
        let mut total = Tally::default();
        total.merge(&day);
        total.merge(&day);
        assert_eq!(
            (
                total.connections,
                total.temporary,
                total.valid,
                total.refused,
                total.failed
            ),
            (8, 2, 2, 2, 2)
        );
        assert_eq!(
            total
                .refusals
                .get("ERR_INVALID_CLIENT / ERRINFO_LICENSE_NO_LICENSE"),
            Some(&2)
        );
    }

    #[test]
    fn server_totals_reconcile_by_the_documented_sums() {
        let server = ServerTotals {
            per_device_issued: 7,
            per_device_revoked: 1,
            per_device_temporary: 4,
            per_user_issued: 0,
            per_user_overused: 0,
        };
        let mut held = Held {
            per_device: PerDevice {
                permanent: 8,
                temporary: 4,
            },
            per_user: PerUser::default(),
        };
        assert!(server.reconciles(&held));
        held.per_device.temporary = 3;
        assert!(!server.reconciles(&held));
    }

    #[test]
    fn tables_line_up() {
        let rows = [
            ["1".to_owned(), "2026-03-02".to_owned()],
            ["12".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["day", "date"], &rows),
            "day  date\n  1  2026-03-02\n 12\n"
        );
    }
}

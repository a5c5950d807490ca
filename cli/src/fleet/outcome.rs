//! What one connection of a device came to, in the fleet's terms: the licensing outcome named
//! by the CAL the device held before and the one it holds after.

use rdpele_proto::cal::CalKind;
use rdpele_proto::envelope::ErrorInfo;
use rdpele_proto::wire::ErrorCode;

use super::device::HeldCal;
use rdpele_emulator::client::{ClientError, ClientReport, LicensingOutcome};

/// One connection's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A New License with a temporary CAL (a device's first logon).
    Temporary,
    /// A permanent CAL for a device that held none or a temporary one (the upgrade).
    Permanent,
    /// A permanent CAL replacing a permanent one (within 7 days of its expiry, or after it).
    Renewed,
    /// STATUS_VALID_CLIENT: the presented CAL stands, or the host admitted the device without.
    Valid,
    /// The host refused the device.
    Refused(Refusal),
    /// No licensing outcome the fleet can count: the connection failed, the client gave up on
    /// licensing, or the CAL it was given cannot be read. `reason` groups them in the summary.
    Failed { reason: String },
}

/// A refusal: the Licensing Error Message's code and the Set Error Info that followed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error_code: ErrorCode,
    pub error_info: Option<u32>,
}

impl Refusal {
    /// `ERR_INVALID_CLIENT / ERRINFO_LICENSE_NO_LICENSE`: what the summary groups by.
    pub fn label(&self) -> String {
        let code = self
            .error_code
            .name()
            .map_or_else(|| format!("{:#x}", self.error_code.0), str::to_owned);
        match self.error_info {
            Some(info) => format!("{code} / {}", error_info_name(info)),
            None => code,
        }
    }
}

/// The outcome of a connection by a device that held `before`; `after` is the CAL it was
/// given, read (`None` when none was stored; `Err` when it could not be read).
pub fn classify(
    before: Option<&HeldCal>,
    result: &Result<ClientReport, ClientError>,
    after: Option<&Result<HeldCal, String>>,
) -> Outcome {
    let report = match result {
        Ok(report) => report,
        Err(error) => {
            return Outcome::Failed {
                reason: error.to_string(),
            }
        }
    };
    match &report.licensing {
        LicensingOutcome::Valid => Outcome::Valid,
        LicensingOutcome::Refused { error_code, .. } => Outcome::Refused(Refusal {
            error_code: *error_code,
            error_info: report.error_info,
        }),
        LicensingOutcome::Aborted { error_code, reason } => Outcome::Failed {
            reason: format!("the client ended licensing: {reason} ({error_code})"),
        },
        LicensingOutcome::New | LicensingOutcome::Upgraded => match after {
            None => Outcome::Failed {
                reason: "licensed without a CAL to store".to_owned(),
            },
            Some(Err(error)) => Outcome::Failed {
                reason: format!("the CAL issued cannot be read: {error}"),
            },
            Some(Ok(cal)) => match (cal.kind, before.map(|held| held.kind)) {
                (CalKind::Temporary, _) => Outcome::Temporary,
                (CalKind::Permanent, Some(CalKind::Permanent)) => Outcome::Renewed,
                (CalKind::Permanent, _) => Outcome::Permanent,
            },
        },
    }
}

/// The name of a Set Error Info code (MS-RDPBCGR 2.2.5.1.1) a licensing refusal comes with;
/// other codes in hex: a fleet counts licensing refusals, and names only those.
pub fn error_info_name(code: u32) -> String {
    let info = ErrorInfo(code);
    if info.is_licensing() {
        info.to_string()
    } else {
        format!("ERRINFO {code:#x}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use rdpele_proto::wire::StateTransition;

    use super::*;
    use rdpele_emulator::client::{Ending, Timings};

    fn report(licensing: LicensingOutcome, error_info: Option<u32>) -> ClientReport {
        ClientReport {
            licensing,
            stored: None,
            challenged: false,
            active: false,
            error_info,
            ending: Ending::ClientDisconnected,
            timings: Timings {
                connection: Duration::ZERO,
                licensing: Duration::ZERO,
                activation: None,
                total: Duration::ZERO,
            },
        }
    }

    fn cal(kind: CalKind) -> HeldCal {
        HeldCal {
            kind,
            license_id: 1,
            not_after: SystemTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn the_cal_before_and_after_name_the_outcome() {
        let new = Ok(report(LicensingOutcome::New, None));
        let upgraded = Ok(report(LicensingOutcome::Upgraded, None));
        let temporary = cal(CalKind::Temporary);
        let permanent = cal(CalKind::Permanent);
        assert_eq!(
            classify(None, &new, Some(&Ok(temporary))),
            Outcome::Temporary
        );
        assert_eq!(
            classify(Some(&temporary), &upgraded, Some(&Ok(permanent))),
            Outcome::Permanent
        );
        assert_eq!(
            classify(Some(&permanent), &upgraded, Some(&Ok(permanent))),
            Outcome::Renewed
        );
        assert!(matches!(classify(None, &new, None), Outcome::Failed { .. }));
        assert_eq!(
            classify(
                Some(&permanent),
                &Ok(report(LicensingOutcome::Valid, None)),
                None
            ),
            Outcome::Valid
        );
    }

    #[test]
    fn refusals_are_labelled_with_code_and_error_info() {
        let refused = Ok(report(
            LicensingOutcome::Refused {
                error_code: ErrorCode::ERR_INVALID_CLIENT,
                state_transition: StateTransition::ST_TOTAL_ABORT,
            },
            Some(0x102),
        ));
        let Outcome::Refused(refusal) = classify(None, &refused, None) else {
            panic!("not a refusal");
        };
        assert_eq!(
            refusal.label(),
            "ERR_INVALID_CLIENT / ERRINFO_LICENSE_NO_LICENSE"
        );
        assert_eq!(error_info_name(0xC), "ERRINFO 0xc");
    }
}

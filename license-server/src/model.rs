//! The license server's data, named after the Windows RD License Server's WMI provider
//! (Win32_TSLicenseKeyPack, Win32_TSIssuedLicense, Win32_TSLicenseServer) so administrators
//! recognise what they see. The policy decides over these values; the store persists them.

use std::fmt;
use std::str::FromStr;
use std::time::SystemTime;

/// A spelling none of an enum's values has.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{value:?}: {expected}")]
pub struct UnknownSpelling {
    pub value: String,
    /// The spellings there are, for the message.
    pub expected: &'static str,
}

/// One spelling per value, everywhere rdpele writes or reads it: the store's columns, the admin
/// command line (clap), the HTTP API and the session host's configuration (serde), reports
/// (`Display`). Aliases are accepted on input only.
macro_rules! spelled {
    ($name:ident, $expected:literal, { $($variant:ident => $text:literal $(| $alias:literal)*),+ $(,)? }) => {
        impl $name {
            /// Every value, in order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownSpelling;

            fn from_str(text: &str) -> Result<Self, UnknownSpelling> {
                match text {
                    $($text $(| $alias)* => Ok(Self::$variant),)+
                    _ => Err(UnknownSpelling {
                        value: text.to_owned(),
                        expected: $expected,
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }

        #[cfg(feature = "clap")]
        impl clap::ValueEnum for $name {
            fn value_variants<'a>() -> &'a [Self] {
                Self::ALL
            }

            fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
                let value = clap::builder::PossibleValue::new(self.as_str());
                Some(match self {
                    $(Self::$variant => value$(.alias($alias))*,)+
                })
            }
        }
    };
}

/// A Windows Server release, as CAL packs and session hosts are versioned. Ordered: a CAL
/// serves hosts of its version or older (a 2022 CAL opens 2016/2019/2022 hosts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WindowsVersion {
    V2008R2,
    V2012,
    V2016,
    V2019,
    V2022,
    V2025,
}

spelled!(WindowsVersion, "one of 2008R2, 2012, 2016, 2019, 2022, 2025", {
    V2008R2 => "2008R2" | "2008r2",
    V2012 => "2012",
    V2016 => "2016",
    V2019 => "2019",
    V2022 => "2022",
    V2025 => "2025",
});

/// How a session host licenses its clients; a host runs in exactly one mode, a license server
/// can hold packs of both types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LicensingMode {
    PerDevice,
    PerUser,
}

spelled!(LicensingMode, "per-device or per-user", {
    PerDevice => "per-device",
    PerUser => "per-user",
});

/// Win32_TSLicenseServer, as far as the policy needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSettings {
    /// The license server's own version: it refuses packs newer than itself.
    pub version: WindowsVersion,
    /// An unactivated license server issues temporary CALs only.
    pub activated: bool,
    /// Shown in the CALs it signs (MS_LICENSE_SERVER_INFO) and in reports.
    pub name: String,
    pub domain_or_workgroup: String,
    pub product_id: String,
}

/// Win32_TSLicenseKeyPack: installed CALs of one type and version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPack {
    pub key_pack_id: u32,
    pub key_pack_type: LicensingMode,
    pub product_version: WindowsVersion,
    pub total_licenses: u32,
    pub installed_at: SystemTime,
}

/// Win32_TSIssuedLicense.LicenseStatus.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LicenseStatus {
    /// A 90-day temporary CAL (per device), taken from no pack.
    Temporary,
    /// A permanent CAL holding one license of its pack.
    Active,
    /// Revoked by an administrator: back in the pool, while its holder keeps the CAL it was
    /// given until that expires.
    Revoked,
    /// Past its expiration date: back in the pool.
    Expired,
    /// Replaced by a later CAL for the same holder (an upgrade or a renewal).
    Superseded,
}

spelled!(LicenseStatus, "one of temporary, active, revoked, expired, superseded", {
    Temporary => "temporary",
    Active => "active",
    Revoked => "revoked",
    Expired => "expired",
    Superseded => "superseded",
});

/// Win32_TSIssuedLicense: one CAL the server issued (or, per user, one user it recorded).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedLicense {
    pub license_id: u32,
    /// The pack the license was taken from; `None` for temporary CALs and for per-user records
    /// counted as OverUsed.
    pub key_pack_id: Option<u32>,
    pub license_type: LicensingMode,
    /// sIssuedToUser.
    pub issued_to_user: String,
    /// sIssuedToComputer: the machine name at first issue, kept across renames.
    pub issued_to_computer: String,
    /// sHardwareId: the client's 20-byte CLIENT_HARDWARE_ID (the device's identity).
    pub hardware_id: [u8; 20],
    pub issue_date: SystemTime,
    pub expiration_date: SystemTime,
    pub status: LicenseStatus,
    /// When an administrator revoked it.
    pub revoked_at: Option<SystemTime>,
    /// The version of the pack it came from (temporary CALs: the requesting host's version).
    pub product_version: WindowsVersion,
    /// A temporary CAL: when a session host reported a sign-in completed with it (the session
    /// reached the active state). Only a validated temporary CAL is upgraded to a permanent
    /// one ([`crate::policy::per_device`]).
    pub validated_at: Option<SystemTime>,
}

/// What a session host is, for the decisions that depend on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostInfo {
    pub version: WindowsVersion,
    pub mode: LicensingMode,
}

/// A CAL as a client presents it in a License Info, after the protocol checked its MAC and
/// HWID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedCal {
    /// The license the CAL records (its serial number's license id), if it is one of ours.
    pub license_id: Option<u32>,
    pub temporary: bool,
    pub license_type: LicensingMode,
    pub product_version: WindowsVersion,
    pub not_after: SystemTime,
}

/// What a client asks of the license server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LicenseRequest {
    pub host: HostInfo,
    pub hardware_id: [u8; 20],
    pub machine: String,
    pub user: String,
    /// `None`: a New License Request; `Some`: a License Info presenting this CAL.
    pub presented: Option<PresentedCal>,
}

/// The outcome a client sees, as `rdpele admin request` prints it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestOutcome {
    /// A new temporary CAL.
    Temporary {
        license_id: u32,
        expires_at: SystemTime,
    },
    /// A new permanent CAL (first issue, or a temporary one upgraded).
    Permanent {
        license_id: u32,
        expires_at: SystemTime,
    },
    /// A permanent CAL near its expiry replaced by a new one.
    Renewed {
        license_id: u32,
        expires_at: SystemTime,
    },
    /// The presented CAL is valid as it is.
    Valid {
        expires_at: SystemTime,
    },
    Refused {
        reason: LicenseRefusal,
    },
}

/// Why a client is refused, mapped by the session host to a Licensing Error Message and an
/// ERRINFO_LICENSE_* code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LicenseRefusal {
    /// Its temporary CAL has expired and no permanent CAL is free (ERRINFO_LICENSE_NO_LICENSE).
    TemporaryExpiredNoneFree,
    /// Its temporary CAL has expired without a sign-in ever completed with it, so it was never
    /// upgraded (ERRINFO_LICENSE_NO_LICENSE, as [`Self::TemporaryExpiredNoneFree`]).
    TemporaryExpiredNotValidated,
    /// The 120-day grace period without a license server is over.
    GracePeriodOver,
    /// The presented CAL was not issued for this licensing mode.
    WrongLicenseType,
    /// The presented CAL has expired.
    Expired,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_value_reads_back_from_its_spelling_and_its_json() {
        for version in WindowsVersion::ALL {
            assert_eq!(version.as_str().parse::<WindowsVersion>(), Ok(*version));
            let json = serde_json::to_string(version).unwrap();
            assert_eq!(json, format!("\"{version}\""));
            assert_eq!(
                serde_json::from_str::<WindowsVersion>(&json).unwrap(),
                *version
            );
        }
        for mode in LicensingMode::ALL {
            assert_eq!(mode.to_string().parse::<LicensingMode>(), Ok(*mode));
        }
        for status in LicenseStatus::ALL {
            assert_eq!(status.to_string().parse::<LicenseStatus>(), Ok(*status));
        }
    }

    #[test]
    fn aliases_are_read_and_unknown_spellings_say_what_is_accepted() {
        assert_eq!(
            "2008r2".parse::<WindowsVersion>(),
            Ok(WindowsVersion::V2008R2)
        );
        assert_eq!(WindowsVersion::V2008R2.to_string(), "2008R2");
        let error = "per-seat".parse::<LicensingMode>().unwrap_err();
        assert_eq!(error.to_string(), "\"per-seat\": per-device or per-user");
        assert!(serde_json::from_str::<WindowsVersion>("\"2003\"").is_err());
    }
}

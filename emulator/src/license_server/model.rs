//! The license server's data, named after the Windows RD License Server's WMI provider
//! (Win32_TSLicenseKeyPack, Win32_TSIssuedLicense, Win32_TSLicenseServer) so administrators
//! recognise what they see. The policy decides over these values; the store persists them.

use std::time::SystemTime;

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

/// How a session host licenses its clients; a host runs in exactly one mode, a license server
/// can hold packs of both types.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LicensingMode {
    PerDevice,
    PerUser,
}

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
pub enum Outcome {
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
        reason: RefusalReason,
    },
}

/// Why a client is refused, mapped by the session host to a Licensing Error Message and an
/// ERRINFO_LICENSE_* code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusalReason {
    /// Its temporary CAL has expired and no permanent CAL is free (ERRINFO_LICENSE_NO_LICENSE).
    TemporaryExpiredNoneFree,
    /// The presented CAL is older than the host's version and none newer is free.
    CalVersionTooOld,
    /// The 120-day grace period without a license server is over.
    GracePeriodOver,
    /// The presented CAL was not issued for this licensing mode.
    WrongLicenseType,
    /// The presented CAL has expired.
    Expired,
}

//! CAL versions: which hosts a CAL serves, which packs a license server holds, and which pack a
//! new CAL is taken from.
//!
//! # Rules
//!
//! - **A CAL serves session hosts of its version or older.** "You can't use RDS CALs for
//!   earlier versions to access later versions of Windows Server, but you can use later versions
//!   of RDS CALs to access earlier versions" — a 2022 CAL opens 2016/2019/2022 hosts, a 2019 CAL
//!   cannot open a 2022 host ([CAL], "RDS CAL version compatibility"). [`serves`].
//! - **A license server holds packs up to its own version.** The same page's second table
//!   (license server version × CAL version): a 2025 license server takes 2016–2025 CALs, a 2022
//!   one 2016–2022, a 2019 one 2016/2019, a 2016 one 2016 only — so a 2019 license server refuses
//!   2022 packs. (The prose above that table says "the same version … or earlier", which the
//!   table contradicts; the table is what DESIGN §5 states.) [`install_pack`] also refuses a
//!   pack of no licenses, which no purchase yields.
//! - **CALs are per product version.** The License Request names the host's version
//!   (PRODUCT_INFO dwVersion, MS-RDPELE 2.2.2.1) and the client files each CAL under the
//!   version it was issued for (MS-RDPELE 3.3.5.5–3.3.5.6; mstsc's store holds one `LICENSEnnn`
//!   entry per product and version). Per device, a device with no CAL on record that serves the
//!   host — it presents none for this version, or an older one — is on its first logon *for
//!   that version*: a 90-day temporary CAL of the host's version, then a permanent one when one
//!   is free ([`super::per_device`]). Its older CALs are left alone (not Superseded) and still
//!   open older hosts. Per user, licensing is not enforced: the user is recorded against a
//!   compatible pack or as OverUsed ([`super::per_user`]).
//! - **Which pack.** A new CAL comes from a pack of the host's licensing mode whose version is
//!   at least the host's and that has a free license. *Choice* (Microsoft does not document the
//!   order): a renewal keeps its pack when it can; otherwise the oldest version that serves the
//!   host is used first (newer CALs stay free for newer hosts), then the earliest installed.
//!   A holder's own live CAL of a pack counts as free for it, because issuing supersedes it in
//!   the same transaction.
//!
//! [CAL]: https://learn.microsoft.com/windows-server/remote/remote-desktop-services/rds-client-access-license

use std::fmt;

use super::own_slots;
use crate::decision::{PackUsage, Snapshot};
use crate::model::{KeyPack, LicensingMode, ServerSettings, WindowsVersion};

/// Whether a CAL of version `cal` lets a client into a session host of version `host`.
pub fn serves(cal: WindowsVersion, host: WindowsVersion) -> bool {
    cal >= host
}

/// Why a license server refuses to install a pack.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstallError {
    /// The pack is newer than the license server (a 2022 pack on a 2019 license server).
    NewerThanServer {
        pack: WindowsVersion,
        server: WindowsVersion,
    },
    /// The pack holds no licenses.
    NoLicenses,
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NewerThanServer { pack, server } => write!(
                f,
                "a {} CAL pack cannot be installed on a {} license server: a license server \
                 holds CALs of its own version or older (upgrade the license server first)",
                version_name(*pack),
                version_name(*server)
            ),
            Self::NoLicenses => write!(f, "a CAL pack must hold at least one license"),
        }
    }
}

impl std::error::Error for InstallError {}

/// "Windows Server 2022", as Microsoft's pages name the releases.
pub fn version_name(version: WindowsVersion) -> &'static str {
    match version {
        WindowsVersion::V2008R2 => "Windows Server 2008 R2",
        WindowsVersion::V2012 => "Windows Server 2012",
        WindowsVersion::V2016 => "Windows Server 2016",
        WindowsVersion::V2019 => "Windows Server 2019",
        WindowsVersion::V2022 => "Windows Server 2022",
        WindowsVersion::V2025 => "Windows Server 2025",
    }
}

/// Whether the license server described by `settings` accepts `pack`: packs up to its own
/// version, with at least one license.
pub fn install_pack(settings: &ServerSettings, pack: &KeyPack) -> Result<(), InstallError> {
    if pack.product_version > settings.version {
        return Err(InstallError::NewerThanServer {
            pack: pack.product_version,
            server: settings.version,
        });
    }
    if pack.total_licenses == 0 {
        return Err(InstallError::NoLicenses);
    }
    Ok(())
}

/// Licenses of the pack free for this holder: the pack's total less those in use by others
/// (the holder's own live CAL of the pack is superseded when it is given a new one).
fn free_for_holder(snapshot: &Snapshot, mode: LicensingMode, usage: &PackUsage) -> u32 {
    let others = usage
        .in_use
        .saturating_sub(own_slots(snapshot, mode, usage.pack.key_pack_id));
    usage.pack.total_licenses.saturating_sub(others)
}

/// The pack a new CAL for a host of `host_version` in `mode` comes from, if any has a free
/// license (counting the holder's own live CAL of a pack as free): `prefer` if it qualifies,
/// else the oldest serving version, then the earliest installed. Never a pack while the license
/// server is unactivated.
pub(super) fn choose_pack(
    snapshot: &Snapshot,
    mode: LicensingMode,
    host_version: WindowsVersion,
    prefer: Option<u32>,
) -> Option<&KeyPack> {
    if !snapshot.settings.activated {
        return None;
    }
    let mut candidates: Vec<&KeyPack> = snapshot
        .packs
        .usage()
        .iter()
        .filter(|usage| {
            usage.pack.key_pack_type == mode
                && serves(usage.pack.product_version, host_version)
                && free_for_holder(snapshot, mode, usage) > 0
        })
        .map(|usage| &usage.pack)
        .collect();
    candidates.sort_by_key(|pack| {
        (
            Some(pack.key_pack_id) != prefer,
            pack.product_version,
            pack.installed_at,
            pack.key_pack_id,
        )
    });
    candidates.into_iter().next()
}

//! A parsed CAL as JSON: the parts `cal inspect`, `decode` and `client` all print, named and
//! derived here once so the three cannot drift apart.

use rdpele_proto::cal::{Cal, ClientLicense};
use serde::Serialize;

use rdpele_license_server::clock::format_instant;

/// Who a CAL licenses: its machine, user and HWID.
#[derive(Debug, Serialize)]
pub struct CalHolder<'a> {
    machine: &'a str,
    user: &'a str,
    hwid: String,
}

impl<'a> CalHolder<'a> {
    pub fn of(client: &'a ClientLicense) -> Self {
        CalHolder {
            machine: &client.machine,
            user: &client.user,
            hwid: hex::encode(client.hwid.to_bytes()),
        }
    }
}

/// When a CAL holds, as RFC 3339 times.
#[derive(Debug, Serialize)]
pub struct CalValidity {
    not_before: Option<String>,
    not_after: Option<String>,
}

impl CalValidity {
    pub fn of(client: &ClientLicense) -> Self {
        CalValidity {
            not_before: format_instant(client.not_before),
            not_after: format_instant(client.not_after),
        }
    }
}

/// The license server a CAL names as its issuer.
#[derive(Debug, Serialize)]
pub struct CalLicenseServer<'a> {
    name: &'a str,
    domain: &'a str,
    product_id: Option<&'a str>,
}

impl<'a> CalLicenseServer<'a> {
    pub fn of(cal: &'a Cal) -> Self {
        CalLicenseServer {
            name: &cal.license_server.name,
            domain: &cal.license_server.domain_or_workgroup,
            product_id: cal.license_server.product_id.as_deref(),
        }
    }
}

/// Who and what a CAL licenses, in short: what `decode` shows of a CAL inside a license PDU.
#[derive(Debug, Serialize)]
pub struct CalSummary<'a> {
    #[serde(flatten)]
    holder: CalHolder<'a>,
    #[serde(flatten)]
    validity: CalValidity,
    kind: &'static str,
    cal_type: &'static str,
    product: &'a str,
    license_server: CalLicenseServer<'a>,
    issuer: &'a str,
}

impl<'a> CalSummary<'a> {
    pub fn of(cal: &'a Cal) -> Self {
        let client = &cal.client_license;
        CalSummary {
            holder: CalHolder::of(client),
            validity: CalValidity::of(client),
            kind: cal.kind.name(),
            cal_type: cal.cal_type.name(),
            product: &cal.product.sku,
            license_server: CalLicenseServer::of(cal),
            issuer: &client.issuer,
        }
    }
}

/// The CAL a client came away with: its kind, holder and validity.
#[derive(Debug, Serialize)]
pub struct CalReceived<'a> {
    kind: &'static str,
    #[serde(flatten)]
    holder: CalHolder<'a>,
    #[serde(flatten)]
    validity: CalValidity,
}

impl<'a> CalReceived<'a> {
    pub fn of(cal: &'a Cal) -> Self {
        CalReceived {
            kind: cal.kind.name(),
            holder: CalHolder::of(&cal.client_license),
            validity: CalValidity::of(&cal.client_license),
        }
    }
}

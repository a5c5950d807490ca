//! What the client state machine asks of a license store (MS-RDPELE 3.3.5.1, 3.3.5.5–3.3.5.6):
//! reading is an input; writing is an event the caller carries out.

/// The index a client files a CAL under: the product and scope of the server that issued it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProductKey {
    pub version: u32,
    pub company_name: String,
    pub product_id: String,
    pub scope: String,
}

pub trait LicenseStore {
    /// The CAL (`pbLicenseInfo`) stored for `product`, if any.
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>>;
}

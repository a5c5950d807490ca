//! How a CAL names its client: the subject's `serialNumber` attribute holds
//! `base64(HWID XOR HWID_MASK) + "\r\n"` — a reversible encoding of the 20-byte
//! CLIENT_HARDWARE_ID, not a hash (see the [module documentation](super) for the evidence).

use base64ct::{Base64, Encoding};

use crate::wire::ClientHardwareId;

/// The 20 bytes a Windows license server XORs with the client's HWID before base64-encoding it
/// into the client license's `serialNumber` attribute. Established from two CALs by two license
/// servers twelve years apart whose clients' HWIDs are known independently.
pub const HWID_MASK: [u8; ClientHardwareId::LEN] = [
    0xD6, 0x17, 0x0A, 0x79, 0x2D, 0xEF, 0x15, 0x8D, 0x71, 0x24, 0x58, 0x2C, 0x08, 0x8F, 0xB8, 0xEE,
    0xBE, 0x35, 0x79, 0x8D,
];

/// Line break Windows appends to the base64 text.
pub(crate) const SERIAL_NUMBER_SUFFIX: &str = "\r\n";

/// The 20 bytes a CAL stores for `hwid` (before base64).
pub fn encode_hwid(hwid: &ClientHardwareId) -> [u8; ClientHardwareId::LEN] {
    xor_mask(hwid.to_bytes())
}

/// The HWID a CAL's 20 stored bytes stand for.
pub fn decode_hwid(encoded: &[u8; ClientHardwareId::LEN]) -> ClientHardwareId {
    ClientHardwareId::from_bytes(xor_mask(*encoded))
}

fn xor_mask(mut bytes: [u8; ClientHardwareId::LEN]) -> [u8; ClientHardwareId::LEN] {
    for (byte, mask) in bytes.iter_mut().zip(HWID_MASK) {
        *byte ^= mask;
    }
    bytes
}

/// The `serialNumber` attribute text for `hwid`: 28 base64 characters and CR LF.
pub(crate) fn serial_number_attribute(hwid: &ClientHardwareId) -> String {
    let mut text = Base64::encode_string(&encode_hwid(hwid));
    text.push_str(SERIAL_NUMBER_SUFFIX);
    text
}

/// Reads the `serialNumber` attribute text back into the 20 stored bytes. The CR LF is optional;
/// anything else that is not 20 bytes of padded base64 is refused.
pub(crate) fn parse_serial_number_attribute(
    text: &str,
) -> Result<[u8; ClientHardwareId::LEN], &'static str> {
    let text = text.strip_suffix(SERIAL_NUMBER_SUFFIX).unwrap_or(text);
    let bytes = Base64::decode_vec(text).map_err(|_| "not base64")?;
    <[u8; ClientHardwareId::LEN]>::try_from(bytes.as_slice()).map_err(|_| "not 20 bytes")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// xfreerdp's HWID for client hostname "ubuntu2": LE32(0x04010000) ‖ MD5("ubuntu2").
    const UBUNTU2: &str = "0000010488fa3fe1ddb15d828eb8b1222af4755a";

    #[test]
    fn the_2019_sample_decodes_to_xfreerdps_hwid_for_its_machine_name() {
        // CN=ubuntu2 in the 2019 sample; xfreerdp derives its HWID from the client hostname.
        let stored = parse_serial_number_attribute("1hcLfaUVKmyslQWuhjcJzJTBDNc=\r\n").unwrap();
        let hwid = decode_hwid(&stored);
        assert_eq!(hwid.platform_id, 0x0401_0000);
        assert_eq!(hex::encode(hwid.data), &UBUNTU2[8..]);
    }

    #[test]
    fn the_2007_sample_decodes_to_the_hwid_of_its_capture_session() {
        // The same session's CLIENT_HARDWARE_ID, as IronRDP's platform challenge test data has it.
        let stored = parse_serial_number_attribute("1BcKedy2krO4/MCDLI1AHZcPias=\r\n").unwrap();
        let hwid = decode_hwid(&stored);
        assert_eq!(hwid.platform_id, 2);
        assert_eq!(hex::encode(hwid.data), "f159873ec9d898af2402f8f3293af026");
        assert_eq!(
            serial_number_attribute(&hwid),
            "1BcKedy2krO4/MCDLI1AHZcPias=\r\n"
        );
    }

    #[test]
    fn encoding_round_trips_and_bad_text_is_refused() {
        let hwid = ClientHardwareId {
            platform_id: 0x0401_0000,
            data: [7; 16],
        };
        assert_eq!(decode_hwid(&encode_hwid(&hwid)), hwid);
        assert!(parse_serial_number_attribute("AAAA\r\n").is_err());
        assert!(parse_serial_number_attribute("not base64 at all!!!!!!!!!!=").is_err());
    }
}

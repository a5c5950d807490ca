//! Standard RDP Security on the PDUs of a connection (MS-RDPBCGR 5.3.6, 3.2.5.2, 3.3.5.1):
//! a slow-path PDU's userData behind a non-FIPS security header (flags, MAC, RC4 data), and a
//! fast-path PDU's signature and data. Sans-IO: bytes in, bytes out, one keystream per
//! direction kept in step by reading every encrypted PDU in order.

use std::borrow::Cow;

use super::fast_path::FastPathPdu;
use super::mcs::{McsSendData, SendDataDirection};
use super::security_header::{NonFipsSecurityHeader, SecurityFlags, SecurityHeader};
use super::tpkt::Tpkt;
use super::x224::X224Data;
use crate::crypto::{RdpCipher, RdpSessionKeys, Side, RDP_MAC_LEN};
use crate::wire::codec::Wire;
use crate::wire::error::{EncodeError, WireError, WireErrorKind};

/// Why a PDU could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityLayerError {
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A PDU opened would not re-encode (a length its field cannot hold).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The data did not decrypt to what its MAC signs: a wrong key, a tampered PDU, or a
    /// keystream out of step (a PDU lost or read out of order).
    #[error(
        "{structure}: the MAC does not verify over the decrypted data (encrypted PDU {packet} of this direction, {checksum} MAC)"
    )]
    BadMac {
        structure: &'static str,
        packet: u32,
        /// "plain" or "salted".
        checksum: &'static str,
    },
}

/// A slow-path userData with its security header read and its data decrypted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Opened<'a> {
    /// The header's flags as sent (SEC_ENCRYPT and SEC_SECURE_CHECKSUM included).
    pub flags: SecurityFlags,
    pub flags_hi: u16,
    /// What follows the header: decrypted when SEC_ENCRYPT is set, as sent otherwise.
    pub data: Cow<'a, [u8]>,
}

impl Opened<'_> {
    pub fn was_encrypted(&self) -> bool {
        self.flags.contains(SecurityFlags::SEC_ENCRYPT)
    }
}

/// The flags of the PDUs whose readers expect the basic security header they came with (the
/// Client Info, licensing, redirection): [`RdpSecurityLayer::open_pdu`] keeps it for them.
const KEEP_HEADER: u16 = SecurityFlags::SEC_INFO_PKT.0
    | SecurityFlags::SEC_LICENSE_PKT.0
    | SecurityFlags::SEC_REDIRECTION_PKT.0;

/// The fast-path header bits of MS-RDPBCGR 2.2.8.1.2 / 2.2.9.1.2 (`flags`, the top two bits).
const FASTPATH_SECURE_CHECKSUM: u8 = 0x40;
const FASTPATH_ENCRYPTED: u8 = 0x80;

/// Both directions of one end of a Standard RDP Security connection.
#[derive(Debug)]
pub struct RdpSecurityLayer {
    send: RdpCipher,
    receive: RdpCipher,
    salted: bool,
}

impl RdpSecurityLayer {
    /// The layer of `side`, from the keys both ends derived (MS-RDPBCGR 5.3.5.1). It signs
    /// with plain MACs until [`Self::use_salted_checksums`].
    pub fn new(keys: &RdpSessionKeys, side: Side) -> Self {
        let (send, receive) = keys.ciphers(side);
        Self {
            send,
            receive,
            salted: false,
        }
    }

    /// Salted MACs (SEC_SECURE_CHECKSUM) on what this end sends from now on: once both ends
    /// advertised ENC_SALTED_CHECKSUM in their General Capability Sets (MS-RDPBCGR
    /// 2.2.7.1.1). What is received is checked by its own flag, whichever it is.
    pub fn use_salted_checksums(&mut self, salted: bool) {
        self.salted = salted;
    }

    pub fn sends_salted_checksums(&self) -> bool {
        self.salted
    }

    /// Appends to `out` a slow-path userData: a non-FIPS security header with `flags`,
    /// SEC_ENCRYPT, and SEC_SECURE_CHECKSUM exactly when this end signs salted (whatever
    /// `flags` says of it: the flag tells the receiver which MAC to check), the MAC of `data`,
    /// then `data` encrypted.
    pub fn seal_into(&mut self, flags: SecurityFlags, data: &[u8], out: &mut Vec<u8>) {
        let mut flags = SecurityFlags(flags.0 & !SecurityFlags::SEC_SECURE_CHECKSUM.0)
            | SecurityFlags::SEC_ENCRYPT;
        if self.salted {
            flags = flags | SecurityFlags::SEC_SECURE_CHECKSUM;
        }
        let start = out.len();
        out.extend_from_slice(&flags.0.to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&[0; RDP_MAC_LEN]);
        let data_start = out.len();
        out.extend_from_slice(data);
        let mac = match out.get_mut(data_start..) {
            Some(plaintext) => self.send.encrypt(plaintext, self.salted),
            None => [0; RDP_MAC_LEN],
        };
        if let Some(slot) = out.get_mut(start + SecurityHeader::LEN..data_start) {
            slot.copy_from_slice(&mac);
        }
    }

    /// Reads a slow-path userData that starts with a security header: with SEC_ENCRYPT, the
    /// MAC and the data are verified and decrypted (salted MAC when SEC_SECURE_CHECKSUM is set);
    /// without it, the data is as sent.
    pub fn open<'a>(&mut self, user_data: &'a [u8]) -> Result<Opened<'a>, SecurityLayerError> {
        let (basic, rest) = SecurityHeader::decode_prefix(user_data)
            .map(|(header, len)| (header, user_data.get(len..).unwrap_or_default()))?;
        if !basic.flags.contains(SecurityFlags::SEC_ENCRYPT) {
            return Ok(Opened {
                flags: basic.flags,
                flags_hi: basic.flags_hi,
                data: Cow::Borrowed(rest),
            });
        }
        let (header, len) = NonFipsSecurityHeader::decode_prefix(user_data)?;
        let salted = basic.flags.contains(SecurityFlags::SEC_SECURE_CHECKSUM);
        let mut data = user_data.get(len..).unwrap_or_default().to_vec();
        let packet = self.receive.encryption_count();
        if !self
            .receive
            .decrypt(&mut data, &header.data_signature, salted)
        {
            return Err(SecurityLayerError::BadMac {
                structure: NonFipsSecurityHeader::NAME,
                packet,
                checksum: if salted { "salted" } else { "plain" },
            });
        }
        Ok(Opened {
            flags: basic.flags,
            flags_hi: basic.flags_hi,
            data: Cow::Owned(data),
        })
    }

    /// A whole PDU as the peer sent it (a TPKT or fast-path PDU, as a transport reads them),
    /// given back as it would be over TLS: the userData of a Send Data from `from` opened
    /// ([`Self::open`]), with a basic header kept for the PDUs whose readers expect one (Client
    /// Info, licensing, redirection: flags as sent but SEC_ENCRYPT and SEC_SECURE_CHECKSUM) and
    /// none for the rest; an encrypted fast-path PDU decrypted. Other PDUs (MCS Disconnect
    /// Provider Ultimatum, X.224 Disconnect, Send Data the other way) come back as they are.
    pub fn open_pdu<'a>(
        &mut self,
        pdu: &'a [u8],
        from: SendDataDirection,
    ) -> Result<Cow<'a, [u8]>, SecurityLayerError> {
        if pdu
            .first()
            .is_some_and(|first| FastPathPdu::starts_with(*first))
        {
            let fast_path = FastPathPdu::decode(pdu)?;
            return Ok(match self.open_fast_path(&fast_path)? {
                (_, Cow::Borrowed(_)) => Cow::Borrowed(pdu),
                (header, Cow::Owned(body)) => Cow::Owned(
                    FastPathPdu {
                        header,
                        long_length: false,
                        body: &body,
                    }
                    .to_vec()?,
                ),
            });
        }
        let tpkt = Tpkt::decode(pdu)?;
        let Ok(x224) = X224Data::decode(tpkt.payload) else {
            return Ok(Cow::Borrowed(pdu));
        };
        let send_data = match McsSendData::decode(x224.payload) {
            Ok(send_data) if send_data.direction == from => send_data,
            _ => return Ok(Cow::Borrowed(pdu)),
        };
        let opened = self.open(send_data.user_data)?;
        let mut user_data = Vec::with_capacity(SecurityHeader::LEN + opened.data.len());
        if opened.flags.0 & KEEP_HEADER != 0 {
            let flags = opened.flags.0
                & !(SecurityFlags::SEC_ENCRYPT.0 | SecurityFlags::SEC_SECURE_CHECKSUM.0);
            user_data.extend_from_slice(&flags.to_le_bytes());
            user_data.extend_from_slice(&opened.flags_hi.to_le_bytes());
        }
        user_data.extend_from_slice(&opened.data);
        let mcs = McsSendData {
            user_data: &user_data,
            ..send_data
        }
        .to_vec()?;
        let x224 = X224Data {
            eot: x224.eot,
            payload: &mcs,
        }
        .to_vec()?;
        Ok(Cow::Owned(
            Tpkt {
                reserved: tpkt.reserved,
                payload: &x224,
            }
            .to_vec()?,
        ))
    }

    /// Reads a fast-path PDU: when its header says it is encrypted, verifies and decrypts what
    /// follows the signature, and returns the header byte without the encryption bits and the
    /// plain data; otherwise returns them as sent.
    pub fn open_fast_path<'a>(
        &mut self,
        pdu: &FastPathPdu<'a>,
    ) -> Result<(u8, Cow<'a, [u8]>), SecurityLayerError> {
        const STRUCTURE: &str = "TS_FP_PDU";
        if pdu.header & FASTPATH_ENCRYPTED == 0 {
            return Ok((pdu.header, Cow::Borrowed(pdu.body)));
        }
        let salted = pdu.header & FASTPATH_SECURE_CHECKSUM != 0;
        let (signature, rest) = pdu
            .body
            .split_first_chunk::<RDP_MAC_LEN>()
            .ok_or(WireError {
                structure: STRUCTURE,
                field: "dataSignature",
                offset: pdu.encoded_len().saturating_sub(pdu.body.len()),
                kind: WireErrorKind::Truncated,
            })?;
        let mut data = rest.to_vec();
        let packet = self.receive.encryption_count();
        if !self.receive.decrypt(&mut data, signature, salted) {
            return Err(SecurityLayerError::BadMac {
                structure: STRUCTURE,
                packet,
                checksum: if salted { "salted" } else { "plain" },
            });
        }
        let header = pdu.header & !(FASTPATH_ENCRYPTED | FASTPATH_SECURE_CHECKSUM);
        Ok((header, Cow::Owned(data)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::crypto::{derive_rdp_session_keys, EncryptionMethod};

    fn ends() -> (RdpSecurityLayer, RdpSecurityLayer) {
        let keys = derive_rdp_session_keys(&[7; 32], &[9; 32], EncryptionMethod::Bits128);
        (
            RdpSecurityLayer::new(&keys, Side::Client),
            RdpSecurityLayer::new(&keys, Side::Server),
        )
    }

    #[test]
    fn sealed_user_data_opens_at_the_other_end_with_its_flags() {
        let (mut client, mut server) = ends();
        for salted in [false, true, false] {
            client.use_salted_checksums(salted);
            let mut sealed = Vec::new();
            client.seal_into(SecurityFlags::SEC_INFO_PKT, b"client info", &mut sealed);
            assert_ne!(&sealed[12..], b"client info");
            let opened = server.open(&sealed).unwrap();
            assert_eq!(opened.data.as_ref(), b"client info");
            assert!(opened.was_encrypted());
            assert!(opened.flags.contains(SecurityFlags::SEC_INFO_PKT));
            assert_eq!(
                opened.flags.contains(SecurityFlags::SEC_SECURE_CHECKSUM),
                salted
            );
        }
    }

    /// Found by the `rdp_security` fuzz target: flags asking for SEC_SECURE_CHECKSUM on a plain
    /// MAC made a PDU its receiver checked as salted, and refused.
    #[test]
    fn the_checksum_flag_says_how_the_pdu_was_signed_whatever_the_caller_passed() {
        let (mut client, mut server) = ends();
        for salted in [false, true] {
            client.use_salted_checksums(salted);
            let mut sealed = Vec::new();
            let flags = SecurityFlags::SEC_INFO_PKT | SecurityFlags::SEC_SECURE_CHECKSUM;
            client.seal_into(flags, b"info", &mut sealed);
            let opened = server.open(&sealed).unwrap();
            assert_eq!(
                opened.flags.contains(SecurityFlags::SEC_SECURE_CHECKSUM),
                salted
            );
            assert_eq!(opened.data.as_ref(), b"info");
        }
    }

    #[test]
    fn a_tampered_pdu_is_a_bad_mac_naming_the_packet_and_plain_data_passes_as_is() {
        let (mut client, mut server) = ends();
        let mut sealed = Vec::new();
        client.seal_into(SecurityFlags::SEC_LICENSE_PKT, b"licensing", &mut sealed);
        sealed[14] ^= 1;
        assert_eq!(
            server.open(&sealed).unwrap_err(),
            SecurityLayerError::BadMac {
                structure: "TS_SECURITY_HEADER1",
                packet: 0,
                checksum: "plain",
            }
        );

        let plain = [0x80, 0x00, 0x00, 0x00, 0xFF, 0x03];
        let opened = server.open(&plain).unwrap();
        assert!(!opened.was_encrypted());
        assert_eq!(opened.data.as_ref(), &[0xFF, 0x03]);

        let error = server.open(&[0x08, 0x00, 0x00]).unwrap_err();
        assert!(matches!(error, SecurityLayerError::Wire(_)), "{error}");
    }

    /// Whole PDUs as a host reads them: a Client Info keeps its basic header (SEC_ENCRYPT
    /// gone), a share PDU loses its header, a Disconnect Provider Ultimatum passes as it is.
    #[test]
    fn whole_pdus_come_back_as_over_tls() {
        let (mut client, mut server) = ends();
        let frame = |user_data: &[u8]| {
            let mcs = McsSendData {
                direction: SendDataDirection::Request,
                initiator: 1,
                channel_id: 1003,
                flags: McsSendData::HIGH_PRIORITY_BEGIN_END,
                long_length: true,
                user_data,
            }
            .to_vec()
            .unwrap();
            let x224 = X224Data::new(&mcs).to_vec().unwrap();
            Tpkt::new(&x224).to_vec().unwrap()
        };
        let mut sealed = Vec::new();
        client.seal_into(SecurityFlags::SEC_INFO_PKT, b"client info", &mut sealed);
        let wire = frame(&sealed);
        let opened = server.open_pdu(&wire, SendDataDirection::Request).unwrap();
        assert_eq!(opened.as_ref(), frame(b"\x40\x00\x00\x00client info"));

        let mut sealed = Vec::new();
        client.seal_into(SecurityFlags::default(), b"confirm active", &mut sealed);
        let wire = frame(&sealed);
        let opened = server.open_pdu(&wire, SendDataDirection::Request).unwrap();
        assert_eq!(opened.as_ref(), frame(b"confirm active"));

        let ultimatum = [0x03, 0x00, 0x00, 0x09, 0x02, 0xf0, 0x80, 0x21, 0x80];
        let same = server
            .open_pdu(&ultimatum, SendDataDirection::Request)
            .unwrap();
        assert!(matches!(same, Cow::Borrowed(_)));
        assert!(server
            .open_pdu(&[0x03, 0x00, 0x00, 0x40, 1], SendDataDirection::Request)
            .is_err());
    }

    #[test]
    fn fast_path_pdus_share_the_keystream_of_their_direction() {
        let (mut client, mut server) = ends();
        let mut body = b"input events".to_vec();
        let mac = client.send.encrypt(&mut body, true);
        let signed = [&mac[..], &body].concat();
        let pdu = FastPathPdu {
            header: 0x04 | FASTPATH_ENCRYPTED | FASTPATH_SECURE_CHECKSUM,
            long_length: false,
            body: &signed,
        };
        let (header, data) = server.open_fast_path(&pdu).unwrap();
        assert_eq!((header, data.as_ref()), (0x04, &b"input events"[..]));

        let mut sealed = Vec::new();
        client.seal_into(SecurityFlags::default(), b"after", &mut sealed);
        assert_eq!(server.open(&sealed).unwrap().data.as_ref(), b"after");

        let short = FastPathPdu {
            header: FASTPATH_ENCRYPTED,
            long_length: false,
            body: &[1, 2, 3],
        };
        assert!(matches!(
            server.open_fast_path(&short),
            Err(SecurityLayerError::Wire(_))
        ));
    }
}

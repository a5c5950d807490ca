//! An in-memory client ↔ server pair, driven without sockets (quinn-proto's `Pair`): a
//! rule-based issuer standing in for a license server, a memory license store, a seeded RNG and
//! a settable clock. The flow tests, the property tests, the fuzz targets and the benchmarks
//! all drive this. It is not the Windows policy (that lives in the emulator's license server):
//! its rules are the few a test needs to reach every protocol path.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;

use super::{
    Assessment, ChallengeCheck, ChallengeSource, ClientConfig, ClientEvent, ClientInfo,
    ClientMachine, Decision, LicenseIssuer, LicenseStore, MachineError, PresentedLicense,
    ProductKey, Refusal, ServerConfig, ServerEvent, ServerMachine,
};
use crate::cal::{
    build_cal, CalKind, CalRequest, CalType, LicenseSerial, LicenseServerIdentity, ProductVersion,
};
use crate::crypto::{proprietary_certificate, LicensingPrivateKey};
use crate::wire::{ClientHardwareId, ClientType, ErrorCode, LicenseDetailLevel, PreambleFlags};

pub const DAY: Duration = Duration::from_secs(86_400);

/// A 2048-bit RSA key for the license server's CAL signatures (a fixed key keeps tests fast).
pub const LICENSE_SERVER_KEY_PEM: &str =
    include_str!("../cal/testdata/license_server_test_key.pem");

/// A few Windows rules, enough to reach every path: a new client gets a temporary CAL; a
/// temporary CAL is upgraded to a permanent one; a permanent one is renewed within
/// `renew_within` of its expiry and valid before that; an expired one is refused. Each step can
/// be forced to refuse.
#[derive(Debug)]
pub struct RuleIssuer {
    pub identity: LicenseServerIdentity,
    pub version: ProductVersion,
    pub temporary_validity: Duration,
    pub permanent_validity: Duration,
    pub renew_within: Duration,
    pub refuse_new: Option<Refusal>,
    pub refuse_assessment: Option<Refusal>,
    pub refuse_upgrade: Option<Refusal>,
    /// Every CAL issued, as (kind, HWID).
    pub issued: Vec<(CalKind, ClientHardwareId)>,
    next_license_id: u32,
}

impl RuleIssuer {
    pub fn new(now: SystemTime) -> Result<Self, crate::cal::CalError> {
        let key = LicensingPrivateKey::from_pem(LICENSE_SERVER_KEY_PEM).map_err(|error| {
            crate::cal::CalError::InvalidInput {
                field: "license server key",
                reason: error.to_string(),
            }
        })?;
        let not_before = now.checked_sub(DAY).unwrap_or(now);
        let not_after = now.checked_add(DAY * 3650).unwrap_or(now);
        Ok(Self {
            identity: LicenseServerIdentity::self_signed(
                "RDPELE-LS",
                "WORKGROUP",
                "00000-000-0000000-00000",
                key.to_rsa_private_key().clone(),
                not_before,
                not_after,
            )?,
            version: ProductVersion::WINDOWS_SERVER_2008,
            temporary_validity: DAY * 90,
            permanent_validity: DAY * 60,
            renew_within: DAY * 7,
            refuse_new: None,
            refuse_assessment: None,
            refuse_upgrade: None,
            issued: Vec::new(),
            next_license_id: 1,
        })
    }

    /// Builds a CAL; a failure (which the tests would see as a refusal) is ERR_NO_LICENSE_SERVER.
    pub fn issue(
        &mut self,
        now: SystemTime,
        machine: &str,
        user: &str,
        hwid: ClientHardwareId,
        kind: CalKind,
    ) -> Decision {
        let validity = match kind {
            CalKind::Temporary => self.temporary_validity,
            CalKind::Permanent => self.permanent_validity,
        };
        let serial = LicenseSerial {
            key_pack_id: 1,
            license_id: self.next_license_id,
        };
        let built = CalRequest::new(
            machine,
            user,
            hwid,
            kind,
            CalType::PerDevice,
            self.version,
            now,
            validity,
            serial,
        )
        .and_then(|request| build_cal(&request, &self.identity));
        match built {
            Ok(cal) => {
                self.next_license_id = self.next_license_id.wrapping_add(1);
                self.issued.push((kind, hwid));
                Decision::Issue(cal)
            }
            Err(_) => Decision::Refuse(Refusal::abort(ErrorCode::ERR_NO_LICENSE_SERVER)),
        }
    }
}

impl LicenseIssuer for RuleIssuer {
    fn new_license(&mut self, now: SystemTime, client: &ClientInfo) -> Decision {
        if let Some(refusal) = self.refuse_new {
            return Decision::Refuse(refusal);
        }
        self.issue(
            now,
            &client.machine_name,
            &client.user_name,
            client.hwid,
            CalKind::Temporary,
        )
    }

    fn assess_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Assessment {
        if let Some(refusal) = self.refuse_assessment {
            return Assessment::Refuse(refusal);
        }
        let not_after = presented.cal.client_license.not_after;
        match (presented.cal.kind, not_after.duration_since(now)) {
            (_, Err(_)) => Assessment::Refuse(Refusal::abort(ErrorCode::ERR_INVALID_CLIENT)),
            (CalKind::Temporary, Ok(_)) => Assessment::Upgrade,
            (CalKind::Permanent, Ok(left)) if left <= self.renew_within => Assessment::Upgrade,
            (CalKind::Permanent, Ok(_)) => Assessment::Valid,
        }
    }

    fn upgrade_license(&mut self, now: SystemTime, presented: &PresentedLicense) -> Decision {
        if let Some(refusal) = self.refuse_upgrade {
            return Decision::Refuse(refusal);
        }
        let client = &presented.cal.client_license;
        let (machine, user) = (client.machine.clone(), client.user.clone());
        self.issue(now, &machine, &user, presented.hwid, CalKind::Permanent)
    }
}

/// A client license store in memory, filed the way the client machine asks for it.
#[derive(Debug, Default, Clone)]
pub struct MemoryStore {
    pub licenses: HashMap<ProductKey, Vec<u8>>,
}

impl MemoryStore {
    /// Carries out a [`ClientEvent::StoreLicense`]; other events are ignored.
    pub fn apply(&mut self, event: &ClientEvent) {
        if let ClientEvent::StoreLicense {
            product,
            license_info,
            ..
        } = event
        {
            self.licenses.insert(product.clone(), license_info.clone());
        }
    }
}

impl LicenseStore for MemoryStore {
    fn find(&self, product: &ProductKey) -> Option<Vec<u8>> {
        self.licenses.get(product).cloned()
    }
}

/// Which way a PDU went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    ServerToClient,
    ClientToServer,
}

/// A session host configuration like Windows Server 2008's, with a fresh 512-bit key in a
/// proprietary certificate.
pub fn server_config(rng: &mut ChaCha20Rng) -> Result<ServerConfig, crate::crypto::CryptoError> {
    let private_key = LicensingPrivateKey::generate(512, rng)?;
    let certificate = proprietary_certificate(&private_key.public_key())?;
    Ok(ServerConfig {
        preamble_flags: PreambleFlags(PreambleFlags::PREAMBLE_VERSION_3_0),
        product_version: 0x0006_0000,
        company_name: "Microsoft Corporation".into(),
        product_id: "A02".into(),
        scopes: vec!["microsoft.com".into()],
        certificate,
        private_key,
        challenge_check: ChallengeCheck::Strict,
        // Random: the tests' seeded transcripts draw the challenge from the RNG.
        challenge: ChallengeSource::Random,
        cals: Arc::default(),
    })
}

/// A client like xfreerdp: platform 0x04010000, a HWID derived from `seed`.
pub fn client_config(seed: u8, machine: &str, user: &str) -> ClientConfig {
    ClientConfig {
        preamble_flags: PreambleFlags(0x83),
        platform_id: 0x0401_0000,
        hwid: ClientHardwareId {
            platform_id: 0x0401_0000,
            data: [seed; 16],
        },
        user_name: user.into(),
        machine_name: machine.into(),
        client_type: ClientType::OTHER_PLATFORMCHALLENGE_TYPE,
        license_detail_level: LicenseDetailLevel::LICENSE_DETAIL_DETAIL,
        verify_server_certificate: true,
        gcc_server_certificate: None,
        public_keys: Arc::default(),
    }
}

/// One licensing exchange between a fresh server and client machine; the issuer, the store and
/// the clock outlive it, so consecutive connections see each other's licenses.
#[derive(Debug)]
pub struct Pair {
    pub server: ServerMachine,
    pub client: ClientMachine,
    pub rng: ChaCha20Rng,
    pub now: SystemTime,
    pub server_events: Vec<ServerEvent>,
    pub client_events: Vec<ClientEvent>,
    /// Every PDU delivered, in order.
    pub transcript: Vec<(Direction, Vec<u8>)>,
}

impl Pair {
    pub fn new(
        server: ServerConfig,
        client: ClientConfig,
        rng: ChaCha20Rng,
        now: SystemTime,
    ) -> Self {
        Self {
            server: ServerMachine::new(server),
            client: ClientMachine::new(client),
            rng,
            now,
            server_events: Vec::new(),
            client_events: Vec::new(),
            transcript: Vec::new(),
        }
    }

    /// A deterministic pair: the seed fixes every random byte of the exchange.
    pub fn seeded(
        seed: u64,
        client: ClientConfig,
        now: SystemTime,
    ) -> Result<Self, crate::crypto::CryptoError> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let server = server_config(&mut rng)?;
        Ok(Self::new(server, client, rng, now))
    }

    /// Runs the exchange to its end, passing every PDU through `tamper` on its way.
    pub fn run_with(
        &mut self,
        issuer: &mut impl LicenseIssuer,
        store: &mut MemoryStore,
        mut tamper: impl FnMut(Direction, &mut Vec<u8>),
    ) -> Result<(), MachineError> {
        self.server.start(&mut self.rng);
        loop {
            let mut moved = false;
            while let Some(mut pdu) = self.server.poll_transmit() {
                moved = true;
                tamper(Direction::ServerToClient, &mut pdu);
                self.transcript
                    .push((Direction::ServerToClient, pdu.clone()));
                if !self.client.is_finished() {
                    self.client.handle_pdu(&pdu, &mut self.rng, store)?;
                }
                self.drain_events(store);
            }
            while let Some(mut pdu) = self.client.poll_transmit() {
                moved = true;
                tamper(Direction::ClientToServer, &mut pdu);
                self.transcript
                    .push((Direction::ClientToServer, pdu.clone()));
                if !self.server.is_finished() {
                    self.server
                        .handle_pdu_with_issuer(self.now, &pdu, &mut self.rng, issuer)?;
                }
                self.drain_events(store);
            }
            if !moved {
                return Ok(());
            }
        }
    }

    pub fn run(
        &mut self,
        issuer: &mut impl LicenseIssuer,
        store: &mut MemoryStore,
    ) -> Result<(), MachineError> {
        self.run_with(issuer, store, |_, _| {})
    }

    fn drain_events(&mut self, store: &mut MemoryStore) {
        while let Some(event) = self.client.poll_event() {
            store.apply(&event);
            self.client_events.push(event);
        }
        while let Some(event) = self.server.poll_event() {
            self.server_events.push(event);
        }
    }
}

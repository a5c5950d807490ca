//! CALs parsed once per distinct CAL, for a host that reads the same ones at every logon.
//!
//! A device presents the CAL it was given at each connection until it is renewed (MS-RDPELE
//! 3.2.5.3), so a host parses the same few bytes again and again: in `serve_handshake/valid/16`
//! `parse_cal` (x509-parser over the chain's certificates, names rendered) was 2.3 % of all CPU.
//! The cache keeps the parsed form by the exact bytes presented.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use super::{parse_cal, Cal, CalError};

/// Parsed CALs by their DER bytes: at most a number of CALs and of DER bytes
/// ([`CalCache::CAPACITY`] and [`CalCache::MAX_BYTES`] unless told), the oldest dropped first.
/// A client chooses what it presents (a CAL may be up to [`super::MAX_CAL_LEN`]), so the bytes
/// are bounded, not only the count; a CAL larger than the whole budget is not kept.
///
/// Only CALs that parse are kept; a CAL that does not is parsed (and refused) each time. The
/// map hashes with std's randomly keyed SipHash, so bytes a client chooses cannot pile entries
/// on one bucket.
pub struct CalCache {
    capacity: usize,
    max_bytes: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_der: HashMap<Arc<[u8]>, Arc<Cal>>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<Arc<[u8]>>,
    /// The DER bytes of the CALs kept.
    bytes: usize,
}

impl CalCache {
    /// Distinct CALs kept: the devices that log on to a busy host between two renewals.
    pub const CAPACITY: usize = 1024;
    /// DER bytes kept: 4 MiB, room for [`CalCache::CAPACITY`] CALs of Windows' 2–5 KB. Beside
    /// them, each parsed form holds what was rendered from its bytes (names as text, fields,
    /// serial numbers; no keys or signatures).
    pub const MAX_BYTES: usize = 4 << 20;

    pub fn new() -> CalCache {
        CalCache::with_limits(Self::CAPACITY, Self::MAX_BYTES)
    }

    /// A cache of at most `capacity` CALs (at least one) and `max_bytes` of their DER.
    pub fn with_limits(capacity: usize, max_bytes: usize) -> CalCache {
        CalCache {
            capacity: capacity.max(1),
            max_bytes,
            entries: Mutex::default(),
        }
    }

    /// [`parse_cal`] of `der`, or what it gave for the same bytes before.
    pub fn parse(&self, der: &[u8]) -> Result<Arc<Cal>, CalError> {
        if let Some(cal) = self.lock().by_der.get(der) {
            return Ok(Arc::clone(cal));
        }
        // Parsed without the lock: another connection's lookup need not wait for it.
        let cal = Arc::new(parse_cal(der)?);
        if der.len() > self.max_bytes {
            return Ok(cal);
        }
        let mut entries = self.lock();
        if entries.by_der.contains_key(der) {
            return Ok(cal);
        }
        while entries.order.len() >= self.capacity || entries.bytes + der.len() > self.max_bytes {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            entries.bytes -= oldest.len();
            entries.by_der.remove(&oldest);
        }
        let key: Arc<[u8]> = Arc::from(der);
        entries.bytes += key.len();
        entries.order.push_back(Arc::clone(&key));
        entries.by_der.insert(key, Arc::clone(&cal));
        Ok(cal)
    }

    /// How many CALs are kept.
    pub fn len(&self) -> usize {
        self.lock().order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // Nothing panics while holding the lock; if something did, the map is still whole.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for CalCache {
    fn default() -> CalCache {
        CalCache::new()
    }
}

impl core::fmt::Debug for CalCache {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("CalCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAL_2008: &[u8] = include_bytes!("../../../captures/cal_temporary.p7b");
    const CAL_2019: &[u8] = include_bytes!("../../../captures/windows2019_cal_temporary.p7b");

    /// The 2008 CAL with another last byte of its client license's signature (the DER ends in
    /// that certificate's signatureValue, then the empty signerInfos `31 00`): other bytes, the
    /// same parsed CAL.
    fn resigned_2008() -> Vec<u8> {
        let mut der = CAL_2008.to_vec();
        assert_eq!(der[der.len() - 2..], [0x31, 0x00]);
        let at = der.len() - 3;
        der[at] ^= 0xFF;
        der
    }

    #[test]
    fn a_cal_seen_before_is_the_parse_kept_and_equals_a_fresh_one() {
        let cache = CalCache::new();
        for der in [CAL_2008, CAL_2019] {
            let first = cache.parse(der).unwrap();
            assert_eq!(*first, parse_cal(der).unwrap());
            let again = cache.parse(der).unwrap();
            assert!(
                Arc::ptr_eq(&first, &again),
                "the second parse is the kept one"
            );
        }
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn a_cal_that_does_not_parse_gets_parse_cals_error_and_is_not_kept() {
        let cache = CalCache::new();
        let truncated = &CAL_2019[..CAL_2019.len() / 2];
        let expected = parse_cal(truncated).unwrap_err().to_string();
        for _ in 0..2 {
            assert_eq!(cache.parse(truncated).unwrap_err().to_string(), expected);
        }
        assert!(cache.is_empty());
    }

    #[test]
    fn the_oldest_cal_goes_when_the_cache_is_full() {
        let cache = CalCache::with_limits(2, CalCache::MAX_BYTES);
        let resigned = resigned_2008();
        let first_2008 = cache.parse(CAL_2008).unwrap();
        cache.parse(CAL_2019).unwrap();
        let third = cache.parse(&resigned).unwrap();
        assert_eq!(
            *third, *first_2008,
            "the signature is not part of the parsed CAL"
        );
        assert_eq!(cache.len(), 2);
        let kept_2019 = cache.parse(CAL_2019).unwrap();
        assert!(Arc::ptr_eq(&kept_2019, &cache.parse(CAL_2019).unwrap()));
        let new_2008 = cache.parse(CAL_2008).unwrap();
        assert!(
            !Arc::ptr_eq(&first_2008, &new_2008),
            "the oldest, the 2008 CAL, was dropped and parsed anew"
        );
        assert_eq!(cache.len(), 2);
    }

    #[test]
    fn the_oldest_cals_go_when_their_bytes_would_pass_the_budget() {
        // The 2019 CAL is 5,112 bytes, the 2008 one 1,945.
        let cache = CalCache::with_limits(16, 6_000);
        let first_2019 = cache.parse(CAL_2019).unwrap();
        cache.parse(CAL_2008).unwrap();
        assert_eq!(cache.len(), 1, "7,057 bytes do not fit: the 2019 CAL went");
        assert!(!Arc::ptr_eq(&first_2019, &cache.parse(CAL_2019).unwrap()));
        assert_eq!(cache.len(), 1, "and now the 2008 one");

        let small = CalCache::with_limits(16, 4_000);
        assert_eq!(
            *small.parse(CAL_2019).unwrap(),
            parse_cal(CAL_2019).unwrap()
        );
        assert!(
            small.is_empty(),
            "a CAL larger than the budget is parsed, not kept"
        );
    }
}

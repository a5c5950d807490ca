//! CALs parsed once per distinct CAL, for a host that reads the same ones at every logon.
//!
//! A device presents the CAL it was given at each connection until it is renewed (MS-RDPELE
//! 3.2.5.3), so a host parses the same few bytes again and again: in `serve_handshake/valid/16`
//! `parse_cal` (x509-parser over the chain's certificates, names rendered) was 2.3 % of all CPU.
//! The cache keeps the parsed form by the exact bytes presented.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use super::{parse_cal, Cal, CalError};

/// Parsed CALs by their DER bytes: at most a capacity ([`CalCache::CAPACITY`] unless told),
/// the oldest dropped first.
///
/// Only CALs that parse are kept; a CAL that does not is parsed (and refused) each time. The
/// map hashes with std's randomly keyed SipHash, so bytes a client chooses cannot pile entries
/// on one bucket.
pub struct CalCache {
    capacity: usize,
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_der: HashMap<Arc<[u8]>, Arc<Cal>>,
    /// Insertion order, for dropping the oldest.
    order: VecDeque<Arc<[u8]>>,
}

impl CalCache {
    /// Distinct CALs kept: a few MB at most (a CAL is 2–5 KB of DER, its parsed form about
    /// 1 KB), enough for the devices of a busy host between two renewals of each.
    pub const CAPACITY: usize = 1024;

    pub fn new() -> CalCache {
        CalCache::with_capacity(Self::CAPACITY)
    }

    /// A cache of at most `capacity` CALs (at least one).
    pub fn with_capacity(capacity: usize) -> CalCache {
        CalCache {
            capacity: capacity.max(1),
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
        let mut entries = self.lock();
        let key: Arc<[u8]> = Arc::from(der);
        if entries.by_der.contains_key(&key) {
            return Ok(cal);
        }
        if entries.order.len() >= self.capacity {
            if let Some(oldest) = entries.order.pop_front() {
                entries.by_der.remove(&oldest);
            }
        }
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
        let cache = CalCache::with_capacity(2);
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
}

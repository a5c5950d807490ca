//! Connections per source address: one address (a client gone wrong, a port scanner, someone
//! holding connections half-open) must not take every slot of `--max-connections` while other
//! clients wait.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

/// How many connections each source address has open, none over `limit`. The map holds only
/// addresses with a connection open, so it is never larger than the host's connection limit.
#[derive(Debug)]
pub struct SourceLimit {
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection of a source; dropping it frees the slot.
#[derive(Debug)]
pub struct SourceSlot {
    sources: Arc<SourceLimit>,
    address: IpAddr,
}

impl SourceLimit {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit: limit.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// A slot for a connection from `address`, or `None` when it has `limit` open already.
    /// An IPv4 client seen through an IPv6 socket counts as its IPv4 address.
    pub fn try_acquire(self: &Arc<Self>, address: IpAddr) -> Option<SourceSlot> {
        let address = address.to_canonical();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.entry(address).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(SourceSlot {
            sources: Arc::clone(self),
            address,
        })
    }
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self
            .sources
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn each_source_gets_its_own_slots_and_frees_them_on_drop() {
        let sources = SourceLimit::new(2);
        let a = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
        let b = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3));
        let first = sources.try_acquire(a).unwrap();
        let _second = sources.try_acquire(a).unwrap();
        assert!(sources.try_acquire(a).is_none());
        // The same client through an IPv6 socket is the same source.
        assert!(sources
            .try_acquire(IpAddr::V6(Ipv4Addr::new(127, 0, 0, 2).to_ipv6_mapped()))
            .is_none());
        let _other = sources.try_acquire(b).unwrap();
        drop(first);
        assert!(sources.try_acquire(a).is_some());
        let _v6 = sources
            .try_acquire(IpAddr::V6(Ipv6Addr::LOCALHOST))
            .unwrap();
    }

    #[test]
    fn addresses_without_connections_are_forgotten() {
        let sources = SourceLimit::new(1);
        for last in 0..=255 {
            let slot = sources.try_acquire(IpAddr::V4(Ipv4Addr::new(10, 0, 0, last)));
            drop(slot);
        }
        assert!(sources.open.lock().unwrap().is_empty());
    }
}

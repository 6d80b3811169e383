//! [`ReplayCache`]: the (reader, nonce) pairs of recently served blob requests, so one signed
//! request reads a blob once. A request is only accepted within the relay's time window
//! around its own time, so an entry can be forgotten once that window has passed; the cache
//! is bounded and, when full of live entries, refuses new requests rather than forget a live
//! one (forgetting would re-open a replay).

use ledger::crypto::Address;
use ledger::types::TimeMs;
use std::collections::{BTreeSet, HashSet};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("nonce {nonce} of {reader:?} was already used")]
    Replayed { reader: Address, nonce: u64 },
    #[error("{capacity} requests are still inside their replay window")]
    Full { capacity: usize },
}

#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    seen: HashSet<(Address, u64)>,
    /// (expiry, reader, nonce), oldest expiry first.
    by_expiry: BTreeSet<(TimeMs, Address, u64)>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        ReplayCache {
            capacity,
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records (`reader`, `nonce`) until `expires_at`, forgetting entries expired by `now`.
    /// Fails if the pair is already recorded, or if the cache is full of live entries.
    pub fn insert(
        &mut self,
        reader: Address,
        nonce: u64,
        expires_at: TimeMs,
        now: TimeMs,
    ) -> Result<(), ReplayError> {
        while let Some(&(expiry, r, n)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&(r, n));
        }
        if self.seen.contains(&(reader, nonce)) {
            return Err(ReplayError::Replayed { reader, nonce });
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full {
                capacity: self.capacity,
            });
        }
        self.seen.insert((reader, nonce));
        self.by_expiry.insert((expires_at, reader, nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::crypto::PublicKey;

    const ALICE: PublicKey = PublicKey([1; 32]);
    const BOB: PublicKey = PublicKey([2; 32]);

    #[test]
    fn a_pair_is_accepted_once_while_live() {
        let mut cache = ReplayCache::new(10);
        cache.insert(ALICE, 7, 1_000, 0).unwrap();
        assert_eq!(
            cache.insert(ALICE, 7, 1_000, 500),
            Err(ReplayError::Replayed {
                reader: ALICE,
                nonce: 7
            })
        );
        // Same nonce, other reader: a different request.
        cache.insert(BOB, 7, 1_000, 500).unwrap();
        // At its expiry the entry is still live; after it, it is forgotten.
        assert!(cache.insert(ALICE, 7, 2_000, 1_000).is_err());
        cache.insert(ALICE, 7, 2_000, 1_001).unwrap();
    }

    #[test]
    fn a_full_cache_refuses_instead_of_forgetting_live_entries() {
        let mut cache = ReplayCache::new(2);
        cache.insert(ALICE, 1, 100, 0).unwrap();
        cache.insert(ALICE, 2, 200, 0).unwrap();
        assert_eq!(
            cache.insert(ALICE, 3, 300, 50),
            Err(ReplayError::Full { capacity: 2 })
        );
        assert!(
            cache.insert(ALICE, 1, 300, 50).is_err(),
            "still live, still refused"
        );
        // Once the first entry expires there is room again.
        cache.insert(ALICE, 3, 300, 101).unwrap();
        assert_eq!(cache.len(), 2);
    }
}

//! The validator's transaction pool: pure bookkeeping, no I/O, no async, no clock.
//!
//! # What it owns
//! Every tx that passed admission and is not yet known to be committed: its canonical bytes,
//! its decoded form and its hash ([`ledger::Tx::hash`]), indexed by hash (deduplication) and
//! by signer and nonce (ordering). It owns no chain state: each call that needs the chain is
//! given a [`StateRead`] of the latest committed state, and [`Mempool::reap`] the context of
//! the block being proposed. Gossip is the node's job: it forwards what [`Mempool::insert`]
//! accepts, so each tx moves towards the proposer once per node (a tx already held is refused
//! as [`Rejected::Duplicate`] and not forwarded again), and at most `tx_forward_hops` times
//! (see `rpc`).
//!
//! # Admission
//! [`Mempool::insert`] answers accept (the tx hash) or one typed [`Rejected`] reason, checking
//! in this order: a tx already held, and a pool already full (by hash and length, before any
//! signature work: a flood against a full pool costs a hash per tx); size, encoding, chain id
//! and signatures ([`ledger::exec::check_tx_stateless`]); the nonce against the signer's
//! expected nonce in state (not stale, not taken by another pending tx, at most
//! `max_per_signer - 1` ahead); then the bounds again. A rejected tx leaves the pool unchanged.
//!
//! # Fairness
//! [`Mempool::reap`] fills a block round-robin over signers: one tx per signer per round,
//! each signer's txs in nonce order, only consecutive nonces from the signer's expected one.
//! The rotation starts at the signer at index `height mod n` (signers in key order, `n` the
//! number with a tx ready), so it is deterministic yet no signer is systematically first.
//! Every candidate is executed on top of the txs already chosen; one that fails is left out
//! together with its signer's later txs, so the block applies as a whole.
//!
//! # Bounds, and why
//! - `max_txs` and `max_bytes` (tx bytes held) cap memory: a node must survive a flood.
//!   When full the pool refuses new txs rather than evicting: without fees there is no price
//!   to rank txs by, and first come, first kept cannot be gamed by resubmitting.
//! - `max_per_signer` caps both how far ahead of its state nonce a signer may queue and how
//!   many txs it may hold, so one account (or a runaway device gateway) cannot fill the pool
//!   or the blocks: filling the pool takes at least `max_txs / max_per_signer` accounts.
//!   Both checks exist because the window moves with the state passed in, while the count
//!   also covers txs a commit made stale before [`Mempool::remove_committed`] ran.
//! - Reaping never exceeds [`MAX_BLOCK_TXS`] or [`MAX_BLOCK_BYTES`], whatever the caller asks,
//!   because validators reject larger blocks.
//!
//! Memory is about twice [`Mempool::bytes`]: each tx is held as bytes and decoded.
//!
//! # Expiry
//! A tx that never becomes executable (one that keeps failing, one behind a nonce gap, one
//! from a key that is not an account) would otherwise stay until its signer's nonce moves past
//! it, blocking its signer's later txs ([`Rejected::NonceTaken`]) and, from many free keys,
//! filling the pool. Every tx therefore expires `ttl_blocks` commits after admission.
//!
//! # Recheck
//! A signer's next tx can stop being executable after admission: a block revoked the consent
//! it uses, or spent the balance it moves. Left alone it would fail at every proposal and hold
//! its signer's later nonces ([`Rejected::NonceTaken`]) until it expires. So after each commit
//! [`Mempool::remove_committed`] executes, on the new state, the next tx of signers whose
//! next tx has already sat through a commit (at most [`MAX_RECHECKS_PER_COMMIT`], rotating),
//! and evicts each that fails. Its reason is kept ([`Mempool::eviction`], the last
//! [`EVICTIONS_KEPT`]), so the submitter can learn why its tx will never land.

use ledger::crypto::sha256;
use ledger::exec::{apply_checked_tx, check_tx_stateless, expected_nonce, MAX_BLOCK_BYTES, MAX_BLOCK_TXS};
use ledger::state::StateRead;
use ledger::tx::MAX_TX_BYTES;
use ledger::{BlockBuilder, BlockContext, BlockError, BlockOutcome, Hash, PublicKey, Tx, TxError};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::fmt;

/// Most signers' next txs re-executed after one commit (the recheck's cost is bounded per block).
pub const MAX_RECHECKS_PER_COMMIT: usize = 64;
/// Most eviction reasons remembered (oldest forgotten first).
pub const EVICTIONS_KEPT: usize = 10_000;

/// Limits of one pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most txs held.
    pub max_txs: usize,
    /// Most tx bytes held.
    pub max_bytes: usize,
    /// Most txs held per signer, and how far past its expected nonce a signer may queue.
    pub max_per_signer: usize,
    /// Commits after which a tx still in the pool is dropped.
    pub ttl_blocks: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        MempoolConfig {
            max_txs: 50_000,
            max_bytes: 64 * 1024 * 1024,
            max_per_signer: 512,
            ttl_blocks: 600,
        }
    }
}

/// Why [`Mempool::insert`] refused a tx. The pool is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejected {
    /// Too large, malformed, for another chain or badly signed
    /// ([`ledger::exec::check_tx_stateless`]); or the state is corrupt (`TxError::Corrupt`).
    #[error("invalid tx: {0}")]
    Invalid(#[from] TxError),
    /// The nonce was already used by a committed tx.
    #[error("nonce {got} is already used, the signer's next nonce is {expected}")]
    StaleNonce { expected: u64, got: u64 },
    /// The nonce is `max_ahead` or more past the signer's next nonce.
    #[error("nonce {got} is too far ahead of the signer's next nonce {expected} (window {max_ahead})")]
    NonceTooFarAhead { expected: u64, got: u64, max_ahead: u64 },
    /// The pool already holds this tx.
    #[error("tx {0} is already in the pool")]
    Duplicate(Hash),
    /// The pool holds another tx with the same signer and nonce; the first one is kept.
    #[error("the pool already holds a different tx from {signer:?} with nonce {nonce}")]
    NonceTaken { signer: PublicKey, nonce: u64 },
    /// The pool holds `max_txs` txs.
    #[error("the pool is full ({max_txs} txs)")]
    PoolFull { max_txs: usize },
    /// The tx does not fit in the pool's `max_bytes`.
    #[error("the pool is full ({max_bytes} bytes)")]
    PoolBytesFull { max_bytes: usize },
    /// The signer already has `max` txs in the pool.
    #[error("{signer:?} already has {max} txs in the pool")]
    SignerQueueFull { signer: PublicKey, max: usize },
    /// A thread panicked while holding the pool; this node takes no txs until restarted.
    #[error("this node's mempool is unusable after an internal failure; try another node")]
    Unavailable,
}

/// One admitted tx.
struct Entry {
    hash: Hash,
    /// Canonical bytes, as they go into a block.
    bytes: Vec<u8>,
    tx: Tx,
    /// Value of the pool's commit counter when the tx was admitted.
    admitted_at: u64,
}

/// The transaction pool (see the module docs).
pub struct Mempool {
    chain_id: String,
    config: MempoolConfig,
    /// Each signer's pending txs by nonce. A signer with no tx has no entry.
    queues: BTreeMap<PublicKey, BTreeMap<u64, Entry>>,
    /// Where each held tx sits in `queues`.
    by_hash: BTreeMap<Hash, (PublicKey, u64)>,
    /// Sum of held tx byte lengths.
    bytes: usize,
    /// Blocks committed since the pool was made (drives expiry).
    commits: u64,
    /// Why recently evicted txs were dropped, by tx hash, with their order for forgetting.
    evictions: HashMap<Hash, TxError>,
    eviction_order: VecDeque<Hash>,
}

impl fmt::Debug for Mempool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mempool")
            .field("chain_id", &self.chain_id)
            .field("config", &self.config)
            .field("txs", &self.by_hash.len())
            .field("bytes", &self.bytes)
            .field("signers", &self.queues.len())
            .finish()
    }
}

impl Mempool {
    pub fn new(chain_id: String, config: MempoolConfig) -> Self {
        Mempool {
            chain_id,
            config,
            queues: BTreeMap::new(),
            by_hash: BTreeMap::new(),
            bytes: 0,
            commits: 0,
            evictions: HashMap::new(),
            eviction_order: VecDeque::new(),
        }
    }

    /// Why the tx `hash` was evicted by a recheck, if it was one of the last [`EVICTIONS_KEPT`].
    pub fn eviction(&self, hash: &Hash) -> Option<&TxError> {
        self.evictions.get(hash)
    }

    /// Admission: stateless checks ([`check_tx_stateless`]), duplicate by tx hash, nonce at
    /// least the signer's expected nonce in `state` ([`expected_nonce`]) and below expected +
    /// `max_per_signer`, not taken by another pending tx; bounded in total count and bytes and
    /// per signer. Returns the tx hash; the caller gossips the tx on.
    pub fn insert(&mut self, state: &dyn StateRead, tx_bytes: Vec<u8>) -> Result<Hash, Rejected> {
        self.refuse_cheaply(&tx_bytes)?;
        let tx = check_tx_stateless(&self.chain_id, &tx_bytes)?;
        self.insert_checked(state, tx)
    }

    /// The refusals that need no signature check: `Duplicate` if the pool holds exactly these
    /// bytes (re-gossip of a held tx costs one hash; encodings are canonical (ledger::codec),
    /// so equal hashes of raw bytes mean the same tx), `PoolFull` / `PoolBytesFull` if the
    /// pool could not take it anyway.
    pub fn refuse_cheaply(&self, tx_bytes: &[u8]) -> Result<(), Rejected> {
        if tx_bytes.len() <= MAX_TX_BYTES {
            let hash = sha256(tx_bytes);
            if self.by_hash.contains_key(&hash) {
                return Err(Rejected::Duplicate(hash));
            }
        }
        self.refuse_when_full(tx_bytes.len())
    }

    /// `PoolFull` / `PoolBytesFull` if a tx of `tx_len` bytes would exceed the pool's bounds.
    fn refuse_when_full(&self, tx_len: usize) -> Result<(), Rejected> {
        if self.len() >= self.config.max_txs {
            return Err(Rejected::PoolFull {
                max_txs: self.config.max_txs,
            });
        }
        if self.bytes.saturating_add(tx_len) > self.config.max_bytes {
            return Err(Rejected::PoolBytesFull {
                max_bytes: self.config.max_bytes,
            });
        }
        Ok(())
    }

    /// The chain id txs are checked against.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// [`Mempool::insert`] for a tx that already passed
    /// [`ledger::exec::check_tx_stateless`] for this pool's chain id (size, chain id,
    /// signature): a node runs that check before taking the pool's lock, so admissions do not
    /// hold up proposing and committing.
    pub fn insert_checked(&mut self, state: &dyn StateRead, tx: Tx) -> Result<Hash, Rejected> {
        let bytes = tx.to_bytes();
        let hash = sha256(&bytes);
        if self.by_hash.contains_key(&hash) {
            return Err(Rejected::Duplicate(hash));
        }

        let signer = tx.body.signer;
        let nonce = tx.body.nonce;
        let expected = expected_nonce(state, &signer).inspect_err(|error| {
            tracing::error!(%error, "mempool: cannot read a signer's nonce");
        })?;
        if nonce < expected {
            return Err(Rejected::StaleNonce { expected, got: nonce });
        }
        let queue = self.queues.get(&signer);
        if queue.is_some_and(|q| q.contains_key(&nonce)) {
            return Err(Rejected::NonceTaken { signer, nonce });
        }
        let max_ahead = self.config.max_per_signer as u64;
        if nonce - expected >= max_ahead {
            return Err(Rejected::NonceTooFarAhead {
                expected,
                got: nonce,
                max_ahead,
            });
        }
        if queue.map_or(0, BTreeMap::len) >= self.config.max_per_signer {
            return Err(Rejected::SignerQueueFull {
                signer,
                max: self.config.max_per_signer,
            });
        }
        self.refuse_when_full(bytes.len())?;

        tracing::trace!(%hash, %signer, nonce, "mempool: admitted");
        self.bytes += bytes.len();
        self.by_hash.insert(hash, (signer, nonce));
        self.queues.entry(signer).or_default().insert(
            nonce,
            Entry {
                hash,
                bytes,
                tx,
                admitted_at: self.commits,
            },
        );
        Ok(hash)
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Number of txs held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Sum of the byte lengths of the txs held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Txs for the next block (`ctx`) on top of `state`, at most `max_txs` and `max_bytes`
    /// (and never more than [`MAX_BLOCK_TXS`] / [`MAX_BLOCK_BYTES`]).
    ///
    /// Round-robin over signers: one tx per signer per round, each signer's txs in nonce
    /// order, only consecutive nonces from its expected nonce; the first round starts at the
    /// signer at index `ctx.height mod n` among the `n` signers with a tx ready. Each
    /// candidate runs in a [`BlockBuilder`] (its signature was checked at admission) on
    /// `state` plus the txs chosen before it; one that fails, or does not fit in the bytes
    /// left, is left out with its signer's later txs.
    ///
    /// Returns the tx bytes in block order and the block's outcome, the one
    /// [`ledger::apply_block`] gives for them (validator-set rotation included). Fails only
    /// if `state` holds no validator sets.
    pub fn reap(
        &self,
        state: &dyn StateRead,
        ctx: &BlockContext,
        max_txs: usize,
        max_bytes: usize,
    ) -> Result<(Vec<Vec<u8>>, BlockOutcome), BlockError> {
        struct Lane<'p> {
            queue: &'p BTreeMap<u64, Entry>,
            next: u64,
        }

        let max_txs = max_txs.min(MAX_BLOCK_TXS);
        let max_bytes = max_bytes.min(MAX_BLOCK_BYTES);
        let mut lanes: Vec<Lane<'_>> = Vec::new();
        for (signer, queue) in &self.queues {
            match expected_nonce(state, signer) {
                Ok(next) if queue.contains_key(&next) => lanes.push(Lane { queue, next }),
                Ok(_) => {}
                Err(error) => tracing::error!(%error, %signer, "mempool: cannot read a signer's nonce"),
            }
        }
        let mut block = BlockBuilder::new(state)?;
        if lanes.is_empty() {
            return Ok((Vec::new(), block.finish(&[])));
        }
        let start = (ctx.height % lanes.len() as u64) as usize;
        lanes.rotate_left(start);

        let mut txs: Vec<Vec<u8>> = Vec::new();
        let mut bytes = 0usize;
        // Each round either takes a tx from a lane or drops the lane, so this ends.
        while !lanes.is_empty() && txs.len() < max_txs {
            lanes.retain_mut(|lane| {
                if txs.len() >= max_txs {
                    return true;
                }
                let Some(entry) = lane.queue.get(&lane.next) else {
                    return false;
                };
                if bytes + entry.bytes.len() > max_bytes {
                    return false;
                }
                // Admission checked size, chain id and signature: execute only.
                match block.push_verified(ctx, &entry.tx) {
                    Ok(()) => {
                        txs.push(entry.bytes.clone());
                        bytes += entry.bytes.len();
                        match lane.next.checked_add(1) {
                            Some(next) => {
                                lane.next = next;
                                true
                            }
                            None => false,
                        }
                    }
                    Err(error) => {
                        tracing::debug!(hash = %entry.hash, %error, "mempool: tx left out of the block");
                        false
                    }
                }
            });
        }
        let outcome = block.finish(&txs);
        Ok((txs, outcome))
    }

    /// After a block commits (`state` includes it): drops its txs, every tx whose nonce is now
    /// below its signer's expected nonce and every expired tx, then rechecks signers' next txs
    /// against the block to come (`next`; see the module docs).
    ///
    /// A nonce moves only with its signer's own txs, so only the block's signers' nonces are
    /// read (reading every pooled signer's was ~3 % of a loaded validator's CPU). Were a
    /// commit ever to go by without this call, the recheck would still evict the stale txs.
    /// `hashes` are the SHA-256 of `committed`, in the same order (the store hashed them once
    /// for the commit).
    pub fn remove_committed(
        &mut self,
        state: &dyn StateRead,
        committed: &[Vec<u8>],
        hashes: &[Hash],
        next: &BlockContext,
    ) {
        self.commits += 1;
        let oldest_kept = self.commits.saturating_sub(self.config.ttl_blocks);
        let Mempool {
            queues,
            by_hash,
            bytes,
            ..
        } = self;
        let mut moved: HashSet<PublicKey> = HashSet::with_capacity(committed.len());
        // A short `hashes` would make the zip below skip txs silently.
        assert_eq!(committed.len(), hashes.len(), "one hash per committed tx");
        for (tx_bytes, hash) in committed.iter().zip(hashes) {
            match by_hash.remove(hash) {
                Some((signer, nonce)) => {
                    if let Some(queue) = queues.get_mut(&signer) {
                        if let Some(entry) = queue.remove(&nonce) {
                            *bytes -= entry.bytes.len();
                        }
                    }
                    moved.insert(signer);
                }
                // Not held here, but the pool may hold the signer's later txs. A committed
                // tx decodes; if not, there is nothing of it to act on.
                None => {
                    if let Ok(tx) = ledger::codec::decode::<Tx>(tx_bytes) {
                        moved.insert(tx.body.signer);
                    }
                }
            }
        }
        queues.retain(|signer, queue| {
            if moved.contains(signer) {
                match expected_nonce(state, signer) {
                    Ok(expected) => {
                        let keep = queue.split_off(&expected);
                        for (_, stale) in std::mem::replace(queue, keep) {
                            by_hash.remove(&stale.hash);
                            *bytes -= stale.bytes.len();
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, %signer, "mempool: cannot read a signer's nonce")
                    }
                }
            }
            queue.retain(|_, entry| {
                let live = entry.admitted_at >= oldest_kept;
                if !live {
                    by_hash.remove(&entry.hash);
                    *bytes -= entry.bytes.len();
                }
                live
            });
            !queue.is_empty()
        });
        self.recheck(state, next);
    }

    /// Re-executes up to [`MAX_RECHECKS_PER_COMMIT`] signers' next txs that have sat through
    /// a commit, starting at a signer that rotates with the commit count, and evicts the ones
    /// that fail on `state`.
    fn recheck(&mut self, state: &dyn StateRead, next: &BlockContext) {
        if self.queues.is_empty() {
            return;
        }
        let start = (self.commits % self.queues.len() as u64) as usize;
        let mut failed: Vec<(PublicKey, u64, TxError)> = Vec::new();
        let mut checked = 0;
        let signers = self
            .queues
            .iter()
            .skip(start)
            .chain(self.queues.iter().take(start));
        for (signer, queue) in signers {
            if checked == MAX_RECHECKS_PER_COMMIT {
                break;
            }
            let Ok(expected) = expected_nonce(state, signer) else {
                continue;
            };
            // Admitted before the last commit: it had a proposal to get into.
            let Some(head) = queue.get(&expected).filter(|h| h.admitted_at + 1 < self.commits) else {
                continue;
            };
            checked += 1;
            match apply_checked_tx(state, next, &head.tx) {
                Ok(_) => {}
                // Unreadable state says nothing about the tx.
                Err(TxError::Corrupt(error)) => tracing::error!(%error, "mempool: recheck cannot read state"),
                Err(error) => failed.push((*signer, expected, error)),
            }
        }
        for (signer, nonce, error) in failed {
            let Some(queue) = self.queues.get_mut(&signer) else {
                continue;
            };
            let Some(entry) = queue.remove(&nonce) else {
                continue;
            };
            if queue.is_empty() {
                self.queues.remove(&signer);
            }
            self.by_hash.remove(&entry.hash);
            self.bytes -= entry.bytes.len();
            tracing::info!(hash = %entry.hash, %signer, nonce, %error, "mempool: evicted a tx that no longer executes");
            if self.eviction_order.len() == EVICTIONS_KEPT {
                if let Some(oldest) = self.eviction_order.pop_front() {
                    self.evictions.remove(&oldest);
                }
            }
            self.eviction_order.push_back(entry.hash);
            self.evictions.insert(entry.hash, error);
        }
    }

    /// Checks the indexes agree with each other and with the bounds.
    #[cfg(test)]
    fn assert_consistent(&self) {
        let mut count = 0;
        let mut total = 0;
        for (signer, queue) in &self.queues {
            assert!(!queue.is_empty(), "empty queue kept for {signer:?}");
            assert!(queue.len() <= self.config.max_per_signer);
            for (nonce, entry) in queue {
                assert_eq!(self.by_hash.get(&entry.hash), Some(&(*signer, *nonce)));
                assert_eq!(entry.hash, entry.tx.hash());
                assert_eq!(entry.bytes, entry.tx.to_bytes());
                count += 1;
                total += entry.bytes.len();
            }
        }
        assert_eq!(count, self.by_hash.len());
        assert_eq!(total, self.bytes);
        assert!(self.len() <= self.config.max_txs);
        assert!(self.bytes <= self.config.max_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::exec::apply_block;
    use ledger::test_utils::{Actor, TestChain, TEST_CHAIN_ID};
    use ledger::types::{Amount, Role};
    use ledger::Action;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const FUNDS: Amount = 1_000;

    /// A chain with `n` registered, funded patients (each at nonce 1) and a pool for it.
    fn setup(n: u64, config: MempoolConfig) -> (TestChain, Vec<Actor>, Mempool) {
        let mut chain = TestChain::new(1);
        let actors = (0..n)
            .map(|i| {
                let actor = chain.register(100 + i, Role::Patient);
                chain.fund(&actor, FUNDS);
                actor
            })
            .collect();
        (chain, actors, Mempool::new(TEST_CHAIN_ID.into(), config))
    }

    fn small(max_txs: usize, max_bytes: usize, max_per_signer: usize) -> MempoolConfig {
        MempoolConfig {
            max_txs,
            max_bytes,
            max_per_signer,
            ttl_blocks: 1_000,
        }
    }

    /// A transfer to the treasury at the actor's next nonce (advances it).
    fn pay(chain: &TestChain, actor: &mut Actor, amount: Amount) -> Vec<u8> {
        actor
            .tx(Action::Transfer {
                to: chain.treasury.address(),
                amount,
            })
            .to_bytes()
    }

    /// A transfer signed with an explicit nonce.
    fn pay_at(chain: &TestChain, actor: &Actor, nonce: u64, amount: Amount) -> Vec<u8> {
        Tx::new(
            &actor.keys,
            TEST_CHAIN_ID,
            nonce,
            Action::Transfer {
                to: chain.treasury.address(),
                amount,
            },
        )
        .to_bytes()
    }

    fn signer_nonce(bytes: &[u8]) -> (PublicKey, u64) {
        let tx = Tx::from_bytes(bytes).unwrap();
        (tx.body.signer, tx.body.nonce)
    }

    fn hashes(txs: &[Vec<u8>]) -> Vec<Hash> {
        txs.iter().map(|tx| sha256(tx)).collect()
    }

    /// Checks the reaped txs are exactly what `apply_block` accepts, then commits them.
    fn commit(chain: &mut TestChain, pool: &mut Mempool, txs: &[Vec<u8>], reaped: &BlockOutcome) {
        let outcome = apply_block(&chain.state, &chain.ctx(), txs).expect("reaped block applies");
        // The proposer commits the outcome its reap built: it must be the validators' own.
        assert_eq!(&outcome, reaped);
        chain.block_of_bytes(txs).expect("reaped block commits");
        pool.remove_committed(&chain.state, txs, &hashes(txs), &chain.ctx());
        pool.assert_consistent();
    }

    #[test]
    fn admits_valid_txs_in_any_nonce_order_within_the_window() {
        let (chain, actors, mut pool) = setup(1, MempoolConfig::default());
        let actor = &actors[0];
        assert!(pool.is_empty());
        let later = pay_at(&chain, actor, 2, 5);
        let next = pay_at(&chain, actor, 1, 5);
        let mut expected_bytes = 0;
        for bytes in [later, next] {
            let hash = pool.insert(&chain.state, bytes.clone()).unwrap();
            assert_eq!(hash, Tx::from_bytes(&bytes).unwrap().hash());
            assert!(pool.contains(&hash));
            expected_bytes += bytes.len();
        }
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes(), expected_bytes);
        assert!(!pool.contains(&Hash::ZERO));
        pool.assert_consistent();
    }

    /// Prepares the pool, returns the tx to insert and the expected answer.
    type Build = fn(&mut TestChain, &mut [Actor], &mut Mempool) -> (Vec<u8>, Rejected);

    struct Case {
        name: &'static str,
        config: MempoolConfig,
        build: Build,
    }

    #[test]
    fn each_reject_reason() {
        let default = MempoolConfig::default();
        let cases = [
            Case {
                name: "bad signature",
                config: default,
                build: |chain, actors, _| {
                    let mut tx = actors[0].tx_at_current_nonce(Action::Transfer {
                        to: chain.treasury.address(),
                        amount: 1,
                    });
                    tx.signature.0[0] ^= 1;
                    let error = tx.verify_signature().unwrap_err();
                    (tx.to_bytes(), Rejected::Invalid(TxError::BadSignature(error)))
                },
            },
            Case {
                name: "wrong chain",
                config: default,
                build: |chain, actors, _| {
                    let action = Action::Transfer {
                        to: chain.treasury.address(),
                        amount: 1,
                    };
                    let tx = Tx::new(&actors[0].keys, "another-chain", actors[0].nonce, action);
                    let error = TxError::WrongChain {
                        expected: TEST_CHAIN_ID.into(),
                        got: "another-chain".into(),
                    };
                    (tx.to_bytes(), Rejected::Invalid(error))
                },
            },
            Case {
                name: "oversized",
                config: default,
                build: |_, actors, _| {
                    // A correctly signed tx, just too big (600 × 32-byte ids).
                    let tx = actors[0].tx_at_current_nonce(Action::JoinStudy {
                        study: Hash::ZERO,
                        evidence: vec![Hash::ZERO; 600],
                    });
                    let bytes = tx.to_bytes();
                    assert!(bytes.len() > MAX_TX_BYTES);
                    let error = TxError::TooLarge {
                        size: bytes.len(),
                        limit: MAX_TX_BYTES,
                    };
                    (bytes, Rejected::Invalid(error))
                },
            },
            Case {
                name: "malformed",
                config: default,
                build: |_, _, _| {
                    let bytes = vec![0xAB; 40];
                    let error = Tx::from_bytes(&bytes).unwrap_err();
                    (bytes, Rejected::Invalid(TxError::Malformed(error)))
                },
            },
            Case {
                name: "stale nonce",
                config: default,
                build: |chain, actors, _| {
                    // Registration used nonce 0.
                    let bytes = pay_at(chain, &actors[0], 0, 1);
                    (bytes, Rejected::StaleNonce { expected: 1, got: 0 })
                },
            },
            Case {
                name: "nonce too far ahead",
                config: small(100, 1 << 20, 4),
                build: |chain, actors, pool| {
                    pool.insert(&chain.state, pay_at(chain, &actors[0], 4, 1))
                        .unwrap();
                    let bytes = pay_at(chain, &actors[0], 5, 1);
                    let expected = Rejected::NonceTooFarAhead {
                        expected: 1,
                        got: 5,
                        max_ahead: 4,
                    };
                    (bytes, expected)
                },
            },
            Case {
                name: "duplicate",
                config: default,
                build: |chain, actors, pool| {
                    let bytes = pay(chain, &mut actors[0], 1);
                    let hash = pool.insert(&chain.state, bytes.clone()).unwrap();
                    (bytes, Rejected::Duplicate(hash))
                },
            },
            Case {
                name: "nonce taken by a different tx",
                config: default,
                build: |chain, actors, pool| {
                    pool.insert(&chain.state, pay_at(chain, &actors[0], 1, 1))
                        .unwrap();
                    let expected = Rejected::NonceTaken {
                        signer: actors[0].address(),
                        nonce: 1,
                    };
                    (pay_at(chain, &actors[0], 1, 2), expected)
                },
            },
            Case {
                name: "pool full (count)",
                config: small(2, 1 << 20, 8),
                build: |chain, actors, pool| {
                    pool.insert(&chain.state, pay(chain, &mut actors[0], 1)).unwrap();
                    pool.insert(&chain.state, pay(chain, &mut actors[1], 1)).unwrap();
                    (pay(chain, &mut actors[2], 1), Rejected::PoolFull { max_txs: 2 })
                },
            },
            Case {
                name: "pool full, before the signature is looked at",
                config: small(2, 1 << 20, 8),
                build: |chain, actors, pool| {
                    pool.insert(&chain.state, pay(chain, &mut actors[0], 1)).unwrap();
                    pool.insert(&chain.state, pay(chain, &mut actors[1], 1)).unwrap();
                    let mut forged = Tx::from_bytes(&pay(chain, &mut actors[2], 1)).unwrap();
                    forged.signature.0[3] ^= 1;
                    (forged.to_bytes(), Rejected::PoolFull { max_txs: 2 })
                },
            },
            Case {
                name: "pool full (bytes)",
                config: small(100, 300, 8),
                build: |chain, actors, pool| {
                    let first = pay(chain, &mut actors[0], 1);
                    assert!(first.len() * 2 > 300 && first.len() <= 300);
                    pool.insert(&chain.state, first).unwrap();
                    (
                        pay(chain, &mut actors[1], 1),
                        Rejected::PoolBytesFull { max_bytes: 300 },
                    )
                },
            },
            Case {
                name: "signer queue full",
                config: small(100, 1 << 20, 2),
                build: |chain, actors, pool| {
                    // Nonce 1 commits but the pool has not been told yet: it still holds
                    // nonces 1 and 2, and nonce 3 is inside the moved window.
                    let one = pay(chain, &mut actors[0], 1);
                    pool.insert(&chain.state, one.clone()).unwrap();
                    pool.insert(&chain.state, pay(chain, &mut actors[0], 1)).unwrap();
                    chain.block_of_bytes(&[one]).unwrap();
                    let expected = Rejected::SignerQueueFull {
                        signer: actors[0].address(),
                        max: 2,
                    };
                    (pay(chain, &mut actors[0], 1), expected)
                },
            },
        ];
        let mut names = BTreeSet::new();
        for case in cases {
            assert!(names.insert(case.name));
            let (mut chain, mut actors, mut pool) = setup(3, case.config);
            let (bytes, expected) = (case.build)(&mut chain, &mut actors, &mut pool);
            let (len, held) = (pool.len(), pool.bytes());
            assert_eq!(pool.insert(&chain.state, bytes), Err(expected), "{}", case.name);
            assert_eq!(
                (pool.len(), pool.bytes()),
                (len, held),
                "{}: pool changed",
                case.name
            );
            pool.assert_consistent();
        }
    }

    #[test]
    fn reap_is_round_robin_between_signers() {
        let (mut chain, mut actors, mut pool) = setup(3, MempoolConfig::default());
        for actor in actors.iter_mut() {
            for _ in 0..10 {
                pool.insert(&chain.state, pay(&chain, actor, 1)).unwrap();
            }
        }
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 6, usize::MAX).unwrap();
        assert_eq!(txs.len(), 6);
        let picked: Vec<_> = txs.iter().map(|b| signer_nonce(b)).collect();
        // Two rounds: every signer once per round, in the same rotation, nonces in order.
        assert_eq!(picked[..3].iter().map(|p| p.0).collect::<BTreeSet<_>>().len(), 3);
        for i in 0..3 {
            assert_eq!(picked[i + 3].0, picked[i].0);
            assert_eq!((picked[i].1, picked[i + 3].1), (1, 2));
        }
        commit(&mut chain, &mut pool, &txs, &outcome);
        assert_eq!(pool.len(), 24);

        // The next block takes each signer's following nonces.
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 3, usize::MAX).unwrap();
        assert!(txs.iter().all(|b| signer_nonce(b).1 == 3));
        commit(&mut chain, &mut pool, &txs, &outcome);
    }

    #[test]
    fn rotation_start_moves_with_height() {
        let (chain, mut actors, mut pool) = setup(3, MempoolConfig::default());
        for actor in actors.iter_mut() {
            pool.insert(&chain.state, pay(&chain, actor, 1)).unwrap();
        }
        let ctx = chain.ctx();
        let firsts: BTreeSet<PublicKey> = (0..3)
            .map(|k| {
                let ctx = BlockContext {
                    height: ctx.height + k,
                    ..ctx.clone()
                };
                let (txs, _) = pool.reap(&chain.state, &ctx, 1, usize::MAX).unwrap();
                let again = pool.reap(&chain.state, &ctx, 1, usize::MAX).unwrap().0;
                assert_eq!(txs, again, "reap is deterministic");
                signer_nonce(&txs[0]).0
            })
            .collect();
        assert_eq!(firsts.len(), 3, "each signer goes first once in three heights");
    }

    #[test]
    fn reap_stops_a_signer_at_a_nonce_gap() {
        let (mut chain, actors, mut pool) = setup(2, MempoolConfig::default());
        let (a, b) = (&actors[0], &actors[1]);
        for nonce in [1, 2, 4] {
            pool.insert(&chain.state, pay_at(&chain, a, nonce, 1)).unwrap();
        }
        // b's next nonce (1) is missing entirely.
        pool.insert(&chain.state, pay_at(&chain, b, 2, 1)).unwrap();
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 100, usize::MAX).unwrap();
        let picked: Vec<_> = txs.iter().map(|b| signer_nonce(b)).collect();
        assert_eq!(picked, vec![(a.address(), 1), (a.address(), 2)]);
        commit(&mut chain, &mut pool, &txs, &outcome);
        assert_eq!(pool.len(), 2, "the txs behind gaps stay for later");
    }

    #[test]
    fn reap_skips_a_failing_tx_and_its_signers_later_txs() {
        let (mut chain, mut actors, mut pool) = setup(2, MempoolConfig::default());
        let (a, b) = actors.split_at_mut(1);
        let (a, b) = (&mut a[0], &mut b[0]);
        let a_ok = pay(&chain, a, 600);
        let a_overdraw = pay(&chain, a, 600);
        let a_after = pay(&chain, a, 1);
        let b_txs = [pay(&chain, b, 10), pay(&chain, b, 10)];
        for bytes in [&a_ok, &a_overdraw, &a_after, &b_txs[0], &b_txs[1]] {
            pool.insert(&chain.state, bytes.clone()).unwrap();
        }
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 100, usize::MAX).unwrap();
        assert_eq!(txs.len(), 3);
        assert!(txs.contains(&a_ok) && txs.contains(&b_txs[0]) && txs.contains(&b_txs[1]));
        commit(&mut chain, &mut pool, &txs, &outcome);
        // The pool keeps the overdraw: a later block may find the funds.
        assert_eq!(pool.len(), 2);
        chain.fund(a, 1_000);
        pool.remove_committed(&chain.state, &[], &[], &chain.ctx());
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 100, usize::MAX).unwrap();
        assert_eq!(txs, vec![a_overdraw, a_after]);
        commit(&mut chain, &mut pool, &txs, &outcome);
        assert!(pool.is_empty());
    }

    #[test]
    fn a_next_tx_that_stops_executing_is_evicted_with_its_reason() {
        let (mut chain, mut actors, mut pool) = setup(1, MempoolConfig::default());
        let a = &mut actors[0];
        let spend = pay(&chain, a, 600);
        let overdraw = pay(&chain, a, 600);
        let later = pay(&chain, a, 1);
        for bytes in [&spend, &overdraw, &later] {
            pool.insert(&chain.state, bytes.clone()).unwrap();
        }
        let overdraw_hash = sha256(&overdraw);
        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), 100, usize::MAX).unwrap();
        assert_eq!(txs, vec![spend]);
        // Committed in the block after its admission: it had no proposal to miss yet.
        commit(&mut chain, &mut pool, &txs, &outcome);
        assert!(pool.contains(&overdraw_hash));
        // One empty block later it has missed one and fails on the new state: evicted.
        chain.block(&[]).unwrap();
        pool.remove_committed(&chain.state, &[], &[], &chain.ctx());
        pool.assert_consistent();
        assert!(!pool.contains(&overdraw_hash));
        assert!(matches!(
            pool.eviction(&overdraw_hash),
            Some(TxError::InsufficientBalance { needed: 600, .. })
        ));
        // The later tx waits behind the freed nonce, which its signer may now fill again.
        assert_eq!(pool.len(), 1);
        let refill = pay_at(&chain, a, signer_nonce(&overdraw).1, 10);
        pool.insert(&chain.state, refill.clone()).unwrap();
        let (txs, _) = pool.reap(&chain.state, &chain.ctx(), 100, usize::MAX).unwrap();
        assert_eq!(txs, vec![refill, later]);
    }

    #[test]
    fn reap_respects_byte_and_block_limits() {
        let (mut chain, mut actors, mut pool) = setup(2, MempoolConfig::default());
        for actor in actors.iter_mut() {
            for _ in 0..3 {
                pool.insert(&chain.state, pay(&chain, actor, 1)).unwrap();
            }
        }
        let one = pool.bytes() / pool.len();
        let (txs, _) = pool
            .reap(&chain.state, &chain.ctx(), 100, 3 * one + one / 2)
            .unwrap();
        assert_eq!(txs.len(), 3);
        assert!(txs.iter().map(Vec::len).sum::<usize>() <= 3 * one + one / 2);
        assert!(pool
            .reap(&chain.state, &chain.ctx(), 0, usize::MAX)
            .unwrap()
            .0
            .is_empty());
        assert!(pool
            .reap(&chain.state, &chain.ctx(), 100, one - 1)
            .unwrap()
            .0
            .is_empty());
        // Unbounded asks are clamped to what a block may hold.
        let (txs, outcome) = pool
            .reap(&chain.state, &chain.ctx(), usize::MAX, usize::MAX)
            .unwrap();
        assert_eq!(txs.len(), 6);
        commit(&mut chain, &mut pool, &txs, &outcome);
        assert!(pool.is_empty());
    }

    #[test]
    fn remove_committed_drops_included_and_stale_txs() {
        let (mut chain, mut actors, mut pool) = setup(3, MempoolConfig::default());
        let a_txs: Vec<_> = (0..4).map(|_| pay(&chain, &mut actors[0], 1)).collect();
        let b_pooled = pay_at(&chain, &actors[1], 1, 1);
        let c_tx = pay(&chain, &mut actors[2], 1);
        for bytes in a_txs.iter().chain([&b_pooled, &c_tx]) {
            pool.insert(&chain.state, bytes.clone()).unwrap();
        }
        // A block with two of a's txs from the pool and a b tx the pool never saw, which
        // makes the pooled b tx (same nonce) stale.
        let b_other = pay_at(&chain, &actors[1], 1, 2);
        let block = vec![a_txs[0].clone(), a_txs[1].clone(), b_other];
        chain.block_of_bytes(&block).unwrap();
        pool.remove_committed(&chain.state, &block, &hashes(&block), &chain.ctx());
        pool.assert_consistent();
        let hash = |bytes: &Vec<u8>| Tx::from_bytes(bytes).unwrap().hash();
        assert!(!pool.contains(&hash(&a_txs[0])) && !pool.contains(&hash(&a_txs[1])));
        assert!(!pool.contains(&hash(&b_pooled)));
        assert!(pool.contains(&hash(&a_txs[2])) && pool.contains(&hash(&a_txs[3])));
        assert!(pool.contains(&hash(&c_tx)));
        assert_eq!(pool.len(), 3);
        assert_eq!(pool.bytes(), a_txs[2].len() + a_txs[3].len() + c_tx.len());
        // Committed txs are now stale for admission too.
        assert_eq!(
            pool.insert(&chain.state, a_txs[0].clone()),
            Err(Rejected::StaleNonce { expected: 3, got: 1 })
        );
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// A transfer from one of the actors: mostly at its next unused nonce, sometimes
        /// leaving a gap, reusing a nonce, going far ahead or stale.
        Insert { actor: usize, kind: u8, amount: Amount },
        /// Re-submit the `n`th tx built so far.
        Resubmit { n: usize },
        /// Reap a block, check it applies, commit it and tell the pool.
        Block { max_txs: usize },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0..3usize, 0..10u8, 0..300u64)
                .prop_map(|(actor, kind, amount)| Op::Insert { actor, kind, amount }),
            1 => any::<usize>().prop_map(|n| Op::Resubmit { n }),
            2 => (1..8usize).prop_map(|max_txs| Op::Block { max_txs }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn bounds_hold_and_reaped_blocks_apply(
            max_txs in 1..8usize,
            byte_slots in 1..8usize,
            max_per_signer in 1..5usize,
            ops in proptest::collection::vec(op(), 1..40),
        ) {
            let (mut chain, actors, _) = setup(3, MempoolConfig::default());
            // Every transfer encodes to the same length.
            let one = pay_at(&chain, &actors[0], 0, 1).len();
            let config = small(max_txs, byte_slots * one + one / 2, max_per_signer);
            let mut pool = Mempool::new(TEST_CHAIN_ID.into(), config);
            let mut built: Vec<Vec<u8>> = Vec::new();
            let mut next = [0u64; 3];
            for op in ops {
                match op {
                    Op::Insert { actor: i, kind, amount } => {
                        let actor = &actors[i];
                        let expected = expected_nonce(&chain.state, &actor.address()).unwrap();
                        next[i] = next[i].max(expected);
                        let nonce = match kind {
                            0..=5 => next[i],
                            6 => next[i] + 1,
                            7 => next[i].saturating_sub(1),
                            8 => expected - 1,
                            _ => expected + 8,
                        };
                        let bytes = pay_at(&chain, actor, nonce, amount);
                        built.push(bytes.clone());
                        if pool.insert(&chain.state, bytes).is_ok() {
                            next[i] = next[i].max(nonce + 1);
                        }
                    }
                    Op::Resubmit { n } => {
                        if !built.is_empty() {
                            let bytes = built[n % built.len()].clone();
                            let hash = Tx::from_bytes(&bytes).unwrap().hash();
                            let held = pool.contains(&hash);
                            let result = pool.insert(&chain.state, bytes);
                            prop_assert!(!held || result == Err(Rejected::Duplicate(hash)));
                        }
                    }
                    Op::Block { max_txs } => {
                        let (txs, outcome) = pool.reap(&chain.state, &chain.ctx(), max_txs, usize::MAX).unwrap();
                        prop_assert!(txs.len() <= max_txs);
                        commit(&mut chain, &mut pool, &txs, &outcome);
                    }
                }
                pool.assert_consistent();
                prop_assert!(pool.len() <= config.max_txs && pool.bytes() <= config.max_bytes);
            }
        }
    }

    #[test]
    fn txs_that_never_become_executable_expire() {
        let mut chain = TestChain::new(1);
        let mut alice = chain.register(1, Role::Patient);
        let config = MempoolConfig {
            ttl_blocks: 3,
            ..MempoolConfig::default()
        };
        let mut pool = Mempool::new(TEST_CHAIN_ID.into(), config);
        // Nonce gap: nonce 1 while 0 is missing; it can never be reaped.
        alice.nonce += 1;
        let gapped = alice.tx(Action::Transfer {
            to: alice.address(),
            amount: 1,
        });
        pool.insert(&chain.state, gapped.to_bytes()).unwrap();
        for _ in 0..3 {
            chain.block(&[]).unwrap();
            pool.remove_committed(&chain.state, &[], &[], &chain.ctx());
            assert_eq!(pool.len(), 1);
        }
        chain.block(&[]).unwrap();
        pool.remove_committed(&chain.state, &[], &[], &chain.ctx());
        assert!(pool.is_empty());
        assert_eq!(pool.bytes(), 0);
    }
}

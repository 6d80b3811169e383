//! [`LightClient`]: trust from a root, headers verified from relays (sequential, skipping with
//! bisection), cross-checked against witness relays, state answers checked against proofs,
//! txs signed locally and followed until a verified block includes them.
//!
//! The first relay is the primary; the others are witnesses. A primary that lies is dropped
//! in favour of the next relay; a witness with a conflicting *valid* header is a fork, after
//! which no new header is trusted (DESIGN §6).

use crate::source::{ChainSource, SourceError};
use crate::trust::{check_not_expired, ForkEvidence, TrustRoot, TrustSnapshot, TrustedHeader, TrustedWindow};
use crate::LightClientError;
use ledger::crypto::{Hash, PublicKey, SigningKey};
use ledger::header::Height;
use ledger::state::StateProof;
use ledger::tx::{Action, TxBody};
use ledger::types::TimeMs;
use ledger::verify::{verify_commit, verify_skipping, SignatureCheck, TrustOptions, TrustedBlock, Verdict};
use ledger::ValidatorSet;
use protocol::SignedHeader;
use std::collections::HashMap;
use std::sync::Arc;
use tracing::{debug, info, warn};

/// The clock the client checks trusting periods and header times against (ms since epoch).
pub type Clock = Arc<dyn Fn() -> TimeMs + Send + Sync>;

/// Distinct validator sets kept by hash; sets rarely change, so following the chain needs
/// no set requests at all once the current set is known.
const MAX_CACHED_SETS: usize = 16;

/// A proven state answer: the value, and what it was proven against.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified<T> {
    pub value: T,
    pub height: Height,
    pub state_root: Hash,
    /// Bytes of the Merkle proof that was checked (shown in the dashboard's proof summary).
    pub proof_bytes: usize,
}

impl<T> Verified<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            value: f(self.value),
            height: self.height,
            state_root: self.state_root,
            proof_bytes: self.proof_bytes,
        }
    }
}

/// A tx a verified block includes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Included {
    pub hash: Hash,
    pub height: Height,
    pub index: u64,
}

/// One relay as the status shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayStatus {
    pub label: String,
    pub primary: bool,
    /// Why the client stopped believing this relay, if it did.
    pub faulty: Option<String>,
}

/// What the dashboard shows at all times: the verified head and how it was verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub chain_id: String,
    pub head: Option<HeadSummary>,
    pub relays: Vec<RelayStatus>,
    pub fork: Option<ForkEvidence>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeadSummary {
    pub height: Height,
    pub time: TimeMs,
    pub id: Hash,
    pub state_root: Hash,
    pub validators: usize,
    pub signed_power: u64,
    pub total_power: u64,
}

struct Relay<S> {
    source: S,
    faulty: Option<String>,
}

pub struct LightClient<S> {
    root: TrustRoot,
    options: TrustOptions,
    clock: Clock,
    relays: Vec<Relay<S>>,
    primary: usize,
    window: TrustedWindow,
    sets: HashMap<Hash, ValidatorSet>,
    fork: Option<ForkEvidence>,
    /// Next nonce per signer for txs sent but maybe not yet committed.
    pending_nonces: HashMap<PublicKey, u64>,
}

impl<S> std::fmt::Debug for LightClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LightClient")
            .field("chain_id", &self.root.chain_id())
            .field("head", &self.window.newest().map(TrustedHeader::height))
            .field("relays", &self.relays.len())
            .field("fork", &self.fork.is_some())
            .finish()
    }
}

/// The system clock (the browser's `Date.now()` in wasm).
pub fn system_clock() -> Clock {
    Arc::new(crate::time::now_ms)
}

impl<S: ChainSource> LightClient<S> {
    /// A client trusting `root`, talking to `relays` (the first is the primary).
    pub fn new(root: TrustRoot, options: TrustOptions, relays: Vec<S>, clock: Clock) -> Self {
        LightClient {
            root,
            options,
            clock,
            relays: relays
                .into_iter()
                .map(|source| Relay { source, faulty: None })
                .collect(),
            primary: 0,
            window: TrustedWindow::default(),
            sets: HashMap::new(),
            fork: None,
            pending_nonces: HashMap::new(),
        }
    }

    /// Resumes from a stored snapshot instead of the trust root. The newest stored header
    /// must still be within the trusting period.
    pub fn restore(&mut self, snapshot: TrustSnapshot) -> Result<(), LightClientError> {
        if snapshot.chain_id != self.root.chain_id() {
            return Err(LightClientError::Store(format!(
                "stored trust is for chain {}, this client is for {}",
                snapshot.chain_id,
                self.root.chain_id()
            )));
        }
        let Some(newest) = snapshot.headers.last() else {
            return Err(LightClientError::Store("stored trust holds no header".into()));
        };
        check_not_expired(newest.height(), newest.time(), &self.options, self.now())?;
        // A tampered store must not smuggle in an unsigned header: re-check each commit, and
        // take nothing unless all of them verify.
        for header in &snapshot.headers {
            verify_commit(
                self.root.chain_id(),
                &header.signed.header,
                &header.signed.commit,
                &header.validators,
            )
            .map_err(|e| LightClientError::Store(format!("stored header does not verify: {e}")))?;
        }
        for header in snapshot.headers {
            self.cache_set(header.validators.clone());
            self.window.insert(header);
        }
        self.fork = snapshot.fork;
        Ok(())
    }

    pub fn snapshot(&self) -> TrustSnapshot {
        TrustSnapshot::new(self.root.chain_id(), &self.window, self.fork.as_ref())
    }

    pub fn chain_id(&self) -> &str {
        self.root.chain_id()
    }

    pub fn head(&self) -> Option<&TrustedHeader> {
        self.window.newest()
    }

    pub fn trusted(&self, height: Height) -> Option<&TrustedHeader> {
        self.window.get(height)
    }

    pub fn trusted_count(&self) -> usize {
        self.window.len()
    }

    pub fn fork(&self) -> Option<&ForkEvidence> {
        self.fork.as_ref()
    }

    pub fn relays(&self) -> impl Iterator<Item = &S> {
        self.relays.iter().map(|r| &r.source)
    }

    pub fn status(&self) -> Status {
        let head = self.window.newest().map(|h| {
            let signed_power = h
                .signed
                .commit
                .signatures
                .iter()
                .filter_map(|s| h.validators.get(&s.validator).map(|v| v.power))
                .sum();
            HeadSummary {
                height: h.height(),
                time: h.time(),
                id: h.id(),
                state_root: h.signed.header.state_root,
                validators: h.validators.len(),
                signed_power,
                total_power: h.validators.total_power(),
            }
        });
        Status {
            chain_id: self.chain_id().to_string(),
            head,
            relays: self
                .relays
                .iter()
                .enumerate()
                .map(|(i, r)| RelayStatus {
                    label: r.source.label(),
                    primary: i == self.primary,
                    faulty: r.faulty.clone(),
                })
                .collect(),
            fork: self.fork.clone(),
        }
    }

    fn now(&self) -> TimeMs {
        (self.clock)()
    }

    fn primary(&self) -> Result<&Relay<S>, LightClientError> {
        self.relays.get(self.primary).ok_or(LightClientError::NoRelay)
    }

    fn source_error(relay: &Relay<S>, error: SourceError) -> LightClientError {
        LightClientError::Source {
            relay: relay.source.label(),
            error,
        }
    }

    /// Stops using a relay that proved to lie, and moves the primary to an honest one.
    fn mark_faulty(&mut self, index: usize, error: &LightClientError) {
        let Some(relay) = self.relays.get_mut(index) else {
            return;
        };
        warn!(relay = %relay.source.label(), %error, "relay lied; no longer trusted");
        relay.faulty = Some(error.to_string());
        if index == self.primary {
            if let Some(next) = self.relays.iter().position(|r| r.faulty.is_none()) {
                self.primary = next;
            }
        }
    }

    fn cache_set(&mut self, set: ValidatorSet) {
        if self.sets.len() >= MAX_CACHED_SETS {
            self.sets.clear();
        }
        self.sets.insert(set.hash(), set);
    }

    /// The set with hash `expected` that signs block `height`, from the cache or the relay.
    async fn set_for(
        &mut self,
        relay: usize,
        height: Height,
        expected: Hash,
    ) -> Result<ValidatorSet, LightClientError> {
        if let Some(set) = self.sets.get(&expected) {
            return Ok(set.clone());
        }
        let relay = self.relays.get(relay).ok_or(LightClientError::NoRelay)?;
        let set = relay
            .source
            .validator_set(height)
            .await
            .map_err(|e| Self::source_error(relay, e))?;
        if set.hash() != expected {
            return Err(LightClientError::ValidatorSetMismatch {
                relay: relay.source.label(),
                height,
            });
        }
        self.cache_set(set.clone());
        Ok(set)
    }

    async fn fetch_header(&self, relay: usize, height: Height) -> Result<SignedHeader, LightClientError> {
        let relay = self.relays.get(relay).ok_or(LightClientError::NoRelay)?;
        let signed = relay
            .source
            .signed_header(height)
            .await
            .map_err(|e| Self::source_error(relay, e))?;
        if signed.header.height != height {
            return Err(LightClientError::WrongHeight {
                relay: relay.source.label(),
                asked: height,
                got: signed.header.height,
            });
        }
        Ok(signed)
    }

    /// Establishes the first trusted header from the trust root (no-op once trusted).
    pub async fn bootstrap(&mut self) -> Result<(), LightClientError> {
        if !self.window.is_empty() {
            return Ok(());
        }
        let relay = self.primary;
        let now = self.now();
        let trusted = match self.root.clone() {
            TrustRoot::Genesis(genesis) => {
                check_not_expired(0, genesis.genesis_time, &self.options, now)?;
                let set = genesis
                    .validator_set()
                    .map_err(|e| LightClientError::Store(format!("genesis validator set: {e}")))?;
                let signed = self.fetch_header(relay, 1).await?;
                let label = self.primary()?.source.label();
                let invalid = |error| LightClientError::InvalidHeader {
                    relay: label.clone(),
                    height: 1,
                    error,
                };
                if signed.header.last_block_id != Hash::ZERO {
                    return Err(invalid(ledger::verify::VerifyError::LastBlockIdMismatch {
                        expected: Hash::ZERO,
                        got: signed.header.last_block_id,
                    }));
                }
                ledger::verify::is_not_from_future(signed.header.time, now, self.options.max_clock_drift_ms)
                    .map_err(invalid)?;
                verify_commit(&genesis.chain_id, &signed.header, &signed.commit, &set).map_err(invalid)?;
                TrustedHeader {
                    signed,
                    validators: set,
                }
            }
            TrustRoot::Pinned {
                height,
                hash,
                chain_id,
            } => {
                let signed = self.fetch_header(relay, height).await?;
                let label = self.primary()?.source.label();
                if signed.header.id() != hash {
                    return Err(LightClientError::PinMismatch {
                        relay: label,
                        height,
                        expected: hash,
                        got: signed.header.id(),
                    });
                }
                check_not_expired(height, signed.header.time, &self.options, now)?;
                let set = self.set_for(relay, height, signed.header.validators_hash).await?;
                verify_commit(&chain_id, &signed.header, &signed.commit, &set).map_err(|error| {
                    LightClientError::InvalidHeader {
                        relay: label,
                        height,
                        error,
                    }
                })?;
                TrustedHeader {
                    signed,
                    validators: set,
                }
            }
        };
        info!(height = trusted.height(), "trust root established");
        self.cache_set(trusted.validators.clone());
        self.window.insert(trusted);
        Ok(())
    }

    /// Verifies `target` (served by relay `relay`) from the trusted window, bisecting through
    /// headers fetched from the same relay when a skip lacks trust. Trusts nothing unless the
    /// whole path verifies; intermediate headers that verified stay trusted.
    async fn verify_to(
        &mut self,
        relay: usize,
        target: SignedHeader,
    ) -> Result<TrustedHeader, LightClientError> {
        let label = self
            .relays
            .get(relay)
            .ok_or(LightClientError::NoRelay)?
            .source
            .label();
        if let Some(newest) = self.window.newest() {
            check_not_expired(newest.height(), newest.time(), &self.options, self.now())?;
        }
        let mut pending = vec![target];
        loop {
            let Some(untrusted) = pending.last().cloned() else {
                return Err(LightClientError::NoRelay);
            };
            let height = untrusted.header.height;
            let base = self.window.base_for(height).cloned().ok_or_else(|| {
                LightClientError::BelowTrustedWindow {
                    height,
                    oldest: self.window.oldest().map(TrustedHeader::height).unwrap_or(0),
                }
            })?;
            if base.height() == height {
                if base.id() == untrusted.header.id() {
                    pending.pop();
                    if pending.is_empty() {
                        return Ok(base);
                    }
                    continue;
                }
                // A second header at a trusted height: the caller decides whether it is a fork.
                return Err(LightClientError::InvalidHeader {
                    relay: label,
                    height,
                    error: ledger::verify::VerifyError::LastBlockIdMismatch {
                        expected: base.id(),
                        got: untrusted.header.id(),
                    },
                });
            }
            if untrusted.header.chain_id != self.root.chain_id() {
                return Err(LightClientError::WrongChain {
                    relay: label,
                    expected: self.root.chain_id().to_string(),
                    got: untrusted.header.chain_id.clone(),
                });
            }
            let next_validators = self
                .set_for(relay, base.height() + 1, base.signed.header.next_validators_hash)
                .await?;
            let validators = self
                .set_for(relay, height, untrusted.header.validators_hash)
                .await?;
            let trusted_block = TrustedBlock {
                header: base.signed.header.clone(),
                next_validators,
            };
            let verdict = verify_skipping(
                &trusted_block,
                &untrusted.header,
                &untrusted.commit,
                &validators,
                &self.options,
                self.now(),
                SignatureCheck::UntilThreshold,
            );
            match verdict {
                Verdict::Success => {
                    debug!(height, from = base.height(), "header verified");
                    let verified = TrustedHeader {
                        signed: untrusted,
                        validators,
                    };
                    self.window.insert(verified.clone());
                    pending.pop();
                    if pending.is_empty() {
                        return Ok(verified);
                    }
                }
                Verdict::NotEnoughTrust(tally) => {
                    let pivot = base.height() + (height - base.height()) / 2;
                    debug!(height, from = base.height(), pivot, %tally, "skip lacks trust; bisecting");
                    let header = self.fetch_header(relay, pivot).await?;
                    pending.push(header);
                }
                Verdict::Invalid(error) => {
                    return Err(LightClientError::InvalidHeader {
                        relay: label,
                        height,
                        error,
                    });
                }
            }
        }
    }

    fn refuse_if_forked(&self) -> Result<(), LightClientError> {
        match &self.fork {
            Some(fork) => Err(LightClientError::ForkDetected {
                height: fork.height,
                first_relay: fork.first_relay.clone(),
                second_relay: fork.second_relay.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Verifies the primary's latest header and cross-checks it with every witness. Moves to
    /// the next relay when the primary is unreachable or lies.
    pub async fn sync(&mut self) -> Result<TrustedHeader, LightClientError> {
        self.refuse_if_forked()?;
        self.bootstrap_with_failover().await?;
        let mut last_error = LightClientError::NoRelay;
        for _ in 0..self.relays.len() {
            let relay = self.primary;
            let primary = self.primary()?;
            match primary.source.latest().await {
                Ok(latest)
                    if latest.header.height < self.window.newest().map_or(0, TrustedHeader::height) =>
                {
                    // Behind, or replaying an old head as new: never a step backwards.
                    let trusted = self.window.newest().map_or(0, TrustedHeader::height);
                    return Err(LightClientError::Stale {
                        height: latest.header.height,
                        trusted,
                    });
                }
                Ok(latest) => match self.accept_from(relay, latest).await {
                    Ok(head) => return Ok(head),
                    Err(e @ LightClientError::ForkDetected { .. }) => return Err(e),
                    Err(e) if e.blames_relay() => {
                        self.mark_faulty(relay, &e);
                        last_error = e;
                    }
                    Err(e) => return Err(e),
                },
                Err(error) => {
                    last_error = Self::source_error(primary, error);
                    self.rotate_primary();
                }
            }
        }
        Err(last_error)
    }

    async fn bootstrap_with_failover(&mut self) -> Result<(), LightClientError> {
        let mut last_error = LightClientError::NoRelay;
        for _ in 0..self.relays.len().max(1) {
            match self.bootstrap().await {
                Ok(()) => return Ok(()),
                Err(e @ LightClientError::TrustExpired { .. }) => return Err(e),
                Err(e) => {
                    if e.blames_relay() {
                        self.mark_faulty(self.primary, &e);
                    } else {
                        self.rotate_primary();
                    }
                    last_error = e;
                }
            }
        }
        Err(last_error)
    }

    fn rotate_primary(&mut self) {
        let n = self.relays.len();
        for step in 1..=n {
            let candidate = (self.primary + step) % n;
            if self.relays.get(candidate).is_some_and(|r| r.faulty.is_none()) {
                self.primary = candidate;
                return;
            }
        }
    }

    /// A head announced by gossip: verified like any header; stale ones are refused.
    pub async fn on_head(&mut self, head: SignedHeader) -> Result<TrustedHeader, LightClientError> {
        self.refuse_if_forked()?;
        let trusted = self.window.newest().map(TrustedHeader::height).unwrap_or(0);
        let height = head.header.height;
        if height <= trusted {
            // A replay of a trusted header is harmless; a different one at a trusted height is
            // checked as possible fork evidence by `accept_from`.
            let conflicting = self
                .window
                .get(height)
                .is_some_and(|known| known.id() != head.header.id());
            if conflicting {
                self.accept_from(self.primary, head).await?;
            }
            return Err(LightClientError::Stale { height, trusted });
        }
        let relay = self.primary;
        self.accept_from(relay, head).await
    }

    /// Verifies `target` from `relay`, then cross-checks it against the witnesses.
    async fn accept_from(
        &mut self,
        relay: usize,
        target: SignedHeader,
    ) -> Result<TrustedHeader, LightClientError> {
        let height = target.header.height;
        if let Some(known) = self.window.get(height).cloned() {
            if known.id() == target.header.id() {
                return Ok(known);
            }
            // Fork evidence if `target` verifies; otherwise the relay is marked as lying.
            self.check_conflict(relay, known, target).await?;
            let trusted = self.window.newest().map(TrustedHeader::height).unwrap_or(0);
            return Err(LightClientError::Stale { height, trusted });
        }
        let before = self.window.clone();
        let verified = match self.verify_to(relay, target).await {
            Ok(v) => v,
            Err(e) => {
                self.window = before;
                return Err(e);
            }
        };
        if let Err(e) = self.cross_check(relay, &verified).await {
            if matches!(e, LightClientError::ForkDetected { .. }) {
                // Keep what both agree on; the conflicting height is evidence, not trust.
                self.window = before;
            }
            return Err(e);
        }
        Ok(verified)
    }

    /// Asks each other relay for the header at the same height. A different header that also
    /// verifies is a fork; one that does not verify marks that witness as lying.
    async fn cross_check(
        &mut self,
        served_by: usize,
        verified: &TrustedHeader,
    ) -> Result<(), LightClientError> {
        let height = verified.height();
        for witness in 0..self.relays.len() {
            if witness == served_by || self.relays.get(witness).is_none_or(|r| r.faulty.is_some()) {
                continue;
            }
            let Some(relay) = self.relays.get(witness) else {
                continue;
            };
            let theirs = match relay.source.signed_header(height).await {
                Ok(theirs) => theirs,
                // Behind, or down: nothing to compare yet.
                Err(SourceError::NotFound(_)) | Err(SourceError::Unreachable(_)) => continue,
                Err(error) => {
                    let e = Self::source_error(relay, error);
                    self.mark_faulty(witness, &e);
                    continue;
                }
            };
            if theirs.header.height != height {
                let e = LightClientError::WrongHeight {
                    relay: relay.source.label(),
                    asked: height,
                    got: theirs.header.height,
                };
                self.mark_faulty(witness, &e);
                continue;
            }
            if theirs.header.id() == verified.id() {
                continue;
            }
            self.check_conflict_from(witness, served_by, verified.clone(), theirs)
                .await?;
        }
        Ok(())
    }

    async fn check_conflict(
        &mut self,
        relay: usize,
        known: TrustedHeader,
        other: SignedHeader,
    ) -> Result<(), LightClientError> {
        self.check_conflict_from(relay, relay, known, other).await
    }

    /// `other` (from `witness`) conflicts with `known` (from `first`): verify `other` on a copy
    /// of the trust state. Valid → fork evidence; invalid → the witness lied.
    async fn check_conflict_from(
        &mut self,
        witness: usize,
        first: usize,
        known: TrustedHeader,
        other: SignedHeader,
    ) -> Result<(), LightClientError> {
        let height = known.height();
        let saved = self.window.clone();
        // Verify from below the conflicting height, as if `known` had never been trusted.
        let mut below = TrustedWindow::default();
        for h in saved.iter().filter(|h| h.height() < height) {
            below.insert(h.clone());
        }
        self.window = below;
        let outcome = self.verify_to(witness, other.clone()).await;
        self.window = saved;
        match outcome {
            Ok(_) => {
                let first_relay = self
                    .relays
                    .get(first)
                    .map(|r| r.source.label())
                    .unwrap_or_default();
                let second_relay = self
                    .relays
                    .get(witness)
                    .map(|r| r.source.label())
                    .unwrap_or_default();
                warn!(height, %first_relay, %second_relay, "fork detected: two valid headers at one height");
                self.fork = Some(ForkEvidence {
                    height,
                    first: known.signed,
                    first_relay: first_relay.clone(),
                    second: other,
                    second_relay: second_relay.clone(),
                });
                Err(LightClientError::ForkDetected {
                    height,
                    first_relay,
                    second_relay,
                })
            }
            Err(e) if e.blames_relay() => {
                self.mark_faulty(witness, &e);
                Ok(())
            }
            // Could not finish checking (unreachable, below window): not evidence either way.
            Err(_) => Ok(()),
        }
    }

    /// Makes sure the header at `height` is trusted, verifying it from the window if needed.
    pub async fn verify_height(&mut self, height: Height) -> Result<TrustedHeader, LightClientError> {
        if let Some(known) = self.window.get(height) {
            return Ok(known.clone());
        }
        self.refuse_if_forked()?;
        let relay = self.primary;
        let signed = self.fetch_header(relay, height).await?;
        self.accept_from(relay, signed).await
    }

    /// The value under `key` at the trusted head, proven against its state root.
    pub async fn value(&mut self, key: &[u8]) -> Result<Verified<Option<Vec<u8>>>, LightClientError> {
        let head = self.window.newest().cloned().ok_or(LightClientError::NoRelay)?;
        self.value_at(key, &head).await
    }

    /// The value under `key` after block `trusted`, proven against its state root.
    pub async fn value_at(
        &mut self,
        key: &[u8],
        trusted: &TrustedHeader,
    ) -> Result<Verified<Option<Vec<u8>>>, LightClientError> {
        let relay = self.primary()?;
        let height = trusted.height();
        let (value, proof): (Option<Vec<u8>>, StateProof) = relay
            .source
            .state_value(key, height)
            .await
            .map_err(|e| Self::source_error(relay, e))?;
        let root = trusted.signed.header.state_root;
        proof
            .verify(&root, key, value.as_deref())
            .map_err(|error| LightClientError::BadProof {
                relay: relay.source.label(),
                height,
                error,
            })?;
        Ok(Verified {
            value,
            height,
            state_root: root,
            proof_bytes: proof.encoded_len(),
        })
    }

    /// Signs `action` with `key` (which never leaves the client), submits it, and waits until
    /// a verified block includes it. The nonce comes from verified state.
    pub async fn submit(
        &mut self,
        key: &SigningKey,
        action: Action,
        timeout_ms: u64,
    ) -> Result<Included, LightClientError> {
        self.sync().await?;
        let signer = key.public_key();
        let verified_nonce: u64 = self
            .read(&ledger::state::keys::nonce(&signer))
            .await?
            .value
            .unwrap_or(0);
        let nonce = verified_nonce.max(self.pending_nonces.get(&signer).copied().unwrap_or(0));
        let tx = TxBody {
            chain_id: self.chain_id().to_string(),
            signer,
            nonce,
            action,
        }
        .sign(key);
        let bytes = tx.to_bytes();
        let relay = self.primary()?;
        let hash = match relay
            .source
            .submit_tx(bytes)
            .await
            .map_err(|e| Self::source_error(relay, e))?
        {
            Ok(hash) => hash,
            Err(reason) => {
                // A nonce we thought pending may have been dropped: start again from verified state.
                self.pending_nonces.remove(&signer);
                return Err(LightClientError::TxRejected { reason });
            }
        };
        self.pending_nonces.insert(signer, nonce + 1);
        self.wait_included(hash, timeout_ms).await
    }

    /// Waits until a verified block includes tx `hash`, checking its inclusion proof.
    pub async fn wait_included(&mut self, hash: Hash, timeout_ms: u64) -> Result<Included, LightClientError> {
        let started = self.now();
        loop {
            let relay = self.primary()?;
            let found = relay
                .source
                .tx_inclusion(hash)
                .await
                .map_err(|e| Self::source_error(relay, e))?;
            if let Some(inclusion) = found {
                let label = relay.source.label();
                let bad = |reason: String| LightClientError::BadInclusion {
                    relay: label.clone(),
                    hash,
                    reason,
                };
                if ledger::crypto::sha256(&inclusion.tx) != hash {
                    return Err(bad("the tx bytes do not hash to the tx".into()));
                }
                let header = self.verify_height(inclusion.height).await?;
                inclusion
                    .proof
                    .verify(&header.signed.header.tx_root, &inclusion.tx)
                    .map_err(|e| bad(e.to_string()))?;
                return Ok(Included {
                    hash,
                    height: inclusion.height,
                    index: inclusion.proof.leaf_index,
                });
            }
            let waited = self.now().saturating_sub(started);
            if waited >= timeout_ms {
                return Err(LightClientError::TxTimeout {
                    hash,
                    waited_ms: waited,
                });
            }
            crate::time::sleep_ms(250).await;
        }
    }
}

//! The light client against in-process relays that serve a real `TestChain` (every block
//! executed by `ledger::apply_block`, every commit signed by the validators' keys) — honestly,
//! or with one specific lie each. Every lie must be refused with its own error and leave the
//! trusted state exactly as it was; with an honest relay beside a lying one the client still
//! makes progress, and two valid conflicting headers are reported as a fork.
#![allow(clippy::result_large_err)]

use futures::executor::block_on;
use ledger::crypto::{Hash, SigningKey};
use ledger::header::Height;
use ledger::state::keys;
use ledger::state::StateProof;
use ledger::test_utils::{validator_key, Actor, TestChain, GENESIS_TIME};
use ledger::tx::Action;
use ledger::types::Role;
use ledger::verify::{TrustOptions, VerifyError};
use ledger::{Validator, ValidatorSet};
use light_client::{ChainSource, LightClient, LightClientError, SourceError, TrustRoot, TrustSnapshot};
use protocol::headers::TxInclusion;
use protocol::SignedHeader;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// What a lying relay does wrong, from height `from` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Lie {
    None,
    TamperedSignature,
    BelowTwoThirds,
    UnknownSigner,
    DuplicateSigner,
    WrongChainId,
    WrongHeight,
    StaleLatest,
    ProofForAnotherKey,
    ProofForAnotherRoot,
    WrongValidatorSet,
}

/// A tx this relay put in a block: its hash, the height, and that block's txs.
type Included = (Hash, Height, Vec<Vec<u8>>);

struct FakeRelay {
    name: String,
    chain: Rc<RefCell<TestChain>>,
    lie: Cell<Lie>,
    /// Headers asked for, to show that skipping needs few.
    header_requests: Cell<usize>,
    /// Txs this relay put in blocks: hash → (height, that block's txs).
    included: RefCell<Vec<Included>>,
}

impl FakeRelay {
    fn honest(name: &str, chain: &Rc<RefCell<TestChain>>) -> Self {
        FakeRelay {
            name: name.into(),
            chain: chain.clone(),
            lie: Cell::new(Lie::None),
            header_requests: Cell::new(0),
            included: RefCell::new(Vec::new()),
        }
    }

    fn lying(name: &str, chain: &Rc<RefCell<TestChain>>, lie: Lie) -> Self {
        let relay = Self::honest(name, chain);
        relay.lie.set(lie);
        relay
    }

    fn block(&self, height: Height) -> Result<SignedHeader, SourceError> {
        let chain = self.chain.borrow();
        let block = height
            .checked_sub(1)
            .and_then(|i| chain.blocks.get(i as usize))
            .ok_or_else(|| SourceError::NotFound(format!("height {height}")))?;
        Ok(SignedHeader {
            header: block.header.clone(),
            commit: block.commit.clone(),
        })
    }

    fn tamper(&self, mut signed: SignedHeader) -> SignedHeader {
        let chain = self.chain.borrow();
        let keys: Vec<&SigningKey> = chain.validator_keys.values().collect();
        match self.lie.get() {
            Lie::TamperedSignature => {
                signed.commit.signatures[0].signature.0[10] ^= 1;
            }
            Lie::BelowTwoThirds => signed.commit.signatures.truncate(2),
            Lie::UnknownSigner => {
                let outsider = validator_key(999);
                let forged =
                    ledger::test_utils::sign_commit(&signed.header, signed.commit.round, &[&outsider]);
                signed.commit.signatures[0] = forged.signatures[0];
            }
            Lie::DuplicateSigner => {
                let first = signed.commit.signatures[0];
                signed.commit.signatures[1] = first;
            }
            Lie::WrongChainId => {
                // Correctly signed by the real validators, for another chain.
                signed.header.chain_id = "medledger-other".into();
                signed.commit = ledger::test_utils::sign_commit(&signed.header, 0, &keys);
            }
            _ => {}
        }
        signed
    }
}

impl ChainSource for FakeRelay {
    fn label(&self) -> String {
        self.name.clone()
    }

    async fn latest(&self) -> Result<SignedHeader, SourceError> {
        let height = self.chain.borrow().height;
        if self.lie.get() == Lie::StaleLatest {
            return self.block(1);
        }
        self.signed_header(height).await
    }

    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError> {
        self.header_requests.set(self.header_requests.get() + 1);
        if self.lie.get() == Lie::WrongHeight && height > 1 {
            return self.block(height - 1);
        }
        let signed = self.block(height)?;
        Ok(self.tamper(signed))
    }

    async fn validator_set(&self, height: Height) -> Result<ValidatorSet, SourceError> {
        let chain = self.chain.borrow();
        let block = height
            .checked_sub(1)
            .and_then(|i| chain.blocks.get(i as usize))
            .ok_or_else(|| SourceError::NotFound(format!("set at {height}")))?;
        if self.lie.get() == Lie::WrongValidatorSet {
            let fake = ValidatorSet::new(vec![Validator {
                address: validator_key(999).public_key(),
                power: 1000,
            }])
            .map_err(|e| SourceError::Misbehaved(e.to_string()))?;
            return Ok(fake);
        }
        Ok(block.validators.clone())
    }

    async fn state_value(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), SourceError> {
        let chain = self.chain.borrow();
        let (key, version) = match self.lie.get() {
            Lie::ProofForAnotherKey => (keys::governance(), height),
            // The state right after block 1, before anything was registered.
            Lie::ProofForAnotherRoot => (key.to_vec(), 1),
            _ => (key.to_vec(), height),
        };
        chain
            .state
            .get_with_proof(&key, version)
            .map_err(|e| SourceError::Unreachable(e.to_string()))
    }

    async fn tx_inclusion(&self, hash: Hash) -> Result<Option<TxInclusion>, SourceError> {
        let included = self.included.borrow();
        let Some((_, height, txs)) = included.iter().find(|(h, ..)| *h == hash) else {
            return Ok(None);
        };
        let index = txs
            .iter()
            .position(|tx| ledger::crypto::sha256(tx) == hash)
            .unwrap_or(0);
        let proof = ledger::merkle::prove_inclusion(txs, index)
            .map_err(|e| SourceError::Misbehaved(e.to_string()))?;
        Ok(Some(TxInclusion {
            height: *height,
            tx: txs[index].clone(),
            proof,
        }))
    }

    async fn submit_tx(&self, tx: Vec<u8>) -> Result<Result<Hash, String>, SourceError> {
        let hash = ledger::crypto::sha256(&tx);
        let mut chain = self.chain.borrow_mut();
        // A filler tx first so the proof has a real path (the tx is leaf 1 of 2).
        let filler = chain
            .treasury
            .tx(Action::Transfer {
                to: Actor::from_seed(42).address(),
                amount: 1,
            })
            .to_bytes();
        let txs = vec![filler, tx];
        match chain.block_of_bytes(&txs) {
            Ok(block) => {
                self.included.borrow_mut().push((hash, block.header.height, txs));
                Ok(Ok(hash))
            }
            Err(e) => {
                chain.treasury.nonce -= 1;
                Ok(Err(e.to_string()))
            }
        }
    }
}

/// A test clock a few minutes after the last block of `chain`, so trust is fresh.
fn clock_after(chain: &Rc<RefCell<TestChain>>) -> (light_client::Clock, Arc<AtomicU64>) {
    let now = Arc::new(AtomicU64::new(chain.borrow().time + 60_000));
    let shared = now.clone();
    (Arc::new(move || shared.load(Ordering::SeqCst)), now)
}

fn chain_of(validators: usize, height: Height) -> Rc<RefCell<TestChain>> {
    let mut chain = TestChain::new(validators);
    extend(&mut chain, height);
    Rc::new(RefCell::new(chain))
}

fn extend(chain: &mut TestChain, height: Height) {
    while chain.height < height {
        chain.block(&[]).unwrap();
    }
}

fn genesis_root(chain: &Rc<RefCell<TestChain>>) -> TrustRoot {
    TrustRoot::Genesis(Box::new(chain.borrow().genesis.clone()))
}

fn client(chain: &Rc<RefCell<TestChain>>, relays: Vec<FakeRelay>) -> LightClient<FakeRelay> {
    let (clock, _) = clock_after(chain);
    LightClient::new(genesis_root(chain), TrustOptions::default(), relays, clock)
}

#[test]
fn syncs_from_genesis_and_follows_each_new_head() {
    let chain = chain_of(4, 1);
    let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    assert_eq!(block_on(client.sync()).unwrap().height(), 1);
    for height in 2..=20 {
        extend(&mut chain.borrow_mut(), height);
        let head = FakeRelay::honest("gossip", &chain).block(height).unwrap();
        let verified = block_on(client.on_head(head)).unwrap();
        assert_eq!(verified.height(), height);
    }
    let status = client.status();
    let head = status.head.unwrap();
    assert_eq!((head.height, head.validators, head.total_power), (20, 4, 40));
    assert_eq!(head.signed_power, 40);
}

#[test]
fn skips_across_a_long_chain_with_few_requests() {
    let chain = chain_of(4, 2_000);
    let relay = FakeRelay::honest("a", &chain);
    let mut client = client(&chain, vec![relay]);
    let head = block_on(client.sync()).unwrap();
    assert_eq!(head.height(), 2_000);
    // Header 1 from genesis, then the head directly: the set never changed.
    let asked = client.relays().next().unwrap().header_requests.get();
    assert!(asked <= 3, "asked for {asked} headers");
}

fn chain_with_replaced_validators() -> Rc<RefCell<TestChain>> {
    let mut chain = TestChain::new(4);
    extend(&mut chain, 1);
    for key in (4..8).map(validator_key) {
        chain.add_validator_key(key.clone());
        let validator = Validator {
            address: key.public_key(),
            power: 100,
        };
        chain
            .governance_tx(Action::UpdateValidator { validator })
            .unwrap();
    }
    for i in 1..4 {
        let validator = Validator {
            address: validator_key(i).public_key(),
            power: 0,
        };
        chain
            .governance_tx(Action::UpdateValidator { validator })
            .unwrap();
    }
    extend(&mut chain, 40);
    Rc::new(RefCell::new(chain))
}

#[test]
fn bisects_across_a_validator_set_change() {
    let chain = chain_with_replaced_validators();
    let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    let head = block_on(client.sync()).unwrap();
    assert_eq!(head.height(), 40);
    assert_eq!(head.validators.len(), 5);
    // Bisection left the intermediate headers it needed in the trusted window.
    assert!(client.trusted_count() > 2, "trusted {}", client.trusted_count());
}

#[test]
fn resumes_from_a_snapshot_without_going_back_to_genesis() {
    let chain = chain_of(4, 50);
    let mut first = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    block_on(first.sync()).unwrap();
    let bytes = first.snapshot().to_bytes();

    extend(&mut chain.borrow_mut(), 60);
    let mut second = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    second
        .restore(TrustSnapshot::from_bytes(&bytes).unwrap())
        .unwrap();
    assert_eq!(second.head().unwrap().height(), 50);
    assert_eq!(block_on(second.sync()).unwrap().height(), 60);
    // Only the new head was fetched: block 1 (the genesis step) was not asked for again.
    assert_eq!(second.relays().next().unwrap().header_requests.get(), 1);
}

#[test]
fn a_tampered_snapshot_is_refused() {
    let chain = chain_of(4, 5);
    let mut first = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    block_on(first.sync()).unwrap();
    let mut snapshot = first.snapshot();
    snapshot.headers.last_mut().unwrap().signed.header.state_root = Hash([7; 32]);
    let mut second = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    assert!(matches!(
        second.restore(snapshot),
        Err(LightClientError::Store(_))
    ));
    assert!(second.head().is_none());
}

#[test]
fn an_expired_trust_root_is_refused() {
    let chain = chain_of(4, 5);
    let options = TrustOptions::default();
    let late = GENESIS_TIME + options.trusting_period_ms + 1;
    let mut client = LightClient::new(
        genesis_root(&chain),
        options,
        vec![FakeRelay::honest("a", &chain)],
        Arc::new(move || late),
    );
    assert!(matches!(
        block_on(client.sync()),
        Err(LightClientError::TrustExpired { height: 0, .. })
    ));
    assert!(client.head().is_none());
}

#[test]
fn a_pinned_header_is_checked_against_its_hash() {
    let chain = chain_of(4, 30);
    let pinned = FakeRelay::honest("x", &chain).block(10).unwrap().header.id();
    let (clock, _) = clock_after(&chain);
    let root = |hash| TrustRoot::Pinned {
        chain_id: ledger::test_utils::TEST_CHAIN_ID.into(),
        height: 10,
        hash,
    };
    let mut good = LightClient::new(
        root(pinned),
        TrustOptions::default(),
        vec![FakeRelay::honest("a", &chain)],
        clock.clone(),
    );
    assert_eq!(block_on(good.sync()).unwrap().height(), 30);
    assert!(good.trusted(10).is_some());

    let mut bad = LightClient::new(
        root(Hash([1; 32])),
        TrustOptions::default(),
        vec![FakeRelay::honest("a", &chain)],
        clock,
    );
    assert!(matches!(
        block_on(bad.sync()),
        Err(LightClientError::PinMismatch { height: 10, .. })
    ));
    assert!(bad.head().is_none());
}

/// Syncs to 10 honestly, then lets the only relay lie about 11..20: the lie must be refused
/// with `expected` and the trusted head must stay at 10.
fn refused_after_honest_start(lie: Lie) -> LightClientError {
    refused_after_honest_start_by(lie, |client| block_on(client.sync()).map(|_| ()))
}

fn refused_after_honest_start_by(
    lie: Lie,
    op: impl Fn(&mut LightClient<FakeRelay>) -> Result<(), LightClientError>,
) -> LightClientError {
    let chain = chain_of(4, 10);
    let mut client = client(&chain, vec![FakeRelay::honest("liar", &chain)]);
    block_on(client.sync()).unwrap();
    let before = client.snapshot();
    extend(&mut chain.borrow_mut(), 20);
    client.relays().next().unwrap().lie.set(lie);
    let error = match op(&mut client) {
        Ok(()) => panic!("{lie:?} was accepted"),
        Err(error) => error,
    };
    assert_eq!(client.snapshot(), before, "{lie:?} changed the trusted state");
    error
}

#[test]
fn every_lie_about_headers_is_refused_with_its_own_error() {
    let bad_header = |e: &LightClientError| match e {
        LightClientError::InvalidHeader { error, .. } => Some(error.clone()),
        _ => None,
    };
    assert!(matches!(
        bad_header(&refused_after_honest_start(Lie::TamperedSignature)),
        Some(VerifyError::BadSignature { .. })
    ));
    assert!(matches!(
        bad_header(&refused_after_honest_start(Lie::BelowTwoThirds)),
        Some(VerifyError::InsufficientVotingPower(_))
    ));
    assert!(matches!(
        bad_header(&refused_after_honest_start(Lie::UnknownSigner)),
        Some(VerifyError::UnknownSigner(_))
    ));
    assert!(matches!(
        bad_header(&refused_after_honest_start(Lie::DuplicateSigner)),
        Some(VerifyError::DuplicateSigner(_))
    ));
    assert!(matches!(
        refused_after_honest_start(Lie::WrongChainId),
        LightClientError::WrongChain { .. }
    ));
    // `latest` cannot be "the wrong height"; asking for a height can.
    assert!(matches!(
        refused_after_honest_start_by(Lie::WrongHeight, |c| block_on(c.verify_height(20)).map(|_| ())),
        LightClientError::WrongHeight {
            asked: 20,
            got: 19,
            ..
        }
    ));
    assert!(matches!(
        refused_after_honest_start(Lie::StaleLatest),
        LightClientError::Stale {
            height: 1,
            trusted: 10
        }
    ));
}

#[test]
fn a_validator_set_that_does_not_match_the_header_is_refused() {
    let chain = chain_with_replaced_validators();
    let mut client = client(
        &chain,
        vec![FakeRelay::lying("liar", &chain, Lie::WrongValidatorSet)],
    );
    // Block 1 is checked against the genesis set; the first set asked for is refused.
    let error = block_on(client.sync()).unwrap_err();
    assert!(
        matches!(error, LightClientError::ValidatorSetMismatch { .. }),
        "{error}"
    );
    assert_eq!(client.head().map(|h| h.height()), Some(1));
}

#[test]
fn a_stale_head_from_gossip_is_refused_without_change() {
    let chain = chain_of(4, 10);
    let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    block_on(client.sync()).unwrap();
    let before = client.snapshot();
    let old = FakeRelay::honest("gossip", &chain).block(4).unwrap();
    assert!(matches!(
        block_on(client.on_head(old)),
        Err(LightClientError::Stale {
            height: 4,
            trusted: 10
        })
    ));
    assert_eq!(client.snapshot(), before);
}

#[test]
fn proofs_for_another_key_or_root_are_refused() {
    let chain = chain_of(4, 10);
    let patient = {
        let mut c = chain.borrow_mut();
        let actor = c.register(42, Role::Patient);
        extend(&mut c, 12);
        actor
    };
    for lie in [Lie::ProofForAnotherKey, Lie::ProofForAnotherRoot] {
        let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
        block_on(client.sync()).unwrap();
        let honest = block_on(client.account(&patient.address())).unwrap();
        assert!(honest.value.is_some());
        assert_eq!(honest.height, 12);
        client.relays().next().unwrap().lie.set(lie);
        let error = block_on(client.account(&patient.address())).unwrap_err();
        assert!(
            matches!(error, LightClientError::BadProof { height: 12, .. }),
            "{lie:?}: {error}"
        );
    }
}

#[test]
fn absent_values_are_proven_absent() {
    let chain = chain_of(4, 3);
    let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    block_on(client.sync()).unwrap();
    let nobody = Actor::from_seed(77).address();
    let answer = block_on(client.account(&nobody)).unwrap();
    assert_eq!(answer.value, None);
    assert!(answer.proof_bytes > 0);
    assert_eq!(block_on(client.balance(&nobody)).unwrap().value, 0);
}

#[test]
fn a_lying_primary_is_dropped_and_the_honest_relay_keeps_the_client_going() {
    let chain = chain_of(4, 10);
    let relays = vec![
        FakeRelay::lying("liar", &chain, Lie::TamperedSignature),
        FakeRelay::honest("honest", &chain),
    ];
    let mut client = client(&chain, relays);
    // Block 1 verifies (the tamper starts at signature 0 of every header, so the genesis step
    // fails first): the liar is marked, the honest relay takes over.
    let head = block_on(client.sync()).unwrap();
    assert_eq!(head.height(), 10);
    let status = client.status();
    assert!(status.relays[0].faulty.is_some());
    assert!(status.relays[1].primary);
    assert!(status.fork.is_none());
}

#[test]
fn two_valid_conflicting_headers_are_a_fork_with_evidence() {
    // Same genesis and validators; the chains diverge at height 6 (different txs).
    let main = chain_of(4, 5);
    let fork = Rc::new(RefCell::new(TestChain::new(4)));
    {
        let mut f = fork.borrow_mut();
        extend(&mut f, 5);
        f.register(7, Role::Patient);
        extend(&mut f, 12);
        let mut m = main.borrow_mut();
        m.register(8, Role::Patient);
        extend(&mut m, 12);
    }
    assert_eq!(
        FakeRelay::honest("m", &main).block(5).unwrap(),
        FakeRelay::honest("f", &fork).block(5).unwrap()
    );
    let relays = vec![
        FakeRelay::honest("main", &main),
        FakeRelay::honest("forked", &fork),
    ];
    let mut client = client(&main, relays);
    let error = block_on(client.sync()).unwrap_err();
    assert!(
        matches!(error, LightClientError::ForkDetected { height: 12, .. }),
        "{error}"
    );
    let evidence = client.fork().cloned().unwrap();
    assert_eq!(evidence.height, 12);
    assert_ne!(evidence.first.header.id(), evidence.second.header.id());
    assert_eq!(
        (evidence.first_relay.as_str(), evidence.second_relay.as_str()),
        ("main", "forked")
    );
    // From now on nothing new is trusted, and the evidence survives a reload.
    assert!(matches!(
        block_on(client.sync()),
        Err(LightClientError::ForkDetected { .. })
    ));
    assert_eq!(client.snapshot().fork, Some(evidence));
}

#[test]
fn a_witness_serving_an_invalid_conflicting_header_is_marked_not_a_fork() {
    let chain = chain_of(4, 10);
    let relays = vec![
        FakeRelay::honest("honest", &chain),
        // A different header (another chain id) at the same height, validly signed for it.
        FakeRelay::lying("liar", &chain, Lie::WrongChainId),
    ];
    let mut client = client(&chain, relays);
    assert_eq!(block_on(client.sync()).unwrap().height(), 10);
    let status = client.status();
    assert!(status.fork.is_none());
    assert!(status.relays[1].faulty.is_some());
}

#[test]
fn submitted_txs_are_signed_locally_and_followed_into_a_verified_block() {
    let chain = chain_of(4, 3);
    let patient = {
        let mut c = chain.borrow_mut();
        let actor = c.register(42, Role::Patient);
        c.fund(&actor, 1_000);
        c.register(43, Role::Patient);
        actor
    };
    let mut client = client(&chain, vec![FakeRelay::honest("a", &chain)]);
    let reader = Actor::from_seed(43).address();
    let transfer = Action::Transfer {
        to: reader,
        amount: 250,
    };
    let included = block_on(client.submit(&patient.keys.signing, transfer.clone(), 5_000)).unwrap();
    assert_eq!(included.index, 1);
    assert!(client.trusted(included.height).is_some());
    block_on(client.sync()).unwrap();
    assert_eq!(block_on(client.balance(&reader)).unwrap().value, 250);
    // The nonce came from verified state and advanced: a second tx lands too.
    let again = block_on(client.submit(&patient.keys.signing, transfer, 5_000)).unwrap();
    assert!(again.height > included.height);
    // Registration was the patient's first tx, then the two transfers.
    assert_eq!(block_on(client.nonce(&patient.address())).unwrap().value, 3);
    // A tx the chain refuses comes back with the reason, nothing is waited for.
    let too_much = Action::Transfer {
        to: reader,
        amount: 1_000_000,
    };
    let refused = block_on(client.submit(&patient.keys.signing, too_much, 5_000)).unwrap_err();
    assert!(
        matches!(refused, LightClientError::TxRejected { .. }),
        "{refused}"
    );
}

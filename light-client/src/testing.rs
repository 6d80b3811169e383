//! A synthetic chain for benchmarks and browser tests (feature `testing`): a stable
//! validator set signs every header; headers are made on demand and cached, so a 100,000-block
//! chain costs only the headers a client actually asks for (plus one hash per block to chain
//! `last_block_id`). Not for correctness tests of the state machine: blocks carry no txs and
//! the state root never changes (use `ledger::test_utils::TestChain` for that).

use crate::source::{ChainSource, SourceError};
use ledger::crypto::{Hash, SigningKey};
use ledger::header::{Header, Height};
use ledger::state::StateProof;
use ledger::test_utils::{sign_commit, validator_key, GENESIS_TIME};
use ledger::types::TimeMs;
use ledger::{Genesis, Validator, ValidatorSet};
use protocol::headers::TxInclusion;
use protocol::SignedHeader;
use std::cell::RefCell;

/// Chain id of synthetic chains.
pub const SYNTHETIC_CHAIN_ID: &str = "medledger-synthetic";
/// Block interval of synthetic chains.
pub const INTERVAL_MS: TimeMs = 1_000;

#[derive(Debug)]
pub struct SyntheticChain {
    keys: Vec<SigningKey>,
    set: ValidatorSet,
    genesis: Genesis,
    pub head: Height,
    /// Block ids by height (index 0 = height 1), filled as far as needed.
    ids: RefCell<Vec<Hash>>,
}

impl SyntheticChain {
    /// `validators` equal-power validators, blocks 1..=`head`.
    pub fn new(validators: usize, head: Height) -> Self {
        let keys: Vec<SigningKey> = (0..validators as u64).map(validator_key).collect();
        let validators: Vec<Validator> = keys
            .iter()
            .map(|k| Validator {
                address: k.public_key(),
                power: 10,
            })
            .collect();
        let set = ValidatorSet::new(validators.clone()).expect("distinct test keys");
        let genesis = Genesis {
            chain_id: SYNTHETIC_CHAIN_ID.into(),
            genesis_time: GENESIS_TIME,
            validators,
            governance: validator_key(1_000_000).public_key(),
            accounts: vec![],
        };
        SyntheticChain {
            keys,
            set,
            genesis,
            head,
            ids: RefCell::new(Vec::new()),
        }
    }

    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// Block time of the last block: a clock just after it keeps trust fresh.
    pub fn head_time(&self) -> TimeMs {
        GENESIS_TIME + self.head * INTERVAL_MS
    }

    fn header_unsigned(&self, height: Height, last_block_id: Hash) -> Header {
        Header {
            chain_id: SYNTHETIC_CHAIN_ID.into(),
            height,
            time: GENESIS_TIME + height * INTERVAL_MS,
            last_block_id,
            tx_root: ledger::merkle::tx_root::<Vec<u8>>(&[]),
            state_root: Hash([7; 32]),
            validators_hash: self.set.hash(),
            next_validators_hash: self.set.hash(),
            proposer: self.set.proposer(height, 0).address,
        }
    }

    /// The header at `height` (ids of all earlier blocks are computed once and cached).
    pub fn header(&self, height: Height) -> Header {
        let mut ids = self.ids.borrow_mut();
        while (ids.len() as u64) < height {
            let h = ids.len() as u64 + 1;
            let last = ids.last().copied().unwrap_or(Hash::ZERO);
            ids.push(self.header_unsigned(h, last).id());
        }
        let last = if height > 1 {
            ids[(height - 2) as usize]
        } else {
            Hash::ZERO
        };
        self.header_unsigned(height, last)
    }

    /// The header at `height` with a commit signed by every validator.
    pub fn signed(&self, height: Height) -> SignedHeader {
        let header = self.header(height);
        let signers: Vec<&SigningKey> = self.keys.iter().collect();
        let commit = sign_commit(&header, 0, &signers);
        SignedHeader { header, commit }
    }
}

impl ChainSource for SyntheticChain {
    fn label(&self) -> String {
        "synthetic".into()
    }

    async fn latest(&self) -> Result<SignedHeader, SourceError> {
        Ok(self.signed(self.head))
    }

    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError> {
        if height == 0 || height > self.head {
            return Err(SourceError::NotFound(format!("height {height}")));
        }
        Ok(self.signed(height))
    }

    async fn validator_set(&self, _height: Height) -> Result<ValidatorSet, SourceError> {
        Ok(self.set.clone())
    }

    async fn state_value(&self, _: &[u8], _: Height) -> Result<(Option<Vec<u8>>, StateProof), SourceError> {
        Err(SourceError::NotFound("a synthetic chain has no state".into()))
    }

    async fn tx_inclusion(&self, _: Hash) -> Result<Option<TxInclusion>, SourceError> {
        Ok(None)
    }

    async fn submit_tx(&self, _: Vec<u8>) -> Result<Result<Hash, String>, SourceError> {
        Ok(Err("a synthetic chain takes no txs".into()))
    }
}

/// A client trusting `chain`'s genesis with a clock just after its head, already holding
/// block 1 (so what is timed next is verification, not bootstrap).
pub async fn client_at_block_1(chain: &SyntheticChain) -> crate::LightClient<&SyntheticChain> {
    let now = chain.head_time() + 1_000;
    let mut client = crate::LightClient::new(
        crate::TrustRoot::Genesis(Box::new(chain.genesis().clone())),
        ledger::verify::TrustOptions::default(),
        vec![chain],
        std::sync::Arc::new(move || now),
    );
    // Block 1 from a synthetic chain always verifies; a failure here is a bug in this module.
    let _ = client.bootstrap().await;
    client
}

/// Follows `heads` (heights 2..) one by one as gossip would deliver them; returns how many
/// verified.
pub async fn follow(client: &mut crate::LightClient<&SyntheticChain>, heads: Vec<SignedHeader>) -> usize {
    let mut verified = 0;
    for head in heads {
        if client.on_head(head).await.is_ok() {
            verified += 1;
        }
    }
    verified
}

impl ChainSource for &SyntheticChain {
    fn label(&self) -> String {
        (*self).label()
    }
    async fn latest(&self) -> Result<SignedHeader, SourceError> {
        (*self).latest().await
    }
    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError> {
        (*self).signed_header(height).await
    }
    async fn validator_set(&self, height: Height) -> Result<ValidatorSet, SourceError> {
        (*self).validator_set(height).await
    }
    async fn state_value(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), SourceError> {
        (*self).state_value(key, height).await
    }
    async fn tx_inclusion(&self, hash: Hash) -> Result<Option<TxInclusion>, SourceError> {
        (*self).tx_inclusion(hash).await
    }
    async fn submit_tx(&self, tx: Vec<u8>) -> Result<Result<Hash, String>, SourceError> {
        (*self).submit_tx(tx).await
    }
}

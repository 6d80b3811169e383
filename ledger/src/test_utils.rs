//! Builders for tests across the workspace (feature `test-utils`): actors with keys and
//! nonces, and an in-memory chain that executes blocks, signs commits and keeps headers.

use crate::crypto::{AccountKeys, Hash, SigningKey};
use crate::exec::{apply_block, BlockContext, BlockError, TxError};
use crate::genesis::{Genesis, GenesisAccount};
use crate::header::{precommit_sign_bytes, Commit, CommitSignature, Header, Height, Round};
use crate::state::MemoryState;
use crate::tx::{Action, Tx};
use crate::types::{Amount, Role, TimeMs};
use crate::validators::{Validator, ValidatorSet};
use std::collections::BTreeMap;

pub const TEST_CHAIN_ID: &str = "medledger-test";
pub const GENESIS_TIME: TimeMs = 1_700_000_000_000;
pub const BLOCK_INTERVAL_MS: u64 = 1_000;

/// A key holder that tracks its own nonce.
#[derive(Clone, Debug)]
pub struct Actor {
    pub keys: AccountKeys,
    pub nonce: u64,
}

impl Actor {
    /// Deterministic keys from a small seed.
    pub fn from_seed(seed: u64) -> Self {
        let mut master = [0u8; 32];
        master[..8].copy_from_slice(&seed.to_le_bytes());
        master[31] = 0xAC;
        Actor {
            keys: AccountKeys::from_master_seed(master),
            nonce: 0,
        }
    }

    pub fn address(&self) -> crate::crypto::Address {
        self.keys.address()
    }

    /// Signs `action` with the next nonce (and advances it).
    pub fn tx(&mut self, action: Action) -> Tx {
        let tx = Tx::new(&self.keys, TEST_CHAIN_ID, self.nonce, action);
        self.nonce += 1;
        tx
    }

    /// Signs `action` with the next nonce without advancing it (for txs expected to fail).
    pub fn tx_at_current_nonce(&self, action: Action) -> Tx {
        Tx::new(&self.keys, TEST_CHAIN_ID, self.nonce, action)
    }
}

/// Signs a commit for `header` with every key given.
pub fn sign_commit(header: &Header, round: Round, signers: &[&SigningKey]) -> Commit {
    let block_id = header.id();
    let message = precommit_sign_bytes(&header.chain_id, header.height, round, &block_id);
    Commit {
        height: header.height,
        round,
        block_id,
        signatures: signers
            .iter()
            .map(|k| CommitSignature {
                validator: k.public_key(),
                signature: k.sign(&message),
            })
            .collect(),
    }
}

/// One finalized block as a light client receives it.
#[derive(Clone, Debug)]
pub struct SignedBlock {
    pub header: Header,
    pub commit: Commit,
    pub validators: ValidatorSet,
    pub next_validators: ValidatorSet,
}

/// A chain in memory: genesis, then one block per call, each committed by every validator.
#[derive(Debug)]
pub struct TestChain {
    pub state: MemoryState,
    pub genesis: Genesis,
    pub height: Height,
    pub time: TimeMs,
    pub last_block_id: Hash,
    pub governance: Actor,
    /// Holds the genesis supply; [`TestChain::fund`] pays from it.
    pub treasury: Actor,
    pub validator_keys: BTreeMap<crate::crypto::PublicKey, SigningKey>,
    pub blocks: Vec<SignedBlock>,
}

impl TestChain {
    /// A chain with `validators` equal-power validators.
    pub fn new(validators: usize) -> Self {
        Self::with_powers(&vec![10; validators])
    }

    pub fn with_powers(powers: &[u64]) -> Self {
        let keys: Vec<SigningKey> = (0..powers.len()).map(|i| validator_key(i as u64)).collect();
        let governance = Actor::from_seed(1_000_000);
        let treasury = Actor::from_seed(1_000_001);
        let genesis = Genesis {
            chain_id: TEST_CHAIN_ID.into(),
            genesis_time: GENESIS_TIME,
            validators: keys
                .iter()
                .zip(powers)
                .map(|(k, p)| Validator {
                    address: k.public_key(),
                    power: *p,
                })
                .collect(),
            governance: governance.address(),
            accounts: vec![GenesisAccount {
                address: treasury.address(),
                role: Role::Auditor,
                encryption_key: treasury.keys.encryption_key(),
                balance: 1_000_000_000,
                admitted: false,
                attested_by: None,
            }],
        };
        let mut state = MemoryState::new();
        state
            .commit(&genesis.state_diff().expect("test genesis is valid"), 0)
            .expect("memory store");
        TestChain {
            state,
            genesis,
            height: 0,
            time: GENESIS_TIME,
            last_block_id: Hash::ZERO,
            governance,
            treasury,
            validator_keys: keys.into_iter().map(|k| (k.public_key(), k)).collect(),
            blocks: vec![],
        }
    }

    pub fn ctx(&self) -> BlockContext {
        BlockContext {
            chain_id: TEST_CHAIN_ID.into(),
            height: self.height + 1,
            time: self.time + BLOCK_INTERVAL_MS,
        }
    }

    /// Executes `txs` as the next block; on success commits state and signs the header.
    pub fn block(&mut self, txs: &[Tx]) -> Result<SignedBlock, BlockError> {
        let bytes: Vec<Vec<u8>> = txs.iter().map(Tx::to_bytes).collect();
        self.block_of_bytes(&bytes)
    }

    pub fn block_of_bytes(&mut self, txs: &[Vec<u8>]) -> Result<SignedBlock, BlockError> {
        let ctx = self.ctx();
        let outcome = apply_block(&self.state, &ctx, txs)?;
        let state_root = self
            .state
            .commit(&outcome.diff, ctx.height)
            .expect("memory store");
        let proposer = outcome.validators.proposer(ctx.height, 0).address;
        let header = outcome.header(&ctx, self.last_block_id, state_root, proposer);
        let signers: Vec<&SigningKey> = outcome
            .validators
            .validators()
            .iter()
            .filter_map(|v| self.validator_keys.get(&v.address))
            .collect();
        let commit = sign_commit(&header, 0, &signers);
        self.height = ctx.height;
        self.time = ctx.time;
        self.last_block_id = header.id();
        let block = SignedBlock {
            header,
            commit,
            validators: outcome.validators,
            next_validators: outcome.next_validators,
        };
        self.blocks.push(block.clone());
        Ok(block)
    }

    /// Runs one tx in its own block and returns the tx's error, if any.
    #[allow(
        clippy::panic,
        reason = "test helper: a block-level failure is a bug in the test itself"
    )]
    pub fn submit(&mut self, tx: Tx) -> Result<(), TxError> {
        match self.block(&[tx]) {
            Ok(_) => Ok(()),
            Err(BlockError::Tx { error, .. }) => Err(error),
            Err(other) => panic!("block-level failure in test: {other}"),
        }
    }

    /// Moves block time forward (the next block is `ms` + one interval later).
    pub fn advance_time(&mut self, ms: u64) {
        self.time += ms;
    }

    /// A new registered account with `role`.
    pub fn register(&mut self, seed: u64, role: Role) -> Actor {
        let mut actor = Actor::from_seed(seed);
        let key = actor.keys.encryption_key();
        self.submit(actor.tx(Action::RegisterAccount {
            role,
            encryption_key: key,
        }))
        .expect("registration");
        actor
    }

    pub fn fund(&mut self, to: &Actor, amount: Amount) {
        let tx = self.treasury.tx(Action::Transfer {
            to: to.address(),
            amount,
        });
        self.submit(tx).expect("treasury transfer");
    }

    pub fn governance_tx(&mut self, action: Action) -> Result<(), TxError> {
        let tx = self.governance.tx(action);
        let result = self.submit(tx);
        if result.is_err() {
            self.governance.nonce -= 1;
        }
        result
    }

    /// Adds a validator key the chain will sign with once the set includes it.
    pub fn add_validator_key(&mut self, key: SigningKey) {
        self.validator_keys.insert(key.public_key(), key);
    }
}

/// Deterministic validator keys.
pub fn validator_key(index: u64) -> SigningKey {
    let mut seed = [0x5Au8; 32];
    seed[..8].copy_from_slice(&index.to_le_bytes());
    SigningKey::from_seed(seed)
}

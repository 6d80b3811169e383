//! [`AccessRecorder`]: submits the `RecordAccess` tx for each served read (DESIGN §3 "Access
//! audit"), signed by the relay's storage-node account, which must be an admitted
//! organisation for the state machine to accept it.
//!
//! Nonces: a burst of reads submits txs faster than blocks commit, so the recorder keeps the
//! next nonce itself and only takes the chain's expected nonce when that is higher (after a
//! restart). When the mempool says the nonce is stale or too far ahead (txs were dropped) it
//! resyncs to the chain and retries; when a pending tx already holds the nonce it moves past it.

use crate::chain::Chain;
use ledger::crypto::{AccountKeys, Address, Hash};
use ledger::exec::expected_nonce;
use ledger::state::keys;
use ledger::state::records::Account;
use ledger::state::{CorruptState, StateRead, StateReadExt};
use ledger::tx::{Action, SignedAccessRequest, Tx};
use ledger::types::Role;
use node::mempool::Rejected;
use std::sync::Mutex;

/// How often one record is re-signed with a corrected nonce before giving up.
const NONCE_RETRIES: usize = 4;

#[derive(Debug)]
pub struct AccessRecorder {
    keys: AccountKeys,
    chain: Chain,
    /// The nonce the next record will carry, if known.
    next_nonce: Mutex<Option<u64>>,
}

impl AccessRecorder {
    pub fn new(keys: AccountKeys, chain: Chain) -> Self {
        AccessRecorder {
            keys,
            chain,
            next_nonce: Mutex::new(None),
        }
    }

    /// The storage-node account that signs access records.
    pub fn address(&self) -> Address {
        self.keys.address()
    }

    /// `true` when the relay's account is an admitted organisation in `state`, i.e. its
    /// records will be accepted.
    pub fn is_admitted(&self, state: &dyn StateRead) -> Result<bool, CorruptState> {
        Ok(state
            .read::<Account>(&keys::account(&self.address()))?
            .is_some_and(|a| a.role == Role::Organisation && a.admitted))
    }

    /// Signs and submits the access record of `request`; returns the tx hash.
    pub fn record(&self, request: &SignedAccessRequest) -> Result<Hash, Rejected> {
        let mut next = self
            .next_nonce
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let on_chain = expected_nonce(self.chain.node().store().as_ref(), &self.address())?;
        let mut nonce = next.map_or(on_chain, |n| n.max(on_chain));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let action = Action::RecordAccess {
                request: request.clone(),
            };
            let tx = Tx::new(&self.keys, self.chain.chain_id(), nonce, action);
            let error = match self.chain.submit(tx.to_bytes()) {
                Ok(hash) => {
                    *next = Some(nonce + 1);
                    return Ok(hash);
                }
                Err(error) => error,
            };
            nonce = match error {
                _ if attempt >= NONCE_RETRIES => return Err(error),
                Rejected::StaleNonce { expected, .. } | Rejected::NonceTooFarAhead { expected, .. } => {
                    expected
                }
                Rejected::NonceTaken { .. } => nonce + 1,
                other => return Err(other),
            };
        }
    }
}

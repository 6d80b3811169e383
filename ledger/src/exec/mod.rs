//! The deterministic state machine (DESIGN §3).
//!
//! [`apply_block`] and [`apply_tx`] are pure: state comes in through [`StateRead`], time and
//! height from the block header via [`BlockContext`], and the result is a [`StateDiff`] the
//! caller commits. A rejected tx returns a typed [`TxError`] and writes nothing: each tx runs
//! in its own overlay that is merged only on success.
//!
//! # Security considerations
//! Every tx is authenticated (signature over chain id, signer, nonce and action) and
//! authorised from state alone: role, admission, attestation, device ownership, consent.
//! A malicious proposer can order or omit txs, but cannot make an honest validator accept
//! a block with an invalid tx: [`apply_block`] rejects the whole block.

mod accounts;
mod data;
mod error;
mod permissions;
mod study;

pub use error::{BlockError, TxError};

use crate::codec::encode;
use crate::crypto::{Hash, PublicKey, SignatureBatch};
use crate::header::{BlockId, Header, Height};
use crate::merkle;
use crate::state::keys::{self, ValidatorSlot};
use crate::state::{Overlay, StateDiff, StateRead, StateReadExt};
use crate::tx::{Action, Tx, MAX_TX_BYTES};
use crate::types::TimeMs;
use crate::validators::ValidatorSet;

/// Most txs in one block.
pub const MAX_BLOCK_TXS: usize = 20_000;
/// Most tx bytes in one block.
pub const MAX_BLOCK_BYTES: usize = 8 * 1024 * 1024;
/// How far ahead of block time a timestamp in a tx may be (clock skew between machines).
pub const MAX_CLOCK_DRIFT_MS: u64 = 10 * 60 * 1000;
/// How old a read may be when its access record lands.
pub const ACCESS_RECORD_WINDOW_MS: u64 = 24 * 60 * 60 * 1000;

/// What the state machine knows about the block it executes: all from the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub chain_id: String,
    pub height: Height,
    pub time: TimeMs,
}

/// The result of executing a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Every write of the block, validator-set rotation included.
    pub diff: StateDiff,
    /// The set that signs this block (`validators_hash`).
    pub validators: ValidatorSet,
    /// The set that signs the next block (`next_validators_hash`).
    pub next_validators: ValidatorSet,
    /// RFC 6962 root over the block's tx bytes.
    pub tx_root: Hash,
}

impl BlockOutcome {
    /// The header of this block once the caller has committed `diff` and knows `state_root`.
    pub fn header(
        &self,
        ctx: &BlockContext,
        last_block_id: BlockId,
        state_root: Hash,
        proposer: PublicKey,
    ) -> Header {
        Header {
            chain_id: ctx.chain_id.clone(),
            height: ctx.height,
            time: ctx.time,
            last_block_id,
            tx_root: self.tx_root,
            state_root,
            validators_hash: self.validators.hash(),
            next_validators_hash: self.next_validators.hash(),
            proposer,
        }
    }
}

/// The nonce the signer's next tx must carry.
pub fn expected_nonce(state: &dyn StateRead, signer: &PublicKey) -> Result<u64, TxError> {
    Ok(state.read(&keys::nonce(signer))?.unwrap_or(0))
}

/// Checks that need no state: size, encoding, chain id and signature. The mempool runs this
/// on admission; [`apply_block`] runs the same checks (signatures in one batch).
pub fn check_tx_stateless(chain_id: &str, tx_bytes: &[u8]) -> Result<Tx, TxError> {
    let tx = decode_tx(tx_bytes)?;
    check_chain(chain_id, &tx)?;
    tx.verify_signature()?;
    Ok(tx)
}

/// [`check_tx_stateless`] for many txs at once, with the same verdict for each: their
/// signatures are verified as one batch (about half the time of one by one), and only if the
/// batch fails are they checked one by one to find the bad ones. For admitting a client's or a
/// peer's batch of txs.
pub fn check_txs_stateless(chain_id: &str, txs: &[&[u8]]) -> Vec<Result<Tx, TxError>> {
    let mut results: Vec<Result<Tx, TxError>> = txs
        .iter()
        .map(|bytes| {
            let tx = decode_tx(bytes)?;
            check_chain(chain_id, &tx)?;
            Ok(tx)
        })
        .collect();
    let mut batch = SignatureBatch::new();
    for tx in results.iter().flatten() {
        for (key, message, signature) in tx.signatures() {
            batch.queue(key, &message, signature);
        }
    }
    if batch.verify().is_err() {
        for result in results.iter_mut() {
            if let Err(e) = result.as_ref().map_or(Ok(()), Tx::verify_signature) {
                *result = Err(TxError::BadSignature(e));
            }
        }
    }
    results
}

fn decode_tx(tx_bytes: &[u8]) -> Result<Tx, TxError> {
    if tx_bytes.len() > MAX_TX_BYTES {
        return Err(TxError::TooLarge {
            size: tx_bytes.len(),
            limit: MAX_TX_BYTES,
        });
    }
    Tx::from_bytes(tx_bytes).map_err(TxError::Malformed)
}

fn check_chain(chain_id: &str, tx: &Tx) -> Result<(), TxError> {
    if tx.body.chain_id != chain_id {
        return Err(TxError::WrongChain {
            expected: chain_id.to_owned(),
            got: tx.body.chain_id.clone(),
        });
    }
    Ok(())
}

/// Applies one tx on top of `state`: all checks, signature included. On error nothing is
/// written; on success the returned diff holds exactly the tx's writes.
pub fn apply_tx(state: &dyn StateRead, ctx: &BlockContext, tx: &Tx) -> Result<StateDiff, TxError> {
    check_chain(&ctx.chain_id, tx)?;
    if encode(tx).len() > MAX_TX_BYTES {
        return Err(TxError::TooLarge {
            size: encode(tx).len(),
            limit: MAX_TX_BYTES,
        });
    }
    tx.verify_signature()?;
    apply_verified_tx(state, ctx, tx)
}

/// [`apply_tx`] for a tx that already passed [`check_tx_stateless`] for `ctx.chain_id`, such
/// as one a mempool admitted: skips the size and signature checks, which are most of the
/// cost. Only for txs this node checked itself: [`apply_block`] checks every tx of a block.
pub fn apply_checked_tx(state: &dyn StateRead, ctx: &BlockContext, tx: &Tx) -> Result<StateDiff, TxError> {
    check_chain(&ctx.chain_id, tx)?;
    apply_verified_tx(state, ctx, tx)
}

/// Applies a tx whose chain id, size and signatures (all of [`Tx::signatures`]) were already
/// checked.
fn apply_verified_tx(state: &dyn StateRead, ctx: &BlockContext, tx: &Tx) -> Result<StateDiff, TxError> {
    let mut overlay = Overlay::new(state);
    let body = &tx.body;
    let expected = expected_nonce(&overlay, &body.signer)?;
    if body.nonce != expected {
        return Err(TxError::NonceMismatch {
            signer: body.signer,
            expected,
            got: body.nonce,
        });
    }
    overlay.write(keys::nonce(&body.signer), &(expected + 1));
    let signer = body.signer;
    let nonce = body.nonce;
    match &body.action {
        Action::RegisterAccount { role, encryption_key } => {
            accounts::register(&mut overlay, signer, *role, *encryption_key)
        }
        Action::AdmitOrganisation { organisation } => {
            accounts::admit_organisation(&mut overlay, signer, organisation)
        }
        Action::UpdateValidator { validator } => accounts::update_validator(&mut overlay, signer, *validator),
        Action::AttestClinician { clinician } => accounts::attest_clinician(&mut overlay, signer, clinician),
        Action::Transfer { to, amount } => accounts::transfer(&mut overlay, signer, to, *amount),
        Action::RegisterDevice { device, loinc_codes } => {
            data::register_device(&mut overlay, ctx, signer, *device, loinc_codes)
        }
        Action::RevokeDevice { device } => data::revoke_device(&mut overlay, ctx, signer, device),
        Action::CommitData(body) => data::commit_data(&mut overlay, ctx, signer, body),
        Action::AddClinicianNote {
            patient,
            cid,
            size,
            time_range,
        } => data::add_note(&mut overlay, ctx, signer, patient, *cid, *size, *time_range),
        Action::EraseData { commitment } => data::erase(&mut overlay, ctx, signer, commitment),
        Action::SetAlertRule {
            patient,
            loinc,
            condition,
        } => data::set_alert_rule(&mut overlay, ctx, signer, nonce, patient, loinc, *condition),
        Action::RemoveAlertRule { rule } => data::remove_alert_rule(&mut overlay, signer, rule),
        Action::RaiseAlert {
            patient,
            rule,
            commitment,
        } => data::raise_alert(&mut overlay, ctx, signer, nonce, patient, rule, commitment),
        Action::GrantConsent(terms) => permissions::grant_consent(&mut overlay, ctx, signer, nonce, terms),
        Action::RevokeConsent { consent } => permissions::revoke_consent(&mut overlay, ctx, signer, consent),
        Action::OpenBreakGlass {
            patient,
            reason,
            duration_ms,
        } => permissions::open_break_glass(&mut overlay, ctx, signer, nonce, patient, *reason, *duration_ms),
        Action::RecordAccess { request } => permissions::record_access(&mut overlay, ctx, signer, request),
        Action::OpenStudy(terms) => study::open(&mut overlay, ctx, signer, nonce, terms),
        Action::JoinStudy { study, evidence } => study::join(&mut overlay, ctx, signer, study, evidence),
        Action::DeliverStudyData {
            study,
            delivery,
            commitments,
        } => study::deliver(&mut overlay, ctx, signer, study, *delivery, commitments),
        Action::CloseStudy { study } => study::close(&mut overlay, ctx, signer, study),
    }?;
    Ok(overlay.into_diff())
}

/// Executes a block's txs (canonical bytes, in order) on top of `state`.
///
/// Rejects the whole block if any tx is malformed, mis-signed or invalid: validators vote
/// only for blocks in which every tx applies. Signatures are checked in one batch first.
pub fn apply_block(
    state: &dyn StateRead,
    ctx: &BlockContext,
    txs: &[Vec<u8>],
) -> Result<BlockOutcome, BlockError> {
    apply_block_verified_in_part(state, ctx, txs, |_| false)
}

/// [`apply_block`] for a node that already checked the signatures of some of the block's txs
/// itself, on these exact bytes (its mempool admitted them): `checked(index)` names them, and
/// only the other signatures are verified. Signature checks were a seventh of a validator's
/// CPU per committed tx, and a validator has usually admitted most of a proposal's txs from
/// gossip. Never pass txs that only a peer claims are checked.
pub fn apply_block_verified_in_part(
    state: &dyn StateRead,
    ctx: &BlockContext,
    txs: &[Vec<u8>],
    checked: impl Fn(usize) -> bool,
) -> Result<BlockOutcome, BlockError> {
    if txs.len() > MAX_BLOCK_TXS {
        return Err(BlockError::TooManyTxs {
            count: txs.len(),
            limit: MAX_BLOCK_TXS,
        });
    }
    let total: usize = txs.iter().map(Vec::len).sum();
    if total > MAX_BLOCK_BYTES {
        return Err(BlockError::TooLarge {
            size: total,
            limit: MAX_BLOCK_BYTES,
        });
    }
    let mut decoded = Vec::with_capacity(txs.len());
    for (index, bytes) in txs.iter().enumerate() {
        let tx = decode_tx(bytes).map_err(|error| BlockError::Tx { index, error })?;
        check_chain(&ctx.chain_id, &tx).map_err(|error| BlockError::Tx { index, error })?;
        decoded.push(tx);
    }
    let unchecked: Vec<(usize, &Tx)> = decoded
        .iter()
        .enumerate()
        .filter(|(index, _)| !checked(*index))
        .collect();
    verify_tx_signatures(&unchecked)?;

    let mut block = BlockBuilder::new(state)?;
    for (index, tx) in decoded.iter().enumerate() {
        block
            .push_verified(ctx, tx)
            .map_err(|error| BlockError::Tx { index, error })?;
    }
    Ok(block.finish(txs))
}

/// A block executed one tx at a time, as a proposer picks them from its pool: the very
/// execution of [`apply_block`] (validator sets rotated first, then each tx on the block so
/// far), so the proposer's outcome is the one every validator recomputes, and the proposer
/// executes each tx once instead of once to pick it and again to build the block.
#[derive(Debug)]
pub struct BlockBuilder<'s> {
    block: Overlay<'s>,
    validators: ValidatorSet,
    next_validators: ValidatorSet,
}

impl<'s> BlockBuilder<'s> {
    /// Starts a block on top of `state`; fails only if the state holds no validator sets.
    pub fn new(state: &'s dyn StateRead) -> Result<Self, BlockError> {
        let mut block = Overlay::new(state);
        let (validators, next_validators) = rotate_validators(&mut block)?;
        Ok(BlockBuilder {
            block,
            validators,
            next_validators,
        })
    }

    /// Applies `tx`, whose size and signatures (all of [`Tx::signatures`]) the caller checked;
    /// a tx that fails (its chain id too) leaves the block as it was.
    pub fn push_verified(&mut self, ctx: &BlockContext, tx: &Tx) -> Result<(), TxError> {
        let diff = apply_checked_tx(&self.block, ctx, tx)?;
        self.block.extend(diff);
        Ok(())
    }

    /// The outcome of the block whose txs, in order, are `txs` (the bytes of every tx pushed).
    pub fn finish(self, txs: &[Vec<u8>]) -> BlockOutcome {
        BlockOutcome {
            diff: self.block.into_diff(),
            validators: self.validators,
            next_validators: self.next_validators,
            tx_root: merkle::tx_root(txs),
        }
    }
}

/// Batch-verifies the signatures of `txs` (with their index in the block); if the batch
/// fails, finds the culprit so the error names it.
fn verify_tx_signatures(txs: &[(usize, &Tx)]) -> Result<(), BlockError> {
    if txs.is_empty() {
        return Ok(());
    }
    let mut batch = SignatureBatch::new();
    for (_, tx) in txs {
        for (key, message, signature) in tx.signatures() {
            batch.queue(key, &message, signature);
        }
    }
    if batch.verify().is_ok() {
        return Ok(());
    }
    for &(index, tx) in txs {
        tx.verify_signature().map_err(|e| BlockError::Tx {
            index,
            error: TxError::BadSignature(e),
        })?;
    }
    Ok(())
}

/// Moves the validator sets one height forward (DESIGN §2): updates from block h, written to
/// the pending set, sign block h + 2. Returns the sets for this block and the next.
fn rotate_validators(block: &mut Overlay<'_>) -> Result<(ValidatorSet, ValidatorSet), BlockError> {
    let read = |block: &Overlay<'_>, slot| -> Result<ValidatorSet, BlockError> {
        block
            .read::<ValidatorSet>(&keys::validators(slot))?
            .ok_or(BlockError::MissingValidators)
    };
    let previous_current = read(block, ValidatorSlot::Current)?;
    let current = read(block, ValidatorSlot::Next)?;
    let next = read(block, ValidatorSlot::Pending)?;
    if previous_current != current {
        block.write(keys::validators(ValidatorSlot::Current), &current);
    }
    if current != next {
        block.write(keys::validators(ValidatorSlot::Next), &next);
    }
    Ok((current, next))
}

/// Reads the validator set stored in one slot (for the node and queries).
pub fn validator_set(state: &dyn StateRead, slot: ValidatorSlot) -> Result<Option<ValidatorSet>, TxError> {
    Ok(state.read(&keys::validators(slot))?)
}

//! What the consensus arms call (malachite's test app splits `app.rs` from `state.rs` the
//! same way): build a proposal from the mempool, check a received or synced block by
//! re-executing it with `ledger::apply_block`, commit a decided block durably, and answer
//! sync requests. Consensus rules stay in the engine, ledger rules in `ledger`.

use crate::codec::CertificateWire;
use crate::context::{
    proposal_part_sign_bytes, Addr, BlockHash, BlockHeight, MedCtx, ProposalPart, ValidatorSet,
};
use crate::mempool::Mempool;
use crate::metrics::NodeMetrics;
use crate::store::{BlockStore, StoreError};
use bytes::Bytes;
use ledger::crypto::{sha256, verify_signature, Hash, SigningKey};
use ledger::exec::{apply_block_verified_in_part, BlockError, BlockOutcome, MAX_BLOCK_BYTES};
use ledger::header::{Block, Commit, CommitSignature, Header};
use ledger::BlockContext;
use malachitebft_app_channel::app::types::core::{
    CommitCertificate, Context, LinearTimeouts, Round, Validity,
};
use malachitebft_app_channel::app::types::sync::RawDecidedValue;
use malachitebft_app_channel::app::types::ProposedValue;
use malachitebft_engine::host::HeightParams;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tracing::{debug, info, warn};

/// How far ahead of this node's clock a proposed block time may be.
pub const MAX_PROPOSAL_DRIFT_MS: u64 = 5_000;
/// Most blocks one sync response carries.
pub const MAX_SYNC_BATCH: u64 = 32;
/// Most txs this node puts in a block it proposes (blocks from others may hold up to
/// [`ledger::exec::MAX_BLOCK_TXS`]). Every validator executes and stores a block within the
/// round's timeouts; with no cap, a backlog makes blocks of tens of thousands of txs that
/// outlast the propose timeout, rounds fail, the backlog and the next block grow, and the
/// chain stalls. Capped, a backlog costs latency and the full mempool pushes back.
pub const MAX_PROPOSAL_TXS: usize = 2_000;

/// Why a proposed or synced block was refused. Each means its proposer misbehaved (or we
/// are out of date), never that our state is damaged: those are [`StoreError`]s, and
/// [`ProposalError::MempoolUnavailable`] when this node cannot build its own proposal.
#[derive(Debug, thiserror::Error)]
pub enum ProposalError {
    #[error("block does not decode: {0}")]
    Malformed(String),
    #[error("block is for {got}, expected {expected}")]
    WrongHeight { expected: u64, got: u64 },
    #[error("block is for chain {0:?}")]
    WrongChain(String),
    #[error("block names proposer {got:?}, the round's proposer is {expected:?}")]
    WrongProposer { expected: Addr, got: Addr },
    #[error("proposal part signature does not verify")]
    BadPartSignature,
    #[error("block does not extend our last block")]
    WrongParent,
    #[error("block time {time} is not after {last} or too far ahead of {now}")]
    BadTime { time: u64, last: u64, now: u64 },
    #[error("header field {0} does not match re-execution")]
    HeaderMismatch(&'static str),
    #[error("block does not execute: {0}")]
    Execution(#[from] BlockError),
    #[error("no validator set stored for height {0}")]
    UnknownHeight(u64),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This node's own pool is unusable (a thread panicked holding it): it cannot propose.
    #[error("this node's mempool is unusable after an internal failure")]
    MempoolUnavailable,
}

/// A block whose execution was checked, kept until it is decided.
#[derive(Clone, Debug)]
pub struct PreparedBlock {
    pub block: Block,
    pub bytes: Vec<u8>,
    pub outcome: BlockOutcome,
}

/// Announced to subscribers (RPC, relay) after a block is durably committed.
#[derive(Clone, Debug)]
pub struct FinalizedBlock {
    pub header: Header,
    pub commit: Commit,
    pub tx_hashes: Vec<Hash>,
}

#[allow(missing_debug_implementations)] // holds the signing key and the store
pub struct NodeState {
    pub ctx: MedCtx,
    pub chain_id: String,
    pub store: Arc<BlockStore>,
    pub mempool: Arc<Mutex<Mempool>>,
    pub address: Addr,
    signing_key: Option<SigningKey>,
    pub timeouts: LinearTimeouts,
    /// Minimum time between blocks (finalization waits for late precommits meanwhile).
    pub target_block_time: Option<Duration>,
    prepared: HashMap<BlockHash, PreparedBlock>,
    pub finalized: broadcast::Sender<FinalizedBlock>,
    pub metrics: NodeMetrics,
}

fn proposed(
    height: BlockHeight,
    round: Round,
    proposer: Addr,
    id: BlockHash,
    validity: Validity,
) -> ProposedValue<MedCtx> {
    ProposedValue {
        height,
        round,
        valid_round: Round::Nil,
        proposer,
        value: id,
        validity,
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl NodeState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain_id: &str,
        store: Arc<BlockStore>,
        mempool: Arc<Mutex<Mempool>>,
        address: Addr,
        signing_key: Option<SigningKey>,
        timeouts: LinearTimeouts,
        target_block_time: Option<Duration>,
        metrics: NodeMetrics,
    ) -> Self {
        let (finalized, _) = broadcast::channel(1024);
        NodeState {
            ctx: MedCtx::new(chain_id),
            chain_id: chain_id.to_owned(),
            store,
            mempool,
            address,
            signing_key,
            timeouts,
            target_block_time,
            prepared: HashMap::new(),
            finalized,
            metrics,
        }
    }

    /// The height consensus should start at: one above the last committed block.
    pub fn next_height(&self) -> Result<BlockHeight, StoreError> {
        Ok(BlockHeight(self.store.last_height()?.unwrap_or(0) + 1))
    }

    pub fn height_params(&self, height: BlockHeight) -> Result<HeightParams<MedCtx>, ProposalError> {
        let set = self
            .store
            .validator_set(height.0)?
            .ok_or(ProposalError::UnknownHeight(height.0))?;
        Ok(HeightParams::new(
            ValidatorSet::from(&set),
            self.timeouts,
            self.target_block_time,
        ))
    }

    fn last_header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        if height <= 1 {
            return Ok(None);
        }
        self.store.header(height - 1)
    }

    /// Builds this node's block for (height, round), or returns the one it already built
    /// (after a restart too): a proposer must never sign two blocks for one round.
    pub fn propose(
        &mut self,
        height: BlockHeight,
        round: Round,
    ) -> Result<(BlockHash, ProposalPart), ProposalError> {
        let round_u32 = round.as_u32().unwrap_or(0);
        if let Some(bytes) = self.store.pending_proposal_at(height.0, round_u32)? {
            let prepared = self.check_block(height, &bytes)?;
            let id = BlockHash(prepared.block.header.id());
            self.prepared.insert(id, prepared);
            return Ok((id, self.sign_part(height, round, id, bytes)));
        }
        let last = self.last_header(height.0)?;
        let time = now_ms().max(last.as_ref().map_or(0, |h| h.time + 1));
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: height.0,
            time,
        };
        let started = std::time::Instant::now();
        // One read transaction for the whole block: a read of the store itself opens one per
        // key, thousands per block.
        let state = self.store.state_snapshot()?;
        // Every reaped tx passed this node's admission checks, signature included; reaping
        // executes the block as every validator will.
        let (txs, outcome) = {
            let pool = self
                .mempool
                .lock()
                .map_err(|_| ProposalError::MempoolUnavailable)?;
            pool.reap(&state, &ctx, MAX_PROPOSAL_TXS, MAX_BLOCK_BYTES / 2)?
        };
        drop(state);
        let executed = started.elapsed();
        let state_root = self.store.state_root_after(&outcome.diff, height.0)?;
        let rooted = started.elapsed();
        let last_block_id = last.map_or(Hash::ZERO, |h| h.id());
        let header = outcome.header(&ctx, last_block_id, state_root, self.address.0);
        let block = Block { header, txs };
        let bytes = ledger::codec::encode(&block);
        let id = BlockHash(block.header.id());
        self.store
            .put_pending_proposal(height.0, round_u32, &id.0, &bytes)?;
        info!(
            height = height.0,
            round = round_u32,
            txs = block.txs.len(),
            id = %id,
            exec_ms = executed.as_millis() as u64,
            root_ms = (rooted - executed).as_millis() as u64,
            total_ms = started.elapsed().as_millis() as u64,
            "proposing block"
        );
        self.prepared.insert(
            id,
            PreparedBlock {
                block,
                bytes: bytes.clone(),
                outcome,
            },
        );
        Ok((id, self.sign_part(height, round, id, bytes)))
    }

    fn sign_part(&self, height: BlockHeight, round: Round, id: BlockHash, block: Vec<u8>) -> ProposalPart {
        let message = proposal_part_sign_bytes(&self.chain_id, height, round, &id.0);
        let signature = self
            .signing_key
            .as_ref()
            .map_or(ledger::Signature([0; 64]), |k| k.sign(&message));
        ProposalPart {
            height,
            round,
            proposer: self.address,
            block,
            signature,
        }
    }

    /// Re-publishes a block this node holds for a later round (the engine asks after a
    /// polka in an earlier round).
    pub fn restream_part(
        &self,
        height: BlockHeight,
        round: Round,
        id: &BlockHash,
    ) -> Result<Option<ProposalPart>, StoreError> {
        let bytes = match self.prepared.get(id) {
            Some(p) => p.bytes.clone(),
            None => match self.store.pending_proposal(&id.0)? {
                Some(b) => b,
                None => return Ok(None),
            },
        };
        Ok(Some(self.sign_part(height, round, *id, bytes)))
    }

    /// Checks a block by re-executing it on top of our last committed state.
    pub fn check_block(&self, height: BlockHeight, bytes: &[u8]) -> Result<PreparedBlock, ProposalError> {
        let block: Block =
            ledger::codec::decode(bytes).map_err(|e| ProposalError::Malformed(e.to_string()))?;
        let header = &block.header;
        if header.height != height.0 {
            return Err(ProposalError::WrongHeight {
                expected: height.0,
                got: header.height,
            });
        }
        if header.chain_id != self.chain_id {
            return Err(ProposalError::WrongChain(header.chain_id.clone()));
        }
        let last = self.last_header(height.0)?;
        if header.last_block_id != last.as_ref().map_or(Hash::ZERO, |h| h.id()) {
            return Err(ProposalError::WrongParent);
        }
        let last_time = last.as_ref().map_or(0, |h| h.time);
        let now = now_ms();
        if header.time <= last_time || header.time > now + MAX_PROPOSAL_DRIFT_MS {
            return Err(ProposalError::BadTime {
                time: header.time,
                last: last_time,
                now,
            });
        }
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: height.0,
            time: header.time,
        };
        // Txs this node's mempool admitted (same canonical bytes, so the same hash) had their
        // signatures checked here already; the others are checked now.
        // A poisoned pool is this node's failure, not the proposer's: check every signature.
        let admitted: Vec<bool> = match self.mempool.lock() {
            Ok(pool) => block.txs.iter().map(|tx| pool.contains(&sha256(tx))).collect(),
            Err(_) => vec![false; block.txs.len()],
        };
        let state = self.store.state_snapshot()?;
        let outcome = apply_block_verified_in_part(&state, &ctx, &block.txs, |i| {
            admitted.get(i).copied().unwrap_or(false)
        })?;
        drop(state);
        if outcome.tx_root != header.tx_root {
            return Err(ProposalError::HeaderMismatch("tx_root"));
        }
        if outcome.validators.hash() != header.validators_hash {
            return Err(ProposalError::HeaderMismatch("validators_hash"));
        }
        if outcome.next_validators.hash() != header.next_validators_hash {
            return Err(ProposalError::HeaderMismatch("next_validators_hash"));
        }
        if self.store.state_root_after(&outcome.diff, height.0)? != header.state_root {
            return Err(ProposalError::HeaderMismatch("state_root"));
        }
        if outcome.validators.get(&header.proposer).is_none() {
            return Err(ProposalError::HeaderMismatch("proposer"));
        }
        Ok(PreparedBlock {
            block,
            bytes: bytes.to_vec(),
            outcome,
        })
    }

    /// A proposal part from the network: authenticate it, check the block, remember it.
    pub fn receive_part(&mut self, part: ProposalPart) -> Result<ProposedValue<MedCtx>, ProposalError> {
        let params = self.height_params(part.height)?;
        let expected = self
            .ctx
            .select_proposer(&params.validator_set, part.height, part.round)
            .address;
        if part.proposer != expected {
            return Err(ProposalError::WrongProposer {
                expected,
                got: part.proposer,
            });
        }
        let block: Block =
            ledger::codec::decode(&part.block).map_err(|e| ProposalError::Malformed(e.to_string()))?;
        let id = BlockHash(block.header.id());
        let message = proposal_part_sign_bytes(&self.chain_id, part.height, part.round, &id.0);
        verify_signature(&part.proposer.0, &message, &part.signature)
            .map_err(|_| ProposalError::BadPartSignature)?;
        let started = std::time::Instant::now();
        let validity = match self.prepared.get(&id) {
            Some(_) => Validity::Valid,
            None => match self.check_block(part.height, &part.block) {
                Ok(prepared) => {
                    self.metrics
                        .block_check_seconds
                        .observe(started.elapsed().as_secs_f64());
                    debug!(
                        height = part.height.0,
                        txs = prepared.block.txs.len(),
                        check_ms = started.elapsed().as_millis() as u64,
                        "proposal checked"
                    );
                    let round = part.round.as_u32().unwrap_or(0);
                    self.store
                        .put_pending_proposal(part.height.0, round, &id.0, &part.block)?;
                    self.prepared.insert(id, prepared);
                    Validity::Valid
                }
                Err(ProposalError::Store(e)) => return Err(ProposalError::Store(e)),
                Err(e) => {
                    warn!(height = part.height.0, proposer = %part.proposer, error = %e, "invalid proposal");
                    Validity::Invalid
                }
            },
        };
        Ok(proposed(part.height, part.round, part.proposer, id, validity))
    }

    /// Values this node already holds for (height, round), for the engine's crash recovery.
    pub fn known_values(
        &mut self,
        height: BlockHeight,
        round: Round,
    ) -> Result<Vec<ProposedValue<MedCtx>>, ProposalError> {
        let Some(bytes) = self
            .store
            .pending_proposal_at(height.0, round.as_u32().unwrap_or(0))?
        else {
            return Ok(vec![]);
        };
        let prepared = self.check_block(height, &bytes)?;
        let id = BlockHash(prepared.block.header.id());
        let proposer = Addr(prepared.block.header.proposer);
        self.prepared.insert(id, prepared);
        Ok(vec![proposed(height, round, proposer, id, Validity::Valid)])
    }

    fn to_commit(cert: &CommitCertificate<MedCtx>) -> Commit {
        Commit {
            height: cert.height.0,
            round: cert.round.as_u32().unwrap_or(0),
            block_id: cert.value_id.0,
            signatures: cert
                .commit_signatures
                .iter()
                .map(|s| CommitSignature {
                    validator: s.address.0,
                    signature: s.signature,
                })
                .collect(),
        }
    }

    /// Commits a decided block: one durable store transaction, then mempool cleanup and
    /// announcements. Only after this returns does the engine learn the height is stored.
    pub fn commit_decided(&mut self, cert: &CommitCertificate<MedCtx>) -> Result<(), ProposalError> {
        let height = cert.height;
        if self.store.last_height()?.unwrap_or(0) >= height.0 {
            // Already stored (e.g. WAL replay after a crash between commit and ack).
            return Ok(());
        }
        let prepared = match self.prepared.remove(&cert.value_id) {
            Some(p) => p,
            None => {
                let bytes = self
                    .store
                    .pending_proposal(&cert.value_id.0)?
                    .ok_or(ProposalError::UnknownHeight(height.0))?;
                self.check_block(height, &bytes)?
            }
        };
        let commit = Self::to_commit(cert);
        let header = &prepared.block.header;
        // DESIGN §2: every finalized block must pass the light-client predicate.
        match ledger::verify::verify_commit(&self.chain_id, header, &commit, &prepared.outcome.validators) {
            Ok(tally) => debug!(height = height.0, %tally, "commit verified by ledger predicate"),
            Err(e) => {
                self.metrics.commit_check_failures.inc();
                warn!(height = height.0, error = %e, "decided commit fails the ledger predicate");
            }
        }
        let started = std::time::Instant::now();
        let committed = self.store.commit_block(
            &prepared.block,
            &commit,
            &prepared.outcome.validators,
            &prepared.outcome.next_validators,
            &prepared.outcome.diff,
        )?;
        self.metrics
            .block_store_write_seconds
            .observe(committed.write.as_secs_f64());
        self.metrics
            .block_store_sync_seconds
            .observe(committed.sync.as_secs_f64());
        if committed.root != header.state_root {
            return Err(ProposalError::HeaderMismatch("state_root after commit"));
        }
        // The recheck judges the pool's next txs as the next block would.
        let next = BlockContext {
            chain_id: self.chain_id.clone(),
            height: height.0 + 1,
            time: header.time,
        };
        let stored = started.elapsed();
        let state = self.store.state_snapshot()?;
        if let Ok(mut pool) = self.mempool.lock() {
            pool.remove_committed(&state, &prepared.block.txs, &next);
            self.metrics.mempool_size.set(pool.len() as i64);
        }
        drop(state);
        self.prepared.retain(|_, p| p.block.header.height > height.0);
        self.metrics.height.set(height.0 as i64);
        self.metrics.round.set(cert.round.as_i64());
        self.metrics.txs.inc_by(prepared.block.txs.len() as u64);
        let tx_hashes = prepared
            .block
            .txs
            .iter()
            .map(|t| ledger::crypto::sha256(t))
            .collect();
        info!(
            height = height.0,
            txs = prepared.block.txs.len(),
            signers = commit.signatures.len(),
            store_ms = stored.as_millis() as u64,
            sync_ms = committed.sync.as_millis() as u64,
            recheck_ms = (started.elapsed() - stored).as_millis() as u64,
            "committed block"
        );
        let _ = self.finalized.send(FinalizedBlock {
            header: prepared.block.header.clone(),
            commit,
            tx_hashes,
        });
        Ok(())
    }

    /// `Finalized` may carry more signatures than `Decided`: keep the fuller commit.
    pub fn upgrade_commit(&self, cert: &CommitCertificate<MedCtx>) -> Result<(), StoreError> {
        if self.store.upgrade_commit(cert.height.0, &Self::to_commit(cert))? {
            debug!(
                height = cert.height.0,
                signers = cert.commit_signatures.len(),
                "stored fuller commit"
            );
        }
        Ok(())
    }

    /// Stored blocks with their commits, for peers that sync.
    pub fn decided_values(
        &self,
        from: BlockHeight,
        to: BlockHeight,
    ) -> Result<Vec<RawDecidedValue<MedCtx>>, StoreError> {
        let last = self.store.last_height()?.unwrap_or(0);
        let end = to.0.min(last).min(from.0.saturating_add(MAX_SYNC_BATCH - 1));
        let mut out = Vec::new();
        for h in from.0.max(1)..=end {
            let (Some(bytes), Some(commit)) = (self.store.block_bytes(h)?, self.store.commit(h)?) else {
                break;
            };
            let wire = CertificateWire {
                height: BlockHeight(h),
                round: Round::new(commit.round),
                value_id: BlockHash(commit.block_id),
                signatures: commit
                    .signatures
                    .iter()
                    .map(|s| (Addr(s.validator), s.signature))
                    .collect(),
            };
            out.push(RawDecidedValue::new(Bytes::from(bytes), wire.into_extended()));
        }
        Ok(out)
    }

    /// A block from sync: decode and check like a proposal (the engine checks the commit).
    pub fn synced_value(
        &mut self,
        height: BlockHeight,
        round: Round,
        proposer: Addr,
        bytes: &[u8],
    ) -> Result<ProposedValue<MedCtx>, ProposalError> {
        let prepared = self.check_block(height, bytes)?;
        if prepared.block.header.proposer != proposer.0 {
            debug!(height = height.0, engine = %proposer, header = ?prepared.block.header.proposer, "synced block names another proposer");
        }
        let id = BlockHash(prepared.block.header.id());
        self.store
            .put_pending_proposal(height.0, round.as_u32().unwrap_or(0), &id.0, bytes)?;
        self.prepared.insert(id, prepared);
        Ok(proposed(height, round, proposer, id, Validity::Valid))
    }
}

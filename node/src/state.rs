//! What the consensus arms call (malachite's test app splits `app.rs` from `state.rs` the
//! same way): build a proposal from the mempool, check a received or synced block by
//! re-executing it with `ledger::apply_block`, commit a decided block durably, and answer
//! sync requests. Consensus rules stay in the engine, ledger rules in `ledger`.

use crate::codec::CertificateWire;
use crate::context::{
    proposal_part_sign_bytes, proposal_txs_sign_bytes, Addr, BlockHash, BlockHeight, MedCtx, ProposalHeader,
    ProposalPart, ProposalTxs, ValidatorSet,
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
use std::time::{Duration, Instant};
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
    /// A header came back for txs this node no longer holds (an internal slip, not a peer's).
    #[error("no txs part held for this header")]
    MissingTxs,
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

/// The result of re-executing a proposal's txs on our last committed state.
#[derive(Clone, Debug)]
struct ExecutedTxs {
    outcome: BlockOutcome,
    state_root: Hash,
}

/// Whether `header` is the header of txs with root `tx_root` executed at `time`.
fn names(header: &Header, tx_root: &Hash, time: u64) -> bool {
    header.tx_root == *tx_root && header.time == time
}

impl ReceivedTxs {
    /// Whether these are the txs with root `tx_root` at `time`.
    fn is(&self, tx_root: &Hash, time: u64) -> bool {
        self.tx_root == *tx_root && self.part.time == time
    }

    fn is_named_by(&self, header: &Header) -> bool {
        self.is(&header.tx_root, header.time)
    }
}

/// A txs part received before its proposal was decided, with its re-execution.
#[derive(Debug)]
struct ReceivedTxs {
    part: ProposalTxs,
    tx_root: Hash,
    /// Proposer and signature checked. A part for the height after our next one cannot be
    /// yet (that height's validator set is stored with our next block): it is held
    /// unchecked, within [`MAX_UNVERIFIED_BYTES`], and checked before anything uses it.
    verified: bool,
    /// `None` until run: when our state reaches the block's parent (`execute_held`), or when
    /// the header comes; also for txs of a block already checked (a restream). `Err` holds
    /// why the txs do not execute or the block is refused.
    executed: Option<Result<ExecutedTxs, ProposalError>>,
}

/// The parts of one (height, round)'s proposal that arrived so far. A proposer signs one
/// txs part per round, except across a crash between its two parts (it then reaps again):
/// so a few are kept, and the header picks its own by `tx_root` and time.
#[derive(Debug, Default)]
struct PartsInFlight {
    txs: Vec<ReceivedTxs>,
    headers: Vec<ProposalHeader>,
}

/// Most txs parts, and most headers, kept per (height, round).
const MAX_PARTS_PER_ROUND: usize = 2;
/// How many rounds past the engine's current one a part may be for: a proposer may start its
/// round a little before this node does, never far ahead of it. Rounds the engine has left
/// are pruned when it starts a round, so at most this window (twice: the next height and the
/// one after) is ever in flight, however long a round-robin of failed rounds lasts.
const MAX_ROUNDS_AHEAD: u32 = 2;
/// Most (height, round)s with parts in flight: the window above, a backstop only.
const MAX_ROUNDS_IN_FLIGHT: usize = 2 * (MAX_ROUNDS_AHEAD as usize + 1);
/// Most tx bytes held in unchecked txs parts (see [`ReceivedTxs::verified`]).
const MAX_UNVERIFIED_BYTES: usize = 2 * MAX_BLOCK_BYTES;

/// Whether a (height, round) already holds as many parts of a kind as a proposer sends
/// (logged: a further one is dropped).
fn is_full(held: usize, (height, round): (u64, u32), kind: &str) -> bool {
    let full = held >= MAX_PARTS_PER_ROUND;
    if full {
        warn!(
            height,
            round, kind, "more proposal parts than a proposer sends; dropped"
        );
    }
    full
}

/// A proposal this node is building: its txs part is signed, its header not yet.
#[allow(missing_debug_implementations)]
pub struct Building {
    height: BlockHeight,
    round: Round,
    ctx: BlockContext,
    last_block_id: Hash,
    txs: Vec<Vec<u8>>,
    outcome: BlockOutcome,
    started: Instant,
    executed: Duration,
}

/// What [`NodeState::propose`] has for the engine.
#[allow(missing_debug_implementations)]
#[allow(clippy::large_enum_variant)] // one per proposal, moved once
pub enum Proposing {
    /// Built before (a restart, a repeated request): the block's id and both parts.
    Built(BlockHash, Vec<ProposalPart>),
    /// Txs chosen and executed: publish the part, then [`NodeState::finish_proposal`].
    Txs(ProposalPart, Building),
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
    in_flight: HashMap<(u64, u32), PartsInFlight>,
    /// The (height, round) the engine last started (`known_values`).
    round_in_play: (u64, u32),
    /// Whether txs parts are executed on arrival (see `NodeConfig::execute_proposals_early`).
    execute_early: bool,
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
            in_flight: HashMap::new(),
            round_in_play: (0, 0),
            execute_early: true,
            finalized,
            metrics,
        }
    }

    /// Whether a proposal's txs are re-executed on arrival (the default) or once its header
    /// is there too.
    pub fn with_early_execution(mut self, early: bool) -> Self {
        self.execute_early = early;
        self
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

    /// Starts this node's block for (height, round): chooses and executes its txs and signs
    /// them as the first part; [`Self::finish_proposal`] computes the state root and signs the
    /// header. Returns the block it already built instead (after a restart too): a proposer
    /// must never sign two blocks for one round.
    pub fn propose(&mut self, height: BlockHeight, round: Round) -> Result<Proposing, ProposalError> {
        let round_u32 = round.as_u32().unwrap_or(0);
        if let Some(bytes) = self.store.pending_proposal_at(height.0, round_u32)? {
            let prepared = self.check_block(height, &bytes)?;
            let id = BlockHash(prepared.block.header.id());
            let parts = self.sign_parts(height, round, &prepared.block);
            self.prepared.insert(id, prepared);
            return Ok(Proposing::Built(id, parts));
        }
        let last = self.last_header(height.0)?;
        let time = now_ms().max(last.as_ref().map_or(0, |h| h.time + 1));
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: height.0,
            time,
        };
        let started = Instant::now();
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
        let part = self.sign_txs_part(height, round, time, &outcome.tx_root, txs.clone());
        Ok(Proposing::Txs(
            part,
            Building {
                height,
                round,
                ctx,
                last_block_id: last.map_or(Hash::ZERO, |h| h.id()),
                txs,
                outcome,
                started,
                executed: started.elapsed(),
            },
        ))
    }

    /// Completes a proposal [`Self::propose`] started: the state root, the header, the block
    /// recorded as pending, the header part signed.
    pub fn finish_proposal(
        &mut self,
        building: Building,
    ) -> Result<(BlockHash, ProposalPart), ProposalError> {
        let Building {
            height,
            round,
            ctx,
            last_block_id,
            txs,
            outcome,
            started,
            executed,
        } = building;
        let state_root = self.store.state_root_after(&outcome.diff, height.0)?;
        let rooted = started.elapsed();
        let header = outcome.header(&ctx, last_block_id, state_root, self.address.0);
        let block = Block { header, txs };
        let bytes = ledger::codec::encode(&block);
        let id = BlockHash(block.header.id());
        let round_u32 = round.as_u32().unwrap_or(0);
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
        let part = self.sign_header_part(height, round, block.header.clone());
        self.prepared.insert(
            id,
            PreparedBlock {
                block,
                bytes,
                outcome,
            },
        );
        Ok((id, part))
    }

    fn sign(&self, message: &[u8]) -> ledger::Signature {
        self.signing_key
            .as_ref()
            .map_or(ledger::Signature([0; 64]), |k| k.sign(message))
    }

    fn sign_txs_part(
        &self,
        height: BlockHeight,
        round: Round,
        time: u64,
        tx_root: &Hash,
        txs: Vec<Vec<u8>>,
    ) -> ProposalPart {
        let message = proposal_txs_sign_bytes(&self.chain_id, height, round, time, tx_root);
        ProposalPart::Txs(ProposalTxs {
            height,
            round,
            proposer: self.address,
            time,
            txs,
            signature: self.sign(&message),
        })
    }

    fn sign_header_part(&self, height: BlockHeight, round: Round, header: Header) -> ProposalPart {
        let message = proposal_part_sign_bytes(&self.chain_id, height, round, &header.id());
        ProposalPart::Header(ProposalHeader {
            height,
            round,
            proposer: self.address,
            header,
            signature: self.sign(&message),
        })
    }

    /// Both parts of a block this node built, signed for `round`.
    fn sign_parts(&self, height: BlockHeight, round: Round, block: &Block) -> Vec<ProposalPart> {
        let header = &block.header;
        vec![
            self.sign_txs_part(height, round, header.time, &header.tx_root, block.txs.clone()),
            self.sign_header_part(height, round, block.header.clone()),
        ]
    }

    /// Re-publishes a block this node holds for a later round (the engine asks after a
    /// polka in an earlier round).
    pub fn restream_parts(
        &self,
        height: BlockHeight,
        round: Round,
        id: &BlockHash,
    ) -> Result<Option<Vec<ProposalPart>>, StoreError> {
        if let Some(p) = self.prepared.get(id) {
            return Ok(Some(self.sign_parts(height, round, &p.block)));
        }
        let Some(bytes) = self.store.pending_proposal(&id.0)? else {
            return Ok(None);
        };
        // Our own store: a block that no longer decodes there is damage, not a peer's fault.
        let block: Block = ledger::codec::decode(&bytes).map_err(|_| StoreError::Corrupt {
            table: "pending_by_id",
            key: id.to_string(),
        })?;
        Ok(Some(self.sign_parts(height, round, &block)))
    }

    /// Checks a block by re-executing it on top of our last committed state.
    pub fn check_block(&self, height: BlockHeight, bytes: &[u8]) -> Result<PreparedBlock, ProposalError> {
        let block: Block =
            ledger::codec::decode(bytes).map_err(|e| ProposalError::Malformed(e.to_string()))?;
        self.check_header_context(height, &block.header)?;
        let executed = self.execute_txs(height, block.header.time, &block.txs)?;
        self.check_header_outcome(&block.header, &executed)?;
        Ok(PreparedBlock {
            block,
            bytes: bytes.to_vec(),
            outcome: executed.outcome,
        })
    }

    /// The header fields our chain fixes before any execution: height, chain, parent.
    fn check_header_context(&self, height: BlockHeight, header: &Header) -> Result<(), ProposalError> {
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
        Ok(())
    }

    /// Executes `txs` at (`height`, `time`) on our last committed state and computes the
    /// state root after them. The time must follow the parent's and not run ahead of our
    /// clock.
    fn execute_txs(
        &self,
        height: BlockHeight,
        time: u64,
        txs: &[Vec<u8>],
    ) -> Result<ExecutedTxs, ProposalError> {
        let last = self.last_header(height.0)?;
        if last.is_none() && height.0 > 1 {
            // Our state is not at this block's parent: nothing to execute it on.
            return Err(ProposalError::WrongParent);
        }
        let last_time = last.as_ref().map_or(0, |h| h.time);
        let now = now_ms();
        if time <= last_time || time > now + MAX_PROPOSAL_DRIFT_MS {
            return Err(ProposalError::BadTime {
                time,
                last: last_time,
                now,
            });
        }
        let ctx = BlockContext {
            chain_id: self.chain_id.clone(),
            height: height.0,
            time,
        };
        // Txs this node's mempool admitted (same canonical bytes, so the same hash) had their
        // signatures checked here already; the others are checked now.
        // A poisoned pool is this node's failure, not the proposer's: check every signature.
        let admitted: Vec<bool> = match self.mempool.lock() {
            Ok(pool) => txs.iter().map(|tx| pool.contains(&sha256(tx))).collect(),
            Err(_) => vec![false; txs.len()],
        };
        let state = self.store.state_snapshot()?;
        if state.height() != Some(height.0 - 1) {
            return Err(ProposalError::WrongParent);
        }
        let outcome =
            apply_block_verified_in_part(&state, &ctx, txs, |i| admitted.get(i).copied().unwrap_or(false))?;
        drop(state);
        let state_root = self.store.state_root_after(&outcome.diff, height.0)?;
        Ok(ExecutedTxs { outcome, state_root })
    }

    /// The header fields that follow from executing its txs.
    fn check_header_outcome(&self, header: &Header, executed: &ExecutedTxs) -> Result<(), ProposalError> {
        let outcome = &executed.outcome;
        if outcome.tx_root != header.tx_root {
            return Err(ProposalError::HeaderMismatch("tx_root"));
        }
        if outcome.validators.hash() != header.validators_hash {
            return Err(ProposalError::HeaderMismatch("validators_hash"));
        }
        if outcome.next_validators.hash() != header.next_validators_hash {
            return Err(ProposalError::HeaderMismatch("next_validators_hash"));
        }
        if executed.state_root != header.state_root {
            return Err(ProposalError::HeaderMismatch("state_root"));
        }
        if outcome.validators.get(&header.proposer).is_none() {
            return Err(ProposalError::HeaderMismatch("proposer"));
        }
        Ok(())
    }

    /// The round's proposer, or why `proposer` is not it.
    fn check_proposer(&self, height: BlockHeight, round: Round, proposer: Addr) -> Result<(), ProposalError> {
        let params = self.height_params(height)?;
        let expected = self
            .ctx
            .select_proposer(&params.validator_set, height, round)
            .address;
        if proposer != expected {
            return Err(ProposalError::WrongProposer {
                expected,
                got: proposer,
            });
        }
        Ok(())
    }

    /// A proposal part from the network: authenticate it, then re-execute the txs as soon
    /// as they arrive; once the header is there too, judge the block and remember it.
    /// `Ok(None)` while a part is missing.
    pub fn receive_part(
        &mut self,
        part: ProposalPart,
    ) -> Result<Option<ProposedValue<MedCtx>>, ProposalError> {
        let key = (part.height().0, part.round().as_u32().unwrap_or(0));
        let next = self.next_height()?.0;
        if key.0 < next || key.0 > next + 1 {
            debug!(height = key.0, next, "proposal part for a height not in play");
            return Ok(None);
        }
        // Rounds the engine has left are over; a round far ahead is not in play yet.
        let floor = if key.0 == self.round_in_play.0 {
            self.round_in_play.1
        } else {
            0
        };
        if key.1 < floor || key.1 > floor.saturating_add(MAX_ROUNDS_AHEAD) {
            debug!(
                height = key.0,
                round = key.1,
                floor,
                "proposal part for a round not in play"
            );
            return Ok(None);
        }
        if !self.in_flight.contains_key(&key) && self.in_flight.len() >= MAX_ROUNDS_IN_FLIGHT {
            warn!(
                height = key.0,
                round = key.1,
                "too many proposals in flight; part dropped"
            );
            return Ok(None);
        }
        match part {
            ProposalPart::Txs(txs) => self.receive_txs(key, key.0 == next, txs),
            ProposalPart::Header(header) => self.receive_header(key, key.0 == next, header),
        }
    }

    /// `current`: the part is for our next height (else for the one after it).
    fn receive_txs(
        &mut self,
        key: (u64, u32),
        current: bool,
        part: ProposalTxs,
    ) -> Result<Option<ProposedValue<MedCtx>>, ProposalError> {
        if part.txs.len() > ledger::exec::MAX_BLOCK_TXS {
            return Err(ProposalError::Execution(BlockError::TooManyTxs {
                count: part.txs.len(),
                limit: ledger::exec::MAX_BLOCK_TXS,
            }));
        }
        let tx_root = ledger::merkle::tx_root(&part.txs);
        if current {
            self.verify_txs_part(&part, &tx_root)?;
        } else {
            let bytes: usize = part.txs.iter().map(Vec::len).sum();
            if self.unverified_bytes() + bytes > MAX_UNVERIFIED_BYTES {
                warn!(
                    height = key.0,
                    round = key.1,
                    bytes,
                    "too many unchecked txs parts held; dropped"
                );
                return Ok(None);
            }
        }
        let held = self.in_flight.entry(key).or_default();
        // A resend: same txs, same signature (ed25519 signs deterministically). An unchecked
        // copy with another signature is not one, so it cannot shadow the real part.
        if held
            .txs
            .iter()
            .any(|t| t.is(&tx_root, part.time) && t.part.signature == part.signature)
        {
            return Ok(None);
        }
        if is_full(held.txs.len(), key, "txs parts") {
            return Ok(None);
        }
        // Executed now if our state is at the block's parent: the work that overlaps the
        // proposer's own state root. Otherwise after our next commit, or when the header comes.
        // Not again for a block already checked (a restream for a later round): its header
        // is answered from `prepared`.
        let checked_before = self.prepared.values().any(|p| {
            let header = &p.block.header;
            header.height == key.0 && names(header, &tx_root, part.time)
        });
        let executed = if current && !checked_before && self.execute_early {
            Some(self.execute_speculatively(&part)?)
        } else {
            None
        };
        self.in_flight.entry(key).or_default().txs.push(ReceivedTxs {
            part,
            tx_root,
            verified: current,
            executed,
        });
        self.complete_from_held(key)
    }

    fn verify_txs_part(&self, part: &ProposalTxs, tx_root: &Hash) -> Result<(), ProposalError> {
        self.check_proposer(part.height, part.round, part.proposer)?;
        let message = proposal_txs_sign_bytes(&self.chain_id, part.height, part.round, part.time, tx_root);
        verify_signature(&part.proposer.0, &message, &part.signature)
            .map_err(|_| ProposalError::BadPartSignature)
    }

    fn unverified_bytes(&self) -> usize {
        self.in_flight
            .values()
            .flat_map(|held| &held.txs)
            .filter(|t| !t.verified)
            .map(|t| t.part.txs.iter().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// After a commit: checks and executes the txs parts held for the new next height, so
    /// that work still overlaps the proposer's. A part that fails its check is dropped.
    fn execute_held(&mut self, height: u64) -> Result<(), ProposalError> {
        if !self.execute_early {
            return Ok(());
        }
        let keys: Vec<_> = self
            .in_flight
            .keys()
            .filter(|(h, _)| *h == height)
            .copied()
            .collect();
        for key in keys {
            let Some(mut held) = self.in_flight.remove(&key) else {
                continue;
            };
            let mut kept = Vec::with_capacity(held.txs.len());
            for mut received in held.txs.drain(..) {
                if !received.verified {
                    if let Err(e) = self.verify_txs_part(&received.part, &received.tx_root) {
                        warn!(height, round = key.1, error = %e, "held txs part fails its check; dropped");
                        continue;
                    }
                    received.verified = true;
                }
                if received.executed.is_none() {
                    received.executed = Some(self.execute_speculatively(&received.part)?);
                }
                kept.push(received);
            }
            held.txs = kept;
            self.in_flight.insert(key, held);
        }
        Ok(())
    }

    /// Executes a txs part; `Err` only for a store failure, an invalid block is `Ok(Err)`.
    fn execute_speculatively(
        &self,
        part: &ProposalTxs,
    ) -> Result<Result<ExecutedTxs, ProposalError>, ProposalError> {
        let started = Instant::now();
        match self.execute_txs(part.height, part.time, &part.txs) {
            Ok(executed) => {
                self.metrics
                    .block_check_seconds
                    .observe(started.elapsed().as_secs_f64());
                debug!(
                    height = part.height.0,
                    txs = part.txs.len(),
                    check_ms = started.elapsed().as_millis() as u64,
                    "proposal txs executed"
                );
                Ok(Ok(executed))
            }
            Err(ProposalError::Store(e)) => Err(ProposalError::Store(e)),
            Err(e) => Ok(Err(e)),
        }
    }

    fn receive_header(
        &mut self,
        key: (u64, u32),
        current: bool,
        part: ProposalHeader,
    ) -> Result<Option<ProposedValue<MedCtx>>, ProposalError> {
        let id = BlockHash(part.header.id());
        // A header for the height after our next one is held unchecked (its validator set is
        // not stored yet, see `ReceivedTxs::verified`); `complete` checks every header.
        if current {
            if self.prepared.contains_key(&id) {
                self.verify_header_part(&part, &id)?;
                return Ok(Some(proposed(
                    part.height,
                    part.round,
                    part.proposer,
                    id,
                    Validity::Valid,
                )));
            }
            return self.complete(key, part);
        }
        self.hold_header(key, part);
        Ok(None)
    }

    /// Keeps `part` until its txs come (unless it is a resend or the round holds enough).
    fn hold_header(&mut self, key: (u64, u32), part: ProposalHeader) {
        // The chain id is a header's only field of any length: held unchecked, it must be ours.
        if part.header.chain_id != self.chain_id {
            debug!(
                height = key.0,
                round = key.1,
                "held header names another chain; dropped"
            );
            return;
        }
        let held = self.in_flight.entry(key).or_default();
        if held.headers.contains(&part) || is_full(held.headers.len(), key, "headers") {
            return;
        }
        held.headers.push(part);
    }

    fn verify_header_part(&self, part: &ProposalHeader, id: &BlockHash) -> Result<(), ProposalError> {
        self.check_proposer(part.height, part.round, part.proposer)?;
        let message = proposal_part_sign_bytes(&self.chain_id, part.height, part.round, &id.0);
        verify_signature(&part.proposer.0, &message, &part.signature)
            .map_err(|_| ProposalError::BadPartSignature)
    }

    /// Judges a held header whose txs are held too, if there is one. A part that fails its
    /// check is dropped and the next candidate tried, so an unchecked forgery held beside the
    /// real part cannot cost this node the real one.
    fn complete_from_held(
        &mut self,
        key: (u64, u32),
    ) -> Result<Option<ProposedValue<MedCtx>>, ProposalError> {
        loop {
            let Some(held) = self.in_flight.get_mut(&key) else {
                return Ok(None);
            };
            let txs = &held.txs;
            let Some(at) = held
                .headers
                .iter()
                .position(|h| txs.iter().any(|t| t.is_named_by(&h.header)))
            else {
                return Ok(None);
            };
            let header = held.headers.swap_remove(at);
            match self.complete(key, header) {
                Err(ProposalError::Store(e)) => return Err(ProposalError::Store(e)),
                Err(e) => {
                    warn!(height = key.0, round = key.1, error = %e, "held proposal header fails its check; dropped")
                }
                done => return done,
            }
        }
    }

    /// Judges the block of `header` and the txs part it names (which must be held).
    /// `Ok(None)` when no txs part that passes its check is held for it: the header is then
    /// held until one comes.
    fn complete(
        &mut self,
        key: (u64, u32),
        part: ProposalHeader,
    ) -> Result<Option<ProposedValue<MedCtx>>, ProposalError> {
        let id = BlockHash(part.header.id());
        self.verify_header_part(&part, &id)?;
        let (height, round, proposer) = (part.height, part.round, part.proposer);
        let received = loop {
            let candidate = self.in_flight.get_mut(&key).and_then(|held| {
                let at = held.txs.iter().position(|t| t.is_named_by(&part.header))?;
                Some(held.txs.swap_remove(at))
            });
            let Some(received) = candidate else {
                self.hold_header(key, part);
                return Ok(None);
            };
            if received.verified {
                break received;
            }
            match self.verify_txs_part(&received.part, &received.tx_root) {
                Ok(()) => break received,
                Err(e) => {
                    warn!(height = key.0, round = key.1, error = %e, "held txs part fails its check; dropped")
                }
            }
        };
        let executed = match received.executed {
            Some(executed) => executed,
            None => self.execute_speculatively(&received.part)?,
        };
        let verdict = executed.and_then(|executed| {
            self.check_header_context(height, &part.header)?;
            self.check_header_outcome(&part.header, &executed)?;
            Ok(executed)
        });
        let validity = match verdict {
            Ok(executed) => {
                let block = Block {
                    header: part.header,
                    txs: received.part.txs,
                };
                let bytes = ledger::codec::encode(&block);
                self.store.put_pending_proposal(key.0, key.1, &id.0, &bytes)?;
                self.prepared.insert(
                    id,
                    PreparedBlock {
                        block,
                        bytes,
                        outcome: executed.outcome,
                    },
                );
                Validity::Valid
            }
            Err(ProposalError::Store(e)) => return Err(ProposalError::Store(e)),
            Err(e) => {
                warn!(height = height.0, %proposer, error = %e, "invalid proposal");
                Validity::Invalid
            }
        };
        Ok(Some(proposed(height, round, proposer, id, validity)))
    }

    /// The engine starts (height, round): the values this node already holds for it (a block
    /// recorded before a restart, or one whose parts both came before our state reached its
    /// parent). Parts of earlier rounds of the height are dropped: the engine has left them,
    /// and a value it still wants from one is restreamed under the new round.
    pub fn known_values(
        &mut self,
        height: BlockHeight,
        round: Round,
    ) -> Result<Vec<ProposedValue<MedCtx>>, ProposalError> {
        let round_u32 = round.as_u32().unwrap_or(0);
        self.round_in_play = (height.0, round_u32);
        self.in_flight
            .retain(|&(h, r), _| h > height.0 || (h == height.0 && r >= round_u32));
        let Some(bytes) = self.store.pending_proposal_at(height.0, round_u32)? else {
            return Ok(self
                .complete_from_held((height.0, round_u32))?
                .into_iter()
                .collect());
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
            pool.remove_committed(&state, &prepared.block.txs, &committed.tx_hashes, &next);
            self.metrics.mempool_size.set(pool.len() as i64);
        }
        drop(state);
        self.prepared.retain(|_, p| p.block.header.height > height.0);
        self.in_flight.retain(|(h, _), _| *h > height.0);
        if let Err(e) = self.execute_held(height.0 + 1) {
            warn!(height = height.0 + 1, error = %e, "could not execute held proposal txs");
        }
        self.metrics.height.set(height.0 as i64);
        self.metrics.round.set(cert.round.as_i64());
        self.metrics.txs.inc_by(prepared.block.txs.len() as u64);
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
            tx_hashes: committed.tx_hashes,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolConfig;
    use ledger::test_utils::{sign_commit, Actor, TestChain};
    use ledger::tx::Action;

    /// A validator's state on its own store, all on one test genesis.
    struct Validator {
        state: NodeState,
        _dir: tempfile::TempDir,
    }

    fn validators(chain: &TestChain) -> Vec<Validator> {
        chain
            .validator_keys
            .values()
            .map(|key| {
                let dir = tempfile::tempdir().expect("temp dir");
                let store = Arc::new(BlockStore::open(&dir.path().join("store.redb")).expect("store"));
                store.init_genesis(&chain.genesis).expect("genesis");
                let mempool = Mempool::new(chain.genesis.chain_id.clone(), MempoolConfig::default());
                let state = NodeState::new(
                    &chain.genesis.chain_id,
                    store,
                    Arc::new(Mutex::new(mempool)),
                    Addr(key.public_key()),
                    Some(key.clone()),
                    LinearTimeouts::default(),
                    None,
                    NodeMetrics::default(),
                );
                Validator { state, _dir: dir }
            })
            .collect()
    }

    /// Index of the proposer of (`height`, `round`).
    fn proposer_of(nodes: &[Validator], height: u64, round: u32) -> usize {
        let set = nodes[0]
            .state
            .store
            .validator_set(height)
            .expect("read")
            .expect("set");
        let address = set.proposer(height, round).address;
        nodes
            .iter()
            .position(|n| n.state.address.0 == address)
            .expect("a validator")
    }

    /// Both parts of node `at`'s proposal for (`height`, round 0), with a transfer in its pool.
    fn propose(
        nodes: &mut [Validator],
        at: usize,
        height: u64,
        payer: &mut Actor,
    ) -> (BlockHash, ProposalPart, ProposalPart) {
        let tx = payer.tx(Action::Transfer {
            to: payer.address(),
            amount: 1,
        });
        let node = &mut nodes[at].state;
        let store = node.store.clone();
        node.mempool
            .lock()
            .expect("pool")
            .insert(&*store, tx.to_bytes())
            .expect("admitted");
        let Proposing::Txs(txs, building) =
            node.propose(BlockHeight(height), Round::new(0)).expect("propose")
        else {
            panic!("a fresh proposal starts with its txs");
        };
        let (id, header) = node.finish_proposal(building).expect("finish");
        (id, txs, header)
    }

    #[test]
    fn either_part_order_gives_the_proposers_block() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p = proposer_of(&nodes, 1, 0);
        let (id, txs, header) = propose(&mut nodes, p, 1, &mut chain.treasury);
        let others: Vec<usize> = (0..nodes.len()).filter(|i| *i != p).collect();

        let first = &mut nodes[others[0]].state;
        assert!(first.receive_part(txs.clone()).expect("txs").is_none());
        let value = first
            .receive_part(header.clone())
            .expect("header")
            .expect("a value");
        assert_eq!((value.value, value.validity), (id, Validity::Valid));

        let second = &mut nodes[others[1]].state;
        assert!(second.receive_part(header.clone()).expect("header").is_none());
        let value = second.receive_part(txs.clone()).expect("txs").expect("a value");
        assert_eq!(
            (value.value, value.validity, value.round),
            (id, Validity::Valid, txs.round())
        );
        let stored = second
            .store
            .pending_proposal_at(1, 0)
            .expect("read")
            .expect("recorded");
        let block: Block = ledger::codec::decode(&stored).expect("a block");
        assert_eq!(block.header.id(), id.0);
        assert_eq!(block.txs.len(), 1);
    }

    #[test]
    fn forged_or_foreign_parts_are_refused() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p = proposer_of(&nodes, 1, 0);
        let (_, txs, header) = propose(&mut nodes, p, 1, &mut chain.treasury);
        let other = (p + 1) % nodes.len();
        let receiver = &mut nodes[(p + 2) % 4].state;

        let ProposalPart::Txs(mut forged) = txs.clone() else {
            unreachable!()
        };
        forged.txs.push(b"smuggled".to_vec());
        assert!(matches!(
            receiver.receive_part(ProposalPart::Txs(forged)),
            Err(ProposalError::BadPartSignature)
        ));
        let ProposalPart::Txs(mut foreign) = txs.clone() else {
            unreachable!()
        };
        foreign.proposer = Addr(*chain.validator_keys.keys().nth(other).expect("key"));
        assert!(matches!(
            receiver.receive_part(ProposalPart::Txs(foreign)),
            Err(ProposalError::WrongProposer { .. })
        ));
        let ProposalPart::Header(mut forged) = header else {
            unreachable!()
        };
        forged.header.time += 1;
        assert!(matches!(
            receiver.receive_part(ProposalPart::Header(forged)),
            Err(ProposalError::BadPartSignature)
        ));
        // Nothing of the forgeries is held or recorded.
        assert!(receiver.store.pending_proposal_at(1, 0).expect("read").is_none());
        assert!(receiver
            .in_flight
            .values()
            .all(|held| held.txs.is_empty() && held.headers.is_empty()));
    }

    #[test]
    fn a_header_that_re_execution_contradicts_is_invalid() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p = proposer_of(&nodes, 1, 0);
        let (_, txs, header) = propose(&mut nodes, p, 1, &mut chain.treasury);
        let ProposalPart::Header(honest) = header else {
            unreachable!()
        };
        let mut lying = honest.header.clone();
        lying.state_root = Hash([7; 32]);
        let part = nodes[p]
            .state
            .sign_header_part(BlockHeight(1), Round::new(0), lying);
        let receiver = &mut nodes[(p + 1) % 4].state;
        assert!(receiver.receive_part(txs).expect("txs").is_none());
        let value = receiver.receive_part(part).expect("header").expect("a verdict");
        assert_eq!(value.validity, Validity::Invalid);
        assert!(receiver.store.pending_proposal_at(1, 0).expect("read").is_none());
    }

    #[test]
    fn a_block_restreamed_for_a_later_round_is_not_executed_again() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p = proposer_of(&nodes, 1, 0);
        let (id, txs, header) = propose(&mut nodes, p, 1, &mut chain.treasury);
        for (i, node) in nodes.iter_mut().enumerate() {
            if i != p {
                node.state.receive_part(txs.clone()).expect("txs");
                node.state
                    .receive_part(header.clone())
                    .expect("header")
                    .expect("a value");
            }
        }
        // The engine asks round 1's proposer to restream the block it holds.
        let q = proposer_of(&nodes, 1, 1);
        let parts = nodes[q]
            .state
            .restream_parts(BlockHeight(1), Round::new(1), &id)
            .expect("read")
            .expect("held");
        let r = (0..nodes.len()).find(|i| *i != q).expect("another validator");
        let receiver = &mut nodes[r].state;
        assert!(receiver.receive_part(parts[0].clone()).expect("txs").is_none());
        let held = &receiver.in_flight[&(1, 1)].txs;
        assert!(
            held.len() == 1 && held[0].executed.is_none(),
            "checked once, in round 0"
        );
        let value = receiver
            .receive_part(parts[1].clone())
            .expect("header")
            .expect("a value");
        assert_eq!(
            (value.value, value.validity, value.round),
            (id, Validity::Valid, Round::new(1))
        );
    }

    #[test]
    fn parts_for_the_height_after_next_wait_for_the_commit() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p1 = proposer_of(&nodes, 1, 0);
        let (id1, txs1, header1) = propose(&mut nodes, p1, 1, &mut chain.treasury);
        let late = (0..nodes.len()).find(|i| *i != p1).expect("another validator");
        // Everyone but `late` commits height 1.
        let signers: Vec<&SigningKey> = chain.validator_keys.values().collect();
        let prepared = nodes[p1].state.prepared.get(&id1).expect("prepared").clone();
        let commit = sign_commit(&prepared.block.header, 0, &signers);
        let outcome = &prepared.outcome;
        let commit_on = |store: &BlockStore| {
            store
                .commit_block(
                    &prepared.block,
                    &commit,
                    &outcome.validators,
                    &outcome.next_validators,
                    &outcome.diff,
                )
                .expect("commit")
        };
        for (i, node) in nodes.iter().enumerate() {
            if i != late {
                commit_on(&node.state.store);
            }
        }
        let p2 = proposer_of(&nodes, 2, 0);
        assert_ne!(p2, late, "test setup: the late node does not propose height 2");
        let (id2, txs2, header2) = propose(&mut nodes, p2, 2, &mut chain.treasury);

        // `late` is still at height 1: it gets height 1's block, and height 2's parts early.
        let receiver = &mut nodes[late].state;
        assert!(receiver.receive_part(txs1).expect("txs 1").is_none());
        assert!(receiver.receive_part(header1).expect("header 1").is_some());
        // Unchecked copies with bad signatures come first; they must not shadow the real parts.
        let ProposalPart::Txs(mut forged_txs) = txs2.clone() else {
            unreachable!()
        };
        forged_txs.signature = ledger::Signature([9; 64]);
        let ProposalPart::Header(mut forged_header) = header2.clone() else {
            unreachable!()
        };
        forged_header.signature = ledger::Signature([9; 64]);
        for part in [
            ProposalPart::Txs(forged_txs),
            txs2,
            ProposalPart::Header(forged_header),
            header2,
        ] {
            assert!(receiver.receive_part(part).expect("held").is_none());
        }
        assert_eq!(receiver.in_flight[&(2, 0)].txs.len(), 2);
        assert_eq!(receiver.in_flight[&(2, 0)].headers.len(), 2);

        commit_on(&receiver.store);
        let values = receiver
            .known_values(BlockHeight(2), Round::new(0))
            .expect("values");
        assert_eq!(values.len(), 1);
        assert_eq!((values[0].value, values[0].validity), (id2, Validity::Valid));
    }

    #[test]
    fn a_long_run_of_failed_rounds_never_blocks_the_current_one() {
        let chain = TestChain::new(4);
        let nodes = validators(&chain);
        let receiver = 0;
        let no_txs: Vec<Vec<u8>> = Vec::new();
        let tx_root = ledger::merkle::tx_root(&no_txs);
        let part_for = |round: u32| {
            let q = proposer_of(&nodes, 1, round);
            nodes[q].state.sign_txs_part(
                BlockHeight(1),
                Round::new(round),
                now_ms(),
                &tx_root,
                no_txs.clone(),
            )
        };
        let parts: Vec<ProposalPart> = (0..40).map(part_for).collect();
        let (ahead, behind) = (part_for(39 + MAX_ROUNDS_AHEAD + 1), part_for(30));
        let mut nodes = nodes;
        let state = &mut nodes[receiver].state;
        for round in 0..40u32 {
            state
                .known_values(BlockHeight(1), Round::new(round))
                .expect("start round");
            state.receive_part(parts[round as usize].clone()).expect("txs");
            assert!(
                state.in_flight.contains_key(&(1, round)),
                "round {round}'s part is held"
            );
            assert!(state.in_flight.len() <= MAX_ROUNDS_IN_FLIGHT);
        }
        // Far ahead of the engine's round, or behind it: not in play, not held.
        let held = state.in_flight.len();
        for part in [ahead, behind] {
            assert!(state.receive_part(part).expect("ignored").is_none());
        }
        assert_eq!(state.in_flight.len(), held);
    }

    #[test]
    fn without_early_execution_the_header_triggers_the_check() {
        let mut chain = TestChain::new(4);
        let mut nodes = validators(&chain);
        let p = proposer_of(&nodes, 1, 0);
        let (id, txs, header) = propose(&mut nodes, p, 1, &mut chain.treasury);
        let receiver = (p + 1) % nodes.len();
        let Validator { state, _dir } = nodes.swap_remove(receiver);
        let mut state = state.with_early_execution(false);
        assert!(state.receive_part(txs).expect("txs").is_none());
        assert!(
            state.in_flight[&(1, 0)].txs[0].executed.is_none(),
            "not executed yet"
        );
        let value = state.receive_part(header).expect("header").expect("a value");
        assert_eq!((value.value, value.validity), (id, Validity::Valid));
    }
}

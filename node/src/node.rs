//! Wiring: open the store, build the engine, run the consensus loop and the HTTP API.
//! [`start`] returns a [`NodeHandle`]: the in-process query and submission API that the
//! HTTP server and the relay use.

use crate::app;
use crate::codec::MedCodec;
use crate::config::{Home, NodeConfig};
use crate::context::{Addr, MedCtx};
use crate::mempool::{Mempool, MempoolConfig, Rejected};
use crate::metrics::NodeMetrics;
use crate::signing::{MedSigner, MedVerifier};
use crate::state::{FinalizedBlock, NodeState};
use crate::store::{BlockStore, StoreError};
use anyhow::Context as _;
use ledger::crypto::{Hash, PublicKey, SigningKey};
use ledger::header::{Block, Commit, Header};
use ledger::state::StateProof;
use ledger::{Genesis, ValidatorSet};
use malachitebft_app_channel::app::config::{ConsensusConfig, NodeConfig as EngineConfig, ValueSyncConfig};
use malachitebft_app_channel::app::types::core::LinearTimeouts;
use malachitebft_app_channel::app::types::Keypair;
use malachitebft_app_channel::{
    ConsensusContext, EngineBuilder, NetworkContext, RequestContext, SyncContext, WalContext,
};
use malachitebft_engine::network::{Multiaddr, NetworkIdentity};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::broadcast;
use tracing::info;

#[derive(Clone, Debug)]
struct EngineSettings {
    moniker: String,
    consensus: ConsensusConfig,
    value_sync: ValueSyncConfig,
}

impl EngineConfig for EngineSettings {
    fn moniker(&self) -> &str {
        &self.moniker
    }
    fn consensus(&self) -> &ConsensusConfig {
        &self.consensus
    }
    fn consensus_mut(&mut self) -> &mut ConsensusConfig {
        &mut self.consensus
    }
    fn value_sync(&self) -> &ValueSyncConfig {
        &self.value_sync
    }
    fn value_sync_mut(&mut self) -> &mut ValueSyncConfig {
        &mut self.value_sync
    }
}

/// Validator (signs) or follower (verifies and stores only).
#[derive(Clone, Debug)]
pub enum Mode {
    Validator(Box<SigningKey>),
    Follower,
}

/// Cheap handle to a running node: queries over committed state and tx submission.
#[derive(Clone)]
pub struct NodeHandle {
    pub chain_id: String,
    pub genesis_hash: Hash,
    store: Arc<BlockStore>,
    mempool: Arc<Mutex<Mempool>>,
    finalized: broadcast::Sender<FinalizedBlock>,
    metrics: NodeMetrics,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "NodeHandle({})", self.chain_id)
    }
}

impl NodeHandle {
    pub fn latest_height(&self) -> Result<u64, StoreError> {
        Ok(self.store.last_height()?.unwrap_or(0))
    }
    pub fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        self.store.header(height)
    }
    pub fn commit(&self, height: u64) -> Result<Option<Commit>, StoreError> {
        self.store.commit(height)
    }
    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.store.block(height)
    }
    pub fn validator_set(&self, height: u64) -> Result<Option<ValidatorSet>, StoreError> {
        self.store.validator_set(height)
    }
    pub fn tx_height(&self, hash: &Hash) -> Result<Option<u64>, StoreError> {
        self.store.tx_height(hash)
    }
    /// Value of `key` at a committed height with its (non-)inclusion proof.
    pub fn state_proof(&self, key: &[u8], height: u64) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        self.store.get_with_proof(key, height)
    }
    pub fn mempool_len(&self) -> usize {
        self.mempool.lock().map(|p| p.len()).unwrap_or(0)
    }
    /// Why the mempool evicted tx `hash` after admitting it (it will not be committed).
    pub fn mempool_eviction(&self, hash: &Hash) -> Option<ledger::TxError> {
        self.mempool.lock().ok()?.eviction(hash).cloned()
    }
    /// Admits a tx to the mempool (checks chain id, signature, nonce, size); returns its hash.
    pub fn submit_tx(&self, tx_bytes: Vec<u8>) -> Result<Hash, Rejected> {
        let result = self.admit(&tx_bytes);
        if result.is_err() {
            self.metrics.txs_rejected.inc();
        }
        result
    }
    /// [`Self::submit_tx`]: the signature check, most of an admission's cost, runs between two
    /// short holds of the pool's lock, so a burst of submissions does not stall proposing,
    /// checking and committing blocks, which take the same lock.
    fn admit(&self, tx_bytes: &[u8]) -> Result<Hash, Rejected> {
        let chain_id = {
            let pool = self.mempool.lock().map_err(|_| Rejected::Unavailable)?;
            pool.refuse_cheaply(tx_bytes)?;
            pool.chain_id().to_owned()
        };
        let tx = ledger::exec::check_tx_stateless(&chain_id, tx_bytes)?;
        let mut pool = self.mempool.lock().map_err(|_| Rejected::Unavailable)?;
        let result = self.with_latest_state(|state| pool.insert_checked(state, tx));
        self.metrics.mempool_size.set(pool.len() as i64);
        result
    }
    /// [`Self::submit_tx`] for many txs, one verdict each in order: the signatures are
    /// checked as one batch ([`ledger::exec::check_txs_stateless`]) between two holds of the
    /// pool's lock, one for the duplicate checks and one for the inserts.
    pub fn submit_txs(&self, txs: &[Vec<u8>]) -> Vec<Result<Hash, Rejected>> {
        let mut verdicts: Vec<Option<Result<Hash, Rejected>>> = vec![None; txs.len()];
        let (chain_id, fresh) = match self.mempool.lock() {
            Ok(pool) => {
                let mut fresh = Vec::with_capacity(txs.len());
                for (i, tx) in txs.iter().enumerate() {
                    match pool.refuse_cheaply(tx) {
                        Ok(()) => fresh.push(i),
                        Err(rejected) => verdicts[i] = Some(Err(rejected)),
                    }
                }
                (pool.chain_id().to_owned(), fresh)
            }
            Err(_) => return txs.iter().map(|_| Err(Rejected::Unavailable)).collect(),
        };
        let bytes: Vec<&[u8]> = fresh.iter().map(|&i| txs[i].as_slice()).collect();
        let checked = ledger::exec::check_txs_stateless(&chain_id, &bytes);
        match self.mempool.lock() {
            Ok(mut pool) => {
                self.with_latest_state(|state| {
                    for (&i, check) in fresh.iter().zip(checked) {
                        verdicts[i] = Some(
                            check
                                .map_err(Rejected::from)
                                .and_then(|tx| pool.insert_checked(state, tx)),
                        );
                    }
                });
                self.metrics.mempool_size.set(pool.len() as i64);
            }
            Err(_) => {
                for &i in &fresh {
                    verdicts[i] = Some(Err(Rejected::Unavailable));
                }
            }
        }
        let verdicts: Vec<Result<Hash, Rejected>> = verdicts
            .into_iter()
            .map(|v| v.unwrap_or(Err(Rejected::Unavailable)))
            .collect();
        let rejected = verdicts.iter().filter(|v| v.is_err()).count();
        self.metrics.txs_rejected.inc_by(rejected as u64);
        verdicts
    }
    /// Runs `f` on one snapshot of the latest committed state, so a batch of admissions reads
    /// its nonces from one read transaction instead of opening one per tx (that was ~3 % of a
    /// validator's CPU under load). Called with the pool's lock held: a block committed after
    /// the snapshot was taken is handled by the `remove_committed` that waits for this lock,
    /// exactly as with per-read snapshots. If no snapshot can be opened, reads go through the
    /// store one by one (each logs its own failure).
    fn with_latest_state<R>(&self, f: impl FnOnce(&dyn ledger::state::StateRead) -> R) -> R {
        match self.store.state_snapshot() {
            Ok(snapshot) => f(&snapshot),
            Err(error) => {
                tracing::error!(%error, "mempool: cannot open a state snapshot; reading key by key");
                f(self.store.as_ref())
            }
        }
    }
    /// Every block committed from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<FinalizedBlock> {
        self.finalized.subscribe()
    }
    pub fn store(&self) -> &Arc<BlockStore> {
        &self.store
    }
}

/// A started node: its handle and the tasks that run it.
pub struct RunningNode {
    pub handle: NodeHandle,
    pub consensus: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub engine: malachitebft_app_channel::EngineHandle,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RunningNode({:?})", self.handle)
    }
}

fn timeouts(propose_ms: u64) -> LinearTimeouts {
    let propose = Duration::from_millis(propose_ms.max(100));
    LinearTimeouts {
        propose,
        propose_delta: propose / 2,
        prevote: propose / 3,
        prevote_delta: propose / 6,
        precommit: propose / 3,
        precommit_delta: propose / 6,
        rebroadcast: propose * 2,
        max_timeout: Duration::from_secs(60),
    }
}

/// Starts a node from its home directory.
pub async fn start(
    home: &Home,
    config: &NodeConfig,
    genesis: &Genesis,
    mode: Mode,
) -> anyhow::Result<RunningNode> {
    if let Some(dir) = home.store().parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let store = Arc::new(BlockStore::open(&home.store()).context("opening the block store")?);
    store.init_genesis(genesis).context("initialising genesis")?;
    let genesis_hash = genesis.hash();
    let metrics = NodeMetrics::register(&config.moniker);
    metrics.height.set(store.last_height()?.unwrap_or(0) as i64);
    let mempool = Arc::new(Mutex::new(Mempool::new(
        genesis.chain_id.clone(),
        MempoolConfig {
            max_txs: config.mempool_max_txs,
            ..MempoolConfig::default()
        },
    )));

    let (key_for_identity, signing_key, address) = match &mode {
        Mode::Validator(key) => (
            key.as_ref().clone(),
            Some(key.as_ref().clone()),
            Addr(key.public_key()),
        ),
        // A follower still needs an address and a libp2p identity; neither is in any set.
        Mode::Follower => {
            let key = SigningKey::from_seed(rand::random());
            (
                key.clone(),
                None,
                Addr(PublicKey(ledger::crypto::sha256(&key.public_key().0).0)),
            )
        }
    };
    let keypair = Keypair::ed25519_from_bytes(key_for_identity.to_seed()).context("libp2p identity")?;
    let identity = match &mode {
        Mode::Validator(_) => NetworkIdentity::new(config.moniker.clone(), keypair, Some(address.0.to_hex())),
        Mode::Follower => NetworkIdentity::new(config.moniker.clone(), keypair, None),
    };

    let mut consensus = ConsensusConfig::default();
    consensus.p2p.listen_addr = config.p2p_listen.parse::<Multiaddr>().context("p2p_listen")?;
    consensus.p2p.persistent_peers = config
        .persistent_peers
        .iter()
        .map(|p| p.parse::<Multiaddr>())
        .collect::<Result<_, _>>()
        .context("persistent_peers")?;
    // Localnets put every node on 127.0.0.1; the per-IP default (5) would refuse larger ones.
    consensus.p2p.discovery.max_connections_per_ip = 64;
    let value_sync = ValueSyncConfig {
        status_update_interval: Duration::from_secs(1),
        request_timeout: Duration::from_secs(5),
        ..ValueSyncConfig::default()
    };
    let settings = EngineSettings {
        moniker: config.moniker.clone(),
        consensus,
        value_sync,
    };

    let ctx = MedCtx::new(&genesis.chain_id);
    let verifier = Box::new(MedVerifier::new(&genesis.chain_id));
    let consensus_ctx = match &mode {
        Mode::Validator(key) => ConsensusContext::new_validator(
            address,
            verifier,
            Box::new(MedSigner::new(key.as_ref().clone(), &genesis.chain_id)),
        ),
        Mode::Follower => ConsensusContext::new_full_node(address, verifier),
    };
    let (channels, engine) = EngineBuilder::new(ctx, settings)
        .with_default_wal(WalContext::new(home.wal(), MedCodec))
        .with_default_network(NetworkContext::new(identity, MedCodec))
        .with_default_sync(SyncContext::new(MedCodec))
        .with_default_consensus(consensus_ctx)
        .with_default_request(RequestContext::new(100))
        .build()
        .await
        .map_err(|e| anyhow::anyhow!("starting the consensus engine: {e}"))?;

    let target =
        (config.target_block_time_ms > 0).then(|| Duration::from_millis(config.target_block_time_ms));
    let state = NodeState::new(
        &genesis.chain_id,
        store.clone(),
        mempool.clone(),
        address,
        signing_key,
        timeouts(config.propose_timeout_ms),
        target,
        metrics.clone(),
    )
    .with_early_execution(config.execute_proposals_early);
    let finalized = state.finalized.clone();
    let consensus_task = tokio::spawn(app::run(state, channels));
    info!(moniker = %config.moniker, chain = %genesis.chain_id, address = %address, "node started");
    Ok(RunningNode {
        handle: NodeHandle {
            chain_id: genesis.chain_id.clone(),
            genesis_hash,
            store,
            mempool,
            finalized,
            metrics,
        },
        consensus: consensus_task,
        engine,
    })
}

/// Resolves on Ctrl-C or SIGTERM: how the node and relay binaries know to stop cleanly.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::test_utils::{TestChain, TEST_CHAIN_ID};
    use ledger::types::Role;
    use ledger::Action;

    #[test]
    fn a_poisoned_pool_answers_unavailable_not_full() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut chain = TestChain::new(1);
        let store = Arc::new(BlockStore::open(&dir.path().join("store.redb")).expect("store opens"));
        let genesis_hash = store.init_genesis(&chain.genesis).expect("genesis");
        let mut patient = chain.register(7, Role::Patient);
        let mempool = Arc::new(Mutex::new(Mempool::new(
            TEST_CHAIN_ID.into(),
            MempoolConfig::default(),
        )));
        let node = NodeHandle {
            chain_id: TEST_CHAIN_ID.into(),
            genesis_hash,
            store,
            mempool: mempool.clone(),
            finalized: tokio::sync::broadcast::channel(1).0,
            metrics: NodeMetrics::default(),
        };
        let holder = mempool.clone();
        let _ = std::thread::spawn(move || {
            let _pool = holder.lock();
            panic!("a thread dies holding the pool");
        })
        .join();
        assert!(mempool.is_poisoned());
        let tx = patient
            .tx(Action::Transfer {
                to: chain.treasury.address(),
                amount: 1,
            })
            .to_bytes();
        assert_eq!(node.submit_tx(tx.clone()), Err(Rejected::Unavailable));
        assert_eq!(node.submit_txs(&[tx]), vec![Err(Rejected::Unavailable)]);
    }
}

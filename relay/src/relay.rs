//! Wiring: [`Relay::start`] opens the chain (dev validator or follower), the blob store, the
//! libp2p listeners and the HTTP listener, and spawns the block follower and the network
//! loop. Dropping the [`Relay`] stops it all.

use crate::blobs::{BlobError, BlobService, BlobStore};
use crate::chain::Chain;
use crate::clock::SystemClock;
use crate::config::{ChainSource, RelayConfig};
use crate::dev::{DevError, DevNetwork};
use crate::follow::BlockFollower;
use crate::http::{self, HttpState};
use crate::keys::{self, KeyFileError};
use crate::metrics::RelayMetrics;
use crate::network::{Listening, NetworkError, NetworkHandle};
use crate::service::LightClientService;
use node::config::Home;
use node::node::{Mode, RunningNode};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data folder {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Dev(#[from] DevError),
    /// Loading the follower's home or starting the node (the `node` crate reports with anyhow).
    #[error("node: {0:#}")]
    Node(anyhow::Error),
    #[error("relay key: {0}")]
    Key(#[from] KeyFileError),
    #[error("blob store: {0}")]
    Blobs(#[from] BlobError),
    #[error("libp2p: {0}")]
    Network(#[from] NetworkError),
    #[error("binding HTTP on {addr}: {source}")]
    Http {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running relay: its services, for in-process use (tests, next the libp2p layer).
#[derive(Debug)]
pub struct Relay {
    pub chain: Chain,
    pub light: LightClientService,
    pub blobs: BlobService,
    pub metrics: RelayMetrics,
    /// Where the HTTP server listens (the bound address, also when port 0 was asked for).
    pub http_addr: SocketAddr,
    /// The browser multiaddrs served in the discovery document (WebRTC-direct with
    /// `/certhash` and WebSocket, each with `/p2p`), filled by the libp2p listeners.
    pub multiaddrs: Arc<RwLock<Vec<String>>>,
    /// The libp2p network: peer id, listen addresses, status.
    pub network: NetworkHandle,
    /// The embedded node; `node.consensus` ends only if consensus fails.
    pub node: RunningNode,
    tasks: Vec<JoinHandle<()>>,
}

impl Relay {
    pub async fn start(config: RelayConfig) -> Result<Relay, StartError> {
        std::fs::create_dir_all(&config.data_dir).map_err(|source| StartError::DataDir {
            path: config.data_dir.clone(),
            source,
        })?;
        let (home, node_config, genesis, mode, relay_keys) = match &config.chain {
            ChainSource::Dev(options) => {
                let dev = DevNetwork::open_or_create(&config.data_dir)?;
                let relay_keys = dev.storage_node()?.clone();
                let mut node_config = dev.config;
                node_config.target_block_time_ms = options.target_block_time_ms;
                node_config.propose_timeout_ms = options.propose_timeout_ms;
                let mode = Mode::Validator(Box::new(dev.validator_key));
                (dev.home, node_config, dev.genesis, mode, relay_keys)
            }
            ChainSource::Follow { home } => {
                let home = Home(home.clone());
                let node_config = home.load_config().map_err(StartError::Node)?;
                let genesis = home.load_genesis().map_err(StartError::Node)?;
                let relay_keys = keys::load_or_create(&config.relay_key_path())?;
                (home, node_config, genesis, Mode::Follower, relay_keys)
            }
        };
        // Fail on a bad blob location or a busy port before the node starts.
        let blob_store = BlobStore::open(&config.blob_location(), config.max_blob_bytes)?;
        let listener = tokio::net::TcpListener::bind(config.http_listen)
            .await
            .map_err(|source| StartError::Http {
                addr: config.http_listen,
                source,
            })?;
        let http_addr = listener.local_addr().map_err(|source| StartError::Http {
            addr: config.http_listen,
            source,
        })?;
        let listening = Listening::bind(&config.network, &config.data_dir).await?;

        let node = node::node::start(&home, &node_config, &genesis, mode)
            .await
            .map_err(StartError::Node)?;
        let chain = Chain::new(node.handle.clone(), node_config.peer_rpcs.clone());
        let metrics = RelayMetrics::new();
        let blobs = BlobService::new(
            blob_store,
            chain.clone(),
            relay_keys,
            Arc::new(SystemClock),
            metrics.clone(),
        );
        match blobs.is_admitted() {
            Ok(true) => {}
            Ok(false) => warn!(
                account = %blobs.relay_address(),
                "the relay's account is not an admitted organisation: blob reads are refused until \
                 it registers as an organisation and governance admits it"
            ),
            Err(error) => warn!(%error, "cannot read the relay's account"),
        }

        let mut tasks = Vec::new();
        let (store, gauge) = (blobs.store().clone(), metrics.blob_bytes.clone());
        tasks.push(tokio::spawn(async move {
            match store.total_bytes().await {
                Ok(total) => {
                    gauge.inc_by(total as i64);
                }
                Err(error) => warn!(%error, "cannot size the blob store"),
            }
        }));
        let follower = BlockFollower::new(
            chain.clone(),
            blobs.clone(),
            metrics.clone(),
            config.data_dir.join("follower.cursor"),
        );
        tasks.push(tokio::spawn(follower.run()));

        let multiaddrs = Arc::new(RwLock::new(Vec::new()));
        let state = HttpState {
            chain: chain.clone(),
            blobs: blobs.clone(),
            metrics: metrics.clone(),
            dist: config.dist.clone().map(Arc::new),
            multiaddrs: multiaddrs.clone(),
            genesis: Arc::new(genesis.clone()),
        };
        let light = LightClientService::new(chain.clone());
        let (network, event_loop) =
            listening.serve(light.clone(), blobs.clone(), metrics.clone(), multiaddrs.clone());
        tasks.push(tokio::spawn(event_loop.run()));
        let app = http::router(state, node_config.peer_rpcs.clone(), node_config.tx_forward_hops);
        tasks.push(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                error!(%error, "HTTP server stopped");
            }
        }));
        info!(
            chain = %genesis.chain_id,
            http = %http_addr,
            peer_id = %network.peer_id,
            blobs = %blobs.store().location(),
            storage_node = %blobs.relay_address(),
            dashboard = %config.dist.as_ref().map_or("placeholder".into(), |d| d.display().to_string()),
            "relay started"
        );
        Ok(Relay {
            light,
            chain,
            blobs,
            metrics,
            http_addr,
            multiaddrs,
            network,
            node,
            tasks,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.node.engine.actor.stop(Some("relay stopped".into()));
        self.node.consensus.abort();
    }
}

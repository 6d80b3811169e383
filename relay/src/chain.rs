//! The relay's view of the chain: the embedded node's [`NodeHandle`] (verified blocks, commits,
//! validator sets and the state tree) plus tx submission that reaches the proposers.
//!
//! A follower never proposes, so a tx admitted only to its own mempool would never land:
//! [`Chain::submit`] admits it locally (the same checks every node runs) and then forwards it
//! to the validators' HTTP APIs listed as `peer_rpcs` in the node's config, exactly as
//! `medledger-node`'s `POST /tx` does. The embedded dev validator has no peers.

use ledger::crypto::Hash;
use node::mempool::Rejected;
use node::node::NodeHandle;
use node::store::{StateSnapshot, StoreError};
use std::sync::Arc;
use tracing::debug;

#[derive(Clone, Debug)]
pub struct Chain {
    node: NodeHandle,
    peer_rpcs: Arc<Vec<String>>,
    client: reqwest::Client,
}

impl Chain {
    pub fn new(node: NodeHandle, peer_rpcs: Vec<String>) -> Self {
        Chain {
            node,
            peer_rpcs: Arc::new(peer_rpcs),
            client: reqwest::Client::new(),
        }
    }

    pub fn node(&self) -> &NodeHandle {
        &self.node
    }

    pub fn chain_id(&self) -> &str {
        &self.node.chain_id
    }

    /// A consistent read view of the latest committed (verified) state.
    pub fn snapshot(&self) -> Result<StateSnapshot, StoreError> {
        self.node.store().state_snapshot()
    }

    /// Admits `tx_bytes` to the local mempool and forwards them to the validators.
    pub fn submit(&self, tx_bytes: Vec<u8>) -> Result<Hash, Rejected> {
        let hash = self.node.submit_tx(tx_bytes.clone())?;
        if !self.peer_rpcs.is_empty() {
            let body = bytes::Bytes::from(tx_bytes);
            for peer in self.peer_rpcs.iter() {
                let (client, url, body) = (self.client.clone(), format!("http://{peer}/tx"), body.clone());
                tokio::spawn(async move {
                    if let Err(e) = client.post(&url).body(body).send().await {
                        debug!(%url, error = %e, "tx forward failed");
                    }
                });
            }
        }
        Ok(hash)
    }
}

//! [`LightClientService`]: what the relay answers light clients (DESIGN §5, issue 5 item 5),
//! independent of the transport. Every answer comes from the embedded node's verified store;
//! the light client re-verifies all of it (headers against commits and validator sets, values
//! against proofs), so this service is about availability, not trust.
//!
//! Store reads run on tokio's blocking pool: a redb read or a proof walk must not stall the
//! transport's event loop. The `handle_*` methods map one protocol request to its response,
//! which is all a libp2p request-response handler has to call.

use crate::chain::Chain;
use crate::protocol::headers::{self, HeadersRequest, HeadersResponse, TxInclusion};
use crate::protocol::proofs::{self, ProofRequest, ProofResponse};
use crate::protocol::txs::{SubmitTx, SubmitTxResponse};
use crate::protocol::{truncate_reason, ServiceError, SignedHeader};
use ledger::codec::encode;
use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::state::StateProof;
use ledger::ValidatorSet;
use node::node::NodeHandle;
use node::state::FinalizedBlock;
use node::store::StoreError;
use tokio::sync::broadcast;

/// Transport-independent light-client answers over the node's store. Cheap to clone.
#[derive(Clone, Debug)]
pub struct LightClientService {
    chain: Chain,
}

/// The gossiped head announcement of a block the node just finalized.
pub fn signed_header(block: FinalizedBlock) -> SignedHeader {
    SignedHeader {
        header: block.header,
        commit: block.commit,
    }
}

fn store_error(error: StoreError) -> ServiceError {
    match error {
        StoreError::NotCommitted { height, last } => ServiceError::NotFound { height, latest: last },
        other => ServiceError::unavailable(other),
    }
}

/// The signed header at `height`, `None` if the store has no block (or no commit) there.
fn read_signed_header(node: &NodeHandle, height: Height) -> Result<Option<SignedHeader>, ServiceError> {
    let header = node.header(height).map_err(store_error)?;
    let commit = node.commit(height).map_err(store_error)?;
    Ok(header
        .zip(commit)
        .map(|(header, commit)| SignedHeader { header, commit }))
}

impl LightClientService {
    pub fn new(chain: Chain) -> Self {
        LightClientService { chain }
    }

    /// Runs a store read on the blocking pool.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&NodeHandle) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let node = self.chain.node().clone();
        tokio::task::spawn_blocking(move || f(&node))
            .await
            .map_err(ServiceError::unavailable)?
    }

    /// The latest committed header and its commit.
    pub async fn latest(&self) -> Result<SignedHeader, ServiceError> {
        self.read(|node| {
            let latest = node.latest_height().map_err(store_error)?;
            read_signed_header(node, latest)?.ok_or(ServiceError::NotFound {
                height: latest,
                latest,
            })
        })
        .await
    }

    /// The header at `height` and its commit.
    pub async fn signed_header(&self, height: Height) -> Result<SignedHeader, ServiceError> {
        self.read(move |node| {
            let latest = node.latest_height().map_err(store_error)?;
            read_signed_header(node, height)?.ok_or(ServiceError::NotFound { height, latest })
        })
        .await
    }

    /// The committed tx with this hash and its inclusion proof against its block's `tx_root`.
    pub async fn tx_inclusion(&self, hash: Hash) -> Result<TxInclusion, ServiceError> {
        self.read(move |node| {
            let height = node
                .tx_height(&hash)
                .map_err(store_error)?
                .ok_or(ServiceError::UnknownTx { hash })?;
            let latest = node.latest_height().map_err(store_error)?;
            let block = node
                .block(height)
                .map_err(store_error)?
                .ok_or(ServiceError::NotFound { height, latest })?;
            // The index maps hash → height; the position is found by hashing the block's txs.
            let index = block
                .txs
                .iter()
                .position(|tx| ledger::crypto::sha256(tx) == hash)
                .ok_or(ServiceError::UnknownTx { hash })?;
            let proof =
                ledger::merkle::prove_inclusion(&block.txs, index).map_err(ServiceError::unavailable)?;
            let mut txs = block.txs;
            let tx = txs.swap_remove(index);
            Ok(TxInclusion { height, tx, proof })
        })
        .await
    }

    /// The validator set that signs the block at `height`.
    pub async fn validator_set(&self, height: Height) -> Result<ValidatorSet, ServiceError> {
        self.read(move |node| {
            let latest = node.latest_height().map_err(store_error)?;
            if height == 0 || height > latest {
                return Err(ServiceError::NotFound { height, latest });
            }
            node.validator_set(height)
                .map_err(store_error)?
                .ok_or(ServiceError::NotFound { height, latest })
        })
        .await
    }

    /// Up to `count` (at most [`headers::MAX_RANGE`]) consecutive signed headers from `from`,
    /// stopping early at the head or before the response would pass its size limit.
    pub async fn header_range(&self, from: Height, count: u32) -> Result<Vec<SignedHeader>, ServiceError> {
        if count > headers::MAX_RANGE {
            return Err(ServiceError::RangeTooLarge {
                count,
                max: headers::MAX_RANGE,
            });
        }
        self.read(move |node| {
            let latest = node.latest_height().map_err(store_error)?;
            if from == 0 || from > latest {
                return Err(ServiceError::NotFound { height: from, latest });
            }
            // Room for the response's enum tag and vector length prefix.
            let budget = headers::RESPONSE_SIZE_LIMIT - 16;
            let (mut out, mut size) = (Vec::new(), 0usize);
            for height in (from..=latest).take(count as usize) {
                let Some(signed) = read_signed_header(node, height)? else {
                    break;
                };
                size += encode(&signed).len();
                if size > budget {
                    break;
                }
                out.push(signed);
            }
            Ok(out)
        })
        .await
    }

    /// The value of `key` at committed `height` and its (non-)inclusion proof against that
    /// height's `state_root`.
    pub async fn state_value(
        &self,
        key: Vec<u8>,
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), ServiceError> {
        if key.len() > proofs::MAX_KEY_LEN {
            return Err(ServiceError::KeyTooLarge {
                len: key.len().try_into().unwrap_or(u32::MAX),
                max: proofs::MAX_KEY_LEN as u32,
            });
        }
        self.read(move |node| {
            let latest = node.latest_height().map_err(store_error)?;
            if height == 0 || height > latest {
                return Err(ServiceError::NotFound { height, latest });
            }
            node.state_proof(&key, height).map_err(store_error)
        })
        .await
    }

    /// Admits a tx (and forwards it to the validators), answering with the node's verdict.
    pub async fn submit_tx(&self, tx: Vec<u8>) -> SubmitTxResponse {
        match self.chain.submit(tx) {
            Ok(hash) => SubmitTxResponse::Accepted { hash },
            Err(rejected) => SubmitTxResponse::Rejected {
                reason: truncate_reason(rejected.to_string()),
            },
        }
    }

    /// Every block the node commits from now on (the source of gossiped heads).
    pub fn subscribe_heads(&self) -> broadcast::Receiver<FinalizedBlock> {
        self.chain.node().subscribe()
    }

    pub async fn handle_headers(&self, request: HeadersRequest) -> HeadersResponse {
        let result = match request {
            HeadersRequest::Latest => self.latest().await.map(|h| HeadersResponse::Header(Box::new(h))),
            HeadersRequest::At { height } => self
                .signed_header(height)
                .await
                .map(|h| HeadersResponse::Header(Box::new(h))),
            HeadersRequest::ValidatorSet { height } => self
                .validator_set(height)
                .await
                .map(|validators| HeadersResponse::ValidatorSet { height, validators }),
            HeadersRequest::Range { from, count } => {
                self.header_range(from, count).await.map(HeadersResponse::Range)
            }
            HeadersRequest::TxInclusion { hash } => self
                .tx_inclusion(hash)
                .await
                .map(|found| HeadersResponse::TxInclusion(Box::new(found))),
        };
        result.unwrap_or_else(HeadersResponse::Failed)
    }

    pub async fn handle_proof(&self, request: ProofRequest) -> ProofResponse {
        let height = request.height;
        match self.state_value(request.key, height).await {
            Ok((value, proof)) => ProofResponse::Value { height, value, proof },
            Err(error) => ProofResponse::Failed(error),
        }
    }

    pub async fn handle_submit(&self, request: SubmitTx) -> SubmitTxResponse {
        self.submit_tx(request.tx).await
    }
}

//! The node's HTTP API, for operators, tests and tx forwarding between nodes. Light clients
//! talk libp2p to relays (DESIGN §5); this is the native, trusted-operator side.
//!
//! - `POST /txs` (body: borsh `Vec<Vec<u8>>`) → one result per tx, for load and batching.
//! - `POST /tx` (body: borsh tx bytes) → `{"hash"}` or 400 `{"error"}`; new txs are forwarded
//!   to `peer_rpcs` so every proposer's mempool has them.
//!
//! Forwarding counts hops in the [`FORWARD_HOPS_HEADER`] header: a node forwards the txs it
//! admitted only while the count is below its `tx_forward_hops` (1 by default: with
//! `peer_rpcs` naming every other validator, as localnets do, one hop reaches every mempool).
//! Without the limit each node would send every tx on again, and each would arrive at every
//! node three times in a 4-validator mesh, two of them only to be refused as duplicates.
//! - `GET /status`, `/header/{h}`, `/commit/{h}`, `/block/{h}`, `/validators/{h}` (borsh bytes
//!   for the last four), `/tx/{hash}` → `{"height"}` (404 while pending, 410 with the reason once evicted), `/proof/{h}?key=HEX` → borsh
//!   `(Option<Vec<u8>>, StateProof)`, `/metrics` (Prometheus).

use crate::node::NodeHandle;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use ledger::crypto::Hash;
use serde::Deserialize;
use std::sync::Arc;
use tracing::{debug, warn};

/// Largest `/txs` batch body (and so the largest request body of any route).
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most txs in one `/txs` batch.
pub const MAX_BATCH_TXS: usize = 10_000;

/// How many times the txs of a request were already forwarded between nodes (absent: 0,
/// a client's submission).
pub const FORWARD_HOPS_HEADER: &str = "x-medledger-forward-hops";

#[derive(Clone)]
struct Api {
    node: NodeHandle,
    peers: Arc<Vec<String>>,
    forward_hops: u32,
    client: reqwest::Client,
}

impl Api {
    /// Sends `body` to `path` on every peer if txs that came `hops` hops may go one further.
    fn forward(&self, path: &str, body: Bytes, hops: u32) {
        if hops >= self.forward_hops {
            return;
        }
        for peer in self.peers.iter() {
            let request = self
                .client
                .post(format!("http://{peer}{path}"))
                .header(FORWARD_HOPS_HEADER, (hops + 1).to_string())
                .body(body.clone());
            tokio::spawn(async move {
                if let Err(e) = request.send().await {
                    debug!(error = %e, "tx forward failed");
                }
            });
        }
    }
}

/// The hop count of a request; an unreadable header counts as the last hop, so a confused
/// peer cannot start a forwarding loop.
fn hops(headers: &HeaderMap) -> u32 {
    match headers.get(FORWARD_HOPS_HEADER) {
        None => 0,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(u32::MAX),
    }
}

/// `forward_hops`: how many times txs admitted here are forwarded on (see the module docs).
pub fn router(node: NodeHandle, peer_rpcs: Vec<String>, forward_hops: u32) -> Router {
    let api = Api {
        node,
        peers: Arc::new(peer_rpcs),
        forward_hops,
        client: reqwest::Client::new(),
    };
    Router::new()
        .route("/tx", post(submit_tx))
        .route("/txs", post(submit_txs))
        .route("/tx/{hash}", get(tx_status))
        .route("/status", get(status))
        .route("/header/{height}", get(header))
        .route("/commit/{height}", get(commit))
        .route("/block/{height}", get(block))
        .route("/validators/{height}", get(validators))
        .route("/proof/{height}", get(proof))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(MAX_BATCH_BYTES))
        .with_state(api)
}

fn error(status: StatusCode, message: impl ToString) -> Response {
    (status, Json(serde_json::json!({ "error": message.to_string() }))).into_response()
}

fn borsh_or_404<T: borsh::BorshSerialize>(value: Result<Option<T>, crate::store::StoreError>) -> Response {
    match value {
        Ok(Some(v)) => (StatusCode::OK, ledger::codec::encode(&v)).into_response(),
        Ok(None) => error(StatusCode::NOT_FOUND, "not found"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn submit_tx(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    match api.node.submit_tx(body.to_vec()) {
        Ok(hash) => {
            api.forward("/tx", body, hops(&headers));
            Json(serde_json::json!({ "hash": hash.to_hex() })).into_response()
        }
        Err(rejected) => {
            warn!(reason = %rejected, "tx rejected");
            error(StatusCode::BAD_REQUEST, rejected)
        }
    }
}

/// `POST /txs`: borsh `Vec<Vec<u8>>` of txs → one JSON result per tx, in order. Accepted
/// txs are forwarded to peers as one batch.
async fn submit_txs(State(api): State<Api>, headers: HeaderMap, body: Bytes) -> Response {
    let txs: Vec<Vec<u8>> = match ledger::codec::decode_limited(&body, MAX_BATCH_BYTES) {
        Ok(txs) => txs,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if txs.len() > MAX_BATCH_TXS {
        return error(
            StatusCode::BAD_REQUEST,
            format!("batch of {} txs exceeds {MAX_BATCH_TXS}", txs.len()),
        );
    }
    // Signature checks are most of the work: keep them off the async workers.
    let node = api.node.clone();
    let (txs, verdicts) = match tokio::task::spawn_blocking(move || {
        let verdicts = node.submit_txs(&txs);
        (txs, verdicts)
    })
    .await
    {
        Ok(done) => done,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let mut results = Vec::with_capacity(txs.len());
    let mut accepted = Vec::new();
    for (tx, verdict) in txs.into_iter().zip(verdicts) {
        match verdict {
            Ok(hash) => {
                results.push(serde_json::json!({ "hash": hash.to_hex() }));
                accepted.push(tx);
            }
            Err(rejected) => results.push(serde_json::json!({ "error": rejected.to_string() })),
        }
    }
    if !accepted.is_empty() {
        api.forward(
            "/txs",
            Bytes::from(ledger::codec::encode(&accepted)),
            hops(&headers),
        );
    }
    Json(results).into_response()
}

async fn tx_status(State(api): State<Api>, Path(hash): Path<String>) -> Response {
    let Ok(hash) = Hash::from_hex(&hash) else {
        return error(StatusCode::BAD_REQUEST, "hash must be 64 hex characters");
    };
    match api.node.tx_height(&hash) {
        Ok(Some(height)) => Json(serde_json::json!({ "height": height })).into_response(),
        Ok(None) => match api.node.mempool_eviction(&hash) {
            // Admitted, then found to no longer execute: it never will, so stop waiting.
            Some(reason) => error(StatusCode::GONE, format!("evicted from the mempool: {reason}")),
            None => error(StatusCode::NOT_FOUND, "not committed"),
        },
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e),
    }
}

async fn status(State(api): State<Api>) -> Response {
    let height = match api.node.latest_height() {
        Ok(h) => h,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e),
    };
    let header = api.node.header(height).ok().flatten();
    Json(serde_json::json!({
        "chain_id": api.node.chain_id,
        "genesis_hash": api.node.genesis_hash.to_hex(),
        "height": height,
        "block_id": header.as_ref().map(|h| h.id().to_hex()),
        "state_root": header.as_ref().map(|h| h.state_root.to_hex()),
        "time_ms": header.as_ref().map(|h| h.time),
        "mempool": api.node.mempool_len(),
    }))
    .into_response()
}

async fn header(State(api): State<Api>, Path(height): Path<u64>) -> Response {
    borsh_or_404(api.node.header(height))
}
async fn commit(State(api): State<Api>, Path(height): Path<u64>) -> Response {
    borsh_or_404(api.node.commit(height))
}
async fn block(State(api): State<Api>, Path(height): Path<u64>) -> Response {
    borsh_or_404(api.node.block(height))
}
async fn validators(State(api): State<Api>, Path(height): Path<u64>) -> Response {
    borsh_or_404(api.node.validator_set(height))
}

#[derive(Deserialize)]
struct ProofQuery {
    key: String,
}

async fn proof(State(api): State<Api>, Path(height): Path<u64>, Query(q): Query<ProofQuery>) -> Response {
    let Ok(key) = hex::decode(&q.key) else {
        return error(StatusCode::BAD_REQUEST, "key must be hex");
    };
    borsh_or_404(api.node.state_proof(&key, height).map(Some))
}

async fn metrics() -> Response {
    (
        [("content-type", "text/plain; version=0.0.4")],
        crate::metrics::export(),
    )
        .into_response()
}

//! The node's HTTP API, for operators, tests and tx forwarding between nodes. Light clients
//! talk libp2p to relays (DESIGN §5); this is the native, trusted-operator side.
//!
//! - `POST /txs` (body: borsh `Vec<Vec<u8>>`) → one result per tx, for load and batching.
//! - `POST /tx` (body: borsh tx bytes) → `{"hash"}` or 400 `{"error"}`; new txs are forwarded
//!   to `peer_rpcs` so every proposer's mempool has them.
//! - `GET /status`, `/header/{h}`, `/commit/{h}`, `/block/{h}`, `/validators/{h}` (borsh bytes
//!   for the last four), `/tx/{hash}` → `{"height"}` (404 while pending, 410 with the reason once evicted), `/proof/{h}?key=HEX` → borsh
//!   `(Option<Vec<u8>>, StateProof)`, `/metrics` (Prometheus).

use crate::node::NodeHandle;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
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

#[derive(Clone)]
struct Api {
    node: NodeHandle,
    peers: Arc<Vec<String>>,
    client: reqwest::Client,
}

pub fn router(node: NodeHandle, peer_rpcs: Vec<String>) -> Router {
    let api = Api {
        node,
        peers: Arc::new(peer_rpcs),
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

async fn submit_tx(State(api): State<Api>, body: Bytes) -> Response {
    match api.node.submit_tx(body.to_vec()) {
        Ok(hash) => {
            for peer in api.peers.iter() {
                let (client, url, bytes) = (api.client.clone(), format!("http://{peer}/tx"), body.clone());
                tokio::spawn(async move {
                    if let Err(e) = client.post(&url).body(bytes).send().await {
                        debug!(%url, error = %e, "tx forward failed");
                    }
                });
            }
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
async fn submit_txs(State(api): State<Api>, body: Bytes) -> Response {
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
    let mut results = Vec::with_capacity(txs.len());
    let mut accepted = Vec::new();
    for tx in txs {
        match api.node.submit_tx(tx.clone()) {
            Ok(hash) => {
                results.push(serde_json::json!({ "hash": hash.to_hex() }));
                accepted.push(tx);
            }
            Err(rejected) => results.push(serde_json::json!({ "error": rejected.to_string() })),
        }
    }
    if !accepted.is_empty() {
        let batch = Bytes::from(ledger::codec::encode(&accepted));
        for peer in api.peers.iter() {
            let (client, url, bytes) = (api.client.clone(), format!("http://{peer}/txs"), batch.clone());
            tokio::spawn(async move {
                if let Err(e) = client.post(&url).body(bytes).send().await {
                    debug!(%url, error = %e, "batch forward failed");
                }
            });
        }
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

//! The relay's HTTP side (issue 5 items 4, 6 and 8), beside the libp2p listeners:
//!
//! - `GET /` and below: the dashboard build ([`static_files`]);
//! - `GET /.well-known/medledger.json`: the discovery document ([`Discovery`]);
//! - `GET /metrics`: Prometheus (node and relay, [`crate::metrics::RelayMetrics::export`]);
//! - `PUT /blobs/{cid}` (body: the ciphertext) → `{"cid"}`;
//! - `POST /blobs/get` (body: borsh `SignedAccessRequest`) → the ciphertext, with the access
//!   record's tx hash in `x-medledger-access-record`; refusals are JSON
//!   `{"error": kind, "reason": text}` with 403 for denials (see [`status_of`]);
//! - `GET /studies/{id}/description`: a study's public description, the blob its on-chain
//!   terms name (anyone may read it; no other blob is served without a signed request);
//! - `/node/...`: the embedded node's own API (`node::rpc`: tx submission, blocks, proofs)
//!   for native tools, until they speak libp2p.
//!
//! The blob routes call the same [`BlobService`] the libp2p blob protocol will.

pub mod static_files;

use crate::blobs::{BlobError, BlobService};
use crate::chain::Chain;
use crate::metrics::RelayMetrics;
use crate::protocol::blobs::RefusalKind;
use crate::protocol::{blobs, headers, proofs, txs};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use ledger::tx::SignedAccessRequest;
use ledger::types::Cid;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

/// Largest `POST /blobs/get` body: one signed access request is a few hundred bytes.
pub const GET_REQUEST_LIMIT: usize = 4 * 1024;
/// Header carrying the hash of the access-record tx submitted for a served read.
pub const ACCESS_RECORD_HEADER: &str = "x-medledger-access-record";

/// What the HTTP handlers share.
#[derive(Clone, Debug)]
pub struct HttpState {
    pub chain: Chain,
    pub blobs: BlobService,
    pub metrics: RelayMetrics,
    /// The dashboard build; `None` serves a placeholder.
    pub dist: Option<Arc<PathBuf>>,
    /// The relay's libp2p listen addresses for browsers. Empty until the libp2p listeners
    /// exist; they will write their addresses (with the WebRTC certhash) here.
    pub multiaddrs: Arc<RwLock<Vec<String>>>,
    /// The chain's genesis, served for light clients that trust from genesis.
    pub genesis: Arc<ledger::Genesis>,
}

/// `/.well-known/medledger.json`: what a dashboard needs to find and check this relay.
#[derive(Clone, Debug, Serialize)]
pub struct Discovery {
    pub chain_id: String,
    /// Light clients pin this (DESIGN §6 trust root).
    pub genesis_hash: String,
    /// The relay's latest committed height.
    pub height: u64,
    /// The storage-node account that signs this relay's access records.
    pub storage_node: String,
    /// libp2p addresses for browsers (WebRTC-direct with certhash, WebSocket); empty until
    /// the libp2p listeners land.
    pub multiaddrs: Vec<String>,
    /// Protocol names the relay answers (once its libp2p listeners are up).
    pub protocols: Vec<&'static str>,
}

/// The HTTP router; `peer_rpcs` and `forward_hops` are passed to the embedded node's API for
/// tx forwarding.
pub fn router(state: HttpState, peer_rpcs: Vec<String>, forward_hops: u32) -> Router {
    let max_blob = state.blobs.store().max_blob_bytes() as usize;
    let node_api = node::rpc::router(state.chain.node().clone(), peer_rpcs, forward_hops);
    let dist = state.dist.clone();
    Router::new()
        .route("/.well-known/medledger.json", get(discovery))
        .route("/genesis", get(genesis))
        .route("/metrics", get(metrics))
        // One byte over the limit still reaches the service, which names the limit.
        .route(
            "/blobs/{cid}",
            put(put_blob).layer(DefaultBodyLimit::max(max_blob + 1)),
        )
        .route(
            "/blobs/get",
            post(get_blob).layer(DefaultBodyLimit::max(GET_REQUEST_LIMIT)),
        )
        .route("/studies/{id}/description", get(study_description))
        .with_state(state)
        .nest("/node", node_api)
        .fallback(move |method: Method, uri: Uri| {
            let dist = dist.clone();
            async move { static_files::serve(dist.as_deref().map(|p| p.as_path()), &method, &uri).await }
        })
}

/// `/genesis`: the genesis in its canonical (borsh) encoding; its SHA-256 is the discovery
/// document's `genesis_hash`, which a light client checks before trusting it.
async fn genesis(State(state): State<HttpState>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        ledger::codec::encode(state.genesis.as_ref()),
    )
        .into_response()
}

async fn discovery(State(state): State<HttpState>) -> Response {
    let node = state.chain.node();
    let body = Discovery {
        chain_id: node.chain_id.clone(),
        genesis_hash: node.genesis_hash.to_hex(),
        height: node.latest_height().unwrap_or(0),
        storage_node: state.blobs.relay_address().to_hex(),
        multiaddrs: state.multiaddrs.read().map(|m| m.clone()).unwrap_or_default(),
        protocols: vec![
            headers::PROTOCOL,
            proofs::PROTOCOL,
            txs::PROTOCOL,
            blobs::PROTOCOL,
            crate::protocol::heads::TOPIC,
        ],
    };
    (
        [
            (header::CACHE_CONTROL, "no-store"),
            // Public facts; a dashboard served from elsewhere (e.g. `trunk serve`) may read them.
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
        ],
        Json(body),
    )
        .into_response()
}

async fn metrics(State(state): State<HttpState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.export(),
    )
        .into_response()
}

/// The HTTP status of a refusal.
pub fn status_of(kind: RefusalKind) -> StatusCode {
    match kind {
        RefusalKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        RefusalKind::CidMismatch
        | RefusalKind::Malformed
        | RefusalKind::BadSignature
        | RefusalKind::WrongChain
        | RefusalKind::StaleRequest => StatusCode::BAD_REQUEST,
        RefusalKind::Replayed => StatusCode::CONFLICT,
        RefusalKind::Denied => StatusCode::FORBIDDEN,
        RefusalKind::Erased => StatusCode::GONE,
        RefusalKind::NotStored => StatusCode::NOT_FOUND,
        RefusalKind::Busy => StatusCode::TOO_MANY_REQUESTS,
        RefusalKind::RelayNotAdmitted | RefusalKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn refused(kind: RefusalKind, reason: impl ToString) -> Response {
    let body = serde_json::json!({ "error": kind.as_str(), "reason": reason.to_string() });
    (status_of(kind), Json(body)).into_response()
}

fn blob_error(error: BlobError) -> Response {
    refused(error.kind(), error)
}

fn body_error(rejection: BytesRejection) -> Response {
    let kind = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        RefusalKind::TooLarge
    } else {
        RefusalKind::Malformed
    };
    refused(kind, rejection.body_text())
}

async fn study_description(State(state): State<HttpState>, Path(id): Path<String>) -> Response {
    let Ok(id) = ledger::types::RecordId::from_hex(&id) else {
        return refused(
            RefusalKind::Malformed,
            "the path must be a study id (64 hex digits)",
        );
    };
    match state.blobs.study_description(&id).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                // A study's terms never change, so neither does the blob they name.
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            ],
            bytes,
        )
            .into_response(),
        Err(error) => blob_error(error),
    }
}

async fn put_blob(
    State(state): State<HttpState>,
    Path(cid): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Ok(cid) = Cid::from_text(&cid) else {
        return refused(
            RefusalKind::Malformed,
            "the path must be a CIDv1 raw sha2-256 (b...)",
        );
    };
    let bytes = match body {
        Ok(bytes) => bytes,
        Err(rejection) => return body_error(rejection),
    };
    match state.blobs.put(cid, bytes).await {
        Ok(cid) => Json(serde_json::json!({ "cid": cid.to_text() })).into_response(),
        Err(error) => blob_error(error),
    }
}

async fn get_blob(State(state): State<HttpState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_error(rejection),
    };
    let signed: SignedAccessRequest = match ledger::codec::decode_limited(&body, GET_REQUEST_LIMIT) {
        Ok(signed) => signed,
        Err(error) => return blob_error(BlobError::Malformed(error)),
    };
    match state.blobs.get(&signed).await {
        Ok(served) => {
            let record = HeaderValue::from_str(&served.access_record_tx.to_hex());
            let mut response =
                ([(header::CONTENT_TYPE, "application/octet-stream")], served.bytes).into_response();
            if let Ok(record) = record {
                response.headers_mut().insert(ACCESS_RECORD_HEADER, record);
            }
            response
        }
        Err(error) => blob_error(error),
    }
}

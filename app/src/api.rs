//! The light client in the page: finding the relay (discovery document, genesis), connecting
//! over libp2p, verifying the chain, following new heads, persisting the trust, and the
//! verified reads, blob reads and signed txs the views use.
//!
//! The client lives in a thread-local `Rc` behind an async mutex: its methods take `&mut self`
//! and its futures are not `Send`; no borrow is held across an await except the mutex guard.

use crate::error::{AppError, AppResult};
use crate::http;
use crate::idb;
use crate::state::{AppState, Conn};
use futures::lock::Mutex;
use ledger::crypto::{AccountKeys, Hash};
use ledger::state::records::DataCommitment;
use ledger::tx::{AccessRequest, Action};
use ledger::types::{Purpose, RecordId, TimeMs};
use ledger::Genesis;
use leptos::prelude::*;
use light_client::net::{Multiaddr, RelayConnection};
use light_client::{
    system_clock, Included, LightClient, LightClientError, TrustRoot, TrustSnapshot, Verified,
};
use serde::Deserialize;
use std::cell::RefCell;
use std::rc::Rc;

pub type Client = LightClient<crate::source::Paced>;

/// `/.well-known/medledger.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct Discovery {
    pub chain_id: String,
    pub genesis_hash: String,
    pub height: u64,
    pub storage_node: String,
    pub multiaddrs: Vec<String>,
    #[serde(default)]
    pub protocols: Vec<String>,
}

pub struct Node {
    pub client: Mutex<Client>,
    pub conn: RelayConnection,
    pub discovery: Discovery,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("conn", &self.conn)
            .field("chain", &self.discovery.chain_id)
            .finish()
    }
}

thread_local! {
    static NODE: RefCell<Option<Rc<Node>>> = const { RefCell::new(None) };
}

pub fn node() -> AppResult<Rc<Node>> {
    NODE.with(|n| n.borrow().clone()).ok_or(AppError::NotConnected)
}

/// The chain id of the connected relay.
pub fn chain_id() -> AppResult<String> {
    Ok(node()?.discovery.chain_id.clone())
}

pub fn now_ms() -> TimeMs {
    js_sys::Date::now() as TimeMs
}

/// How often views re-read chain values while heads arrive.
const REFRESH_MS: u64 = 6_000;
/// How often the trust snapshot is saved.
const PERSIST_MS: u64 = 15_000;
/// With no gossiped head for this long, ask the relay for its latest.
const POLL_MS: u64 = 3_000;

/// WebRTC-direct first (the browser's native transport), then WebSocket.
fn dial_order(addrs: &[String]) -> AppResult<Vec<Multiaddr>> {
    let mut parsed: Vec<Multiaddr> = addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>()
                .map_err(|e| AppError::Discovery(format!("bad multiaddr {a}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    parsed.sort_by_key(|a| {
        if a.to_string().contains("/webrtc-direct") {
            0
        } else {
            1
        }
    });
    parsed.retain(|a| {
        let s = a.to_string();
        s.contains("/webrtc-direct") || s.contains("/ws")
    });
    if parsed.is_empty() {
        return Err(AppError::Discovery(
            "no WebRTC-direct or WebSocket address".into(),
        ));
    }
    Ok(parsed)
}

/// Finds the relay that served the page, connects, verifies the chain from the stored trust
/// (or from genesis) and keeps following it. Errors are shown in the status bar.
pub async fn start(state: AppState) {
    if let Err(e) = connect(state).await {
        state.conn.set(Conn::Failed(e.to_string()));
    }
}

async fn connect(state: AppState) -> AppResult<()> {
    state
        .conn
        .set(Conn::Connecting("reading the relay's discovery document".into()));
    let doc = http::get("/.well-known/medledger.json").await.map_err(|e| {
        AppError::Discovery(format!(
            "GET /.well-known/medledger.json: {e} (is this page served by a Medledger relay?)"
        ))
    })?;
    let discovery: Discovery =
        serde_json::from_slice(&doc).map_err(|e| AppError::Discovery(e.to_string()))?;
    let genesis_bytes = http::get("/genesis").await?;
    let genesis: Genesis = ledger::codec::decode(&genesis_bytes)
        .map_err(|e| AppError::Discovery(format!("genesis does not decode: {e}")))?;
    let genesis_hash = genesis.hash().to_hex();
    if genesis_hash != discovery.genesis_hash || genesis.chain_id != discovery.chain_id {
        return Err(AppError::GenesisMismatch {
            expected: discovery.genesis_hash.clone(),
            got: genesis_hash,
        });
    }
    let addrs = dial_order(&discovery.multiaddrs)?;
    state.conn.set(Conn::Connecting(format!("dialing {}", addrs[0])));
    let conn = RelayConnection::connect(addrs).await?;
    state.transport.set(conn.remote_addr().map(|a| a.to_string()));
    let mut client = LightClient::new(
        TrustRoot::Genesis(Box::new(genesis)),
        Default::default(),
        vec![crate::source::Paced::new(conn.clone())],
        system_clock(),
    );
    // Resume from the stored trust (re-verified by `restore`); start over from genesis if
    // it is unusable (other chain, expired, tampered).
    let trust_key = idb::trust_key(&discovery.genesis_hash);
    match idb::get(&trust_key).await {
        Ok(Some(bytes)) => {
            let restored = TrustSnapshot::from_bytes(&bytes).and_then(|s| client.restore(s));
            if let Err(e) = restored {
                leptos::logging::warn!("stored trust not used: {e}");
            }
        }
        Ok(None) => {}
        Err(e) => leptos::logging::warn!("{e}"),
    }
    state.conn.set(Conn::Connecting("verifying the chain".into()));
    client.sync().await?;
    state.status.set(Some(client.status()));
    let _ = idb::put(&trust_key, &client.snapshot().to_bytes()).await;
    let node = Rc::new(Node {
        client: Mutex::new(client),
        conn,
        discovery,
    });
    NODE.with(|n| *n.borrow_mut() = Some(node.clone()));
    state.conn.set(Conn::Live);
    state.refresh.update(|r| *r += 1);
    leptos::task::spawn_local(follow_heads(node.clone(), state));
    leptos::task::spawn_local(poll(node, state));
    Ok(())
}

// Shared bookkeeping of the two loops below: times of the last head, refresh and save.
thread_local! {
    static LAST: RefCell<(TimeMs, TimeMs, TimeMs)> = const { RefCell::new((0, 0, 0)) };
}

/// After a verified head: publish the status, bump the refresh tick now and then, save the
/// trust now and then.
async fn after_head(node: &Node, client: &Client, state: AppState) {
    let now = now_ms();
    state.status.set(Some(client.status()));
    state.sync_error.set(None);
    state
        .transport
        .set(node.conn.remote_addr().map(|a| a.to_string()));
    let (last_head, last_refresh, last_persist) = LAST.with(|l| *l.borrow());
    let _ = last_head;
    let refresh = now.saturating_sub(last_refresh) >= REFRESH_MS;
    let persist = now.saturating_sub(last_persist) >= PERSIST_MS;
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        l.0 = now;
        if refresh {
            l.1 = now;
        }
        if persist {
            l.2 = now;
        }
    });
    if refresh {
        state.refresh.update(|r| *r += 1);
    }
    if persist {
        let key = idb::trust_key(&node.discovery.genesis_hash);
        let _ = idb::put(&key, &client.snapshot().to_bytes()).await;
    }
}

fn report(state: AppState, client: &Client, error: &LightClientError) {
    if matches!(error, LightClientError::Stale { .. }) {
        return;
    }
    state.status.set(Some(client.status()));
    state.sync_error.set(Some(error.to_string()));
}

/// Verifies every head the relay gossips.
async fn follow_heads(node: Rc<Node>, state: AppState) {
    use futures::StreamExt;
    let mut heads = node.conn.heads();
    while let Some(head) = heads.next().await {
        let mut client = node.client.lock().await;
        match client.on_head(head).await {
            Ok(_) => after_head(&node, &client, state).await,
            Err(e) => report(state, &client, &e),
        }
    }
    state
        .sync_error
        .set(Some("the relay's heads stream ended".into()));
}

/// Asks for the latest header when gossip is quiet (and retries after errors).
async fn poll(node: Rc<Node>, state: AppState) {
    loop {
        light_client::time::sleep_ms(POLL_MS).await;
        let quiet = now_ms().saturating_sub(LAST.with(|l| l.borrow().0)) >= POLL_MS;
        if !quiet {
            continue;
        }
        let mut client = node.client.lock().await;
        match client.sync().await {
            Ok(_) => after_head(&node, &client, state).await,
            Err(e) => report(state, &client, &e),
        }
    }
}

/// Runs `f` with the client (verified reads, submissions).
pub async fn query<T>(f: impl AsyncFnOnce(&mut Client) -> Result<T, LightClientError>) -> AppResult<T> {
    let node = node()?;
    let mut client = node.client.lock().await;
    Ok(f(&mut client).await?)
}

/// Signs `action` with `keys`, submits it and waits for a verified block to include it.
pub async fn submit(keys: &AccountKeys, action: Action, state: AppState) -> AppResult<Included> {
    let node = node()?;
    let mut client = node.client.lock().await;
    let included = client.submit(&keys.signing, action, 30_000).await?;
    state.status.set(Some(client.status()));
    drop(client);
    state.refresh.update(|r| *r += 1);
    Ok(included)
}

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    // Without randomness the nonce is the clock; the relay refuses an exact replay anyway.
    if getrandom02::getrandom(&mut bytes).is_err() {
        return now_ms();
    }
    u64::from_le_bytes(bytes)
}

/// Reads a blob with a request signed by `reader` (the relay checks consent against the
/// chain and records the read on chain); its bytes must hash to the committed CID.
pub async fn fetch_blob(
    reader: &AccountKeys,
    id: RecordId,
    commitment: &DataCommitment,
    purpose: Purpose,
) -> AppResult<Vec<u8>> {
    let request = AccessRequest {
        chain_id: chain_id()?,
        reader: reader.address(),
        commitment: id,
        cid: commitment.cid,
        purpose,
        time: now_ms(),
        nonce: random_u64(),
    }
    .sign(&reader.signing);
    let body = ledger::codec::encode(&request);
    let blob = http::request("POST", "/blobs/get", Some(&body)).await?.ok()?;
    if !commitment.cid.matches(&blob) {
        return Err(AppError::Blob(format!(
            "the relay served bytes that do not hash to the committed CID {}",
            commitment.cid
        )));
    }
    Ok(blob)
}

/// [`fetch_blob`], decrypted and checked against the commitment (CID, header, readings root
/// and count): the readings' NDJSON lines.
pub async fn read_blob(
    reader: &AccountKeys,
    id: RecordId,
    commitment: &DataCommitment,
    purpose: Purpose,
) -> AppResult<Vec<Vec<u8>>> {
    let blob = fetch_blob(reader, id, commitment, purpose).await?;
    gateway::open_lines_verified(reader, &blob, commitment)
        .map(|opened| opened.lines)
        .map_err(|e| AppError::Blob(e.to_string()))
}

/// Stores a sealed blob on the relay.
pub async fn put_blob(cid: &ledger::types::Cid, bytes: &[u8]) -> AppResult<()> {
    let url = format!("/blobs/{}", cid.to_text());
    http::request("PUT", &url, Some(bytes)).await?.ok()?;
    Ok(())
}

/// What a "verified" mark shows: the proof behind a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    pub height: u64,
    pub state_root: Hash,
    pub proof_bytes: usize,
}

impl<T> From<&Verified<T>> for Proof {
    fn from(v: &Verified<T>) -> Self {
        Proof {
            height: v.height,
            state_root: v.state_root,
            proof_bytes: v.proof_bytes,
        }
    }
}

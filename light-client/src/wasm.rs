//! The JavaScript API (wasm-bindgen; `wasm-pack build light-client --target web` emits it with
//! TypeScript types) and the browser's trust store in IndexedDB.
//!
//! ```js
//! import init, { MedledgerLightClient } from "./pkg/light_client.js";
//! await init();
//! const client = await MedledgerLightClient.connect("http://127.0.0.1:8080");
//! const status = await client.sync();          // { height, time, id, validators, ... }
//! const balance = await client.balance(addressHex); // { value, height, stateRoot, proofBytes }
//! client.onHead((status) => console.log("verified", status.height));
//! ```
//!
//! Every value handed to JavaScript was verified first; errors reject the promise with the
//! light client's message.

use crate::client::{system_clock, LightClient, Status, Verified};
use crate::net::{Multiaddr, RelayConnection};
use crate::store::TrustStore;
use crate::{LightClientError, TrustRoot, TrustSnapshot};
use futures::lock::Mutex;
use futures::StreamExt;
use js_sys::{Object, Reflect};
use ledger::crypto::PublicKey;
use ledger::verify::TrustOptions;
use std::rc::Rc;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** The verified head and how it was verified. */
export interface LightClientStatus {
  chainId: string;
  height: number | null;
  time: number | null;
  id: string | null;
  stateRoot: string | null;
  validators: number | null;
  signedPower: number | null;
  totalPower: number | null;
  relays: { label: string; primary: boolean; faulty: string | null }[];
  fork: { height: number; firstRelay: string; secondRelay: string } | null;
}
/** A value proven against a verified state root. */
export interface VerifiedValue<T> {
  value: T;
  height: number;
  stateRoot: string;
  proofBytes: number;
}
"#;

fn js_error(error: impl std::fmt::Display) -> JsValue {
    js_sys::Error::new(&error.to_string()).into()
}

fn set(target: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a plain property on a fresh object cannot fail.
    let _ = Reflect::set(target, &JsValue::from_str(key), &value.into());
}

fn opt<T: Into<JsValue>>(value: Option<T>) -> JsValue {
    value.map_or(JsValue::NULL, Into::into)
}

fn status_object(status: &Status) -> JsValue {
    let out = Object::new();
    let head = status.head.as_ref();
    set(&out, "chainId", status.chain_id.as_str());
    set(&out, "height", opt(head.map(|h| h.height as f64)));
    set(&out, "time", opt(head.map(|h| h.time as f64)));
    set(&out, "id", opt(head.map(|h| h.id.to_hex())));
    set(&out, "stateRoot", opt(head.map(|h| h.state_root.to_hex())));
    set(&out, "validators", opt(head.map(|h| h.validators as f64)));
    set(&out, "signedPower", opt(head.map(|h| h.signed_power as f64)));
    set(&out, "totalPower", opt(head.map(|h| h.total_power as f64)));
    let relays = js_sys::Array::new();
    for relay in &status.relays {
        let r = Object::new();
        set(&r, "label", relay.label.as_str());
        set(&r, "primary", relay.primary);
        set(&r, "faulty", opt(relay.faulty.clone()));
        relays.push(&r);
    }
    set(&out, "relays", relays);
    let fork = status.fork.as_ref().map(|f| {
        let o = Object::new();
        set(&o, "height", f.height as f64);
        set(&o, "firstRelay", f.first_relay.as_str());
        set(&o, "secondRelay", f.second_relay.as_str());
        JsValue::from(o)
    });
    set(&out, "fork", fork.unwrap_or(JsValue::NULL));
    out.into()
}

fn verified_object<T>(verified: &Verified<T>, value: JsValue) -> JsValue {
    let out = Object::new();
    set(&out, "value", value);
    set(&out, "height", verified.height as f64);
    set(&out, "stateRoot", verified.state_root.to_hex());
    set(&out, "proofBytes", verified.proof_bytes as f64);
    out.into()
}

fn parse_address(hex_text: &str) -> Result<PublicKey, JsValue> {
    PublicKey::from_hex(hex_text).map_err(|e| js_error(format!("not an account address: {e}")))
}

async fn fetch_bytes(url: &str) -> Result<Vec<u8>, JsValue> {
    let window = web_sys::window().ok_or_else(|| js_error("no window"))?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str(url)).await?.dyn_into()?;
    if !response.ok() {
        return Err(js_error(format!("GET {url}: HTTP {}", response.status())));
    }
    let buffer = JsFuture::from(response.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The trust snapshot in IndexedDB (database `medledger`, store `trust`, one key per chain).
#[derive(Debug, Clone)]
pub struct IndexedDbStore {
    key: String,
}

const DB_NAME: &str = "medledger";
const DB_STORE: &str = "trust";

impl IndexedDbStore {
    pub fn new(chain_id: &str) -> Self {
        IndexedDbStore {
            key: format!("trust/{chain_id}"),
        }
    }
}

/// Waits for an IndexedDB request's success (its result) or error.
async fn idb_request(request: &web_sys::IdbRequest) -> Result<JsValue, JsValue> {
    let promise = js_sys::Promise::new(&mut |resolve, reject| {
        let ok = Closure::once_into_js(move |event: web_sys::Event| {
            let result = event
                .target()
                .and_then(|t| t.dyn_into::<web_sys::IdbRequest>().ok())
                .and_then(|r| r.result().ok())
                .unwrap_or(JsValue::UNDEFINED);
            let _ = resolve.call1(&JsValue::NULL, &result);
        });
        let failed = Closure::once_into_js(move |event: web_sys::Event| {
            let _ = reject.call1(&JsValue::NULL, &event);
        });
        request.set_onsuccess(Some(ok.unchecked_ref()));
        request.set_onerror(Some(failed.unchecked_ref()));
    });
    JsFuture::from(promise).await
}

async fn open_db() -> Result<web_sys::IdbDatabase, LightClientError> {
    let store_error = |e: JsValue| LightClientError::Store(format!("IndexedDB: {e:?}"));
    let window = web_sys::window().ok_or_else(|| LightClientError::Store("no window".into()))?;
    let factory = window
        .indexed_db()
        .map_err(store_error)?
        .ok_or_else(|| LightClientError::Store("IndexedDB is not available".into()))?;
    let open = factory.open_with_u32(DB_NAME, 1).map_err(store_error)?;
    let upgrade = Closure::once_into_js(move |event: web_sys::Event| {
        let db = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::IdbOpenDbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|r| r.dyn_into::<web_sys::IdbDatabase>().ok());
        if let Some(db) = db {
            let _ = db.create_object_store(DB_STORE);
        }
    });
    open.set_onupgradeneeded(Some(upgrade.unchecked_ref()));
    let db = idb_request(&open).await.map_err(store_error)?;
    db.dyn_into().map_err(store_error)
}

impl TrustStore for IndexedDbStore {
    async fn load(&self) -> Result<Option<Vec<u8>>, LightClientError> {
        let store_error = |e: JsValue| LightClientError::Store(format!("IndexedDB: {e:?}"));
        let db = open_db().await?;
        let tx = db.transaction_with_str(DB_STORE).map_err(store_error)?;
        let store = tx.object_store(DB_STORE).map_err(store_error)?;
        let request = store.get(&JsValue::from_str(&self.key)).map_err(store_error)?;
        let value = idb_request(&request).await.map_err(store_error)?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        Ok(Some(js_sys::Uint8Array::new(&value).to_vec()))
    }

    async fn save(&self, bytes: &[u8]) -> Result<(), LightClientError> {
        let store_error = |e: JsValue| LightClientError::Store(format!("IndexedDB: {e:?}"));
        let db = open_db().await?;
        let tx = db
            .transaction_with_str_and_mode(DB_STORE, web_sys::IdbTransactionMode::Readwrite)
            .map_err(store_error)?;
        let store = tx.object_store(DB_STORE).map_err(store_error)?;
        let value = js_sys::Uint8Array::from(bytes);
        let request = store
            .put_with_key(&value, &JsValue::from_str(&self.key))
            .map_err(store_error)?;
        idb_request(&request).await.map(|_| ()).map_err(store_error)
    }
}

/// A light client for pages not written in Rust.
#[wasm_bindgen]
#[allow(
    missing_debug_implementations,
    reason = "a JS handle; its state is behind a lock"
)]
pub struct MedledgerLightClient {
    inner: Rc<Mutex<LightClient<RelayConnection>>>,
    store: IndexedDbStore,
    connection: RelayConnection,
}

#[wasm_bindgen]
impl MedledgerLightClient {
    /// Reads the relay's discovery document and genesis from `relay_url` (e.g. the page's own
    /// origin), connects over WebRTC-direct (WebSocket as fallback), resumes any trust stored
    /// in IndexedDB, and verifies the current head.
    pub async fn connect(relay_url: String) -> Result<MedledgerLightClient, JsValue> {
        let base = relay_url.trim_end_matches('/');
        let discovery = fetch_bytes(&format!("{base}/.well-known/medledger.json")).await?;
        let doc: js_sys::Object = js_sys::JSON::parse(&String::from_utf8_lossy(&discovery))?.dyn_into()?;
        let text = |key: &str| {
            Reflect::get(&doc, &JsValue::from_str(key))
                .ok()
                .and_then(|v| v.as_string())
        };
        let genesis_hash = text("genesis_hash").ok_or_else(|| js_error("discovery: no genesis_hash"))?;
        let addrs = Reflect::get(&doc, &JsValue::from_str("multiaddrs"))?;
        let mut multiaddrs: Vec<Multiaddr> = js_sys::Array::from(&addrs)
            .iter()
            .filter_map(|a| a.as_string())
            .filter_map(|a| a.parse().ok())
            .collect();
        // WebRTC-direct first (no TLS certificate needed), WebSocket as fallback.
        multiaddrs.sort_by_key(|a| !a.to_string().contains("/webrtc-direct"));
        let genesis_bytes = fetch_bytes(&format!("{base}/genesis")).await?;
        let genesis: ledger::Genesis = ledger::codec::decode(&genesis_bytes).map_err(js_error)?;
        if genesis.hash().to_hex() != genesis_hash {
            return Err(js_error("the relay's genesis does not match its genesis_hash"));
        }
        let store = IndexedDbStore::new(&genesis.chain_id);
        let connection = RelayConnection::connect(multiaddrs).await.map_err(js_error)?;
        let mut client = LightClient::new(
            TrustRoot::Genesis(Box::new(genesis)),
            TrustOptions::default(),
            vec![connection.clone()],
            system_clock(),
        );
        if let Some(bytes) = store.load().await.map_err(js_error)? {
            // A stale or unreadable snapshot is not fatal: verify from genesis instead.
            if let Err(e) = TrustSnapshot::from_bytes(&bytes).and_then(|s| client.restore(s)) {
                tracing::warn!(error = %e, "stored trust not used");
            }
        }
        Ok(MedledgerLightClient {
            inner: Rc::new(Mutex::new(client)),
            store,
            connection,
        })
    }

    /// Verifies the relay's newest head, stores the trust, and returns the status.
    pub async fn sync(&self) -> Result<JsValue, JsValue> {
        let mut client = self.inner.lock().await;
        client.sync().await.map_err(js_error)?;
        self.store
            .save(&client.snapshot().to_bytes())
            .await
            .map_err(js_error)?;
        Ok(status_object(&client.status()))
    }

    /// The status as of now (no network).
    pub async fn status(&self) -> JsValue {
        status_object(&self.inner.lock().await.status())
    }

    /// Verifies each gossiped head and calls `callback(status)` after each one.
    #[wasm_bindgen(js_name = onHead)]
    pub fn on_head(&self, callback: js_sys::Function) {
        let inner = self.inner.clone();
        let store = self.store.clone();
        let mut heads = self.connection.heads();
        wasm_bindgen_futures::spawn_local(async move {
            while let Some(head) = heads.next().await {
                let mut client = inner.lock().await;
                match client.on_head(head).await {
                    Ok(_) => {
                        let _ = store.save(&client.snapshot().to_bytes()).await;
                        let _ = callback.call1(&JsValue::NULL, &status_object(&client.status()));
                    }
                    Err(LightClientError::Stale { .. }) => {}
                    Err(e) => tracing::warn!(error = %e, "gossiped head refused"),
                }
            }
        });
    }

    /// The account's balance, proven.
    pub async fn balance(&self, address_hex: String) -> Result<JsValue, JsValue> {
        let address = parse_address(&address_hex)?;
        let verified = self
            .inner
            .lock()
            .await
            .balance(&address)
            .await
            .map_err(js_error)?;
        Ok(verified_object(
            &verified,
            JsValue::from_f64(verified.value as f64),
        ))
    }

    /// How many reads of the patient's data the chain recorded (newest first, up to 200), each
    /// as `{ reader, purpose, basis, height }`.
    #[wasm_bindgen(js_name = accessLog)]
    pub async fn access_log(&self, patient_hex: String) -> Result<JsValue, JsValue> {
        let patient = parse_address(&patient_hex)?;
        let verified = self
            .inner
            .lock()
            .await
            .access_log_of(&patient, 200)
            .await
            .map_err(js_error)?;
        let list = js_sys::Array::new();
        for (_, record) in &verified.value {
            let o = Object::new();
            set(&o, "reader", record.reader().to_hex());
            set(&o, "purpose", format!("{:?}", record.purpose()));
            set(&o, "basis", format!("{:?}", record.basis));
            set(&o, "height", record.recorded_at as f64);
            list.push(&o);
        }
        Ok(verified_object(&verified, list.into()))
    }

    /// The raw value under a state key (hex), proven: `value` is hex or null.
    #[wasm_bindgen(js_name = stateValue)]
    pub async fn state_value(&self, key_hex: String) -> Result<JsValue, JsValue> {
        let key = hex::decode(&key_hex).map_err(|e| js_error(format!("state key: {e}")))?;
        let verified = self.inner.lock().await.value(&key).await.map_err(js_error)?;
        let value = opt(verified.value.as_ref().map(hex::encode));
        Ok(verified_object(&verified, value))
    }
}

//! A tiny key-value store on IndexedDB (database `medledger`, store `kv`, schema version 1):
//! the light client's trust snapshot and the user's keys live here between visits.
//! IndexedDB requests are turned into futures by setting a Promise's resolve/reject as the
//! request's success/error handlers.

use crate::error::{AppError, AppResult};
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbOpenDbRequest, IdbRequest, IdbTransactionMode};

const DB_NAME: &str = "medledger";
const DB_VERSION: u32 = 1;
const STORE: &str = "kv";

/// Keys of the values the app stores.
/// The trust snapshot of the chain with this genesis: a dev chain recreated under the same
/// chain id must not resume from the old chain's headers.
pub fn trust_key(genesis_hash: &str) -> String {
    format!("trust-snapshot/{genesis_hash}")
}
pub const KEYS_KEY: &str = "identities";

fn err(context: &str) -> impl Fn(JsValue) -> AppError + '_ {
    move |e| AppError::Store(AppError::js(context, e))
}

async fn wait(request: &IdbRequest) -> AppResult<JsValue> {
    let promise = Promise::new(&mut |resolve, reject| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    });
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    if outcome.is_err() {
        let reason = request
            .error()
            .ok()
            .flatten()
            .map_or_else(|| "request failed".to_string(), |e| e.message());
        return Err(AppError::Store(reason));
    }
    request.result().map_err(err("result"))
}

async fn open() -> AppResult<IdbDatabase> {
    let window = web_sys::window().ok_or_else(|| AppError::Store("no window".into()))?;
    let factory = window
        .indexed_db()
        .map_err(err("indexedDB"))?
        .ok_or_else(|| AppError::Store("this browser has no IndexedDB".into()))?;
    let request: IdbOpenDbRequest = factory.open_with_u32(DB_NAME, DB_VERSION).map_err(err("open"))?;
    // Schema version 1: one object store of byte values under string keys.
    let upgrade = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        let db = event
            .target()
            .and_then(|t| t.dyn_into::<IdbRequest>().ok())
            .and_then(|r| r.result().ok())
            .and_then(|r| r.dyn_into::<IdbDatabase>().ok());
        if let Some(db) = db {
            if !db.object_store_names().contains(STORE) {
                let _ = db.create_object_store(STORE);
            }
        }
    });
    request.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
    let db = wait(&request).await;
    request.set_onupgradeneeded(None);
    drop(upgrade);
    db?.dyn_into()
        .map_err(|_| AppError::Store("open did not return a database".into()))
}

/// The bytes stored under `key`, if any.
pub async fn get(key: &str) -> AppResult<Option<Vec<u8>>> {
    let db = open().await?;
    let tx = db.transaction_with_str(STORE).map_err(err("transaction"))?;
    let store = tx.object_store(STORE).map_err(err("store"))?;
    let request = store.get(&JsValue::from_str(key)).map_err(err("get"))?;
    let value = wait(&request).await?;
    db.close();
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    Ok(Some(Uint8Array::new(&value).to_vec()))
}

pub async fn put(key: &str, bytes: &[u8]) -> AppResult<()> {
    let db = open().await?;
    let tx = db
        .transaction_with_str_and_mode(STORE, IdbTransactionMode::Readwrite)
        .map_err(err("transaction"))?;
    let store = tx.object_store(STORE).map_err(err("store"))?;
    let request = store
        .put_with_key(&Uint8Array::from(bytes), &JsValue::from_str(key))
        .map_err(err("put"))?;
    wait(&request).await?;
    db.close();
    Ok(())
}

//! Verified list reads that remember what they already proved. Chain lists are append-only
//! (ids at fixed indexes), so a refresh proves the list's length and only the new items;
//! records that never change (access records, alerts, break-glass, commitments) are proven
//! once and kept. Records that do change (consents, devices, alert rules) are proven on
//! every read. The caches are bounded.

use crate::api::{self, Proof};
use crate::error::AppResult;
use borsh::BorshDeserialize;
use ledger::crypto::{Address, PublicKey};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::Device;
use ledger::types::RecordId;
use light_client::LightClientError;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

const MAX_CACHED_LISTS: usize = 64;
const MAX_CACHED_RECORDS: usize = 4_096;

/// A list's ids by index.
type Ids = BTreeMap<u64, RecordId>;

thread_local! {
    /// (kind, owner) → index → id.
    static LISTS: RefCell<HashMap<(String, [u8; 32]), Ids>> = RefCell::new(HashMap::new());
    /// State key → value bytes, for records that never change.
    static RECORDS: RefCell<HashMap<Vec<u8>, Vec<u8>>> = RefCell::new(HashMap::new());
}

/// A list's newest `limit` ids, newest first; the proof is the length's (at the head).
pub async fn ids(kind: ListKind, owner: [u8; 32], limit: u64) -> AppResult<(Proof, Vec<RecordId>)> {
    let cache_key = (format!("{kind:?}"), owner);
    let known = LISTS
        .with(|l| l.borrow().get(&cache_key).cloned())
        .unwrap_or_default();
    let (proof, count, map) = api::query(async |c| {
        let len = c.read::<u64>(&keys::list_len(kind, &owner)).await?;
        let count = len.value.unwrap_or(0);
        let mut map = known;
        let first = count.saturating_sub(limit);
        // Keep what other views (with other limits) proved: each view asks for its own window.
        map.retain(|index, _| *index < count);
        let mut proof_bytes = len.proof_bytes;
        for index in first..count {
            if map.contains_key(&index) {
                continue;
            }
            let item = c.read::<RecordId>(&keys::list_item(kind, &owner, index)).await?;
            proof_bytes += item.proof_bytes;
            let id = item.value.ok_or_else(|| LightClientError::CorruptValue {
                key: format!("{kind:?} item {index}"),
            })?;
            map.insert(index, id);
        }
        let proof = Proof {
            height: len.height,
            state_root: len.state_root,
            proof_bytes,
        };
        Ok((proof, count, map))
    })
    .await?;
    let first = count.saturating_sub(limit);
    let ids: Vec<RecordId> = map.range(first..count).rev().map(|(_, id)| *id).collect();
    LISTS.with(|l| {
        let mut l = l.borrow_mut();
        if l.len() >= MAX_CACHED_LISTS {
            l.clear();
        }
        l.insert(cache_key, map);
    });
    Ok((proof, ids))
}

/// The records of a list, each proven (or taken from the cache when `immutable`).
pub async fn records<T: BorshDeserialize>(
    kind: ListKind,
    owner: [u8; 32],
    limit: u64,
    key: fn(&RecordId) -> Vec<u8>,
    immutable: bool,
) -> AppResult<(Proof, Vec<(RecordId, T)>)> {
    let (mut proof, ids) = ids(kind, owner, limit).await?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let state_key = key(&id);
        let cached = if immutable {
            RECORDS.with(|r| r.borrow().get(&state_key).cloned())
        } else {
            None
        };
        let bytes = match cached {
            Some(bytes) => Some(bytes),
            None => {
                let value = api::query(async |c| c.value(&state_key).await).await?;
                proof.proof_bytes += value.proof_bytes;
                if let (true, Some(bytes)) = (immutable, &value.value) {
                    RECORDS.with(|r| {
                        let mut r = r.borrow_mut();
                        if r.len() >= MAX_CACHED_RECORDS {
                            r.clear();
                        }
                        r.insert(state_key.clone(), bytes.clone());
                    });
                }
                value.value
            }
        };
        let Some(bytes) = bytes else { continue };
        let record = ledger::codec::decode::<T>(&bytes).map_err(|_| LightClientError::CorruptValue {
            key: String::from_utf8_lossy(&state_key).into_owned(),
        })?;
        out.push((id, record));
    }
    Ok((proof, out))
}

/// Drops a cached record, so the next read proves it again: a commitment this browser just
/// erased (its `erased_at` is the one change a commitment ever sees).
pub fn forget(state_key: &[u8]) {
    RECORDS.with(|r| r.borrow_mut().remove(state_key));
}

/// The patient's devices (re-proven each time: a device can be revoked).
pub async fn devices(patient: &Address, limit: u64) -> AppResult<(Proof, Vec<(PublicKey, Device)>)> {
    let (proof, list) = records::<Device>(
        ListKind::PatientDevices,
        patient.0,
        limit,
        |id| keys::device(&PublicKey(*id.as_bytes())),
        false,
    )
    .await?;
    Ok((
        proof,
        list.into_iter()
            .map(|(id, d)| (PublicKey(*id.as_bytes()), d))
            .collect(),
    ))
}

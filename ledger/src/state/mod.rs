//! The ledger's state: a key/value map of borsh records (DESIGN §3) authenticated by a
//! Jellyfish Merkle tree (DESIGN §2 state_root).
//!
//! The state machine reads through [`StateRead`] and writes into a [`StateDiff`]; it never
//! touches storage. Whoever owns storage (the node's redb store, [`MemoryState`] in tests
//! and the light client's proofs) applies the diff and computes the root.

pub mod keys;
pub mod records;
mod tree;

pub use tree::{to_value_set, MemoryState, MemoryTreeStore, StateProof, StateProofError, StateTree};

use crate::codec::{decode, encode};
use borsh::{BorshDeserialize, BorshSerialize};
use std::collections::BTreeMap;

/// Read access to the latest state values.
pub trait StateRead {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>>;
}

/// Writes produced by txs: `None` deletes the key. Ordered, so applying it is deterministic.
pub type StateDiff = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

impl StateRead for BTreeMap<Vec<u8>, Vec<u8>> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        BTreeMap::get(self, key).cloned()
    }
}

/// A stored value that does not decode: storage is corrupt, not the tx at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("state value under key {key} does not decode")]
pub struct CorruptState {
    pub key: String,
}

pub(crate) fn printable_key(key: &[u8]) -> String {
    let split = key.iter().position(|b| *b == b'/').map(|i| i + 1).unwrap_or(0);
    let ns_end = key[split..]
        .iter()
        .position(|b| !b.is_ascii_graphic())
        .map(|i| split + i)
        .unwrap_or(key.len());
    format!(
        "{}{}",
        String::from_utf8_lossy(&key[..ns_end]),
        hex::encode(&key[ns_end..])
    )
}

/// Reads `base` with `writes` layered on top; the state machine's working view.
pub struct Overlay<'a> {
    base: &'a dyn StateRead,
    writes: StateDiff,
}

impl std::fmt::Debug for Overlay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Overlay({} writes)", self.writes.len())
    }
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a dyn StateRead) -> Self {
        Overlay {
            base,
            writes: StateDiff::new(),
        }
    }

    pub fn into_diff(self) -> StateDiff {
        self.writes
    }

    pub fn diff(&self) -> &StateDiff {
        &self.writes
    }

    pub fn extend(&mut self, diff: StateDiff) {
        self.writes.extend(diff);
    }

    pub fn read<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, CorruptState> {
        match self.get(key) {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some).map_err(|_| CorruptState {
                key: printable_key(key),
            }),
        }
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        match self.writes.get(key) {
            Some(value) => value.is_some(),
            None => self.base.get(key).is_some(),
        }
    }

    pub fn write<T: BorshSerialize>(&mut self, key: Vec<u8>, value: &T) {
        self.writes.insert(key, Some(encode(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.writes.insert(key, None);
    }

    /// Appends `id` to an owner's list and returns its index.
    pub fn push_to_list(
        &mut self,
        kind: keys::ListKind,
        owner: &[u8; 32],
        id: &crate::types::RecordId,
    ) -> Result<u64, CorruptState> {
        let len_key = keys::list_len(kind, owner);
        let len: u64 = self.read(&len_key)?.unwrap_or(0);
        self.write(keys::list_item(kind, owner, len), id);
        self.write(len_key, &(len + 1));
        Ok(len)
    }
}

impl StateRead for Overlay<'_> {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        match self.writes.get(key) {
            Some(value) => value.clone(),
            None => self.base.get(key),
        }
    }
}

/// Typed reads any [`StateRead`] supports; used by the access check and by query APIs.
pub trait StateReadExt: StateRead {
    fn read<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, CorruptState> {
        match self.get(key) {
            None => Ok(None),
            Some(bytes) => decode(&bytes).map(Some).map_err(|_| CorruptState {
                key: printable_key(key),
            }),
        }
    }

    fn list_len(&self, kind: keys::ListKind, owner: &[u8; 32]) -> Result<u64, CorruptState> {
        Ok(self.read(&keys::list_len(kind, owner))?.unwrap_or(0))
    }

    /// Ids in an owner's list, oldest first.
    fn list(
        &self,
        kind: keys::ListKind,
        owner: &[u8; 32],
    ) -> Result<Vec<crate::types::RecordId>, CorruptState> {
        let len = self.list_len(kind, owner)?;
        let mut out = Vec::with_capacity(len.min(4096) as usize);
        for i in 0..len {
            if let Some(id) = self.read(&keys::list_item(kind, owner, i))? {
                out.push(id);
            }
        }
        Ok(out)
    }
}

impl<S: StateRead + ?Sized> StateReadExt for S {}

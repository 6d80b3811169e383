//! The authenticated state: a Jellyfish Merkle tree (`jmt`, SHA-256) with one version per
//! height. Inclusion and non-inclusion proofs verify with the root alone, so a light client
//! can check "this consent exists" and "no such consent exists" alike.
//!
//! [`MemoryTreeStore`] keeps tree nodes in memory (tests, benches, the demo scenario); the
//! node provides a persistent store implementing the same `jmt` traits.

use super::{StateDiff, StateRead};
use crate::crypto::Hash;
use borsh::{BorshDeserialize, BorshSerialize};
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeWriter};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, Version};
use sha2::Sha256;
use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

/// A state proof for one key at one version: inclusion when the value exists, otherwise
/// non-inclusion.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct StateProof(jmt::proof::SparseMerkleProof<Sha256>);

impl PartialEq for StateProof {
    fn eq(&self, other: &Self) -> bool {
        crate::codec::encode(self) == crate::codec::encode(other)
    }
}

/// Why a state proof did not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateProofError {
    #[error("proof does not show key {key} {claim} under root {root}: {reason}")]
    Mismatch {
        key: String,
        claim: &'static str,
        root: Hash,
        reason: String,
    },
    #[error("state tree storage failed: {0}")]
    Storage(String),
}

impl StateProof {
    /// Checks that under `root`, `key` holds `value` (`Some`) or is absent (`None`).
    pub fn verify(&self, root: &Hash, key: &[u8], value: Option<&[u8]>) -> Result<(), StateProofError> {
        self.0
            .verify(RootHash(root.0), KeyHash::with::<Sha256>(key), value)
            .map_err(|e| StateProofError::Mismatch {
                key: super::printable_key(key),
                claim: if value.is_some() { "present" } else { "absent" },
                root: *root,
                reason: e.to_string(),
            })
    }

    /// Encoded size, for proof summaries shown to users.
    pub fn encoded_len(&self) -> usize {
        crate::codec::encode(self).len()
    }
}

/// Tree nodes and versioned values kept in memory.
#[derive(Debug, Default)]
pub struct MemoryTreeStore {
    nodes: RwLock<HashMap<NodeKey, Node>>,
    values: RwLock<HashMap<KeyHash, BTreeMap<Version, Option<OwnedValue>>>>,
}

impl TreeReader for MemoryTreeStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(self.nodes.read().map_err(poisoned)?.get(node_key).cloned())
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        let values = self.values.read().map_err(poisoned)?;
        Ok(values
            .get(&key_hash)
            .and_then(|versions| versions.range(..=max_version).next_back())
            .and_then(|(_, v)| v.clone()))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used when restoring a tree from a snapshot, which this store never does.
        Ok(None)
    }
}

impl TreeWriter for MemoryTreeStore {
    fn write_node_batch(&self, batch: &NodeBatch) -> anyhow::Result<()> {
        let mut nodes = self.nodes.write().map_err(poisoned)?;
        for (key, node) in batch.nodes() {
            nodes.insert(key.clone(), node.clone());
        }
        let mut values = self.values.write().map_err(poisoned)?;
        for ((version, key_hash), value) in batch.values() {
            values
                .entry(*key_hash)
                .or_default()
                .insert(*version, value.clone());
        }
        Ok(())
    }
}

// jmt's storage traits return `anyhow` results; anyhow stays confined to this seam and is
// turned into `StateProofError::Storage` before it leaves the module.
fn poisoned<T>(_: T) -> anyhow::Error {
    anyhow::Error::msg("state tree lock poisoned")
}

/// Root computation and proofs over any `jmt` store.
pub struct StateTree<'s, S> {
    store: &'s S,
}

impl<S> std::fmt::Debug for StateTree<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateTree")
    }
}

impl<'s, S: TreeReader + TreeWriter> StateTree<'s, S> {
    pub fn new(store: &'s S) -> Self {
        StateTree { store }
    }

    /// Root after applying `diff` at `version`, without writing anything.
    pub fn root_after(&self, diff: &StateDiff, version: Version) -> Result<Hash, StateProofError> {
        // Nothing here prunes, so the stale-node index would be built only to be dropped.
        let tree = JellyfishMerkleTree::<S, Sha256>::new(self.store).without_stale_index();
        let (root, _) = tree.put_value_set(to_value_set(diff), version).map_err(storage)?;
        Ok(Hash(root.0))
    }

    /// Applies `diff` as `version` and returns the new root.
    pub fn commit(&self, diff: &StateDiff, version: Version) -> Result<Hash, StateProofError> {
        let tree = JellyfishMerkleTree::<S, Sha256>::new(self.store).without_stale_index();
        let (root, batch) = tree.put_value_set(to_value_set(diff), version).map_err(storage)?;
        self.store.write_node_batch(&batch.node_batch).map_err(storage)?;
        Ok(Hash(root.0))
    }

    pub fn root(&self, version: Version) -> Result<Hash, StateProofError> {
        let tree = JellyfishMerkleTree::<S, Sha256>::new(self.store);
        tree.get_root_hash(version).map(|r| Hash(r.0)).map_err(storage)
    }

    /// The value of `key` at `version` with its (non-)inclusion proof.
    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateProofError> {
        let tree = JellyfishMerkleTree::<S, Sha256>::new(self.store);
        let (value, proof) = tree
            .get_with_proof(KeyHash::with::<Sha256>(key), version)
            .map_err(storage)?;
        Ok((value, StateProof(proof)))
    }
}

/// The JMT value set of a diff (keys hashed with SHA-256); stores that commit a diff in
/// their own transaction (the node's redb store) use this.
pub fn to_value_set(diff: &StateDiff) -> Vec<(KeyHash, Option<OwnedValue>)> {
    diff.iter()
        .map(|(k, v)| (KeyHash::with::<Sha256>(k), v.clone()))
        .collect()
}

fn storage(e: anyhow::Error) -> StateProofError {
    StateProofError::Storage(e.to_string())
}

/// In-memory authenticated state: the latest values for fast reads plus the versioned tree
/// for roots and proofs. Used by tests, benchmarks and the scenario example.
#[derive(Debug, Default)]
pub struct MemoryState {
    latest: BTreeMap<Vec<u8>, Vec<u8>>,
    tree: MemoryTreeStore,
    version: Option<Version>,
}

impl MemoryState {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `diff` as `version` (the block height; genesis is 0) and returns the root.
    pub fn commit(&mut self, diff: &StateDiff, version: Version) -> Result<Hash, StateProofError> {
        let root = StateTree::new(&self.tree).commit(diff, version)?;
        for (key, value) in diff {
            match value {
                Some(v) => self.latest.insert(key.clone(), v.clone()),
                None => self.latest.remove(key),
            };
        }
        self.version = Some(version);
        Ok(root)
    }

    pub fn version(&self) -> Option<Version> {
        self.version
    }

    pub fn root(&self) -> Result<Hash, StateProofError> {
        StateTree::new(&self.tree).root(self.version.unwrap_or(0))
    }

    pub fn root_after(&self, diff: &StateDiff, version: Version) -> Result<Hash, StateProofError> {
        StateTree::new(&self.tree).root_after(diff, version)
    }

    pub fn get_with_proof(
        &self,
        key: &[u8],
        version: Version,
    ) -> Result<(Option<Vec<u8>>, StateProof), StateProofError> {
        StateTree::new(&self.tree).get_with_proof(key, version)
    }

    /// Every (key, value) of the latest state, in key order (privacy audits, exports).
    pub fn entries(&self) -> impl Iterator<Item = (&Vec<u8>, &Vec<u8>)> {
        self.latest.iter()
    }
}

impl StateRead for MemoryState {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.latest.get(key).cloned()
    }
}

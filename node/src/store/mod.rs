//! The validator node's durable store: one redb database file holding everything a node must
//! not lose across a restart (DESIGN §2).
//!
//! # What it owns
//!
//! - the finalized chain: every block (borsh [`Block`]) with its commit certificate, the
//!   validator set that signs each height, and a tx-hash → height index;
//! - the authenticated state: the Jellyfish Merkle tree (`jmt` 0.12, SHA-256) with one version
//!   per height (genesis is version 0), and a table of the latest values so the state machine
//!   reads a key with one lookup instead of a tree walk (written behind, see below);
//! - proposals built or received but not yet decided, so a restarted proposer re-proposes the
//!   very same block at the same (height, round) instead of equivocating.
//!
//! # Tables
//!
//! | table            | key                               | value                                      |
//! |------------------|-----------------------------------|--------------------------------------------|
//! | `meta`           | `schema_version` / `genesis_hash` / `last_height` / `jmt_buckets_from` | u32 BE / hash / u64 BE / u64 BE |
//! | `blocks`         | height (u64)                      | borsh [`Block`]                            |
//! | `commits`        | height (u64)                      | borsh [`Commit`]                           |
//! | `validators`     | height (u64)                      | borsh [`ValidatorSet`] that signs `height` |
//! | `tx_index`       | SHA-256 of the tx bytes           | height (u64)                               |
//! | `state_latest`   | state key                         | state value (latest committed)             |
//! | `jmt_buckets`    | version (u64 BE) ‖ 3 nibbles ‖ 0  | the version's [`tree_codec`] nodes (leaves with values) under that path prefix ([`buckets`]) |
//! | `jmt_nodes`      | borsh `NodeKey`                   | one node of a version before `jmt_buckets_from` (schema 2–5 files) |
//! | `jmt_values`     | version (u64 BE) ‖ key hash (32)  | value of a leaf of a schema 2–4 file       |
//! | `pending_by_id`  | block id                          | height (u64 BE) ‖ block bytes              |
//! | `pending_at`     | height (u64 BE) ‖ round (u32 BE)  | block id                                   |
//! | `state_diffs`    | height (u64)                      | borsh `StateDiff` of a recent block        |
//!
//! # Latest values and the tx index are written behind
//!
//! Both are keyed by hashes and ids, so a block's few thousand keys land on random pages, and
//! redb (copy-on-write) rewrote most of both B-trees on every commit: ~13 of the ~17 KiB a
//! node wrote per tx. Instead, a commit appends its block's diff to `state_diffs` and keeps
//! the new values in memory, split into [`DEFAULT_FLUSH_ROTATION`] key ranges (by the first
//! byte of a key's id, so a range is one contiguous stretch of every namespace's keys, and of
//! the tx hashes); each commit writes *one* range into `state_latest` and `tx_index`, in key
//! order and in its own transaction, rotating by height. A key waits at most one rotation,
//! its pages are copied once per rotation instead of once per block, and no commit writes
//! more than a range's share (writing everything at once every N blocks did the same bytes
//! but stalled the chain for up to a second at each flush). Once every range has been
//! written since a diff's block, that diff is dropped, so the tables plus the diffs present
//! are always the complete latest state; opening the store rebuilds the in-memory part from
//! them (the tx index from the diffs' blocks). Readers pair a read transaction with the
//! in-memory view of the same height: a commit publishes its view before its transaction
//! becomes visible, and views are persistent maps, so a snapshot never sees a half-applied
//! block.
//!
//! Every JMT *leaf node* is stored with its value ([`tree_codec`]): reading a key at a height
//! walks the tree of that height to the key's leaf, which holds the value (checked against
//! the leaf's value hash). A block writes one entry per changed key; until schema 5 values
//! sat in a table of their own (`jmt_values`, `v ‖ key hash` → value), a second B-tree
//! insert per key and 40 more bytes of key, which the leaves of older files still read. A
//! leaf that `jmt` moves without changing its value (a new key split its place) is a new
//! leaf node without a new value in the batch: its value is copied from the leaf it
//! replaces.
//!
//! Since schema 6 a version's nodes are grouped by the first three nibbles of their paths,
//! one `jmt_buckets` entry per group ([`buckets`]): ~10 nodes per tx were as many B-tree
//! inserts, the largest cost of a commit after hashing. Versions written before a file was
//! upgraded stay in `jmt_nodes`, one entry per node.
//!
//! The internal nodes of the tree's top five levels are also kept in memory at their latest
//! committed version ([`upper_nodes`]): nearly every key a block changes has its path through
//! them, and reading them from the tables was a third of the instructions of the update's
//! node reads.
//!
//! Stale JMT nodes (and the values their leaves carry) are never pruned yet: the file grows
//! with history, and every height stays provable. (`jmt`'s stale-node index is not even
//! built: `without_stale_index`; pruning will need it built and stored.)
//!
//! # Atomicity and durability
//!
//! [`BlockStore::commit_block`] writes a block's *entire* effect — block, commit, both
//! validator sets, the JMT nodes (leaves with their values) of version `height`, the block's
//! state diff (or the flush of the latest values and tx index) and `last_height` — in **one**
//! redb write transaction, and
//! [`BlockStore::init_genesis`] does the same for version 0. redb is copy-on-write: a
//! transaction's pages are written beside the old ones and become the database only when the
//! commit slot in the file header flips to the new root; after a crash, opening the file picks
//! the last commit slot whose checksums verify. We also turn on redb's two-phase commit (data
//! fsynced before the slot flips, then the flip fsynced) because block contents are chosen by
//! outsiders and redb's default single-fsync commit relies on a non-cryptographic checksum
//! against torn writes. So a crash at any point — before, during or after the commit — leaves
//! the file with either all of block `h` or none of it, and `last_height` always agrees with
//! the data because it is written in the same transaction. With the default
//! `Durability::Immediate`, `commit` returns only after the fsyncs, so when `commit_block`
//! returns `Ok` the block survives power loss.
//!
//! The JMT batch for version `h` is computed from a read snapshot taken *after* the write
//! transaction began; redb admits one writer at a time, so that snapshot is exactly the state
//! the write transaction builds on (version `h - 1`). When [`BlockStore::state_root_after`]
//! already computed the batch of the same diff at the same height (it did so on version
//! `h - 1` too, and committed versions never change), the commit writes that batch instead of
//! computing the tree a second time.
//!
//! redb's page cache is capped ([`DEFAULT_CACHE_BYTES`]); its default of 1 GiB would let a
//! validator's memory grow with the file.
//!
//! If redb reports an error *from commit itself*, its changes are atomic but may or may not
//! have become durable, and redb refuses further writes: the caller must treat that as fatal,
//! reopen the store and read [`BlockStore::last_height`] to learn which it was.
//!
//! Readers use MVCC snapshots and never block the writer; each method reads one snapshot.
//! [`BlockStore::state_snapshot`] gives a state view that stays consistent across many reads.

use borsh::BorshDeserialize;
use jmt::storage::{LeafNode, Node, NodeBatch, NodeKey, TreeReader, TreeWriter};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, ValueHash, Version};
use ledger::codec::encode;
use ledger::crypto::sha256;
use ledger::state::{to_value_set, StateDiff, StateProof, StateProofError, StateRead, StateTree};
use ledger::{Block, Commit, Genesis, Hash, Header, ValidatorSet};
use redb::{Database, ReadOnlyTable, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};
use sha2::Sha256;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod buckets;
mod tree_codec;
mod upper_nodes;
use tree_codec::{decode_node, encode_leaf_into, encode_node_into};
use upper_nodes::{UpperNodes, UpperPath};

/// Table names, also used in [`StoreError::Corrupt`].
mod names {
    pub const META: &str = "meta";
    pub const BLOCKS: &str = "blocks";
    pub const COMMITS: &str = "commits";
    pub const VALIDATORS: &str = "validators";
    pub const TX_INDEX: &str = "tx_index";
    pub const STATE_LATEST: &str = "state_latest";
    pub const JMT_NODES: &str = "jmt_nodes";
    pub const JMT_VALUES: &str = "jmt_values";
    pub const JMT_BUCKETS: &str = "jmt_buckets";
    pub const PENDING_BY_ID: &str = "pending_by_id";
    pub const PENDING_AT: &str = "pending_at";
    pub const STATE_DIFFS: &str = "state_diffs";
}

const META: TableDefinition<&str, &[u8]> = TableDefinition::new(names::META);
const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new(names::BLOCKS);
const COMMITS: TableDefinition<u64, &[u8]> = TableDefinition::new(names::COMMITS);
const VALIDATORS: TableDefinition<u64, &[u8]> = TableDefinition::new(names::VALIDATORS);
const TX_INDEX: TableDefinition<&[u8; 32], u64> = TableDefinition::new(names::TX_INDEX);
const STATE_LATEST: TableDefinition<&[u8], &[u8]> = TableDefinition::new(names::STATE_LATEST);
const JMT_NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new(names::JMT_NODES);
const JMT_VALUES: TableDefinition<&[u8; 40], &[u8]> = TableDefinition::new(names::JMT_VALUES);
const JMT_BUCKETS: TableDefinition<&buckets::BucketKey, &[u8]> = TableDefinition::new(names::JMT_BUCKETS);
const PENDING_BY_ID: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new(names::PENDING_BY_ID);
const PENDING_AT: TableDefinition<&[u8; 12], &[u8; 32]> = TableDefinition::new(names::PENDING_AT);
const STATE_DIFFS: TableDefinition<u64, &[u8]> = TableDefinition::new(names::STATE_DIFFS);

const META_SCHEMA: &str = "schema_version";
const META_GENESIS: &str = "genesis_hash";
const META_LAST_HEIGHT: &str = "last_height";
/// The first version whose JMT nodes are in `jmt_buckets` (u64 BE); older ones are in
/// `jmt_nodes` (files from before schema 6).
const META_BUCKETS_FROM: &str = "jmt_buckets_from";

/// Layout version of this file; bump it (and migrate) whenever a table's encoding changes.
/// 2: `jmt_values` keyed by version first, one value per leaf node.
/// 3: `state_latest` and `tx_index` written behind, `state_diffs` (a version 2 file is a
///    version 3 file with no diffs, so it is upgraded in place).
/// 4: internal JMT nodes in [`tree_codec`]'s compact form (borsh nodes still read, so a
///    version 2 or 3 file is upgraded in place; older builds must not read the new nodes).
/// 5: leaves carry their values; `jmt_values` is no longer written (it still serves the
///    leaves of older files, so a version 2–4 file is upgraded in place).
/// 6: JMT nodes grouped in `jmt_buckets` from version `jmt_buckets_from` on (a version 2–5
///    file is upgraded in place: its versions stay in `jmt_nodes`, new ones go to buckets).
const SCHEMA_VERSION: u32 = 6;

/// redb's page cache (its default is 1 GiB, which would dominate a validator's memory).
pub const DEFAULT_CACHE_BYTES: usize = 128 * 1024 * 1024;

/// How many tree updates [`BlockStore::state_root_after`] keeps for the commit (one per
/// proposal checked at the next height: a few rounds' worth).
const MAX_PREPARED_TREES: usize = 8;

type RawTable<K> = ReadOnlyTable<K, &'static [u8]>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// redb failed (I/O, a lock, a full disk, a poisoned transaction...).
    #[error("database: {0}")]
    Db(String),
    /// Bytes on disk do not decode; the file is damaged or was written by other software.
    #[error("corrupt entry in table {table} under key {key}")]
    Corrupt { table: &'static str, key: String },
    #[error("store holds genesis {stored}, but genesis {given} was given")]
    GenesisMismatch { stored: Hash, given: Hash },
    #[error("store has no genesis yet")]
    NotInitialised,
    /// The file was written with another table layout (an older or newer medledger). A
    /// validator's store is rebuilt by deleting it and syncing from peers.
    #[error("store layout version {found}, this build reads version {expected}: delete the store and let the node sync it again")]
    SchemaMismatch { found: String, expected: u32 },
    #[error("expected block height {expected}, got {got}")]
    HeightGap { expected: u64, got: u64 },
    /// The Jellyfish tree failed (a missing node, or an error it reported as text).
    #[error("state tree: {0}")]
    Tree(String),
    /// The genesis document is invalid.
    #[error("invalid genesis: {0}")]
    Genesis(#[from] ledger::genesis::GenesisError),
    /// A height above the last committed one was asked for state it does not have yet.
    #[error("height {height} is not committed (last committed height {last})")]
    NotCommitted { height: u64, last: u64 },
    /// The arguments of a write do not belong together (e.g. a commit for another block);
    /// nothing was written.
    #[error("height {height}: {what}")]
    Inconsistent { height: u64, what: &'static str },
    /// Applying the block's diff gives a different root than its header claims: this node's
    /// execution or state diverged from the chain. Nothing was written.
    #[error("block {height}: header state root {header}, computed {computed}")]
    StateRootMismatch {
        height: u64,
        header: Hash,
        computed: Hash,
    },
}

macro_rules! db_error {
    ($($ty:ty),*) => {$(
        impl From<$ty> for StoreError {
            fn from(e: $ty) -> Self {
                StoreError::Db(e.to_string())
            }
        }
    )*};
}
db_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError
);

fn corrupt(table: &'static str, key: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        table,
        key: key.to_string(),
    }
}

/// Decodes bytes this store wrote. No size limit (a stored block may exceed the wire limit's
/// framing); still strict about trailing bytes.
fn decode_stored<T: BorshDeserialize>(
    bytes: &[u8],
    table: &'static str,
    key: impl std::fmt::Display,
) -> Result<T, StoreError> {
    borsh::from_slice(bytes).map_err(|_| corrupt(table, key))
}

/// Decodes a stored JMT node from `table`; `key` (its `jmt_nodes` key, built only for the
/// error) names it in the error.
fn decode_stored_node(
    bytes: &[u8],
    table: &'static str,
    key: impl FnOnce() -> Vec<u8>,
) -> Result<Node, StoreError> {
    decode_node(bytes).map_err(|e| {
        let key = hex::encode(key());
        tracing::error!(error = %e, table, %key, "undecodable JMT node");
        corrupt(table, key)
    })
}

fn read_u64_be(bytes: &[u8], table: &'static str, key: impl std::fmt::Display) -> Result<u64, StoreError> {
    let array: [u8; 8] = bytes.try_into().map_err(|_| corrupt(table, key))?;
    Ok(u64::from_be_bytes(array))
}

fn jmt_value_key(version: Version, key_hash: &KeyHash) -> [u8; 40] {
    let mut out = [0u8; 40];
    out[..8].copy_from_slice(&version.to_be_bytes());
    out[8..].copy_from_slice(&key_hash.0);
    out
}

/// The `jmt_nodes` key of the node at `version` and path `nibbles` (one nibble per byte):
/// the borsh encoding of `jmt`'s `NodeKey` (version u64 LE, then the `NibblePath`: nibble
/// count u64 LE, packed bytes as a u32 LE length and two nibbles per byte, high first),
/// built here because `jmt` keeps `NodeKey`'s constructors from a path private. A test
/// checks it against `encode(&NodeKey)` for every node of a tree.
fn node_table_key(version: Version, nibbles: &[u8]) -> Vec<u8> {
    let packed = nibbles.len().div_ceil(2);
    let mut out = Vec::with_capacity(8 + 8 + 4 + packed);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&(nibbles.len() as u64).to_le_bytes());
    out.extend_from_slice(&(packed as u32).to_le_bytes());
    for pair in nibbles.chunks(2) {
        out.push((pair[0] << 4) | pair.get(1).copied().unwrap_or(0));
    }
    out
}

/// The nibbles of `key`'s path, one per byte, written into `out` (a path has at most 64).
fn nibbles_of<'a>(key: &NodeKey, out: &'a mut [u8; 64]) -> &'a [u8] {
    let path = key.nibble_path();
    let len = path.num_nibbles().min(64);
    for (i, nibble) in out.iter_mut().enumerate().take(len) {
        *nibble = u8::from(path.get_nibble(i));
    }
    &out[..len]
}

/// Nibble `i` of a key hash (the path `jmt` follows from the root).
fn key_nibble(key_hash: &KeyHash, i: usize) -> u8 {
    let byte = key_hash.0[i / 2];
    if i.is_multiple_of(2) {
        byte >> 4
    } else {
        byte & 0x0f
    }
}

fn pending_at_key(height: u64, round: u32) -> [u8; 12] {
    let mut out = [0u8; 12];
    out[..8].copy_from_slice(&height.to_be_bytes());
    out[8..].copy_from_slice(&round.to_be_bytes());
    out
}

fn read_last_height(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<u64>, StoreError> {
    match meta.get(META_LAST_HEIGHT)? {
        None => Ok(None),
        Some(v) => read_u64_be(v.value(), names::META, META_LAST_HEIGHT).map(Some),
    }
}

fn read_genesis_hash(
    meta: &impl ReadableTable<&'static str, &'static [u8]>,
) -> Result<Option<Hash>, StoreError> {
    match meta.get(META_GENESIS)? {
        None => Ok(None),
        Some(v) => {
            let bytes: [u8; 32] = v
                .value()
                .try_into()
                .map_err(|_| corrupt(names::META, META_GENESIS))?;
            Ok(Some(Hash(bytes)))
        }
    }
}

/// The height prefix of a `pending_by_id` value.
fn pending_height(value: &[u8], block_id: &Hash) -> Result<u64, StoreError> {
    let prefix = value
        .get(..8)
        .ok_or_else(|| corrupt(names::PENDING_BY_ID, block_id))?;
    read_u64_be(prefix, names::PENDING_BY_ID, block_id)
}

/// The block bytes of a pending proposal (after the height prefix).
fn pending_bytes(
    by_id: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    block_id: &Hash,
) -> Result<Option<Vec<u8>>, StoreError> {
    match by_id.get(&block_id.0)? {
        None => Ok(None),
        Some(v) => match v.value().get(8..) {
            Some(bytes) => Ok(Some(bytes.to_vec())),
            None => Err(corrupt(names::PENDING_BY_ID, block_id)),
        },
    }
}

/// The JMT update of `diff` as `version`: its root and the nodes to write. Equal to
/// `put_value_set` (the definition, as in `ledger::state::StateTree`), computed with `jmt`'s
/// batch insertion when it applies (no deletions, not empty), which hashes each touched
/// internal node once per block instead of once per key below it. A test checks both give the
/// same root and the same nodes.
fn tree_update<R: TreeReader>(
    reader: &R,
    diff: &StateDiff,
    version: Version,
) -> anyhow::Result<(Hash, NodeBatch)> {
    // The store never prunes (module docs), so `jmt`'s stale-node index is not built.
    let tree = JellyfishMerkleTree::<_, Sha256>::new(reader).without_stale_index();
    let set = to_value_set(diff);
    if !set.is_empty() && set.iter().all(|(_, v)| v.is_some()) {
        let set = set.into_iter().filter_map(|(k, v)| Some((k, v?))).collect();
        let (roots, batch) = tree.batch_put_value_sets(vec![set], None, version)?;
        let root = roots
            .first()
            .ok_or_else(|| anyhow::anyhow!("jmt returned no root"))?;
        return Ok((Hash(root.0), batch.node_batch));
    }
    let (root, batch) = tree.put_value_set(set, version)?;
    Ok((Hash(root.0), batch.node_batch))
}

/// A write transaction with redb's two-phase commit on (see the module docs).
fn begin_write(db: &Database) -> Result<WriteTransaction, StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_two_phase_commit(true);
    Ok(txn)
}

/// Writes a JMT node batch into `txn`, each leaf with its value (see the module docs).
/// `before` reads the tree the batch builds on: a leaf `jmt` moved keeps the value it had
/// there, found through `leaves_read` (the update read that leaf) or else by a walk.
/// The nodes go to `jmt_buckets` (see [`buckets`]); every version they are of must be at
/// least `before`'s `buckets_from`. Returns the internal nodes of the upper levels as stored,
/// for [`UpperNodes`] once the transaction is committed.
fn write_node_batch(
    txn: &WriteTransaction,
    batch: &NodeBatch,
    before: &TreeSnapshot,
    leaves_read: &LeavesRead,
) -> Result<Vec<(Version, UpperPath, Vec<u8>)>, StoreError> {
    let mut upper = Vec::new();
    // Every node's stored bytes go into one buffer, and the nodes are grouped by sorting one
    // vector: a map of per-bucket vectors of per-node vectors was a few allocations per node.
    let nodes = batch.nodes();
    let mut stored: Vec<u8> = Vec::with_capacity(nodes.len() * 112);
    let mut entries: Vec<(buckets::BucketKey, buckets::PackedPath, Range<usize>)> =
        Vec::with_capacity(nodes.len());
    for (key, node) in nodes {
        if key.version() < before.buckets_from {
            return Err(StoreError::Db(format!(
                "a tree update wrote version {} below the bucketed versions ({}..)",
                key.version(),
                before.buckets_from
            )));
        }
        // `nibbles_of` stops at 64 nibbles (a key hash's); `jmt` never makes a longer path,
        // and one must not be stored cut short.
        if key.nibble_path().num_nibbles() > 64 {
            return Err(corrupt(names::JMT_NODES, hex::encode(encode(key))));
        }
        let mut path = [0u8; 64];
        let nibbles = nibbles_of(key, &mut path);
        let packed = buckets::PackedPath::new(nibbles)
            .ok_or_else(|| corrupt(names::JMT_NODES, hex::encode(encode(key))))?;
        let start = stored.len();
        let Node::Leaf(leaf) = node else {
            encode_node_into(&mut stored, node);
            if let (Node::Internal(_), Some(path)) = (node, UpperPath::of_nibbles(nibbles)) {
                upper.push((key.version(), path, stored[start..].to_vec()));
            }
            entries.push((
                buckets::bucket_key(key.version(), nibbles),
                packed,
                start..stored.len(),
            ));
            continue;
        };
        let (version, key_hash) = (key.version(), leaf.key_hash());
        let moved;
        let value: &[u8] = match batch.values().get(&(version, key_hash)) {
            Some(Some(value)) => value,
            // A leaf for a deleted key would be a bug in `jmt`; refuse to store it.
            Some(None) => return Err(corrupt(names::JMT_NODES, hex::encode(encode(key)))),
            None => {
                moved = match leaves_read.get(&key_hash) {
                    Some(old) => Some(before.leaf_value(old, &key_hash)?),
                    None => version
                        .checked_sub(1)
                        .map(|previous| before.value(previous, key_hash))
                        .transpose()?
                        .flatten(),
                }
                .ok_or_else(|| corrupt(names::JMT_NODES, hex::encode(key_hash.0)))?;
                &moved
            }
        };
        encode_leaf_into(&mut stored, leaf, value);
        entries.push((buckets::bucket_key(version, nibbles), packed, start..stored.len()));
    }
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp_path(&b.1)));
    let mut table = txn.open_table(JMT_BUCKETS)?;
    let mut bucket: Vec<(buckets::PackedPath, &[u8])> = Vec::new();
    for group in entries.chunk_by(|a, b| a.0 == b.0) {
        bucket.clear();
        bucket.extend(
            group
                .iter()
                .map(|(_, path, range)| (*path, &stored[range.clone()])),
        );
        let key = &group[0].0;
        let bytes = buckets::encode_sorted_bucket(&bucket).ok_or_else(|| {
            StoreError::Db(format!("JMT node bucket {} holds a path twice", hex::encode(key)))
        })?;
        table.insert(key, bytes.as_slice())?;
    }
    Ok(upper)
}

/// Writes latest values (`None` = deleted) into the latest-value table in `txn`.
fn write_latest<'a>(
    txn: &WriteTransaction,
    entries: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
) -> Result<(), StoreError> {
    let mut latest = txn.open_table(STATE_LATEST)?;
    for (key, value) in entries {
        match value {
            Some(v) => latest.insert(key, v)?,
            None => latest.remove(key)?,
        };
    }
    Ok(())
}

/// Removes the pending proposals of heights below `height` in `txn`.
fn prune_pending(txn: &WriteTransaction, height: u64) -> Result<(), StoreError> {
    let mut by_id = txn.open_table(PENDING_BY_ID)?;
    let mut stale = Vec::new();
    for entry in by_id.iter()? {
        let (id, value) = entry?;
        let id = *id.value();
        if pending_height(value.value(), &Hash(id))? < height {
            stale.push(id);
        }
    }
    for id in &stale {
        by_id.remove(id)?;
    }
    let mut at = txn.open_table(PENDING_AT)?;
    let end = pending_at_key(height, 0);
    let mut stale = Vec::new();
    for entry in at.range::<&[u8; 12]>(..&end)? {
        stale.push(*entry?.0.value());
    }
    for key in &stale {
        at.remove(key)?;
    }
    Ok(())
}

/// How many committed heights keep their [`Unflushed`] view for readers that began just
/// before a commit.
const UNFLUSHED_VIEWS_KEPT: usize = 4;

/// imbl's persistent hash map with aHash (seeded per process) instead of std's SipHash: the
/// written-behind views hash every state key a block writes or a tx reads.
type PersistentMap<K, V> = imbl::GenericHashMap<K, V, ahash::RandomState, imbl::shared_ptr::DefaultSharedPtr>;

/// Shared bytes: a commit's insert copies the persistent map's nodes on its path, and with
/// `Vec`s that cloned every key and value in them.
type SharedBytes = Arc<[u8]>;

/// How many key ranges commits write `state_latest` and `tx_index` in, one per commit.
pub const DEFAULT_FLUSH_ROTATION: u64 = 16;

/// The range (of `ranges`) a state key is flushed with: by the first byte after its
/// namespace, so each range is one contiguous stretch of each namespace in key order.
fn state_range(key: &[u8], ranges: usize) -> usize {
    let id_start = key.iter().position(|&b| b == b'/').map_or(0, |i| i + 1);
    key.get(id_start).map_or(0, |&b| b as usize * ranges / 256)
}

/// The range a tx hash is flushed with (the hashes are the `tx_index` keys).
fn tx_range(tx_hash: &[u8; 32], ranges: usize) -> usize {
    tx_hash[0] as usize * ranges / 256
}

/// The latest values and tx index entries `state_latest` and `tx_index` do not hold yet, per
/// key range (see the module docs). Cloning is cheap (persistent maps), so every committed
/// height gets its own immutable view.
#[derive(Clone, Debug)]
struct Unflushed {
    /// The committed height this view completes.
    height: u64,
    /// The first height committed with this rotation (this process): a diff may be dropped
    /// only once every range has been written after it *and* after the diffs read back at
    /// open.
    rotation_start: u64,
    /// Per range: state key → latest value (`None` = deleted).
    state: Vec<PersistentMap<SharedBytes, Option<SharedBytes>>>,
    /// Per range: tx hash → height of its first inclusion.
    txs: Vec<PersistentMap<[u8; 32], u64>>,
}

impl Unflushed {
    fn empty(height: u64, ranges: u64) -> Self {
        let ranges = ranges.clamp(1, 256) as usize;
        Unflushed {
            height,
            rotation_start: height + 1,
            state: vec![PersistentMap::default(); ranges],
            txs: vec![PersistentMap::default(); ranges],
        }
    }

    fn get(&self, key: &[u8]) -> Option<&Option<SharedBytes>> {
        self.state[state_range(key, self.state.len())].get(key)
    }

    fn set(&mut self, key: &[u8], value: Option<&[u8]>) {
        let range = state_range(key, self.state.len());
        self.state[range].insert(key.into(), value.map(Into::into));
    }

    fn tx_height(&self, tx_hash: &[u8; 32]) -> Option<u64> {
        self.txs[tx_range(tx_hash, self.txs.len())].get(tx_hash).copied()
    }

    /// Indexes the txs of the block at `height`, given their hashes. `index` is the stored
    /// index, consulted only when reading diffs back at open (their blocks' txs may be in
    /// it already); a commit passes `None`: a tx is valid once (every tx moves its signer's
    /// nonce, and a block with a failing tx is invalid), so a block's tx cannot have been
    /// indexed before, and looking each one up was a B-tree descent per tx. A hash already
    /// indexed here keeps its first height. (Were a tx ever committed twice, a commit would
    /// index it at the later height and a reopen at the earlier one: the two paths agree
    /// only because of that invariant.)
    fn add_block_txs(
        &mut self,
        tx_hashes: &[Hash],
        height: u64,
        index: Option<&ReadOnlyTable<&'static [u8; 32], u64>>,
    ) -> Result<(), StoreError> {
        for Hash(tx_hash) in tx_hashes {
            if self.tx_height(tx_hash).is_some() {
                continue;
            }
            if let Some(index) = index {
                if index.get(tx_hash)?.is_some() {
                    continue;
                }
            }
            let range = tx_range(tx_hash, self.txs.len());
            self.txs[range].insert(*tx_hash, height);
        }
        Ok(())
    }

    fn keys(&self) -> usize {
        self.state.iter().map(PersistentMap::len).sum()
    }
}

/// Writes the range of `view` due at its height into `state_latest` and `tx_index` in `txn`
/// (in key order, so neighbouring keys share page writes), empties that range in `view`, and
/// drops the diffs every range has been written since.
fn flush_range(txn: &WriteTransaction, view: &mut Unflushed) -> Result<(), StoreError> {
    let ranges = view.state.len() as u64;
    let range = (view.height % ranges) as usize;
    let mut state: Vec<_> = std::mem::take(&mut view.state[range]).into_iter().collect();
    state.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    write_latest(txn, state.iter().map(|(k, v)| (&k[..], v.as_deref())))?;
    let mut txs: Vec<_> = std::mem::take(&mut view.txs[range]).into_iter().collect();
    txs.sort_unstable();
    let mut index = txn.open_table(TX_INDEX)?;
    for (hash, height) in &txs {
        index.insert(hash, *height)?;
    }
    // The commits `height - ranges + 1 ..= height` wrote every range once, so the blocks up
    // to `height - ranges + 1` are entirely in the tables, provided those commits were all
    // made with this rotation (after the diffs read back at open).
    let done = (view.height + 1)
        .checked_sub(ranges)
        .filter(|&done| done >= view.rotation_start);
    if let Some(done) = done {
        txn.open_table(STATE_DIFFS)?.retain_in(..=done, |_, _| false)?;
    }
    tracing::trace!(
        height = view.height,
        range,
        keys = state.len(),
        txs = txs.len(),
        "latest state range flushed"
    );
    Ok(())
}

/// The unflushed view of the last committed height, rebuilt from the diffs in
/// `state_diffs` and their blocks; `None` before genesis.
fn load_unflushed(db: &Database, ranges: u64) -> Result<Option<Unflushed>, StoreError> {
    let txn = db.begin_read()?;
    let Some(last) = read_last_height(&txn.open_table(META)?)? else {
        return Ok(None);
    };
    let diffs = txn.open_table(STATE_DIFFS)?;
    let blocks = txn.open_table(BLOCKS)?;
    let index = txn.open_table(TX_INDEX)?;
    let mut view = Unflushed::empty(last, ranges);
    let mut expected = None;
    for entry in diffs.iter()? {
        let (height, diff) = entry?;
        let height = height.value();
        // The diffs are those of the last blocks, without a gap.
        if expected.is_some_and(|e| e != height) || height > last {
            return Err(corrupt(names::STATE_DIFFS, height));
        }
        expected = Some(height + 1);
        let diff: StateDiff = decode_stored(diff.value(), names::STATE_DIFFS, height)?;
        for (key, value) in &diff {
            view.set(key, value.as_deref());
        }
        let Some(block) = blocks.get(height)? else {
            return Err(corrupt(names::BLOCKS, height));
        };
        let block: Block = decode_stored(block.value(), names::BLOCKS, height)?;
        let tx_hashes: Vec<Hash> = block.txs.iter().map(|tx| sha256(tx)).collect();
        view.add_block_txs(&tx_hashes, height, Some(&index))?;
    }
    if expected.is_some_and(|e| e != last + 1) {
        return Err(corrupt(names::STATE_DIFFS, last));
    }
    if expected.is_some() {
        tracing::info!(keys = view.keys(), "unflushed latest state read back");
    }
    Ok(Some(view))
}

/// The tree update of one diff on top of version `height - 1`, computed by
/// [`BlockStore::state_root_after`] and reused by [`BlockStore::commit_block`] for the same
/// height and the same diff, so a block's tree is computed once rather than twice.
///
/// Sound because committed versions never change and a commit at `height` requires
/// `last_height == height - 1`: the same diff on the same base gives the same nodes.
struct PreparedTree {
    height: u64,
    diff: StateDiff,
    root: Hash,
    batch: NodeBatch,
    leaves_read: LeavesRead,
}

/// The leaf nodes a tree update read from the previous tree: key hash → the leaf's node key.
/// A leaf the update moved is one of them, so its value is found without a walk.
type LeavesRead = std::collections::HashMap<KeyHash, NodeKey, ahash::RandomState>;

/// What [`BlockStore::commit_block`] did: the new state root, and where its time went (the
/// node exports both as metrics: under load a commit is a large part of each height).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// The state root after the block (= its header's `state_root`).
    pub root: Hash,
    /// SHA-256 of each of the block's txs, in block order (hashed once per commit, for the
    /// tx index, the mempool and subscribers).
    pub tx_hashes: Vec<Hash>,
    /// Building the write transaction: the tree update unless already prepared, the JMT
    /// nodes, block, commit, sets, diff and the flushed key range.
    pub write: Duration,
    /// redb's commit: writing the transaction's pages and the two fsyncs.
    pub sync: Duration,
}

/// The validator node's store on one redb file. See the module docs.
pub struct BlockStore {
    db: Database,
    path: PathBuf,
    prepared: Mutex<Vec<PreparedTree>>,
    /// The unflushed views of the last few committed heights, oldest first.
    unflushed: Mutex<VecDeque<Arc<Unflushed>>>,
    flush_rotation: u64,
    /// The upper levels of the latest committed tree (see [`upper_nodes`]).
    upper: Arc<UpperNodes>,
    /// The first JMT version stored in `jmt_buckets` (see [`buckets`]).
    buckets_from: Version,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl BlockStore {
    /// Opens the database at `path`, creating the file and every table if missing, with a
    /// [`DEFAULT_CACHE_BYTES`] page cache.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// [`BlockStore::open`] with a page cache of `cache_bytes`.
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = redb::Builder::new().set_cache_size(cache_bytes).create(path)?;
        let txn = begin_write(&db)?;
        {
            let mut meta = txn.open_table(META)?;
            let schema = meta.get(META_SCHEMA)?.map(|v| v.value().to_vec());
            match schema {
                None => {
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())?;
                }
                Some(v) if v.as_slice() == SCHEMA_VERSION.to_be_bytes() => {}
                Some(v)
                    if [2u32, 3, 4, 5]
                        .iter()
                        .any(|old| v.as_slice() == old.to_be_bytes()) =>
                {
                    // Version 2 wrote both tables on every commit: nothing is unflushed. Nodes
                    // in borsh (2, 3), leaves whose values are in `jmt_values` (2–4) and nodes
                    // in `jmt_nodes` (2–5) still read.
                    meta.insert(META_SCHEMA, SCHEMA_VERSION.to_be_bytes().as_slice())?;
                }
                Some(v) => {
                    let found = <[u8; 4]>::try_from(v.as_slice())
                        .map_or_else(|_| hex::encode(&v), |b| u32::from_be_bytes(b).to_string());
                    return Err(StoreError::SchemaMismatch {
                        found,
                        expected: SCHEMA_VERSION,
                    });
                }
            }
            txn.open_table(BLOCKS)?;
            txn.open_table(COMMITS)?;
            txn.open_table(VALIDATORS)?;
            txn.open_table(TX_INDEX)?;
            txn.open_table(STATE_LATEST)?;
            txn.open_table(JMT_NODES)?;
            txn.open_table(JMT_VALUES)?;
            txn.open_table(JMT_BUCKETS)?;
            txn.open_table(PENDING_BY_ID)?;
            txn.open_table(PENDING_AT)?;
            txn.open_table(STATE_DIFFS)?;
        }
        let buckets_from = {
            let mut meta = txn.open_table(META)?;
            let stored = match meta.get(META_BUCKETS_FROM)? {
                None => None,
                Some(v) => Some(read_u64_be(v.value(), names::META, META_BUCKETS_FROM)?),
            };
            match stored {
                Some(from) => from,
                None => {
                    // A new file, or one from before buckets: they start after its last height.
                    let from = read_last_height(&meta)?.map_or(0, |h| h + 1);
                    meta.insert(META_BUCKETS_FROM, from.to_be_bytes().as_slice())?;
                    from
                }
            }
        };
        txn.commit()?;
        let unflushed = load_unflushed(&db, DEFAULT_FLUSH_ROTATION)?;
        Ok(BlockStore {
            db,
            path: path.to_path_buf(),
            prepared: Mutex::new(Vec::new()),
            unflushed: Mutex::new(unflushed.into_iter().map(Arc::new).collect()),
            flush_rotation: DEFAULT_FLUSH_ROTATION,
            upper: Arc::default(),
            buckets_from,
        })
    }

    /// Sets how many key ranges the written-behind tables are flushed in, one per commit
    /// (1 = everything at every commit; clamped to 1..=256). Tests use small ones.
    pub fn with_flush_rotation(mut self, ranges: u64) -> Result<Self, StoreError> {
        self.flush_rotation = ranges.clamp(1, 256);
        let unflushed = load_unflushed(&self.db, self.flush_rotation)?;
        self.unflushed = Mutex::new(unflushed.into_iter().map(Arc::new).collect());
        Ok(self)
    }

    /// The unflushed view completing committed `height`, if still kept.
    fn unflushed_at(&self, height: u64) -> Option<Arc<Unflushed>> {
        let recent = self.unflushed.lock().ok()?;
        recent.iter().rev().find(|u| u.height == height).cloned()
    }

    /// A read transaction and the unflushed view of the same height: the pair a consistent
    /// read of the latest state or the tx index needs. `None` before genesis.
    fn latest_view(&self) -> Result<(redb::ReadTransaction, Option<Arc<Unflushed>>), StoreError> {
        // A commit publishes its view before its transaction becomes visible and the last
        // few views are kept, so the view is found unless several blocks were committed
        // between the two reads below; then read again.
        for _ in 0..64 {
            let txn = self.db.begin_read()?;
            let Some(height) = read_last_height(&txn.open_table(META)?)? else {
                return Ok((txn, None));
            };
            if let Some(view) = self.unflushed_at(height) {
                return Ok((txn, Some(view)));
            }
            std::thread::yield_now();
        }
        Err(StoreError::Db(
            "no unflushed state view for the committed height".into(),
        ))
    }

    /// Writes the genesis state as JMT version 0 ([`Genesis::state_diff`]), the genesis
    /// validator set as the set for heights 1 and 2, and the genesis hash, in one transaction.
    /// Idempotent: calling it again with the same genesis is `Ok`; with a different genesis it
    /// is [`StoreError::GenesisMismatch`]. Returns the genesis state root.
    pub fn init_genesis(&self, genesis: &Genesis) -> Result<Hash, StoreError> {
        let given = genesis.hash();
        let txn = begin_write(&self.db)?;
        {
            let meta = txn.open_table(META)?;
            match read_genesis_hash(&meta)? {
                Some(stored) if stored == given => {
                    drop(meta);
                    txn.abort()?;
                    return self.state_root(0);
                }
                Some(stored) => return Err(StoreError::GenesisMismatch { stored, given }),
                None => {
                    if read_last_height(&meta)?.is_some() {
                        // Blocks without a genesis: not a file this store wrote.
                        return Err(corrupt(names::META, META_GENESIS));
                    }
                }
            }
        }
        let diff = genesis.state_diff()?;
        let set = genesis.validator_set()?;
        // Version 0 builds on nothing; the snapshot only confirms the tree is empty.
        let snapshot = TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?;
        let (root, batch) = JellyfishMerkleTree::<_, Sha256>::new(&snapshot)
            .without_stale_index()
            .put_value_set(to_value_set(&diff), 0)
            .map_err(|e| snapshot.error(e))?;
        let upper = write_node_batch(&txn, &batch.node_batch, &snapshot, &snapshot.leaves_read.take())?;
        write_latest(&txn, diff.iter().map(|(k, v)| (k.as_slice(), v.as_deref())))?;
        {
            let mut validators = txn.open_table(VALIDATORS)?;
            let set_bytes = encode(&set);
            validators.insert(1, set_bytes.as_slice())?;
            validators.insert(2, set_bytes.as_slice())?;
            let mut meta = txn.open_table(META)?;
            meta.insert(META_GENESIS, given.0.as_slice())?;
            meta.insert(META_LAST_HEIGHT, 0u64.to_be_bytes().as_slice())?;
        }
        txn.commit()?;
        self.upper.offer_committed(&upper);
        if let Ok(mut recent) = self.unflushed.lock() {
            recent.clear();
            recent.push_back(Arc::new(Unflushed::empty(0, self.flush_rotation)));
        }
        tracing::info!(genesis = %given, root = %Hash(root.0), "genesis written");
        Ok(Hash(root.0))
    }

    pub fn genesis_hash(&self) -> Result<Option<Hash>, StoreError> {
        let txn = self.db.begin_read()?;
        read_genesis_hash(&txn.open_table(META)?)
    }

    /// Highest committed block height; `Some(0)` right after [`Self::init_genesis`], `None`
    /// before.
    pub fn last_height(&self) -> Result<Option<u64>, StoreError> {
        let txn = self.db.begin_read()?;
        read_last_height(&txn.open_table(META)?)
    }

    /// Fails unless `height` is committed (0 = genesis).
    fn require_committed(&self, height: u64) -> Result<(), StoreError> {
        let last = self.last_height()?.ok_or(StoreError::NotInitialised)?;
        if height > last {
            return Err(StoreError::NotCommitted { height, last });
        }
        Ok(())
    }

    /// The state root at a committed height (0 = genesis).
    pub fn state_root(&self, height: u64) -> Result<Hash, StoreError> {
        self.require_committed(height)?;
        let snapshot = TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?;
        StateTree::new(&snapshot)
            .root(height)
            .map_err(|e| snapshot.proof_error(e))
    }

    /// The root the state would have after applying `diff` as version `height`, writing
    /// nothing. `height` must be `last_height + 1`: the proposer uses this to fill
    /// `header.state_root`, every validator to check it.
    pub fn state_root_after(&self, diff: &StateDiff, height: u64) -> Result<Hash, StoreError> {
        let last = self.last_height()?.ok_or(StoreError::NotInitialised)?;
        if height != last + 1 {
            return Err(StoreError::HeightGap {
                expected: last + 1,
                got: height,
            });
        }
        // `StateTree::root_after`'s root, keeping the nodes for the commit.
        let snapshot = TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?;
        let (root, batch) = tree_update(&snapshot, diff, height).map_err(|e| snapshot.error(e))?;
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.retain(|p| p.height >= height);
            if prepared.len() >= MAX_PREPARED_TREES {
                prepared.remove(0);
            }
            prepared.push(PreparedTree {
                height,
                diff: diff.clone(),
                root,
                batch,
                leaves_read: snapshot.leaves_read.take(),
            });
        }
        Ok(root)
    }

    /// The tree update [`Self::state_root_after`] computed for exactly `diff` at `height`.
    fn take_prepared(&self, height: u64, diff: &StateDiff) -> Option<(Hash, NodeBatch, LeavesRead)> {
        let mut prepared = self.prepared.lock().ok()?;
        let i = prepared
            .iter()
            .position(|p| p.height == height && p.diff == *diff)?;
        let p = prepared.swap_remove(i);
        Some((p.root, p.batch, p.leaves_read))
    }

    /// Commits a finalized block in ONE redb write transaction, durable when this returns:
    /// the block under its height, its commit, `validators` (the set that signed it) under
    /// `height` and `next_validators` under `height + 1` (the set for `height + 2` arrives with
    /// the next block), the JMT nodes and values of `diff` as version `height`, `diff` itself
    /// in `state_diffs`, the latest values and tx index entries of the key range due at
    /// `height` (see the module docs) and `last_height`; the pending proposals of `height`
    /// and below are removed in the same transaction.
    ///
    /// Refuses, writing nothing: [`StoreError::HeightGap`] unless `height == last_height + 1`;
    /// [`StoreError::Inconsistent`] if the commit is not for this header or the sets do not
    /// hash to the header's `validators_hash` / `next_validators_hash`;
    /// [`StoreError::StateRootMismatch`] if `diff` does not lead to `header.state_root` (this
    /// node diverged: it must halt rather than store a state the chain did not agree on).
    /// Signatures are the caller's business. Returns the new state root (= header.state_root)
    /// and the commit's timings.
    pub fn commit_block(
        &self,
        block: &Block,
        commit: &Commit,
        validators: &ValidatorSet,
        next_validators: &ValidatorSet,
        diff: &StateDiff,
    ) -> Result<Committed, StoreError> {
        let header = &block.header;
        let height = header.height;
        let inconsistent = |what| Err(StoreError::Inconsistent { height, what });
        if commit.height != height {
            return inconsistent("commit height differs from block height");
        }
        if commit.block_id != header.id() {
            return inconsistent("commit is for another block");
        }
        if validators.hash() != header.validators_hash {
            return inconsistent("validator set does not match header.validators_hash");
        }
        if next_validators.hash() != header.next_validators_hash {
            return inconsistent("next validator set does not match header.next_validators_hash");
        }

        let started = Instant::now();
        // Taking the write lock first makes the snapshot below the transaction's own base.
        let txn = begin_write(&self.db)?;
        let last = read_last_height(&txn.open_table(META)?)?.ok_or(StoreError::NotInitialised)?;
        if height != last + 1 {
            return Err(StoreError::HeightGap {
                expected: last + 1,
                got: height,
            });
        }
        let before = TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?;
        let (root, node_batch, leaves_read) = match self.take_prepared(height, diff) {
            Some(prepared) => prepared,
            None => {
                let (root, batch) = tree_update(&before, diff, height).map_err(|e| before.error(e))?;
                (root, batch, before.leaves_read.take())
            }
        };
        if root != header.state_root {
            // Dropping `txn` aborts it.
            return Err(StoreError::StateRootMismatch {
                height,
                header: header.state_root,
                computed: root,
            });
        }

        let upper = write_node_batch(&txn, &node_batch, &before, &leaves_read)?;
        let base = self.unflushed_at(last).ok_or(StoreError::Db(format!(
            "no unflushed state view for the last committed height {last}"
        )))?;
        let tx_hashes: Vec<Hash> = block.txs.iter().map(|tx| sha256(tx)).collect();
        let mut next = Unflushed::clone(&base);
        next.height = height;
        for (key, value) in diff {
            next.set(key, value.as_deref());
        }
        {
            txn.open_table(BLOCKS)?.insert(height, encode(block).as_slice())?;
            txn.open_table(COMMITS)?
                .insert(height, encode(commit).as_slice())?;
            let mut sets = txn.open_table(VALIDATORS)?;
            sets.insert(height, encode(validators).as_slice())?;
            sets.insert(height + 1, encode(next_validators).as_slice())?;
            next.add_block_txs(&tx_hashes, height, None)?;
            txn.open_table(META)?
                .insert(META_LAST_HEIGHT, height.to_be_bytes().as_slice())?;
        }
        txn.open_table(STATE_DIFFS)?
            .insert(height, encode(diff).as_slice())?;
        flush_range(&txn, &mut next)?;
        // The proposals of this height and below are no longer needed for a restart.
        prune_pending(&txn, height + 1)?;
        // Published before the transaction becomes visible, so a reader that sees `height`
        // finds its view (see `latest_view`).
        let next = Arc::new(next);
        if let Ok(mut recent) = self.unflushed.lock() {
            recent.push_back(next.clone());
            while recent.len() > UNFLUSHED_VIEWS_KEPT {
                recent.pop_front();
            }
        }
        let written = Instant::now();
        if let Err(e) = txn.commit() {
            if let Ok(mut recent) = self.unflushed.lock() {
                recent.retain(|u| !Arc::ptr_eq(u, &next));
            }
            return Err(e.into());
        }
        let synced = Instant::now();
        self.upper.offer_committed(&upper);
        if let Ok(mut prepared) = self.prepared.lock() {
            prepared.retain(|p| p.height > height);
        }
        tracing::debug!(height, root = %root, txs = block.txs.len(), "block committed");
        Ok(Committed {
            root,
            tx_hashes,
            write: written - started,
            sync: synced - written,
        })
    }

    /// Replaces the stored commit of `height` if `commit` carries more signatures (Malachite's
    /// `Finalized` certificate can hold more than the `Decided` one). Returns whether it
    /// replaced; `Ok(false)` when `height` is not committed. The caller verifies the
    /// signatures; a commit for another block is [`StoreError::Inconsistent`].
    pub fn upgrade_commit(&self, height: u64, commit: &Commit) -> Result<bool, StoreError> {
        if commit.height != height {
            return Err(StoreError::Inconsistent {
                height,
                what: "commit height differs from the height to upgrade",
            });
        }
        let txn = begin_write(&self.db)?;
        let replaced = {
            let mut commits = txn.open_table(COMMITS)?;
            let stored: Option<Commit> = match commits.get(height)? {
                None => None,
                Some(v) => Some(decode_stored(v.value(), names::COMMITS, height)?),
            };
            match stored {
                None => false,
                Some(stored) if stored.block_id != commit.block_id => {
                    return Err(StoreError::Inconsistent {
                        height,
                        what: "commit is for another block than the stored one",
                    });
                }
                Some(stored) if commit.signatures.len() > stored.signatures.len() => {
                    commits.insert(height, encode(commit).as_slice())?;
                    true
                }
                Some(_) => false,
            }
        };
        if replaced {
            txn.commit()?;
        } else {
            txn.abort()?;
        }
        Ok(replaced)
    }

    fn get_by_height(
        &self,
        table: TableDefinition<'static, u64, &'static [u8]>,
        height: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(table)?;
        Ok(table.get(height)?.map(|v| v.value().to_vec()))
    }

    pub fn block(&self, height: u64) -> Result<Option<Block>, StoreError> {
        self.block_bytes(height)?
            .map(|bytes| decode_stored(&bytes, names::BLOCKS, height))
            .transpose()
    }

    /// The block's canonical (borsh) bytes, as stored.
    pub fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StoreError> {
        self.get_by_height(BLOCKS, height)
    }

    /// The header of block `height`, decoded from the front of the stored block without
    /// decoding its txs (borsh lays a block out as header ‖ txs).
    pub fn header(&self, height: u64) -> Result<Option<Header>, StoreError> {
        let txn = self.db.begin_read()?;
        let blocks = txn.open_table(BLOCKS)?;
        let Some(v) = blocks.get(height)? else {
            return Ok(None);
        };
        let mut bytes = v.value();
        Header::deserialize(&mut bytes)
            .map(Some)
            .map_err(|_| corrupt(names::BLOCKS, height))
    }

    pub fn commit(&self, height: u64) -> Result<Option<Commit>, StoreError> {
        self.get_by_height(COMMITS, height)?
            .map(|bytes| decode_stored(&bytes, names::COMMITS, height))
            .transpose()
    }

    /// The set that signs block `height` (known for `height <= last_height + 1`).
    pub fn validator_set(&self, height: u64) -> Result<Option<ValidatorSet>, StoreError> {
        let Some(bytes) = self.get_by_height(VALIDATORS, height)? else {
            return Ok(None);
        };
        let set: ValidatorSet = decode_stored(&bytes, names::VALIDATORS, height)?;
        // Decoding bypasses `ValidatorSet::new`'s checks.
        set.validate().map_err(|_| corrupt(names::VALIDATORS, height))?;
        Ok(Some(set))
    }

    /// The height of the block that included the tx with this hash (SHA-256 of its bytes).
    pub fn tx_height(&self, tx_hash: &Hash) -> Result<Option<u64>, StoreError> {
        let (txn, unflushed) = self.latest_view()?;
        if let Some(height) = unflushed.as_ref().and_then(|u| u.tx_height(&tx_hash.0)) {
            return Ok(Some(height));
        }
        let index = txn.open_table(TX_INDEX)?;
        Ok(index.get(&tx_hash.0)?.map(|v| v.value()))
    }

    /// The value of `key` at committed `height` with its inclusion (value present) or
    /// non-inclusion (absent) proof against [`Self::state_root`]`(height)`.
    ///
    /// Caveat: `jmt` 0.12 `unwrap`s some sibling-node reads while building a proof, so an
    /// unreadable or corrupt sibling node panics inside `jmt` instead of returning
    /// [`StoreError::Corrupt`] (a corrupt root or path node is still reported as `Corrupt`).
    pub fn get_with_proof(
        &self,
        key: &[u8],
        height: u64,
    ) -> Result<(Option<Vec<u8>>, StateProof), StoreError> {
        self.require_committed(height)?;
        let snapshot = TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?;
        StateTree::new(&snapshot)
            .get_with_proof(key, height)
            .map_err(|e| snapshot.proof_error(e))
    }

    /// Records a proposal this node built or received and has not seen decided yet, so that
    /// after a restart it re-proposes the same block at the same (height, round). The first
    /// block recorded at a (height, round) stays the answer of [`Self::pending_proposal_at`]:
    /// a later, different one is kept by id only (and logged), never swapped in.
    pub fn put_pending_proposal(
        &self,
        height: u64,
        round: u32,
        block_id: &Hash,
        block_bytes: &[u8],
    ) -> Result<(), StoreError> {
        let txn = begin_write(&self.db)?;
        {
            let mut by_id = txn.open_table(PENDING_BY_ID)?;
            // A block id binds its height, so one id never really appears at two heights; if
            // it did, keep the highest so pruning never strands a `pending_at` entry.
            let stored_height = match by_id.get(&block_id.0)? {
                None => None,
                Some(v) => Some(pending_height(v.value(), block_id)?),
            };
            let keep_height = stored_height.map_or(height, |h| h.max(height));
            let mut value = Vec::with_capacity(8 + block_bytes.len());
            value.extend_from_slice(&keep_height.to_be_bytes());
            value.extend_from_slice(block_bytes);
            by_id.insert(&block_id.0, value.as_slice())?;
            let mut at = txn.open_table(PENDING_AT)?;
            let key = pending_at_key(height, round);
            let existing = at.get(&key)?.map(|v| *v.value());
            match existing {
                None => {
                    at.insert(&key, &block_id.0)?;
                }
                Some(id) if id == block_id.0 => {}
                Some(id) => tracing::warn!(
                    height,
                    round,
                    kept = %Hash(id),
                    ignored = %block_id,
                    "second proposal at the same height and round"
                ),
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// The bytes of a pending proposal by block id.
    pub fn pending_proposal(&self, block_id: &Hash) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        pending_bytes(&txn.open_table(PENDING_BY_ID)?, block_id)
    }

    /// What this node proposed or saw first at (`height`, `round`).
    pub fn pending_proposal_at(&self, height: u64, round: u32) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let id = match txn.open_table(PENDING_AT)?.get(&pending_at_key(height, round))? {
            None => return Ok(None),
            Some(v) => Hash(*v.value()),
        };
        match pending_bytes(&txn.open_table(PENDING_BY_ID)?, &id)? {
            Some(bytes) => Ok(Some(bytes)),
            // Both tables are written and pruned together, in one transaction.
            None => Err(corrupt(names::PENDING_AT, format!("{height}/{round}"))),
        }
    }

    /// Size of the database file in bytes (benchmarks); 0 if it cannot be read.
    pub fn disk_bytes(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// A read-only view of the latest committed state that stays consistent across many reads
    /// (blocks committed meanwhile are not seen), with the height it reflects.
    pub fn state_snapshot(&self) -> Result<StateSnapshot, StoreError> {
        let (txn, unflushed) = self.latest_view()?;
        Ok(StateSnapshot {
            latest: txn.open_table(STATE_LATEST)?,
            height: unflushed.as_ref().map(|u| u.height),
            unflushed,
        })
    }
}

/// The latest committed values as the state machine reads them.
///
/// [`StateRead`] cannot report errors: a failed read is logged and reads as absent. That cannot
/// corrupt the chain, because every diff computed from such a read must still reproduce the
/// header's state root ([`BlockStore::commit_block`] refuses otherwise, and validators check
/// proposals with [`BlockStore::state_root_after`]). Use [`StateSnapshot::try_get`] to see
/// errors.
impl StateRead for BlockStore {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let read = || self.state_snapshot()?.try_get(key);
        read().unwrap_or_else(|e| {
            tracing::error!(error = %e, "state read failed; treated as absent");
            None
        })
    }
}

/// A consistent read view of the latest state: one redb read transaction and the values
/// committed after its `state_latest` was last brought up to date.
#[derive(Debug)]
pub struct StateSnapshot {
    latest: RawTable<&'static [u8]>,
    unflushed: Option<Arc<Unflushed>>,
    height: Option<u64>,
}

impl StateSnapshot {
    /// The committed height this view reflects (`None` before genesis).
    pub fn height(&self) -> Option<u64> {
        self.height
    }

    pub fn try_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.unflushed.as_ref().and_then(|u| u.get(key)) {
            return Ok(value.as_deref().map(<[u8]>::to_vec));
        }
        Ok(self.latest.get(key)?.map(|v| v.value().to_vec()))
    }
}

impl StateRead for StateSnapshot {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.try_get(key).unwrap_or_else(|e| {
            tracing::error!(error = %e, "state read failed; treated as absent");
            None
        })
    }
}

/// The JMT tables of one read transaction: every node and value a tree operation reads
/// comes from the same snapshot, and from one transaction instead of one per node.
///
/// It remembers the first typed [`StoreError`] it hands to `jmt` (which only passes on
/// `anyhow` text), so callers get `Corrupt` back rather than a string.
struct TreeSnapshot {
    nodes: RawTable<&'static [u8]>,
    values: RawTable<&'static [u8; 40]>,
    buckets: RawTable<&'static buckets::BucketKey>,
    /// Versions from here on are in `buckets`, older ones in `nodes`.
    buckets_from: Version,
    /// Nodes of committed versions only, like the tables; looked up by exact version, so
    /// what this snapshot reads is the same with or without them.
    upper: Arc<UpperNodes>,
    first_error: RefCell<Option<StoreError>>,
    leaves_read: RefCell<LeavesRead>,
}

impl TreeSnapshot {
    fn open(db: &Database, upper: &Arc<UpperNodes>, buckets_from: Version) -> Result<Self, StoreError> {
        let txn = db.begin_read()?;
        // The tables keep the transaction alive after `txn` is dropped.
        Ok(TreeSnapshot {
            nodes: txn.open_table(JMT_NODES)?,
            values: txn.open_table(JMT_VALUES)?,
            buckets: txn.open_table(JMT_BUCKETS)?,
            buckets_from,
            upper: upper.clone(),
            first_error: RefCell::new(None),
            leaves_read: RefCell::new(LeavesRead::default()),
        })
    }

    /// The stored bytes of the node at `version` and path `nibbles` (one per byte), from
    /// wherever that version keeps it.
    fn stored(&self, version: Version, nibbles: &[u8]) -> Result<Option<StoredNode<'_>>, StoreError> {
        let upper = UpperPath::of_nibbles(nibbles);
        if let Some(bytes) = upper.and_then(|path| self.upper.get(version, path)) {
            return Ok(Some(StoredNode::Cached(bytes)));
        }
        let stored = if version >= self.buckets_from {
            let key = buckets::bucket_key(version, nibbles);
            let Some(bucket) = self.buckets.get(&key)? else {
                return Ok(None);
            };
            match buckets::find_node(bucket.value(), nibbles) {
                Ok(Some(range)) => StoredNode::InBucket(bucket, range),
                Ok(None) => return Ok(None),
                Err(buckets::MalformedBucket) => return Err(corrupt(names::JMT_BUCKETS, hex::encode(key))),
            }
        } else {
            match self.nodes.get(node_table_key(version, nibbles).as_slice())? {
                Some(entry) => StoredNode::Entry(entry),
                None => return Ok(None),
            }
        };
        if let Some(path) = upper {
            if tree_codec::is_internal(stored.bytes()) {
                self.upper.offer(version, path, stored.bytes());
            }
        }
        Ok(Some(stored))
    }

    /// The table an entry of `version` is in, for errors.
    fn table_of(&self, version: Version) -> &'static str {
        if version >= self.buckets_from {
            names::JMT_BUCKETS
        } else {
            names::JMT_NODES
        }
    }

    fn node(&self, node_key: &NodeKey) -> Result<Option<Node>, StoreError> {
        let mut path = [0u8; 64];
        let nibbles = nibbles_of(node_key, &mut path);
        let version = node_key.version();
        let Some(stored) = self.stored(version, nibbles)? else {
            return Ok(None);
        };
        let node = decode_stored_node(stored.bytes(), self.table_of(version), || encode(node_key))?;
        if let Node::Leaf(leaf) = &node {
            self.leaves_read
                .borrow_mut()
                .insert(leaf.key_hash(), node_key.clone());
        }
        Ok(Some(node))
    }

    /// The value of `key_hash` in the tree of version `max_version`: the value of its leaf,
    /// found by walking from that tree's root along the key's nibbles; `None` if the key has
    /// no leaf there.
    fn value(&self, max_version: Version, key_hash: KeyHash) -> Result<Option<OwnedValue>, StoreError> {
        let mut path: Vec<u8> = Vec::with_capacity(8);
        let mut node_version = max_version;
        // 64 nibbles in a 32-byte key hash, so at most 65 nodes on a path.
        for depth in 0..=64 {
            let raw = || node_table_key(node_version, &path);
            let table = self.table_of(node_version);
            let stored = match self.stored(node_version, &path)? {
                Some(stored) => stored,
                // No tree at this version (nothing committed yet).
                None if depth == 0 => return Ok(None),
                None => return Err(corrupt(table, hex::encode(raw()))),
            };
            let stored = stored.bytes();
            match decode_stored_node(stored, table, raw)? {
                Node::Null => return Ok(None),
                Node::Leaf(leaf) if leaf.key_hash() != key_hash => return Ok(None),
                Node::Leaf(leaf) => {
                    return self
                        .stored_leaf_value(&leaf, node_version, stored, &raw())
                        .map(Some)
                }
                Node::Internal(internal) => {
                    let Some(nibble) = (depth < 64).then(|| key_nibble(&key_hash, depth)) else {
                        break;
                    };
                    let child = internal
                        .children_sorted()
                        .find(|(n, _)| u8::from(*n) == nibble)
                        .map(|(_, child)| child.version);
                    let Some(child_version) = child else {
                        return Ok(None);
                    };
                    path.push(nibble);
                    node_version = child_version;
                }
            }
        }
        Err(corrupt(names::JMT_NODES, "path longer than a key hash"))
    }

    /// The value of the leaf of `key_hash` at `node_key`.
    fn leaf_value(&self, node_key: &NodeKey, key_hash: &KeyHash) -> Result<OwnedValue, StoreError> {
        let raw = encode(node_key);
        let version = node_key.version();
        let mut path = [0u8; 64];
        let nibbles = nibbles_of(node_key, &mut path);
        let Some(stored) = self.stored(version, nibbles)? else {
            return Err(corrupt(self.table_of(version), hex::encode(&raw)));
        };
        match decode_stored_node(stored.bytes(), self.table_of(version), || raw.clone())? {
            Node::Leaf(leaf) if leaf.key_hash() == *key_hash => {
                self.stored_leaf_value(&leaf, version, stored.bytes(), &raw)
            }
            _ => Err(corrupt(self.table_of(version), hex::encode(&raw))),
        }
    }

    /// The value of `leaf` (stored as `stored` under `raw_key`, written at `version`): the one
    /// it carries, or for a leaf of an older file the one in `jmt_values`. Checked against the
    /// leaf's value hash, so a damaged file is reported rather than proved from.
    fn stored_leaf_value(
        &self,
        leaf: &LeafNode,
        version: Version,
        stored: &[u8],
        raw_key: &[u8],
    ) -> Result<OwnedValue, StoreError> {
        let key_hash = leaf.key_hash();
        let value = match tree_codec::leaf_value(stored) {
            Some(value) => value.to_vec(),
            None => {
                let key = jmt_value_key(version, &key_hash);
                let Some(value) = self.values.get(&key)? else {
                    return Err(corrupt(names::JMT_VALUES, hex::encode(key)));
                };
                let decoded: Option<OwnedValue> =
                    decode_stored(value.value(), names::JMT_VALUES, hex::encode(key))?;
                decoded.ok_or_else(|| corrupt(names::JMT_VALUES, hex::encode(key)))?
            }
        };
        if LeafNode::new(key_hash, ValueHash::with::<Sha256>(&value)) != *leaf {
            tracing::error!(key = %hex::encode(raw_key), "a JMT leaf's value does not match its hash");
            return Err(corrupt(names::JMT_NODES, hex::encode(raw_key)));
        }
        Ok(value)
    }

    fn record(&self, e: StoreError) -> anyhow::Error {
        let err = anyhow::Error::msg(e.to_string());
        self.first_error.borrow_mut().get_or_insert(e);
        err
    }

    /// The typed error behind a failed `jmt` call, if this snapshot produced it.
    fn error(&self, e: anyhow::Error) -> StoreError {
        self.first_error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| StoreError::Tree(format!("{e:#}")))
    }

    fn proof_error(&self, e: StateProofError) -> StoreError {
        self.first_error
            .borrow_mut()
            .take()
            .unwrap_or_else(|| StoreError::Tree(e.to_string()))
    }
}

/// A node's stored bytes as [`TreeSnapshot::stored`] found them.
enum StoredNode<'a> {
    Cached(Arc<[u8]>),
    /// An entry of `jmt_nodes` (versions before buckets).
    Entry(redb::AccessGuard<'a, &'static [u8]>),
    /// A range of a `jmt_buckets` entry.
    InBucket(redb::AccessGuard<'a, &'static [u8]>, std::ops::Range<usize>),
}

impl StoredNode<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            StoredNode::Cached(bytes) => bytes,
            StoredNode::Entry(entry) => entry.value(),
            // `find_node` checked the range against these very bytes.
            StoredNode::InBucket(bucket, range) => bucket.value().get(range.clone()).unwrap_or_default(),
        }
    }
}

impl TreeReader for TreeSnapshot {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        self.node(node_key).map_err(|e| self.record(e))
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        self.value(max_version, key_hash).map_err(|e| self.record(e))
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used when restoring a tree from a snapshot, which this store never does.
        Ok(None)
    }
}

/// Only so that `ledger::state::StateTree` (whose impl requires `TreeWriter`) can read
/// through a snapshot; its read-only methods never write. Nodes are written only inside
/// `commit_block` / `init_genesis` transactions.
impl TreeWriter for TreeSnapshot {
    fn write_node_batch(&self, _batch: &NodeBatch) -> anyhow::Result<()> {
        Err(anyhow::Error::msg("the store's tree snapshot is read-only"))
    }
}

/// Reads committed tree nodes and values, each call in its own read transaction. The store's
/// own operations read through one snapshot per operation instead.
impl TreeReader for BlockStore {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        Ok(TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?.node(node_key)?)
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(TreeSnapshot::open(&self.db, &self.upper, self.buckets_from)?.value(max_version, key_hash)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only used when restoring a tree from a snapshot, which this store never does.
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::state::keys;
    use ledger::test_utils::{Actor, SignedBlock, TestChain, TEST_CHAIN_ID};
    use ledger::types::Role;
    use ledger::{apply_block, Action, BlockContext, Tx};
    use redb::ReadableTableMetadata;
    use std::collections::BTreeMap;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// A directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let dir = std::env::temp_dir().join(format!(
                "medledger-store-{name}-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn db(&self) -> PathBuf {
            self.0.join("node.redb")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An in-memory chain with registrations and transfers in every block, and each block's txs.
    struct Run {
        chain: TestChain,
        txs: Vec<Vec<Vec<u8>>>,
        /// Two accounts registered per block: `actors[2 * (h - 1)]` and the next at height h.
        actors: Vec<Actor>,
    }

    fn run_chain(blocks: usize) -> Run {
        let mut chain = TestChain::new(4);
        let mut actors: Vec<Actor> = Vec::new();
        let mut all_txs = Vec::new();
        for b in 0..blocks {
            let mut txs: Vec<Tx> = Vec::new();
            for i in 0..2 {
                let mut actor = Actor::from_seed(10 + (2 * b + i) as u64);
                let encryption_key = actor.keys.encryption_key();
                txs.push(actor.tx(Action::RegisterAccount {
                    role: Role::Patient,
                    encryption_key,
                }));
                actors.push(actor);
            }
            let (first, second) = (actors[2 * b].address(), actors[2 * b + 1].address());
            txs.push(chain.treasury.tx(Action::Transfer {
                to: first,
                amount: 1_000 + b as u64,
            }));
            txs.push(chain.treasury.tx(Action::Transfer {
                to: second,
                amount: 500,
            }));
            if b >= 1 {
                // Funded in the previous block.
                txs.push(actors[2 * (b - 1)].tx(Action::Transfer {
                    to: second,
                    amount: 7,
                }));
            }
            let bytes: Vec<Vec<u8>> = txs.iter().map(Tx::to_bytes).collect();
            chain.block_of_bytes(&bytes).expect("test block executes");
            all_txs.push(bytes);
        }
        Run {
            chain,
            txs: all_txs,
            actors,
        }
    }

    /// Executes a finalized block against the store, rebuilds its header from what the store
    /// computes, checks it against the in-memory chain's, and commits it.
    fn replay(store: &BlockStore, signed: &SignedBlock, txs: &[Vec<u8>]) -> Hash {
        let height = signed.header.height;
        let ctx = BlockContext {
            chain_id: TEST_CHAIN_ID.into(),
            height,
            time: signed.header.time,
        };
        let outcome = apply_block(store, &ctx, txs).expect("block applies against the store");
        let root = store.state_root_after(&outcome.diff, height).unwrap();
        let last_block_id = if height == 1 {
            Hash::ZERO
        } else {
            store.header(height - 1).unwrap().unwrap().id()
        };
        let proposer = outcome.validators.proposer(height, 0).address;
        let header = outcome.header(&ctx, last_block_id, root, proposer);
        assert_eq!(header, signed.header, "height {height}");
        let block = Block {
            header,
            txs: txs.to_vec(),
        };
        store
            .commit_block(
                &block,
                &signed.commit,
                &outcome.validators,
                &outcome.next_validators,
                &outcome.diff,
            )
            .unwrap()
            .root
    }

    fn replay_all(store: &BlockStore, run: &Run, upto: usize) {
        for (signed, txs) in run.chain.blocks.iter().zip(&run.txs).take(upto) {
            assert_eq!(replay(store, signed, txs), signed.header.state_root);
        }
    }

    fn diff_of(store: &BlockStore, signed: &SignedBlock, txs: &[Vec<u8>]) -> StateDiff {
        let ctx = BlockContext {
            chain_id: TEST_CHAIN_ID.into(),
            height: signed.header.height,
            time: signed.header.time,
        };
        apply_block(store, &ctx, txs).unwrap().diff
    }

    fn block_of(run: &Run, height: u64) -> Block {
        let i = (height - 1) as usize;
        Block {
            header: run.chain.blocks[i].header.clone(),
            txs: run.txs[i].clone(),
        }
    }

    fn genesis_root(genesis: &Genesis) -> Hash {
        ledger::state::MemoryState::new()
            .commit(&genesis.state_diff().unwrap(), 0)
            .unwrap()
    }

    #[test]
    fn handles_can_be_shared_across_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<BlockStore>();
        send_sync::<StateSnapshot>();
    }

    #[test]
    fn replay_matches_in_memory_chain() {
        let dir = TempDir::new("replay");
        let run = run_chain(20);
        let store = BlockStore::open(&dir.db()).unwrap();
        assert_eq!(store.last_height().unwrap(), None);
        assert_eq!(store.genesis_hash().unwrap(), None);
        let root0 = store.init_genesis(&run.chain.genesis).unwrap();
        assert_eq!(root0, genesis_root(&run.chain.genesis));
        assert_eq!(store.last_height().unwrap(), Some(0));
        assert_eq!(store.state_root(0).unwrap(), root0);

        for (signed, txs) in run.chain.blocks.iter().zip(&run.txs) {
            let h = signed.header.height;
            assert_eq!(replay(&store, signed, txs), signed.header.state_root);
            assert_eq!(store.last_height().unwrap(), Some(h));
            assert_eq!(store.state_root(h).unwrap(), signed.header.state_root);
            assert_eq!(store.header(h).unwrap().as_ref(), Some(&signed.header));
            assert_eq!(store.commit(h).unwrap().as_ref(), Some(&signed.commit));
            assert_eq!(store.validator_set(h).unwrap().as_ref(), Some(&signed.validators));
            assert_eq!(
                store.validator_set(h + 1).unwrap().as_ref(),
                Some(&signed.next_validators)
            );
        }
        assert_eq!(store.last_height().unwrap(), Some(20));

        // The latest values (table and unflushed part) are exactly the in-memory chain's state.
        let snapshot = store.state_snapshot().unwrap();
        assert_eq!(snapshot.height(), Some(20));
        for (key, value) in run.chain.state.entries() {
            assert_eq!(snapshot.try_get(key).unwrap().as_ref(), Some(value));
            assert_eq!(StateRead::get(&store, key).as_ref(), Some(value));
        }
        assert_eq!(latest_entries(&snapshot), chain_state(&run));

        for (i, txs) in run.txs.iter().enumerate() {
            for tx in txs {
                assert_eq!(store.tx_height(&sha256(tx)).unwrap(), Some(i as u64 + 1));
            }
        }
        assert_eq!(store.tx_height(&Hash([7; 32])).unwrap(), None);
        assert!(store.disk_bytes() > 0);
    }

    fn chain_state(run: &Run) -> BTreeMap<Vec<u8>, Vec<u8>> {
        run.chain
            .state
            .entries()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Every entry of a byte-keyed table, copied out of redb's guards.
    fn owned_entries(table: &impl ReadableTable<&'static [u8], &'static [u8]>) -> Vec<(Vec<u8>, Vec<u8>)> {
        table
            .iter()
            .unwrap()
            .map(|entry| {
                let (k, v) = entry.unwrap();
                (k.value().to_vec(), v.value().to_vec())
            })
            .collect()
    }

    /// Rewrites a file's JMT nodes into the layout of schemas 2–5 (one `jmt_nodes` entry per
    /// node, no `jmt_buckets_from`), as an older build left it.
    fn unbucket(txn: &WriteTransaction) {
        let mut buckets = txn.open_table(JMT_BUCKETS).unwrap();
        let mut nodes = txn.open_table(JMT_NODES).unwrap();
        let all: Vec<(buckets::BucketKey, Vec<u8>)> = buckets
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                (*k.value(), v.value().to_vec())
            })
            .collect();
        for (key, bucket) in all {
            let version = u64::from_be_bytes(key[..8].try_into().unwrap());
            for (nibbles, node) in buckets::decode_bucket(&bucket).unwrap() {
                nodes
                    .insert(node_table_key(version, &nibbles).as_slice(), node.as_slice())
                    .unwrap();
            }
            buckets.remove(&key).unwrap();
        }
        txn.open_table(META).unwrap().remove(META_BUCKETS_FROM).unwrap();
    }

    /// Every latest value a snapshot sees: the table with the unflushed part over it.
    fn latest_entries(snapshot: &StateSnapshot) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let mut all: BTreeMap<Vec<u8>, Vec<u8>> = owned_entries(&snapshot.latest).into_iter().collect();
        if let Some(unflushed) = &snapshot.unflushed {
            for (key, value) in unflushed.state.iter().flat_map(|range| range.iter()) {
                match value {
                    Some(v) => all.insert(key.to_vec(), v.to_vec()),
                    None => all.remove(&key[..]),
                };
            }
        }
        all
    }

    /// Whatever the flush cadence, and across a reopen in between (the unflushed part read
    /// back from `state_diffs` and the blocks), the chain replays to the same roots (its
    /// execution reads the latest values), reads give the chain's state and every tx its
    /// height, and a snapshot keeps its height's values while later blocks commit.
    #[test]
    fn latest_state_is_the_same_under_every_flush_rotation_and_across_reopen() {
        let run = run_chain(12);
        let treasury_key = keys::account(&run.chain.treasury.address());
        // (name, ranges, diffs left after 7 blocks, a reopen and 5 more).
        for (name, ranges, diffs_left) in [
            ("every block", 1, 0),
            ("3 ranges", 3, 2),
            ("16 ranges", 16, 12),
            ("256 ranges", 256, 12),
        ] {
            let dir = TempDir::new("flush");
            let open = || {
                BlockStore::open(&dir.db())
                    .unwrap()
                    .with_flush_rotation(ranges)
                    .unwrap()
            };
            {
                let store = open();
                store.init_genesis(&run.chain.genesis).unwrap();
                replay_all(&store, &run, 7);
            }
            let store = open();
            let snapshot_7 = store.state_snapshot().unwrap();
            assert_eq!(snapshot_7.height(), Some(7), "{name}");
            let treasury_at_7 = snapshot_7.try_get(&treasury_key).unwrap();
            assert!(treasury_at_7.is_some());
            for (signed, txs) in run.chain.blocks.iter().zip(&run.txs).skip(7) {
                assert_eq!(replay(&store, signed, txs), signed.header.state_root, "{name}");
            }
            assert_eq!(
                snapshot_7.try_get(&treasury_key).unwrap(),
                treasury_at_7,
                "{name}"
            );
            let snapshot = store.state_snapshot().unwrap();
            assert_ne!(snapshot.try_get(&treasury_key).unwrap(), treasury_at_7, "{name}");
            assert_eq!(latest_entries(&snapshot), chain_state(&run), "{name}");
            for (i, txs) in run.txs.iter().enumerate() {
                for tx in txs {
                    assert_eq!(
                        store.tx_height(&sha256(tx)).unwrap(),
                        Some(i as u64 + 1),
                        "{name}"
                    );
                }
            }
            let diffs = store
                .db
                .begin_read()
                .unwrap()
                .open_table(STATE_DIFFS)
                .unwrap()
                .len()
                .unwrap();
            assert_eq!(diffs, diffs_left, "{name}");
            let unflushed = snapshot.unflushed.as_ref().unwrap();
            if ranges == 1 {
                assert_eq!(unflushed.keys(), 0);
                assert!(unflushed.txs.iter().all(|range| range.is_empty()));
            } else {
                assert!(unflushed.keys() > 0, "{name}");
            }
        }
    }

    /// A version 2 file (both tables written on every commit, no diffs) opens as version 3
    /// with nothing unflushed; the chain goes on from it.
    #[test]
    fn a_version_2_store_is_upgraded_in_place() {
        let dir = TempDir::new("v2");
        let run = run_chain(4);
        {
            let store = BlockStore::open(&dir.db())
                .unwrap()
                .with_flush_rotation(1)
                .unwrap();
            store.init_genesis(&run.chain.genesis).unwrap();
            replay_all(&store, &run, 3);
            let txn = store.db.begin_write().unwrap();
            unbucket(&txn);
            {
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(META_SCHEMA, 2u32.to_be_bytes().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = BlockStore::open(&dir.db()).unwrap();
        let snapshot = store.state_snapshot().unwrap();
        assert_eq!(snapshot.unflushed.as_ref().map(|u| u.keys()), Some(0));
        drop(snapshot);
        assert_eq!(
            replay(&store, &run.chain.blocks[3], &run.txs[3]),
            run.chain.blocks[3].header.state_root
        );
        assert_eq!(
            latest_entries(&store.state_snapshot().unwrap()),
            chain_state(&run)
        );
        let txn = store.db.begin_read().unwrap();
        let schema = txn
            .open_table(META)
            .unwrap()
            .get(META_SCHEMA)
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert_eq!(schema, SCHEMA_VERSION.to_be_bytes());
    }

    /// A version 3 file holds every JMT node in `jmt`'s borsh form and the leaves' values in
    /// `jmt_values`: it opens as the current version, its old heights still prove, and new
    /// blocks build on its nodes (moving its leaves copies their values out of `jmt_values`).
    #[test]
    fn a_version_3_store_with_borsh_nodes_and_separate_values_is_upgraded_in_place() {
        let dir = TempDir::new("v3");
        let run = run_chain(6);
        {
            let store = BlockStore::open(&dir.db()).unwrap();
            store.init_genesis(&run.chain.genesis).unwrap();
            replay_all(&store, &run, 4);
            let txn = store.db.begin_write().unwrap();
            unbucket(&txn);
            {
                let mut nodes = txn.open_table(JMT_NODES).unwrap();
                let mut values = txn.open_table(JMT_VALUES).unwrap();
                let all = owned_entries(&nodes);
                let (mut compact_bytes, mut borsh_bytes) = (0, 0);
                for (key, value) in all {
                    let node = decode_node(&value).unwrap();
                    let borsh = encode(&node);
                    match &node {
                        Node::Leaf(leaf) => {
                            let node_key: NodeKey = borsh::from_slice(&key).unwrap();
                            let carried = tree_codec::leaf_value(&value).unwrap().to_vec();
                            values
                                .insert(
                                    &jmt_value_key(node_key.version(), &leaf.key_hash()),
                                    encode(&Some(carried)).as_slice(),
                                )
                                .unwrap();
                        }
                        Node::Internal(_) => {
                            compact_bytes += value.len();
                            borsh_bytes += borsh.len();
                        }
                        Node::Null => {}
                    }
                    nodes.insert(key.as_slice(), borsh.as_slice()).unwrap();
                }
                assert!(compact_bytes < borsh_bytes, "{compact_bytes} vs {borsh_bytes}");
                let mut meta = txn.open_table(META).unwrap();
                meta.insert(META_SCHEMA, 3u32.to_be_bytes().as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let store = BlockStore::open(&dir.db()).unwrap();
        assert_eq!(
            store.buckets_from, 5,
            "buckets start after the old file's last height"
        );
        let treasury = keys::account(&run.chain.treasury.address());
        for h in 0..=4u64 {
            let root = store.state_root(h).unwrap();
            let (value, proof) = store.get_with_proof(&treasury, h).unwrap();
            assert_eq!(value, run.chain.state.get_with_proof(&treasury, h).unwrap().0);
            proof.verify(&root, &treasury, value.as_deref()).unwrap();
        }
        for i in 4..6 {
            let signed = &run.chain.blocks[i];
            assert_eq!(replay(&store, signed, &run.txs[i]), signed.header.state_root);
        }
        assert_eq!(
            latest_entries(&store.state_snapshot().unwrap()),
            chain_state(&run)
        );
        let txn = store.db.begin_read().unwrap();
        let meta = txn.open_table(META).unwrap();
        let schema = meta.get(META_SCHEMA).unwrap().unwrap().value().to_vec();
        assert_eq!(schema, SCHEMA_VERSION.to_be_bytes());
    }

    #[test]
    fn everything_survives_reopen() {
        let dir = TempDir::new("reopen");
        let run = run_chain(6);
        let treasury_key = keys::account(&run.chain.treasury.address());
        {
            let store = BlockStore::open(&dir.db()).unwrap();
            store.init_genesis(&run.chain.genesis).unwrap();
            replay_all(&store, &run, 5);
        }
        let store = BlockStore::open(&dir.db()).unwrap();
        assert_eq!(store.last_height().unwrap(), Some(5));
        assert_eq!(store.genesis_hash().unwrap(), Some(run.chain.genesis.hash()));
        // Same genesis again: Ok and nothing changes.
        assert_eq!(
            store.init_genesis(&run.chain.genesis).unwrap(),
            genesis_root(&run.chain.genesis)
        );
        assert_eq!(store.last_height().unwrap(), Some(5));
        for h in 1..=5u64 {
            let signed = &run.chain.blocks[h as usize - 1];
            let block = block_of(&run, h);
            assert_eq!(store.block(h).unwrap().as_ref(), Some(&block));
            assert_eq!(store.block_bytes(h).unwrap(), Some(encode(&block)));
            assert_eq!(store.header(h).unwrap().as_ref(), Some(&signed.header));
            assert_eq!(store.commit(h).unwrap().as_ref(), Some(&signed.commit));
            assert_eq!(store.validator_set(h).unwrap().as_ref(), Some(&signed.validators));
            assert_eq!(store.state_root(h).unwrap(), signed.header.state_root);
            let (value, proof) = store.get_with_proof(&treasury_key, h).unwrap();
            assert!(value.is_some());
            proof
                .verify(&signed.header.state_root, &treasury_key, value.as_deref())
                .unwrap();
            for tx in &run.txs[h as usize - 1] {
                assert_eq!(store.tx_height(&sha256(tx)).unwrap(), Some(h));
            }
        }
        // The set for last_height + 1 is known, the one after is not.
        assert_eq!(
            store.validator_set(6).unwrap().as_ref(),
            Some(&run.chain.blocks[4].next_validators)
        );
        assert_eq!(store.validator_set(7).unwrap(), None);
        assert_eq!(store.block(6).unwrap(), None);
        assert_eq!(store.commit(6).unwrap(), None);
        // The chain continues after the restart.
        assert_eq!(
            replay(&store, &run.chain.blocks[5], &run.txs[5]),
            run.chain.blocks[5].header.state_root
        );
        assert_eq!(store.last_height().unwrap(), Some(6));
    }

    #[test]
    fn skipped_or_repeated_heights_are_refused() {
        let dir = TempDir::new("gap");
        let run = run_chain(3);
        let store = BlockStore::open(&dir.db()).unwrap();
        let b1 = &run.chain.blocks[0];
        let b2 = &run.chain.blocks[1];
        let commit = |store: &BlockStore, h: u64, diff: &StateDiff| {
            let signed = &run.chain.blocks[h as usize - 1];
            store.commit_block(
                &block_of(&run, h),
                &signed.commit,
                &signed.validators,
                &signed.next_validators,
                diff,
            )
        };
        assert!(matches!(
            commit(&store, 1, &StateDiff::new()),
            Err(StoreError::NotInitialised)
        ));
        assert!(matches!(store.state_root(0), Err(StoreError::NotInitialised)));
        store.init_genesis(&run.chain.genesis).unwrap();

        let diff1 = diff_of(&store, b1, &run.txs[0]);
        // Block 2 before block 1.
        assert!(matches!(
            commit(&store, 2, &diff1),
            Err(StoreError::HeightGap { expected: 1, got: 2 })
        ));
        assert!(matches!(
            store.state_root_after(&diff1, 2),
            Err(StoreError::HeightGap { expected: 1, got: 2 })
        ));
        assert_eq!(store.last_height().unwrap(), Some(0));
        assert_eq!(store.block(2).unwrap(), None);
        assert_eq!(store.commit(2).unwrap(), None);

        assert_eq!(commit(&store, 1, &diff1).unwrap().root, b1.header.state_root);
        // Block 1 again.
        assert!(matches!(
            commit(&store, 1, &diff1),
            Err(StoreError::HeightGap { expected: 2, got: 1 })
        ));
        assert!(matches!(
            store.state_root(2),
            Err(StoreError::NotCommitted { height: 2, last: 1 })
        ));
        assert!(matches!(
            store.get_with_proof(b"x", 2),
            Err(StoreError::NotCommitted { height: 2, last: 1 })
        ));
        let diff2 = diff_of(&store, b2, &run.txs[1]);
        assert_eq!(commit(&store, 2, &diff2).unwrap().root, b2.header.state_root);
    }

    #[test]
    fn inconsistent_blocks_write_nothing() {
        let dir = TempDir::new("inconsistent");
        let run = run_chain(2);
        let store = BlockStore::open(&dir.db()).unwrap();
        store.init_genesis(&run.chain.genesis).unwrap();
        let signed = &run.chain.blocks[0];
        let block = block_of(&run, 1);
        let diff = diff_of(&store, signed, &run.txs[0]);
        let (vals, next) = (&signed.validators, &signed.next_validators);

        // A diff that does not reproduce header.state_root.
        let mut wrong = diff.clone();
        wrong.insert(b"extra".to_vec(), Some(vec![1]));
        match store.commit_block(&block, &signed.commit, vals, next, &wrong) {
            Err(StoreError::StateRootMismatch {
                height: 1,
                header,
                computed,
            }) => {
                assert_eq!(header, signed.header.state_root);
                assert_ne!(computed, header);
            }
            other => panic!("{other:?}"),
        }
        // A commit for another block.
        let other_commit = &run.chain.blocks[1].commit;
        assert!(matches!(
            store.commit_block(&block, other_commit, vals, next, &diff),
            Err(StoreError::Inconsistent { height: 1, .. })
        ));
        // A validator set the header does not name.
        let other_set = TestChain::new(2).genesis.validator_set().unwrap();
        assert!(matches!(
            store.commit_block(&block, &signed.commit, &other_set, next, &diff),
            Err(StoreError::Inconsistent { height: 1, .. })
        ));
        assert!(matches!(
            store.commit_block(&block, &signed.commit, vals, &other_set, &diff),
            Err(StoreError::Inconsistent { height: 1, .. })
        ));

        assert_eq!(store.last_height().unwrap(), Some(0));
        assert_eq!(store.block(1).unwrap(), None);
        assert_eq!(store.commit(1).unwrap(), None);
        assert_eq!(StateRead::get(&store, b"extra"), None);
        assert!(matches!(
            store.state_root(1),
            Err(StoreError::NotCommitted { .. })
        ));
        // The tree has no version 1 yet: the right block still commits cleanly.
        assert_eq!(
            store
                .commit_block(&block, &signed.commit, vals, next, &diff)
                .unwrap()
                .root,
            signed.header.state_root
        );
    }

    #[test]
    fn a_different_genesis_is_refused() {
        let dir = TempDir::new("genesis");
        let ours = TestChain::new(4).genesis;
        let theirs = TestChain::with_powers(&[10, 20]).genesis;
        {
            let store = BlockStore::open(&dir.db()).unwrap();
            store.init_genesis(&ours).unwrap();
            match store.init_genesis(&theirs) {
                Err(StoreError::GenesisMismatch { stored, given }) => {
                    assert_eq!(stored, ours.hash());
                    assert_eq!(given, theirs.hash());
                }
                other => panic!("{other:?}"),
            }
        }
        let store = BlockStore::open(&dir.db()).unwrap();
        assert!(matches!(
            store.init_genesis(&theirs),
            Err(StoreError::GenesisMismatch { .. })
        ));
        assert_eq!(store.genesis_hash().unwrap(), Some(ours.hash()));
        assert_eq!(store.init_genesis(&ours).unwrap(), genesis_root(&ours));
        assert_eq!(store.state_root(0).unwrap(), genesis_root(&ours));

        // An invalid genesis never reaches the file.
        let dir = TempDir::new("genesis-invalid");
        let store = BlockStore::open(&dir.db()).unwrap();
        let mut bad = ours.clone();
        bad.chain_id = String::new();
        assert!(matches!(store.init_genesis(&bad), Err(StoreError::Genesis(_))));
        assert_eq!(store.genesis_hash().unwrap(), None);
        assert_eq!(store.last_height().unwrap(), None);
    }

    #[test]
    fn old_heights_prove_inclusion_and_absence() {
        let dir = TempDir::new("proofs");
        let run = run_chain(8);
        let store = BlockStore::open(&dir.db()).unwrap();
        store.init_genesis(&run.chain.genesis).unwrap();
        replay_all(&store, &run, 8);

        let roots: Vec<Hash> = (0..=8).map(|h| store.state_root(h).unwrap()).collect();
        // The treasury's balance changes in every block.
        let treasury = keys::account(&run.chain.treasury.address());
        for h in 0..=8u64 {
            let (value, proof) = store.get_with_proof(&treasury, h).unwrap();
            let (expected, expected_proof) = run.chain.state.get_with_proof(&treasury, h).unwrap();
            assert_eq!(value, expected, "height {h}");
            assert_eq!(proof, expected_proof);
            let value = value.expect("treasury exists from genesis");
            proof.verify(&roots[h as usize], &treasury, Some(&value)).unwrap();
            if h < 8 {
                // An old value is not the value under a newer root.
                assert!(proof
                    .verify(&roots[h as usize + 1], &treasury, Some(&value))
                    .is_err());
            }
            assert!(proof.verify(&roots[h as usize], &treasury, None).is_err());
        }

        // An account registered at height 5 is provably absent at height 3, present at 5.
        let late = keys::account(&run.actors[8].address());
        let (now, _) = store.get_with_proof(&late, 8).unwrap();
        let now = now.expect("registered at height 5");
        let (then, proof) = store.get_with_proof(&late, 3).unwrap();
        assert_eq!(then, None);
        proof.verify(&roots[3], &late, None).unwrap();
        assert!(proof.verify(&roots[3], &late, Some(&now)).is_err());
        let (at5, proof) = store.get_with_proof(&late, 5).unwrap();
        let at5 = at5.expect("registered at height 5");
        proof.verify(&roots[5], &late, Some(&at5)).unwrap();

        // A key nobody ever wrote.
        let (none, proof) = store.get_with_proof(b"never/written", 2).unwrap();
        assert_eq!(none, None);
        proof.verify(&roots[2], b"never/written", None).unwrap();

        // jmt's own reader interface on the store agrees with the snapshot it uses.
        let tree = JellyfishMerkleTree::<_, Sha256>::new(&store);
        assert_eq!(Hash(tree.get_root_hash(4).unwrap().0), roots[4]);
        let (value, _) = tree
            .get_with_proof(KeyHash::with::<Sha256>(&treasury), 4)
            .unwrap();
        assert_eq!(value, run.chain.state.get_with_proof(&treasury, 4).unwrap().0);
    }

    #[test]
    fn upgrade_commit_keeps_the_fuller_commit() {
        let dir = TempDir::new("upgrade");
        let run = run_chain(2);
        let store = BlockStore::open(&dir.db()).unwrap();
        store.init_genesis(&run.chain.genesis).unwrap();
        let signed = &run.chain.blocks[0];
        let full = signed.commit.clone();
        assert_eq!(full.signatures.len(), 4);
        let mut partial = full.clone();
        partial.signatures.truncate(3);

        let diff = diff_of(&store, signed, &run.txs[0]);
        store
            .commit_block(
                &block_of(&run, 1),
                &partial,
                &signed.validators,
                &signed.next_validators,
                &diff,
            )
            .unwrap();
        assert_eq!(store.commit(1).unwrap(), Some(partial.clone()));

        assert!(!store.upgrade_commit(1, &partial).unwrap());
        assert!(store.upgrade_commit(1, &full).unwrap());
        assert_eq!(store.commit(1).unwrap(), Some(full.clone()));
        assert!(!store.upgrade_commit(1, &partial).unwrap());
        assert!(!store.upgrade_commit(1, &full).unwrap());
        assert_eq!(store.commit(1).unwrap(), Some(full.clone()));

        // Not committed yet: nothing to upgrade.
        assert!(!store.upgrade_commit(2, &run.chain.blocks[1].commit).unwrap());
        assert_eq!(store.commit(2).unwrap(), None);
        // More signatures for another block never replace the certificate.
        let mut forged = full.clone();
        forged.block_id = Hash([9; 32]);
        forged.signatures.push(full.signatures[0]);
        assert!(matches!(
            store.upgrade_commit(1, &forged),
            Err(StoreError::Inconsistent { height: 1, .. })
        ));
        assert!(matches!(
            store.upgrade_commit(2, &full),
            Err(StoreError::Inconsistent { height: 2, .. })
        ));
        assert_eq!(store.commit(1).unwrap(), Some(full));
    }

    /// What [`BlockStore::commit_block`] does to the pending proposals, on its own.
    fn prune_pending_below(store: &BlockStore, height: u64) {
        let txn = begin_write(&store.db).unwrap();
        prune_pending(&txn, height).unwrap();
        txn.commit().unwrap();
    }

    #[test]
    fn pending_proposals_round_trip_and_prune() {
        let dir = TempDir::new("pending");
        let (a, b, c, d) = (Hash([1; 32]), Hash([2; 32]), Hash([3; 32]), Hash([4; 32]));
        {
            let store = BlockStore::open(&dir.db()).unwrap();
            store.put_pending_proposal(5, 0, &a, b"block a").unwrap();
            store.put_pending_proposal(5, 1, &b, b"block b").unwrap();
            store.put_pending_proposal(6, 0, &c, b"block c").unwrap();
            store.put_pending_proposal(7, 2, &a, b"block a").unwrap();
            // A second, different proposal at (5, 0) is kept by id but never replaces the first.
            store.put_pending_proposal(5, 0, &d, b"block d").unwrap();
            store.put_pending_proposal(9, 0, &Hash([5; 32]), b"").unwrap();
        }
        let store = BlockStore::open(&dir.db()).unwrap();
        assert_eq!(store.pending_proposal(&a).unwrap(), Some(b"block a".to_vec()));
        assert_eq!(store.pending_proposal(&d).unwrap(), Some(b"block d".to_vec()));
        assert_eq!(
            store.pending_proposal_at(5, 0).unwrap(),
            Some(b"block a".to_vec())
        );
        assert_eq!(
            store.pending_proposal_at(5, 1).unwrap(),
            Some(b"block b".to_vec())
        );
        assert_eq!(
            store.pending_proposal_at(6, 0).unwrap(),
            Some(b"block c".to_vec())
        );
        assert_eq!(store.pending_proposal_at(9, 0).unwrap(), Some(vec![]));
        assert_eq!(store.pending_proposal_at(6, 1).unwrap(), None);
        assert_eq!(store.pending_proposal(&Hash([8; 32])).unwrap(), None);

        prune_pending_below(&store, 6);
        assert_eq!(store.pending_proposal_at(5, 0).unwrap(), None);
        assert_eq!(store.pending_proposal_at(5, 1).unwrap(), None);
        assert_eq!(store.pending_proposal(&b).unwrap(), None);
        assert_eq!(store.pending_proposal(&d).unwrap(), None);
        assert_eq!(
            store.pending_proposal_at(6, 0).unwrap(),
            Some(b"block c".to_vec())
        );
        // `a` was last recorded at height 7 (a re-proposal in a later height keeps its bytes).
        assert_eq!(
            store.pending_proposal_at(7, 2).unwrap(),
            Some(b"block a".to_vec())
        );

        // Recorded at a higher height first: pruning the lower height keeps the higher entry.
        let e = Hash([6; 32]);
        store.put_pending_proposal(8, 0, &e, b"block e").unwrap();
        store.put_pending_proposal(6, 3, &e, b"block e").unwrap();
        prune_pending_below(&store, 7);
        assert_eq!(store.pending_proposal_at(6, 3).unwrap(), None);
        assert_eq!(
            store.pending_proposal_at(8, 0).unwrap(),
            Some(b"block e".to_vec())
        );

        prune_pending_below(&store, u64::MAX);
        for (h, r) in [(6, 0), (7, 2), (8, 0), (9, 0)] {
            assert_eq!(store.pending_proposal_at(h, r).unwrap(), None);
        }
        assert_eq!(store.pending_proposal(&c).unwrap(), None);
    }

    #[test]
    fn undecodable_bytes_are_reported_as_corrupt() {
        let dir = TempDir::new("corrupt");
        let run = run_chain(1);
        let store = BlockStore::open(&dir.db()).unwrap();
        store.init_genesis(&run.chain.genesis).unwrap();
        replay_all(&store, &run, 1);

        let txn = store.db.begin_write().unwrap();
        {
            txn.open_table(BLOCKS)
                .unwrap()
                .insert(1, [0xff_u8; 3].as_slice())
                .unwrap();
            txn.open_table(COMMITS)
                .unwrap()
                .insert(1, [0xff_u8; 3].as_slice())
                .unwrap();
            // The bucket holding version 1's root.
            let mut buckets = txn.open_table(JMT_BUCKETS).unwrap();
            let root_bucket = buckets::bucket_key(1, &[]);
            assert!(buckets.get(&root_bucket).unwrap().is_some());
            buckets.insert(&root_bucket, [0xff_u8; 3].as_slice()).unwrap();
        }
        txn.commit().unwrap();
        // Damage happens to a file between runs (redb locks it while open), and a store
        // opened on it holds none of the upper tree nodes it committed in memory.
        let store = BlockStore {
            upper: Arc::default(),
            ..store
        };

        let is_corrupt = |r: Result<(), StoreError>, t: &str| match r {
            Err(StoreError::Corrupt { table, .. }) => table == t,
            _ => false,
        };
        assert!(is_corrupt(store.block(1).map(|_| ()), names::BLOCKS));
        assert!(is_corrupt(store.header(1).map(|_| ()), names::BLOCKS));
        assert!(is_corrupt(store.commit(1).map(|_| ()), names::COMMITS));
        // The typed error comes back through jmt.
        assert!(is_corrupt(store.state_root(1).map(|_| ()), names::JMT_BUCKETS));
        assert!(is_corrupt(
            store.get_with_proof(b"k", 1).map(|_| ()),
            names::JMT_BUCKETS
        ));
        // Version 0 is untouched.
        assert!(store.state_root(0).is_ok());
    }

    mod tree_update {
        use super::super::*;
        use ledger::state::MemoryTreeStore;
        use proptest::prelude::*;

        fn diff_strategy() -> impl Strategy<Value = StateDiff> {
            (
                proptest::collection::btree_map(
                    (0u16..600).prop_map(|k| k.to_be_bytes().to_vec()),
                    proptest::collection::vec(any::<u8>(), 0..40),
                    0..80,
                ),
                proptest::collection::vec(0u16..600, 1..4),
                0u8..5,
            )
                .prop_map(|(writes, deletes, kind)| {
                    let mut diff: StateDiff = writes.into_iter().map(|(k, v)| (k, Some(v))).collect();
                    // One diff in five also deletes keys (present or not): the sequential path.
                    if kind == 0 {
                        for k in deletes {
                            diff.insert(k.to_be_bytes().to_vec(), None);
                        }
                    }
                    diff
                })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// The tree update the store uses gives the root and the nodes of `put_value_set`
            /// (the definition) at every version of a growing tree.
            #[test]
            fn equals_sequential_put_value_set(steps in proptest::collection::vec(diff_strategy(), 1..10)) {
                let store = MemoryTreeStore::default();
                for (version, diff) in steps.iter().enumerate() {
                    let version = version as Version;
                    let (root, batch) = tree_update(&store, diff, version).unwrap();
                    let (expected_root, expected) = JellyfishMerkleTree::<_, Sha256>::new(&store)
                        .put_value_set(to_value_set(diff), version)
                        .unwrap();
                    prop_assert_eq!(root, Hash(expected_root.0));
                    prop_assert_eq!(&batch, &expected.node_batch);
                    store.write_node_batch(&expected.node_batch).unwrap();
                }
            }

            /// Written through the store's tables, every key reads back at every version as
            /// its value then: keys written, deleted, never written, and leaves `jmt` moved
            /// when a neighbour arrived (their value is copied, not in the batch). The node
            /// table keys built by hand equal the encoded `NodeKey`s.
            #[test]
            fn every_key_reads_back_at_every_version(steps in proptest::collection::vec(diff_strategy(), 1..8)) {
                let dir = super::TempDir::new("values");
                let db = redb::Builder::new().create(dir.db()).unwrap();
                let txn = begin_write(&db).unwrap();
                txn.open_table(JMT_NODES).unwrap();
                txn.open_table(JMT_VALUES).unwrap();
                txn.open_table(JMT_BUCKETS).unwrap();
                txn.commit().unwrap();
                let mut history: Vec<std::collections::BTreeMap<Vec<u8>, Vec<u8>>> = Vec::new();
                let mut latest = std::collections::BTreeMap::new();
                // Shared across versions as in a store: it holds the latest upper nodes while
                // older versions are read back below.
                let upper = Arc::new(UpperNodes::default());
                for (version, diff) in steps.iter().enumerate() {
                    let version = version as Version;
                    let before = TreeSnapshot::open(&db, &upper, 0).unwrap();
                    let (_, batch) = tree_update(&before, diff, version).unwrap();
                    for key in batch.nodes().keys() {
                        let nibbles: Vec<u8> = key.nibble_path().nibbles().map(u8::from).collect();
                        prop_assert_eq!(node_table_key(key.version(), &nibbles), encode(key));
                    }
                    let txn = begin_write(&db).unwrap();
                    let written = write_node_batch(&txn, &batch, &before, &before.leaves_read.take()).unwrap();
                    drop(before);
                    txn.commit().unwrap();
                    upper.offer_committed(&written);
                    // The version's buckets hold exactly the batch's nodes, each once, under its
                    // own prefix and in the order `encode_bucket` (and `find_node`) use.
                    let mut expected: std::collections::HashMap<Vec<u8>, Node> = batch
                        .nodes()
                        .iter()
                        .map(|(key, node)| (key.nibble_path().nibbles().map(u8::from).collect(), node.clone()))
                        .collect();
                    let read = db.begin_read().unwrap();
                    let table = read.open_table(JMT_BUCKETS).unwrap();
                    let (first, last) = (buckets::bucket_key(version, &[]), buckets::bucket_key(version, &[15; 3]));
                    for entry in table.range::<&buckets::BucketKey>(&first..=&last).unwrap() {
                        let (key, bucket) = entry.unwrap();
                        let mut entries = buckets::decode_bucket(bucket.value()).unwrap();
                        prop_assert_eq!(&buckets::encode_bucket(&mut entries.clone()).unwrap(), &bucket.value().to_vec());
                        for (nibbles, stored) in entries.drain(..) {
                            prop_assert_eq!(&buckets::bucket_key(version, &nibbles), key.value());
                            let node = expected.remove(&nibbles).expect("a node of the batch, stored once");
                            prop_assert_eq!(decode_node(&stored).unwrap(), node);
                        }
                    }
                    prop_assert!(expected.is_empty(), "{} nodes of the batch not stored", expected.len());
                    for (key, value) in diff {
                        match value {
                            Some(v) => latest.insert(key.clone(), v.clone()),
                            None => latest.remove(key),
                        };
                    }
                    history.push(latest.clone());
                }
                let snapshot = TreeSnapshot::open(&db, &upper, 0).unwrap();
                for (version, state) in history.iter().enumerate() {
                    for k in 0u16..600 {
                        let key = k.to_be_bytes().to_vec();
                        let read = snapshot.value(version as Version, KeyHash::with::<Sha256>(&key)).unwrap();
                        prop_assert_eq!(read.as_ref(), state.get(&key), "key {} at version {}", k, version);
                    }
                }
            }
        }
    }
}

//! The stored form of a Jellyfish tree node (values of the `jmt_nodes` table).
//!
//! Internal nodes are most of what a block writes: a block of 2,000 txs rewrites some 4,000
//! nearly full internal nodes (the 16-way levels above its leaves) besides its leaves. `jmt`'s
//! borsh form spends an option tag on each of the 16 child slots and 8 bytes on every child's
//! version and leaf count, 816 bytes for a full node. The compact form keeps exactly the same
//! information in ~600 bytes (and ~75 instead of ~130 for a two-child node):
//!
//! ```text
//! 0x03 ‖ present: u16 LE ‖ leaves: u16 LE ‖ per present child, in nibble order:
//!     hash (32) ‖ version (LEB128) ‖ leaf count (LEB128, internal children only)
//! ```
//!
//! A leaf node carries its value (schema 5), so a block writes one entry per changed key
//! instead of a node and a separate value, and reading a key's value at a height ends at its
//! leaf:
//!
//! ```text
//! 0x04 ‖ key hash (32) ‖ value hash (32) ‖ value (the rest)
//! ```
//!
//! Null nodes keep `jmt`'s borsh form (tag 0), and so do leaves and internal nodes of files
//! written before these forms (tags 1 and 2; such a leaf's value is in the `jmt_values`
//! table), which still read. The compact form decodes straight into `jmt`'s `InternalNode`
//! (through the types `patches/jmt` exports); a property test checks the round trip
//! against `jmt`'s own encoding.

use jmt::storage::{Child, Children, InternalNode, LeafNode, Nibble, Node, NodeType};

/// First byte of a compact internal node (borsh's `Node` tags are 0, 1 and 2).
const COMPACT_INTERNAL: u8 = 3;
/// First byte of a leaf that carries its value.
const LEAF_WITH_VALUE: u8 = 4;
/// borsh's variant index of `Node::Internal`.
const BORSH_INTERNAL: u8 = 1;
/// borsh's variant index of `Node::Leaf`.
const BORSH_LEAF: u8 = 2;
/// Tag, key hash and value hash: a leaf's bytes before its value.
const LEAF_HEADER: usize = 65;

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeDecodeError {
    #[error("truncated node")]
    Truncated,
    #[error("varint longer than 64 bits")]
    VarintOverflow,
    #[error("leaf children outside the present ones, or no child")]
    BadBitmaps,
    #[error("an internal node with a single child that is a leaf")]
    LoneLeafChild,
    #[error("leaf count overflows")]
    LeafCountOverflow,
    #[error("{0} trailing bytes")]
    Trailing(usize),
    #[error("borsh: {0}")]
    Borsh(String),
}

/// Appends the stored bytes of a leaf node and its value to `out` (a commit writes all of a
/// block's nodes into one buffer).
pub fn encode_leaf_into(out: &mut Vec<u8>, leaf: &LeafNode, value: &[u8]) {
    let start = out.len();
    // borsh's `Node::Leaf` (tag, key hash, value hash) with the tag replaced.
    borsh::to_writer(&mut *out, &Node::Leaf(leaf.clone())).expect("writing to a Vec cannot fail");
    debug_assert_eq!(out.len() - start, LEAF_HEADER);
    out[start] = LEAF_WITH_VALUE;
    out.extend_from_slice(value);
}

/// Appends the stored bytes of an internal or null node to `out` (leaves:
/// [`encode_leaf_into`]).
pub fn encode_node_into(out: &mut Vec<u8>, node: &Node) {
    let Node::Internal(internal) = node else {
        borsh::to_writer(&mut *out, node).expect("writing to a Vec cannot fail");
        return;
    };
    let mut present = 0u16;
    let mut leaves = 0u16;
    let start = out.len();
    out.reserve(5 + internal.children_sorted().count() * 38);
    out.extend_from_slice(&[COMPACT_INTERNAL, 0, 0, 0, 0]);
    for (nibble, child) in internal.children_sorted() {
        let bit = 1u16 << u8::from(nibble);
        present |= bit;
        out.extend_from_slice(&child.hash);
        put_varint(out, child.version);
        if child.is_leaf() {
            leaves |= bit;
        } else {
            put_varint(out, child.leaf_count() as u64);
        }
    }
    out[start + 1..start + 3].copy_from_slice(&present.to_le_bytes());
    out[start + 3..start + 5].copy_from_slice(&leaves.to_le_bytes());
}

#[cfg(test)]
pub fn encode_leaf(leaf: &LeafNode, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_leaf_into(&mut out, leaf, value);
    out
}

#[cfg(test)]
pub fn encode_node(node: &Node) -> Vec<u8> {
    let mut out = Vec::new();
    encode_node_into(&mut out, node);
    out
}

/// Decodes bytes [`encode_node_into`] or [`encode_leaf_into`] (or `jmt`'s borsh encoding) wrote; a
/// leaf's value is left out (see [`leaf_value`]).
pub fn decode_node(bytes: &[u8]) -> Result<Node, NodeDecodeError> {
    match bytes.first() {
        Some(&COMPACT_INTERNAL) => Ok(Node::Internal(decode_internal(bytes)?)),
        Some(&LEAF_WITH_VALUE) => {
            let mut header: [u8; LEAF_HEADER] = bytes
                .get(..LEAF_HEADER)
                .and_then(|h| h.try_into().ok())
                .ok_or(NodeDecodeError::Truncated)?;
            header[0] = BORSH_LEAF;
            borsh::from_slice(&header).map_err(|e| NodeDecodeError::Borsh(e.to_string()))
        }
        _ => borsh::from_slice(bytes).map_err(|e| NodeDecodeError::Borsh(e.to_string())),
    }
}

/// Whether `bytes` (a stored node) are an internal node, in either stored form.
pub fn is_internal(bytes: &[u8]) -> bool {
    matches!(bytes.first(), Some(&COMPACT_INTERNAL | &BORSH_INTERNAL))
}

/// The value a stored leaf carries; `None` for a node that carries none (an internal or null
/// node, or a leaf written before leaves carried values). Not checked here against the leaf's
/// value hash, which [`decode_node`] of the same bytes gives.
pub fn leaf_value(bytes: &[u8]) -> Option<&[u8]> {
    match bytes.first() {
        Some(&LEAF_WITH_VALUE) => bytes.get(LEAF_HEADER..),
        _ => None,
    }
}

/// A compact internal node ([`encode_node_into`]), built directly: node reads are on the path of
/// every tree update, and going through `jmt`'s borsh form (re-encoding the node first) was
/// ~1.5 % of a loaded validator's CPU. Refuses what `InternalNode::new` would panic on.
fn decode_internal(bytes: &[u8]) -> Result<InternalNode, NodeDecodeError> {
    let mut input = Reader(bytes.get(1..).ok_or(NodeDecodeError::Truncated)?);
    let present = u16::from_le_bytes(input.array()?);
    let leaves = u16::from_le_bytes(input.array()?);
    if present == 0 || leaves & !present != 0 {
        return Err(NodeDecodeError::BadBitmaps);
    }
    // `jmt` never builds (and would refuse to hash correctly) a node whose only child is a
    // leaf: that leaf belongs one level up.
    if present.count_ones() == 1 && leaves != 0 {
        return Err(NodeDecodeError::LoneLeafChild);
    }
    let mut children = Children::new();
    let mut leaf_count: usize = 0;
    for nibble in 0..16u8 {
        let bit = 1u16 << nibble;
        if present & bit == 0 {
            continue;
        }
        let hash = input.array::<32>()?;
        let version = input.varint()?;
        let (node_type, below) = if leaves & bit != 0 {
            (NodeType::Leaf, 1)
        } else {
            let count = usize::try_from(input.varint()?).map_err(|_| NodeDecodeError::LeafCountOverflow)?;
            (NodeType::Internal { leaf_count: count }, count)
        };
        leaf_count = leaf_count
            .checked_add(below)
            .ok_or(NodeDecodeError::LeafCountOverflow)?;
        children.insert(Nibble::from(nibble), Child::new(hash, version, node_type));
    }
    if !input.0.is_empty() {
        return Err(NodeDecodeError::Trailing(input.0.len()));
    }
    Ok(InternalNode::new(children))
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], NodeDecodeError> {
        let (head, rest) = self
            .0
            .split_first_chunk::<N>()
            .ok_or(NodeDecodeError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn varint(&mut self) -> Result<u64, NodeDecodeError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(NodeDecodeError::VarintOverflow);
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(NodeDecodeError::VarintOverflow)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jmt::storage::{LeafNode, NodeKey, TreeReader};
    use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, Version};
    use proptest::prelude::*;
    use sha2::Sha256;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Nodes and values in memory: enough for `jmt` to build on earlier versions.
    #[derive(Default)]
    struct MemoryTree {
        nodes: RefCell<HashMap<NodeKey, Node>>,
        values: RefCell<HashMap<(Version, KeyHash), Option<OwnedValue>>>,
    }

    impl TreeReader for MemoryTree {
        fn get_node_option(&self, key: &NodeKey) -> anyhow::Result<Option<Node>> {
            Ok(self.nodes.borrow().get(key).cloned())
        }
        fn get_value_option(&self, max: Version, key: KeyHash) -> anyhow::Result<Option<OwnedValue>> {
            let values = self.values.borrow();
            let latest = values
                .iter()
                .filter(|((v, k), _)| *k == key && *v <= max)
                .max_by_key(|((v, _), _)| *v);
            Ok(latest.and_then(|(_, value)| value.clone()))
        }
        fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
            Ok(None)
        }
    }

    /// Every node of a tree built from `keys`, inserted over a few versions so children have
    /// varied versions and leaf counts.
    fn tree_nodes(keys: &[([u8; 32], u8)]) -> Vec<Node> {
        let store = MemoryTree::default();
        let mut nodes = Vec::new();
        for (version, chunk) in keys.chunks(7).enumerate() {
            let tree = JellyfishMerkleTree::<_, Sha256>::new(&store);
            let set = chunk.iter().map(|(k, v)| (KeyHash(*k), Some(vec![*v])));
            let (_, batch) = tree.put_value_set(set, version as u64).unwrap();
            let batch = batch.node_batch;
            nodes.extend(batch.nodes().values().cloned());
            store.nodes.borrow_mut().extend(batch.nodes().clone());
            store.values.borrow_mut().extend(batch.values().clone());
        }
        nodes
    }

    proptest! {
        #[test]
        fn every_node_round_trips_and_internal_nodes_shrink(
            keys in proptest::collection::vec((any::<[u8; 32]>(), any::<u8>()), 1..120),
        ) {
            // A commit appends every node to one buffer: the same bytes as one by one.
            let (mut one_buffer, mut one_by_one) = (Vec::new(), Vec::new());
            for node in tree_nodes(&keys) {
                let stored = match &node {
                    Node::Leaf(leaf) => {
                        let value = leaf.key_hash().0[..3].to_vec();
                        let stored = encode_leaf(leaf, &value);
                        prop_assert_eq!(leaf_value(&stored), Some(&value[..]));
                        encode_leaf_into(&mut one_buffer, leaf, &value);
                        stored
                    }
                    _ => {
                        encode_node_into(&mut one_buffer, &node);
                        encode_node(&node)
                    }
                };
                one_by_one.extend_from_slice(&stored);
                prop_assert_eq!(decode_node(&stored).unwrap(), node.clone());
                let borsh = borsh::to_vec(&node).unwrap();
                // Files written before the compact form still read.
                prop_assert_eq!(decode_node(&borsh).unwrap(), node.clone());
                if matches!(node, Node::Internal(_)) {
                    prop_assert!(stored.len() < borsh.len());
                }
            }
            prop_assert_eq!(one_buffer, one_by_one);
        }

        #[test]
        fn arbitrary_bytes_decode_or_fail_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..700)) {
            let _ = decode_node(&bytes);
            for tag in [COMPACT_INTERNAL, LEAF_WITH_VALUE] {
                let mut tagged = bytes.clone();
                tagged.insert(0, tag);
                let _ = decode_node(&tagged);
                let _ = leaf_value(&tagged);
            }
        }
    }

    #[test]
    fn malformed_compact_nodes_are_refused() {
        let mut one_leaf = vec![COMPACT_INTERNAL, 1, 0, 1, 0];
        one_leaf.extend_from_slice(&[7; 32]);
        one_leaf.push(5);
        assert_eq!(decode_node(&one_leaf), Err(NodeDecodeError::LoneLeafChild));
        assert_eq!(
            decode_node(&[COMPACT_INTERNAL, 0, 0, 0, 0]),
            Err(NodeDecodeError::BadBitmaps)
        );
        assert_eq!(
            decode_node(&[COMPACT_INTERNAL, 1, 0, 2, 0]),
            Err(NodeDecodeError::BadBitmaps)
        );
        let mut two = vec![COMPACT_INTERNAL, 3, 0, 3, 0];
        two.extend_from_slice(&[7; 32]);
        two.push(5);
        assert_eq!(decode_node(&two), Err(NodeDecodeError::Truncated));
        two.extend_from_slice(&[8; 32]);
        two.push(6);
        assert!(decode_node(&two).is_ok());
        two.push(0);
        assert_eq!(decode_node(&two), Err(NodeDecodeError::Trailing(1)));
        let mut long = vec![COMPACT_INTERNAL, 1, 0, 0, 0];
        long.extend_from_slice(&[7; 32]);
        long.extend_from_slice(&[0xff; 10]);
        long.push(1);
        assert_eq!(decode_node(&long), Err(NodeDecodeError::VarintOverflow));
        let short_leaf = [LEAF_WITH_VALUE; LEAF_HEADER - 1];
        assert_eq!(decode_node(&short_leaf), Err(NodeDecodeError::Truncated));
    }
}

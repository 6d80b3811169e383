//! The Merkle tree over a block's transactions (the header's `tx_root`) and inclusion proofs.
//!
//! This is the Merkle Tree Hash of RFC 6962 §2.1 (Certificate Transparency), unchanged in
//! RFC 9162 §2.1.1, so any CT tooling can recompute and check it:
//!
//! * leaf: `SHA-256(0x00 ‖ tx)`, where `tx` is the transaction's canonical encoding;
//! * node: `SHA-256(0x01 ‖ left ‖ right)`;
//! * empty tree: `SHA-256("")`.
//!
//! A tree of `n > 1` leaves splits at the largest power of two below `n`; building it bottom-up
//! and carrying an odd last node up a level unchanged yields exactly that shape, so neither
//! construction nor proving recurses. Inclusion proofs are checked with the algorithm of
//! RFC 9162 §2.1.3.2.
//!
//! Security: the distinct 0x00/0x01 prefixes keep a leaf from ever hashing like an interior
//! node, which closes the second-preimage attack in which a proof presents an inner node as
//! a "transaction". A proof binds its `tree_size`: the verifier derives the path's shape from
//! `(leaf_index, tree_size)` and rejects a path of any other length. The root alone does not
//! commit to the size, though (sizes 3 and 4 share the shape at index 0), so a caller must
//! check `proof.tree_size` against the block's authenticated transaction count.

use crate::crypto::{sha256, sha256_concat, Hash};
use borsh::{BorshDeserialize, BorshSerialize};

const LEAF_PREFIX: [u8; 1] = [0x00];
const NODE_PREFIX: [u8; 1] = [0x01];

/// Why an inclusion proof was refused or could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The leaf index is not below the tree size (every index is, for a tree of size 0).
    #[error("leaf index {index} out of range for tree of size {tree_size}")]
    IndexOutOfRange { index: u64, tree_size: u64 },
    /// The path does not have the length that `(leaf_index, tree_size)` dictates.
    #[error("inclusion path has {got} hashes, expected {expected}")]
    WrongPathLength { expected: usize, got: usize },
    /// The path is well formed but leads to a different root.
    #[error("inclusion proof computes root {computed}, expected {expected}")]
    RootMismatch { expected: Hash, computed: Hash },
}

/// `SHA-256(0x00 ‖ leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    sha256_concat(&[&LEAF_PREFIX, leaf])
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    sha256_concat(&[&NODE_PREFIX, &left.0, &right.0])
}

/// Replaces one level of the tree by the level above it, in place: index `k` is only written
/// after indices `2k` and `2k + 1` have been read. An odd last node moves up unchanged.
fn reduce_level(level: &mut Vec<Hash>) {
    let pairs = level.len() / 2;
    for k in 0..pairs {
        level[k] = node_hash(&level[2 * k], &level[2 * k + 1]);
    }
    if level.len() % 2 == 1 {
        level[pairs] = level[level.len() - 1];
        level.truncate(pairs + 1);
    } else {
        level.truncate(pairs);
    }
}

/// The RFC 6962 Merkle Tree Hash of `leaves`, with `n - 1` node hashes for `n` leaves.
pub fn tx_root<T: AsRef<[u8]>>(leaves: &[T]) -> Hash {
    if leaves.is_empty() {
        return sha256(b"");
    }
    let mut level: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    while level.len() > 1 {
        reduce_level(&mut level);
    }
    level[0]
}

/// A proof that a leaf sits at `leaf_index` in a tree of `tree_size` leaves: the sibling
/// hashes from the leaf's level up to the root (RFC 9162 §2.1.3.1 order).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    pub path: Vec<Hash>,
}

/// The inclusion proof for `leaves[index]`.
pub fn prove_inclusion<T: AsRef<[u8]>>(leaves: &[T], index: usize) -> Result<InclusionProof, MerkleError> {
    // usize is at most 64 bits on every target this crate builds for, so `as u64` is lossless.
    let (leaf_index, tree_size) = (index as u64, leaves.len() as u64);
    if leaf_index >= tree_size {
        return Err(MerkleError::IndexOutOfRange {
            index: leaf_index,
            tree_size,
        });
    }
    let mut level: Vec<Hash> = leaves.iter().map(|l| leaf_hash(l.as_ref())).collect();
    let mut path = Vec::new();
    let mut i = index;
    while level.len() > 1 {
        // The last node of an odd level has no sibling: it is carried up without a path entry.
        if let Some(sibling) = level.get(i ^ 1) {
            path.push(*sibling);
        }
        reduce_level(&mut level);
        i /= 2;
    }
    Ok(InclusionProof {
        leaf_index,
        tree_size,
        path,
    })
}

/// The number of path hashes for `index` in a tree of `size` leaves (`index < size`): one per
/// level except where the node is the last one of its level and a left child (no sibling).
fn path_len(index: u64, size: u64) -> usize {
    let (mut f, mut s) = (index, size.saturating_sub(1));
    let mut len = 0;
    while s != 0 {
        if f & 1 == 1 || f != s {
            len += 1;
        }
        f >>= 1;
        s >>= 1;
    }
    len
}

impl InclusionProof {
    /// Checks that `leaf` (the raw transaction bytes) is included under `root`.
    pub fn verify(&self, root: &Hash, leaf: &[u8]) -> Result<(), MerkleError> {
        self.verify_leaf_hash(root, &leaf_hash(leaf))
    }

    /// Checks that the leaf whose hash is `leaf_hash` is included under `root`, per RFC 9162
    /// §2.1.3.2. Total on hostile input: the path length is checked against the at most 64
    /// levels `tree_size` allows before any hashing, and all index arithmetic is shifts.
    pub fn verify_leaf_hash(&self, root: &Hash, leaf_hash: &Hash) -> Result<(), MerkleError> {
        let (index, tree_size, got) = (self.leaf_index, self.tree_size, self.path.len());
        if index >= tree_size {
            return Err(MerkleError::IndexOutOfRange { index, tree_size });
        }
        let expected = path_len(index, tree_size);
        let wrong_length = MerkleError::WrongPathLength { expected, got };
        if got != expected {
            return Err(wrong_length);
        }
        // `f` and `s` are the RFC's `fn` and `sn`: the node's index and the last index on
        // the current level. `tree_size > leaf_index >= 0`, so the subtraction cannot wrap.
        let (mut f, mut s) = (index, tree_size - 1);
        let mut r = *leaf_hash;
        for p in &self.path {
            if s == 0 {
                return Err(wrong_length);
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                // Skip the levels where the node is carried up without a sibling.
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        if s != 0 {
            return Err(wrong_length);
        }
        if r != *root {
            let (expected, computed) = (*root, r);
            return Err(MerkleError::RootMismatch { expected, computed });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn h(s: &str) -> Hash {
        Hash::from_hex(s).expect("test vector is 32 bytes of hex")
    }

    // The leaves and roots shared by the CT C++ suite, transparency-dev/merkle
    // (testonly/constants.go) and Trillian.
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];
    const ROOTS: [&str; 9] = [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];
    // NodeHashes() in testonly/constants.go: every complete subtree of the 8-leaf tree, by level.
    const NODES: [&[&str]; 4] = [
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
            "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
        ],
        &[
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
        ],
        &[
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
        &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
    ];
    // proof/verify_test.go `inclusionProofs` (leaf numbers there are 1-based): leaf index, tree
    // size, and the path as (level, index) into NODES; the hashes are the ones listed there.
    type NodeAt = (usize, usize);
    const PATHS: [(usize, usize, &[NodeAt]); 5] = [
        (0, 1, &[]),
        (0, 8, &[(0, 1), (1, 1), (2, 1)]),
        (5, 8, &[(0, 4), (1, 3), (2, 0)]),
        (2, 3, &[(1, 0)]),
        (1, 5, &[(0, 0), (1, 1), (0, 4)]),
    ];

    fn proof(leaf_index: u64, tree_size: u64, path: Vec<Hash>) -> InclusionProof {
        InclusionProof {
            leaf_index,
            tree_size,
            path,
        }
    }

    fn leaves() -> Vec<Vec<u8>> {
        LEAVES.iter().map(|l| hex::decode(l).expect("hex")).collect()
    }

    #[test]
    fn reference_leaf_hashes_and_roots() {
        let leaves = leaves();
        for (leaf, want) in leaves.iter().zip(NODES[0]) {
            assert_eq!(leaf_hash(leaf), h(want));
        }
        for (n, want) in ROOTS.iter().enumerate() {
            assert_eq!(tx_root(&leaves[..n]), h(want), "root of the first {n} leaves");
        }
    }

    #[test]
    fn reference_inclusion_paths() {
        let leaves = leaves();
        for (index, size, path) in PATHS {
            let proof = prove_inclusion(&leaves[..size], index).expect("index in range");
            let want = path.iter().map(|&(level, k)| h(NODES[level][k])).collect();
            assert_eq!(proof, self::proof(index as u64, size as u64, want));
            let root = h(ROOTS[size]);
            assert_eq!(proof.verify(&root, &leaves[index]), Ok(()));
            // The corruptions transparency-dev/merkle's verifierCheck applies.
            let (i, n) = (proof.leaf_index, proof.tree_size);
            let alt = |i, n| self::proof(i, n, proof.path.clone());
            let mut probes = vec![
                alt(i.wrapping_sub(1), n),
                alt(i + 1, n),
                alt(i ^ 2, n),
                alt(i, n * 2),
                alt(i, n / 2),
            ];
            for extra in [Hash::ZERO, root] {
                let mut longer = proof.clone();
                longer.path.push(extra);
                probes.push(longer.clone());
                longer.path.rotate_right(1);
                probes.push(longer);
            }
            if !proof.path.is_empty() {
                let mut shorter = proof.clone();
                shorter.path.pop();
                probes.push(shorter);
            }
            for probe in &probes {
                assert!(probe.verify(&root, &leaves[index]).is_err(), "{probe:?} verified");
            }
            assert!(proof.verify(&root, b"WrongLeaf").is_err());
            assert!(proof.verify(&h(ROOTS[0]), &leaves[index]).is_err());
        }
    }

    #[test]
    fn out_of_range_and_empty() {
        let (index, tree_size) = (8, 8);
        assert_eq!(
            prove_inclusion(&leaves(), 8),
            Err(MerkleError::IndexOutOfRange { index, tree_size })
        );
        assert!(prove_inclusion::<Vec<u8>>(&[], 0).is_err());
        assert!(proof(0, 0, vec![]).verify(&h(ROOTS[0]), b"").is_err());
        // The deepest possible tree: 63 levels above this leaf, all hashed before the root check.
        let huge = proof(u64::MAX - 1, u64::MAX, vec![Hash::ZERO; 63]);
        assert!(matches!(
            huge.verify(&Hash::ZERO, b""),
            Err(MerkleError::RootMismatch { .. })
        ));
        let (expected, got) = (63, 64);
        let too_long = proof(u64::MAX - 1, u64::MAX, vec![Hash::ZERO; 64]);
        assert_eq!(
            too_long.verify(&Hash::ZERO, b""),
            Err(MerkleError::WrongPathLength { expected, got })
        );
    }

    /// The levels at which `index` has a sibling in a tree of `size` leaves, from the tree's
    /// shape rather than RFC 9162's bit tricks: the sibling subtree at level `l` begins at
    /// leaf `((index >> l) ^ 1) << l` and exists if that leaf does.
    fn sibling_levels(index: u64, size: u64) -> Vec<u32> {
        (0..64).filter(|&l| ((index >> l) ^ 1) << l < size).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn proofs_verify_and_tampering_fails(
            leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..48), 1..200),
            pick in any::<prop::sample::Index>(),
            bit in 0usize..256,
            other_size in 1u64..400,
        ) {
            let root = tx_root(&leaves);
            let n = leaves.len() as u64;
            for (i, leaf) in leaves.iter().enumerate() {
                let proof = prove_inclusion(&leaves, i).expect("index in range");
                prop_assert_eq!(proof.path.len(), sibling_levels(i as u64, n).len());
                prop_assert_eq!(proof.verify(&root, leaf), Ok(()));
                let bytes = borsh::to_vec(&proof).expect("serialise");
                prop_assert_eq!(InclusionProof::try_from_slice(&bytes).expect("deserialise"), proof.clone());

                let mut bad_leaf = leaf.clone();
                if bad_leaf.is_empty() {
                    bad_leaf.push(0);
                } else {
                    let at = bit % (bad_leaf.len() * 8);
                    bad_leaf[at / 8] ^= 1 << (at % 8);
                }
                prop_assert!(proof.verify(&root, &bad_leaf).is_err());
                for k in 0..proof.path.len() {
                    let mut bad = proof.clone();
                    bad.path[k].0[bit / 8] ^= 1 << (bit % 8);
                    prop_assert!(bad.verify(&root, leaf).is_err());
                }
                // Another index passes only where the tree really holds this leaf.
                let j = pick.index(leaves.len());
                let moved = InclusionProof { leaf_index: j as u64, ..proof.clone() };
                prop_assert!(moved.verify(&root, leaf).is_err() || leaves[j] == *leaf);
                // Another size passes exactly when it gives this leaf the same path shape:
                // why the caller must check tree_size against the header.
                for size in [other_size, n + 1, n - 1, n * 2, n / 2, u64::MAX] {
                    if size == n {
                        continue;
                    }
                    let resized = InclusionProof { tree_size: size, ..proof.clone() };
                    let i = i as u64;
                    let same_shape = i < size && sibling_levels(i, size) == sibling_levels(i, n);
                    prop_assert_eq!(resized.verify(&root, leaf).is_ok(), same_shape, "size {}", size);
                }
            }
        }

        #[test]
        fn verify_never_panics(
            leaf_index in prop_oneof![any::<u64>(), 0u64..300, Just(u64::MAX)],
            tree_size in prop_oneof![any::<u64>(), 0u64..300, Just(0), Just(u64::MAX)],
            path in prop::collection::vec(any::<[u8; 32]>().prop_map(Hash), 0..80),
            root in any::<[u8; 32]>().prop_map(Hash),
            leaf in prop::collection::vec(any::<u8>(), 0..16),
        ) {
            let proof = InclusionProof { leaf_index, tree_size, path };
            let _ = proof.verify(&root, &leaf);
            let _ = proof.verify_leaf_hash(&root, &root);
        }
    }
}

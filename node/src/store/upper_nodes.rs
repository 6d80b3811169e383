//! The latest internal nodes of the top of the state tree, kept in memory.
//!
//! A block's tree update reads, for every key it changes, the path of nodes from the root to
//! the key's leaf. The top levels are on nearly every path: with ~10^5 keys and a few thousand
//! changed per block, almost all nodes of the first three levels and one level-4 node per
//! changed key are read again at the next block, each a B-tree lookup in `jmt_nodes` plus a
//! decode. The internal nodes of levels 0..=[`UPPER_DEPTH`] (at most 69,905, ~15 MB encoded)
//! are kept here at their latest committed version, so those reads skip the B-tree.
//!
//! Sound because a (version, path) names one node forever: committed versions never change,
//! only nodes of committed versions are put here (a commit's own after redb's commit
//! returned), and a lookup hits only when the version asked for is the one held. A newer
//! version replaces an older one; a reader of an old height misses and reads redb.

use jmt::Version;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The deepest level (nibbles from the root) whose internal nodes are kept.
pub(super) const UPPER_DEPTH: usize = 4;

/// A path of at most [`UPPER_DEPTH`] nibbles as one number: its length above its nibbles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct UpperPath(u32);

impl UpperPath {
    /// The path of `nibbles` (one per byte), if it is within the kept levels.
    pub(super) fn of_nibbles(nibbles: &[u8]) -> Option<Self> {
        if nibbles.len() > UPPER_DEPTH {
            return None;
        }
        let packed = nibbles
            .iter()
            .fold(0u32, |acc, &nibble| (acc << 4) | u32::from(nibble & 0x0f));
        Some(UpperPath(((nibbles.len() as u32) << 16) | packed))
    }
}

/// Encoded internal nodes (as stored in `jmt_nodes`) by path, each at its latest version
/// seen. See the module docs.
#[derive(Default)]
pub(super) struct UpperNodes {
    latest: RwLock<LatestByPath>,
}

/// Path → (version, stored bytes) of the latest node seen there.
type LatestByPath = HashMap<UpperPath, (Version, Arc<[u8]>), ahash::RandomState>;

impl UpperNodes {
    /// The stored bytes of the node at (`version`, `path`), if held.
    pub(super) fn get(&self, version: Version, path: UpperPath) -> Option<Arc<[u8]>> {
        let latest = self.latest.read().ok()?;
        match latest.get(&path) {
            Some((held, bytes)) if *held == version => Some(bytes.clone()),
            _ => None,
        }
    }

    /// Offers the stored bytes of the committed internal node at (`version`, `path`): kept
    /// unless a node of the same or a later version is held there.
    pub(super) fn offer(&self, version: Version, path: UpperPath, bytes: &[u8]) {
        if let Ok(mut latest) = self.latest.write() {
            keep_newer(&mut latest, version, path, bytes);
        }
    }

    /// [`Self::offer`] for the internal nodes a commit wrote.
    pub(super) fn offer_committed(&self, nodes: &[(Version, UpperPath, Vec<u8>)]) {
        if let Ok(mut latest) = self.latest.write() {
            for (version, path, bytes) in nodes {
                keep_newer(&mut latest, *version, *path, bytes);
            }
        }
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.latest.read().map_or(0, |l| l.len())
    }
}

/// Holds `bytes` at `path` unless a node of the same or a later version is held there.
fn keep_newer(latest: &mut LatestByPath, version: Version, path: UpperPath, bytes: &[u8]) {
    if latest.get(&path).is_some_and(|(held, _)| *held >= version) {
        return;
    }
    latest.insert(path, (version, Arc::from(bytes)));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_different_lengths_or_nibbles_differ() {
        let a = UpperPath::of_nibbles(&[]).unwrap();
        let b = UpperPath::of_nibbles(&[0]).unwrap();
        let c = UpperPath::of_nibbles(&[0, 0]).unwrap();
        let d = UpperPath::of_nibbles(&[0, 1]).unwrap();
        let e = UpperPath::of_nibbles(&[1, 0]).unwrap();
        let all = [a, b, c, d, e];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
        assert_eq!(UpperPath::of_nibbles(&[1, 2, 3, 4, 5]), None);
    }

    #[test]
    fn a_lookup_hits_only_the_version_held_and_newer_versions_replace_older() {
        let nodes = UpperNodes::default();
        let path = UpperPath::of_nibbles(&[3, 7]).unwrap();
        nodes.offer(5, path, b"five");
        assert_eq!(nodes.get(5, path).as_deref(), Some(&b"five"[..]));
        assert_eq!(nodes.get(4, path), None);
        nodes.offer(3, path, b"three");
        assert_eq!(nodes.get(5, path).as_deref(), Some(&b"five"[..]));
        nodes.offer_committed(&[(9, path, b"nine".to_vec())]);
        assert_eq!(nodes.get(9, path).as_deref(), Some(&b"nine"[..]));
        assert_eq!(nodes.get(5, path), None);
        assert_eq!(nodes.len(), 1);
    }
}

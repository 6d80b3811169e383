//! JMT nodes stored in buckets: one `jmt_buckets` entry per (version, first three nibbles of
//! the node's path) holding all the nodes of that version under that prefix.
//!
//! A block writes a few nodes per changed key, ~10 per tx. As one B-tree entry each, the
//! inserts (a descent from the root, a binary search per page, the leaf's shuffle) were the
//! largest non-hashing cost of a commit. Grouped under 4,096 prefixes, a 1,000-tx block's
//! ~10,000 nodes are ~3,700 inserts of the same bytes, and a read still fetches one small
//! entry (a few nodes) and binary-searches it. Coarser buckets (two nibbles: 256 per version,
//! ~40 nodes each) cut inserts further but made reads slower than they saved: a bucket then
//! outgrows a page, and redb reads and caches such a value whole, for one node of it.
//!
//! A bucket is: entry count (u32 LE), each entry's end offset in the entry area (u32 LE), then
//! the entries in path order, each the path's nibble count (u8), its nibbles packed two per
//! byte (high first), then the node as [`super::tree_codec`] stores it. Paths order by nibble
//! count, then packed bytes: `jmt`'s `NibblePath` order, in which a node batch comes.

use jmt::Version;
use std::cmp::Ordering;
use std::ops::Range;

/// A `jmt_buckets` key: version (u64 BE), then the prefix's three nibbles and a zero nibble.
pub(super) type BucketKey = [u8; 10];

/// The `jmt_buckets` key of the nodes of `version` whose paths start with `nibbles` (the
/// first three levels share their prefix's bucket with the level below: missing nibbles
/// count as 0).
pub(super) fn bucket_key(version: Version, nibbles: &[u8]) -> BucketKey {
    let nibble = |i: usize| nibbles.get(i).copied().unwrap_or(0) & 0x0f;
    let mut key = [0u8; 10];
    key[..8].copy_from_slice(&version.to_be_bytes());
    key[8] = (nibble(0) << 4) | nibble(1);
    key[9] = nibble(2) << 4;
    key
}

/// A bucket's content as (path nibbles, one per byte; stored node), for tests.
#[cfg(test)]
pub(super) type BucketEntries = Vec<(Vec<u8>, Vec<u8>)>;

/// A path as stored: nibble count, then the nibbles two per byte.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct PackedPath {
    len: u8,
    bytes: [u8; 32],
}

impl PackedPath {
    pub(super) fn new(nibbles: &[u8]) -> Option<Self> {
        if nibbles.len() > 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (i, nibble) in nibbles.iter().enumerate() {
            bytes[i / 2] |= (nibble & 0x0f) << if i % 2 == 0 { 4 } else { 0 };
        }
        Some(PackedPath {
            len: nibbles.len() as u8,
            bytes,
        })
    }

    fn packed(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len).div_ceil(2)]
    }

    fn cmp_stored(&self, len: u8, packed: &[u8]) -> Ordering {
        self.len.cmp(&len).then_with(|| self.packed().cmp(packed))
    }

    /// The order entries are stored (and searched) in: nibble count, then nibbles.
    pub(super) fn cmp_path(&self, other: &PackedPath) -> Ordering {
        self.cmp_stored(other.len, other.packed())
    }
}

/// Builds a bucket from `(path nibbles, stored node)` entries, putting them in path order
/// first (a node batch yields them in that order already; sorting a handful keeps it from
/// being an assumption). `None` if a path is given twice or the bucket is too large for the
/// format (over 4 GiB): a caller bug, never input. For tests; commits build buckets with
/// [`encode_sorted_bucket`].
#[cfg(test)]
pub(super) fn encode_bucket(entries: &mut BucketEntries) -> Option<Vec<u8>> {
    // The order `PackedPath::cmp_stored` searches by: nibble count, then nibbles.
    entries.sort_by(|a, b| (a.0.len(), &a.0).cmp(&(b.0.len(), &b.0)));
    let packed: Vec<(PackedPath, &[u8])> = entries
        .iter()
        .map(|(path, node)| Some((PackedPath::new(path)?, &node[..])))
        .collect::<Option<_>>()?;
    encode_sorted_bucket(&packed)
}

/// Builds a bucket from entries already in path order ([`PackedPath::cmp_path`]); `None` if
/// they are not strictly in that order (a path given twice) or the bucket is too large for
/// the format (over 4 GiB): a caller bug, never input.
pub(super) fn encode_sorted_bucket(entries: &[(PackedPath, &[u8])]) -> Option<Vec<u8>> {
    let body: usize = entries
        .iter()
        .map(|(path, node)| 1 + path.packed().len() + node.len())
        .sum();
    let count = u32::try_from(entries.len()).ok()?;
    let mut out = Vec::with_capacity(4 + 4 * entries.len() + body);
    out.extend_from_slice(&count.to_le_bytes());
    let mut end = 0usize;
    for (path, node) in entries {
        end += 1 + path.packed().len() + node.len();
        out.extend_from_slice(&u32::try_from(end).ok()?.to_le_bytes());
    }
    let mut previous: Option<&PackedPath> = None;
    for (path, node) in entries {
        if previous.is_some_and(|previous| previous.cmp_path(path) != Ordering::Less) {
            return None;
        }
        previous = Some(path);
        out.push(path.len);
        out.extend_from_slice(path.packed());
        out.extend_from_slice(node);
    }
    Some(out)
}

/// The bucket does not have the layout [`encode_sorted_bucket`] writes.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct MalformedBucket;

/// Where in `bucket` the stored node at path `nibbles` is, if the bucket holds it.
pub(super) fn find_node(bucket: &[u8], nibbles: &[u8]) -> Result<Option<Range<usize>>, MalformedBucket> {
    let Some(query) = PackedPath::new(nibbles) else {
        return Ok(None);
    };
    let count = entry_count(bucket)?;
    let (mut low, mut high) = (0, count);
    while low < high {
        let mid = low + (high - low) / 2;
        let (len, packed, node) = entry(bucket, count, mid)?;
        match query.cmp_stored(len, packed) {
            Ordering::Equal => return Ok(Some(node)),
            Ordering::Less => high = mid,
            Ordering::Greater => low = mid + 1,
        }
    }
    Ok(None)
}

/// The number of entries of `bucket`, checked against its offset table's size.
fn entry_count(bucket: &[u8]) -> Result<usize, MalformedBucket> {
    let count = read_u32(bucket, 0)? as usize;
    count
        .checked_mul(4)
        .and_then(|n| n.checked_add(4))
        .filter(|&start| start <= bucket.len())
        .ok_or(MalformedBucket)?;
    Ok(count)
}

/// Entry `i` of a bucket of `count` entries: its path's nibble count, packed nibbles, and
/// where its stored node is in `bucket`.
fn entry(bucket: &[u8], count: usize, i: usize) -> Result<(u8, &[u8], Range<usize>), MalformedBucket> {
    let entries_start = 4 + 4 * count;
    let start = if i == 0 {
        0
    } else {
        read_u32(bucket, 4 * i)? as usize
    };
    let end = read_u32(bucket, 4 + 4 * i)? as usize;
    let range = entries_start.checked_add(start).ok_or(MalformedBucket)?
        ..entries_start.checked_add(end).ok_or(MalformedBucket)?;
    let bytes = bucket.get(range.clone()).ok_or(MalformedBucket)?;
    let (&len, rest) = bytes.split_first().ok_or(MalformedBucket)?;
    let packed_len = usize::from(len).div_ceil(2);
    let packed = rest.get(..packed_len).ok_or(MalformedBucket)?;
    Ok((len, packed, range.start + 1 + packed_len..range.end))
}

/// Every `(path nibbles, stored node)` of a bucket, in order; `None` if malformed. For
/// tests that rewrite a file into an older layout.
#[cfg(test)]
pub(super) fn decode_bucket(bucket: &[u8]) -> Option<BucketEntries> {
    let count = entry_count(bucket).ok()?;
    (0..count)
        .map(|i| {
            let (len, packed, node) = entry(bucket, count, i).ok()?;
            let nibbles = (0..usize::from(len))
                .map(|j| {
                    if j % 2 == 0 {
                        packed[j / 2] >> 4
                    } else {
                        packed[j / 2] & 0x0f
                    }
                })
                .collect();
            Some((nibbles, bucket[node].to_vec()))
        })
        .collect()
}

fn read_u32(bytes: &[u8], at: usize) -> Result<u32, MalformedBucket> {
    let raw = bytes.get(at..at + 4).ok_or(MalformedBucket)?;
    Ok(u32::from_le_bytes(raw.try_into().map_err(|_| MalformedBucket)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Paths in `jmt`'s order: nibble count, then nibbles.
    fn ordered(entries: BTreeMap<Vec<u8>, Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<_> = entries.into_iter().collect();
        out.sort_by(|a, b| {
            let (pa, pb) = (PackedPath::new(&a.0).unwrap(), PackedPath::new(&b.0).unwrap());
            pa.cmp_stored(pb.len, pb.packed())
        });
        out
    }

    proptest! {
        /// Every node put in a bucket is found at its path with its bytes; paths not put
        /// are not found.
        #[test]
        fn every_entry_is_found_and_no_other(
            entries in proptest::collection::btree_map(
                proptest::collection::vec(0u8..16, 0..12),
                proptest::collection::vec(any::<u8>(), 0..40),
                0..60,
            ),
            absent in proptest::collection::vec(proptest::collection::vec(0u8..16, 0..12), 0..20),
        ) {
            // Given in the map's (nibble) order, stored in path order.
            let bucket = encode_bucket(&mut entries.clone().into_iter().collect()).unwrap();
            let entries = ordered(entries);
            prop_assert_eq!(decode_bucket(&bucket).unwrap(), entries.clone());
            for (path, node) in &entries {
                let range = find_node(&bucket, path).unwrap().unwrap();
                prop_assert_eq!(&bucket[range], node.as_slice());
            }
            for path in absent {
                if entries.iter().all(|(p, _)| *p != path) {
                    prop_assert_eq!(find_node(&bucket, &path).unwrap(), None);
                }
            }
        }

        /// Damaged buckets give an error or a range inside the bucket, never a panic.
        #[test]
        fn damaged_buckets_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), path in proptest::collection::vec(0u8..16, 0..6)) {
            if let Ok(Some(range)) = find_node(&bytes, &path) {
                prop_assert!(range.end <= bytes.len());
            }
        }
    }

    #[test]
    fn entries_are_stored_in_path_order_and_a_path_given_twice_is_refused() {
        let mut entries = vec![(vec![1, 2], vec![9]), (vec![1], vec![8])];
        let bucket = encode_bucket(&mut entries).unwrap();
        assert_eq!(
            decode_bucket(&bucket).unwrap(),
            vec![(vec![1], vec![8]), (vec![1, 2], vec![9])]
        );
        let mut duplicate = vec![(vec![1], vec![9]), (vec![1], vec![8])];
        assert_eq!(encode_bucket(&mut duplicate), None);
    }

    #[test]
    fn the_top_levels_share_the_bucket_of_their_prefix() {
        assert_eq!(bucket_key(7, &[]), bucket_key(7, &[0, 0, 0, 5]));
        assert_eq!(bucket_key(7, &[3]), bucket_key(7, &[3, 0, 0]));
        assert_eq!(bucket_key(7, &[3, 1]), bucket_key(7, &[3, 1, 0, 9]));
        assert_ne!(bucket_key(7, &[3, 1]), bucket_key(7, &[3, 0]));
        assert_ne!(bucket_key(7, &[3, 1, 2]), bucket_key(7, &[3, 1, 3]));
        assert_ne!(bucket_key(7, &[3]), bucket_key(8, &[3]));
    }
}

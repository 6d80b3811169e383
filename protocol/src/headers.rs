//! `/medledger/headers/1`: headers with their commits, validator sets, and header ranges, for
//! sequential and skipping verification (DESIGN §6).

use super::{Message, ServiceError, SignedHeader};
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::merkle::InclusionProof;
use ledger::ValidatorSet;
use std::time::Duration;

pub const PROTOCOL: &str = "/medledger/headers/1";
/// A request is a tag and at most two integers.
pub const REQUEST_SIZE_LIMIT: usize = 64;
/// Most headers one [`HeadersRequest::Range`] answer carries.
pub const MAX_RANGE: u32 = 64;
/// Fits [`MAX_RANGE`] signed headers whose commits carry `ledger::validators::MAX_VALIDATORS`
/// signatures (~25 KiB each); the service also stops a range early rather than exceed it.
pub const RESPONSE_SIZE_LIMIT: usize = 2 * 1024 * 1024;
pub const RESPONSE_TIME_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum HeadersRequest {
    /// The latest committed header and its commit.
    Latest,
    /// The header at `height` and its commit.
    At { height: Height },
    /// The validator set that signs the block at `height` (bound by its `validators_hash`).
    ValidatorSet { height: Height },
    /// Up to `count` consecutive signed headers from `from`; the answer may stop early at the
    /// chain head or at [`RESPONSE_SIZE_LIMIT`], never skips one.
    Range { from: Height, count: u32 },
    /// Where the tx with this hash was committed, with its bytes and inclusion proof against
    /// that block's `tx_root` (how a client learns that its tx landed).
    TxInclusion { hash: Hash },
}

/// A committed tx and the proof that it is leaf `proof.leaf_index` of block `height`'s tx tree.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxInclusion {
    pub height: Height,
    /// The tx's canonical bytes (the Merkle leaf).
    pub tx: Vec<u8>,
    pub proof: InclusionProof,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum HeadersResponse {
    Header(Box<SignedHeader>),
    ValidatorSet {
        height: Height,
        validators: ValidatorSet,
    },
    Range(Vec<SignedHeader>),
    TxInclusion(Box<TxInclusion>),
    Failed(ServiceError),
}

impl Message for HeadersRequest {
    const SIZE_LIMIT: usize = REQUEST_SIZE_LIMIT;
}

impl Message for HeadersResponse {
    const SIZE_LIMIT: usize = RESPONSE_SIZE_LIMIT;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_fits_its_limit() {
        let largest = HeadersRequest::Range {
            from: u64::MAX,
            count: u32::MAX,
        };
        assert!(largest.to_bytes().len() <= REQUEST_SIZE_LIMIT);
        assert_eq!(HeadersRequest::from_bytes(&largest.to_bytes()).unwrap(), largest);
    }

    #[test]
    fn oversized_and_trailing_bytes_are_refused() {
        let mut bytes = HeadersRequest::Latest.to_bytes();
        bytes.push(0);
        assert!(HeadersRequest::from_bytes(&bytes).is_err());
        assert!(HeadersRequest::from_bytes(&[0; REQUEST_SIZE_LIMIT + 1]).is_err());
        assert!(HeadersRequest::from_bytes(&[9]).is_err());
    }
}

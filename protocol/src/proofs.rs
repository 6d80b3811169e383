//! `/medledger/proofs/1`: the value under a state key at a committed height, with its
//! inclusion or non-inclusion proof against that height's `state_root` (DESIGN §2, §6).

use super::{Message, ServiceError};
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::header::Height;
use ledger::state::StateProof;
use std::time::Duration;

pub const PROTOCOL: &str = "/medledger/proofs/1";
/// Longest state key asked about; ledger keys are a namespace and at most 72 bytes of ids.
pub const MAX_KEY_LEN: usize = 256;
pub const REQUEST_SIZE_LIMIT: usize = MAX_KEY_LEN + 64;
/// A Jellyfish proof is at most 256 siblings of 32 bytes plus a leaf; state values are small
/// records (each written by one tx of at most `ledger::tx::MAX_TX_BYTES`).
pub const RESPONSE_SIZE_LIMIT: usize = 128 * 1024;
pub const RESPONSE_TIME_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ProofRequest {
    pub key: Vec<u8>,
    pub height: Height,
}

#[derive(Clone, Debug, PartialEq, BorshSerialize, BorshDeserialize)]
pub enum ProofResponse {
    /// `value` is `None` when the key is absent; `proof` shows either case.
    Value {
        height: Height,
        value: Option<Vec<u8>>,
        proof: StateProof,
    },
    Failed(ServiceError),
}

impl Message for ProofRequest {
    const SIZE_LIMIT: usize = REQUEST_SIZE_LIMIT;
}

impl Message for ProofResponse {
    const SIZE_LIMIT: usize = RESPONSE_SIZE_LIMIT;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_key_fits_the_request_limit() {
        let request = ProofRequest {
            key: vec![7; MAX_KEY_LEN],
            height: u64::MAX,
        };
        assert!(request.to_bytes().len() <= REQUEST_SIZE_LIMIT);
        assert_eq!(ProofRequest::from_bytes(&request.to_bytes()).unwrap(), request);
    }

    #[test]
    fn a_huge_length_prefix_is_refused_without_allocating() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 1, 2, 3];
        assert!(ProofRequest::from_bytes(&bytes).is_err());
    }
}

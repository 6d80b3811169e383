//! Block headers and commits (DESIGN §2).
//!
//! The commit is what a Malachite commit certificate carries: height, round, block id and
//! (validator address, signature) pairs over the precommit. The precommit's signed bytes
//! are defined once, here, by [`precommit_sign_bytes`]: the validator node signs exactly
//! these bytes and the light client recomputes them from a header and a commit alone.

use crate::codec::encode;
use crate::crypto::{sha256, Address, Hash, Signature};
use crate::types::TimeMs;
use borsh::{BorshDeserialize, BorshSerialize};

pub type Height = u64;
pub type Round = u32;

/// Identifies a block: SHA-256 of its header's canonical encoding. Also the consensus value id.
pub type BlockId = Hash;

/// Longest chain id accepted anywhere.
pub const MAX_CHAIN_ID_LEN: usize = 50;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Header {
    pub chain_id: String,
    pub height: Height,
    /// Block time in ms, chosen by the proposer; the only clock the state machine sees.
    pub time: TimeMs,
    /// Id of the block at `height - 1` (zero for the first block).
    pub last_block_id: BlockId,
    /// RFC 6962 root over this block's txs.
    pub tx_root: Hash,
    /// State root after applying this block.
    pub state_root: Hash,
    /// Hash of the set that signs this block.
    pub validators_hash: Hash,
    /// Hash of the set that signs the next block.
    pub next_validators_hash: Hash,
    pub proposer: Address,
}

impl Header {
    pub fn id(&self) -> BlockId {
        sha256(&encode(self))
    }
}

/// One validator's precommit signature in a commit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CommitSignature {
    pub validator: Address,
    pub signature: Signature,
}

/// Finality certificate for one block.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Commit {
    pub height: Height,
    pub round: Round,
    pub block_id: BlockId,
    pub signatures: Vec<CommitSignature>,
}

/// Domain tag of precommit sign bytes; keeps them from ever being a valid tx or other message.
pub const PRECOMMIT_DOMAIN: &[u8] = b"medledger/precommit/v1";

/// The bytes a validator signs to precommit `block_id` at (`height`, `round`) on `chain_id`:
/// `domain ‖ u8 len(chain_id) ‖ chain_id ‖ height (u64 BE) ‖ round (u32 BE) ‖ block_id`.
pub fn precommit_sign_bytes(chain_id: &str, height: Height, round: Round, block_id: &BlockId) -> Vec<u8> {
    let chain = chain_id.as_bytes();
    let chain_len = chain.len().min(MAX_CHAIN_ID_LEN);
    let mut out = Vec::with_capacity(PRECOMMIT_DOMAIN.len() + 1 + chain_len + 8 + 4 + 32);
    out.extend_from_slice(PRECOMMIT_DOMAIN);
    out.push(chain_len as u8);
    out.extend_from_slice(&chain[..chain_len]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&round.to_be_bytes());
    out.extend_from_slice(&block_id.0);
    out
}

/// A block: its header and its txs as canonical bytes (the leaves of `tx_root`).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Block {
    pub header: Header,
    pub txs: Vec<Vec<u8>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precommit_layout_is_fixed() {
        let bytes = precommit_sign_bytes("medledger-1", 0x0102, 3, &Hash([9; 32]));
        let mut expected = b"medledger/precommit/v1".to_vec();
        expected.push(11);
        expected.extend_from_slice(b"medledger-1");
        expected.extend_from_slice(&[0, 0, 0, 0, 0, 0, 1, 2]);
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(&[9; 32]);
        assert_eq!(bytes, expected);
    }

    #[test]
    fn chain_id_cannot_shift_fields() {
        // Length prefix: "ab" + height 1 differs from "a" + a height starting with 'b'.
        let a = precommit_sign_bytes("ab", 1, 0, &Hash::ZERO);
        let b = precommit_sign_bytes("a", u64::from_be_bytes(*b"b\0\0\0\0\0\0\0"), 0, &Hash::ZERO);
        assert_ne!(a, b);
    }
}

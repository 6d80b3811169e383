//! Medledger's light-client wire protocols (DESIGN §5), shared by the relay that answers them
//! and the light client that asks: versioned names, borsh messages, and a named size and time
//! limit for every message, in the style of lumina's `header_ex`
//! (`REQUEST_SIZE_LIMIT`, `RESPONSE_SIZE_LIMIT`, `RESPONSE_TIME_LIMIT`).
//!
//! Each module is one protocol: [`headers`] (headers, commits, validator sets, ranges),
//! [`proofs`] (state value + proof), [`txs`] (tx submission), [`blobs`] (blob put/get) and
//! [`heads`] (the gossipsub topic of new finalized heads). The messages are defined here,
//! independent of any transport; the relay's `LightClientService` and `BlobService` answer
//! them, and [`codec`] (libp2p request-response, length-prefixed frames) only has to frame
//! bytes; [`Message::from_bytes`] enforces each message's limit. Builds for wasm32.
//!
//! # Security considerations
//! Every decoder is bounded before it parses ([`ledger::codec::decode_limited`]), refuses
//! trailing bytes, and never panics on input. A relay can lie in its answers; light clients
//! check headers against commits and values against proofs, so a lying relay can withhold
//! data but not make a client accept false data.

pub mod blobs;
pub mod codec;
pub mod headers;
pub mod heads;
pub mod proofs;
pub mod txs;

use borsh::{BorshDeserialize, BorshSerialize};
use ledger::codec::{decode_limited, encode, CodecError};
use ledger::header::{Commit, Header};

/// A header with the commit that finalizes it: what a light client verifies (DESIGN §6).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedHeader {
    pub header: Header,
    pub commit: Commit,
}

/// Longest free-text reason a response carries (error messages are for people and logs).
pub const MAX_REASON_LEN: usize = 512;

/// Why the relay could not answer a request. Peer faults ([`ServiceError::is_peer_fault`])
/// are kept apart from the relay's own failures, so the transport knows whom to score down.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, BorshSerialize, BorshDeserialize)]
pub enum ServiceError {
    /// The relay has no block at this height (not yet committed, or before the first block).
    #[error("no block at height {height} (latest is {latest})")]
    NotFound { height: u64, latest: u64 },
    /// No committed tx has this hash (it may still be in a mempool, or was never sent).
    #[error("no committed tx {hash}")]
    UnknownTx { hash: ledger::crypto::Hash },
    /// A range request asked for more headers than one response may carry.
    #[error("range of {count} headers exceeds the limit of {max}")]
    RangeTooLarge { count: u32, max: u32 },
    /// A state key longer than any key the ledger uses.
    #[error("state key of {len} bytes exceeds the limit of {max}")]
    KeyTooLarge { len: u32, max: u32 },
    /// The request bytes did not decode.
    #[error("malformed request: {reason}")]
    Malformed { reason: String },
    /// The relay failed (storage, a task gone): not the peer's fault; try again or elsewhere.
    #[error("relay unavailable: {reason}")]
    Unavailable { reason: String },
}

impl ServiceError {
    /// `true` when the request itself was bad (the transport may score the peer down).
    pub fn is_peer_fault(&self) -> bool {
        match self {
            ServiceError::RangeTooLarge { .. }
            | ServiceError::KeyTooLarge { .. }
            | ServiceError::Malformed { .. } => true,
            ServiceError::NotFound { .. }
            | ServiceError::UnknownTx { .. }
            | ServiceError::Unavailable { .. } => false,
        }
    }

    pub fn unavailable(error: impl std::fmt::Display) -> Self {
        ServiceError::Unavailable {
            reason: truncate_reason(error.to_string()),
        }
    }
}

/// Cuts a reason to [`MAX_REASON_LEN`] bytes (on a char boundary) so it fits its message.
pub fn truncate_reason(mut reason: String) -> String {
    if reason.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
    }
    reason
}

/// A message of one protocol with its size limit: the libp2p codecs are generic over this.
pub trait Message: BorshSerialize + BorshDeserialize {
    /// Largest encoding accepted (the protocol's `REQUEST_SIZE_LIMIT` or `RESPONSE_SIZE_LIMIT`).
    const SIZE_LIMIT: usize;

    fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes exactly one message, refusing more than [`Message::SIZE_LIMIT`] bytes before parsing.
    fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        decode_limited(bytes, Self::SIZE_LIMIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_cut_on_char_boundaries() {
        let long = "é".repeat(MAX_REASON_LEN);
        let cut = truncate_reason(long);
        assert!(cut.len() <= MAX_REASON_LEN);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncate_reason("short".into()), "short");
    }

    #[test]
    fn peer_faults_are_told_apart_from_relay_failures() {
        assert!(ServiceError::RangeTooLarge { count: 9, max: 1 }.is_peer_fault());
        assert!(!ServiceError::unavailable("disk").is_peer_fault());
        assert!(!ServiceError::NotFound { height: 9, latest: 1 }.is_peer_fault());
    }
}

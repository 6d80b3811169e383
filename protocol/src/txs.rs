//! `/medledger/txs/1`: tx submission, answered with the node's accept or reject reason.

use super::Message;
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::Hash;
use ledger::tx::MAX_TX_BYTES;
use std::time::Duration;

pub const PROTOCOL: &str = "/medledger/txs/1";
/// One tx (canonical bytes) and its length prefix.
pub const REQUEST_SIZE_LIMIT: usize = MAX_TX_BYTES + 16;
pub const RESPONSE_SIZE_LIMIT: usize = 1024;
pub const RESPONSE_TIME_LIMIT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SubmitTx {
    /// The tx's canonical bytes (`ledger::Tx::to_bytes`).
    pub tx: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum SubmitTxResponse {
    /// Admitted to the mempool (and forwarded to the validators); not yet committed.
    Accepted { hash: Hash },
    /// The mempool's reason (`node::mempool::Rejected`), at most `MAX_REASON_LEN` bytes.
    Rejected { reason: String },
}

impl Message for SubmitTx {
    const SIZE_LIMIT: usize = REQUEST_SIZE_LIMIT;
}

impl Message for SubmitTxResponse {
    const SIZE_LIMIT: usize = RESPONSE_SIZE_LIMIT;
}

#[cfg(test)]
mod tests {
    use super::super::MAX_REASON_LEN;
    use super::*;

    #[test]
    fn limits_fit_the_largest_messages() {
        let request = SubmitTx {
            tx: vec![1; MAX_TX_BYTES],
        };
        assert_eq!(SubmitTx::from_bytes(&request.to_bytes()).unwrap(), request);
        let response = SubmitTxResponse::Rejected {
            reason: "x".repeat(MAX_REASON_LEN),
        };
        assert!(response.to_bytes().len() <= RESPONSE_SIZE_LIMIT);
    }
}

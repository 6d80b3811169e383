//! Where the light client gets untrusted chain data: one relay (or a test double that lies).
//! Everything a [`ChainSource`] returns is checked by the caller; implementations only move
//! bytes and map the wire answers to these calls.

use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::state::StateProof;
use ledger::ValidatorSet;
use protocol::headers::TxInclusion;
use protocol::SignedHeader;

/// Why a relay could not answer. `Misbehaved` is an answer no honest relay gives (a wrong
/// response kind, a height other than asked, an undecodable frame).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// The relay does not have it (yet): a height above its head, an unknown tx.
    #[error("not found: {0}")]
    NotFound(String),
    /// Could not reach the relay, or it timed out or failed on its side.
    #[error("unreachable: {0}")]
    Unreachable(String),
    #[error("misbehaved: {0}")]
    Misbehaved(String),
}

/// A relay as the light client sees it. Futures are not `Send` so the browser's
/// single-threaded transport can implement it.
#[allow(async_fn_in_trait)]
pub trait ChainSource {
    /// A short name for logs and errors (its multiaddr or test label).
    fn label(&self) -> String;
    /// The relay's newest header with its commit.
    async fn latest(&self) -> Result<SignedHeader, SourceError>;
    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError>;
    /// The set that signs the block at `height`.
    async fn validator_set(&self, height: Height) -> Result<ValidatorSet, SourceError>;
    /// The value under `key` after block `height`, with its proof against that block's state root.
    async fn state_value(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), SourceError>;
    /// Where a tx was committed (`None`: not committed, as far as this relay knows).
    async fn tx_inclusion(&self, hash: Hash) -> Result<Option<TxInclusion>, SourceError>;
    /// Sends a tx's canonical bytes; `Err(reason)` is the mempool's rejection.
    async fn submit_tx(&self, tx: Vec<u8>) -> Result<Result<Hash, String>, SourceError>;
}

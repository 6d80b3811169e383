//! What can go wrong while verifying. Every variant that blames a relay names it, so the app
//! can say which relay lied; none of them changes the client's trusted state.

use crate::source::SourceError;
use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::state::StateProofError;
use ledger::types::TimeMs;
use ledger::verify::VerifyError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LightClientError {
    /// The newest trusted header is older than the trusting period: the validators that signed
    /// it may have unbonded, so nothing can be verified from it. Pin a recent header instead.
    #[error(
        "trust root at height {height} expired at {expires_at} ms (now {now} ms): pin a recent header hash"
    )]
    TrustExpired {
        height: Height,
        expires_at: TimeMs,
        now: TimeMs,
    },
    /// The relay's header at the pinned height is not the one the user pinned.
    #[error("{relay} has header {got} at height {height}, but {expected} was pinned")]
    PinMismatch {
        relay: String,
        height: Height,
        expected: Hash,
        got: Hash,
    },
    /// A header (or its commit) failed the light-client predicates.
    #[error("header {height} from {relay} is invalid: {error}")]
    InvalidHeader {
        relay: String,
        height: Height,
        error: VerifyError,
    },
    /// A validator set that does not hash to what the header announced.
    #[error("{relay} sent a validator set for height {height} that does not match the header's hash")]
    ValidatorSetMismatch { relay: String, height: Height },
    /// The relay answered with another height than asked.
    #[error("{relay} answered height {got} when asked for {asked}")]
    WrongHeight {
        relay: String,
        asked: Height,
        got: Height,
    },
    /// A header at or below the trusted head, offered as new (a replay, or a late gossip).
    #[error("header {height} is not newer than the trusted head {trusted}")]
    Stale { height: Height, trusted: Height },
    /// Two valid headers at one height: the client stopped trusting new headers.
    #[error("fork at height {height}: {first_relay} and {second_relay} serve different valid headers")]
    ForkDetected {
        height: Height,
        first_relay: String,
        second_relay: String,
    },
    /// A state answer whose proof does not verify against the trusted state root.
    #[error("proof from {relay} at height {height} does not verify: {error}")]
    BadProof {
        relay: String,
        height: Height,
        error: StateProofError,
    },
    /// A proven state value that does not decode as the record its key holds.
    #[error("state value under {key} does not decode")]
    CorruptValue { key: String },
    /// A tx inclusion answer that does not prove what it claims.
    #[error("inclusion proof for tx {hash} from {relay} does not verify: {reason}")]
    BadInclusion {
        relay: String,
        hash: Hash,
        reason: String,
    },
    #[error("tx rejected: {reason}")]
    TxRejected { reason: String },
    #[error("tx {hash} not included after {waited_ms} ms")]
    TxTimeout { hash: Hash, waited_ms: u64 },
    /// Verifying a height below the oldest trusted header would need backwards verification.
    #[error("height {height} is below the trusted window (oldest trusted {oldest})")]
    BelowTrustedWindow { height: Height, oldest: Height },
    /// The chain answering is not the one the client trusts.
    #[error("{relay} serves chain {got}, expected {expected}")]
    WrongChain {
        relay: String,
        expected: String,
        got: String,
    },
    #[error("relay {relay}: {error}")]
    Source { relay: String, error: SourceError },
    #[error("trust store: {0}")]
    Store(String),
    #[error("no relay to talk to")]
    NoRelay,
}

impl LightClientError {
    /// `true` when the error proves that the relay lied (as opposed to being slow or behind).
    pub fn blames_relay(&self) -> bool {
        matches!(
            self,
            LightClientError::InvalidHeader { .. }
                | LightClientError::ValidatorSetMismatch { .. }
                | LightClientError::WrongHeight { .. }
                | LightClientError::BadProof { .. }
                | LightClientError::BadInclusion { .. }
                | LightClientError::WrongChain { .. }
                | LightClientError::PinMismatch { .. }
                | LightClientError::Source {
                    error: SourceError::Misbehaved(_),
                    ..
                }
        )
    }
}

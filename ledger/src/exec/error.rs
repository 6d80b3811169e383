use crate::access::AccessDenied;
use crate::codec::CodecError;
use crate::crypto::{Address, PublicKey, SignatureError};
use crate::state::CorruptState;
use crate::types::{Amount, Cid, LoincCode, RecordId, Role, TimeMs, ValueError};
use crate::validators::ValidatorSetError;

/// Why a tx was rejected. The tx changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    #[error("tx of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("malformed tx: {0}")]
    Malformed(CodecError),
    #[error("tx is for chain {got:?}, this is {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("bad signature: {0}")]
    BadSignature(#[from] SignatureError),
    #[error("nonce {got} from {signer:?}, expected {expected} (replayed or out of order)")]
    NonceMismatch {
        signer: PublicKey,
        expected: u64,
        got: u64,
    },
    #[error("{0:?} is not a registered account")]
    UnknownAccount(Address),
    #[error("{0:?} already has an account")]
    AlreadyRegistered(Address),
    #[error("{account:?} is a {got:?}, this needs a {expected:?}")]
    WrongRole {
        account: Address,
        expected: Role,
        got: Role,
    },
    #[error("{0:?} is not the governance key")]
    NotGovernance(PublicKey),
    #[error("organisation {0:?} is not admitted")]
    OrganisationNotAdmitted(Address),
    #[error("organisation {0:?} is already admitted")]
    AlreadyAdmitted(Address),
    #[error("clinician {0:?} is not attested by an admitted organisation")]
    NotAttested(Address),
    #[error("{0:?} is not a registered device")]
    UnknownDevice(PublicKey),
    #[error("device {0:?} is already registered")]
    DeviceAlreadyRegistered(PublicKey),
    #[error("device {0:?} was revoked")]
    DeviceRevoked(PublicKey),
    #[error("device {device:?} belongs to {owner:?}, not {claimed:?}")]
    DeviceNotOwned {
        device: PublicKey,
        owner: Address,
        claimed: Address,
    },
    #[error("device {device:?} is not registered for {code}")]
    DeviceCodeNotRegistered { device: PublicKey, code: LoincCode },
    #[error("{signer:?} may not act for patient {patient:?}")]
    NotPatientsKey { signer: PublicKey, patient: Address },
    #[error("blob {0:?} is already committed")]
    DuplicateCid(Cid),
    #[error("unknown {kind} {id:?}")]
    UnknownRecord { kind: &'static str, id: RecordId },
    #[error("invalid value: {0}")]
    InvalidValue(#[from] ValueError),
    #[error("invalid terms: {0}")]
    InvalidTerms(&'static str),
    #[error("consent {0:?} is already revoked")]
    ConsentAlreadyRevoked(RecordId),
    #[error("break-glass for {requested_ms} ms exceeds the limit of {max_ms} ms")]
    BreakGlassTooLong { requested_ms: u64, max_ms: u64 },
    #[error("access denied: {0}")]
    AccessDenied(#[from] AccessDenied),
    #[error("access request time {request_time} is outside the window around block time {block_time}")]
    AccessRequestStale {
        request_time: TimeMs,
        block_time: TimeMs,
    },
    #[error("access request {0:?} is already recorded")]
    AccessAlreadyRecorded(RecordId),
    #[error("request names blob {requested:?} but the commitment holds {committed:?}")]
    CidMismatch { requested: Cid, committed: Cid },
    #[error("commitment {0:?} is already erased")]
    AlreadyErased(RecordId),
    #[error("{account:?} holds {balance}, needs {needed}")]
    InsufficientBalance {
        account: Address,
        balance: Amount,
        needed: Amount,
    },
    #[error("amount must be positive")]
    ZeroAmount,
    #[error("study {study:?} has {remaining} in escrow, reward is {reward}")]
    EscrowExhausted {
        study: RecordId,
        remaining: Amount,
        reward: Amount,
    },
    #[error("{patient:?} was already paid by study {study:?}")]
    AlreadyPaid { study: RecordId, patient: Address },
    #[error("{patient:?} already joined study {study:?}")]
    AlreadyJoined { study: RecordId, patient: Address },
    #[error("{patient:?} has not joined study {study:?}")]
    NotParticipant { study: RecordId, patient: Address },
    #[error("study {0:?} is closed")]
    StudyClosed(RecordId),
    #[error("study criteria not met: {0}")]
    CriteriaNotMet(&'static str),
    #[error("validator update: {0}")]
    ValidatorSet(#[from] ValidatorSetError),
    #[error("balance overflow")]
    Overflow,
    #[error(transparent)]
    Corrupt(#[from] CorruptState),
}

/// Why a whole block was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block has {count} txs, at most {limit} allowed")]
    TooManyTxs { count: usize, limit: usize },
    #[error("block has {size} tx bytes, at most {limit} allowed")]
    TooLarge { size: usize, limit: usize },
    #[error("tx {index} is invalid: {error}")]
    Tx { index: usize, error: TxError },
    #[error("state holds no validator set")]
    MissingValidators,
    #[error(transparent)]
    Corrupt(#[from] CorruptState),
}

//! Light-client verification predicates (DESIGN §2 commit, §6), as pure functions.
//!
//! Each rule is one small function returning a named [`VerifyError`]; [`verify_sequential`]
//! and [`verify_skipping`] compose them in the order of DESIGN §6. The result is a
//! [`Verdict`] that keeps "invalid" apart from "not enough trust yet", so the light client
//! knows when to bisect instead of giving up.
//!
//! # Security considerations
//! A relay may send anything. It cannot make a header verify unless validators holding more
//! than 2/3 of the power of the header's own set (bound by `validators_hash`) signed it, and,
//! when skipping, unless signers holding > 1/3 of the trusted set's power are among them:
//! at least one honest trusted validator vouches for the new set (the standard Tendermint
//! light-client assumption, valid within the trusting period). Voting power is summed,
//! never signatures counted; unknown and duplicate signers are errors, not ignored.

use crate::crypto::{verify_signature, Hash, PublicKey, SignatureBatch};
use crate::header::{precommit_sign_bytes, Commit, Header, Height};
use crate::types::TimeMs;
use crate::validators::{ValidatorSet, ValidatorSetError, VotingPower};
use std::fmt;

/// Parameters of trust (DESIGN §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrustOptions {
    /// How long a verified header may be trusted as a base for new headers.
    pub trusting_period_ms: u64,
    /// How far in the future a header's time may be, against the verifier's clock.
    pub max_clock_drift_ms: u64,
}

impl Default for TrustOptions {
    fn default() -> Self {
        TrustOptions {
            trusting_period_ms: 14 * 24 * 3_600_000,
            max_clock_drift_ms: 10_000,
        }
    }
}

/// How much power signed, out of how much.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VotingPowerTally {
    pub signed: VotingPower,
    pub total: VotingPower,
}

impl VotingPowerTally {
    /// `signed > numerator/denominator · total`, without overflow (total ≤ u64::MAX / 8).
    pub fn exceeds(&self, numerator: u64, denominator: u64) -> bool {
        u128::from(self.signed) * u128::from(denominator) > u128::from(self.total) * u128::from(numerator)
    }
}

impl fmt::Display for VotingPowerTally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{} voting power", self.signed, self.total)
    }
}

/// Why a header or commit is invalid. Every variant means the peer that sent it lied or
/// sent garbage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("header is for chain {got:?}, expected {expected:?}")]
    ChainIdMismatch { expected: String, got: String },
    #[error("commit is for height {commit_height}, header is at {header_height}")]
    CommitHeightMismatch {
        commit_height: Height,
        header_height: Height,
    },
    #[error("commit signs block {commit_block_id}, header hashes to {header_block_id}")]
    CommitBlockIdMismatch {
        commit_block_id: Hash,
        header_block_id: Hash,
    },
    #[error("validator set hashes to {validators_hash}, header binds {header_validators_hash}")]
    ValidatorsHashMismatch {
        header_validators_hash: Hash,
        validators_hash: Hash,
    },
    #[error("header's validators {untrusted_validators_hash} are not the trusted next validators {trusted_next_validators_hash}")]
    NextValidatorsMismatch {
        trusted_next_validators_hash: Hash,
        untrusted_validators_hash: Hash,
    },
    #[error("malformed validator set: {0}")]
    MalformedValidatorSet(#[from] ValidatorSetError),
    #[error("signer {0:?} is not in the validator set")]
    UnknownSigner(PublicKey),
    #[error("signer {0:?} appears twice in the commit")]
    DuplicateSigner(PublicKey),
    #[error("commit has {count} signatures for a set of {set_size}")]
    TooManySignatures { count: usize, set_size: usize },
    #[error("invalid precommit signature by {validator:?}")]
    BadSignature { validator: PublicKey },
    #[error("signers hold only {0}, more than 2/3 is needed")]
    InsufficientVotingPower(VotingPowerTally),
    #[error("expected height {expected}, got {got}")]
    NonIncreasingHeight { got: Height, expected: Height },
    #[error("header at {untrusted_height} does not follow the trusted header at {trusted_height}")]
    NotAdjacent {
        trusted_height: Height,
        untrusted_height: Height,
    },
    #[error("header's last block id {got} is not the trusted block id {expected}")]
    LastBlockIdMismatch { expected: Hash, got: Hash },
    #[error("header time {untrusted_time} is not after trusted time {trusted_time}")]
    NonMonotonicTime {
        untrusted_time: TimeMs,
        trusted_time: TimeMs,
    },
    #[error("header time {header_time} is ahead of now {now} by more than {max_drift_ms} ms")]
    HeaderFromFuture {
        header_time: TimeMs,
        now: TimeMs,
        max_drift_ms: u64,
    },
    #[error("trusted header from {trusted_time} expired at {expires_at} (now {now})")]
    TrustExpired {
        trusted_time: TimeMs,
        expires_at: TimeMs,
        now: TimeMs,
    },
}

/// The outcome of checking a header against a trusted one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Success,
    /// Valid, but the trusted set's signers hold too little power to skip to it: bisect.
    NotEnoughTrust(VotingPowerTally),
    Invalid(VerifyError),
}

impl From<VerifyError> for Verdict {
    fn from(e: VerifyError) -> Self {
        Verdict::Invalid(e)
    }
}

/// How many precommit signatures to check cryptographically.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureCheck {
    /// Every signature in the commit (validators, relays storing commits).
    All,
    /// Only as many as needed to pass the power thresholds (light clients; the others cannot
    /// lower the proven power). Membership and duplicates are still checked for all.
    UntilThreshold,
}

/// A verified header and the set that signs the next one: what a light client trusts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedBlock {
    pub header: Header,
    pub next_validators: ValidatorSet,
}

// ---- predicates -------------------------------------------------------------------------

pub fn chain_id_matches(expected: &str, header: &Header) -> Result<(), VerifyError> {
    if header.chain_id != expected {
        return Err(VerifyError::ChainIdMismatch {
            expected: expected.to_owned(),
            got: header.chain_id.clone(),
        });
    }
    Ok(())
}

pub fn validators_hash_matches(
    header_validators_hash: &Hash,
    validators: &ValidatorSet,
) -> Result<(), VerifyError> {
    validators.validate()?;
    let validators_hash = validators.hash();
    if validators_hash != *header_validators_hash {
        return Err(VerifyError::ValidatorsHashMismatch {
            header_validators_hash: *header_validators_hash,
            validators_hash,
        });
    }
    Ok(())
}

pub fn commit_matches_header(header: &Header, commit: &Commit) -> Result<(), VerifyError> {
    if commit.height != header.height {
        return Err(VerifyError::CommitHeightMismatch {
            commit_height: commit.height,
            header_height: header.height,
        });
    }
    let header_block_id = header.id();
    if commit.block_id != header_block_id {
        return Err(VerifyError::CommitBlockIdMismatch {
            commit_block_id: commit.block_id,
            header_block_id,
        });
    }
    Ok(())
}

pub fn is_within_trust_period(
    trusted_time: TimeMs,
    trusting_period_ms: u64,
    now: TimeMs,
) -> Result<(), VerifyError> {
    let expires_at = trusted_time.saturating_add(trusting_period_ms);
    if now >= expires_at {
        return Err(VerifyError::TrustExpired {
            trusted_time,
            expires_at,
            now,
        });
    }
    Ok(())
}

pub fn is_not_from_future(header_time: TimeMs, now: TimeMs, max_drift_ms: u64) -> Result<(), VerifyError> {
    if header_time > now.saturating_add(max_drift_ms) {
        return Err(VerifyError::HeaderFromFuture {
            header_time,
            now,
            max_drift_ms,
        });
    }
    Ok(())
}

pub fn is_monotonic_time(untrusted_time: TimeMs, trusted_time: TimeMs) -> Result<(), VerifyError> {
    if untrusted_time <= trusted_time {
        return Err(VerifyError::NonMonotonicTime {
            untrusted_time,
            trusted_time,
        });
    }
    Ok(())
}

pub fn is_monotonic_height(untrusted_height: Height, trusted_height: Height) -> Result<(), VerifyError> {
    if untrusted_height <= trusted_height {
        return Err(VerifyError::NonIncreasingHeight {
            got: untrusted_height,
            expected: trusted_height.saturating_add(1),
        });
    }
    Ok(())
}

// ---- commit signatures ------------------------------------------------------------------

/// Power of the verified signers in the commit's own set and in a second (trusted) set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitTally {
    pub untrusted: VotingPowerTally,
    pub trusted: Option<VotingPowerTally>,
}

/// Checks signer membership and uniqueness for all entries, then verifies signatures in
/// one batch and sums power. With [`SignatureCheck::UntilThreshold`] only a prefix of
/// signers large enough for > 2/3 of `validators` (and > 1/3 of `trusted`, if given) is
/// verified.
pub fn tally_commit(
    chain_id: &str,
    commit: &Commit,
    validators: &ValidatorSet,
    trusted: Option<&ValidatorSet>,
    check: SignatureCheck,
) -> Result<CommitTally, VerifyError> {
    // Callers normally validated the set already (validators_hash_matches); a public entry
    // point must not trust that, or power sums could overflow.
    validators.validate()?;
    if let Some(set) = trusted {
        set.validate()?;
    }
    if commit.signatures.len() > validators.len() {
        return Err(VerifyError::TooManySignatures {
            count: commit.signatures.len(),
            set_size: validators.len(),
        });
    }
    // Membership and duplicates for every entry: a lying relay is caught even on entries we
    // would not need to verify.
    let mut seen = vec![false; validators.len()];
    let mut powers = Vec::with_capacity(commit.signatures.len());
    for sig in &commit.signatures {
        let index = validators
            .index_of(&sig.validator)
            .ok_or(VerifyError::UnknownSigner(sig.validator))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(VerifyError::DuplicateSigner(sig.validator));
        }
        powers.push(validators.validators()[index].power);
    }

    let message = precommit_sign_bytes(chain_id, commit.height, commit.round, &commit.block_id);
    let total = validators.total_power();
    let trusted_total = trusted.map(|t| t.total_power());
    let mut untrusted = VotingPowerTally { signed: 0, total };
    let mut trusted_tally = trusted_total.map(|total| VotingPowerTally { signed: 0, total });
    let mut batch = SignatureBatch::new();
    let mut queued = Vec::with_capacity(commit.signatures.len());
    for (sig, power) in commit.signatures.iter().zip(powers) {
        if check == SignatureCheck::UntilThreshold
            && untrusted.exceeds(2, 3)
            && trusted_tally.is_none_or(|t| t.exceeds(1, 3))
        {
            break;
        }
        batch.queue(&sig.validator, &message, &sig.signature);
        queued.push(sig);
        untrusted.signed += power;
        if let (Some(tally), Some(set)) = (trusted_tally.as_mut(), trusted) {
            tally.signed += set.get(&sig.validator).map_or(0, |v| v.power);
        }
    }
    if batch.verify().is_err() {
        // Name the culprit: a peer that sent a bad signature gets reported precisely.
        for sig in queued {
            verify_signature(&sig.validator, &message, &sig.signature).map_err(|_| {
                VerifyError::BadSignature {
                    validator: sig.validator,
                }
            })?;
        }
    }
    Ok(CommitTally {
        untrusted,
        trusted: trusted_tally,
    })
}

/// A header is final when its commit is valid and its signers hold > 2/3 of its set's power.
/// This is the check every validator and relay runs on every block (all signatures).
pub fn verify_commit(
    chain_id: &str,
    header: &Header,
    commit: &Commit,
    validators: &ValidatorSet,
) -> Result<VotingPowerTally, VerifyError> {
    verify_commit_with(chain_id, header, commit, validators, SignatureCheck::All)
}

pub fn verify_commit_with(
    chain_id: &str,
    header: &Header,
    commit: &Commit,
    validators: &ValidatorSet,
    check: SignatureCheck,
) -> Result<VotingPowerTally, VerifyError> {
    chain_id_matches(chain_id, header)?;
    validators_hash_matches(&header.validators_hash, validators)?;
    commit_matches_header(header, commit)?;
    let tally = tally_commit(chain_id, commit, validators, None, check)?.untrusted;
    if !tally.exceeds(2, 3) {
        return Err(VerifyError::InsufficientVotingPower(tally));
    }
    Ok(tally)
}

fn check_trust_and_time(
    trusted: &TrustedBlock,
    untrusted: &Header,
    options: &TrustOptions,
    now: TimeMs,
) -> Result<(), VerifyError> {
    is_within_trust_period(trusted.header.time, options.trusting_period_ms, now)?;
    is_not_from_future(untrusted.time, now, options.max_clock_drift_ms)?;
    is_monotonic_height(untrusted.height, trusted.header.height)?;
    is_monotonic_time(untrusted.time, trusted.header.time)
}

/// Verifies the header right after the trusted one (DESIGN §6 sequential).
pub fn verify_sequential(
    trusted: &TrustedBlock,
    untrusted: &Header,
    commit: &Commit,
    untrusted_validators: &ValidatorSet,
    options: &TrustOptions,
    now: TimeMs,
    check: SignatureCheck,
) -> Verdict {
    let run = || -> Result<(), VerifyError> {
        chain_id_matches(&trusted.header.chain_id, untrusted)?;
        check_trust_and_time(trusted, untrusted, options, now)?;
        if untrusted.height != trusted.header.height.saturating_add(1) {
            return Err(VerifyError::NotAdjacent {
                trusted_height: trusted.header.height,
                untrusted_height: untrusted.height,
            });
        }
        let trusted_id = trusted.header.id();
        if untrusted.last_block_id != trusted_id {
            return Err(VerifyError::LastBlockIdMismatch {
                expected: trusted_id,
                got: untrusted.last_block_id,
            });
        }
        // The trusted header announced who signs next; the new header must be signed by them.
        let trusted_next_validators_hash = trusted.header.next_validators_hash;
        if untrusted.validators_hash != trusted_next_validators_hash {
            return Err(VerifyError::NextValidatorsMismatch {
                trusted_next_validators_hash,
                untrusted_validators_hash: untrusted.validators_hash,
            });
        }
        verify_commit_with(
            &trusted.header.chain_id,
            untrusted,
            commit,
            untrusted_validators,
            check,
        )
        .map(|_| ())
    };
    match run() {
        Ok(()) => Verdict::Success,
        Err(e) => Verdict::Invalid(e),
    }
}

/// Verifies a header any height above the trusted one (DESIGN §6 skipping): its own set's
/// signers must hold > 2/3, and among them signers holding > 1/3 of the trusted next set.
/// Falls back to the sequential rules when the header is adjacent.
pub fn verify_skipping(
    trusted: &TrustedBlock,
    untrusted: &Header,
    commit: &Commit,
    untrusted_validators: &ValidatorSet,
    options: &TrustOptions,
    now: TimeMs,
    check: SignatureCheck,
) -> Verdict {
    if untrusted.height == trusted.header.height.saturating_add(1) {
        return verify_sequential(
            trusted,
            untrusted,
            commit,
            untrusted_validators,
            options,
            now,
            check,
        );
    }
    let chain_id = trusted.header.chain_id.as_str();
    let run = || -> Result<CommitTally, VerifyError> {
        chain_id_matches(chain_id, untrusted)?;
        check_trust_and_time(trusted, untrusted, options, now)?;
        validators_hash_matches(&untrusted.validators_hash, untrusted_validators)?;
        commit_matches_header(untrusted, commit)?;
        tally_commit(
            chain_id,
            commit,
            untrusted_validators,
            Some(&trusted.next_validators),
            check,
        )
    };
    match run() {
        Err(e) => Verdict::Invalid(e),
        Ok(tally) if !tally.untrusted.exceeds(2, 3) => {
            Verdict::Invalid(VerifyError::InsufficientVotingPower(tally.untrusted))
        }
        Ok(CommitTally { trusted: Some(t), .. }) if !t.exceeds(1, 3) => Verdict::NotEnoughTrust(t),
        Ok(_) => Verdict::Success,
    }
}

//! The client's trust: a bounded window of verified headers, each with the set that signed
//! it, plus fork evidence. Pure data and rules; no I/O. [`crate::LightClient`] fills it from
//! relays and persists it as a [`TrustSnapshot`].

use crate::LightClientError;
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::Hash;
use ledger::genesis::Genesis;
use ledger::header::Height;
use ledger::types::TimeMs;
use ledger::verify::TrustOptions;
use ledger::ValidatorSet;
use protocol::SignedHeader;
use std::collections::BTreeMap;

/// How many verified headers stay in memory. Older ones are pruned: the newest is all that
/// verification needs, the rest serve proofs at recent heights and tx inclusion checks.
pub const TRUSTED_WINDOW: usize = 256;
/// How many of them a snapshot keeps (a reload resumes from the newest).
pub const PERSISTED_HEADERS: usize = 8;

/// What the user trusts before any relay says anything (DESIGN §6).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TrustRoot {
    /// The chain's genesis: its validators sign block 1.
    Genesis(Box<Genesis>),
    /// A header the user got out of band (height and id), e.g. from a validator operator.
    Pinned {
        chain_id: String,
        height: Height,
        hash: Hash,
    },
}

impl TrustRoot {
    pub fn chain_id(&self) -> &str {
        match self {
            TrustRoot::Genesis(genesis) => &genesis.chain_id,
            TrustRoot::Pinned { chain_id, .. } => chain_id,
        }
    }
}

/// A verified header, its commit, and the set that signed it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TrustedHeader {
    pub signed: SignedHeader,
    pub validators: ValidatorSet,
}

impl TrustedHeader {
    pub fn height(&self) -> Height {
        self.signed.header.height
    }

    pub fn id(&self) -> Hash {
        self.signed.header.id()
    }

    pub fn time(&self) -> TimeMs {
        self.signed.header.time
    }
}

/// Two valid, conflicting headers at one height, and who served them: kept as evidence.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ForkEvidence {
    pub height: Height,
    pub first: SignedHeader,
    pub first_relay: String,
    pub second: SignedHeader,
    pub second_relay: String,
}

/// Verified headers by height.
#[derive(Clone, Debug, Default)]
pub struct TrustedWindow {
    headers: BTreeMap<Height, TrustedHeader>,
}

impl TrustedWindow {
    pub fn newest(&self) -> Option<&TrustedHeader> {
        self.headers.values().next_back()
    }

    pub fn oldest(&self) -> Option<&TrustedHeader> {
        self.headers.values().next()
    }

    pub fn get(&self, height: Height) -> Option<&TrustedHeader> {
        self.headers.get(&height)
    }

    /// The highest trusted header at or below `height`: the base to verify `height` from.
    pub fn base_for(&self, height: Height) -> Option<&TrustedHeader> {
        self.headers.range(..=height).next_back().map(|(_, h)| h)
    }

    pub fn len(&self) -> usize {
        self.headers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Adds a verified header, pruning the oldest beyond [`TRUSTED_WINDOW`] (never the newest).
    pub fn insert(&mut self, header: TrustedHeader) {
        self.headers.insert(header.height(), header);
        while self.headers.len() > TRUSTED_WINDOW {
            self.headers.pop_first();
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &TrustedHeader> {
        self.headers.values()
    }
}

/// What survives a reload: the newest verified headers and any fork evidence.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TrustSnapshot {
    pub version: u8,
    pub chain_id: String,
    pub headers: Vec<TrustedHeader>,
    pub fork: Option<ForkEvidence>,
}

impl TrustSnapshot {
    pub const VERSION: u8 = 1;
    /// A snapshot is a handful of headers and sets; anything larger is not ours.
    pub const MAX_BYTES: usize = 4 * 1024 * 1024;

    pub fn new(chain_id: &str, window: &TrustedWindow, fork: Option<&ForkEvidence>) -> Self {
        let skip = window.len().saturating_sub(PERSISTED_HEADERS);
        TrustSnapshot {
            version: Self::VERSION,
            chain_id: chain_id.to_string(),
            headers: window.iter().skip(skip).cloned().collect(),
            fork: fork.cloned(),
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        ledger::codec::encode(self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, LightClientError> {
        let snapshot: TrustSnapshot = ledger::codec::decode_limited(bytes, Self::MAX_BYTES)
            .map_err(|e| LightClientError::Store(format!("stored trust does not decode: {e}")))?;
        if snapshot.version != Self::VERSION {
            return Err(LightClientError::Store(format!(
                "stored trust has version {}, this client reads {}",
                snapshot.version,
                Self::VERSION
            )));
        }
        Ok(snapshot)
    }
}

/// Refuses a trust base that is older than the trusting period.
pub fn check_not_expired(
    height: Height,
    time: TimeMs,
    options: &TrustOptions,
    now: TimeMs,
) -> Result<(), LightClientError> {
    let expires_at = time.saturating_add(options.trusting_period_ms);
    if expires_at <= now {
        return Err(LightClientError::TrustExpired {
            height,
            expires_at,
            now,
        });
    }
    Ok(())
}

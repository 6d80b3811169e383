//! Encrypted blobs with consent-checked reads (DESIGN §3–§4, issue 5 item 6).
//!
//! [`BlobService`] is what the HTTP routes (and next, the libp2p blob protocol) call:
//! - **put**: stores ciphertext under its CID after [`BlobStore::check`] (size limit, bytes
//!   hash to the CID), unless the patient already erased that CID;
//! - **get**: takes a request signed by the reader ([`SignedAccessRequest`]) and serves the
//!   blob only if every check passes, in this order: chain id; request time within
//!   [`MAX_REQUEST_SKEW_MS`] of the relay's clock; reader's signature; the relay's account can
//!   record reads (admitted organisation); the commitment exists and names this CID; the
//!   ledger's access rule ([`ledger::access::may_read`]) allows the read at the request time
//!   and at the relay's now; the (reader, nonce) pair is new ([`replay::ReplayCache`]); the
//!   blob is stored and intact. Then it submits the `RecordAccess` tx
//!   ([`recorder::AccessRecorder`]) and only then returns the bytes, so no read goes unrecorded
//!   on the relay's side. A denial returns the ledger's typed reason and is logged;
//! - **erase**: deletes everything stored for a CID; [`crate::follow`] calls it for every
//!   committed `EraseData`.
//!
//! # Security considerations
//! - Decisions are made on the embedded node's verified state (blocks it checked against
//!   commits), never on what a client claims. The blob store is I/O only: consent logic is
//!   the ledger's (STYLE "relay").
//! - The access rule is checked at the request time (what the on-chain record will be judged
//!   at) *and* at the relay's now: a reader cannot back-date a request into the lifetime of a
//!   consent that was revoked up to [`MAX_REQUEST_SKEW_MS`] ago.
//! - A request is served once: replays within the time window hit the replay cache, older
//!   ones fail the time check. Only requests that pass the access rule enter the cache, so
//!   strangers cannot fill it with throw-away keys.
//! - Puts are not authenticated (ciphertext under its own hash reveals nothing and cannot be
//!   forged); their volume is bounded by the size limit now and by per-peer limits later.
//! - The access record is admitted to the mempool before the bytes leave, but its inclusion
//!   is not awaited: a crash between the two loses the record.

pub mod recorder;
pub mod replay;
pub mod store;

pub use recorder::AccessRecorder;
pub use replay::{ReplayCache, ReplayError};
pub use store::{BlobStore, Put};

use crate::chain::Chain;
use crate::clock::Clock;
use crate::metrics::RelayMetrics;
use crate::protocol::blobs::{BlobRefusal, BlobRequest, BlobResponse, RefusalKind};
use crate::protocol::truncate_reason;
use bytes::Bytes;
use ledger::access::{may_read, AccessDenied};
use ledger::codec::CodecError;
use ledger::crypto::{AccountKeys, Address, Hash, SignatureError};
use ledger::state::keys;
use ledger::state::records::{AccessBasis, DataCommitment, Study};
use ledger::state::{CorruptState, StateRead, StateReadExt};
use ledger::tx::{commitment_id, AccessRequest, SignedAccessRequest};
use ledger::types::{Cid, RecordId, TimeMs};
use node::mempool::Rejected;
use node::store::StoreError;
use std::sync::{Arc, Mutex};
use tracing::{debug, info, warn};

/// How far a request's time may be from the relay's clock, either way.
pub const MAX_REQUEST_SKEW_MS: u64 = 5 * 60 * 1000;
/// Largest study description served publicly: a title and a purpose as JSON.
pub const MAX_DESCRIPTION_BYTES: u64 = 16 * 1024;
/// Most served requests remembered for replay protection (about 100 bytes each).
pub const REPLAY_CAPACITY: usize = 100_000;

/// Why a blob request failed. [`BlobError::kind`] sorts them into what the requester did
/// wrong, what the ledger refused, and what failed on the relay's side.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: u64, limit: u64 },
    #[error("the bytes hash to {actual}, not to the claimed {claimed}")]
    CidMismatch { claimed: Cid, actual: Cid },
    #[error("the request names blob {requested} but commitment {commitment:?} holds {committed}")]
    RequestCidMismatch {
        commitment: RecordId,
        requested: Cid,
        committed: Cid,
    },
    #[error("blob {0} was erased by its patient and is not stored again")]
    Erased(Cid),
    #[error("malformed request: {0}")]
    Malformed(#[from] CodecError),
    #[error("reader's signature: {0}")]
    BadSignature(#[from] SignatureError),
    #[error("the request is for chain {got:?}; this relay follows {expected:?}")]
    WrongChain { expected: String, got: String },
    #[error("request time {request_time} is more than {max_skew_ms} ms from the relay's clock ({now})")]
    StaleRequest {
        request_time: TimeMs,
        now: TimeMs,
        max_skew_ms: u64,
    },
    #[error(transparent)]
    Replay(#[from] ReplayError),
    #[error("access denied: {0}")]
    Denied(AccessDenied),
    #[error("blob {0} is not stored on this relay")]
    NotStored(Cid),
    #[error("no study {0:?} on chain")]
    UnknownStudy(RecordId),
    #[error("the relay's account {0:?} is not an admitted organisation, so it cannot record reads")]
    RelayNotAdmitted(Address),
    #[error("the access record was not accepted: {0}")]
    RecordRejected(Rejected),
    #[error("stored bytes of {0} do not match their CID")]
    Corrupt(Cid),
    #[error("blob storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("invalid blob location: {0}")]
    Location(String),
    #[error("chain store: {0}")]
    Chain(#[from] StoreError),
    #[error(transparent)]
    CorruptState(#[from] CorruptState),
    #[error("relay task failed: {0}")]
    Task(String),
}

impl From<AccessDenied> for BlobError {
    fn from(denied: AccessDenied) -> Self {
        match denied {
            // Unreadable state is the relay's failure, not a verdict about the reader.
            AccessDenied::Corrupt(corrupt) => BlobError::CorruptState(corrupt),
            denied => BlobError::Denied(denied),
        }
    }
}

impl BlobError {
    pub fn kind(&self) -> RefusalKind {
        match self {
            BlobError::TooLarge { .. } => RefusalKind::TooLarge,
            BlobError::CidMismatch { .. } | BlobError::RequestCidMismatch { .. } => RefusalKind::CidMismatch,
            BlobError::Erased(_) => RefusalKind::Erased,
            BlobError::Malformed(_) => RefusalKind::Malformed,
            BlobError::BadSignature(_) => RefusalKind::BadSignature,
            BlobError::WrongChain { .. } => RefusalKind::WrongChain,
            BlobError::StaleRequest { .. } => RefusalKind::StaleRequest,
            BlobError::Replay(ReplayError::Replayed { .. }) => RefusalKind::Replayed,
            BlobError::Replay(ReplayError::Full { .. }) => RefusalKind::Busy,
            BlobError::Denied(_) => RefusalKind::Denied,
            BlobError::NotStored(_) | BlobError::UnknownStudy(_) => RefusalKind::NotStored,
            BlobError::RelayNotAdmitted(_) => RefusalKind::RelayNotAdmitted,
            BlobError::RecordRejected(_)
            | BlobError::Corrupt(_)
            | BlobError::Storage(_)
            | BlobError::Location(_)
            | BlobError::Chain(_)
            | BlobError::CorruptState(_)
            | BlobError::Task(_) => RefusalKind::Unavailable,
        }
    }

    /// `true` when the requester sent something it should not have (for peer scoring).
    pub fn is_peer_fault(&self) -> bool {
        self.kind().is_peer_fault()
    }

    /// The wire form of this error.
    pub fn refusal(&self) -> BlobRefusal {
        BlobRefusal {
            kind: self.kind(),
            reason: truncate_reason(self.to_string()),
        }
    }
}

/// A served read.
#[derive(Clone, Debug)]
pub struct ServedBlob {
    pub bytes: Bytes,
    /// The right that allowed the read (what the access record will show).
    pub basis: AccessBasis,
    /// Hash of the submitted `RecordAccess` tx.
    pub access_record_tx: Hash,
}

/// Blob put/get/erase with the checks described in the module docs. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BlobService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: BlobStore,
    chain: Chain,
    recorder: AccessRecorder,
    replay: Mutex<ReplayCache>,
    clock: Arc<dyn Clock>,
    metrics: RelayMetrics,
}

impl BlobService {
    /// `relay_keys` is the storage-node account that signs access records.
    pub fn new(
        store: BlobStore,
        chain: Chain,
        relay_keys: AccountKeys,
        clock: Arc<dyn Clock>,
        metrics: RelayMetrics,
    ) -> Self {
        BlobService {
            inner: Arc::new(Inner {
                store,
                recorder: AccessRecorder::new(relay_keys, chain.clone()),
                chain,
                replay: Mutex::new(ReplayCache::new(REPLAY_CAPACITY)),
                clock,
                metrics,
            }),
        }
    }

    pub fn store(&self) -> &BlobStore {
        &self.inner.store
    }

    /// The storage-node account that signs access records.
    pub fn relay_address(&self) -> Address {
        self.inner.recorder.address()
    }

    /// `true` when the relay's account may record reads in the latest state.
    pub fn is_admitted(&self) -> Result<bool, BlobError> {
        Ok(self.inner.recorder.is_admitted(&self.inner.chain.snapshot()?)?)
    }

    /// Stores `bytes` under `claimed` (see the module docs); returns the CID.
    pub async fn put(&self, claimed: Cid, bytes: Bytes) -> Result<Cid, BlobError> {
        let size = bytes.len();
        let result = self.try_put(claimed, bytes).await;
        match &result {
            Ok(cid) => debug!(%cid, size, "blob put"),
            Err(error) => {
                self.inner.metrics.blob_refusals.inc();
                info!(%claimed, size, %error, "blob put refused");
            }
        }
        result
    }

    async fn try_put(&self, claimed: Cid, bytes: Bytes) -> Result<Cid, BlobError> {
        if self.is_erased(&claimed)? {
            return Err(BlobError::Erased(claimed));
        }
        let size = bytes.len() as i64;
        if self.inner.store.put(&claimed, bytes).await? == Put::Stored {
            // The erasure of this CID may have committed (and been processed) meanwhile.
            if self.is_erased(&claimed)? {
                self.inner.store.erase(&claimed).await?;
                return Err(BlobError::Erased(claimed));
            }
            self.inner.metrics.blob_puts.inc();
            self.inner.metrics.blob_bytes.inc_by(size);
        }
        Ok(claimed)
    }

    /// `true` when a commitment names `cid` and its patient erased it.
    fn is_erased(&self, cid: &Cid) -> Result<bool, BlobError> {
        let state = self.inner.chain.snapshot()?;
        Ok(state
            .read::<DataCommitment>(&keys::commitment(&commitment_id(cid)))?
            .is_some_and(|c| c.erased_at.is_some()))
    }

    /// Serves the blob of a reader-signed request (see the module docs).
    pub async fn get(&self, signed: &SignedAccessRequest) -> Result<ServedBlob, BlobError> {
        let result = self.try_get(signed).await;
        let request = &signed.request;
        let metrics = &self.inner.metrics;
        match &result {
            Ok(served) => {
                metrics.blob_gets.inc();
                info!(reader = ?request.reader, cid = %request.cid, basis = ?served.basis,
                    record = %served.access_record_tx, "blob served");
            }
            Err(BlobError::Denied(reason)) => {
                metrics.blob_denials.inc();
                warn!(reader = ?request.reader, commitment = ?request.commitment,
                    purpose = ?request.purpose, %reason, "blob read denied");
            }
            Err(error) => {
                metrics.blob_refusals.inc();
                info!(reader = ?request.reader, cid = %request.cid, %error, "blob read refused");
            }
        }
        result
    }

    async fn try_get(&self, signed: &SignedAccessRequest) -> Result<ServedBlob, BlobError> {
        let request = &signed.request;
        let now = self.inner.clock.now_ms();
        let chain_id = self.inner.chain.chain_id();
        if request.chain_id != chain_id {
            return Err(BlobError::WrongChain {
                expected: chain_id.to_owned(),
                got: request.chain_id.clone(),
            });
        }
        if request.time.abs_diff(now) > MAX_REQUEST_SKEW_MS {
            return Err(BlobError::StaleRequest {
                request_time: request.time,
                now,
                max_skew_ms: MAX_REQUEST_SKEW_MS,
            });
        }
        signed.verify()?;

        let service = self.clone();
        let decided = request.clone();
        let basis = tokio::task::spawn_blocking(move || {
            service.decide(&service.inner.chain.snapshot()?, &decided, now)
        })
        .await
        .map_err(|e| BlobError::Task(e.to_string()))??;

        self.inner
            .replay
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(
                request.reader,
                request.nonce,
                request.time.saturating_add(MAX_REQUEST_SKEW_MS),
                now,
            )?;
        let bytes = self.inner.store.get(&request.cid).await?;
        let access_record_tx = self
            .inner
            .recorder
            .record(signed)
            .map_err(BlobError::RecordRejected)?;
        Ok(ServedBlob {
            bytes,
            basis,
            access_record_tx,
        })
    }

    /// The access decision on `state` (DESIGN §4: consent checked against verified state).
    fn decide(
        &self,
        state: &dyn StateRead,
        request: &AccessRequest,
        now: TimeMs,
    ) -> Result<AccessBasis, BlobError> {
        if !self.inner.recorder.is_admitted(state)? {
            return Err(BlobError::RelayNotAdmitted(self.relay_address()));
        }
        let commitment: DataCommitment = state
            .read(&keys::commitment(&request.commitment))?
            .ok_or(AccessDenied::UnknownCommitment(request.commitment))?;
        if commitment.cid != request.cid {
            return Err(BlobError::RequestCidMismatch {
                commitment: request.commitment,
                requested: request.cid,
                committed: commitment.cid,
            });
        }
        // Gone for everyone, whatever their consent (an erasure is public on chain anyway):
        // "erased" rather than the access rule's "denied", so clients can say why.
        if commitment.erased_at.is_some() {
            return Err(BlobError::Erased(commitment.cid));
        }
        let (reader, id, purpose) = (&request.reader, &request.commitment, request.purpose);
        // At the request time: the basis the on-chain access record will carry...
        let basis = may_read(state, reader, id, purpose, request.time)?;
        // ...and now, so a back-dated request cannot use a consent revoked since.
        may_read(state, reader, id, purpose, now)?;
        Ok(basis)
    }

    /// The public description of study `id`: the blob its on-chain terms name (title and
    /// purpose, JSON), for anyone. Studies are public and this serves no other blob: the CID
    /// comes from verified state, not from the caller.
    pub async fn study_description(&self, id: &RecordId) -> Result<Bytes, BlobError> {
        let study: Study = self
            .inner
            .chain
            .snapshot()?
            .read(&keys::study(id))?
            .ok_or(BlobError::UnknownStudy(*id))?;
        let cid = study.terms.description;
        let bytes = self.inner.store.get(&cid).await?;
        if bytes.len() as u64 > MAX_DESCRIPTION_BYTES {
            return Err(BlobError::TooLarge {
                size: bytes.len() as u64,
                limit: MAX_DESCRIPTION_BYTES,
            });
        }
        Ok(bytes)
    }

    /// Deletes everything stored for `cid`; returns the bytes freed.
    pub async fn erase(&self, cid: &Cid) -> Result<u64, BlobError> {
        let freed = self.inner.store.erase(cid).await?;
        if freed > 0 {
            self.inner.metrics.blobs_erased.inc();
            self.inner.metrics.blob_bytes.dec_by(freed as i64);
            info!(%cid, freed, "blob erased");
        }
        Ok(freed)
    }

    /// Answers one blob-protocol request.
    pub async fn handle(&self, request: BlobRequest) -> BlobResponse {
        match request {
            BlobRequest::Put { cid, bytes } => match self.put(cid, Bytes::from(bytes)).await {
                Ok(cid) => BlobResponse::Stored { cid },
                Err(error) => BlobResponse::Refused(error.refusal()),
            },
            BlobRequest::Get(signed) => match self.get(&signed).await {
                Ok(served) => BlobResponse::Blob {
                    bytes: served.bytes.to_vec(),
                    access_record_tx: served.access_record_tx,
                },
                Err(error) => BlobResponse::Refused(error.refusal()),
            },
        }
    }
}

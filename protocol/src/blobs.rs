//! `/medledger/blobs/1`: store an encrypted blob under its CID, and read one with a request
//! signed by the reader (DESIGN §4). the relay's `BlobService` answers both; the HTTP
//! routes `PUT /blobs/{cid}` and `POST /blobs/get` are the same calls.

use super::Message;
use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::Hash;
use ledger::tx::{SignedAccessRequest, MAX_BLOB_BYTES};
use ledger::types::Cid;
use std::time::Duration;

pub const PROTOCOL: &str = "/medledger/blobs/1";
/// The largest blob a commitment may describe, plus framing.
pub const REQUEST_SIZE_LIMIT: usize = MAX_BLOB_BYTES as usize + 1024;
pub const RESPONSE_SIZE_LIMIT: usize = MAX_BLOB_BYTES as usize + 1024;
pub const RESPONSE_TIME_LIMIT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlobRequest {
    /// Store `bytes`, which must hash to `cid`.
    Put { cid: Cid, bytes: Vec<u8> },
    /// Read the blob named in the reader-signed request.
    Get(SignedAccessRequest),
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum BlobResponse {
    Stored {
        cid: Cid,
    },
    /// The ciphertext, and the hash of the access-record tx the relay submitted for this read.
    Blob {
        bytes: Vec<u8>,
        access_record_tx: Hash,
    },
    Refused(BlobRefusal),
}

/// Why a blob request was refused: a kind to act on and a reason for people.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BlobRefusal {
    pub kind: RefusalKind,
    /// At most `MAX_REASON_LEN` bytes.
    pub reason: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub enum RefusalKind {
    /// The blob is larger than the relay stores.
    TooLarge,
    /// The bytes do not hash to the claimed CID, or the request's CID is not the commitment's.
    CidMismatch,
    /// The patient erased this blob; it is never stored again.
    Erased,
    /// The request does not decode.
    Malformed,
    /// The reader's signature does not verify.
    BadSignature,
    /// The request names another chain.
    WrongChain,
    /// The request's time is too far from the relay's clock.
    StaleRequest,
    /// This request (reader, nonce) was already served.
    Replayed,
    /// The ledger's access rule refuses the read.
    Denied,
    /// The relay does not hold this blob.
    NotStored,
    /// The relay cannot record accesses (its account is not an admitted organisation).
    RelayNotAdmitted,
    /// The relay is overloaded (e.g. its replay cache is full); try again later.
    Busy,
    /// The relay failed (storage, chain, mempool).
    Unavailable,
}

impl RefusalKind {
    /// Stable lower-case name for JSON and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefusalKind::TooLarge => "too_large",
            RefusalKind::CidMismatch => "cid_mismatch",
            RefusalKind::Erased => "erased",
            RefusalKind::Malformed => "malformed",
            RefusalKind::BadSignature => "bad_signature",
            RefusalKind::WrongChain => "wrong_chain",
            RefusalKind::StaleRequest => "stale_request",
            RefusalKind::Replayed => "replayed",
            RefusalKind::Denied => "denied",
            RefusalKind::NotStored => "not_stored",
            RefusalKind::RelayNotAdmitted => "relay_not_admitted",
            RefusalKind::Busy => "busy",
            RefusalKind::Unavailable => "unavailable",
        }
    }

    /// `true` when the requester sent something it should not have (malformed, forged,
    /// replayed, oversized): what per-peer scoring counts. A denial is an honest "no".
    pub fn is_peer_fault(self) -> bool {
        matches!(
            self,
            RefusalKind::TooLarge
                | RefusalKind::CidMismatch
                | RefusalKind::Malformed
                | RefusalKind::BadSignature
                | RefusalKind::Replayed
        )
    }
}

impl Message for BlobRequest {
    const SIZE_LIMIT: usize = REQUEST_SIZE_LIMIT;
}

impl Message for BlobResponse {
    const SIZE_LIMIT: usize = RESPONSE_SIZE_LIMIT;
}

//! The gateway's view of the chain and its relay, over the relay's HTTP API
//! (`relay/src/http/mod.rs`): the embedded node's API under `/node` (status, headers, state
//! proofs, tx submission and status) and the blob store under `/blobs`.
//!
//! # Security considerations
//! Every state value the gateway acts on (nonces, devices, consents and grantees' keys, alert
//! rules, commitments) is read with a state proof and checked against the `state_root` of the
//! header the relay serves ([`RelayClient::read`]). The header itself is taken from the
//! patient's own relay, checked only for the chain id: the gateway trusts the relay it was
//! configured with for headers. A dishonest relay could therefore hide a new consent (a
//! grantee would miss a batch's key) or show a stale nonce (txs would be refused), but it
//! cannot make the gateway wrap keys for someone it invents without forging a header. When the
//! light client crate lands, headers should come through it (DESIGN §6).

use borsh::BorshDeserialize;
use ledger::crypto::{Hash, PublicKey};
use ledger::header::Header;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::DataCommitment;
use ledger::state::{StateProof, StateProofError};
use ledger::tx::{commitment_id, SignedAccessRequest, Tx};
use ledger::types::{Cid, RecordId};
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Longest wait for one HTTP request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Most requests in flight to the relay at once, over all patients: hundreds of patient tasks
/// must queue here rather than open hundreds of connections and time out in the relay's queue.
pub const MAX_IN_FLIGHT: usize = 16;
/// Largest response read for headers and proofs.
const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// Why talking to the relay failed.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The relay could not be reached or did not answer in time: retry later.
    #[error("relay unreachable at {url}: {source}")]
    Unreachable { url: String, source: reqwest::Error },
    /// The relay answered with an unexpected HTTP status.
    #[error("{url} answered {status}: {body}")]
    Status { url: String, status: u16, body: String },
    /// The mempool refused a tx (the reason is the node's).
    #[error("tx refused: {0}")]
    Rejected(String),
    /// An answer that does not decode.
    #[error("{what} from the relay does not decode: {reason}")]
    Malformed { what: &'static str, reason: String },
    /// A state value whose proof does not verify against the header: the relay lied or is broken.
    #[error("state proof: {0}")]
    Proof(#[from] StateProofError),
    #[error("the relay serves chain {got:?}, expected {expected:?}")]
    WrongChain { expected: String, got: String },
}

impl ChainError {
    /// Worth retrying as is (the relay is down, restarting or busy)?
    pub fn is_transient(&self) -> bool {
        match self {
            ChainError::Unreachable { .. } => true,
            ChainError::Status { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// The start of an error body, for messages.
fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned()
}

/// What the mempool said to a submitted tx.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Submitted {
    pub hash: Hash,
    /// The pool already held exactly this tx (a resubmission while it waits).
    pub already_pooled: bool,
}

/// A verified point to read state at: a header the relay serves for its latest height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub height: u64,
    pub time: u64,
    pub state_root: Hash,
}

#[derive(Deserialize)]
struct StatusBody {
    chain_id: String,
    height: u64,
}

#[derive(Deserialize)]
struct HashBody {
    hash: String,
}

#[derive(Deserialize)]
struct HeightBody {
    height: u64,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

/// HTTP client of one relay, bound to one chain id.
#[derive(Clone, Debug)]
pub struct RelayClient {
    base: String,
    chain_id: String,
    http: reqwest::Client,
    /// Bounds requests in flight ([`MAX_IN_FLIGHT`]); shared by clones.
    permits: Arc<Semaphore>,
}

impl RelayClient {
    /// Connects to the relay at `base` (e.g. `http://127.0.0.1:8080`) and learns its chain id.
    pub async fn connect(base: &str) -> Result<Self, ChainError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|source| ChainError::Unreachable {
                url: base.to_owned(),
                source,
            })?;
        let mut client = RelayClient {
            base: base.trim_end_matches('/').to_owned(),
            chain_id: String::new(),
            http,
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        };
        client.chain_id = client.status().await?.0;
        Ok(client)
    }

    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request and reads its whole answer, holding one of the [`MAX_IN_FLIGHT`] permits.
    async fn exchange(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<(reqwest::StatusCode, Vec<u8>), ChainError> {
        let unreachable = |source| ChainError::Unreachable {
            url: url.to_owned(),
            source,
        };
        // The semaphore is never closed; if it were, going on unbounded beats failing.
        let _permit = self.permits.acquire().await.ok();
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        Ok((status, body.to_vec()))
    }

    /// The body of a successful answer.
    async fn body_of(&self, request: reqwest::RequestBuilder, url: &str) -> Result<Vec<u8>, ChainError> {
        let (status, body) = self.exchange(request, url).await?;
        if !status.is_success() {
            return Err(ChainError::Status {
                url: url.to_owned(),
                status: status.as_u16(),
                body: snippet(&body),
            });
        }
        Ok(body)
    }

    fn json<T: serde::de::DeserializeOwned>(bytes: &[u8], what: &'static str) -> Result<T, ChainError> {
        serde_json::from_slice(bytes).map_err(|e| ChainError::Malformed {
            what,
            reason: e.to_string(),
        })
    }

    fn borsh<T: BorshDeserialize>(bytes: &[u8], what: &'static str) -> Result<T, ChainError> {
        ledger::codec::decode_limited(bytes, MAX_RESPONSE_BYTES).map_err(|e| ChainError::Malformed {
            what,
            reason: e.to_string(),
        })
    }

    /// `(chain id, latest height)`.
    pub async fn status(&self) -> Result<(String, u64), ChainError> {
        let url = self.url("/node/status");
        let body = self.body_of(self.http.get(&url), &url).await?;
        let status: StatusBody = Self::json(&body, "status")?;
        Ok((status.chain_id, status.height))
    }

    pub async fn header(&self, height: u64) -> Result<Header, ChainError> {
        let url = self.url(&format!("/node/header/{height}"));
        let body = self.body_of(self.http.get(&url), &url).await?;
        let header: Header = Self::borsh(&body, "header")?;
        if header.chain_id != self.chain_id {
            return Err(ChainError::WrongChain {
                expected: self.chain_id.clone(),
                got: header.chain_id,
            });
        }
        Ok(header)
    }

    /// The latest header, to read state at.
    pub async fn snapshot(&self) -> Result<Snapshot, ChainError> {
        let (chain_id, height) = self.status().await?;
        if chain_id != self.chain_id {
            return Err(ChainError::WrongChain {
                expected: self.chain_id.clone(),
                got: chain_id,
            });
        }
        let header = self.header(height).await?;
        Ok(Snapshot {
            height,
            time: header.time,
            state_root: header.state_root,
        })
    }

    /// The raw value under `key` at `at`, proven against its state root (`None`: proven absent).
    pub async fn read_raw(&self, at: &Snapshot, key: &[u8]) -> Result<Option<Vec<u8>>, ChainError> {
        let url = self.url(&format!("/node/proof/{}?key={}", at.height, hex::encode(key)));
        let body = self.body_of(self.http.get(&url), &url).await?;
        let (value, proof): (Option<Vec<u8>>, StateProof) = Self::borsh(&body, "state proof")?;
        proof.verify(&at.state_root, key, value.as_deref())?;
        Ok(value)
    }

    /// A typed, proven state value.
    pub async fn read<T: BorshDeserialize>(
        &self,
        at: &Snapshot,
        key: &[u8],
    ) -> Result<Option<T>, ChainError> {
        match self.read_raw(at, key).await? {
            None => Ok(None),
            Some(bytes) => Self::borsh(&bytes, "state value").map(Some),
        }
    }

    /// The ids in an owner's list, oldest first, each proven.
    pub async fn list(
        &self,
        at: &Snapshot,
        kind: ListKind,
        owner: &[u8; 32],
    ) -> Result<Vec<RecordId>, ChainError> {
        let len: u64 = self.read(at, &keys::list_len(kind, owner)).await?.unwrap_or(0);
        let mut out = Vec::with_capacity(len.min(1024) as usize);
        for i in 0..len {
            if let Some(id) = self.read(at, &keys::list_item(kind, owner, i)).await? {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The nonce `signer`'s next tx must carry.
    pub async fn nonce(&self, at: &Snapshot, signer: &PublicKey) -> Result<u64, ChainError> {
        Ok(self.read(at, &keys::nonce(signer)).await?.unwrap_or(0))
    }

    /// The commitment that holds `cid`, if one was committed (its id follows from the CID).
    pub async fn commitment_of_cid(&self, at: &Snapshot, cid: &Cid) -> Result<Option<RecordId>, ChainError> {
        let id = commitment_id(cid);
        let commitment: Option<DataCommitment> = self.read(at, &keys::commitment(&id)).await?;
        Ok(commitment.map(|_| id))
    }

    /// Submits a tx to the mempool; a tx the pool already holds counts as submitted.
    pub async fn submit(&self, tx: &Tx) -> Result<Submitted, ChainError> {
        let url = self.url("/node/tx");
        let (status, body) = self
            .exchange(self.http.post(&url).body(tx.to_bytes()), &url)
            .await?;
        if status.is_success() {
            let hash: HashBody = Self::json(&body, "tx hash")?;
            let hash = Hash::from_hex(&hash.hash).map_err(|e| ChainError::Malformed {
                what: "tx hash",
                reason: e.to_string(),
            })?;
            return Ok(Submitted {
                hash,
                already_pooled: false,
            });
        }
        if status.as_u16() == 400 {
            let reason = serde_json::from_slice::<ErrorBody>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            // Resubmitting after a lost answer: the pool already has exactly this tx.
            if reason.contains("already in the pool") {
                return Ok(Submitted {
                    hash: tx.hash(),
                    already_pooled: true,
                });
            }
            return Err(ChainError::Rejected(reason));
        }
        Err(ChainError::Status {
            url,
            status: status.as_u16(),
            body: snippet(&body),
        })
    }

    /// The height a tx was committed at, `None` while it is not.
    pub async fn tx_height(&self, hash: &Hash) -> Result<Option<u64>, ChainError> {
        let url = self.url(&format!("/node/tx/{}", hash.to_hex()));
        let (status, body) = self.exchange(self.http.get(&url), &url).await?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(ChainError::Status {
                url,
                status: status.as_u16(),
                body: snippet(&body),
            });
        }
        Ok(Some(Self::json::<HeightBody>(&body, "tx status")?.height))
    }

    /// Stores a blob on the relay (`PUT /blobs/{cid}`). Idempotent.
    pub async fn put_blob(&self, cid: &Cid, blob: Vec<u8>) -> Result<(), ChainError> {
        let url = self.url(&format!("/blobs/{}", cid.to_text()));
        self.body_of(self.http.put(&url).body(blob), &url).await?;
        Ok(())
    }

    /// Reads a blob with a signed access request (`POST /blobs/get`); the relay records the read.
    pub async fn get_blob(&self, request: &SignedAccessRequest) -> Result<Vec<u8>, ChainError> {
        let url = self.url("/blobs/get");
        let body = ledger::codec::encode(request);
        self.body_of(self.http.post(&url).body(body), &url).await
    }
}

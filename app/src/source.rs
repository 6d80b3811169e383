//! [`Paced`]: the relay connection as the light client's [`ChainSource`], with the page's
//! requests paced by a token bucket. The relay bans a peer that exceeds its per-peer request
//! limits (64 burst, 32/s by default); a dashboard reading many proofs must stay under them.

use ledger::crypto::Hash;
use ledger::header::Height;
use ledger::state::StateProof;
use ledger::ValidatorSet;
use light_client::net::RelayConnection;
use light_client::{ChainSource, SourceError};
use protocol::headers::TxInclusion;
use protocol::SignedHeader;
use std::cell::RefCell;

/// Requests per second the page allows itself (half the relay's default limit).
pub const REQUESTS_PER_SECOND: f64 = 16.0;
/// Requests the page may send at once.
pub const BURST: f64 = 24.0;

#[derive(Debug)]
pub struct Paced {
    pub inner: RelayConnection,
    /// (tokens, time of the last refill in ms)
    bucket: RefCell<(f64, f64)>,
}

impl Paced {
    pub fn new(inner: RelayConnection) -> Self {
        Paced {
            inner,
            bucket: RefCell::new((BURST, js_sys::Date::now())),
        }
    }

    /// Waits until one more request fits the budget.
    async fn token(&self) {
        loop {
            let wait_ms = {
                let mut bucket = self.bucket.borrow_mut();
                let now = js_sys::Date::now();
                bucket.0 = (bucket.0 + (now - bucket.1).max(0.0) / 1000.0 * REQUESTS_PER_SECOND).min(BURST);
                bucket.1 = now;
                if bucket.0 >= 1.0 {
                    bucket.0 -= 1.0;
                    None
                } else {
                    Some(((1.0 - bucket.0) / REQUESTS_PER_SECOND * 1000.0).ceil() as u64)
                }
            };
            match wait_ms {
                None => return,
                Some(ms) => light_client::time::sleep_ms(ms.max(1)).await,
            }
        }
    }
}

impl ChainSource for Paced {
    fn label(&self) -> String {
        ChainSource::label(&self.inner)
    }

    async fn latest(&self) -> Result<SignedHeader, SourceError> {
        self.token().await;
        ChainSource::latest(&self.inner).await
    }

    async fn signed_header(&self, height: Height) -> Result<SignedHeader, SourceError> {
        self.token().await;
        ChainSource::signed_header(&self.inner, height).await
    }

    async fn validator_set(&self, height: Height) -> Result<ValidatorSet, SourceError> {
        self.token().await;
        ChainSource::validator_set(&self.inner, height).await
    }

    async fn state_value(
        &self,
        key: &[u8],
        height: Height,
    ) -> Result<(Option<Vec<u8>>, StateProof), SourceError> {
        self.token().await;
        ChainSource::state_value(&self.inner, key, height).await
    }

    async fn tx_inclusion(&self, hash: Hash) -> Result<Option<TxInclusion>, SourceError> {
        self.token().await;
        ChainSource::tx_inclusion(&self.inner, hash).await
    }

    async fn submit_tx(&self, tx: Vec<u8>) -> Result<Result<Hash, String>, SourceError> {
        self.token().await;
        ChainSource::submit_tx(&self.inner, tx).await
    }
}

//! The block follower: one task that walks every committed block once, in order, and does
//! what the relay owes each block: erasure of blobs whose commitments were erased (DESIGN §3
//! "Erasure": storage drops ciphertext and wrapped keys) and the head-height metric. Next,
//! the gossip of new heads hangs off the same walk.
//!
//! It keeps a cursor (the last height fully processed) in a file, so blocks committed while
//! the relay was down, or missed because the subscription lagged, are still processed: the
//! subscription only wakes the walk up, the store is the source of truth. A block whose
//! erasures fail (storage down) is retried; the cursor never passes it.

use crate::blobs::{BlobError, BlobService};
use crate::chain::Chain;
use crate::metrics::RelayMetrics;
use ledger::header::Height;
use ledger::state::keys;
use ledger::state::records::DataCommitment;
use ledger::state::StateReadExt;
use ledger::tx::{Action, Tx};
use ledger::types::Cid;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tracing::{info, warn};

/// How long the walk waits for a new block before looking anyway.
const POLL: Duration = Duration::from_secs(2);
/// Pause before retrying a block whose processing failed.
const RETRY: Duration = Duration::from_secs(5);

#[derive(Debug)]
pub struct BlockFollower {
    chain: Chain,
    blobs: BlobService,
    metrics: RelayMetrics,
    cursor_file: PathBuf,
}

impl BlockFollower {
    pub fn new(chain: Chain, blobs: BlobService, metrics: RelayMetrics, cursor_file: PathBuf) -> Self {
        BlockFollower {
            chain,
            blobs,
            metrics,
            cursor_file,
        }
    }

    fn load_cursor(&self) -> Height {
        std::fs::read_to_string(&self.cursor_file)
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(0)
    }

    fn save_cursor(&self, height: Height) {
        let tmp = self.cursor_file.with_extension("tmp");
        let written = std::fs::write(&tmp, format!("{height}\n"))
            .and_then(|()| std::fs::rename(&tmp, &self.cursor_file));
        if let Err(error) = written {
            warn!(file = %self.cursor_file.display(), %error, "cannot save the follower cursor");
        }
    }

    /// Runs until the node stops committing blocks (its broadcast closes).
    pub async fn run(self) {
        let mut blocks = self.chain.node().subscribe();
        let mut cursor = self.load_cursor();
        loop {
            let (processed, failure) = self.catch_up(cursor).await;
            if processed != cursor {
                cursor = processed;
                self.save_cursor(cursor);
            }
            if let Some(error) = failure {
                warn!(height = cursor + 1, %error, "processing a block failed; retrying");
                tokio::time::sleep(RETRY).await;
                continue;
            }
            match tokio::time::timeout(POLL, blocks.recv()).await {
                Ok(Ok(_)) | Ok(Err(RecvError::Lagged(_))) | Err(_) => {}
                Ok(Err(RecvError::Closed)) => {
                    info!("the node stopped; block follower ends");
                    return;
                }
            }
        }
    }

    /// Processes every block after `cursor` up to the head; returns the last height done and,
    /// if it stopped early, the error of the next one.
    async fn catch_up(&self, cursor: Height) -> (Height, Option<BlobError>) {
        let latest = match self.chain.node().latest_height() {
            Ok(latest) => latest,
            Err(error) => return (cursor, Some(error.into())),
        };
        for height in cursor + 1..=latest {
            if let Err(error) = self.process(height).await {
                return (height - 1, Some(error));
            }
            self.metrics.head_height.set(height as i64);
        }
        self.metrics.head_height.set(latest as i64);
        (latest.max(cursor), None)
    }

    async fn process(&self, height: Height) -> Result<(), BlobError> {
        // Reading and decoding a block (up to 8 MiB) stays off the async workers.
        let chain = self.chain.clone();
        let cids = tokio::task::spawn_blocking(move || erased_cids(&chain, height))
            .await
            .map_err(|e| BlobError::Task(e.to_string()))??;
        for cid in cids {
            self.blobs.erase(&cid).await?;
        }
        Ok(())
    }
}

/// The CIDs of the commitments erased by the block at `height`.
fn erased_cids(chain: &Chain, height: Height) -> Result<Vec<Cid>, BlobError> {
    let Some(block) = chain.node().block(height)? else {
        return Ok(vec![]);
    };
    let state = chain.snapshot()?;
    let mut cids = Vec::new();
    for bytes in &block.txs {
        // Committed txs decoded when the block was applied; one that does not is skipped.
        let Ok(tx) = Tx::from_bytes(bytes) else { continue };
        if let Action::EraseData { commitment } = tx.body.action {
            // The commitment record stays on chain (marked erased), so its CID is known.
            if let Some(c) = state.read::<DataCommitment>(&keys::commitment(&commitment))? {
                cids.push(c.cid);
            }
        }
    }
    Ok(cids)
}

//! Step 3 of the module docs: moving a device's spooled batches onto the chain in rounds,
//! and resolving what is in flight. Idempotent by asking the chain (the commitment a CID
//! names, the device's nonce), so a lost answer or a relay restart never commits a batch twice.

use super::{PatientWorker, Stats, WorkerError};
use crate::chain::{ChainError, RelayClient};
use crate::spool::{Spool, SpooledBatch};
use ledger::crypto::Hash;
use ledger::tx::{commitment_id, Action, TxBody};
use ledger::types::TimeMs;
use std::time::Instant;
use tracing::{debug, info, warn};

/// What an in-flight tx does once included.
#[derive(Clone, Debug)]
pub(super) enum Sent {
    Commit { commitment: Hash },
    Alert { last: bool },
}

#[derive(Clone, Debug)]
pub(super) struct Inflight {
    hash: Hash,
    batch: SpooledBatch,
    sent: Sent,
    at: Instant,
}

impl PatientWorker {
    /// Step 3 (module docs): moves spooled batches of every device towards the chain.
    pub async fn flush(&mut self, client: &RelayClient, spool: &Spool) -> Result<(), WorkerError> {
        for i in 0..self.devices.len() {
            self.flush_device(i, client, spool).await?;
        }
        Ok(())
    }

    fn bump_attempts(&mut self, i: usize, window: TimeMs) {
        *self.devices[i].attempts.entry(window).or_insert(0) += 1;
    }

    /// A batch's commitment is on chain: done, or on to raising its alerts.
    fn on_committed(
        &self,
        mut batch: SpooledBatch,
        commitment: Hash,
        spool: &Spool,
    ) -> Result<(), WorkerError> {
        Stats::add(&self.stats.batches_committed, 1);
        if batch.firings.is_empty() {
            spool.remove(&batch)?;
        } else {
            batch.commitment = Some(commitment);
            spool.update(&batch)?;
        }
        Ok(())
    }

    async fn flush_device(
        &mut self,
        i: usize,
        client: &RelayClient,
        spool: &Spool,
    ) -> Result<(), WorkerError> {
        // Resolve what is in flight first: nonces are only read when nothing is pending.
        let inflight = std::mem::take(&mut self.devices[i].inflight);
        let mut still = Vec::new();
        let mut failure = None;
        for sent in inflight {
            if failure.is_some() {
                still.push(sent);
                continue;
            }
            match client.tx_height(&sent.hash).await {
                Ok(Some(height)) => match sent.sent {
                    Sent::Commit { commitment } => {
                        debug!(patient = %self.identity.name, device = self.devices[i].kind.name(), height, "batch committed");
                        self.on_committed(sent.batch, commitment, spool)?;
                    }
                    Sent::Alert { last } => {
                        Stats::add(&self.stats.alerts_raised, 1);
                        info!(patient = %self.identity.name, height, "alert raised on chain");
                        if last {
                            spool.remove(&sent.batch)?;
                        }
                    }
                },
                Ok(None) if sent.at.elapsed() < self.config.resubmit_after => still.push(sent),
                Ok(None) => {
                    debug!(patient = %self.identity.name, tx = %sent.hash, "tx not included in time; resending");
                }
                Err(e) => {
                    still.push(sent);
                    failure = Some(e);
                }
            }
        }
        self.devices[i].inflight = still;
        if let Some(e) = failure {
            return Err(e.into());
        }
        if !self.devices[i].inflight.is_empty() {
            return Ok(());
        }

        let me = self.address();
        let device_pk = self.devices[i].key.public_key();
        let batches = spool.pending(&me, &device_pk, self.config.round_size)?;
        // Forget the bookkeeping of batches that left the spool (rounds take the oldest first,
        // so every batch sent before and still spooled is in this list).
        let device = &mut self.devices[i];
        device
            .sent_before
            .retain(|w| batches.iter().any(|b| b.window_start == *w));
        device
            .attempts
            .retain(|w, _| batches.iter().any(|b| b.window_start == *w));
        if batches.is_empty() {
            return Ok(());
        }
        let snap = client.snapshot().await?;
        let mut nonce = client.nonce(&snap, &device_pk).await?;
        for batch in batches {
            let attempts = self.devices[i]
                .attempts
                .get(&batch.window_start)
                .copied()
                .unwrap_or(0);
            if attempts >= self.config.max_attempts {
                let path = spool.set_aside(&batch)?;
                Stats::add(&self.stats.batches_failed, 1);
                warn!(patient = %self.identity.name, path = %path.display(), attempts, "batch set aside after repeated refusals");
                continue;
            }
            let actions: Vec<(Action, Sent)> = match batch.commitment {
                None => {
                    // Committed already (an answer lost to a restart or a timeout)? The chain
                    // knows: a commitment's id follows from its CID. Only asked for batches
                    // whose earlier send this process cannot vouch for: sealed by an earlier
                    // run, or sent before.
                    let unsure = batch.window_start < self.resumed_at
                        || self.devices[i].sent_before.contains(&batch.window_start);
                    let committed = match unsure {
                        true => client.commitment_of_cid(&snap, &batch.body.cid).await?,
                        false => None,
                    };
                    if let Some(commitment) = committed {
                        self.on_committed(batch, commitment, spool)?;
                        continue;
                    }
                    client.put_blob(&batch.body.cid, batch.blob.clone()).await?;
                    let commitment = commitment_id(&batch.body.cid);
                    vec![(
                        Action::CommitData(batch.body.clone()),
                        Sent::Commit { commitment },
                    )]
                }
                Some(commitment) => {
                    let n = batch.firings.len();
                    batch
                        .firings
                        .iter()
                        .enumerate()
                        .map(|(k, f)| {
                            (
                                Action::RaiseAlert {
                                    patient: me,
                                    rule: f.rule,
                                    commitment,
                                },
                                Sent::Alert { last: k + 1 == n },
                            )
                        })
                        .collect()
                }
            };
            for (action, sent) in actions {
                let tx = TxBody {
                    chain_id: client.chain_id().to_owned(),
                    signer: device_pk,
                    nonce,
                    action,
                }
                .sign(&self.devices[i].key);
                match client.submit(&tx).await {
                    Ok(submitted) => {
                        nonce += 1;
                        let window = batch.window_start;
                        if !submitted.already_pooled && !self.devices[i].sent_before.insert(window) {
                            // Sent before and no longer in the pool: lost or dropped.
                            self.bump_attempts(i, window);
                        }
                        self.devices[i].inflight.push(Inflight {
                            hash: submitted.hash,
                            batch: batch.clone(),
                            sent,
                            at: Instant::now(),
                        });
                    }
                    Err(ChainError::Rejected(reason)) => {
                        // The nonce sequence is broken from here: stop the round, retry later.
                        warn!(patient = %self.identity.name, device = self.devices[i].kind.name(), %reason, "tx refused");
                        self.bump_attempts(i, batch.window_start);
                        return Ok(());
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

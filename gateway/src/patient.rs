//! One patient's gateway: sets the patient up on chain, seals each finished window of
//! simulated readings into the spool, and moves spooled batches onto the chain.
//!
//! # Order of effects, and why
//! 1. **Setup** (patient-signed, consecutive nonces, one round): `RegisterAccount` for a patient
//!    the chain does not know, `RegisterDevice` for each device not yet registered, and, unless
//!    disabled, a default `SetAlertRule` (CGM glucose below 70 mg/dL) when the patient has no
//!    glucose rule. Devices must exist before they can commit (DESIGN §3).
//! 2. **Seal** ([`PatientWorker::seal_due`]): for every window the simulated clock has passed,
//!    each device's readings become FHIR Observations, are evaluated against the alert rules,
//!    encrypted for the patient and every grantee whose consent covers the batch, and written
//!    to the spool. Only then does the window cursor move.
//! 3. **Send** ([`PatientWorker::flush`]), per device, in rounds: upload each spooled blob to the
//!    relay, then submit its `CommitData` signed by the device key with the device's next
//!    nonces; a committed batch with alerts then gets its `RaiseAlert` txs (also device-signed,
//!    so the gateway never competes with the patient's browser for the patient's nonce). A
//!    batch leaves the spool only when the chain holds all of it.
//!
//! Lost answers and restarts are made harmless by asking the chain, not by remembering: before
//! (re)submitting a batch the worker reads, with a proof, whether its CID is already committed
//! (`cid/` index), so a batch is never committed twice, and nonces always come from the chain.
//! A tx that was admitted but never included (the relay restarted and lost its mempool, or the
//! tx failed at execution) is resent after [`WorkerConfig::resubmit_after`]. A batch counts an
//! attempt when the mempool refuses its tx or had lost it (a resend the pool still holds is a
//! slow chain, not a refusal); after [`WorkerConfig::max_attempts`] it is set aside in the
//! spool's `failed/` folder, readings intact.

use crate::alerts::{to_milli, AlertTracker, Rule};
use crate::batch::{self, BatchError};
use crate::chain::{ChainError, RelayClient, Snapshot};
use crate::envelope::{seal_lines, EnvelopeError};
use crate::keys::{device_key, PatientIdentity};
use crate::sim::{DeviceKind, PatientSim};
use crate::spool::{PatientState, Spool, SpoolError, SpooledBatch, SpooledFiring, SPOOL_FORMAT};
use ledger::access::scope_covers;
use ledger::crypto::{EncryptionKey, Hash, PublicKey, SigningKey};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Account, AlertRule, Consent, DataCommitment, Device};
use ledger::tx::{record_id, Action, AlertCondition, Grantee, Tx, TxBody};
use ledger::types::{loinc, DataCategory, LoincCode, Role, TimeMs};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info, warn};

/// Tunables of a worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Simulated time per batch.
    pub window_ms: u64,
    /// Set "CGM glucose below 70 mg/dL" for patients without a glucose rule.
    pub default_rules: bool,
    /// Most batches of one device submitted per round.
    pub round_size: usize,
    /// Resend a tx not included after this long.
    pub resubmit_after: Duration,
    /// Re-read rules and consents at most this often.
    pub refresh_every: Duration,
    /// Set a batch aside after this many refusals.
    pub max_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            window_ms: ledger::types::HOUR_MS,
            default_rules: true,
            round_size: 16,
            resubmit_after: Duration::from_secs(15),
            refresh_every: Duration::from_secs(10),
            max_attempts: 8,
        }
    }
}

/// Counters shared by all workers, for the progress line and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub readings_sealed: AtomicU64,
    pub batches_sealed: AtomicU64,
    pub batches_committed: AtomicU64,
    pub alerts_raised: AtomicU64,
    pub batches_failed: AtomicU64,
    pub errors: AtomicU64,
    pub patients_ready: AtomicU64,
}

impl Stats {
    fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}

/// Why a worker step failed.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
    #[error(transparent)]
    Batch(#[from] BatchError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("patient {name}: {reason}")]
    Unusable { name: String, reason: String },
    #[error("setup txs of {name} were not included within {waited:?}")]
    SetupTimeout { name: String, waited: Duration },
}

impl WorkerError {
    /// The worker cannot go on: the spool (where readings are kept) failed, or the chain says
    /// this patient or its devices belong to someone else.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WorkerError::Spool(_) | WorkerError::Unusable { .. })
    }

    /// A relay that is down or restarting: expected, retried quietly.
    pub fn is_transient(&self) -> bool {
        matches!(self, WorkerError::Chain(e) if e.is_transient())
    }
}

/// What an in-flight tx does once included.
#[derive(Clone, Debug)]
enum Sent {
    Commit { commitment: Hash },
    Alert { last: bool },
}

#[derive(Clone, Debug)]
struct Inflight {
    hash: Hash,
    batch: SpooledBatch,
    sent: Sent,
    at: Instant,
}

#[derive(Debug)]
struct DeviceState {
    kind: DeviceKind,
    key: SigningKey,
    inflight: Vec<Inflight>,
    /// Refusals (rejected, or lost by the pool and sent again) per window.
    attempts: BTreeMap<TimeMs, u32>,
    /// Windows whose tx was sent at least once, to tell a resend from a first send.
    sent_before: std::collections::BTreeSet<TimeMs>,
}

/// A grantee whose consent may cover a batch.
#[derive(Clone, Debug)]
struct Reader {
    consent: Consent,
    key: EncryptionKey,
}

/// One patient's gateway.
#[derive(Debug)]
pub struct PatientWorker {
    identity: PatientIdentity,
    sim: PatientSim,
    devices: Vec<DeviceState>,
    state: PatientState,
    tracker: AlertTracker,
    rules: Vec<Rule>,
    readers: Vec<Reader>,
    refreshed_at: Option<Instant>,
    ready: bool,
    config: WorkerConfig,
    stats: Arc<Stats>,
}

impl PatientWorker {
    /// A worker resuming from the spool, or starting at `start` (window-aligned) with an extra
    /// hypoglycaemia episode 90 minutes in, so a demo sees an alert early.
    pub fn new(
        identity: PatientIdentity,
        spool: &Spool,
        config: WorkerConfig,
        stats: Arc<Stats>,
        start: TimeMs,
    ) -> Result<Self, WorkerError> {
        let address = identity.keys.address();
        let state = match spool.load_state(&address)? {
            Some(state) => state,
            None => {
                let next_window = batch::window_start(start, config.window_ms);
                let state = PatientState {
                    next_window,
                    extra_hypo: Some(next_window + 90 * 60_000),
                };
                spool.save_state(&address, &state)?;
                state
            }
        };
        let mut sim = PatientSim::new(identity.sim_seed());
        if let Some(at) = state.extra_hypo {
            sim = sim.with_hypo_at(at);
        }
        let devices = DeviceKind::ALL
            .iter()
            .map(|&kind| DeviceState {
                kind,
                key: device_key(&identity.master_seed, kind),
                inflight: Vec::new(),
                attempts: BTreeMap::new(),
                sent_before: Default::default(),
            })
            .collect();
        Ok(PatientWorker {
            identity,
            sim,
            devices,
            state,
            tracker: AlertTracker::new(),
            rules: Vec::new(),
            readers: Vec::new(),
            refreshed_at: None,
            ready: false,
            config,
            stats,
        })
    }

    pub fn name(&self) -> &str {
        &self.identity.name
    }

    pub fn address(&self) -> PublicKey {
        self.identity.keys.address()
    }

    /// Start of the next window to seal.
    pub fn next_window(&self) -> TimeMs {
        self.state.next_window
    }

    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// The patient's device keys, by kind.
    pub fn device_keys(&self) -> Vec<(DeviceKind, PublicKey)> {
        self.devices
            .iter()
            .map(|d| (d.kind, d.key.public_key()))
            .collect()
    }

    /// Txs sent and not yet included.
    pub fn inflight(&self) -> usize {
        self.devices.iter().map(|d| d.inflight.len()).sum()
    }

    fn codes(kind: DeviceKind) -> Result<Vec<LoincCode>, WorkerError> {
        kind.loinc_codes()
            .iter()
            .map(|c| LoincCode::new(c).map_err(|e| WorkerError::Batch(BatchError::Value(e))))
            .collect()
    }

    fn unusable(&self, reason: String) -> WorkerError {
        WorkerError::Unusable {
            name: self.identity.name.clone(),
            reason,
        }
    }

    /// Step 1 (module docs): registers what the chain lacks, in one round of patient txs.
    pub async fn setup(&mut self, client: &RelayClient) -> Result<(), WorkerError> {
        let snap = client.snapshot().await?;
        let me = self.address();
        let mut actions = Vec::new();
        match client.read::<Account>(&snap, &keys::account(&me)).await? {
            None => actions.push(Action::RegisterAccount {
                role: Role::Patient,
                encryption_key: self.identity.keys.encryption_key(),
            }),
            Some(account) if account.role != Role::Patient => {
                return Err(self.unusable(format!("the account is a {:?}, not a patient", account.role)));
            }
            Some(_) => {}
        }
        for device in &self.devices {
            let pk = device.key.public_key();
            match client.read::<Device>(&snap, &keys::device(&pk)).await? {
                None => actions.push(Action::RegisterDevice {
                    device: pk,
                    loinc_codes: Self::codes(device.kind)?,
                }),
                Some(record) if record.owner != me || record.revoked_at.is_some() => {
                    return Err(self.unusable(format!(
                        "device {} is registered to another patient or revoked",
                        device.kind.name()
                    )));
                }
                Some(_) => {}
            }
        }
        if self.config.default_rules {
            let rules = self.read_rules(client, &snap).await?;
            if !rules.iter().any(|r| r.loinc == loinc::GLUCOSE_CGM) {
                actions.push(Action::SetAlertRule {
                    patient: me,
                    loinc: LoincCode::new(loinc::GLUCOSE_CGM)
                        .map_err(|e| WorkerError::Batch(BatchError::Value(e)))?,
                    condition: AlertCondition::Below { milli: 70_000 },
                });
            }
        }
        if !actions.is_empty() {
            let count = actions.len();
            let nonce = client.nonce(&snap, &me).await?;
            let mut last = None;
            for (i, action) in actions.into_iter().enumerate() {
                let tx = Tx::new(&self.identity.keys, client.chain_id(), nonce + i as u64, action);
                last = Some(client.submit(&tx).await?.hash);
            }
            if let Some(hash) = last {
                let waited = Duration::from_secs(60);
                let deadline = Instant::now() + waited;
                while client.tx_height(&hash).await?.is_none() {
                    if Instant::now() > deadline {
                        return Err(WorkerError::SetupTimeout {
                            name: self.identity.name.clone(),
                            waited,
                        });
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
            }
            info!(patient = %self.identity.name, txs = count, "registered on chain");
        }
        self.ready = true;
        Stats::add(&self.stats.patients_ready, 1);
        Ok(())
    }

    async fn read_rules(&self, client: &RelayClient, snap: &Snapshot) -> Result<Vec<Rule>, ChainError> {
        let mut rules = Vec::new();
        for id in client
            .list(snap, ListKind::PatientAlertRules, &self.address().0)
            .await?
        {
            if let Some(rule) = client.read::<AlertRule>(snap, &keys::alert_rule(&id)).await? {
                if !rule.removed {
                    rules.push(Rule {
                        id,
                        loinc: rule.loinc.as_str().to_owned(),
                        condition: rule.condition,
                    });
                }
            }
        }
        Ok(rules)
    }

    /// Re-reads the patient's alert rules and consents (with proofs), at most every
    /// `refresh_every`.
    pub async fn refresh(&mut self, client: &RelayClient, now: TimeMs) -> Result<(), ChainError> {
        if self
            .refreshed_at
            .is_some_and(|t| t.elapsed() < self.config.refresh_every)
        {
            return Ok(());
        }
        let snap = client.snapshot().await?;
        let rules = self.read_rules(client, &snap).await?;
        let mut readers = Vec::new();
        for id in client
            .list(&snap, ListKind::PatientConsents, &self.address().0)
            .await?
        {
            let Some(consent) = client.read::<Consent>(&snap, &keys::consent(&id)).await? else {
                continue;
            };
            if consent.revoked_at.is_some() || consent.terms.valid_until.is_some_and(|until| until <= now) {
                continue;
            }
            let grantee_account = match consent.terms.grantee {
                Grantee::Account(a) => a,
                // The organisation's own key: its storage node can re-wrap for its clinicians.
                Grantee::Organisation(o) => o,
                // Study data is delivered re-wrapped for the study key (DeliverStudyData).
                Grantee::Study(_) => continue,
            };
            if let Some(account) = client
                .read::<Account>(&snap, &keys::account(&grantee_account))
                .await?
            {
                readers.push(Reader {
                    consent,
                    key: account.encryption_key,
                });
            }
        }
        if rules != self.rules || readers.len() != self.readers.len() {
            debug!(patient = %self.identity.name, rules = rules.len(), readers = readers.len(), "rules and consents");
        }
        self.rules = rules;
        self.readers = readers;
        self.refreshed_at = Some(Instant::now());
        Ok(())
    }

    /// Who may read a batch: the patient, and every grantee whose consent is in force at
    /// `now` and whose scope covers the batch as a whole (`ledger::access::scope_covers`).
    fn recipients(&self, plain: &batch::PlainBatch, now: TimeMs) -> Vec<EncryptionKey> {
        let as_commitment = DataCommitment {
            patient: plain.header.patient,
            category: DataCategory::DeviceReadings,
            device: plain.header.device,
            author: None,
            cid: ledger::types::Cid::of(&[]),
            readings_root: Hash::ZERO,
            loinc_codes: plain.loinc_codes.clone(),
            time_range: plain.header.time_range,
            size: 0,
            reading_count: 0,
            committed_at: 0,
            erased_at: None,
        };
        let mut out = vec![self.identity.keys.encryption_key()];
        out.extend(
            self.readers
                .iter()
                .filter(|r| {
                    r.consent.is_active_at(now) && scope_covers(&r.consent.terms.scope, &as_commitment)
                })
                .map(|r| r.key),
        );
        out
    }

    /// Step 2 (module docs): seals every window that ended by `sim_now` into the spool.
    /// Returns the number of batches sealed.
    pub fn seal_due<R: rand_core::CryptoRng + rand_core::RngCore>(
        &mut self,
        sim_now: TimeMs,
        wall_now: TimeMs,
        spool: &Spool,
        rng: &mut R,
    ) -> Result<usize, WorkerError> {
        let mut sealed = 0;
        let me = self.address();
        while self.state.next_window + self.config.window_ms <= sim_now {
            let (from, to) = (
                self.state.next_window,
                self.state.next_window + self.config.window_ms,
            );
            for device in &self.devices {
                let Some(plain) =
                    batch::build(&self.sim, me, device.kind, device.key.public_key(), from, to)?
                else {
                    continue;
                };
                let firings = self.tracker.evaluate(&self.rules, &plain.observations);
                let recipients = self.recipients(&plain, wall_now);
                let sealed_batch = seal_lines(plain.header.clone(), &plain.lines, &recipients, rng)?;
                let spooled = SpooledBatch {
                    format: SPOOL_FORMAT,
                    patient: me,
                    device: device.key.public_key(),
                    window_start: from,
                    body: plain.commitment(&sealed_batch),
                    blob: sealed_batch.blob,
                    firings: firings
                        .iter()
                        .map(|f| SpooledFiring {
                            rule: f.rule,
                            time: f.time,
                            value_milli: to_milli(f.value),
                        })
                        .collect(),
                    commitment: None,
                };
                for f in &firings {
                    info!(patient = %self.identity.name, code = %f.loinc, value = f.value, at = f.time, "alert rule fired");
                }
                if spool.insert(&spooled)? {
                    sealed += 1;
                    Stats::add(&self.stats.batches_sealed, 1);
                    Stats::add(&self.stats.readings_sealed, u64::from(spooled.body.reading_count));
                }
            }
            self.state.next_window = to;
            spool.save_state(&me, &self.state)?;
        }
        Ok(sealed)
    }

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
        for mut batch in batches {
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
                    // Committed already (an answer lost to a restart)? The CID index knows.
                    if let Some(commitment) = client.commitment_of_cid(&snap, &batch.body.cid).await? {
                        if batch.firings.is_empty() {
                            Stats::add(&self.stats.batches_committed, 1);
                            spool.remove(&batch)?;
                        } else {
                            batch.commitment = Some(commitment);
                            spool.update(&batch)?;
                        }
                        continue;
                    }
                    client.put_blob(&batch.body.cid, batch.blob.clone()).await?;
                    let commitment = record_id(b"commitment", &device_pk, nonce);
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

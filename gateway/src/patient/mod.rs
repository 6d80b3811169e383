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
//! (a commitment's id is derived from its CID), so a batch is never committed twice, and
//! nonces always come from the chain.
//! A tx that was admitted but never included (the relay restarted and lost its mempool, or the
//! tx failed at execution) is resent after [`WorkerConfig::resubmit_after`]. A batch counts an
//! attempt when the mempool refuses its tx or had lost it (a resend the pool still holds is a
//! slow chain, not a refusal); after [`WorkerConfig::max_attempts`] it is set aside in the
//! spool's `failed/` folder, readings intact.

use crate::alerts::{to_milli, AlertTracker, Rule};
use crate::batch::{self, BatchError, Reader};
use crate::chain::{ChainError, RelayClient, Snapshot};
use crate::envelope::{seal_lines, EnvelopeError};
use crate::keys::{device_key, PatientIdentity};
use crate::sim::{DeviceKind, PatientSim};
use crate::spool::{PatientState, Spool, SpoolError, SpooledBatch, SpooledFiring, SPOOL_FORMAT};
use ledger::crypto::{PublicKey, SigningKey};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Account, AlertRule, Consent, Device};
use ledger::tx::{Action, AlertCondition, Grantee, Tx};
use ledger::types::{loinc, LoincCode, Role, TimeMs};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, info};

mod send;

use send::Inflight;

/// Tunables of a worker.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Simulated time per batch.
    pub window_ms: u64,
    /// Set "CGM glucose below 70 mg/dL" for patients without a glucose rule.
    pub default_rules: bool,
    /// Grant this account a primary-provider consent (all data, treatment) if the patient
    /// never granted it one: the demo's clinician. A consent the patient revoked stays revoked.
    pub consent_to: Option<ledger::crypto::Address>,
    /// Most batches of one device submitted per round.
    pub round_size: usize,
    /// Resend a tx not included after this long.
    pub resubmit_after: Duration,
    /// Re-read rules and consents at most this often.
    pub refresh_every: Duration,
    /// Set a batch aside after this many refusals.
    pub max_attempts: u32,
    /// Most windows sealed in one step, so that while catching up at high speed sealing and
    /// sending take turns instead of the spool filling before anything is sent.
    pub max_windows_per_step: usize,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            window_ms: ledger::types::HOUR_MS,
            default_rules: true,
            consent_to: None,
            round_size: 16,
            resubmit_after: Duration::from_secs(15),
            refresh_every: Duration::from_secs(10),
            max_attempts: 8,
            max_windows_per_step: 4,
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
    /// The cursor when this process started: batches of earlier windows were sealed (and
    /// perhaps committed) by an earlier run, so their fate is asked of the chain.
    resumed_at: TimeMs,
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
        let resumed_at = state.next_window;
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
            resumed_at,
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
        if let Some(grantee) = self.config.consent_to {
            let mut granted = false;
            for id in client.list(&snap, ListKind::PatientConsents, &me.0).await? {
                if let Some(consent) = client.read::<Consent>(&snap, &keys::consent(&id)).await? {
                    granted |= consent.terms.grantee == Grantee::Account(grantee);
                }
            }
            if !granted {
                let terms = ledger::tx::CareRole::PrimaryProvider.terms(
                    Grantee::Account(grantee),
                    crate::run::wall_now(),
                    Vec::new(),
                );
                actions.push(Action::GrantConsent(terms));
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
        let mut windows = 0;
        while self.state.next_window + self.config.window_ms <= sim_now
            && windows < self.config.max_windows_per_step
        {
            windows += 1;
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
                let recipients = batch::recipients(
                    &plain,
                    self.identity.keys.encryption_key(),
                    &self.readers,
                    wall_now,
                );
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
}

//! The networked half of portability (feature `native`): reading a patient's whole record from
//! the chain and the relay for an export, and committing imported batches.
//!
//! # Security considerations
//! Every state value (account, devices, commitments, consents) is read with a state proof
//! against the relay's latest header ([`RelayClient::read`]; the relay is trusted for headers,
//! as everywhere in the gateway, see [`crate::chain`]). Every blob is checked against its
//! commitment before its Observations enter an export ([`open_batch_verified`]: CID, header,
//! readings Merkle root, count): a relay that serves a wrong or altered blob fails the export
//! instead of putting data the chain never committed into it. Each blob read is a signed
//! access request by the patient, so the export itself shows up in the patient's access log.

use crate::batch::{self, Reader};
use crate::chain::{ChainError, RelayClient, Snapshot};
use crate::envelope::{open_batch_verified, seal_lines, EnvelopeError};
use crate::fhir;
use crate::portability::export::PatientRecord;
use crate::portability::import::{self, ImportBatch, OnChain};
use crate::run::wall_now;
use fhir_model::r4b::resources::Observation;
use ledger::crypto::{AccountKeys, PublicKey};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Account, Consent, DataCommitment, Device};
use ledger::tx::{Action, Grantee, Tx};
use ledger::types::{Cid, DataCategory, Purpose, RecordId, Role, TimeMs, TimeRange};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

/// Blobs fetched at once during an export.
const PARALLEL_READS: usize = 8;
/// Import txs submitted per round (the mempool queues at most 512 per signer).
const IMPORT_ROUND: usize = 64;
/// Longest wait for one round of import txs to be included.
const INCLUSION_WAIT: Duration = Duration::from_secs(60);

/// Why an export or an import failed.
#[derive(Debug, thiserror::Error)]
pub enum PortabilityError {
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("{0} is not a patient account on this chain")]
    NotAPatient(PublicKey),
    /// A blob that does not match its commitment, or does not open with the patient's key.
    #[error("commitment {commitment}: {source}")]
    Blob {
        commitment: RecordId,
        source: EnvelopeError,
    },
    #[error("sealing an imported batch: {0}")]
    Seal(#[from] EnvelopeError),
    #[error("the chain refused the import of batch {batch}: {reason}")]
    Refused { batch: usize, reason: String },
    #[error("{missing} imported batches were not committed within {waited:?}")]
    NotCommitted { missing: usize, waited: Duration },
    #[error("a blob read task failed: {0}")]
    Task(String),
}

/// What an export read, besides the record itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FetchStats {
    pub height: u64,
    /// Data batches read and verified against their commitments.
    pub batches: usize,
    pub blob_bytes: u64,
    /// Commitments not exported: clinician notes (not Observations) and erased batches.
    pub skipped_notes: usize,
    pub skipped_erased: usize,
}

async fn patient_account(
    client: &RelayClient,
    snap: &Snapshot,
    patient: &PublicKey,
) -> Result<Account, PortabilityError> {
    match client.read::<Account>(snap, &keys::account(patient)).await? {
        Some(account) if account.role == Role::Patient => Ok(account),
        _ => Err(PortabilityError::NotAPatient(*patient)),
    }
}

/// Reads the patient's blob of `commitment` with a signed request and checks it.
async fn read_batch(
    client: RelayClient,
    keys: Arc<AccountKeys>,
    id: RecordId,
    commitment: DataCommitment,
) -> Result<(RecordId, u64, Vec<Observation>), PortabilityError> {
    let request = ledger::tx::AccessRequest {
        chain_id: client.chain_id().to_owned(),
        reader: keys.address(),
        commitment: id,
        cid: commitment.cid,
        // The patient reading their own data: the basis is ownership, the purpose their care.
        purpose: Purpose::Treatment,
        time: wall_now(),
        nonce: rand::random(),
    }
    .sign(&keys.signing);
    let blob = client.get_blob(&request).await?;
    let opened = open_batch_verified(&keys, &blob, &commitment).map_err(|source| PortabilityError::Blob {
        commitment: id,
        source,
    })?;
    Ok((id, blob.len() as u64, opened.observations))
}

/// The patient's whole record (devices, every committed batch's Observations, consents), read
/// with proofs and verified blobs (module docs). Observations come in commitment order.
pub async fn fetch_record(
    client: &RelayClient,
    keys: &AccountKeys,
) -> Result<(PatientRecord, FetchStats), PortabilityError> {
    let snap = client.snapshot().await?;
    let me = keys.address();
    patient_account(client, &snap, &me).await?;
    let mut stats = FetchStats {
        height: snap.height,
        ..FetchStats::default()
    };

    let mut devices = Vec::new();
    for id in client.list(&snap, ListKind::PatientDevices, &me.0).await? {
        // The devices list holds each device key as a record id (ledger exec/data.rs).
        let key = PublicKey(id.0);
        if let Some(device) = client.read::<Device>(&snap, &keys::device(&key)).await? {
            devices.push((key, device));
        }
    }

    let mut commitments = Vec::new();
    for (id, c) in patient_commitments(client, &snap, &me).await? {
        if c.category != DataCategory::DeviceReadings {
            stats.skipped_notes += 1;
        } else if c.erased_at.is_some() {
            stats.skipped_erased += 1;
        } else {
            commitments.push((id, c));
        }
    }
    debug!(
        commitments = commitments.len(),
        devices = devices.len(),
        "reading batches"
    );

    let batches = read_batches(client, keys, commitments).await?;
    stats.batches = batches.len();
    stats.blob_bytes = batches.iter().map(|(_, bytes, _)| bytes).sum();

    let mut consents = Vec::new();
    for id in client.list(&snap, ListKind::PatientConsents, &me.0).await? {
        if let Some(consent) = client.read::<Consent>(&snap, &keys::consent(&id)).await? {
            consents.push((id, consent));
        }
    }
    info!(
        height = stats.height,
        batches = stats.batches,
        devices = devices.len(),
        consents = consents.len(),
        "patient record read and verified"
    );
    Ok((
        PatientRecord {
            patient: me,
            devices,
            observations: batches.into_iter().flat_map(|(_, _, o)| o).collect(),
            consents,
        },
        stats,
    ))
}

/// Every commitment on the patient's list, read with its proof, in list order.
async fn patient_commitments(
    client: &RelayClient,
    snap: &Snapshot,
    patient: &PublicKey,
) -> Result<Vec<(RecordId, DataCommitment)>, PortabilityError> {
    let mut out = Vec::new();
    for id in client
        .list(snap, ListKind::PatientCommitments, &patient.0)
        .await?
    {
        if let Some(c) = client
            .read::<DataCommitment>(snap, &keys::commitment(&id))
            .await?
        {
            out.push((id, c));
        }
    }
    Ok(out)
}

/// Reads and checks the blobs of `commitments`, a few at a time; the result keeps their
/// order: (commitment, blob bytes, Observations).
async fn read_batches(
    client: &RelayClient,
    keys: &AccountKeys,
    commitments: Vec<(RecordId, DataCommitment)>,
) -> Result<Vec<(RecordId, u64, Vec<Observation>)>, PortabilityError> {
    let order: std::collections::HashMap<RecordId, usize> = commitments
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    let mut batches: Vec<Option<(RecordId, u64, Vec<Observation>)>> = vec![None; commitments.len()];
    let keys = Arc::new(keys.clone());
    let mut pending = commitments.into_iter();
    let mut tasks = JoinSet::new();
    loop {
        while tasks.len() < PARALLEL_READS {
            let Some((id, c)) = pending.next() else { break };
            tasks.spawn(read_batch(client.clone(), keys.clone(), id, c));
        }
        let Some(done) = tasks.join_next().await else {
            break;
        };
        let batch = done.map_err(|e| PortabilityError::Task(e.to_string()))??;
        if let Some(slot) = order.get(&batch.0).and_then(|&i| batches.get_mut(i)) {
            *slot = Some(batch);
        }
    }
    Ok(batches.into_iter().flatten().collect())
}

/// The readings the patient already has on chain within `range` (every batch of readings,
/// from devices or earlier imports, not erased, whose time range overlaps it), by code and
/// time, read and checked like an export's. An import drops these ([`import::drop_on_chain`]).
pub async fn on_chain_readings(
    client: &RelayClient,
    keys: &AccountKeys,
    range: TimeRange,
) -> Result<OnChain, PortabilityError> {
    let snap = client.snapshot().await?;
    let me = keys.address();
    patient_account(client, &snap, &me).await?;
    let overlapping: Vec<_> = patient_commitments(client, &snap, &me)
        .await?
        .into_iter()
        .filter(|(_, c)| {
            c.category == DataCategory::DeviceReadings
                && c.erased_at.is_none()
                && c.time_range.overlaps(&range)
        })
        .collect();
    let mut on_chain = OnChain::new();
    for (id, _, observations) in read_batches(client, keys, overlapping).await? {
        for o in &observations {
            // Batches on chain passed these checks when sealed; one that does not now (an older
            // gateway's) cannot be compared and is left out.
            if let Ok((at, value)) = import::check_observation(o, TimeMs::MAX) {
                on_chain.insert((fhir::code_of(&value), at), id);
            }
        }
    }
    debug!(
        readings = on_chain.len(),
        "readings already on chain in the import's range"
    );
    Ok(on_chain)
}

/// The patient's grantees in force whose data keys a new batch is wrapped for: the same rule
/// as the device gateway's (`patient` module, `refresh`).
async fn readers(
    client: &RelayClient,
    snap: &Snapshot,
    patient: &PublicKey,
) -> Result<Vec<Reader>, ChainError> {
    let now = wall_now();
    let mut out = Vec::new();
    for id in client.list(snap, ListKind::PatientConsents, &patient.0).await? {
        let Some(consent) = client.read::<Consent>(snap, &keys::consent(&id)).await? else {
            continue;
        };
        if !consent.is_active_at(now) {
            continue;
        }
        let grantee = match consent.terms.grantee {
            Grantee::Account(a) | Grantee::Organisation(a) => a,
            // Study data is delivered re-wrapped for the study key.
            Grantee::Study(_) => continue,
        };
        if let Some(account) = client.read::<Account>(snap, &keys::account(&grantee)).await? {
            out.push(Reader {
                consent,
                key: account.encryption_key,
            });
        }
    }
    Ok(out)
}

/// One imported batch on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommittedBatch {
    pub commitment: RecordId,
    pub cid: Cid,
    pub readings: u32,
    /// The input entries it holds.
    pub entries: Vec<usize>,
}

/// Seals each batch for the patient and the grantees whose consent covers it, uploads the
/// blobs and commits them with `CommitData` signed by the patient (device `None`), in rounds of
/// [`IMPORT_ROUND`] consecutive nonces; returns once the chain holds every one (checked with a
/// proof of the commitment its CID names).
pub async fn commit_batches<R: rand_core::CryptoRng + rand_core::RngCore>(
    client: &RelayClient,
    keys: &AccountKeys,
    batches: &[ImportBatch],
    rng: &mut R,
) -> Result<Vec<CommittedBatch>, PortabilityError> {
    let me = keys.address();
    let snap = client.snapshot().await?;
    patient_account(client, &snap, &me).await?;
    let grantees = readers(client, &snap, &me).await?;
    let mut committed = Vec::with_capacity(batches.len());
    for (round, chunk) in batches.chunks(IMPORT_ROUND).enumerate() {
        let snap = client.snapshot().await?;
        let nonce = client.nonce(&snap, &me).await?;
        let mut sent = Vec::new();
        for (i, batch) in chunk.iter().enumerate() {
            let plain = &batch.plain;
            let recipients = batch::recipients(plain, keys.encryption_key(), &grantees, wall_now());
            let sealed = seal_lines(plain.header.clone(), &plain.lines, &recipients, rng)?;
            client.put_blob(&sealed.cid, sealed.blob.clone()).await?;
            let tx = Tx::new(
                keys,
                client.chain_id(),
                nonce + i as u64,
                Action::CommitData(plain.commitment(&sealed)),
            );
            let index = round * IMPORT_ROUND + i;
            match client.submit(&tx).await {
                Ok(_) => sent.push((sealed.cid, sealed.reading_count, batch.entries.clone())),
                Err(ChainError::Rejected(reason)) => {
                    return Err(PortabilityError::Refused { batch: index, reason })
                }
                Err(e) => return Err(e.into()),
            }
        }
        // Included, and executed: the commitment a CID names exists only if CommitData succeeded.
        let deadline = Instant::now() + INCLUSION_WAIT;
        let mut waiting = sent;
        loop {
            let snap = client.snapshot().await?;
            let mut still = Vec::new();
            for (cid, readings, entries) in waiting {
                match client.commitment_of_cid(&snap, &cid).await? {
                    Some(commitment) => committed.push(CommittedBatch {
                        commitment,
                        cid,
                        readings,
                        entries,
                    }),
                    None => still.push((cid, readings, entries)),
                }
            }
            if still.is_empty() {
                break;
            }
            if Instant::now() > deadline {
                warn!(missing = still.len(), "imported batches not committed in time");
                return Err(PortabilityError::NotCommitted {
                    missing: still.len(),
                    waited: INCLUSION_WAIT,
                });
            }
            waiting = still;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        info!(round, batches = chunk.len(), "imported batches committed");
    }
    Ok(committed)
}

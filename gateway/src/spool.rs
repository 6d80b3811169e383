//! The spool: every sealed batch is on disk before anything is sent, and stays there until
//! the chain holds its commitment (and the alerts it raised), so neither a relay restart nor a
//! gateway crash loses readings (issue 7 item 2).
//!
//! Layout under the spool directory:
//! - `patients.json`: generated patients' seeds ([`crate::keys`]);
//! - `state/<patient>.json`: the patient's simulation cursor ([`PatientState`]);
//! - `batches/<patient>/<device>/<window start, 20 digits>.batch`: one borsh
//!   [`SpooledBatch`] per unsent batch, named by its window so that sealing the same window
//!   twice (after a crash before the cursor moved) finds the first one;
//! - `failed/`: batches the chain kept refusing, moved aside with their readings intact.
//!
//! Every write goes to a temporary file that is synced and renamed over the target: a crash
//! leaves the old or the new version, never half of one.

use borsh::{BorshDeserialize, BorshSerialize};
use ledger::crypto::{Address, PublicKey};
use ledger::tx::DataCommitmentBody;
use ledger::types::{RecordId, TimeMs};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Layout version of [`SpooledBatch`].
pub const SPOOL_FORMAT: u8 = 1;

/// Why the spool could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("spool file {path} is damaged: {reason}")]
    Damaged { path: PathBuf, reason: String },
}

/// A rule that fired on a reading of the batch; raised once the batch is committed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SpooledFiring {
    pub rule: RecordId,
    pub time: TimeMs,
    /// The reading's value in thousandths of its unit (for logs).
    pub value_milli: i64,
}

/// One sealed, not yet fully committed batch.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SpooledBatch {
    pub format: u8,
    pub patient: Address,
    pub device: PublicKey,
    pub window_start: TimeMs,
    /// The encrypted blob ([`crate::envelope::Envelope`]).
    pub blob: Vec<u8>,
    /// The `CommitData` body (CID, readings root, codes, range, size, count).
    pub body: DataCommitmentBody,
    /// Alerts to raise against the commitment.
    pub firings: Vec<SpooledFiring>,
    /// Set once the commitment is on chain and alerts remain to be raised.
    pub commitment: Option<RecordId>,
}

/// Where a patient's simulation stands.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientState {
    /// Start of the next window to seal.
    pub next_window: TimeMs,
    /// The extra hypoglycaemia episode scheduled for the demo, if any.
    pub extra_hypo: Option<TimeMs>,
}

/// The spool directory.
#[derive(Clone, Debug)]
pub struct Spool {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Writes `bytes` to `path` atomically (temp file, fsync, rename); `secret` files are
/// readable by the owner only (on Unix).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), SpoolError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if secret {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(&tmp).map_err(io(&tmp))?;
    file.write_all(bytes).map_err(io(&tmp))?;
    file.sync_all().map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Spool {
    pub fn open(root: &Path) -> Result<Self, SpoolError> {
        for dir in ["batches", "state", "failed"] {
            let path = root.join(dir);
            std::fs::create_dir_all(&path).map_err(io(&path))?;
        }
        Ok(Spool {
            root: root.to_owned(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn device_dir(&self, patient: &Address, device: &PublicKey) -> PathBuf {
        self.root
            .join("batches")
            .join(patient.to_hex())
            .join(device.to_hex())
    }

    fn batch_path(&self, batch: &SpooledBatch) -> PathBuf {
        self.device_dir(&batch.patient, &batch.device)
            .join(format!("{:020}.batch", batch.window_start))
    }

    /// Stores a newly sealed batch; `false` if this device's window is already spooled.
    pub fn insert(&self, batch: &SpooledBatch) -> Result<bool, SpoolError> {
        let path = self.batch_path(batch);
        if path.exists() {
            return Ok(false);
        }
        write_atomic(&path, &ledger::codec::encode(batch), false)?;
        Ok(true)
    }

    /// Rewrites a spooled batch (after its commitment landed).
    pub fn update(&self, batch: &SpooledBatch) -> Result<(), SpoolError> {
        write_atomic(&self.batch_path(batch), &ledger::codec::encode(batch), false)
    }

    /// Drops a batch the chain now holds completely.
    pub fn remove(&self, batch: &SpooledBatch) -> Result<(), SpoolError> {
        let path = self.batch_path(batch);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io(&path)(e)),
            _ => Ok(()),
        }
    }

    /// Moves a batch the chain keeps refusing out of the way, keeping it.
    pub fn set_aside(&self, batch: &SpooledBatch) -> Result<PathBuf, SpoolError> {
        let from = self.batch_path(batch);
        let to = self.root.join("failed").join(format!(
            "{}-{}-{:020}.batch",
            &batch.patient.to_hex()[..16],
            &batch.device.to_hex()[..16],
            batch.window_start
        ));
        std::fs::rename(&from, &to).map_err(io(&from))?;
        Ok(to)
    }

    /// The oldest `limit` spooled batches of one device, oldest first.
    pub fn pending(
        &self,
        patient: &Address,
        device: &PublicKey,
        limit: usize,
    ) -> Result<Vec<SpooledBatch>, SpoolError> {
        let dir = self.device_dir(patient, device);
        let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
            Ok(entries) => entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "batch"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir)(e)),
        };
        names.sort();
        names
            .into_iter()
            .take(limit)
            .map(|path| {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                let batch: SpooledBatch =
                    ledger::codec::decode_limited(&bytes, usize::MAX).map_err(|e| SpoolError::Damaged {
                        path: path.clone(),
                        reason: e.to_string(),
                    })?;
                if batch.format != SPOOL_FORMAT {
                    return Err(SpoolError::Damaged {
                        path,
                        reason: format!("format {} (expected {SPOOL_FORMAT})", batch.format),
                    });
                }
                Ok(batch)
            })
            .collect()
    }

    /// Number of batches waiting, all patients and devices.
    pub fn pending_count(&self) -> usize {
        let Ok(patients) = std::fs::read_dir(self.root.join("batches")) else {
            return 0;
        };
        patients
            .filter_map(Result::ok)
            .filter_map(|p| std::fs::read_dir(p.path()).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter_map(|d| std::fs::read_dir(d.path()).ok())
            .flatten()
            .filter_map(Result::ok)
            .filter(|f| f.path().extension().is_some_and(|x| x == "batch"))
            .count()
    }

    fn state_path(&self, patient: &Address) -> PathBuf {
        self.root.join("state").join(format!("{}.json", patient.to_hex()))
    }

    pub fn load_state(&self, patient: &Address) -> Result<Option<PatientState>, SpoolError> {
        let path = self.state_path(patient);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| SpoolError::Damaged {
                    path,
                    reason: e.to_string(),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    pub fn save_state(&self, patient: &Address, state: &PatientState) -> Result<(), SpoolError> {
        let path = self.state_path(patient);
        let bytes = serde_json::to_vec_pretty(state).map_err(|e| SpoolError::Damaged {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        write_atomic(&path, &bytes, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::crypto::Hash;
    use ledger::types::{Cid, TimeRange};

    fn batch(window_start: TimeMs) -> SpooledBatch {
        SpooledBatch {
            format: SPOOL_FORMAT,
            patient: PublicKey([1; 32]),
            device: PublicKey([2; 32]),
            window_start,
            blob: vec![1, 2, 3],
            body: DataCommitmentBody {
                patient: PublicKey([1; 32]),
                device: Some(PublicKey([2; 32])),
                cid: Cid::of(&[1, 2, 3]),
                readings_root: Hash([3; 32]),
                loinc_codes: vec![],
                time_range: TimeRange { start: 0, end: 1 },
                size: 3,
                reading_count: 1,
            },
            firings: vec![],
            commitment: None,
        }
    }

    #[test]
    fn batches_come_back_oldest_first_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path()).unwrap();
        for w in [7_200_000, 3_600_000, 10_800_000] {
            assert!(spool.insert(&batch(w)).unwrap());
        }
        assert!(
            !spool.insert(&batch(3_600_000)).unwrap(),
            "a window is spooled once"
        );
        let reopened = Spool::open(dir.path()).unwrap();
        let pending = reopened
            .pending(&PublicKey([1; 32]), &PublicKey([2; 32]), 2)
            .unwrap();
        assert_eq!(
            pending.iter().map(|b| b.window_start).collect::<Vec<_>>(),
            [3_600_000, 7_200_000]
        );
        assert_eq!(reopened.pending_count(), 3);

        let mut committed = pending[0].clone();
        committed.commitment = Some(Hash([9; 32]));
        reopened.update(&committed).unwrap();
        assert_eq!(
            reopened
                .pending(&committed.patient, &committed.device, 1)
                .unwrap()[0],
            committed
        );
        reopened.remove(&committed).unwrap();
        reopened.set_aside(&pending[1]).unwrap();
        assert_eq!(reopened.pending_count(), 1);

        let state = PatientState {
            next_window: 42,
            extra_hypo: Some(7),
        };
        reopened.save_state(&PublicKey([1; 32]), &state).unwrap();
        assert_eq!(reopened.load_state(&PublicKey([1; 32])).unwrap(), Some(state));
        assert_eq!(reopened.load_state(&PublicKey([5; 32])).unwrap(), None);
    }
}

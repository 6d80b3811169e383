//! Whose data the gateway simulates: the dev chain's demo patients (from the relay's
//! `dev-keys.json`) and, beyond them, patients the gateway creates itself. `RegisterAccount`
//! needs no permission (ledger `exec/accounts.rs`), so a new patient registers itself.
//!
//! Generated patients' master seeds are kept in `<spool>/patients.json` (owner-only), so a
//! restarted gateway is the same patients with the same devices. Device keys are derived from
//! the patient's master seed ([`device_key`]); they need no storage of their own.
//!
//! These are secrets in plain JSON: fine for a simulator and a demo, never for real patients.

use crate::sim::DeviceKind;
use ledger::crypto::{sha256_concat, AccountKeys, SigningKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why key material could not be loaded or stored.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error("{path}: account {name:?}: {reason}")]
    Invalid {
        path: PathBuf,
        name: String,
        reason: String,
    },
}

/// One simulated patient's identity.
#[derive(Clone, Debug)]
pub struct PatientIdentity {
    pub name: String,
    pub keys: AccountKeys,
    pub master_seed: [u8; 32],
    /// Already an account at genesis (dev patients); others register themselves.
    pub preregistered: bool,
}

impl PatientIdentity {
    pub fn from_seed(name: String, master_seed: [u8; 32], preregistered: bool) -> Self {
        PatientIdentity {
            name,
            keys: AccountKeys::from_master_seed(master_seed),
            master_seed,
            preregistered,
        }
    }

    /// The seed of this patient's simulated physiology (stable: from the address).
    pub fn sim_seed(&self) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.keys.address().0[..8]);
        u64::from_le_bytes(b)
    }
}

/// The key of one of the patient's devices, derived from the patient's master seed.
pub fn device_key(master_seed: &[u8; 32], kind: DeviceKind) -> SigningKey {
    SigningKey::from_seed(sha256_concat(&[b"medledger/gateway/device/v1", master_seed, &[kind.index()]]).0)
}

/// The parts of the relay's `dev-keys.json` the gateway reads.
#[derive(Deserialize)]
struct DevKeysFile {
    chain_id: String,
    accounts: Vec<DevAccount>,
}

#[derive(Deserialize)]
struct DevAccount {
    name: String,
    role: String,
    address: String,
    master_seed: String,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| KeyError::Json {
        path: path.to_owned(),
        source,
    })
}

fn parse_seed(path: &Path, name: &str, hex_seed: &str) -> Result<[u8; 32], KeyError> {
    hex::decode(hex_seed)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::Invalid {
            path: path.to_owned(),
            name: name.to_owned(),
            reason: "master_seed must be 64 hex characters".into(),
        })
}

/// The demo patients of a dev chain's `dev-keys.json`, and its chain id.
pub fn load_dev_patients(path: &Path) -> Result<(String, Vec<PatientIdentity>), KeyError> {
    let file: DevKeysFile = read_json(path)?;
    let mut patients = Vec::new();
    for account in file.accounts.iter().filter(|a| a.role == "patient") {
        let seed = parse_seed(path, &account.name, &account.master_seed)?;
        let identity = PatientIdentity::from_seed(account.name.clone(), seed, true);
        if identity.keys.address().to_hex() != account.address {
            return Err(KeyError::Invalid {
                path: path.to_owned(),
                name: account.name.clone(),
                reason: "address does not belong to the master seed".into(),
            });
        }
        patients.push(identity);
    }
    Ok((file.chain_id, patients))
}

/// The address of the account named `name` in a dev chain's `dev-keys.json`.
pub fn dev_account_address(path: &Path, name: &str) -> Result<ledger::crypto::Address, KeyError> {
    let file: DevKeysFile = read_json(path)?;
    let invalid = |reason: String| KeyError::Invalid {
        path: path.to_owned(),
        name: name.to_owned(),
        reason,
    };
    let account = file
        .accounts
        .iter()
        .find(|a| a.name == name)
        .ok_or_else(|| invalid("no such account".into()))?;
    ledger::crypto::PublicKey::from_hex(&account.address).map_err(|e| invalid(format!("address: {e}")))
}

#[derive(Serialize, Deserialize, Default)]
struct GeneratedFile {
    note: String,
    patients: Vec<GeneratedPatient>,
}

#[derive(Serialize, Deserialize)]
struct GeneratedPatient {
    name: String,
    address: String,
    master_seed: String,
}

/// `count` gateway-made patients, reusing those in `<spool>/patients.json` and appending new
/// ones (fresh random seeds) as needed.
pub fn generated_patients(spool: &Path, count: usize) -> Result<Vec<PatientIdentity>, KeyError> {
    let path = spool.join("patients.json");
    let mut file: GeneratedFile = if path.exists() {
        read_json(&path)?
    } else {
        GeneratedFile::default()
    };
    let before = file.patients.len();
    while file.patients.len() < count {
        let seed: [u8; 32] = rand::random();
        let name = format!("sim-patient-{}", file.patients.len() + 1);
        let keys = AccountKeys::from_master_seed(seed);
        file.patients.push(GeneratedPatient {
            name,
            address: keys.address().to_hex(),
            master_seed: hex::encode(seed),
        });
    }
    if file.patients.len() != before {
        file.note =
            "medledger-gateway simulated patients: master seeds. Secrets: for simulation only.".into();
        write_secret_json(&path, &file)?;
    }
    file.patients
        .iter()
        .take(count)
        .map(|p| {
            Ok(PatientIdentity::from_seed(
                p.name.clone(),
                parse_seed(&path, &p.name, &p.master_seed)?,
                false,
            ))
        })
        .collect()
}

/// Writes `value` as JSON readable by the owner only, replacing `path` atomically.
fn write_secret_json<T: Serialize>(path: &Path, value: &T) -> Result<(), KeyError> {
    let text = serde_json::to_vec_pretty(value).map_err(|source| KeyError::Json {
        path: path.to_owned(),
        source,
    })?;
    crate::spool::write_atomic(path, &text, true).map_err(KeyError::Spool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_patients_are_kept_and_extended() {
        let dir = tempfile::tempdir().unwrap();
        let two = generated_patients(dir.path(), 2).unwrap();
        let three = generated_patients(dir.path(), 3).unwrap();
        assert_eq!(two[1].keys.address(), three[1].keys.address());
        assert_ne!(three[2].keys.address(), three[1].keys.address());
        assert!(!three[0].preregistered);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("patients.json"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "seeds are secrets");
        }
    }

    #[test]
    fn dev_keys_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let seed = [5u8; 32];
        let address = AccountKeys::from_master_seed(seed).address().to_hex();
        let json = |address: &str| {
            serde_json::json!({
                "note": "x", "chain_id": "medledger-dev", "genesis_hash": "00",
                "governance": {"public_key": "00", "secret_seed": "00"},
                "accounts": [
                    {"name": "patient-1", "role": "patient", "address": address,
                     "encryption_key": "00", "master_seed": hex::encode(seed)},
                    {"name": "clinic", "role": "organisation", "address": "00",
                     "encryption_key": "00", "master_seed": hex::encode([6u8; 32])}
                ]
            })
            .to_string()
        };
        let path = dir.path().join("dev-keys.json");
        std::fs::write(&path, json(&address)).unwrap();
        let (chain, patients) = load_dev_patients(&path).unwrap();
        assert_eq!(chain, "medledger-dev");
        assert_eq!(patients.len(), 1);
        assert!(patients[0].preregistered);
        std::fs::write(&path, json(&"11".repeat(32))).unwrap();
        assert!(matches!(load_dev_patients(&path), Err(KeyError::Invalid { .. })));
        assert_ne!(
            device_key(&seed, DeviceKind::Cgm).public_key(),
            device_key(&seed, DeviceKind::BpCuff).public_key()
        );
    }
}

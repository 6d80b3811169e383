//! Account key files (JSON, for people and tools): one 32-byte master seed per account from
//! which `ledger::AccountKeys::from_master_seed` derives the Ed25519 and X25519 keys. Used for
//! the relay's own storage-node account and for the dev chain's demo accounts.
//!
//! These files hold secrets: they are written readable by the owner only (on Unix).

use ledger::crypto::AccountKeys;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path}: {what} must be 64 hex characters")]
    BadHex { path: PathBuf, what: &'static str },
    #[error("{path}: address {address} does not belong to the master seed")]
    AddressMismatch { path: PathBuf, address: String },
}

/// One account's keys as stored on disk.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountKeyFile {
    /// Ed25519 public key (the account address), hex.
    pub address: String,
    /// X25519 public key, hex.
    pub encryption_key: String,
    /// The secret: 32-byte master seed, hex. Keep private.
    pub master_seed: String,
}

impl std::fmt::Debug for AccountKeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AccountKeyFile({})", self.address)
    }
}

impl AccountKeyFile {
    pub fn from_seed(master_seed: [u8; 32]) -> Self {
        let keys = AccountKeys::from_master_seed(master_seed);
        AccountKeyFile {
            address: keys.address().to_hex(),
            encryption_key: hex::encode(keys.encryption_key().0),
            master_seed: hex::encode(master_seed),
        }
    }

    /// The keys, checking that the stored address matches the seed.
    pub fn keys(&self, path: &Path) -> Result<AccountKeys, KeyFileError> {
        let seed: [u8; 32] = hex::decode(&self.master_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| KeyFileError::BadHex {
                path: path.to_owned(),
                what: "master_seed",
            })?;
        let keys = AccountKeys::from_master_seed(seed);
        if keys.address().to_hex() != self.address {
            return Err(KeyFileError::AddressMismatch {
                path: path.to_owned(),
                address: self.address.clone(),
            });
        }
        Ok(keys)
    }
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, KeyFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|source| KeyFileError::Json {
        path: path.to_owned(),
        source,
    })
}

/// Writes `value` as pretty JSON, readable by the owner only, replacing `path` atomically.
pub(crate) fn write_secret_json<T: Serialize>(path: &Path, value: &T) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let text = serde_json::to_string_pretty(value).map_err(|source| KeyFileError::Json {
        path: path.to_owned(),
        source,
    })?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&tmp).map_err(io)?;
    std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Loads the account key at `path`, creating a fresh one there if the file does not exist.
pub fn load_or_create(path: &Path) -> Result<AccountKeys, KeyFileError> {
    if !path.exists() {
        write_secret_json(path, &AccountKeyFile::from_seed(rand::random()))?;
    }
    read_json::<AccountKeyFile>(path)?.keys(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_loads_back_and_a_tampered_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k.json");
        let created = load_or_create(&path).unwrap();
        assert_eq!(load_or_create(&path).unwrap().address(), created.address());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let mut file: AccountKeyFile = read_json(&path).unwrap();
        file.address = "00".repeat(32);
        assert!(matches!(
            file.keys(&path),
            Err(KeyFileError::AddressMismatch { .. })
        ));
    }
}

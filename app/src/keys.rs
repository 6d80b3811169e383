//! The user's keys: made in the browser from 32 random bytes (`crypto.getRandomValues`),
//! kept in IndexedDB, exported and imported as JSON in the relay's key-file format
//! (`{name, role, address, encryption_key, master_seed}`), so the dev chain's demo accounts
//! (`<DATA>/dev-keys.json`, whole file or one account) can be imported too. Nothing secret
//! leaves the browser: only signatures and public keys are sent.
//!
//! A researcher's study keys (X25519, one per study, see [`crate::study`]) are part of the
//! identity: stored and exported with it (`study_keys`, hex seeds), so a backup can still
//! open the study's deliveries.

use crate::error::{AppError, AppResult};
use crate::idb;
use ledger::crypto::AccountKeys;
use serde::{Deserialize, Serialize};

/// One account the user holds.
#[derive(Clone, Debug)]
pub struct Identity {
    pub name: String,
    /// The role the key file claims (the chain's account record is what counts).
    pub role: String,
    pub master_seed: [u8; 32],
    pub keys: AccountKeys,
    /// Seeds of the study keys this researcher made ([`study_keys`](Identity::study_keys)).
    pub study_seeds: Vec<[u8; 32]>,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        self.master_seed == other.master_seed && self.name == other.name
    }
}

/// The relay's key-file format for one account.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyFile {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub encryption_key: String,
    pub master_seed: String,
    /// Hex seeds of the account's study keys (researchers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub study_keys: Vec<String>,
}

impl std::fmt::Debug for KeyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyFile({}, {})", self.name, self.address)
    }
}

#[derive(Deserialize)]
struct DevKeysFile {
    accounts: Vec<KeyFile>,
}

impl Identity {
    pub fn from_seed(name: String, role: String, master_seed: [u8; 32]) -> Self {
        Identity {
            name,
            role,
            master_seed,
            keys: AccountKeys::from_master_seed(master_seed),
            study_seeds: Vec::new(),
        }
    }

    /// The study keys: each seed read as an account's master seed, whose X25519 half is the
    /// study's `study_key` (so the gateway's envelope opens deliveries with it).
    pub fn study_keys(&self) -> Vec<AccountKeys> {
        self.study_seeds
            .iter()
            .map(|s| AccountKeys::from_master_seed(*s))
            .collect()
    }

    /// A fresh key from the browser's CSPRNG.
    pub fn generate(name: String, role: String) -> AppResult<Self> {
        let mut seed = [0u8; 32];
        getrandom02::getrandom(&mut seed).map_err(|e| AppError::Keys(format!("no randomness: {e}")))?;
        Ok(Self::from_seed(name, role, seed))
    }

    pub fn address_hex(&self) -> String {
        self.keys.address().to_hex()
    }

    pub fn to_file(&self) -> KeyFile {
        KeyFile {
            name: self.name.clone(),
            role: self.role.clone(),
            address: self.address_hex(),
            encryption_key: hex::encode(self.keys.encryption_key().0),
            master_seed: hex::encode(self.master_seed),
            study_keys: self.study_seeds.iter().map(hex::encode).collect(),
        }
    }

    fn from_file(file: &KeyFile) -> AppResult<Self> {
        let seed: [u8; 32] = hex::decode(file.master_seed.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AppError::Keys("master_seed must be 64 hex characters".into()))?;
        let mut identity = Self::from_seed(file.name.clone(), file.role.clone(), seed);
        for key in &file.study_keys {
            let seed: [u8; 32] = hex::decode(key.trim())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    AppError::Keys(format!("{}: a study key must be 64 hex characters", file.name))
                })?;
            identity.study_seeds.push(seed);
        }
        if !file.address.is_empty() && file.address != identity.address_hex() {
            return Err(AppError::Keys(format!(
                "{}: address {} does not belong to this master seed",
                file.name, file.address
            )));
        }
        Ok(identity)
    }

    /// A backup: the key file as pretty JSON.
    pub fn export(&self) -> String {
        serde_json::to_string_pretty(&self.to_file()).unwrap_or_default()
    }
}

/// Reads a backup: a whole `dev-keys.json`, one account's key file, or a bare 64-hex seed.
pub fn import(text: &str) -> AppResult<Vec<Identity>> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AppError::Input("paste a key file or a 64-hex master seed".into()));
    }
    if !text.starts_with('{') && !text.starts_with('[') {
        let file = KeyFile {
            name: "imported".into(),
            role: String::new(),
            address: String::new(),
            encryption_key: String::new(),
            master_seed: text.to_string(),
            study_keys: Vec::new(),
        };
        return Ok(vec![Identity::from_file(&file)?]);
    }
    if let Ok(dev) = serde_json::from_str::<DevKeysFile>(text) {
        return dev.accounts.iter().map(Identity::from_file).collect();
    }
    if let Ok(list) = serde_json::from_str::<Vec<KeyFile>>(text) {
        return list.iter().map(Identity::from_file).collect();
    }
    let file: KeyFile = serde_json::from_str(text)
        .map_err(|e| AppError::Keys(format!("not a key file, a dev-keys.json or a seed: {e}")))?;
    Ok(vec![Identity::from_file(&file)?])
}

/// The identities stored in this browser.
pub async fn load() -> AppResult<Vec<Identity>> {
    let Some(bytes) = idb::get(idb::KEYS_KEY).await? else {
        return Ok(Vec::new());
    };
    let files: Vec<KeyFile> =
        serde_json::from_slice(&bytes).map_err(|e| AppError::Store(format!("stored keys: {e}")))?;
    files.iter().map(Identity::from_file).collect()
}

pub async fn save(identities: &[Identity]) -> AppResult<()> {
    let files: Vec<KeyFile> = identities.iter().map(Identity::to_file).collect();
    let bytes = serde_json::to_vec(&files).map_err(|e| AppError::Store(e.to_string()))?;
    idb::put(idb::KEYS_KEY, &bytes).await
}

/// Adds `new` to `list`, replacing an entry with the same address. Study keys are kept from
/// both: re-importing the dev accounts (which hold none) must not lose a study's key.
pub fn merge(list: &mut Vec<Identity>, new: Vec<Identity>) {
    for mut identity in new {
        match list
            .iter_mut()
            .find(|i| i.address_hex() == identity.address_hex())
        {
            Some(existing) => {
                for seed in &existing.study_seeds {
                    if !identity.study_seeds.contains(seed) {
                        identity.study_seeds.push(*seed);
                    }
                }
                *existing = identity;
            }
            None => list.push(identity),
        }
    }
}

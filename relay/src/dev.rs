//! The dev chain of `medledger-relay --dev` (DESIGN §8 "one machine"): a single embedded
//! validator on a genesis with demo accounts, written into the data folder on first run and
//! reused afterwards.
//!
//! Layout of the data folder:
//! - `node/`: the validator's home (`config.toml`, `genesis.json`, `node_key.json`, `data/`);
//! - `dev-keys.json`: the demo accounts' secret keys and the governance key, for the gateway,
//!   tests and demos (written last: its presence marks a complete dev folder).
//!
//! Demo accounts: three patients ([`PATIENTS`]); the organisation [`STORAGE_NODE`], admitted at
//! genesis, which is the relay's own storage-node account (it signs the access records);
//! a [`CLINICIAN`] it attests; a [`CAREGIVER`]; a [`RESEARCHER`] with [`RESEARCHER_BALANCE`].
//!
//! Dev keys are secrets on disk in plain JSON: fine for a demo on one machine, never for
//! real patients.

use crate::clock::{Clock, SystemClock};
use crate::keys::{read_json, write_secret_json, AccountKeyFile, KeyFileError};
use ledger::crypto::{AccountKeys, SigningKey};
use ledger::genesis::GenesisAccount;
use ledger::types::{Amount, Role};
use ledger::{Genesis, Validator};
use node::config::{parse_role, role_name, save_genesis, Home, NodeConfig};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub const DEV_CHAIN_ID: &str = "medledger-dev";
/// The admitted organisation whose key the relay signs access records with.
pub const STORAGE_NODE: &str = "clinic";
pub const PATIENTS: [&str; 3] = ["patient-1", "patient-2", "patient-3"];
/// Attested by [`STORAGE_NODE`].
pub const CLINICIAN: &str = "clinician";
pub const CAREGIVER: &str = "caregiver";
pub const RESEARCHER: &str = "researcher";
pub const RESEARCHER_BALANCE: Amount = 1_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DevError {
    #[error(transparent)]
    Keys(#[from] KeyFileError),
    /// Reading or writing the node home failed (the `node` crate reports with anyhow).
    #[error("dev node home: {0:#}")]
    Home(anyhow::Error),
    #[error("{0} exists but {1} does not: the dev folder is incomplete; remove it to start over")]
    Incomplete(PathBuf, PathBuf),
    #[error("{path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

/// One demo account.
#[derive(Clone, Debug)]
pub struct DevAccount {
    pub name: String,
    pub role: Role,
    pub keys: AccountKeys,
}

/// Everything `dev-keys.json` holds.
#[derive(Clone, Debug)]
pub struct DevKeys {
    pub chain_id: String,
    /// Signs organisation admissions and validator-set changes.
    pub governance: SigningKey,
    pub accounts: Vec<DevAccount>,
}

impl DevKeys {
    pub fn load(path: &Path) -> Result<Self, DevError> {
        let file: DevKeysFile = read_json(path)?;
        let invalid = |reason: &str| DevError::Invalid {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let seed: [u8; 32] = hex::decode(&file.governance.secret_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| invalid("governance.secret_seed must be 64 hex characters"))?;
        let mut accounts = Vec::new();
        for a in &file.accounts {
            accounts.push(DevAccount {
                name: a.name.clone(),
                role: parse_role(&a.role).map_err(|e| invalid(&e.to_string()))?,
                keys: a.key.keys(path)?,
            });
        }
        Ok(DevKeys {
            chain_id: file.chain_id,
            governance: SigningKey::from_seed(seed),
            accounts,
        })
    }

    /// The keys of the account called `name`.
    pub fn account(&self, name: &str) -> Option<&AccountKeys> {
        self.accounts.iter().find(|a| a.name == name).map(|a| &a.keys)
    }
}

#[derive(Serialize, Deserialize)]
struct DevKeysFile {
    note: String,
    chain_id: String,
    genesis_hash: String,
    governance: GovernanceKeyFile,
    accounts: Vec<DevAccountFile>,
}

#[derive(Serialize, Deserialize)]
struct GovernanceKeyFile {
    public_key: String,
    secret_seed: String,
}

#[derive(Serialize, Deserialize)]
struct DevAccountFile {
    name: String,
    role: String,
    #[serde(flatten)]
    key: AccountKeyFile,
}

/// The dev chain's files, opened or created.
#[derive(Debug)]
pub struct DevNetwork {
    pub home: Home,
    pub config: NodeConfig,
    pub genesis: Genesis,
    pub validator_key: SigningKey,
    pub keys: DevKeys,
}

pub fn keys_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-keys.json")
}

pub fn node_home(data_dir: &Path) -> Home {
    Home(data_dir.join("node"))
}

impl DevNetwork {
    /// Opens the dev chain in `data_dir`, creating it (keys, genesis, node home) on first use.
    pub fn open_or_create(data_dir: &Path) -> Result<Self, DevError> {
        let home = node_home(data_dir);
        let keys_file = keys_path(data_dir);
        match (home.genesis().exists(), keys_file.exists()) {
            (true, true) => {}
            (false, false) => create(data_dir)?,
            (true, false) => return Err(DevError::Incomplete(home.genesis(), keys_file)),
            (false, true) => return Err(DevError::Incomplete(keys_file, home.genesis())),
        }
        Ok(DevNetwork {
            config: home.load_config().map_err(DevError::Home)?,
            genesis: home.load_genesis().map_err(DevError::Home)?,
            validator_key: home.load_key().map_err(DevError::Home)?,
            keys: DevKeys::load(&keys_file)?,
            home,
        })
    }

    /// The keys of the relay's storage-node account.
    pub fn storage_node(&self) -> Result<&AccountKeys, DevError> {
        self.keys.account(STORAGE_NODE).ok_or_else(|| DevError::Invalid {
            path: self.home.0.clone(),
            reason: format!("dev-keys.json has no {STORAGE_NODE:?} account"),
        })
    }
}

/// Writes a fresh dev chain into `data_dir`.
fn create(data_dir: &Path) -> Result<(), DevError> {
    let home = node_home(data_dir);
    let validator_key = home.init_key().map_err(DevError::Home)?;
    // Consensus needs a listen address even alone; port 0 avoids clashes on a busy machine.
    home.save_config(&NodeConfig::new("dev", 0, 0))
        .map_err(DevError::Home)?;

    let governance = SigningKey::from_seed(rand::random());
    let accounts = demo_accounts();
    let genesis_accounts = demo_genesis_accounts(&accounts);
    let genesis = Genesis {
        chain_id: DEV_CHAIN_ID.into(),
        genesis_time: SystemClock.now_ms(),
        validators: vec![Validator {
            address: validator_key.public_key(),
            power: 10,
        }],
        governance: governance.public_key(),
        accounts: genesis_accounts,
    };
    genesis.state_diff().map_err(|e| DevError::Invalid {
        path: home.genesis(),
        reason: e.to_string(),
    })?;
    save_genesis(&home.genesis(), &genesis).map_err(DevError::Home)?;

    write_dev_keys(&keys_path(data_dir), &genesis, &governance, accounts)?;
    Ok(())
}

/// The demo accounts with fresh random seeds: name, role, master seed.
fn demo_accounts() -> Vec<(&'static str, Role, [u8; 32])> {
    PATIENTS
        .iter()
        .map(|name| (*name, Role::Patient, rand::random()))
        .chain([
            (STORAGE_NODE, Role::Organisation, rand::random()),
            (CLINICIAN, Role::Clinician, rand::random()),
            (CAREGIVER, Role::Caregiver, rand::random()),
            (RESEARCHER, Role::Researcher, rand::random()),
        ])
        .collect()
}

/// Genesis entries of the demo accounts: the organisation admitted, the clinician attested
/// by it, the researcher funded.
fn demo_genesis_accounts(accounts: &[(&str, Role, [u8; 32])]) -> Vec<GenesisAccount> {
    let organisation = accounts
        .iter()
        .find(|(_, role, _)| *role == Role::Organisation)
        .map(|(_, _, seed)| AccountKeys::from_master_seed(*seed).address());
    accounts
        .iter()
        .map(|(_, role, seed)| {
            let keys = AccountKeys::from_master_seed(*seed);
            GenesisAccount {
                address: keys.address(),
                role: *role,
                encryption_key: keys.encryption_key(),
                balance: if *role == Role::Researcher {
                    RESEARCHER_BALANCE
                } else {
                    0
                },
                admitted: *role == Role::Organisation,
                attested_by: if *role == Role::Clinician {
                    organisation
                } else {
                    None
                },
            }
        })
        .collect()
}

fn write_dev_keys(
    path: &Path,
    genesis: &Genesis,
    governance: &SigningKey,
    accounts: Vec<(&str, Role, [u8; 32])>,
) -> Result<(), DevError> {
    let file = DevKeysFile {
        note: "Medledger demo accounts' keys. Secrets: for a local demo only.".into(),
        chain_id: genesis.chain_id.clone(),
        genesis_hash: genesis.hash().to_hex(),
        governance: GovernanceKeyFile {
            public_key: governance.public_key().to_hex(),
            secret_seed: hex::encode(governance.to_seed()),
        },
        accounts: accounts
            .into_iter()
            .map(|(name, role, seed)| DevAccountFile {
                name: name.into(),
                role: role_name(role).into(),
                key: AccountKeyFile::from_seed(seed),
            })
            .collect(),
    };
    write_secret_json(path, &file)?;
    Ok(())
}

/// Chain id of the demo localnet (`cargo xtask demo`).
pub const DEMO_CHAIN_ID: &str = "medledger-demo";
/// Target block time of the demo localnet.
pub const DEMO_BLOCK_TIME_MS: u64 = 1_000;

/// Creates a `validators`-node localnet in `dir` (homes `node0..`, plus `node{validators}`
/// for this relay to follow) whose genesis holds the demo accounts; writes their keys to
/// `<relay_data>/dev-keys.json` and the organisation's key as the relay's storage-node key
/// `<relay_data>/relay-key.json`. Does nothing if `dir` already holds a localnet.
pub fn create_demo_localnet(
    dir: &Path,
    relay_data: &Path,
    validators: usize,
    base_port: u16,
) -> Result<PathBuf, DevError> {
    let relay_home = dir.join(format!("node{validators}"));
    if dir.join("localnet.json").exists() {
        return Ok(relay_home);
    }
    let accounts = demo_accounts();
    let genesis_accounts = demo_genesis_accounts(&accounts);
    let layout =
        node::localnet::create_with_accounts(dir, validators, 1, base_port, DEMO_CHAIN_ID, genesis_accounts)
            .map_err(DevError::Home)?;
    let governance = layout.governance().map_err(DevError::Home)?;
    // A block a second, like a real deployment: an idle localnet left at "as fast as
    // consensus goes" makes ~100 empty blocks/s and grows its stores by megabytes a second.
    for home in &layout.homes {
        let home = Home(home.clone());
        let mut config = home.load_config().map_err(DevError::Home)?;
        config.target_block_time_ms = DEMO_BLOCK_TIME_MS;
        home.save_config(&config).map_err(DevError::Home)?;
    }
    let genesis = Home(relay_home.clone()).load_genesis().map_err(DevError::Home)?;
    std::fs::create_dir_all(relay_data).map_err(|e| DevError::Invalid {
        path: relay_data.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some((_, _, seed)) = accounts.iter().find(|(_, role, _)| *role == Role::Organisation) {
        write_secret_json(
            &relay_data.join("relay-key.json"),
            &AccountKeyFile::from_seed(*seed),
        )?;
    }
    write_dev_keys(&keys_path(relay_data), &genesis, &governance, accounts)?;
    Ok(relay_home)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_run_creates_and_second_run_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevNetwork::open_or_create(dir.path()).unwrap();
        let second = DevNetwork::open_or_create(dir.path()).unwrap();
        assert_eq!(first.genesis, second.genesis);
        assert_eq!(first.genesis.chain_id, DEV_CHAIN_ID);
        assert_eq!(first.keys.accounts.len(), 7);

        let state = first.genesis.state_diff().unwrap();
        let account = |name: &str| -> ledger::state::records::Account {
            let key = ledger::state::keys::account(&first.keys.account(name).unwrap().address());
            ledger::codec::decode(state[&key].as_ref().unwrap()).unwrap()
        };
        let org = first.storage_node().unwrap().address();
        assert!(account(STORAGE_NODE).admitted);
        assert_eq!(account(CLINICIAN).attested_by, Some(org));
        assert_eq!(account(RESEARCHER).balance, RESEARCHER_BALANCE);
        for p in PATIENTS {
            assert_eq!(account(p).role, Role::Patient);
        }
    }

    #[test]
    fn an_incomplete_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        DevNetwork::open_or_create(dir.path()).unwrap();
        std::fs::remove_file(keys_path(dir.path())).unwrap();
        assert!(matches!(
            DevNetwork::open_or_create(dir.path()),
            Err(DevError::Incomplete(..))
        ));
    }
}

//! Creates the home directories of an N-validator network on loopback: keys, configs that
//! point every node at the others, one shared genesis, and the governance key (kept beside
//! the homes so tests and operators can sign validator-set changes).

use crate::config::{save_genesis, Home, KeyFile, NodeConfig};
use anyhow::Context as _;
use ledger::crypto::SigningKey;
use ledger::genesis::GenesisAccount;
use ledger::{Genesis, Validator};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// What `localnet.json` records about a created network.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LocalnetLayout {
    pub chain_id: String,
    pub homes: Vec<PathBuf>,
    pub rpc: Vec<String>,
    pub p2p: Vec<String>,
    pub governance_key: PathBuf,
}

impl LocalnetLayout {
    pub fn load(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join("localnet.json");
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    pub fn governance(&self) -> anyhow::Result<SigningKey> {
        let file: KeyFile = serde_json::from_str(&std::fs::read_to_string(&self.governance_key)?)?;
        let seed: [u8; 32] = hex::decode(file.secret_seed)?
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad governance key"))?;
        Ok(SigningKey::from_seed(seed))
    }
}

/// Home of node `index` (0-based) in `dir`.
pub fn home(dir: &Path, index: usize) -> Home {
    Home(dir.join(format!("node{index}")))
}

/// Creates (or, if it exists, reuses) an N-validator localnet in `dir`; ports start at
/// `base_port` (p2p) and `base_port + 100` (HTTP). `extra_homes` nodes get homes and
/// configs but no validator power (followers or validators that join later).
pub fn create(
    dir: &Path,
    validators: usize,
    extra_homes: usize,
    base_port: u16,
    chain_id: &str,
) -> anyhow::Result<LocalnetLayout> {
    create_with_accounts(dir, validators, extra_homes, base_port, chain_id, Vec::new())
}

/// [`create`], with `accounts` in the genesis (e.g. pre-funded accounts for a benchmark).
/// An existing localnet in `dir` is reused as it is: `accounts` then changes nothing.
pub fn create_with_accounts(
    dir: &Path,
    validators: usize,
    extra_homes: usize,
    base_port: u16,
    chain_id: &str,
    accounts: Vec<GenesisAccount>,
) -> anyhow::Result<LocalnetLayout> {
    if dir.join("localnet.json").exists() {
        return LocalnetLayout::load(dir);
    }
    std::fs::create_dir_all(dir)?;
    let total = validators + extra_homes;
    let p2p: Vec<String> = (0..total)
        .map(|i| format!("/ip4/127.0.0.1/tcp/{}", base_port + i as u16))
        .collect();
    let rpc: Vec<String> = (0..total)
        .map(|i| format!("127.0.0.1:{}", base_port + 100 + i as u16))
        .collect();
    // Validators sharing this machine's cores: early re-execution would only compete with
    // the proposer (see `NodeConfig::execute_proposals_early`).
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut keys = Vec::new();
    for i in 0..total {
        let home = home(dir, i);
        let mut config = NodeConfig::new(
            &format!("node{i}"),
            base_port + i as u16,
            base_port + 100 + i as u16,
        );
        config.persistent_peers = p2p
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        config.peer_rpcs = rpc
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, a)| a.clone())
            .collect();
        config.execute_proposals_early = validators <= cores;
        home.save_config(&config)?;
        keys.push(home.init_key()?);
    }
    let governance = SigningKey::from_seed(rand::random());
    let governance_key = dir.join("governance_key.json");
    let file = KeyFile {
        public_key: governance.public_key().to_hex(),
        secret_seed: hex::encode(governance.to_seed()),
    };
    std::fs::write(&governance_key, serde_json::to_string_pretty(&file)?)?;
    let genesis_time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as u64;
    let genesis = Genesis {
        chain_id: chain_id.to_owned(),
        genesis_time,
        validators: keys[..validators]
            .iter()
            .map(|k| Validator {
                address: k.public_key(),
                power: 10,
            })
            .collect(),
        governance: governance.public_key(),
        accounts,
    };
    genesis.state_diff().context("localnet genesis is invalid")?;
    for i in 0..total {
        save_genesis(&home(dir, i).genesis(), &genesis)?;
    }
    let layout = LocalnetLayout {
        chain_id: chain_id.to_owned(),
        homes: (0..total).map(|i| home(dir, i).0).collect(),
        rpc,
        p2p,
        governance_key,
    };
    std::fs::write(dir.join("localnet.json"), serde_json::to_string_pretty(&layout)?)?;
    Ok(layout)
}

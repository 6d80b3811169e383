//! A node's home directory: `config.toml`, `genesis.json`, `node_key.json`, `data/`.
//! JSON and TOML are for people; everything hashed or signed stays borsh (DESIGN §2).

use anyhow::{bail, Context as _};
use ledger::crypto::{EncryptionKey, PublicKey, SigningKey};
use ledger::genesis::{Genesis, GenesisAccount};
use ledger::types::Role;
use ledger::Validator;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeConfig {
    /// Name in logs and metrics.
    pub moniker: String,
    /// Consensus p2p listen address (libp2p multiaddr), e.g. /ip4/127.0.0.1/tcp/26600.
    pub p2p_listen: String,
    /// Consensus peers to keep connected to.
    pub persistent_peers: Vec<String>,
    /// HTTP API (tx submission, queries, /metrics), e.g. 127.0.0.1:26700.
    pub rpc_listen: String,
    /// Other nodes' HTTP APIs: new txs are forwarded there so they reach every proposer.
    #[serde(default)]
    pub peer_rpcs: Vec<String>,
    /// How many times a tx is forwarded between nodes: 1 reaches every mempool when
    /// `peer_rpcs` lists every other validator (as `localnet` writes it); raise it if they
    /// form a partial mesh.
    #[serde(default = "default_tx_forward_hops")]
    pub tx_forward_hops: u32,
    /// Minimum time between blocks in ms (0 = as fast as consensus goes, which an idle chain
    /// also does: ~35 near-empty blocks/s on a 4-validator localnet on 2 cores, ~1.4 cores).
    #[serde(default)]
    pub target_block_time_ms: u64,
    /// Propose timeout in ms (first round); later rounds grow by half of it each.
    #[serde(default = "default_propose_timeout")]
    pub propose_timeout_ms: u64,
    #[serde(default = "default_mempool_max")]
    pub mempool_max_txs: usize,
    /// Re-execute a proposal's txs as soon as they arrive, while its proposer still computes
    /// the state root (true), or only once its header is there (false). Early is what a
    /// validator with cores of its own wants (p50 20–40 % lower, 2 validators on 2 cores);
    /// where validators share too few cores the overlap only adds contention, so `localnet`
    /// turns it off when its validators outnumber this machine's cores.
    #[serde(default = "default_execute_proposals_early")]
    pub execute_proposals_early: bool,
}

fn default_execute_proposals_early() -> bool {
    true
}

fn default_propose_timeout() -> u64 {
    3_000
}
fn default_tx_forward_hops() -> u32 {
    1
}
fn default_mempool_max() -> usize {
    50_000
}

impl NodeConfig {
    pub fn new(moniker: &str, p2p_port: u16, rpc_port: u16) -> Self {
        NodeConfig {
            moniker: moniker.to_owned(),
            p2p_listen: format!("/ip4/127.0.0.1/tcp/{p2p_port}"),
            persistent_peers: vec![],
            rpc_listen: format!("127.0.0.1:{rpc_port}"),
            peer_rpcs: vec![],
            tx_forward_hops: default_tx_forward_hops(),
            target_block_time_ms: 0,
            propose_timeout_ms: default_propose_timeout(),
            mempool_max_txs: default_mempool_max(),
            execute_proposals_early: default_execute_proposals_early(),
        }
    }
}

/// The files of one node's home directory.
#[derive(Clone, Debug)]
pub struct Home(pub PathBuf);

impl Home {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    pub fn genesis(&self) -> PathBuf {
        self.0.join("genesis.json")
    }
    pub fn key(&self) -> PathBuf {
        self.0.join("node_key.json")
    }
    pub fn store(&self) -> PathBuf {
        self.0.join("data").join("store.redb")
    }
    pub fn wal(&self) -> PathBuf {
        self.0.join("data").join("wal").join("consensus.wal")
    }

    pub fn load_config(&self) -> anyhow::Result<NodeConfig> {
        let text = std::fs::read_to_string(self.config())
            .with_context(|| format!("reading {}", self.config().display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", self.config().display()))
    }

    pub fn save_config(&self, config: &NodeConfig) -> anyhow::Result<()> {
        write_new_or_replace(&self.config(), &toml::to_string_pretty(config)?)
    }

    pub fn load_key(&self) -> anyhow::Result<SigningKey> {
        let text = std::fs::read_to_string(self.key())
            .with_context(|| format!("reading {}", self.key().display()))?;
        let file: KeyFile = serde_json::from_str(&text).context("parsing node_key.json")?;
        let seed: [u8; 32] = hex::decode(&file.secret_seed)
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("node_key.json: secret_seed must be 64 hex characters")?;
        Ok(SigningKey::from_seed(seed))
    }

    /// Creates a key unless one exists; returns the key.
    pub fn init_key(&self) -> anyhow::Result<SigningKey> {
        if self.key().exists() {
            return self.load_key();
        }
        let key = SigningKey::from_seed(rand::random());
        let file = KeyFile {
            public_key: key.public_key().to_hex(),
            secret_seed: hex::encode(key.to_seed()),
        };
        write_new_or_replace(&self.key(), &serde_json::to_string_pretty(&file)?)?;
        Ok(key)
    }

    pub fn load_genesis(&self) -> anyhow::Result<Genesis> {
        let text = std::fs::read_to_string(self.genesis())
            .with_context(|| format!("reading {}", self.genesis().display()))?;
        serde_json::from_str::<GenesisFile>(&text)
            .context("parsing genesis.json")?
            .to_genesis()
    }
}

fn write_new_or_replace(path: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

#[derive(Serialize, Deserialize)]
#[allow(missing_debug_implementations)] // holds a secret seed: never printed
pub struct KeyFile {
    pub public_key: String,
    /// Ed25519 secret seed, hex. Keep this file private.
    pub secret_seed: String,
}

/// genesis.json: the ledger genesis with hex keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenesisFile {
    pub chain_id: String,
    pub genesis_time_ms: u64,
    pub governance: String,
    pub validators: Vec<GenesisValidator>,
    #[serde(default)]
    pub accounts: Vec<GenesisAccountFile>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenesisValidator {
    pub public_key: String,
    pub power: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GenesisAccountFile {
    pub address: String,
    pub role: String,
    pub encryption_key: String,
    #[serde(default)]
    pub balance: u64,
    #[serde(default)]
    pub admitted: bool,
    #[serde(default)]
    pub attested_by: Option<String>,
}

fn key32(what: &str, hex_str: &str) -> anyhow::Result<[u8; 32]> {
    match hex::decode(hex_str)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
    {
        Some(k) => Ok(k),
        None => bail!("{what}: expected 64 hex characters, got {hex_str:?}"),
    }
}

pub fn parse_role(s: &str) -> anyhow::Result<Role> {
    Ok(match s {
        "patient" => Role::Patient,
        "clinician" => Role::Clinician,
        "caregiver" => Role::Caregiver,
        "researcher" => Role::Researcher,
        "organisation" => Role::Organisation,
        "auditor" => Role::Auditor,
        other => bail!("unknown role {other:?}"),
    })
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Patient => "patient",
        Role::Clinician => "clinician",
        Role::Caregiver => "caregiver",
        Role::Researcher => "researcher",
        Role::Organisation => "organisation",
        Role::Auditor => "auditor",
    }
}

impl GenesisFile {
    pub fn to_genesis(&self) -> anyhow::Result<Genesis> {
        let mut validators = Vec::new();
        for v in &self.validators {
            validators.push(Validator {
                address: PublicKey(key32("validator public_key", &v.public_key)?),
                power: v.power,
            });
        }
        let mut accounts = Vec::new();
        for a in &self.accounts {
            accounts.push(GenesisAccount {
                address: PublicKey(key32("account address", &a.address)?),
                role: parse_role(&a.role)?,
                encryption_key: EncryptionKey(key32("account encryption_key", &a.encryption_key)?),
                balance: a.balance,
                admitted: a.admitted,
                attested_by: a
                    .attested_by
                    .as_deref()
                    .map(|s| key32("attested_by", s).map(PublicKey))
                    .transpose()?,
            });
        }
        let genesis = Genesis {
            chain_id: self.chain_id.clone(),
            genesis_time: self.genesis_time_ms,
            validators,
            governance: PublicKey(key32("governance", &self.governance)?),
            accounts,
        };
        genesis.state_diff().context("genesis is invalid")?;
        Ok(genesis)
    }

    pub fn from_genesis(g: &Genesis) -> Self {
        GenesisFile {
            chain_id: g.chain_id.clone(),
            genesis_time_ms: g.genesis_time,
            governance: g.governance.to_hex(),
            validators: g
                .validators
                .iter()
                .map(|v| GenesisValidator {
                    public_key: v.address.to_hex(),
                    power: v.power,
                })
                .collect(),
            accounts: g
                .accounts
                .iter()
                .map(|a| GenesisAccountFile {
                    address: a.address.to_hex(),
                    role: role_name(a.role).into(),
                    encryption_key: hex::encode(a.encryption_key.0),
                    balance: a.balance,
                    admitted: a.admitted,
                    attested_by: a.attested_by.map(|p| p.to_hex()),
                })
                .collect(),
        }
    }
}

pub fn save_genesis(path: &Path, genesis: &Genesis) -> anyhow::Result<()> {
    write_new_or_replace(
        path,
        &serde_json::to_string_pretty(&GenesisFile::from_genesis(genesis))?,
    )
}

//! Test harness: starts real `medledger-node` processes on loopback in a scratch directory,
//! talks to them over their HTTP API, and kills them (gracefully or with SIGKILL).

pub mod lying;
pub mod privacy;
pub mod relay;

use anyhow::{anyhow, bail, Context};
use ledger::crypto::Hash;
use ledger::genesis::GenesisAccount;
use ledger::header::{Block, Commit, Header};
use ledger::ValidatorSet;
use node::localnet::{self, LocalnetLayout};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Chain id of every network the harness creates.
pub const CHAIN_ID: &str = "medledger-e2e";

/// The workspace root (this crate lives in `<root>/tests`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Held for the whole of a test that starts a network: one network at a time, since each
/// wants both cores and `cargo test` runs a binary's tests on parallel threads. (This replaces
/// `--test-threads=1`, so the harness runs in the same `cargo test --workspace` as everything
/// else: one feature resolution, one build.)
pub async fn one_network_at_a_time() -> tokio::sync::MutexGuard<'static, ()> {
    static NETWORK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    NETWORK.lock().await
}

/// The node binary: `MEDLEDGER_NODE_BIN`, else built once with cargo (same profile as tests).
pub fn node_binary() -> PathBuf {
    workspace_binary("medledger-node", "MEDLEDGER_NODE_BIN")
}

/// The binary `name` of package `name`: the path in `env_var` if set, else built with cargo
/// (debug, like the tests) in this workspace's target dir.
pub fn workspace_binary(name: &str, env_var: &str) -> PathBuf {
    if let Ok(path) = std::env::var(env_var) {
        return PathBuf::from(path);
    }
    let root = workspace_root();
    let status = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", name, "--bin", name])
        .current_dir(&root)
        .status()
        .unwrap_or_else(|e| panic!("cargo build of {name}: {e}"));
    assert!(status.success(), "building {name} failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug").join(name)
}

/// A free block of ports: each test gets its own, so tests can run in parallel.
fn free_base_port() -> u16 {
    loop {
        let base = 20_000 + (rand::random::<u16>() % 300) * 100;
        let free = (0..10).all(|i| {
            std::net::TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && std::net::TcpListener::bind(("127.0.0.1", base + 100 + i)).is_ok()
        });
        if free {
            return base;
        }
    }
}

#[derive(Debug)]
pub struct Localnet {
    pub dir: PathBuf,
    pub layout: LocalnetLayout,
    binary: PathBuf,
    procs: Vec<Option<Child>>,
    client: reqwest::Client,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub height: u64,
    pub block_id: Option<String>,
    pub state_root: Option<String>,
}

impl Localnet {
    /// `validators` in genesis plus `extra` homes without power.
    pub fn new(name: &str, validators: usize, extra: usize) -> anyhow::Result<Self> {
        Self::with_accounts(name, validators, extra, Vec::new())
    }

    /// Like [`Localnet::new`], with `accounts` in the genesis (e.g. pre-funded ones).
    pub fn with_accounts(
        name: &str,
        validators: usize,
        extra: usize,
        accounts: Vec<GenesisAccount>,
    ) -> anyhow::Result<Self> {
        let dir = workspace_root()
            .join("target")
            .join("e2e")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let layout =
            localnet::create_with_accounts(&dir, validators, extra, free_base_port(), CHAIN_ID, accounts)?;
        let procs = (0..layout.homes.len()).map(|_| None).collect();
        Ok(Localnet {
            dir,
            layout,
            binary: node_binary(),
            procs,
            client: reqwest::Client::new(),
        })
    }

    fn spawn(&mut self, index: usize, follower: bool) -> anyhow::Result<()> {
        let home = &self.layout.homes[index];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("node{index}.log")))?;
        let mut cmd = Command::new(&self.binary);
        cmd.arg("start").arg("--home").arg(home);
        if follower {
            cmd.arg("--follower");
        }
        let child = cmd
            .env("RUST_LOG", "info,libp2p=warn")
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.procs[index] = Some(child);
        Ok(())
    }

    /// Sets every home's target block time (0, the localnet default, is as fast as consensus
    /// goes: ~100 blocks/s here, more than a follower should have to keep up with in a test).
    pub fn set_block_time_ms(&self, ms: u64) -> anyhow::Result<()> {
        for home in &self.layout.homes {
            let path = home.join("config.toml");
            let text = std::fs::read_to_string(&path)?;
            let mut lines: Vec<String> = text
                .lines()
                .filter(|l| !l.starts_with("target_block_time_ms"))
                .map(String::from)
                .collect();
            // Top-level key: it must come before the first table header.
            let at = lines
                .iter()
                .position(|l| l.starts_with('['))
                .unwrap_or(lines.len());
            lines.insert(at, format!("target_block_time_ms = {ms}"));
            std::fs::write(&path, lines.join("\n") + "\n")?;
        }
        Ok(())
    }

    pub fn start(&mut self, index: usize) -> anyhow::Result<()> {
        self.spawn(index, false)
    }

    pub fn start_follower(&mut self, index: usize) -> anyhow::Result<()> {
        self.spawn(index, true)
    }

    pub fn start_all_validators(&mut self, validators: usize) -> anyhow::Result<()> {
        (0..validators).try_for_each(|i| self.start(i))
    }

    /// SIGKILL: no shutdown code runs, exactly like a crash or power loss.
    pub fn kill9(&mut self, index: usize) {
        if let Some(mut child) = self.procs[index].take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// OS process id of node `index`, while it runs.
    pub fn pid(&self, index: usize) -> Option<u32> {
        self.procs.get(index)?.as_ref().map(Child::id)
    }

    pub fn rpc(&self, index: usize) -> String {
        format!("http://{}", self.layout.rpc[index])
    }

    pub async fn status(&self, index: usize) -> anyhow::Result<Status> {
        let v: serde_json::Value = self
            .client
            .get(format!("{}/status", self.rpc(index)))
            .send()
            .await?
            .json()
            .await?;
        Ok(Status {
            height: v["height"].as_u64().ok_or_else(|| anyhow!("no height"))?,
            block_id: v["block_id"].as_str().map(str::to_owned),
            state_root: v["state_root"].as_str().map(str::to_owned),
        })
    }

    /// Waits until node `index` reports at least `height`.
    pub async fn wait_height(&self, index: usize, height: u64, timeout: Duration) -> anyhow::Result<u64> {
        let start = Instant::now();
        loop {
            if let Ok(s) = self.status(index).await {
                if s.height >= height {
                    return Ok(s.height);
                }
            }
            if start.elapsed() > timeout {
                bail!(
                    "node{index} did not reach height {height} within {timeout:?} (log: {})",
                    self.dir.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn get_borsh<T: borsh::BorshDeserialize>(
        &self,
        index: usize,
        path: &str,
    ) -> anyhow::Result<Option<T>> {
        let response = self
            .client
            .get(format!("{}{path}", self.rpc(index)))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let bytes = response.error_for_status()?.bytes().await?;
        Ok(Some(ledger::codec::decode(&bytes)?))
    }

    pub async fn header(&self, index: usize, height: u64) -> anyhow::Result<Option<Header>> {
        self.get_borsh(index, &format!("/header/{height}")).await
    }
    pub async fn commit(&self, index: usize, height: u64) -> anyhow::Result<Option<Commit>> {
        self.get_borsh(index, &format!("/commit/{height}")).await
    }
    pub async fn block(&self, index: usize, height: u64) -> anyhow::Result<Option<Block>> {
        self.get_borsh(index, &format!("/block/{height}")).await
    }
    pub async fn validators(&self, index: usize, height: u64) -> anyhow::Result<Option<ValidatorSet>> {
        self.get_borsh(index, &format!("/validators/{height}")).await
    }

    /// Submits a tx; `Err` carries the node's reject reason.
    pub async fn submit(&self, index: usize, tx: Vec<u8>) -> anyhow::Result<Result<Hash, String>> {
        // The node's API comes up a moment after its process starts.
        let deadline = Instant::now() + Duration::from_secs(30);
        let response = loop {
            match self
                .client
                .post(format!("{}/tx", self.rpc(index)))
                .body(tx.clone())
                .send()
                .await
            {
                Ok(r) => break r,
                Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(e) => return Err(e.into()),
            }
        };
        let ok = response.status().is_success();
        let v: serde_json::Value = response.json().await?;
        if ok {
            let hash = v["hash"].as_str().ok_or_else(|| anyhow!("no hash"))?;
            Ok(Ok(Hash::from_hex(hash)?))
        } else {
            Ok(Err(v["error"].as_str().unwrap_or("?").to_owned()))
        }
    }

    /// The height at which a tx was committed, if it was.
    pub async fn tx_height(&self, index: usize, hash: &Hash) -> anyhow::Result<Option<u64>> {
        let response = self
            .client
            .get(format!("{}/tx/{}", self.rpc(index), hash.to_hex()))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let v: serde_json::Value = response.error_for_status()?.json().await?;
        Ok(v["height"].as_u64())
    }
}

impl Drop for Localnet {
    fn drop(&mut self) {
        for i in 0..self.procs.len() {
            self.kill9(i);
        }
    }
}

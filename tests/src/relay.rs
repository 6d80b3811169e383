//! `medledger-relay` processes for end-to-end tests: following a [`crate::Localnet`] home, or
//! `--dev`; on free ports, restartable on the same ports and data.

use anyhow::{anyhow, bail, Context};
use ledger::genesis::Genesis;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

/// The relay binary: `MEDLEDGER_RELAY_BIN`, else built once with cargo (same profile as tests).
pub fn relay_binary() -> PathBuf {
    crate::workspace_binary("medledger-relay", "MEDLEDGER_RELAY_BIN")
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// How the relay gets its chain.
#[derive(Debug, Clone)]
pub enum RelayMode {
    /// `--dev`: its own one-validator chain with demo accounts.
    Dev,
    /// `--home`: follow the network this node home belongs to.
    Follow(PathBuf),
}

/// What `/.well-known/medledger.json` says, parsed.
#[derive(Debug, Clone)]
pub struct Discovery {
    pub chain_id: String,
    pub genesis_hash: String,
    pub height: u64,
    /// Browser addresses: WebRTC-direct (with certhash) and WebSocket, with the peer id.
    pub webrtc: String,
    pub ws: String,
}

#[derive(Debug)]
pub struct RelayProcess {
    child: Option<Child>,
    mode: RelayMode,
    pub data: PathBuf,
    pub http: u16,
    pub tcp: u16,
    pub ws: u16,
    pub webrtc: u16,
    /// Appended to the command line at every (re)start, e.g. `--block-time-ms 1000`.
    pub extra_args: Vec<String>,
    starts: u32,
    client: reqwest::Client,
}

impl RelayProcess {
    /// Starts a relay with its state in `data` and waits until its libp2p listeners are up.
    pub async fn start(mode: RelayMode, data: &Path) -> anyhow::Result<(RelayProcess, Discovery)> {
        Self::start_with_args(mode, data, Vec::new()).await
    }

    /// [`RelayProcess::start`] with extra command-line arguments (kept for restarts).
    pub async fn start_with_args(
        mode: RelayMode,
        data: &Path,
        extra_args: Vec<String>,
    ) -> anyhow::Result<(RelayProcess, Discovery)> {
        std::fs::create_dir_all(data)?;
        let mut relay = RelayProcess {
            child: None,
            mode,
            data: data.to_owned(),
            http: free_tcp_port(),
            tcp: free_tcp_port(),
            ws: free_tcp_port(),
            webrtc: free_udp_port(),
            extra_args,
            starts: 0,
            client: reqwest::Client::new(),
        };
        let discovery = relay.restart().await?;
        Ok((relay, discovery))
    }

    /// The running process's id; `None` when it is not running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.http)
    }

    /// Starts the process (again) on the same ports and data.
    pub async fn restart(&mut self) -> anyhow::Result<Discovery> {
        if self.child.is_some() {
            bail!("the relay is still running");
        }
        self.starts += 1;
        let log = std::fs::File::create(self.data.join(format!("relay-{}.log", self.starts)))?;
        let mut cmd = Command::new(relay_binary());
        match &self.mode {
            RelayMode::Dev => cmd.arg("--dev"),
            RelayMode::Follow(home) => cmd.arg("--home").arg(home),
        };
        let child = cmd
            .arg("--data")
            .arg(&self.data)
            .args(["--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--p2p-host", "127.0.0.1"])
            .args(["--p2p-tcp", &self.tcp.to_string()])
            .args(["--p2p-ws", &self.ws.to_string()])
            .args(["--p2p-webrtc", &self.webrtc.to_string()])
            .args(&self.extra_args)
            .env("RUST_LOG", "info,libp2p=warn,webrtc=warn")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting medledger-relay")?;
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(discovery) = self.discovery().await {
                return Ok(discovery);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "the relay did not come up within 60 s (see {})",
                    self.data.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The discovery document, once it lists both browser addresses.
    pub async fn discovery(&self) -> anyhow::Result<Discovery> {
        let url = format!("{}/.well-known/medledger.json", self.http_url());
        let doc: serde_json::Value = self.client.get(&url).send().await?.json().await?;
        let addrs: Vec<String> = doc["multiaddrs"]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let find = |kind: &str| addrs.iter().find(|a| a.contains(kind)).cloned();
        let (Some(webrtc), Some(ws)) = (find("/webrtc-direct/"), find("/ws/")) else {
            bail!("libp2p listeners not up yet: {addrs:?}");
        };
        Ok(Discovery {
            chain_id: doc["chain_id"].as_str().unwrap_or_default().to_owned(),
            genesis_hash: doc["genesis_hash"].as_str().unwrap_or_default().to_owned(),
            height: doc["height"].as_u64().unwrap_or(0),
            webrtc,
            ws,
        })
    }

    /// The TCP address for native peers (discovery lists browser addresses), with the peer id.
    pub fn tcp_addr(&self, discovery: &Discovery) -> String {
        let peer = discovery.ws.rsplit("/p2p/").next().unwrap_or_default();
        format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.tcp)
    }

    /// The genesis the relay serves, checked against the hash in its discovery document.
    pub async fn genesis(&self, discovery: &Discovery) -> anyhow::Result<Genesis> {
        let bytes = self
            .client
            .get(format!("{}/genesis", self.http_url()))
            .send()
            .await?
            .bytes()
            .await?;
        let genesis: Genesis = ledger::codec::decode(&bytes).map_err(|e| anyhow!("genesis: {e}"))?;
        if genesis.hash().to_hex() != discovery.genesis_hash {
            bail!("the relay's genesis does not hash to its discovery document's genesis_hash");
        }
        Ok(genesis)
    }

    /// SIGKILL: as in a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

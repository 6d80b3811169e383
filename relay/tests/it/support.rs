//! Shared helpers: a dev relay on a temp dir, txs from dev accounts, waiting, and a moto S3
//! server.

use ledger::crypto::{AccountKeys, Hash};
use ledger::exec::expected_nonce;
use ledger::tx::{Action, Tx};
use relay::config::DevOptions;
use relay::dev::{self, DevKeys};
use relay::{ChainSource, Relay, RelayConfig};
use std::future::Future;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A debug-build validator makes ~2 blocks/s; waits are generous for a busy 2-core machine.
pub const WAIT: Duration = Duration::from_secs(90);

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// Polls `check` until it returns `Some`, or panics after [`WAIT`] naming `what`.
pub async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < WAIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A relay with its embedded dev validator, on a temp dir, with fast blocks.
pub struct DevRelay {
    pub relay: Relay,
    pub keys: DevKeys,
    _dir: tempfile::TempDir,
}

/// Largest blob the test relays take, so oversize is cheap to test.
pub const TEST_MAX_BLOB: u64 = 4096;

impl DevRelay {
    pub async fn start() -> DevRelay {
        Self::start_with(|_| {}).await
    }

    /// A dev relay whose config `adjust` changes first (e.g. its libp2p limits).
    pub async fn start_with(adjust: impl FnOnce(&mut RelayConfig)) -> DevRelay {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RelayConfig::dev(dir.path(), "127.0.0.1:0".parse().unwrap());
        config.chain = ChainSource::Dev(DevOptions {
            target_block_time_ms: 0,
            propose_timeout_ms: 300,
        });
        config.max_blob_bytes = TEST_MAX_BLOB;
        adjust(&mut config);
        let relay = Relay::start(config).await.unwrap();
        let keys = DevKeys::load(&dev::keys_path(dir.path())).unwrap();
        DevRelay {
            relay,
            keys,
            _dir: dir,
        }
    }

    pub fn account(&self, name: &str) -> AccountKeys {
        self.keys.account(name).unwrap().clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.relay.http_addr)
    }

    /// A tx from `keys` with its next nonce from committed state (callers wait for each tx).
    pub fn tx(&self, keys: &AccountKeys, action: Action) -> Tx {
        let nonce = expected_nonce(self.relay.chain.node().store().as_ref(), &keys.address()).unwrap();
        Tx::new(keys, self.relay.chain.chain_id(), nonce, action)
    }

    /// Submits `tx` and waits until it is committed; returns its height.
    pub async fn commit(&self, tx: Tx) -> u64 {
        let hash: Hash = self.relay.chain.submit(tx.to_bytes()).unwrap();
        let node = self.relay.chain.node().clone();
        wait_for("a tx to commit", || {
            let node = node.clone();
            async move { node.tx_height(&hash).unwrap() }
        })
        .await
    }

    pub async fn wait_height(&self, height: u64) {
        let node = self.relay.chain.node().clone();
        wait_for("the chain to grow", || {
            let node = node.clone();
            async move { (node.latest_height().unwrap() >= height).then_some(()) }
        })
        .await
    }
}

/// A free TCP port on loopback (bound, read, released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills a child process when dropped.
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A moto S3 server (PyPI `moto[server]`) on loopback with one bucket.
pub struct Moto {
    _process: ChildGuard,
    pub endpoint: String,
    pub bucket: String,
}

fn python_has_moto() -> bool {
    Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl Moto {
    /// Starts moto, installing it with pip if missing; `None` (and a loud message) only if it
    /// cannot be installed.
    pub async fn start(bucket: &str) -> Option<Moto> {
        if !python_has_moto() {
            let installed = Command::new("python3")
                .args(["-m", "pip", "install", "--quiet", "moto[server]"])
                .status()
                .is_ok_and(|s| s.success());
            if !installed || !python_has_moto() {
                eprintln!(
                    "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                     !!! SKIPPED: the S3 blob-store test needs PyPI `moto[server]`, which could   !!!\n\
                     !!! not be installed (`pip install 'moto[server]'`).                         !!!\n\
                     !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
                );
                return None;
            }
        }
        let port = free_port();
        let process = ChildGuard(
            Command::new("python3")
                .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting moto"),
        );
        let endpoint = format!("http://127.0.0.1:{port}");
        wait_for("moto to listen", || async move {
            TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
        })
        .await;
        // moto does not check signatures: a plain PUT creates the bucket.
        let created = reqwest::Client::new()
            .put(format!("{endpoint}/{bucket}"))
            .send()
            .await
            .unwrap();
        assert!(
            created.status().is_success(),
            "creating the bucket: {}",
            created.status()
        );
        Some(Moto {
            _process: process,
            endpoint,
            bucket: bucket.to_owned(),
        })
    }
}

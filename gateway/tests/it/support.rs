//! Starting and stopping a real dev relay on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The workspace root (this crate lives in `<root>/gateway`).
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The relay binary: `MEDLEDGER_RELAY_BIN`, else built once with cargo (same profile as tests).
pub fn relay_binary() -> PathBuf {
    if let Ok(path) = std::env::var("MEDLEDGER_RELAY_BIN") {
        return PathBuf::from(path);
    }
    let root = workspace_root();
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "--quiet",
            "-p",
            "medledger-relay",
            "--bin",
            "medledger-relay",
        ])
        .current_dir(&root)
        .status()
        .expect("cargo build of medledger-relay");
    assert!(status.success(), "building medledger-relay failed");
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    target.join("debug").join("medledger-relay")
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `medledger-relay --dev` process; killed on drop.
pub struct DevRelay {
    child: Option<Child>,
    pub port: u16,
}

impl DevRelay {
    /// Starts the relay on `data` and `port` and waits until its node API answers.
    pub async fn start(binary: &Path, data: &Path, port: u16) -> DevRelay {
        std::fs::create_dir_all(data).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.join("relay.log"))
            .unwrap();
        let child = Command::new(binary)
            .args([
                "--dev",
                "--block-time-ms",
                "200",
                "--http",
                &format!("127.0.0.1:{port}"),
            ])
            .args(["--p2p-tcp", "0", "--p2p-ws", "0", "--p2p-webrtc", "0"])
            .arg("--data")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let relay = DevRelay {
            child: Some(child),
            port,
        };
        let url = format!("{}/node/status", relay.url());
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(response) = reqwest::get(&url).await {
                if let Ok(status) = response.json::<serde_json::Value>().await {
                    if status["height"].as_u64().unwrap_or(0) >= 1 {
                        break;
                    }
                }
            }
            assert!(
                Instant::now() < deadline,
                "the dev relay did not come up; see {}",
                data.join("relay.log").display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        relay
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the relay the way an operator does (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for DevRelay {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `done` to hold, checking every 250 ms, failing after `limit` with `what`.
pub async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

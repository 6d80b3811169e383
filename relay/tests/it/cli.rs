//! The `medledger-relay` binary: `--help` explains every flag, and `--dev` creates its chain
//! on the first run and continues it on the second.

use crate::support::{free_port, wait_for, ChildGuard};
use std::path::Path;
use std::process::{Command, Stdio};

const BINARY: &str = env!("CARGO_BIN_EXE_medledger-relay");

#[test]
fn help_explains_every_flag() {
    let output = Command::new(BINARY).arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "--dev",
        "--home",
        "--data",
        "--http",
        "--blobs",
        "--dist",
        "--key",
        "--max-blob-bytes",
        "--block-time-ms",
        "--p2p-host",
        "--p2p-tcp",
        "--p2p-ws",
        "--p2p-webrtc",
    ] {
        assert!(help.contains(flag), "--help does not mention {flag}:\n{help}");
    }
    // Neither --dev nor --home: refused with a usage error.
    let output = Command::new(BINARY).output().unwrap();
    assert!(!output.status.success());
}

/// Runs `medledger-relay --dev` on `data` until the discovery document shows `min_height`;
/// returns (genesis hash, height, browser multiaddrs), then stops the process.
async fn run_dev_until(data: &Path, min_height: u64) -> (String, u64, Vec<String>) {
    let port = free_port();
    let _relay = ChildGuard(
        Command::new(BINARY)
            .args([
                "--dev",
                "--block-time-ms",
                "0",
                "--http",
                &format!("127.0.0.1:{port}"),
                "--p2p-tcp",
                "0",
                "--p2p-ws",
                "0",
                "--p2p-webrtc",
                "0",
            ])
            .arg("--data")
            .arg(data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let url = format!("http://127.0.0.1:{port}/.well-known/medledger.json");
    wait_for("the dev relay to reach the height", || {
        let url = url.clone();
        async move {
            let doc: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
            let height = doc["height"].as_u64()?;
            let multiaddrs = doc["multiaddrs"]
                .as_array()?
                .iter()
                .map(|a| a.as_str().unwrap().to_owned())
                .collect();
            (height >= min_height).then(|| {
                (
                    doc["genesis_hash"].as_str().unwrap().to_owned(),
                    height,
                    multiaddrs,
                )
            })
        }
    })
    .await
}

#[tokio::test]
async fn dev_creates_its_chain_once_and_continues_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("medledger-data");
    let (genesis, height, multiaddrs) = run_dev_until(&data, 3).await;
    let keys = std::fs::read_to_string(data.join("dev-keys.json")).unwrap();
    assert!(keys.contains("patient-1") && keys.contains("clinic"));

    let (genesis_again, height_again, multiaddrs_again) = run_dev_until(&data, height + 2).await;
    assert_eq!(genesis_again, genesis, "the second run made a new chain");
    // The ports are random here, but the identity and the WebRTC certificate are kept: the
    // browser addresses keep their /certhash and /p2p across restarts.
    let identity = |addrs: &[String]| -> Vec<String> {
        let mut out: Vec<String> = addrs
            .iter()
            .map(|a| {
                a.split_once("/webrtc-direct")
                    .or_else(|| a.split_once("/ws"))
                    .unwrap()
                    .1
                    .to_owned()
            })
            .collect();
        out.sort();
        out
    };
    assert_eq!(multiaddrs.len(), 2, "{multiaddrs:?}");
    assert!(
        multiaddrs.iter().any(|a| a.contains("/webrtc-direct/certhash/")),
        "{multiaddrs:?}"
    );
    assert!(
        multiaddrs.iter().any(|a| a.contains("/ws/p2p/")),
        "{multiaddrs:?}"
    );
    assert_eq!(identity(&multiaddrs), identity(&multiaddrs_again));
    assert!(height_again > height);
    assert_eq!(std::fs::read_to_string(data.join("dev-keys.json")).unwrap(), keys);
}

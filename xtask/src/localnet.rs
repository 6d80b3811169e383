//! `cargo xtask localnet --validators N`: build the node, create N homes under
//! `.medledger/localnet` (kept between runs), start N separate `medledger-node` processes on
//! loopback, print their HTTP APIs, and stop them all cleanly on Ctrl-C.

use crate::cmd;
use anyhow::{Context, Result};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub fn run(validators: usize, release: bool, fresh: bool) -> Result<()> {
    let profile = if release { "release" } else { "debug" };
    let mut build = cmd::new("cargo build -p medledger-node --bin medledger-node");
    if release {
        build.arg("--release");
    }
    cmd::run(&mut build)?;
    let binary = cmd::root().join("target").join(profile).join("medledger-node");
    let dir = cmd::root()
        .join(".medledger")
        .join(format!("localnet-{validators}"));
    if fresh && dir.exists() {
        println!("removing {}", dir.display());
        std::fs::remove_dir_all(&dir)?;
    }
    cmd::run(
        Command::new(&binary)
            .args(["localnet", "--validators", &validators.to_string(), "--dir"])
            .arg(&dir),
    )?;

    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc_flag(flag)?;
    let mut children: Vec<Child> = Vec::new();
    for i in 0..validators {
        let home = dir.join(format!("node{i}"));
        let log = std::fs::File::create(dir.join(format!("node{i}.log")))?;
        let child = Command::new(&binary)
            .args(["start", "--home"])
            .arg(&home)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting node{i}"))?;
        println!(
            "node{i}: pid {}  home {}  log {}",
            child.id(),
            home.display(),
            dir.join(format!("node{i}.log")).display()
        );
        children.push(child);
    }
    println!(
        "\n{validators} validators running; HTTP APIs on 127.0.0.1:26700.. (GET /status). Ctrl-C stops them."
    );
    while !stop.load(Ordering::SeqCst) {
        for (i, child) in children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                println!("node{i} exited ({status}); see its log");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    println!("\nstopping...");
    for child in &children {
        // SIGTERM: each node stops its engine and closes its store.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
    }
    for (i, mut child) in children.into_iter().enumerate() {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match child.try_wait() {
                Ok(Some(_)) => break,
                _ if std::time::Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    println!("node{i} did not stop in time; killed");
                    break;
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }
    println!("all nodes stopped; state kept in {}", dir.display());
    Ok(())
}

/// Sets `flag` on Ctrl-C (and SIGTERM), so the nodes are stopped instead of orphaned.
fn ctrlc_flag(flag: Arc<AtomicBool>) -> Result<()> {
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")
}

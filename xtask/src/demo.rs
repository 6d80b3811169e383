//! `cargo xtask demo`: the whole system on this machine (issue 7).
//!
//! Installs what is missing, builds the dashboard with trunk (release) and the binaries, then
//! starts a 4-validator localnet whose genesis holds the demo accounts, a relay following it
//! that serves the dashboard, and a gateway simulating three patients; prints the URL and
//! where the demo keys are. Ctrl-C stops everything; a second run reuses the state in
//! `.medledger/demo` (`--fresh` starts over).

use crate::procs::Supervisor;
use crate::{cmd, setup};
use anyhow::{bail, Result};
use std::time::{Duration, Instant};

const VALIDATORS: usize = 4;

pub fn run(fresh: bool, patients: usize, speed: f64, http: &str, p2p_base: u16) -> Result<()> {
    setup::run(true, false)?;
    let root = cmd::root();
    build_dashboard()?;
    cmd::run(&mut cmd::new(
        "cargo build -p medledger-node -p medledger-relay -p medledger-gateway --bins",
    ))?;
    let bin = |name: &str| cmd::target_dir().join("debug").join(name);

    let dir = root.join(".medledger").join("demo");
    if fresh && dir.exists() {
        println!("removing {}", dir.display());
        std::fs::remove_dir_all(&dir)?;
    }
    let relay_data = dir.join("relay");
    cmd::run(
        std::process::Command::new(bin("medledger-relay"))
            .arg("--create-localnet")
            .arg(&dir)
            .args(["--validators", &VALIDATORS.to_string(), "--data"])
            .arg(&relay_data),
    )?;

    let mut procs = Supervisor::new()?;
    for i in 0..VALIDATORS {
        procs.spawn(
            &format!("node{i}"),
            std::process::Command::new(bin("medledger-node"))
                .args(["start", "--home"])
                .arg(dir.join(format!("node{i}"))),
            &dir.join(format!("node{i}.log")),
        )?;
    }
    procs.spawn(
        "relay",
        std::process::Command::new(bin("medledger-relay"))
            .arg("--home")
            .arg(dir.join(format!("node{VALIDATORS}")))
            .arg("--data")
            .arg(&relay_data)
            .arg("--dist")
            .arg(root.join("dist"))
            .args(["--http", http])
            .args(["--p2p-tcp", &p2p_base.to_string()])
            .args(["--p2p-ws", &(p2p_base + 1).to_string()])
            .args(["--p2p-webrtc", &(p2p_base + 2).to_string()]),
        &dir.join("relay.log"),
    )?;
    wait_for_relay(&procs, http)?;
    procs.spawn(
        "gateway",
        std::process::Command::new(bin("medledger-gateway"))
            .args(["run", "--relay", &format!("http://{http}")])
            .args(["--patients", &patients.to_string(), "--speed", &speed.to_string()])
            .arg("--spool")
            .arg(dir.join("gateway-spool"))
            .arg("--keys")
            .arg(relay_data.join("dev-keys.json"))
            // The demo clinician starts with the patients' consent; a revocation in the
            // dashboard sticks across restarts.
            .args(["--consent-to", "clinician", "--window-minutes", "5"]),
        &dir.join("gateway.log"),
    )?;
    println!();
    println!("Medledger is running: {VALIDATORS} validators, a relay, a gateway with {patients} patients.");
    println!("  dashboard:  http://{http}/");
    println!(
        "  demo keys:  {} (import one in the dashboard)",
        relay_data.join("dev-keys.json").display()
    );
    println!("  logs:       {}/*.log", dir.display());
    println!(
        "Ctrl-C stops everything; the next run resumes from {}.",
        dir.display()
    );
    procs.wait_for_ctrl_c();
    println!("\nstopping...");
    procs.stop_all();
    println!("stopped; state kept in {}", dir.display());
    Ok(())
}

/// `trunk build --release` of app/ into dist/, offline (tools come from `setup`).
fn build_dashboard() -> Result<()> {
    if !cmd::root().join("index.html").exists() {
        println!("no index.html: the dashboard is not part of this checkout; serving a placeholder");
        return Ok(());
    }
    // Trunk's offline mode passes --offline to cargo: fetch first.
    cmd::run(&mut cmd::new("cargo fetch"))?;
    cmd::run(cmd::new("trunk build --release").env("TRUNK_OFFLINE", "true"))
}

/// Waits until the relay answers its discovery document with a committed height.
fn wait_for_relay(procs: &Supervisor, http: &str) -> Result<()> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if procs.stopping() {
            bail!("interrupted");
        }
        if let Some(body) = cmd::http_get(http, "/.well-known/medledger.json") {
            if !body.contains("\"height\":0") && body.contains("\"multiaddrs\"") {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("the relay did not come up within 120 s; see .medledger/demo/relay.log")
}

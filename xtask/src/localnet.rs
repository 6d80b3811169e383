//! `cargo xtask localnet --validators N`: build the node, create N homes under
//! `.medledger/localnet` (kept between runs), start N separate `medledger-node` processes on
//! loopback, print their HTTP APIs, and stop them all cleanly on Ctrl-C.

use crate::cmd;
use crate::procs::Supervisor;
use anyhow::Result;
use std::process::Command;

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

    let mut procs = Supervisor::new()?;
    for i in 0..validators {
        // Each run starts its logs afresh (the supervisor appends).
        std::fs::File::create(dir.join(format!("node{i}.log")))?;
        procs.spawn(
            &format!("node{i}"),
            Command::new(&binary)
                .args(["start", "--home"])
                .arg(dir.join(format!("node{i}"))),
            &dir.join(format!("node{i}.log")),
        )?;
    }
    println!(
        "\n{validators} validators running; HTTP APIs on 127.0.0.1:26700.. (GET /status). Ctrl-C stops them."
    );
    procs.wait_for_ctrl_c();
    println!("\nstopping...");
    // SIGTERM: each node stops its engine and closes its store.
    procs.stop_all();
    println!("all nodes stopped; state kept in {}", dir.display());
    Ok(())
}

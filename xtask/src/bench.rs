//! `cargo xtask bench`: the ledger benchmarks, then the anchor benchmark beside them.
//!
//! The anchor (`../shared/anchor-bench`, tendermint-rs's verifier on this machine) runs in the
//! same invocation so both tables describe the same machine under the same load. Its build
//! output goes to `target/anchor-bench`, because `shared/` is read-only in CI.

use anyhow::Result;

use crate::cmd;

pub fn run(no_anchor: bool, extra: &[String]) -> Result<()> {
    print_machine();

    let mut ledger = cmd::new("cargo bench -p medledger-ledger --bench ledger");
    if !extra.is_empty() {
        ledger.arg("--").args(extra);
    }
    cmd::run(&mut ledger)?;

    let root = cmd::root();
    let anchor = root.join("../shared/anchor-bench");
    if no_anchor || !anchor.is_dir() {
        return Ok(());
    }
    let manifest = anchor.join("Cargo.toml");
    let mut anchor_cmd = cmd::new("cargo run --release --manifest-path");
    anchor_cmd
        .arg(manifest)
        .args(["--", "--n", "4,32,100", "--secs", "1"]);
    anchor_cmd.env("CARGO_TARGET_DIR", root.join("target/anchor-bench"));
    cmd::run(&mut anchor_cmd)
}

/// Core count, CPU model and load average: what a reader needs to compare tables.
fn print_machine() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    println!("machine: {cpus} cpus, {model}, load average {}", load.join(" "));
}

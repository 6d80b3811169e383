//! `cargo xtask bench`: the ledger benchmarks, the anchor benchmark beside them, and the
//! validator-network benchmark (`node_bench`), all on the same machine in one invocation.
//!
//! The anchor (`../shared/anchor-bench`, tendermint-rs's verifier on this machine) runs in the
//! same invocation so the tables describe the same machine under the same load. Its build
//! output goes to `target/anchor-bench`, because `shared/` is read-only in CI.
//!
//! The node benchmark needs release binaries (debug networking is ~30x slower): it builds
//! `medledger-node` and `node_bench` with `--release`, then runs `node_bench` with
//! `MEDLEDGER_NODE_BIN` pointing at the release node. The relay benchmark (`relay_bench`)
//! likewise runs against a release `medledger-relay` (`MEDLEDGER_RELAY_BIN`), and the gateway
//! benchmark (`gateway_bench`) against both. The dashboard's memory over an hour of live data
//! is a separate, hour-long run: `tests/e2e/heap.bench.mjs` (see tests/e2e/README.md).

use std::path::PathBuf;

use anyhow::Result;
use clap::ValueEnum;

use crate::cmd;

/// One benchmark `cargo xtask bench --only` can pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Which {
    /// The ledger's criterion-style benches (`cargo bench -p medledger-ledger`).
    Ledger,
    /// tendermint-rs's light-client verifier, for comparison (../shared/anchor-bench).
    Anchor,
    /// The block store alone: CPU and bytes per tx of a validator's tree update and commit
    /// (node/benches/store.rs).
    Store,
    /// Throughput and finality latency of a 4-validator localnet (tests/src/bin/node_bench.rs),
    /// then of 2 validators with a core each (without --node-args).
    Node,
    /// Light-client verification natively and in headless Chromium (wasm), and the skip.
    LightClient,
    /// Light-client sessions one relay holds over WebSocket, head latency (tests/src/bin/relay_bench.rs).
    Relay,
    /// Gateway ingest for 1,000 patients against a 4-validator localnet (tests/src/bin/gateway_bench.rs).
    Gateway,
    /// The dashboard's wasm bundle size, raw and gzipped (trunk release build).
    Dashboard,
    /// Build and validate a FHIR export of a year of CGM data (gateway/benches/fhir_export.rs).
    Fhir,
}

/// What to run and with which arguments.
#[derive(Debug)]
pub struct Options<'a> {
    /// Benches to run; empty means all.
    pub only: &'a [Which],
    pub no_anchor: bool,
    /// Arguments for `node_bench`, split on whitespace.
    pub node_args: &'a str,
    /// Arguments for the ledger bench binary.
    pub ledger_args: &'a [String],
}

pub fn run(options: &Options<'_>) -> Result<()> {
    print_machine();
    let wants = |w: Which| options.only.is_empty() || options.only.contains(&w);

    if wants(Which::LightClient) {
        light_client()?;
    }

    if wants(Which::Ledger) {
        let mut ledger = cmd::new("cargo bench -p medledger-ledger --bench ledger");
        if !options.ledger_args.is_empty() {
            ledger.arg("--").args(options.ledger_args);
        }
        cmd::run(&mut ledger)?;
    }

    let root = cmd::root();
    let anchor = root.join("../shared/anchor-bench");
    if wants(Which::Anchor) && !options.no_anchor && anchor.is_dir() {
        let manifest = anchor.join("Cargo.toml");
        let mut anchor_cmd = cmd::new("cargo run --release --manifest-path");
        anchor_cmd
            .arg(manifest)
            .args(["--", "--n", "4,32,100", "--secs", "1"]);
        anchor_cmd.env("CARGO_TARGET_DIR", root.join("target/anchor-bench"));
        cmd::run(&mut anchor_cmd)?;
    }

    if wants(Which::Store) {
        cmd::run(&mut cmd::new("cargo bench -p medledger-node --bench store"))?;
    }
    if wants(Which::Node) {
        node(options.node_args)?;
    }
    if wants(Which::Relay) {
        relay()?;
    }
    if wants(Which::Fhir) {
        // Pure (no network, no relay): the gateway's library without its native half.
        cmd::run(&mut cmd::new(
            "cargo bench -p medledger-gateway --no-default-features --bench fhir_export",
        ))?;
    }
    if wants(Which::Gateway) {
        gateway()?;
    }
    if wants(Which::Dashboard) {
        dashboard()?;
    }
    Ok(())
}

/// Builds the release node and `node_bench`, then runs the bench against that node.
/// Native table first, then the same measures in headless Chromium (release wasm).
fn light_client() -> Result<()> {
    cmd::run(&mut cmd::new(
        "cargo bench -p medledger-light-client --features testing --bench light_client",
    ))?;
    crate::setup::run(true, false)?;
    let mut wasm = cmd::new(
        "cargo test --release -p medledger-light-client --features testing --target wasm32-unknown-unknown --test browser_bench",
    );
    wasm.env("CHROMEDRIVER", "/usr/bin/chromedriver")
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            "wasm-bindgen-test-runner",
        )
        .env("WASM_BINDGEN_TEST_TIMEOUT", "600");
    // The numbers are console lines (`BENCH name value`), shown only with --nocapture.
    wasm.args(["--", "--nocapture"]);
    cmd::run(&mut wasm)
}

/// A release binary a bench drives, which is also its package's name, and the variable that
/// tells the bench where it is.
type Server = (&'static str, &'static str);
const NODE: Server = ("medledger-node", "MEDLEDGER_NODE_BIN");
const RELAY: Server = ("medledger-relay", "MEDLEDGER_RELAY_BIN");

/// Builds `servers` and the `medledger-tests` binary `bench` with `--release` in one cargo
/// invocation: built apart, they would unify dependency features differently and the second
/// build would recompile most of the graph.
fn build_bench(bench: &str, servers: &[Server]) -> Result<()> {
    let mut line = String::from("cargo build --release");
    for (binary, _) in servers {
        line += &format!(" -p {binary} --bin {binary}");
    }
    line += &format!(" -p medledger-tests --bin {bench}");
    cmd::run(&mut cmd::new(&line))
}

/// The release `bench`, run from the workspace root with each server's variable set.
fn bench_command(bench: &str, servers: &[Server]) -> std::process::Command {
    let release = release_dir();
    let mut command = std::process::Command::new(release.join(bench));
    command.current_dir(cmd::root());
    for (binary, variable) in servers {
        command.env(variable, release.join(binary));
    }
    command
}

fn node(args: &str) -> Result<()> {
    build_bench("node_bench", &[NODE])?;
    let run = |args: &[&str]| cmd::run(bench_command("node_bench", &[NODE]).args(args));
    run(&args.split_whitespace().collect::<Vec<_>>())?;
    if args.trim().is_empty() {
        // Four validators on this machine's two cores share every core, so work that overlaps
        // another validator's (the re-execution of a proposal while its proposer hashes) cannot
        // show there. Two validators have a core each, as validators on their own machines do:
        // the latency path of a real deployment.
        println!("\nThe same with 2 validators, a core each (the production shape of the latency path):");
        run(&["--validators", "2", "--rates", "3000,4500"])?;
    }
    Ok(())
}

/// Builds the release relay and `relay_bench`, then runs the bench against that relay.
fn relay() -> Result<()> {
    build_bench("relay_bench", &[RELAY])?;
    cmd::run(&mut bench_command("relay_bench", &[RELAY]))
}

/// Builds the release node, relay and `gateway_bench`, then runs the bench against them.
fn gateway() -> Result<()> {
    build_bench("gateway_bench", &[NODE, RELAY])?;
    cmd::run(&mut bench_command("gateway_bench", &[NODE, RELAY]))
}

/// Builds the dashboard as the demo serves it and prints what a browser downloads.
fn dashboard() -> Result<()> {
    crate::setup::run(true, false)?;
    cmd::run(cmd::new("trunk build --release").env("TRUNK_OFFLINE", "true"))?;
    let dist = cmd::root().join("dist");
    println!("\n| dashboard file | raw KiB | gzip -9 KiB |");
    println!("|---|---:|---:|");
    let (mut raw_total, mut gz_total) = (0u64, 0u64);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dist)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "wasm" || x == "js" || x == "html" || x == "css")
        })
        .collect();
    files.sort();
    for file in files {
        let raw = std::fs::metadata(&file)?.len();
        let gz = gzipped_len(&file)?;
        raw_total += raw;
        gz_total += gz;
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        println!(
            "| {name} | {:.0} | {:.0} |",
            raw as f64 / 1024.0,
            gz as f64 / 1024.0
        );
    }
    println!(
        "| total | {:.0} ({:.2} MiB) | {:.0} ({:.2} MiB; goal ≤ 1 MiB) |",
        raw_total as f64 / 1024.0,
        raw_total as f64 / 1048576.0,
        gz_total as f64 / 1024.0,
        gz_total as f64 / 1048576.0
    );
    Ok(())
}

/// Size of `gzip -9` of a file (the system gzip, as a web server would compress it).
fn gzipped_len(file: &std::path::Path) -> Result<u64> {
    let out = std::process::Command::new("gzip")
        .args(["-9", "-c"])
        .arg(file)
        .output()?;
    anyhow::ensure!(out.status.success(), "gzip failed on {}", file.display());
    Ok(out.stdout.len() as u64)
}

fn release_dir() -> PathBuf {
    cmd::target_dir().join("release")
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

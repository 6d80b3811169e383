//! `cargo xtask`: the developer and CI entry points for Medledger (DESIGN §1).
//!
//! Each subcommand is a short list of commands, printed as they run, so what it does is never
//! hidden: read its module, or watch its output.

mod bench;
mod cmd;
mod demo;
mod localnet;
mod procs;
mod setup;
mod test;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Medledger developer tasks: set up a machine, run the tests, the demo and the benchmarks.
///
/// New here? `cargo xtask demo` runs the system, `cargo xtask test` runs every check. Each task
/// prints every command before it runs it, so you can copy and rerun any step by hand.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the tools the project needs, skipping any already present.
    ///
    /// Installs the rustfmt and clippy components and the wasm32-unknown-unknown target.
    /// Safe to run again: it prints "ok: X already present" for what is there.
    Setup {
        /// Also install the browser toolchain: trunk 0.21.14, wasm-bindgen-cli 0.2.108,
        /// Debian chromium + chromium-driver (apt-get, needs root) and npm playwright-core.
        /// `cargo xtask test` installs them too (its browser tests need them).
        #[arg(long)]
        browser: bool,
        /// Also install wasm-pack, to package the light client's JavaScript API
        /// (`wasm-pack build light-client --target web`). Nothing else needs it.
        #[arg(long)]
        js_api: bool,
    },
    /// Set up, then run every check CI runs.
    ///
    /// Steps: cargo fmt --check, clippy with warnings as errors, all native tests (property
    /// tests included), a wasm32 build of the ledger, and the light client's browser test in
    /// headless Chromium against a relay process it starts (setup installs the browser tools
    /// for it). Every step runs even if one fails; the last line is `N passed, M failed`.
    Test {
        /// Do not run `setup` first.
        #[arg(long)]
        skip_setup: bool,
        /// Run only the steps whose summary name contains this text, e.g. `--only browser`.
        #[arg(long, value_name = "TEXT")]
        only: Option<String>,
    },
    /// Set up, then run the whole system locally and print the dashboard URL.
    ///
    /// Builds the dashboard (trunk, release) and the binaries, starts a 4-validator localnet
    /// with the demo accounts, a relay following it that serves the dashboard at
    /// http://127.0.0.1:8080, and a gateway simulating patients. Ctrl-C stops everything;
    /// state is kept in .medledger/demo for the next run.
    Demo {
        /// Remove .medledger/demo first (new chain, new keys).
        #[arg(long)]
        fresh: bool,
        /// Patients the gateway simulates.
        #[arg(long, default_value_t = 3)]
        patients: usize,
        /// Simulated time per real time (60: an hour of readings per minute).
        #[arg(long, default_value_t = 60.0)]
        speed: f64,
        /// Where the relay serves the dashboard.
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: String,
        /// The relay's libp2p ports: TCP, then WebSocket (+1) and WebRTC-direct (+2).
        #[arg(long, default_value_t = 9090)]
        p2p_base: u16,
    },
    /// Start an N-validator network of separate node processes on this machine.
    ///
    /// Homes live in .medledger/localnet-N and are reused by the next run (the chain goes
    /// on where it stopped). Ctrl-C stops every node cleanly.
    Localnet {
        /// Number of validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Build and run the release binary (much faster networking than debug).
        #[arg(long)]
        release: bool,
        /// Delete the previous network's homes and start a new chain.
        #[arg(long)]
        fresh: bool,
    },
    /// Run the ledger benchmarks, the anchor benchmark and the validator-network benchmark.
    ///
    /// The anchor is tendermint-rs's light-client verifier (../shared/anchor-bench, skipped if
    /// absent), so the tables come from one run under the same load. The node benchmark builds
    /// release binaries and measures tx/s and finality latency of 4 validators on loopback.
    /// Examples: `cargo xtask bench -- --quick`, `cargo xtask bench --only node --node-args=--quick`.
    Bench {
        /// Run only these benchmarks (comma-separated); all by default.
        #[arg(long, value_enum, value_delimiter = ',')]
        only: Vec<bench::Which>,
        /// Skip the anchor benchmark.
        #[arg(long)]
        no_anchor: bool,
        /// Arguments for node_bench, e.g. "--quick" or "--rates 1000,2000 --duration 20".
        #[arg(long, default_value = "", allow_hyphen_values = true)]
        node_args: String,
        /// Extra arguments for the ledger bench binary, after `--`.
        #[arg(last = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let result = match Cli::parse().task {
        Task::Setup { browser, js_api } => setup::run(browser, js_api),
        Task::Test { skip_setup, only } => test::run(skip_setup, only.as_deref()),
        Task::Demo {
            fresh,
            patients,
            speed,
            http,
            p2p_base,
        } => demo::run(fresh, patients, speed, &http, p2p_base),
        Task::Bench {
            only,
            no_anchor,
            node_args,
            args,
        } => bench::run(&bench::Options {
            only: &only,
            no_anchor,
            node_args: &node_args,
            ledger_args: &args,
        }),
        Task::Localnet {
            validators,
            release,
            fresh,
        } => localnet::run(validators, release, fresh),
    };
    // Print the error chain ourselves: a backtrace of xtask itself would only hide it.
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

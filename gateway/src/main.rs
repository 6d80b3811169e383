//! `medledger-gateway`: simulated medical devices and the patient gateway that encrypts their
//! readings, stores them on a relay and commits them on chain.
// The `Cli` field docs are `--help` text for clap, not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use gateway::patient::WorkerConfig;
use gateway::run::{Gateway, RunConfig};
use std::io::IsTerminal as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "medledger-gateway",
    version,
    about = "Medledger device simulator and patient gateway",
    long_about = "Medledger device simulator and patient gateway.\n\n\
        Simulates each patient's devices (CGM glucose every 5 min with meals and a \
        hypoglycaemia episode, heart rate, SpO2, blood pressure, body temperature) as FHIR R4 \
        Observations, batches them per device per window, encrypts each batch \
        (XChaCha20-Poly1305, key wrapped with HPKE for the patient and every consented \
        reader), uploads the blob to a relay and commits its CID and readings Merkle root on \
        chain; raises on-chain alerts when the patient's alert rules fire.\n\n\
        Quick start with a dev relay:\n    medledger-relay --dev --data ./medledger-data\n    \
        medledger-gateway run --relay http://127.0.0.1:8080 --keys ./medledger-data/dev-keys.json \
        --patients 3 --speed 120\n\n\
        Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Simulate patients and run their gateways until Ctrl-C.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Base URL of the relay (its HTTP address).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    relay: String,

    /// How many patients to simulate. The demo patients of --keys come first; the rest are
    /// created by the gateway (kept in <SPOOL>/patients.json) and register themselves.
    #[arg(long, value_name = "N", default_value_t = 3)]
    patients: usize,

    /// Simulated seconds per real second while catching up with the wall clock; the
    /// simulation never runs ahead of it (the chain refuses data from the future).
    #[arg(long, value_name = "X", default_value_t = 60.0)]
    speed: f64,

    /// Spool directory: sealed batches wait here until the chain holds them, and the
    /// simulation resumes from here after a restart.
    #[arg(long, value_name = "DIR", default_value = "./gateway-spool")]
    spool: PathBuf,

    /// With --keys: each simulated patient grants this demo account (e.g. `clinician`) a
    /// primary-provider consent once, unless it already granted one (revoked ones stay revoked).
    #[arg(long, value_name = "NAME", requires = "keys")]
    consent_to: Option<String>,

    /// The dev relay's key file (<DATA>/dev-keys.json): simulate its demo patients.
    #[arg(long, value_name = "FILE")]
    keys: Option<PathBuf>,

    /// Simulated minutes per batch (one commitment per device per window).
    #[arg(long, value_name = "MIN", default_value_t = 60)]
    window_minutes: u64,

    /// On a first run, start the simulation this many hours in the past.
    #[arg(long, value_name = "H", default_value_t = 12)]
    backfill_hours: u64,

    /// Do not set the default alert rule (CGM glucose below 70 mg/dL) for patients without
    /// a glucose rule.
    #[arg(long)]
    no_default_rules: bool,

    /// Time between two steps of each patient, in ms.
    #[arg(long, value_name = "MS", default_value_t = 1000)]
    tick_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Run(args) => run(args).await,
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let consent_to = match (&args.consent_to, &args.keys) {
        (Some(name), Some(keys)) => Some(
            gateway::keys::dev_account_address(keys, name).with_context(|| format!("--consent-to {name}"))?,
        ),
        _ => None,
    };
    anyhow::ensure!(args.window_minutes > 0, "--window-minutes must be at least 1");
    let config = RunConfig {
        relay: args.relay,
        patients: args.patients,
        speed: args.speed,
        spool: args.spool,
        keys: args.keys,
        backfill_ms: args.backfill_hours * 3_600_000,
        sim_end: None,
        tick: Duration::from_millis(args.tick_ms.max(50)),
        worker: WorkerConfig {
            window_ms: args.window_minutes * 60_000,
            default_rules: !args.no_default_rules,
            consent_to,
            ..WorkerConfig::default()
        },
    };
    let gateway = Gateway::start(config).await.context("starting the gateway")?;
    // A live line on a terminal; a log line every 10 s otherwise (CI, files).
    let terminal = std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval(if terminal {
        Duration::from_secs(1)
    } else {
        Duration::from_secs(10)
    });
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let line = gateway.progress_line();
                if terminal {
                    let mut err = std::io::stderr().lock();
                    let _ = write!(err, "\r\x1b[2K{line}");
                    let _ = err.flush();
                } else {
                    tracing::info!("{line}");
                }
            }
            _ = &mut shutdown => break,
        }
    }
    if terminal {
        eprintln!();
    }
    tracing::info!("stopping; unsent batches stay in the spool");
    let last = gateway.progress_line();
    gateway.stop().await;
    tracing::info!("{last}");
    Ok(())
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::warn!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

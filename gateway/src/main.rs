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
    /// Write all of a patient's data as one FHIR R4 Bundle (portability): a pseudonymous
    /// Patient, their Devices, every committed Observation (each batch verified against its
    /// on-chain commitment) and their Consents.
    Export(ExportArgs),
    /// Import FHIR Observations from another system (a Bundle, one Observation, or NDJSON):
    /// each is checked, invalid ones are reported with the reason, the rest are encrypted and
    /// committed like device data, signed by the patient.
    Import(ImportArgs),
}

/// Whose data: a dev chain's demo patient, or a patient's own seed file.
#[derive(clap::Args)]
struct PatientArgs {
    /// The dev relay's key file (<DATA>/dev-keys.json); pick the patient with --patient.
    #[arg(long, value_name = "FILE", requires = "patient")]
    keys: Option<PathBuf>,

    /// The patient's name in --keys (e.g. patient-1).
    #[arg(long, value_name = "NAME", requires = "keys")]
    patient: Option<String>,

    /// A file holding the patient's 32-byte master seed as 64 hex characters, instead of
    /// --keys/--patient.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["keys", "patient"])]
    seed_file: Option<PathBuf>,
}

#[derive(clap::Args)]
struct ExportArgs {
    /// Base URL of the relay (its HTTP address).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    relay: String,

    #[command(flatten)]
    who: PatientArgs,

    /// Where to write the Bundle (JSON).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct ImportArgs {
    /// Base URL of the relay (its HTTP address).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
    relay: String,

    #[command(flatten)]
    who: PatientArgs,

    /// The input: a FHIR Bundle (its entries' resources), a single Observation, or NDJSON
    /// (one resource per line). Entries are numbered from 0 in reports.
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,

    /// Minutes per batch: one commitment per LOINC code per window.
    #[arg(long, value_name = "MIN", default_value_t = 60)]
    window_minutes: u64,

    /// Check (also against the readings already on chain) and report only; commit nothing.
    #[arg(long)]
    dry_run: bool,
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
        Command::Export(args) => export(args).await,
        Command::Import(args) => import(args).await,
    }
}

/// The patient's keys and the chain id their key file names (`None` for a seed file).
fn patient_keys(who: &PatientArgs) -> anyhow::Result<(ledger::AccountKeys, Option<String>)> {
    if let Some(path) = &who.seed_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .with_context(|| {
                format!(
                    "{}: expected 64 hex characters (a 32-byte master seed)",
                    path.display()
                )
            })?;
        return Ok((ledger::AccountKeys::from_master_seed(seed), None));
    }
    let (Some(keys), Some(name)) = (&who.keys, &who.patient) else {
        anyhow::bail!("give --keys FILE --patient NAME, or --seed-file FILE");
    };
    let (chain, patients) = gateway::keys::load_dev_patients(keys)?;
    let patient = patients
        .into_iter()
        .find(|p| &p.name == name)
        .with_context(|| format!("no patient named {name:?} in {}", keys.display()))?;
    Ok((patient.keys, Some(chain)))
}

async fn connect(relay: &str, chain: Option<String>) -> anyhow::Result<gateway::chain::RelayClient> {
    let client = gateway::chain::RelayClient::connect(relay)
        .await
        .with_context(|| format!("connecting to the relay at {relay}"))?;
    if let Some(chain) = chain {
        anyhow::ensure!(
            chain == client.chain_id(),
            "the key file is for chain {chain:?} but the relay serves {:?}",
            client.chain_id()
        );
    }
    Ok(client)
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    use gateway::portability::{export, relay};
    let (keys, chain) = patient_keys(&args.who)?;
    let client = connect(&args.relay, chain).await?;
    let (record, stats) = relay::fetch_record(&client, &keys)
        .await
        .context("reading the patient's data")?;
    let bundle = export::bundle(record, gateway::run::wall_now())?;
    let json = export::to_json(&bundle)?;
    // Never write a file that our own parser would not read back.
    let summary = export::check_export(&json).context("the export failed its own check")?;
    let tmp = args.out.with_extension("partial");
    std::fs::write(&tmp, &json).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    let counts: Vec<String> = summary
        .resources
        .iter()
        .map(|(k, n)| format!("{n} {k}"))
        .collect();
    println!(
        "wrote {} ({} bytes): {}; {} batches verified against the chain at height {}; not exported: {} clinician notes, {} erased batches",
        args.out.display(),
        json.len(),
        counts.join(", "),
        stats.batches,
        stats.height,
        stats.skipped_notes,
        stats.skipped_erased,
    );
    Ok(())
}

async fn import(args: ImportArgs) -> anyhow::Result<()> {
    use gateway::portability::{import, relay};
    use rand::SeedableRng as _;
    anyhow::ensure!(args.window_minutes > 0, "--window-minutes must be at least 1");
    let (keys, chain) = patient_keys(&args.who)?;
    let input = std::fs::read(&args.bundle).with_context(|| format!("reading {}", args.bundle.display()))?;
    let entries = import::read_entries(&input)?;
    let (accepted, mut rejected) = import::check_entries(&entries, gateway::run::wall_now());
    let client = connect(&args.relay, chain).await?;
    // Readings already on chain (an earlier import of the same file, or the device's own) are
    // kept once.
    let accepted = match import::span(&accepted) {
        Some(range) => {
            let on_chain = relay::on_chain_readings(&client, &keys, range)
                .await
                .context("reading the patient's batches in the import's time range")?;
            let (kept, already) = import::drop_on_chain(accepted, &on_chain);
            rejected.extend(already);
            kept
        }
        None => accepted,
    };
    rejected.sort_by_key(|r| r.index);
    for r in &rejected {
        tracing::warn!(entry = r.index, reason = %r.reason, "observation rejected");
        println!("rejected entry {}: {}", r.index, r.reason);
    }
    let batches = import::plan(keys.address(), &accepted, args.window_minutes * 60_000)?;
    println!(
        "{} entries: {} accepted in {} batches, {} rejected",
        entries.len(),
        accepted.len(),
        batches.len(),
        rejected.len()
    );
    if args.dry_run || batches.is_empty() {
        return Ok(());
    }
    let mut rng = rand::rngs::StdRng::from_entropy();
    let committed = relay::commit_batches(&client, &keys, &batches, &mut rng)
        .await
        .context("committing the imported batches")?;
    for c in &committed {
        println!(
            "committed {} readings as commitment {} (blob {}), entries {:?}",
            c.readings,
            c.commitment.to_hex(),
            c.cid.to_text(),
            c.entries
        );
    }
    Ok(())
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

//! `gateway_bench`: how fast the gateway turns simulated device data into on-chain
//! commitments for many patients against a real localnet (issue 7, "Benchmarks").
//!
//! Starts 4 validator processes (`MEDLEDGER_NODE_BIN`), a relay following them
//! (`MEDLEDGER_RELAY_BIN`) and the gateway in this process (the `gateway` library, as
//! `medledger-gateway run` uses it) with `--patients` new patients whose simulation starts
//! `--backfill-hours` in the past and ends at the bench's start, so the work is fixed: every
//! patient registers itself and its devices, sets its default alert rule, then seals, uploads
//! and commits one batch per device per window. The run ends when every window is sealed and
//! the spool is empty (every batch's commitment is in a block the gateway checked).
//!
//! Reported: time to get every patient registered (setup), then readings and commitments per
//! second over the ingest phase and over the whole run, and the CPU each part used (all on the
//! same 2 cores), which says where the time goes.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use e2e::relay::{RelayMode, RelayProcess};
use e2e::Localnet;
use gateway::patient::{Stats, WorkerConfig};
use gateway::run::{wall_now, Gateway, RunConfig};
use std::time::{Duration, Instant};

/// Gateway ingest against a 4-validator localnet.
#[derive(Debug, Parser)]
#[command(name = "gateway_bench")]
struct Args {
    /// Simulated patients (each with a CGM, heart-rate/SpO2, blood-pressure and thermometer).
    #[arg(long, default_value_t = 1_000)]
    patients: usize,
    /// Simulated hours of data per patient (the fixed amount of work).
    #[arg(long, default_value_t = 6)]
    backfill_hours: u64,
    /// Simulated minutes per batch (one commitment per device per window).
    #[arg(long, default_value_t = 60)]
    window_minutes: u64,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 1_200)]
    timeout_secs: u64,
    /// Validators' target block time in ms (0: as fast as consensus goes).
    #[arg(long, default_value_t = 250)]
    block_time_ms: u64,
}

/// User + system CPU seconds of a process so far.
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state): utime is field 14, stime 15; 100 ticks per second.
    (field(11) + field(12)) as f64 / 100.0
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

struct Sample {
    secs: f64,
    readings: u64,
    committed: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.window_minutes == 0 {
        bail!("--window-minutes must be at least 1");
    }
    let mut net = Localnet::new("gateway-bench", 4, 1)?;
    net.set_block_time_ms(args.block_time_ms)?;
    net.start_all_validators(4)?;
    net.wait_height(0, 2, Duration::from_secs(120)).await?;
    let relay_home = net.layout.homes[4].clone();
    let (relay, _discovery) = RelayProcess::start(RelayMode::Follow(relay_home), &net.dir.join("relay"))
        .await
        .context("starting the relay")?;
    let validator_pids: Vec<u32> = (0..4).filter_map(|i| net.pid(i)).collect();
    let relay_pid = relay.pid().context("relay pid")?;
    let own_pid = std::process::id();
    let cpu_before: f64 = validator_pids.iter().map(|p| cpu_secs(*p)).sum();
    let relay_cpu_before = cpu_secs(relay_pid);
    let own_cpu_before = cpu_secs(own_pid);

    // The simulation ends on a window boundary: a window still open at the end is never
    // due, so the run would not drain.
    let window_ms = args.window_minutes * 60_000;
    let end = wall_now() / window_ms * window_ms;
    let config = RunConfig {
        relay: relay.http_url(),
        patients: args.patients,
        speed: 1_000_000.0,
        spool: net.dir.join("gateway-spool"),
        keys: None,
        backfill_ms: args.backfill_hours * 3_600_000,
        sim_end: Some(end),
        tick: Duration::from_millis(1_000),
        worker: WorkerConfig {
            window_ms,
            ..WorkerConfig::default()
        },
    };
    println!(
        "gateway_bench: {} patients × {} h of data, {}-minute batches, 4 validators (block time {} ms) + 1 relay, all on this machine",
        args.patients, args.backfill_hours, args.window_minutes, args.block_time_ms
    );
    let started = Instant::now();
    let gateway = Gateway::start(config).await.context("starting the gateway")?;
    let stats = gateway.stats.clone();
    let mut ready_at = None;
    let mut samples = Vec::new();
    let mut last_print = Instant::now();
    let done = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let secs = started.elapsed().as_secs_f64();
        let ready = Stats::get(&stats.patients_ready);
        if ready_at.is_none() && ready as usize >= args.patients {
            ready_at = Some(secs);
        }
        samples.push(Sample {
            secs,
            readings: Stats::get(&stats.readings_sealed),
            committed: Stats::get(&stats.batches_committed),
        });
        if last_print.elapsed() >= Duration::from_secs(10) {
            eprintln!("[{secs:>6.0} s] {}", gateway.progress_line());
            last_print = Instant::now();
        }
        if gateway.drained_until(end) {
            break true;
        }
        if secs > args.timeout_secs as f64 {
            break false;
        }
    };
    let total = started.elapsed().as_secs_f64();
    let line = gateway.progress_line();
    let failed = Stats::get(&stats.batches_failed);
    let errors = Stats::get(&stats.errors);
    let validators_cpu: f64 = validator_pids.iter().map(|p| cpu_secs(*p)).sum::<f64>() - cpu_before;
    let relay_cpu = cpu_secs(relay_pid) - relay_cpu_before;
    let own_cpu = cpu_secs(own_pid) - own_cpu_before;
    let relay_rss = rss_mib(relay_pid);
    let own_rss = rss_mib(own_pid);
    let height = net.status(0).await.map(|s| s.height).unwrap_or(0);
    gateway.stop().await;
    drop(relay);
    drop(net);
    if !done {
        bail!("not drained after {} s: {line}", args.timeout_secs);
    }

    let last = samples.last().context("no samples")?;
    let (readings, committed) = (last.readings, last.committed);
    let ready = ready_at.unwrap_or(total);
    // The ingest phase: from every patient registered to the spool drained.
    let at_ready = samples
        .iter()
        .find(|s| s.secs >= ready)
        .map_or((0, 0), |s| (s.readings, s.committed));
    let ingest_secs = (total - ready).max(f64::EPSILON);
    println!("\n{line}");
    println!("\n| measure | value |");
    println!("|---|---:|");
    println!("| patients | {} |", args.patients);
    println!("| readings sealed | {readings} |");
    println!("| commitments on chain | {committed} |");
    println!("| batches set aside (failed) / step errors | {failed} / {errors} |");
    println!("| setup: every patient + devices + rule registered | {ready:.1} s |");
    println!("| whole run | {total:.1} s |");
    println!(
        "| ingest phase readings/s | {:.0} |",
        (readings - at_ready.0) as f64 / ingest_secs
    );
    println!(
        "| ingest phase commitments/s | {:.0} |",
        (committed - at_ready.1) as f64 / ingest_secs
    );
    println!("| whole run readings/s | {:.0} |", readings as f64 / total);
    println!("| whole run commitments/s | {:.0} |", committed as f64 / total);
    println!("| chain height at the end | {height} |");
    println!(
        "| CPU s: 4 validators / relay / gateway (of {:.0} available) | {validators_cpu:.0} / {relay_cpu:.0} / {own_cpu:.0} |",
        total * 2.0
    );
    println!("| RSS MiB: relay / gateway | {relay_rss:.0} / {own_rss:.0} |");
    Ok(())
}

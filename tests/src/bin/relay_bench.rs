//! `relay_bench`: how many light-client sessions one relay holds over WebSocket, and how long
//! a new head takes from finalization to the clients (issue 5, "Benchmark").
//!
//! Starts a `medledger-relay --dev` (one embedded validator, `--block-time-ms`, default 1 s;
//! `MEDLEDGER_RELAY_BIN` picks the binary, else a debug one is built), then for each client
//! count connects native light clients (`RelayConnection` over the relay's `/ws` address,
//! each with its own identity) in batches, waits until they are connected and subscribed,
//! and for `--secs` seconds records, for every head every client receives,
//! `now_ms - header.time`. `header.time` is the proposer's clock when it proposed; the dev
//! relay's single validator commits right after proposing, so this is finalization-to-client
//! latency plus a few ms of consensus. Relay RSS is VmRSS of the relay process; per client is
//! (RSS - RSS with no clients) / clients. The clients run in this process, on the same cores.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use e2e::relay::{RelayMode, RelayProcess};
use futures::StreamExt;
use light_client::net::{Multiaddr, RelayConnection};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Concurrent light-client sessions on one relay and head latency to them.
#[derive(Debug, Parser)]
#[command(name = "relay_bench")]
struct Args {
    /// Client counts to measure, in increasing order (clients are added, never removed).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    clients: Vec<usize>,
    /// Seconds of measurement per client count.
    #[arg(long, default_value_t = 25)]
    secs: u64,
    /// Clients connecting at once.
    #[arg(long, default_value_t = 50)]
    batch: usize,
    /// Seconds to wait after the last connect before measuring (subscriptions settle).
    #[arg(long, default_value_t = 5)]
    settle_secs: u64,
    /// The dev validator's block time, ms.
    #[arg(long, default_value_t = 1_000)]
    block_time_ms: u64,
    /// Keep the relay's data dir and log (target/e2e/relay-bench-PID).
    #[arg(long)]
    keep: bool,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// User + system CPU time of a process, in clock ticks (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // `rest` starts at field 3 (state): utime is field 14, stime 15.
    field(11) + field(12)
}

/// Clock ticks per second: 100 on Linux unless configured otherwise.
const TICKS_PER_SECOND: f64 = 100.0;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// What every client's head task reports into.
#[derive(Default)]
struct Samples {
    recording: AtomicBool,
    latencies_ms: Mutex<Vec<u64>>,
    /// Heights seen while recording, with how many clients got each.
    heights: Mutex<BTreeMap<u64, usize>>,
    heads_total: AtomicU64,
}

impl Samples {
    fn record(&self, height: u64, time_ms: u64) {
        self.heads_total.fetch_add(1, Ordering::Relaxed);
        if !self.recording.load(Ordering::Relaxed) {
            return;
        }
        let latency = now_ms().saturating_sub(time_ms);
        if let Ok(mut l) = self.latencies_ms.lock() {
            l.push(latency);
        }
        if let Ok(mut h) = self.heights.lock() {
            *h.entry(height).or_default() += 1;
        }
    }
}

/// Connects one client and follows its heads until the process ends.
async fn client(addr: Multiaddr, samples: Arc<Samples>) -> Result<RelayConnection, String> {
    let connection = RelayConnection::connect(vec![addr])
        .await
        .map_err(|e| e.to_string())?;
    let mut heads = connection.heads();
    tokio::spawn(async move {
        while let Some(head) = heads.next().await {
            samples.record(head.header.height, head.header.time);
        }
    });
    Ok(connection)
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

struct Row {
    clients: usize,
    connected: usize,
    reconnects: u64,
    blocks: usize,
    heads: usize,
    expected: usize,
    p50: u64,
    p90: u64,
    p99: u64,
    max: u64,
    relay_rss: u64,
    relay_peak: u64,
    /// CPU used during the window, in % of one core.
    relay_cpu: f64,
    bench_cpu: f64,
    per_client: f64,
    bench_rss: u64,
}

async fn bench(args: &Args) -> Result<()> {
    let data = e2e::workspace_root()
        .join("target/e2e")
        .join(format!("relay-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let extra = vec!["--block-time-ms".to_owned(), args.block_time_ms.to_string()];
    let (relay, discovery) = RelayProcess::start_with_args(RelayMode::Dev, &data, extra).await?;
    let pid = relay.pid().context("relay pid")?;
    let addr: Multiaddr = discovery.ws.parse().context("the relay's /ws address")?;
    println!(
        "relay binary {}; relay_bench built {}",
        std::env::var("MEDLEDGER_RELAY_BIN").unwrap_or_else(|_| "target/debug/medledger-relay".into()),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    println!(
        "relay pid {pid}, {addr}, block time {} ms, data {}",
        args.block_time_ms,
        data.display()
    );

    tokio::time::sleep(Duration::from_secs(3)).await;
    let baseline = rss_bytes(pid).context("relay RSS")?;
    let bench_baseline = rss_bytes(std::process::id()).unwrap_or(0);
    println!(
        "relay RSS with no clients: {:.1} MiB; bench RSS {:.1} MiB",
        mib(baseline),
        mib(bench_baseline)
    );

    let samples = Arc::new(Samples::default());
    let mut connections: Vec<RelayConnection> = Vec::new();
    let mut failures: BTreeMap<String, usize> = BTreeMap::new();
    let mut rows = Vec::new();
    for &target in &args.clients {
        let started = Instant::now();
        while connections.len() + failures.values().sum::<usize>() < target {
            let attempted = connections.len() + failures.values().sum::<usize>();
            let n = args.batch.max(1).min(target - attempted);
            let batch = (0..n).map(|_| client(addr.clone(), samples.clone()));
            for result in futures::future::join_all(batch).await {
                match result {
                    Ok(c) => connections.push(c),
                    Err(e) => *failures.entry(e).or_default() += 1,
                }
            }
        }
        println!(
            "{target} clients: {} connected, {} failed, in {:.1} s",
            connections.len(),
            failures.values().sum::<usize>(),
            started.elapsed().as_secs_f64()
        );
        for (error, n) in &failures {
            println!("  {n} x {error}");
        }
        tokio::time::sleep(Duration::from_secs(args.settle_secs)).await;

        samples
            .latencies_ms
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clear();
        samples
            .heights
            .lock()
            .map_err(|_| anyhow::anyhow!("poisoned"))?
            .clear();
        let reconnects_before: u64 = connections.iter().map(RelayConnection::reconnects).sum();
        samples.recording.store(true, Ordering::SeqCst);
        let window = Instant::now();
        let (relay_cpu0, bench_cpu0) = (cpu_ticks(pid), cpu_ticks(std::process::id()));
        let mut relay_peak = 0;
        let until = Instant::now() + Duration::from_secs(args.secs);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_secs(1)).await;
            relay_peak = relay_peak.max(rss_bytes(pid).unwrap_or(0));
        }
        samples.recording.store(false, Ordering::SeqCst);
        let cpu_percent =
            |ticks: u64| ticks as f64 / TICKS_PER_SECOND / window.elapsed().as_secs_f64() * 100.0;
        let relay_cpu = cpu_percent(cpu_ticks(pid).saturating_sub(relay_cpu0));
        let bench_cpu = cpu_percent(cpu_ticks(std::process::id()).saturating_sub(bench_cpu0));
        let connected = connections.iter().filter(|c| c.is_connected()).count();
        let reconnects = connections.iter().map(RelayConnection::reconnects).sum::<u64>() - reconnects_before;
        let relay_rss = rss_bytes(pid).unwrap_or(0);
        let bench_rss = rss_bytes(std::process::id()).unwrap_or(0);
        let mut latencies = std::mem::take(
            &mut *samples
                .latencies_ms
                .lock()
                .map_err(|_| anyhow::anyhow!("poisoned"))?,
        );
        latencies.sort_unstable();
        let heights = std::mem::take(&mut *samples.heights.lock().map_err(|_| anyhow::anyhow!("poisoned"))?);
        // The first and last heights may be cut by the window's edges: count full ones.
        let full: Vec<usize> = heights.values().copied().collect();
        let inner = if full.len() > 2 {
            &full[1..full.len() - 1]
        } else {
            &full[..]
        };
        let row = Row {
            clients: target,
            connected,
            reconnects,
            blocks: inner.len(),
            heads: inner.iter().sum(),
            expected: inner.len() * connections.len(),
            p50: percentile(&latencies, 0.50),
            p90: percentile(&latencies, 0.90),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0),
            relay_rss,
            relay_peak,
            relay_cpu,
            bench_cpu,
            per_client: relay_rss.saturating_sub(baseline) as f64 / 1024.0 / target.max(1) as f64,
            bench_rss,
        };
        println!(
            "  measured {} s: {} heads over {} full blocks (of {} expected), p50 {} ms, p99 {} ms, relay RSS {:.1} MiB",
            args.secs,
            row.heads,
            row.blocks,
            row.expected,
            row.p50,
            row.p99,
            mib(row.relay_rss)
        );
        rows.push(row);
    }

    println!();
    println!(
        "| clients | connected | reconnects | blocks | heads received / expected | p50 ms | p90 ms | p99 ms | max ms | relay RSS MiB (peak) | RSS per client KiB | bench RSS MiB | relay CPU % | bench CPU % |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {:.1} ({:.1}) | {:.1} | {:.1} | {:.0} | {:.0} |",
            r.clients,
            r.connected,
            r.reconnects,
            r.blocks,
            r.heads,
            r.expected,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            mib(r.relay_rss),
            mib(r.relay_peak),
            r.per_client,
            mib(r.bench_rss),
            r.relay_cpu,
            r.bench_cpu
        );
    }
    println!(
        "\nrelay RSS with no clients {:.1} MiB. CPU % is of one core ({} cores here, shared with the \
         clients in this process and anything else running). Latency = client receive time - header.time (proposer's clock at \
         proposal; the dev validator commits right after), so finalization-to-client plus a few ms.",
        mib(baseline),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    // The goal is stated at 1,000 clients: judge the first row with at least that many.
    if let Some(row) = rows.iter().find(|r| r.clients >= 1_000) {
        let goal = row.connected >= row.clients && row.p99 <= 250 && row.relay_rss <= 1 << 30;
        println!(
            "goal at {} clients (all connected, p99 <= 250 ms, relay RSS <= 1 GiB): {}",
            row.clients,
            if goal { "met" } else { "NOT met" }
        );
    }
    drop(connections);
    drop(relay);
    if !args.keep {
        let _ = std::fs::remove_dir_all(&data);
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if args.clients.is_empty() || args.secs == 0 {
        bail!("--clients and --secs must be non-empty and positive");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = bench(&args) => result,
                _ = tokio::signal::ctrl_c() => bail!("interrupted"),
                _ = term.recv() => bail!("terminated"),
            }
        })
}

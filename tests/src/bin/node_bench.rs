//! `node_bench`: sustained throughput and finality latency of a validator network on loopback
//! (issue 4), with real medledger txs whose signatures every node checks.
//!
//! Needs `MEDLEDGER_NODE_BIN` pointing at a **release** `medledger-node` (debug networking is
//! about 30x slower); it builds nothing itself. `cargo xtask bench --only node` builds both
//! binaries and runs this.
//!
//! 1. Creates an N-validator localnet whose genesis holds `--accounts` funded patients, a few
//!    clinicians (readers) and admitted organisations (storage nodes that record reads).
//! 2. Setup: every patient registers a device; some patients grant a reader consent and their
//!    device commits one data batch, so reads of it can be recorded later.
//! 3. For each offered rate: an open-loop load for `--duration` seconds. Every tick, the
//!    tick's share of pre-signed txs goes out as `POST /txs` batches spread over the nodes,
//!    whatever the answers. Mix (`--mix`, weights): device data commitments, transfers,
//!    consent grants, access records. A watcher polls node 0 for new heights, fetches each
//!    block and matches its tx hashes (SHA-256 of the tx bytes) to their submit times:
//!    latency = first time the watcher sees the block committed − time its batch was sent.
//! 4. Optional soak (`--soak-secs`): device commitments at `--soak-rate`, sampling height,
//!    validator RSS and disk, to give RSS and disk slopes per 1,000 blocks and commitments.
//!
//! Before the localnet starts and after it stops, one thread times a fixed piece of a
//! validator's work (ed25519 verifications, SHA-256): this VM's speed drifts by 20 % or more
//! within the hour, so compare tables only next to that line (it catches CPU speed, not the
//! VM's memory and I/O swings).
//!
//! The bench client runs on the same cores as the validators: its signing is done before
//! each run, but its HTTP and block decoding still take some CPU.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use e2e::{Localnet, CHAIN_ID};
use ledger::crypto::{sha256, sha256_concat, AccountKeys, Hash, SigningKey};
use ledger::genesis::GenesisAccount;
use ledger::header::Block;
use ledger::tx::{
    commitment_id, AccessRequest, Action, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee, Tx, TxBody,
};
use ledger::types::{loinc, AccessLevel, Cid, LoincCode, Purpose, Role, TimeRange};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sustained tx/s and finality latency of a validator localnet under a mix of real txs.
#[derive(Debug, Parser)]
#[command(name = "node_bench")]
struct Args {
    /// Validators in the localnet.
    #[arg(long, default_value_t = 4)]
    validators: usize,
    /// Funded patient accounts in genesis (each registers one device in setup).
    #[arg(long, default_value_t = 10_000)]
    accounts: usize,
    /// Offered loads to sweep, tx/s, in order.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,3000,4000")]
    rates: Vec<u64>,
    /// Seconds of load per offered rate.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Weights of commit,transfer,consent,access in the mix.
    #[arg(long, default_value = "40,30,15,15")]
    mix: String,
    /// Time between submission ticks, ms (each tick sends one batch to each node).
    #[arg(long, default_value_t = 100)]
    tick_ms: u64,
    /// After the load, give up waiting for the backlog after this many seconds without a
    /// newly committed bench tx.
    #[arg(long, default_value_t = 20)]
    drain_secs: u64,
    /// ... and after this many seconds of draining in any case.
    #[arg(long, default_value_t = 120)]
    drain_max_secs: u64,
    /// Soak after the sweep: device commitments at `--soak-rate` for this many seconds
    /// (0 = no soak), sampling RSS and disk every `--sample-secs`.
    #[arg(long, default_value_t = 0)]
    soak_secs: u64,
    #[arg(long, default_value_t = 200)]
    soak_rate: u64,
    #[arg(long, default_value_t = 30)]
    sample_secs: u64,
    /// Before each run, wait up to this many seconds for other processes (builds, tests) to
    /// use less than a quarter of a core.
    #[arg(long, default_value_t = 120)]
    quiet_secs: u64,
    /// Skip the rate sweep (e.g. to run only the soak).
    #[arg(long)]
    no_sweep: bool,
    /// Small and fast: 1,000 accounts, rates 200,1000, 5 s each, no soak.
    #[arg(long)]
    quick: bool,
    /// Keep the node homes and logs (target/e2e/node-bench-PID) instead of deleting them.
    #[arg(long)]
    keep: bool,
}

/// Readers (clinicians holding consents) and storage organisations in genesis.
const READERS: usize = 16;
const ORGS: usize = 16;
/// Patients whose device commits one batch in setup and who consent to a reader, so their
/// data can be read and the read recorded during the load.
const MAX_READABLE: usize = 1_000;
const PATIENT_BALANCE: u64 = 1_000_000_000;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn seed(label: &str, i: usize) -> [u8; 32] {
    sha256_concat(&[
        b"medledger/node-bench/",
        label.as_bytes(),
        &(i as u64).to_le_bytes(),
    ])
    .0
}

fn heart_rate() -> LoincCode {
    LoincCode::new(loinc::HEART_RATE).expect("a well-known LOINC code")
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    RegisterDevice,
    Commit,
    Transfer,
    Consent,
    Access,
}

/// One tx to build: who signs, with which nonce, and what it refers to.
#[derive(Clone, Copy, Debug)]
enum Plan {
    RegisterDevice {
        patient: usize,
        nonce: u64,
    },
    Commit {
        device: usize,
        nonce: u64,
        serial: u64,
    },
    Transfer {
        from: usize,
        to: usize,
        nonce: u64,
    },
    Consent {
        patient: usize,
        reader: usize,
        nonce: u64,
    },
    Access {
        org: usize,
        nonce: u64,
        readable: usize,
        serial: u64,
    },
}

impl Plan {
    fn kind(&self) -> Kind {
        match self {
            Plan::RegisterDevice { .. } => Kind::RegisterDevice,
            Plan::Commit { .. } => Kind::Commit,
            Plan::Transfer { .. } => Kind::Transfer,
            Plan::Consent { .. } => Kind::Consent,
            Plan::Access { .. } => Kind::Access,
        }
    }
}

/// A commitment whose patient consented to `reader`: reads of it can be recorded.
#[derive(Clone, Copy, Debug)]
struct Readable {
    commitment: Hash,
    cid: Cid,
    reader: usize,
}

/// Every key of the benchmark and each signer's next nonce.
struct Population {
    patients: Vec<AccountKeys>,
    devices: Vec<SigningKey>,
    readers: Vec<AccountKeys>,
    orgs: Vec<AccountKeys>,
    patient_nonce: Vec<u64>,
    device_nonce: Vec<u64>,
    org_nonce: Vec<u64>,
    readable: Vec<Readable>,
    serial: u64,
    next_patient: usize,
    next_device: usize,
    next_org: usize,
    next_readable: usize,
}

impl Population {
    fn new(accounts: usize) -> Self {
        let keys = |label: &str, n: usize| -> Vec<AccountKeys> {
            (0..n)
                .map(|i| AccountKeys::from_master_seed(seed(label, i)))
                .collect()
        };
        Population {
            patients: keys("patient", accounts),
            devices: (0..accounts)
                .map(|i| SigningKey::from_seed(seed("device", i)))
                .collect(),
            readers: keys("reader", READERS),
            orgs: keys("org", ORGS),
            patient_nonce: vec![0; accounts],
            device_nonce: vec![0; accounts],
            org_nonce: vec![0; ORGS],
            readable: Vec::new(),
            serial: 0,
            next_patient: 0,
            next_device: 0,
            next_org: 0,
            next_readable: 0,
        }
    }

    fn genesis_accounts(&self) -> Vec<GenesisAccount> {
        let account = |k: &AccountKeys, role, balance, admitted| GenesisAccount {
            address: k.address(),
            role,
            encryption_key: k.encryption_key(),
            balance,
            admitted,
            attested_by: None,
        };
        let mut out: Vec<GenesisAccount> = self
            .patients
            .iter()
            .map(|k| account(k, Role::Patient, PATIENT_BALANCE, false))
            .collect();
        out.extend(self.readers.iter().map(|k| account(k, Role::Clinician, 0, false)));
        out.extend(self.orgs.iter().map(|k| account(k, Role::Organisation, 0, true)));
        out
    }

    fn take_patient_nonce(&mut self, p: usize) -> u64 {
        let n = self.patient_nonce[p];
        self.patient_nonce[p] += 1;
        n
    }

    fn next_serial(&mut self) -> u64 {
        self.serial += 1;
        self.serial
    }

    /// Plans one tx of `kind`, rotating over signers so each has few txs in flight.
    fn plan(&mut self, kind: Kind) -> Plan {
        let n = self.patients.len();
        match kind {
            Kind::RegisterDevice => unreachable!("setup plans device registrations itself"),
            Kind::Commit => {
                let device = self.next_device;
                self.next_device = (device + 1) % n;
                let nonce = self.device_nonce[device];
                self.device_nonce[device] += 1;
                Plan::Commit {
                    device,
                    nonce,
                    serial: self.next_serial(),
                }
            }
            Kind::Transfer | Kind::Consent => {
                let p = self.next_patient;
                self.next_patient = (p + 1) % n;
                let nonce = self.take_patient_nonce(p);
                if kind == Kind::Transfer {
                    Plan::Transfer {
                        from: p,
                        to: (p + 1) % n,
                        nonce,
                    }
                } else {
                    Plan::Consent {
                        patient: p,
                        reader: p % READERS,
                        nonce,
                    }
                }
            }
            Kind::Access => {
                let org = self.next_org;
                self.next_org = (org + 1) % ORGS;
                let nonce = self.org_nonce[org];
                self.org_nonce[org] += 1;
                let readable = self.next_readable;
                self.next_readable = (readable + 1) % self.readable.len().max(1);
                Plan::Access {
                    org,
                    nonce,
                    readable,
                    serial: self.next_serial(),
                }
            }
        }
    }

    fn cid(serial: u64) -> Cid {
        Cid::of(&serial.to_le_bytes())
    }

    /// Signs one planned tx; `now` is the wall-clock time in ms used for time fields.
    fn build(&self, plan: &Plan, now: u64) -> Vec<u8> {
        let tx = match *plan {
            Plan::RegisterDevice { patient, nonce } => Tx::new(
                &self.patients[patient],
                CHAIN_ID,
                nonce,
                Action::RegisterDevice {
                    device: self.devices[patient].public_key(),
                    loinc_codes: vec![heart_rate()],
                },
            ),
            Plan::Commit {
                device,
                nonce,
                serial,
            } => TxBody {
                chain_id: CHAIN_ID.into(),
                signer: self.devices[device].public_key(),
                nonce,
                action: Action::CommitData(DataCommitmentBody {
                    patient: self.patients[device].address(),
                    device: Some(self.devices[device].public_key()),
                    cid: Self::cid(serial),
                    readings_root: sha256(&serial.to_be_bytes()),
                    loinc_codes: vec![heart_rate()],
                    time_range: TimeRange {
                        start: now.saturating_sub(60_000),
                        end: now,
                    },
                    size: 4_096,
                    reading_count: 60,
                }),
            }
            .sign(&self.devices[device]),
            Plan::Transfer { from, to, nonce } => Tx::new(
                &self.patients[from],
                CHAIN_ID,
                nonce,
                Action::Transfer {
                    to: self.patients[to].address(),
                    amount: 1,
                },
            ),
            Plan::Consent {
                patient,
                reader,
                nonce,
            } => Tx::new(
                &self.patients[patient],
                CHAIN_ID,
                nonce,
                Action::GrantConsent(ConsentTerms {
                    grantee: Grantee::Account(self.readers[reader].address()),
                    scope: ConsentScope::default(),
                    purpose: Purpose::Treatment,
                    access: AccessLevel::Read,
                    valid_from: now,
                    valid_until: None,
                    template: None,
                }),
            ),
            Plan::Access {
                org,
                nonce,
                readable,
                serial,
            } => {
                let r = self.readable[readable];
                let request = AccessRequest {
                    chain_id: CHAIN_ID.into(),
                    reader: self.readers[r.reader].address(),
                    commitment: r.commitment,
                    cid: r.cid,
                    purpose: Purpose::Treatment,
                    time: now,
                    nonce: serial,
                }
                .sign(&self.readers[r.reader].signing);
                Tx::new(&self.orgs[org], CHAIN_ID, nonce, Action::RecordAccess { request })
            }
        };
        tx.to_bytes()
    }
}

/// Signed txs ready to send, with their hashes.
struct Batch {
    bytes: Vec<Vec<u8>>,
    kinds: Vec<Kind>,
    index: HashMap<Hash, usize>,
}

/// Signs `plans` on every core (signing dominates building).
fn build_all(pop: &Population, plans: &[Plan]) -> Batch {
    let now = now_ms();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let chunk = plans.len().div_ceil(threads).max(1);
    let bytes: Vec<Vec<u8>> = std::thread::scope(|s| {
        let handles: Vec<_> = plans
            .chunks(chunk)
            .map(|c| s.spawn(move || c.iter().map(|p| pop.build(p, now)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    });
    let index = bytes.iter().enumerate().map(|(i, b)| (sha256(b), i)).collect();
    Batch {
        kinds: plans.iter().map(Plan::kind).collect(),
        bytes,
        index,
    }
}

/// borsh `Vec<Vec<u8>>`, as `POST /txs` takes it.
fn encode_batch(txs: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + txs.iter().map(|t| t.len() + 4).sum::<usize>());
    out.extend_from_slice(&(txs.len() as u32).to_le_bytes());
    for tx in txs {
        out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
        out.extend_from_slice(tx);
    }
    out
}

/// A block as the watcher saw it commit.
#[derive(Clone, Copy, Debug)]
struct SeenBlock {
    at_us: u64,
    txs: usize,
}

/// Per-tx times (µs since the run's start; `u64::MAX` = never) and per-block arrivals.
struct Tracker {
    start: Instant,
    submitted: Vec<AtomicU64>,
    accepted: Vec<AtomicBool>,
    committed: Vec<AtomicU64>,
    committed_count: AtomicU64,
    rejections: Mutex<BTreeMap<String, u64>>,
    blocks: Mutex<BTreeMap<u64, SeenBlock>>,
    client_errors: AtomicU64,
}

impl Tracker {
    fn new(n: usize) -> Self {
        Tracker {
            start: Instant::now(),
            submitted: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            accepted: (0..n).map(|_| AtomicBool::new(false)).collect(),
            committed: (0..n).map(|_| AtomicU64::new(u64::MAX)).collect(),
            committed_count: AtomicU64::new(0),
            rejections: Mutex::new(BTreeMap::new()),
            blocks: Mutex::new(BTreeMap::new()),
            client_errors: AtomicU64::new(0),
        }
    }

    fn now_us(&self) -> u64 {
        self.start.elapsed().as_micros() as u64
    }

    fn last_height(&self, from: u64) -> u64 {
        let blocks = self.blocks.lock().expect("lock");
        blocks.keys().next_back().copied().unwrap_or(from)
    }

    fn reject(&self, reason: &str) {
        // Group reasons by their text before any number or key.
        let short: String = reason
            .split(|c: char| c.is_ascii_digit() || c == '[' || c == '(')
            .next()
            .unwrap_or(reason)
            .chars()
            .take(60)
            .collect();
        *self
            .rejections
            .lock()
            .expect("lock")
            .entry(short.trim().to_owned())
            .or_default() += 1;
    }
}

#[derive(Clone)]
struct Net {
    rpcs: Vec<String>,
    client: reqwest::Client,
}

impl Net {
    async fn height(&self, node: usize) -> Result<u64> {
        let v: serde_json::Value = self
            .client
            .get(format!("{}/status", self.rpcs[node]))
            .send()
            .await?
            .json()
            .await?;
        v["height"].as_u64().context("status without height")
    }

    async fn block(&self, node: usize, height: u64) -> Result<Option<Block>> {
        let response = self
            .client
            .get(format!("{}/block/{height}", self.rpcs[node]))
            .send()
            .await?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let bytes = response.error_for_status()?.bytes().await?;
        Ok(Some(ledger::codec::decode_limited(&bytes, 64 << 20)?))
    }

    /// Sends txs `range` of `batch` to `node` and records each answer.
    async fn submit(&self, node: usize, batch: &Batch, range: std::ops::Range<usize>, tracker: &Tracker) {
        let body = encode_batch(&batch.bytes[range.clone()]);
        let sent = tracker.now_us();
        for i in range.clone() {
            tracker.submitted[i].store(sent, Ordering::Relaxed);
        }
        let result = async {
            let response = self
                .client
                .post(format!("{}/txs", self.rpcs[node]))
                .body(body)
                .send()
                .await?
                .error_for_status()?;
            let results: Vec<serde_json::Value> = response.json().await?;
            anyhow::Ok(results)
        }
        .await;
        match result {
            Ok(results) => {
                for (i, r) in range.zip(results) {
                    match r.get("error").and_then(|e| e.as_str()) {
                        None => tracker.accepted[i].store(true, Ordering::Relaxed),
                        Some(reason) => tracker.reject(reason),
                    }
                }
            }
            Err(e) => {
                tracker.client_errors.fetch_add(1, Ordering::Relaxed);
                tracker.reject(&format!("client: {e}"));
            }
        }
    }
}

/// Polls `node` for new heights until `stop`; matches block txs to the batch.
async fn watch(
    net: Net,
    node: usize,
    from: u64,
    batch: Arc<Batch>,
    tracker: Arc<Tracker>,
    stop: Arc<AtomicBool>,
) {
    let mut last = from;
    while !stop.load(Ordering::Relaxed) {
        let height = match net.height(node).await {
            Ok(h) => h,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if height > last {
            let seen = tracker.now_us();
            for h in last + 1..=height {
                let block = loop {
                    match net.block(node, h).await {
                        Ok(Some(b)) => break b,
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                };
                for tx in &block.txs {
                    if let Some(&i) = batch.index.get(&sha256(tx)) {
                        if tracker.committed[i]
                            .compare_exchange(u64::MAX, seen, Ordering::Relaxed, Ordering::Relaxed)
                            .is_ok()
                        {
                            tracker.committed_count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                tracker.blocks.lock().expect("lock").insert(
                    h,
                    SeenBlock {
                        at_us: seen,
                        txs: block.txs.len(),
                    },
                );
            }
            last = height;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Resident set size of a process, bytes.
fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes a process has passed to write calls (`wchar` in `/proc/<pid>/io`).
fn written_bytes(pid: u32) -> u64 {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Bytes written by all validators so far.
fn validators_written(net: &Localnet, validators: usize) -> u64 {
    (0..validators)
        .filter_map(|i| net.pid(i))
        .map(written_bytes)
        .sum()
}

/// Bytes allocated on disk under `dir` (like `du`).
fn disk_bytes(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// CPU time (user + system) a process has used, in clock ticks (`USER_HZ`, 100 on Linux).
fn cpu_ticks(pid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    field(11) + field(12)
}

/// Busy and total ticks of the whole machine (`/proc/stat`).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = values.iter().sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU use over a run: validators' and this process's, and how busy the machine was.
#[derive(Clone, Copy, Debug, Default)]
struct CpuSample {
    at: Option<Instant>,
    validators: u64,
    bench: u64,
    busy: u64,
    total: u64,
}

impl CpuSample {
    fn take(net: &Localnet, validators: usize) -> Self {
        let (busy, total) = machine_ticks();
        CpuSample {
            at: Some(Instant::now()),
            validators: (0..validators)
                .filter_map(|i| net.pid(i))
                .map(|pid| cpu_ticks(&pid.to_string()))
                .sum(),
            bench: cpu_ticks("self"),
            busy,
            total,
        }
    }

    /// (validators' cores, bench's cores, other processes' cores) between two samples.
    fn since(&self, earlier: &CpuSample) -> (f64, f64, f64) {
        let secs = match (self.at, earlier.at) {
            (Some(a), Some(b)) => a.duration_since(b).as_secs_f64().max(1e-3),
            _ => return (0.0, 0.0, 0.0),
        };
        let cores = |ticks: u64| ticks as f64 / 100.0 / secs;
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let busy = (self.busy - earlier.busy) as f64 / (self.total - earlier.total).max(1) as f64;
        let (validators, bench) = (
            cores(self.validators - earlier.validators),
            cores(self.bench - earlier.bench),
        );
        (validators, bench, (busy * cpus - validators - bench).max(0.0))
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Waits (at most `max`) until other processes use under a quarter of a core, so a run does
/// not share the machine with a build; returns the others' load when it stopped waiting.
async fn wait_quiet(net: &Localnet, validators: usize, max: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let before = CpuSample::take(net, validators);
        tokio::time::sleep(Duration::from_secs(2)).await;
        let others = CpuSample::take(net, validators).since(&before).2;
        if others < 0.25 || start.elapsed() >= max {
            return others;
        }
    }
}

/// Max RSS over the validators and node 0's home size.
fn resources(net: &Localnet, validators: usize) -> (u64, u64) {
    let rss = (0..validators)
        .filter_map(|i| net.pid(i).and_then(rss_bytes))
        .max()
        .unwrap_or(0);
    (rss, disk_bytes(&net.layout.homes[0]))
}

/// What one load run measured.
#[derive(Debug, Default)]
struct RunReport {
    offered: u64,
    sent: usize,
    accepted: usize,
    committed: usize,
    committed_tps: f64,
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    blocks_per_s: f64,
    txs_per_block: f64,
    rejections: BTreeMap<String, u64>,
    rss: u64,
    disk: u64,
    disk_growth: u64,
    commitments: usize,
    drain_s: f64,
    /// Bytes the validators wrote (files and sockets) during the run, per node.
    written_per_node: u64,
    /// During the load window, in cores: the validators', the bench's, other processes'.
    cpu: (f64, f64, f64),
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// How often to sample during a run, and what to call with (seconds, last height seen).
type Sampler<'a> = (Duration, &'a mut dyn FnMut(f64, u64));

/// One soak sample.
#[derive(Clone, Copy, Debug)]
struct SoakSample {
    secs: f64,
    height: u64,
    rss: u64,
    disk: u64,
}

/// One open-loop run: sends `batch` at `rate` tx/s over `duration`, waits for it to commit,
/// and measures. `sample` is called every so often during the run (soak) with the seconds
/// elapsed and the last height the watcher saw.
#[allow(clippy::too_many_arguments)]
async fn run_load(
    localnet: &Localnet,
    net: &Net,
    validators: usize,
    batch: Batch,
    rate: u64,
    duration: Duration,
    tick: Duration,
    drain: (Duration, Duration),
    mut sample: Option<Sampler<'_>>,
) -> Result<RunReport> {
    let batch = Arc::new(batch);
    let n = batch.bytes.len();
    let (_, disk_before) = resources(localnet, validators);
    let written_before = validators_written(localnet, validators);
    let tracker = Arc::new(Tracker::new(n));
    let stop = Arc::new(AtomicBool::new(false));
    let from = net.height(0).await?;
    let watcher = tokio::spawn(watch(
        net.clone(),
        0,
        from,
        batch.clone(),
        tracker.clone(),
        stop.clone(),
    ));

    let mut inflight = tokio::task::JoinSet::new();
    let mut cpu_start = CpuSample::default();
    let mut sent = 0usize;
    let mut k: u64 = 0;
    let mut next_sample = sample.as_ref().map(|(every, _)| *every);
    let cpu_end = loop {
        let due = tracker.start + tick * (k as u32);
        if due.duration_since(tracker.start) >= duration {
            break CpuSample::take(localnet, validators);
        }
        tokio::time::sleep_until(due.into()).await;
        if cpu_start.at.is_none() && tracker.start.elapsed() >= Duration::from_secs(2).min(duration / 4) {
            cpu_start = CpuSample::take(localnet, validators);
        }
        let elapsed = due.duration_since(tracker.start).as_secs_f64() + tick.as_secs_f64();
        let target = ((rate as f64 * elapsed) as usize).min(n);
        if target > sent {
            // Consecutive slices, one per node, rotating which node gets the first one.
            let count = target - sent;
            let per = count.div_ceil(validators);
            for j in 0..validators {
                let lo = sent + (j * per).min(count);
                let hi = sent + ((j + 1) * per).min(count);
                if lo < hi {
                    let node = (j + k as usize) % validators;
                    let (net, batch, tracker) = (net.clone(), batch.clone(), tracker.clone());
                    inflight.spawn(async move { net.submit(node, &batch, lo..hi, &tracker).await });
                }
            }
            sent = target;
        }
        while inflight.try_join_next().is_some() {}
        if let (Some(at), Some((every, f))) = (next_sample, sample.as_mut()) {
            if tracker.start.elapsed() >= at {
                f(tracker.start.elapsed().as_secs_f64(), tracker.last_height(from));
                next_sample = Some(at + *every);
            }
        }
        k += 1;
    };
    let load_end = tracker.now_us();
    while inflight.join_next().await.is_some() {}

    // Drain: until every accepted tx committed, or no progress for `drain`.
    let drain_start = Instant::now();
    let mut last_count = tracker.committed_count.load(Ordering::Relaxed);
    let mut last_progress = Instant::now();
    loop {
        let accepted = tracker
            .accepted
            .iter()
            .filter(|a| a.load(Ordering::Relaxed))
            .count() as u64;
        let count = tracker.committed_count.load(Ordering::Relaxed);
        if count >= accepted {
            break;
        }
        if count > last_count {
            last_count = count;
            last_progress = Instant::now();
        } else if last_progress.elapsed() > drain.0 {
            break;
        }
        if drain_start.elapsed() > drain.1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    // One more poll so the last blocks are matched.
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    watcher.await?;
    if let Some((_, f)) = sample.as_mut() {
        f(tracker.start.elapsed().as_secs_f64(), tracker.last_height(from));
    }

    let (rss, disk) = resources(localnet, validators);
    let written_per_node =
        validators_written(localnet, validators).saturating_sub(written_before) / validators as u64;
    let mut latencies = Vec::new();
    let mut accepted = 0;
    let mut commitments = 0;
    // Throughput window: skip the first 2 s (nothing can commit yet) up to the load's end.
    let warm = 2_000_000u64.min(load_end / 4);
    let mut in_window = 0usize;
    for i in 0..n {
        let acc = tracker.accepted[i].load(Ordering::Relaxed);
        accepted += acc as usize;
        let c = tracker.committed[i].load(Ordering::Relaxed);
        if c != u64::MAX {
            let s = tracker.submitted[i].load(Ordering::Relaxed);
            latencies.push(c.saturating_sub(s));
            if batch.kinds[i] == Kind::Commit {
                commitments += 1;
            }
            if (warm..=load_end).contains(&c) {
                in_window += 1;
            }
        }
    }
    latencies.sort_unstable();
    let window_s = (load_end - warm) as f64 / 1e6;
    let blocks = tracker.blocks.lock().expect("lock");
    let window_blocks: Vec<&SeenBlock> = blocks
        .values()
        .filter(|b| (warm..=load_end).contains(&b.at_us))
        .collect();
    let block_txs: usize = window_blocks.iter().map(|b| b.txs).sum();
    let window_block_count = window_blocks.len();
    drop(blocks);
    let rejections = tracker.rejections.lock().expect("lock").clone();
    Ok(RunReport {
        offered: rate,
        sent,
        accepted,
        committed: latencies.len(),
        committed_tps: in_window as f64 / window_s,
        p50: percentile(&latencies, 0.50),
        p90: percentile(&latencies, 0.90),
        p99: percentile(&latencies, 0.99),
        max: percentile(&latencies, 1.0),
        blocks_per_s: window_block_count as f64 / window_s,
        txs_per_block: block_txs as f64 / window_block_count.max(1) as f64,
        rejections,
        rss,
        disk,
        disk_growth: disk.saturating_sub(disk_before),
        commitments,
        drain_s,
        written_per_node,
        cpu: cpu_end.since(&cpu_start),
    })
}

/// Kinds in mix order for `total` txs: weights spread evenly (largest deficit first).
fn mix_kinds(weights: &[(Kind, u64)], total: usize) -> Vec<Kind> {
    let sum: u64 = weights.iter().map(|w| w.1).sum();
    let mut counts = vec![0u64; weights.len()];
    (0..total as u64)
        .map(|i| {
            let (j, _) = weights
                .iter()
                .enumerate()
                .max_by_key(|(j, (_, w))| (i + 1) as i128 * *w as i128 - (counts[*j] * sum) as i128)
                .expect("non-empty mix");
            counts[j] += 1;
            weights[j].0
        })
        .collect()
}

fn parse_mix(mix: &str, readable: bool) -> Result<Vec<(Kind, u64)>> {
    let parts: Vec<u64> = mix
        .split(',')
        .map(|s| s.trim().parse().context("--mix takes four integers"))
        .collect::<Result<_>>()?;
    let [c, t, g, a] = parts[..] else {
        bail!("--mix takes four weights: commit,transfer,consent,access");
    };
    let mut out: Vec<(Kind, u64)> = [
        (Kind::Commit, c),
        (Kind::Transfer, t),
        (Kind::Consent, g),
        (Kind::Access, if readable { a } else { 0 }),
    ]
    .into_iter()
    .filter(|k| k.1 > 0)
    .collect();
    if out.is_empty() {
        out.push((Kind::Commit, 1));
    }
    Ok(out)
}

/// Submits `batch` as fast as the nodes take it (bounded in flight) and waits for all of it.
async fn setup_phase(
    localnet: &Localnet,
    net: &Net,
    validators: usize,
    what: &str,
    batch: Batch,
) -> Result<()> {
    let n = batch.bytes.len();
    let started = Instant::now();
    // A rate well above capacity with long drain: the pool bounds keep it safe.
    let report = run_load(
        localnet,
        net,
        validators,
        batch,
        (n as u64).div_ceil(5).max(1),
        Duration::from_secs(5),
        Duration::from_millis(100),
        (Duration::from_secs(60), Duration::from_secs(600)),
        None,
    )
    .await?;
    println!(
        "setup: {what}: {} txs, {} committed in {:.1} s ({:.0} tx/s){}",
        n,
        report.committed,
        started.elapsed().as_secs_f64(),
        report.committed as f64 / started.elapsed().as_secs_f64(),
        if report.rejections.is_empty() {
            String::new()
        } else {
            format!(", rejected: {:?}", report.rejections)
        }
    );
    if report.committed < n {
        bail!("setup: only {} of {n} txs committed ({what})", report.committed);
    }
    Ok(())
}

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
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "machine: {cpus} cpus, {model}, load average {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
}

/// One thread's speed at this moment on a fixed piece of a validator's work: single
/// signature verifications and SHA-256 (why: see the module docs).
fn machine_speed() -> String {
    let key = SigningKey::from_seed([7; 32]);
    let public = key.public_key();
    let signed: Vec<(Vec<u8>, _)> = (0u32..2_000)
        .map(|i| {
            let message = [&i.to_le_bytes()[..], &[0u8; 96]].concat();
            let signature = key.sign(&message);
            (message, signature)
        })
        .collect();
    let started = Instant::now();
    let verified = signed
        .iter()
        .filter(|(m, s)| ledger::crypto::verify_signature(&public, m, s).is_ok())
        .count();
    let verify_us = started.elapsed().as_secs_f64() * 1e6 / signed.len() as f64;
    let data = vec![0x5a_u8; 16 << 20];
    let started = Instant::now();
    std::hint::black_box(sha256(&data));
    let sha_mb_s = data.len() as f64 / 1e6 / started.elapsed().as_secs_f64();
    if verified != signed.len() {
        return format!(
            "{verified} of {} signatures verified (calibration broken)",
            signed.len()
        );
    }
    format!("{verify_us:.1} µs per ed25519 verification, SHA-256 {sha_mb_s:.0} MB/s (one thread)")
}

fn top_rejection(r: &BTreeMap<String, u64>) -> String {
    let total: u64 = r.values().sum();
    match r.iter().max_by_key(|(_, n)| **n) {
        None => "0".into(),
        Some((why, _)) => format!("{total} ({why})"),
    }
}

fn print_table(reports: &[RunReport], args: &Args) {
    println!();
    println!(
        "{} validators on loopback, {} accounts, {} s per rate, mix commit,transfer,consent,access = {}",
        args.validators, args.accounts, args.duration, args.mix
    );
    println!();
    println!("| offered tx/s | sent | committed tx/s | p50 ms | p90 ms | p99 ms | max ms | blocks/s | txs/block | rejected | not committed | drain s | CPU cores: validators / bench / others | validator RSS max MiB | node0 disk MiB | disk Δ per 1k commitments KiB | disk Δ per 1k txs KiB | written per node per tx KiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|");
    for r in reports {
        let per_k = |count: usize| {
            if count == 0 {
                "-".to_owned()
            } else {
                format!("{:.0}", r.disk_growth as f64 / count as f64 * 1000.0 / 1024.0)
            }
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {:.1} | {:.0} | {} | {} | {:.1} | {:.2} / {:.2} / {:.2} | {:.0} | {:.1} | {} | {} | {:.1} |",
            r.offered,
            r.sent,
            r.committed_tps,
            r.p50,
            r.p90,
            r.p99,
            r.max,
            r.blocks_per_s,
            r.txs_per_block,
            top_rejection(&r.rejections),
            r.accepted.saturating_sub(r.committed),
            r.drain_s,
            r.cpu.0,
            r.cpu.1,
            r.cpu.2,
            mib(r.rss),
            mib(r.disk),
            per_k(r.commitments),
            per_k(r.committed),
            r.written_per_node as f64 / r.committed.max(1) as f64 / 1024.0,
        );
    }
}

async fn bench(args: &Args) -> Result<()> {
    let Ok(bin) = std::env::var("MEDLEDGER_NODE_BIN") else {
        bail!(
            "set MEDLEDGER_NODE_BIN to a release medledger-node \
             (cargo build --release -p medledger-node --bin medledger-node), or run `cargo xtask bench --only node`"
        );
    };
    if !Path::new(&bin).is_file() {
        bail!("MEDLEDGER_NODE_BIN={bin} is not a file");
    }
    if bin.contains("/debug/") {
        eprintln!("warning: {bin} looks like a debug build; its networking is ~30x slower");
    }
    print_machine();
    let speed_before = machine_speed();
    println!("machine speed before the localnet starts: {speed_before}");
    println!("node binary: {bin}");

    let v = args.validators;
    let t = Instant::now();
    let mut pop = Population::new(args.accounts);
    let mut localnet = Localnet::with_accounts(
        &format!("node-bench-{}", args.accounts),
        v,
        0,
        pop.genesis_accounts(),
    )?;
    println!(
        "localnet: {} ({} genesis accounts, keys in {:.1} s)",
        localnet.dir.display(),
        args.accounts + READERS + ORGS,
        t.elapsed().as_secs_f64()
    );
    let dir = localnet.dir.clone();
    localnet.start_all_validators(v)?;
    localnet
        .wait_height(0, 2, Duration::from_secs(120))
        .await
        .context("the localnet did not start")?;
    let net = Net {
        rpcs: (0..v).map(|i| localnet.rpc(i)).collect(),
        client: reqwest::Client::new(),
    };
    let idle_from = (net.height(0).await?, Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle_blocks = net.height(0).await? - idle_from.0;
    let idle = idle_from.1.elapsed().as_secs_f64();
    let (rss, disk) = resources(&localnet, v);
    println!(
        "idle chain (empty blocks): {:.1} blocks/s; validator RSS max {:.0} MiB, node0 disk {:.1} MiB",
        idle_blocks as f64 / idle,
        mib(rss),
        mib(disk)
    );

    // Setup: devices (and consents of readable patients), then one commitment each.
    let readable = args.accounts.min(MAX_READABLE);
    let mut plans = Vec::new();
    for p in 0..args.accounts {
        let nonce = pop.take_patient_nonce(p);
        plans.push(Plan::RegisterDevice { patient: p, nonce });
        if p < readable {
            let nonce = pop.take_patient_nonce(p);
            plans.push(Plan::Consent {
                patient: p,
                reader: p % READERS,
                nonce,
            });
        }
    }
    let batch = build_all(&pop, &plans);
    setup_phase(&localnet, &net, v, "register devices + consents", batch).await?;
    let mut plans = Vec::new();
    for p in 0..readable {
        let serial = pop.next_serial();
        let nonce = pop.device_nonce[p];
        pop.device_nonce[p] += 1;
        plans.push(Plan::Commit {
            device: p,
            nonce,
            serial,
        });
        pop.readable.push(Readable {
            commitment: commitment_id(&Population::cid(serial)),
            cid: Population::cid(serial),
            reader: p % READERS,
        });
    }
    let batch = build_all(&pop, &plans);
    setup_phase(
        &localnet,
        &net,
        v,
        "first commitments of readable patients",
        batch,
    )
    .await?;

    let weights = parse_mix(&args.mix, !pop.readable.is_empty())?;
    let duration = Duration::from_secs(args.duration);
    let mut reports = Vec::new();
    let rates = if args.no_sweep { &[][..] } else { &args.rates[..] };
    for &rate in rates {
        let total = (rate * args.duration) as usize;
        let plans: Vec<Plan> = mix_kinds(&weights, total)
            .into_iter()
            .map(|k| pop.plan(k))
            .collect();
        let t = Instant::now();
        let batch = build_all(&pop, &plans);
        let others = wait_quiet(&localnet, v, Duration::from_secs(args.quiet_secs)).await;
        println!(
            "rate {rate} tx/s: {} txs signed in {:.1} s, height {}, other processes {:.2} cores; running {} s",
            total,
            t.elapsed().as_secs_f64(),
            net.height(0).await?,
            others,
            args.duration
        );
        let report = run_load(
            &localnet,
            &net,
            v,
            batch,
            rate,
            duration,
            Duration::from_millis(args.tick_ms),
            (
                Duration::from_secs(args.drain_secs),
                Duration::from_secs(args.drain_max_secs),
            ),
            None,
        )
        .await?;
        println!(
            "  committed {:.0} tx/s, p50 {:.0} ms, p99 {:.0} ms, {:.1} blocks/s, CPU cores: {:.2} validators, {:.2} bench, {:.2} others, {} not committed, rejected {:?}",
            report.committed_tps,
            report.p50,
            report.p99,
            report.blocks_per_s,
            report.cpu.0,
            report.cpu.1,
            report.cpu.2,
            report.accepted.saturating_sub(report.committed),
            report.rejections
        );
        // Undrained txs would skew the next rate's numbers: resubmitted nonces fail.
        let unfinished = report.accepted.saturating_sub(report.committed);
        reports.push(report);
        if unfinished > 0 {
            println!("  backlog did not drain; stopping the sweep here");
            break;
        }
    }
    if !reports.is_empty() {
        print_table(&reports, args);
    }

    if args.soak_secs > 0 {
        soak(&localnet, &net, &mut pop, args).await?;
    }

    drop(localnet);
    println!(
        "machine speed after the localnet stopped: {} (before: {speed_before})",
        machine_speed()
    );
    if args.keep {
        println!("kept {}", dir.display());
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

/// Device commitments at a steady rate, sampling RSS and disk against height.
async fn soak(localnet: &Localnet, net: &Net, pop: &mut Population, args: &Args) -> Result<()> {
    let total = (args.soak_rate * args.soak_secs) as usize;
    let plans: Vec<Plan> = (0..total).map(|_| pop.plan(Kind::Commit)).collect();
    let batch = build_all(pop, &plans);
    println!();
    println!(
        "soak: {} device commitments at {} tx/s for {} s",
        total, args.soak_rate, args.soak_secs
    );
    let h0 = net.height(0).await?;
    let (rss0, disk0) = resources(localnet, args.validators);
    let mut samples = vec![SoakSample {
        secs: 0.0,
        height: h0,
        rss: rss0,
        disk: disk0,
    }];
    let v = args.validators;
    let mut sample = |secs: f64, height: u64| {
        let (rss, disk) = resources(localnet, v);
        samples.push(SoakSample {
            secs,
            height,
            rss,
            disk,
        });
    };
    let report = run_load(
        localnet,
        net,
        args.validators,
        batch,
        args.soak_rate,
        Duration::from_secs(args.soak_secs),
        Duration::from_millis(args.tick_ms),
        (
            Duration::from_secs(args.drain_secs),
            Duration::from_secs(args.drain_max_secs),
        ),
        Some((Duration::from_secs(args.sample_secs), &mut sample)),
    )
    .await?;
    println!();
    println!("| time s | height | validator RSS max MiB | node0 disk MiB |");
    println!("|---:|---:|---:|---:|");
    for p in &samples {
        println!(
            "| {:.0} | {} | {:.1} | {:.1} |",
            p.secs,
            p.height,
            mib(p.rss),
            mib(p.disk)
        );
    }
    // Slopes per 1,000 blocks over the whole soak and over its second half (RSS grows while
    // caches fill, then levels off; disk grows with history).
    let slope = |a: &SoakSample, b: &SoakSample, f: fn(&SoakSample) -> u64| {
        let blocks = b.height.saturating_sub(a.height).max(1) as f64;
        (f(b) as f64 - f(a) as f64) / blocks * 1000.0 / 1048576.0
    };
    let (first, mid, last) = (
        &samples[0],
        &samples[samples.len() / 2],
        &samples[samples.len() - 1],
    );
    let blocks = last.height.saturating_sub(first.height);
    let per_commitment = (last.disk as f64 - first.disk as f64) / report.commitments.max(1) as f64 * 1000.0;
    println!();
    println!(
        "soak: {} blocks in {:.0} s ({:.1} blocks/s), {} commitments committed, p50 {:.0} ms, p99 {:.0} ms, {} not committed",
        blocks,
        last.secs,
        blocks as f64 / last.secs.max(1.0),
        report.commitments,
        report.p50,
        report.p99,
        report.accepted.saturating_sub(report.committed)
    );
    println!(
        "soak slopes per 1,000 blocks: RSS {:+.2} MiB (second half {:+.2} MiB), node0 disk {:+.2} MiB (second half {:+.2} MiB); disk {:.0} KiB per 1,000 commitments",
        slope(first, last, |p| p.rss),
        slope(mid, last, |p| p.rss),
        slope(first, last, |p| p.disk),
        slope(mid, last, |p| p.disk),
        per_commitment / 1024.0
    );
    let left = 100_000u64.saturating_sub(last.height) as f64 / 1000.0;
    println!(
        "EXTRAPOLATION (linear from the second half, not measured) to height 100,000: validator RSS ~ {:.0} MiB, node0 disk ~ {:.0} MiB",
        mib(last.rss) + slope(mid, last, |p| p.rss) * left,
        mib(last.disk) + slope(mid, last, |p| p.disk) * left,
    );
    Ok(())
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.quick {
        args.accounts = args.accounts.min(1_000);
        args.rates = vec![200, 1_000];
        args.duration = 5;
        args.soak_secs = 0;
        args.quiet_secs = args.quiet_secs.min(10);
    }
    if args.validators == 0 || args.accounts == 0 {
        bail!("--validators and --accounts must be positive");
    }
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(async {
            // On Ctrl-C or SIGTERM the bench future is dropped, and with it the localnet,
            // which kills its node processes.
            let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                result = bench(&args) => result,
                _ = tokio::signal::ctrl_c() => bail!("interrupted"),
                _ = term.recv() => bail!("terminated"),
            }
        })
}

//! The block store under a validator's write load, in one process: CPU time per block of the
//! two tree operations every validator runs (`state_root_after` when checking a proposal,
//! `commit_block` when it is decided) and the bytes they add to the file. The network bench
//! (`node_bench`) shares two cores between four validators and the noise of a whole chain; this
//! isolates the store, which is about half of a validator's CPU under load. Prints a markdown
//! table: times per block, store time and process CPU per tx, and bytes written per tx.
//!
//! Blocks are synthetic but shaped like `node_bench`'s mix (commit / transfer / consent /
//! access = 40 / 30 / 15 / 15): per tx the same state keys with the same value sizes (a device
//! commitment writes the device's nonce, the commitment (keyed by its CID), the patient's list
//! length and a list item...), on a state pre-filled with the keys of 10,000 patients, their
//! devices and history. Block contents are random bytes of a tx's size: the store does not
//! execute txs.
//!
//! `--history N` first runs N txs of the same mix as untimed blocks: a chain that has run for a
//! while, whose tree nodes and leaves are spread over many versions (the `--prefill` keys all
//! sit in one version, so their buckets are few and large, which a real chain's are not).
//!
//! `cargo bench -p medledger-node --bench store -- [--blocks N] [--txs N] [--prefill N]
//! [--history N] [--cache-mib N] [--flush-rotation N]`

use ledger::state::keys::{self, ListKind};
use ledger::state::StateDiff;
use ledger::test_utils::{sign_commit, TestChain, TEST_CHAIN_ID};
use ledger::{apply_block, Block, BlockContext, Hash};
use node::store::BlockStore;
use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};
use std::time::{Duration, Instant};

// The node binary's allocator, so allocation costs match a validator's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    blocks: usize,
    txs: usize,
    patients: usize,
    /// Extra history keys (old commitments, consents...) so the tree has a realistic depth.
    prefill: usize,
    /// Untimed txs of the mix run first, in blocks of `txs`: a grown chain's history.
    history: usize,
    /// redb's page cache in MiB (the node's default unless set).
    cache_mib: usize,
    /// Key ranges the written-behind tables are flushed in (the node's default unless set).
    flush_rotation: u64,
}

fn args() -> Args {
    let mut out = Args {
        blocks: 30,
        txs: 2_000,
        patients: 10_000,
        prefill: 150_000,
        history: 0,
        cache_mib: node::store::DEFAULT_CACHE_BYTES >> 20,
        flush_rotation: node::store::DEFAULT_FLUSH_ROTATION,
    };
    let argv: Vec<String> = std::env::args().collect();
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).and_then(|v| v.parse().ok());
        match (argv[i].as_str(), value) {
            ("--blocks", Some(v)) => out.blocks = v,
            ("--txs", Some(v)) => out.txs = v,
            ("--patients", Some(v)) => out.patients = v,
            ("--prefill", Some(v)) => out.prefill = v,
            ("--history", Some(v)) => out.history = v,
            ("--cache-mib", Some(v)) => out.cache_mib = v,
            ("--flush-rotation", Some(v)) => out.flush_rotation = v as u64,
            _ => {}
        }
        i += 1;
    }
    out
}

fn random_bytes(rng: &mut StdRng, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    rng.fill_bytes(&mut out);
    out
}

fn id(rng: &mut StdRng) -> Hash {
    let mut out = [0u8; 32];
    rng.fill_bytes(&mut out);
    Hash(out)
}

/// The population the txs act on: patients, their devices, each patient's list lengths.
struct Population {
    patients: Vec<[u8; 32]>,
    devices: Vec<[u8; 32]>,
    nonces: Vec<u64>,
    lists: Vec<[u64; 3]>,
}

fn key32(rng: &mut StdRng) -> [u8; 32] {
    id(rng).0
}

impl Population {
    fn new(rng: &mut StdRng, patients: usize) -> Self {
        Population {
            patients: (0..patients).map(|_| key32(rng)).collect(),
            devices: (0..patients).map(|_| key32(rng)).collect(),
            nonces: vec![0; patients],
            lists: vec![[0; 3]; patients],
        }
    }

    fn push(&mut self, diff: &mut StateDiff, p: usize, list: usize, kind: ListKind, item: &Hash) {
        let owner = self.patients[p];
        let index = self.lists[p][list];
        self.lists[p][list] += 1;
        diff.insert(keys::list_item(kind, &owner, index), Some(item.0.to_vec()));
        diff.insert(
            keys::list_len(kind, &owner),
            Some((index + 1).to_le_bytes().to_vec()),
        );
    }

    fn bump_nonce(&mut self, diff: &mut StateDiff, signer: &[u8; 32], p: usize) {
        self.nonces[p] += 1;
        diff.insert(
            keys::nonce(&ledger::crypto::PublicKey(*signer)),
            Some(self.nonces[p].to_le_bytes().to_vec()),
        );
    }

    /// A block of `txs` txs of the mix: its state writes and the txs' (random) bytes.
    fn block(&mut self, rng: &mut StdRng, txs: usize) -> (StateDiff, Vec<Vec<u8>>) {
        let mut diff = StateDiff::new();
        let txs = (0..txs)
            .map(|_| {
                let size = self.tx(rng, &mut diff);
                random_bytes(rng, size)
            })
            .collect();
        (diff, txs)
    }

    /// One tx of the mix: its state writes into `diff`; returns the tx's size in bytes.
    fn tx(&mut self, rng: &mut StdRng, diff: &mut StateDiff) -> usize {
        let p = rng.gen_range(0..self.patients.len());
        match rng.gen_range(0..100) {
            0..40 => {
                let device = self.devices[p];
                self.bump_nonce(diff, &device, p);
                let commitment = id(rng);
                diff.insert(keys::commitment(&commitment), Some(random_bytes(rng, 190)));
                self.push(diff, p, 0, ListKind::PatientCommitments, &commitment);
                330
            }
            40..70 => {
                let patient = self.patients[p];
                self.bump_nonce(diff, &patient, p);
                let to = self.patients[rng.gen_range(0..self.patients.len())];
                for account in [patient, to] {
                    diff.insert(
                        keys::account(&ledger::crypto::PublicKey(account)),
                        Some(random_bytes(rng, 60)),
                    );
                }
                180
            }
            70..85 => {
                let patient = self.patients[p];
                self.bump_nonce(diff, &patient, p);
                let consent = id(rng);
                diff.insert(keys::consent(&consent), Some(random_bytes(rng, 200)));
                self.push(diff, p, 1, ListKind::PatientConsents, &consent);
                let grantee = rng.gen_range(0..self.patients.len());
                self.push(diff, grantee, 2, ListKind::GranteeConsents, &consent);
                300
            }
            _ => {
                let reader = self.patients[p];
                self.bump_nonce(diff, &reader, p);
                let record = id(rng);
                diff.insert(keys::access_record(&record), Some(random_bytes(rng, 300)));
                let patient = rng.gen_range(0..self.patients.len());
                self.push(diff, patient, 0, ListKind::PatientAccess, &record);
                400
            }
        }
    }
}

/// Commits `diff` as the next block (header built the way a proposer builds it, a commit signed
/// by every validator), returning the time of `state_root_after`, of `commit_block` and of the
/// latter's redb commit (page writes and fsyncs).
fn commit(
    store: &BlockStore,
    chain: &TestChain,
    diff: &StateDiff,
    txs: Vec<Vec<u8>>,
) -> (Duration, Duration, Duration) {
    let last = store.last_height().unwrap().unwrap();
    let height = last + 1;
    let ctx = BlockContext {
        chain_id: TEST_CHAIN_ID.into(),
        height,
        time: chain.time + height * 1_000,
    };
    // An empty block's outcome gives the validator sets; the diff is the synthetic one.
    let outcome = apply_block(store, &ctx, &[]).expect("an empty block applies");
    let started = Instant::now();
    let root = store.state_root_after(diff, height).unwrap();
    let root_time = started.elapsed();
    let last_block_id = match store.header(last).unwrap() {
        Some(header) => header.id(),
        None => Hash::ZERO,
    };
    let proposer = outcome.validators.proposer(height, 0).address;
    let header = outcome.header(&ctx, last_block_id, root, proposer);
    let signers: Vec<_> = chain.validator_keys.values().collect();
    let signed = sign_commit(&header, 0, &signers);
    let block = Block { header, txs };
    let started = Instant::now();
    let committed = store
        .commit_block(
            &block,
            &signed,
            &outcome.validators,
            &outcome.next_validators,
            diff,
        )
        .unwrap();
    (root_time, started.elapsed(), committed.sync)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let args = args();
    // As `medledger-node` does at start-up (see its main): without this, mimalloc's arenas
    // get transparent huge pages and a tenth of the bench is the kernel zeroing them.
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        eprintln!("could not turn transparent huge pages off: {error}");
    }
    // `MEDLEDGER_STORE_BENCH_DIR` keeps the file for `store_stats`.
    let dir = tempfile::tempdir().expect("a temp dir");
    let dir_path = std::env::var_os("MEDLEDGER_STORE_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().to_path_buf());
    let store = BlockStore::open_with_cache(&dir_path.join("store.redb"), args.cache_mib << 20)
        .and_then(|s| s.with_flush_rotation(args.flush_rotation))
        .expect("store opens");
    let chain = TestChain::new(4);
    store.init_genesis(&chain.genesis).unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut population = Population::new(&mut rng, args.patients);

    eprintln!(
        "prefill: {} patients, {} history keys",
        args.patients, args.prefill
    );
    let mut diff = StateDiff::new();
    for p in 0..args.patients {
        let patient = ledger::crypto::PublicKey(population.patients[p]);
        diff.insert(keys::account(&patient), Some(random_bytes(&mut rng, 60)));
        diff.insert(
            keys::device(&ledger::crypto::PublicKey(population.devices[p])),
            Some(random_bytes(&mut rng, 80)),
        );
    }
    for _ in 0..args.prefill {
        diff.insert(keys::commitment(&id(&mut rng)), Some(random_bytes(&mut rng, 190)));
    }
    commit(&store, &chain, &diff, Vec::new());

    let history_blocks = args.history.div_ceil(args.txs.max(1));
    eprintln!("history: {history_blocks} blocks of {} txs", args.txs);
    for b in 0..history_blocks {
        let (diff, txs) = population.block(&mut rng, args.txs);
        commit(&store, &chain, &diff, txs);
        if (b + 1) % 50 == 0 {
            eprintln!("  {} blocks", b + 1);
        }
    }

    eprintln!("{} blocks of {} txs", args.blocks, args.txs);
    let mut root_ms = Vec::new();
    let mut commit_ms = Vec::new();
    let mut sync_ms = Vec::new();
    let mut keys_per_block = 0usize;
    let written_before = bytes_written();
    let cpu_before = cpu_seconds();
    for b in 0..args.blocks {
        let (diff, txs) = population.block(&mut rng, args.txs);
        keys_per_block += diff.len();
        let (root, commit, sync) = commit(&store, &chain, &diff, txs);
        root_ms.push(root.as_secs_f64() * 1e3);
        commit_ms.push(commit.as_secs_f64() * 1e3);
        sync_ms.push(sync.as_secs_f64() * 1e3);
        if (b + 1) % 10 == 0 {
            eprintln!("  {} blocks", b + 1);
        }
    }
    let cpu = cpu_seconds() - cpu_before;
    let written = bytes_written().saturating_sub(written_before);
    let total_txs = (args.blocks * args.txs) as f64;
    let sum = |v: &[f64]| v.iter().sum::<f64>();
    let (root_sum, commit_sum) = (sum(&root_ms), sum(&commit_ms));
    root_ms.sort_by(f64::total_cmp);
    commit_ms.sort_by(f64::total_cmp);
    sync_ms.sort_by(f64::total_cmp);
    println!();
    println!(
        "| blocks × txs | state keys per tx | state_root_after ms p50 / p90 | commit_block ms p50 / p90 | of which redb commit (writes, fsyncs) ms p50 / p90 | store µs per tx (root + commit) | process CPU µs per tx | bytes written per tx |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} × {} | {:.2} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} / {:.0} | {:.0} | {:.0} | {:.0} B |",
        args.blocks,
        args.txs,
        keys_per_block as f64 / total_txs,
        percentile(&root_ms, 0.5),
        percentile(&root_ms, 0.9),
        percentile(&commit_ms, 0.5),
        percentile(&commit_ms, 0.9),
        percentile(&sync_ms, 0.5),
        percentile(&sync_ms, 0.9),
        (root_sum + commit_sum) * 1e3 / total_txs,
        cpu * 1e6 / total_txs,
        written as f64 / total_txs,
    );
}

/// Bytes this process handed to write syscalls (Linux `wchar`): redb's page writes.
fn bytes_written() -> u64 {
    let io = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    io.lines()
        .find_map(|line| line.strip_prefix("wchar: "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of this process so far (Linux), so fsync waits do not count.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is 0, utime 11, stime 12; 100 ticks per second.
    (ticks(11) + ticks(12)) / 100.0
}

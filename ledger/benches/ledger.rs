//! Ledger benchmarks: commit verification, tx apply throughput, state proofs.
//!
//! `cargo bench -p medledger-ledger --bench ledger -- [--quick] [--secs N]`
//!
//! No criterion: a small harness below warms every row up, then times the rows of one group
//! interleaved (round-robin ~20 ms slices, like the anchor bench in shared/anchor-bench), so a
//! burst of load from another process hits all rows of a group alike and the ratios between
//! rows stay meaningful on a shared machine. Reported: median and min per operation.
//! Compare against the anchor (tendermint-rs light-client verifier) only from the same session.

use std::hint::black_box;
use std::time::{Duration, Instant};

use ledger::crypto::{sha256, verify_signature, PublicKey, SignatureBatch, SigningKey};
use ledger::exec::apply_block;
use ledger::header::{precommit_sign_bytes, Commit, Header};
use ledger::state::{MemoryState, StateDiff, StateProof};
use ledger::test_utils::{sign_commit, validator_key, Actor, TestChain, BLOCK_INTERVAL_MS, TEST_CHAIN_ID};
use ledger::tx::{AccessRequest, Action, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee, Tx};
use ledger::types::{loinc, AccessLevel, Cid, LoincCode, Purpose, Role, TimeRange, DAY_MS};
use ledger::validators::{Validator, ValidatorSet};
use ledger::verify::{
    chain_id_matches, commit_matches_header, validators_hash_matches, verify_commit, verify_commit_with,
    verify_skipping, SignatureCheck, TrustOptions, TrustedBlock, Verdict, VerifyError, VotingPowerTally,
};

// ---- timing harness -----------------------------------------------------------------------

struct Cfg {
    /// Group budget per row.
    secs: f64,
    min_samples: usize,
    warmup: Duration,
    /// Round-robin slice per row.
    slice: Duration,
    /// Fast operations are repeated within one sample until it lasts about this long.
    sample_target: Duration,
}

#[derive(Clone, Copy, Debug)]
struct Stats {
    samples: usize,
    /// Seconds per operation.
    median: f64,
    min: f64,
}

/// One timed row. `run(iters)` performs the operation `iters` times and returns the time
/// spent on it (rows with per-iteration setup exclude the setup from what they return).
struct Op<'a> {
    run: Box<dyn FnMut(u64) -> Duration + 'a>,
    iters: u64,
    samples: Vec<f64>,
}

fn op<'a>(run: impl FnMut(u64) -> Duration + 'a) -> Op<'a> {
    Op {
        run: Box::new(run),
        iters: 1,
        samples: Vec::with_capacity(1024),
    }
}

/// A row whose every iteration is timed whole.
fn simple<'a>(mut f: impl FnMut() + 'a) -> Op<'a> {
    op(move |iters| {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        t.elapsed()
    })
}

fn bench_group(cfg: &Cfg, ops: &mut [Op<'_>]) -> Vec<Stats> {
    // Warm-up, and pick iterations per sample so a sample lasts ~sample_target.
    for o in ops.iter_mut() {
        let w = Instant::now();
        let mut fastest = f64::INFINITY;
        let mut runs = 0;
        while runs < 3 || w.elapsed() < cfg.warmup {
            fastest = fastest.min((o.run)(1).as_secs_f64());
            runs += 1;
        }
        o.iters = ((cfg.sample_target.as_secs_f64() / fastest.max(1e-9)) as u64).max(1);
    }
    let budget = Duration::from_secs_f64(cfg.secs * ops.len() as f64);
    let start = Instant::now();
    loop {
        for o in ops.iter_mut() {
            let s = Instant::now();
            loop {
                let d = (o.run)(o.iters);
                o.samples.push(d.as_secs_f64() / o.iters as f64);
                if s.elapsed() >= cfg.slice {
                    break;
                }
            }
        }
        if start.elapsed() >= budget && ops.iter().all(|o| o.samples.len() >= cfg.min_samples) {
            break;
        }
    }
    ops.iter_mut()
        .map(|o| {
            let v = &mut o.samples;
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let median = if n % 2 == 1 {
                v[n / 2]
            } else {
                (v[n / 2 - 1] + v[n / 2]) / 2.0
            };
            Stats {
                samples: n,
                median,
                min: v[0],
            }
        })
        .collect()
}

fn us(secs: f64) -> String {
    let x = secs * 1e6;
    if x >= 1000.0 {
        format!("{x:.1}")
    } else if x >= 10.0 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

// ---- machine ------------------------------------------------------------------------------

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn machine() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split(':').nth(1))
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    let flags = field("flags");
    let feats: Vec<&str> = ["avx2", "avx512f", "avx512ifma", "sha_ni", "bmi2", "adx"]
        .into_iter()
        .filter(|f| flags.split_whitespace().any(|x| x == *f))
        .collect();
    let cores = info.lines().filter(|l| l.starts_with("processor")).count();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .unwrap_or_default();
    format!(
        "CPU: {} ({cores} logical CPUs, {} MHz; flags: {}); {}",
        field("model name"),
        field("cpu MHz"),
        if feats.is_empty() {
            "none of avx2/avx512/sha_ni/bmi2/adx".to_string()
        } else {
            feats.join(" ")
        },
        rustc.trim()
    )
}

// ---- 1. commit verification ---------------------------------------------------------------

struct CommitFixture {
    set: ValidatorSet,
    header: Header,
    commit: Commit,
    trusted: TrustedBlock,
    skip_header: Header,
    skip_commit: Commit,
    now: u64,
}

fn header_at(height: u64, last_block_id: ledger::crypto::Hash, set: &ValidatorSet) -> Header {
    Header {
        chain_id: TEST_CHAIN_ID.into(),
        height,
        time: ledger::test_utils::GENESIS_TIME + height * BLOCK_INTERVAL_MS,
        last_block_id,
        tx_root: sha256(&height.to_be_bytes()),
        state_root: sha256(&[&height.to_le_bytes()[..], b"state"].concat()),
        validators_hash: set.hash(),
        next_validators_hash: set.hash(),
        proposer: set.validators()[(height as usize) % set.len()].address,
    }
}

fn commit_fixture(n: usize) -> CommitFixture {
    let keys: Vec<SigningKey> = (0..n as u64).map(validator_key).collect();
    let set = ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                address: k.public_key(),
                power: 10,
            })
            .collect(),
    )
    .expect("validator set");
    let signers: Vec<&SigningKey> = keys.iter().collect();
    let h = 5_000;
    let trusted_header = header_at(h, sha256(b"h-1"), &set);
    let header = header_at(h + 1, trusted_header.id(), &set);
    let commit = sign_commit(&header, 0, &signers);
    let skip_header = header_at(h + 1000, sha256(b"h+999"), &set);
    let skip_commit = sign_commit(&skip_header, 0, &signers);
    let now = skip_header.time + 1_000;
    CommitFixture {
        trusted: TrustedBlock {
            header: trusted_header,
            next_validators: set.clone(),
        },
        set,
        header,
        commit,
        skip_header,
        skip_commit,
        now,
    }
}

/// verify_commit's checks, with every signature verified on its own (no batch).
fn single_verify_path(
    chain_id: &str,
    header: &Header,
    commit: &Commit,
    validators: &ValidatorSet,
    check: SignatureCheck,
) -> Result<VotingPowerTally, VerifyError> {
    chain_id_matches(chain_id, header)?;
    validators_hash_matches(&header.validators_hash, validators)?;
    commit_matches_header(header, commit)?;
    let mut seen = vec![false; validators.len()];
    let mut powers = Vec::with_capacity(commit.signatures.len());
    for sig in &commit.signatures {
        let index = validators
            .index_of(&sig.validator)
            .ok_or(VerifyError::UnknownSigner(sig.validator))?;
        if std::mem::replace(&mut seen[index], true) {
            return Err(VerifyError::DuplicateSigner(sig.validator));
        }
        powers.push(validators.validators()[index].power);
    }
    let message = precommit_sign_bytes(chain_id, commit.height, commit.round, &commit.block_id);
    let mut tally = VotingPowerTally {
        signed: 0,
        total: validators.total_power(),
    };
    for (sig, power) in commit.signatures.iter().zip(powers) {
        if check == SignatureCheck::UntilThreshold && tally.exceeds(2, 3) {
            break;
        }
        verify_signature(&sig.validator, &message, &sig.signature).map_err(|_| {
            VerifyError::BadSignature {
                validator: sig.validator,
            }
        })?;
        tally.signed += power;
    }
    if !tally.exceeds(2, 3) {
        return Err(VerifyError::InsufficientVotingPower(tally));
    }
    Ok(tally)
}

fn bench_commits(cfg: &Cfg, sizes: &[usize]) {
    println!("## 1. Commit verification (equal power, all N validators signed)\n");
    println!(
        "| N | operation | sigs checked | samples | median µs | min µs | µs/signature | ratio to baseline |"
    );
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let fx = commit_fixture(n);
        let chain = TEST_CHAIN_ID;
        let options = TrustOptions::default();
        let message = precommit_sign_bytes(chain, fx.commit.height, fx.commit.round, &fx.commit.block_id);
        let k = n * 2 / 3 + 1;

        // Correctness before timing.
        assert!(verify_commit(chain, &fx.header, &fx.commit, &fx.set).is_ok());
        assert!(verify_commit_with(
            chain,
            &fx.header,
            &fx.commit,
            &fx.set,
            SignatureCheck::UntilThreshold
        )
        .is_ok());
        assert_eq!(
            verify_skipping(
                &fx.trusted,
                &fx.skip_header,
                &fx.skip_commit,
                &fx.set,
                &options,
                fx.now,
                SignatureCheck::UntilThreshold
            ),
            Verdict::Success
        );
        for check in [SignatureCheck::All, SignatureCheck::UntilThreshold] {
            assert!(single_verify_path(chain, &fx.header, &fx.commit, &fx.set, check).is_ok());
        }
        {
            let mut forged = fx.commit.clone();
            forged.signatures[0].signature.0[5] ^= 1;
            assert!(verify_commit(chain, &fx.header, &forged, &fx.set).is_err());
        }

        // Raw-crate floor inputs (outside the ledger's API), same keys, message and signatures.
        let consensus_keys: Vec<ed25519_consensus::VerificationKey> = fx
            .commit
            .signatures
            .iter()
            .map(|s| ed25519_consensus::VerificationKey::try_from(s.validator.0).expect("key"))
            .collect();
        let dalek_keys: Vec<ed25519_dalek::VerifyingKey> = fx
            .commit
            .signatures
            .iter()
            .map(|s| ed25519_dalek::VerifyingKey::from_bytes(&s.validator.0).expect("key"))
            .collect();
        for (key, sig) in dalek_keys.iter().zip(&fx.commit.signatures) {
            use ed25519_dalek::Verifier as _;
            key.verify(&message, &ed25519_dalek::Signature::from_bytes(&sig.signature.0))
                .expect("dalek accepts");
        }

        let mut ops = vec![
            simple(|| {
                for sig in &fx.commit.signatures {
                    let vk = ed25519_consensus::VerificationKey::try_from(black_box(sig.validator.0))
                        .expect("key");
                    black_box(vk.verify(
                        &ed25519_consensus::Signature::from(sig.signature.0),
                        black_box(&message),
                    ))
                    .expect("valid");
                }
            }),
            simple(|| {
                for sig in &fx.commit.signatures {
                    black_box(verify_signature(
                        black_box(&sig.validator),
                        black_box(&message),
                        black_box(&sig.signature),
                    ))
                    .expect("valid");
                }
            }),
            simple(|| {
                black_box(verify_commit(
                    chain,
                    black_box(&fx.header),
                    black_box(&fx.commit),
                    &fx.set,
                ))
                .expect("valid");
            }),
            simple(|| {
                black_box(verify_commit_with(
                    chain,
                    black_box(&fx.header),
                    black_box(&fx.commit),
                    &fx.set,
                    SignatureCheck::UntilThreshold,
                ))
                .expect("valid");
            }),
            simple(|| {
                let v = verify_skipping(
                    black_box(&fx.trusted),
                    black_box(&fx.skip_header),
                    black_box(&fx.skip_commit),
                    &fx.set,
                    &options,
                    fx.now,
                    SignatureCheck::UntilThreshold,
                );
                debug_assert_eq!(v, Verdict::Success);
                black_box(v);
            }),
            simple(|| {
                black_box(single_verify_path(
                    chain,
                    black_box(&fx.header),
                    black_box(&fx.commit),
                    &fx.set,
                    SignatureCheck::All,
                ))
                .expect("valid");
            }),
            simple(|| {
                black_box(single_verify_path(
                    chain,
                    black_box(&fx.header),
                    black_box(&fx.commit),
                    &fx.set,
                    SignatureCheck::UntilThreshold,
                ))
                .expect("valid");
            }),
            simple(|| {
                for (vk, sig) in consensus_keys.iter().zip(&fx.commit.signatures) {
                    black_box(vk.verify(
                        &ed25519_consensus::Signature::from(sig.signature.0),
                        black_box(&message),
                    ))
                    .expect("valid");
                }
            }),
            simple(|| {
                use ed25519_dalek::Verifier as _;
                for (vk, sig) in dalek_keys.iter().zip(&fx.commit.signatures) {
                    black_box(vk.verify(
                        black_box(&message),
                        &ed25519_dalek::Signature::from_bytes(&sig.signature.0),
                    ))
                    .expect("valid");
                }
            }),
            simple(|| {
                let mut batch = SignatureBatch::new();
                for sig in &fx.commit.signatures[..k] {
                    batch.queue(&sig.validator, black_box(&message), &sig.signature);
                }
                black_box(batch.verify()).expect("valid");
            }),
        ];
        let st = bench_group(cfg, &mut ops);
        drop(ops);
        let base = st[0].median;
        let rows = [
            ("n × ed25519-consensus parse key + verify (baseline)", n),
            ("n × verify_signature", n),
            ("verify_commit (All, batch)", n),
            ("verify_commit_with(UntilThreshold)", k),
            ("verify_skipping h→h+1000 (stable set, UntilThreshold)", k),
            ("single-verify path (All, no batch)", n),
            ("single-verify path (UntilThreshold, no batch)", k),
            ("floor: ed25519-consensus verify × N, key pre-parsed", n),
            (
                "floor: ed25519-dalek verify × N, key pre-parsed (curve25519-dalek 4)",
                n,
            ),
            ("floor: SignatureBatch of k signatures alone (queue + verify)", k),
        ];
        for ((name, checked), s) in rows.iter().zip(&st) {
            println!(
                "| {n} | {name} | {checked} | {} | {} | {} | {} | {:.2} |",
                s.samples,
                us(s.median),
                us(s.min),
                us(s.median / n as f64),
                s.median / base
            );
        }
    }
    println!(
        "\nµs/signature = median / N (per validator in the set); k = floor(2N/3) + 1. Ratio = median / median of the \
         first row (N single ZIP-215 verifications with ed25519-consensus, key parsed per signature: what \
         `verify_signature` does without the fast path), same run. Floor rows call the crates directly.\n"
    );
}

// ---- 2. tx apply throughput ---------------------------------------------------------------

const PATIENTS: usize = 100;
const PER_KIND: usize = 500;

struct TxFixture {
    chain: TestChain,
    block: Vec<Vec<u8>>,
    /// Sign bytes, key and signature of every tx (for the signature-only row).
    signed: Vec<(PublicKey, Vec<u8>, ledger::crypto::Signature)>,
}

fn tx_fixture() -> TxFixture {
    let mut chain = TestChain::new(4);
    let hr = LoincCode::new(loinc::HEART_RATE).expect("loinc");
    let glucose = LoincCode::new(loinc::GLUCOSE_CGM).expect("loinc");
    let register = |a: &mut Actor, role: Role| {
        let encryption_key = a.keys.encryption_key();
        a.tx(Action::RegisterAccount { role, encryption_key })
    };

    let mut patients: Vec<Actor> = (0..PATIENTS)
        .map(|i| Actor::from_seed(10_000 + i as u64))
        .collect();
    let mut devices: Vec<Actor> = (0..PATIENTS)
        .map(|i| Actor::from_seed(20_000 + i as u64))
        .collect();
    let mut readers: Vec<Actor> = (0..PATIENTS)
        .map(|i| Actor::from_seed(30_000 + i as u64))
        .collect();
    let mut grantees: Vec<Actor> = (0..PATIENTS)
        .map(|i| Actor::from_seed(40_000 + i as u64))
        .collect();
    let mut org = Actor::from_seed(50_000);

    // Block: accounts.
    let mut txs = vec![register(&mut org, Role::Organisation)];
    for a in &mut patients {
        txs.push(register(a, Role::Patient));
    }
    for a in readers.iter_mut().chain(grantees.iter_mut()) {
        txs.push(register(a, Role::Clinician));
    }
    chain.block(&txs).expect("registrations");
    // Block: admission and funding.
    chain
        .governance_tx(Action::AdmitOrganisation {
            organisation: org.address(),
        })
        .expect("admit");
    let txs: Vec<Tx> = patients
        .iter()
        .map(|p| {
            chain.treasury.tx(Action::Transfer {
                to: p.address(),
                amount: 1_000_000,
            })
        })
        .collect();
    chain.block(&txs).expect("funding");
    // Block: devices.
    let txs: Vec<Tx> = patients
        .iter_mut()
        .zip(&devices)
        .map(|(p, d)| {
            p.tx(Action::RegisterDevice {
                device: d.address(),
                loinc_codes: vec![hr.clone(), glucose.clone()],
            })
        })
        .collect();
    chain.block(&txs).expect("devices");
    // Block: one commitment per patient (what readers read) and one consent per reader.
    let ctx = chain.ctx();
    let mut cid_counter = 0u64;
    let mut commit_body = |patient: &Actor, device: &Actor, now: u64| {
        cid_counter += 1;
        DataCommitmentBody {
            patient: patient.address(),
            device: Some(device.address()),
            cid: Cid::of(&[&cid_counter.to_be_bytes()[..], b"ciphertext"].concat()),
            readings_root: sha256(&cid_counter.to_le_bytes()),
            loinc_codes: vec![hr.clone()],
            time_range: TimeRange::new(now - 3_600_000, now - 60_000).expect("range"),
            size: 4096,
            reading_count: 60,
        }
    };
    let mut setup_commitments = Vec::new();
    let mut txs = Vec::new();
    for i in 0..PATIENTS {
        let body = commit_body(&patients[i], &devices[i], ctx.time);
        let id = ledger::tx::commitment_id(&body.cid);
        setup_commitments.push((id, body.cid));
        txs.push(devices[i].tx(Action::CommitData(body)));
        txs.push(patients[i].tx(Action::GrantConsent(ConsentTerms {
            grantee: Grantee::Account(readers[i].address()),
            scope: ConsentScope::default(),
            purpose: Purpose::Treatment,
            access: AccessLevel::Read,
            valid_from: ctx.time,
            valid_until: None,
            template: None,
        })));
    }
    chain.block(&txs).expect("commitments and consents");
    chain.advance_time(60_000);

    // The benchmarked block: Transfer, CommitData, GrantConsent, RecordAccess interleaved.
    let ctx = chain.ctx();
    let mut txs = Vec::with_capacity(4 * PER_KIND);
    for i in 0..PER_KIND {
        let p = i % PATIENTS;
        let to = patients[(i * 7 + 1) % PATIENTS].address();
        txs.push(patients[p].tx(Action::Transfer {
            to,
            amount: 1 + i as u64,
        }));
        let body = commit_body(&patients[p], &devices[p], ctx.time);
        txs.push(devices[p].tx(Action::CommitData(body)));
        let grantee = grantees[(i * 3) % PATIENTS].address();
        txs.push(
            patients[(p + 50) % PATIENTS].tx(Action::GrantConsent(ConsentTerms {
                grantee: Grantee::Account(grantee),
                scope: ConsentScope {
                    categories: vec![],
                    loinc_codes: vec![hr.clone()],
                    devices: vec![],
                    data_range: None,
                },
                purpose: Purpose::Caregiving,
                access: AccessLevel::Read,
                valid_from: ctx.time,
                valid_until: Some(ctx.time + 30 * DAY_MS),
                template: None,
            })),
        );
        let (commitment, cid) = setup_commitments[p];
        let request = AccessRequest {
            chain_id: TEST_CHAIN_ID.into(),
            reader: readers[p].address(),
            commitment,
            cid,
            purpose: Purpose::Treatment,
            time: ctx.time - 30_000,
            nonce: 0xACC0_0000 + i as u64,
        }
        .sign(&readers[p].keys.signing);
        txs.push(org.tx(Action::RecordAccess { request }));
    }
    let signed = txs
        .iter()
        .map(|t| (t.body.signer, t.body.sign_bytes(), t.signature))
        .collect();
    let block: Vec<Vec<u8>> = txs.iter().map(Tx::to_bytes).collect();
    TxFixture { chain, block, signed }
}

/// A MemoryState with the same content as `state`, at version 0 (MemoryState is not Clone).
fn copy_state(state: &MemoryState) -> MemoryState {
    let diff: StateDiff = state
        .entries()
        .map(|(k, v)| (k.clone(), Some(v.clone())))
        .collect();
    let mut copy = MemoryState::new();
    copy.commit(&diff, 0).expect("memory store");
    copy
}

fn bench_apply(cfg: &Cfg) {
    let t = Instant::now();
    let fx = tx_fixture();
    let ctx = fx.chain.ctx();
    let n = fx.block.len();
    let bytes: usize = fx.block.iter().map(Vec::len).sum();
    let outcome = apply_block(&fx.chain.state, &ctx, &fx.block).expect("benchmark block applies");
    let base_copy = copy_state(&fx.chain.state);
    assert_eq!(
        base_copy.root().expect("root"),
        fx.chain.state.root().expect("root")
    );
    eprintln!(
        "  tx fixture: {} keys in state, block of {n} txs ({bytes} bytes, {} writes) built in {:.2?}",
        fx.chain.state.entries().count(),
        outcome.diff.len(),
        t.elapsed()
    );
    drop(base_copy);

    let mut ops = vec![
        simple(|| {
            black_box(apply_block(&fx.chain.state, &ctx, black_box(&fx.block))).expect("applies");
        }),
        op(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut state = copy_state(&fx.chain.state);
                let t = Instant::now();
                let outcome = apply_block(&state, &ctx, black_box(&fx.block)).expect("applies");
                black_box(state.commit(&outcome.diff, 1).expect("commit"));
                total += t.elapsed();
            }
            total
        }),
        op(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut state = copy_state(&fx.chain.state);
                let t = Instant::now();
                black_box(state.commit(black_box(&outcome.diff), 1).expect("commit"));
                total += t.elapsed();
            }
            total
        }),
        simple(|| {
            let mut batch = SignatureBatch::new();
            for (key, msg, sig) in &fx.signed {
                batch.queue(key, msg, sig);
            }
            black_box(batch.verify()).expect("valid");
        }),
    ];
    let st = bench_group(cfg, &mut ops);
    drop(ops);
    println!(
        "## 2. Tx apply throughput (block of {n} txs: {PER_KIND} each Transfer, CommitData (device-signed), \
         GrantConsent, RecordAccess (org-signed, reader-signed request); {PATIENTS} patients)\n"
    );
    println!("| operation | samples | median ms | min ms | txs/s (median) | txs/s (best) |");
    println!("|---|---:|---:|---:|---:|---:|");
    let rows = [
        "apply_block (decode, batch sig check, execute, tx root)",
        "apply_block + MemoryState::commit (JMT root)",
        "MemoryState::commit of the block's diff alone",
        "tx signature batch alone (queue + verify, part of apply_block)",
    ];
    for (name, s) in rows.iter().zip(&st) {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.0} | {:.0} |",
            s.samples,
            s.median * 1e3,
            s.min * 1e3,
            n as f64 / s.median,
            n as f64 / s.min
        );
    }
    println!(
        "\nThe commit rows start each iteration from a fresh copy of the pre-block state (copying is not timed). \
         RecordAccess also verifies the reader's request signature one by one inside execution.\n"
    );
}

// ---- 3. state proofs ----------------------------------------------------------------------

fn bench_proofs(cfg: &Cfg, sizes: &[usize]) {
    println!("## 3. State proofs (MemoryState, JMT over SHA-256, 64-byte values)\n");
    println!("| keys | operation | samples | median µs | min µs | proof bytes (avg) |");
    println!("|---:|---|---:|---:|---:|---:|");
    for &n in sizes {
        let t = Instant::now();
        let key = |i: u64| [&b"bench/"[..], &i.to_be_bytes()].concat();
        let absent = |i: u64| [&b"absent/"[..], &i.to_be_bytes()].concat();
        let diff: StateDiff = (0..n as u64)
            .map(|i| (key(i), Some(sha256(&i.to_le_bytes()).0.repeat(2))))
            .collect();
        let mut state = MemoryState::new();
        let root = state.commit(&diff, 0).expect("commit");
        drop(diff);
        eprintln!("  state of {n} keys committed in {:.2?}", t.elapsed());

        const Q: u64 = 1024;
        let present: Vec<Vec<u8>> = (0..Q).map(|i| key(i * 7919 % n as u64)).collect();
        let missing: Vec<Vec<u8>> = (0..Q).map(absent).collect();
        let proofs = |keys: &[Vec<u8>]| -> Vec<(Option<Vec<u8>>, StateProof)> {
            keys.iter()
                .map(|k| state.get_with_proof(k, 0).expect("proof"))
                .collect()
        };
        let present_proofs = proofs(&present);
        let missing_proofs = proofs(&missing);
        let avg_size = |ps: &[(Option<Vec<u8>>, StateProof)]| {
            ps.iter().map(|(_, p)| p.encoded_len()).sum::<usize>() as f64 / ps.len() as f64
        };
        for ((k, (v, p)), (mk, (mv, mp))) in present
            .iter()
            .zip(&present_proofs)
            .zip(missing.iter().zip(&missing_proofs))
        {
            assert!(v.is_some() && mv.is_none());
            p.verify(&root, k, v.as_deref()).expect("inclusion");
            mp.verify(&root, mk, None).expect("non-inclusion");
            assert!(p.verify(&root, k, None).is_err());
        }

        let mut i = 0usize;
        let mut j = 0usize;
        let mut a = 0usize;
        let mut b = 0usize;
        let mut ops = vec![
            simple(|| {
                i = (i + 1) % present.len();
                black_box(state.get_with_proof(black_box(&present[i]), 0)).expect("proof");
            }),
            simple(|| {
                j = (j + 1) % missing.len();
                black_box(state.get_with_proof(black_box(&missing[j]), 0)).expect("proof");
            }),
            simple(|| {
                a = (a + 1) % present.len();
                let (v, p) = &present_proofs[a];
                black_box(p.verify(&root, black_box(&present[a]), v.as_deref())).expect("valid");
            }),
            simple(|| {
                b = (b + 1) % missing.len();
                let (_, p) = &missing_proofs[b];
                black_box(p.verify(&root, black_box(&missing[b]), None)).expect("valid");
            }),
        ];
        let st = bench_group(cfg, &mut ops);
        drop(ops);
        let (ps, ms) = (avg_size(&present_proofs), avg_size(&missing_proofs));
        let rows = [
            ("get_with_proof (inclusion)", ps),
            ("get_with_proof (non-inclusion)", ms),
            ("StateProof::verify (inclusion)", ps),
            ("StateProof::verify (non-inclusion)", ms),
        ];
        for ((name, size), s) in rows.iter().zip(&st) {
            println!(
                "| {n} | {name} | {} | {} | {} | {size:.0} |",
                s.samples,
                us(s.median),
                us(s.min)
            );
        }
    }
    println!();
}

// ---- main ---------------------------------------------------------------------------------

fn main() {
    let mut quick = false;
    let mut secs: Option<f64> = None;
    let mut only: Vec<u32> = vec![1, 2, 3];
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--secs" => secs = Some(args.next().and_then(|s| s.parse().ok()).expect("--secs N")),
            "--only" => {
                only = args
                    .next()
                    .map(|s| s.split(',').filter_map(|t| t.trim().parse().ok()).collect())
                    .expect("--only 1,2,3")
            }
            // cargo bench passes --bench to harness = false targets.
            "--bench" => {}
            "-h" | "--help" => {
                println!("ledger bench [--quick] [--secs N] [--only 1,2,3 (tables)]");
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let cfg = if quick {
        Cfg {
            secs: secs.unwrap_or(0.05),
            min_samples: 10,
            warmup: Duration::from_millis(30),
            slice: Duration::from_millis(10),
            sample_target: Duration::from_micros(200),
        }
    } else {
        Cfg {
            secs: secs.unwrap_or(1.0),
            min_samples: 30,
            warmup: Duration::from_millis(300),
            slice: Duration::from_millis(20),
            sample_target: Duration::from_millis(1),
        }
    };
    println!(
        "# medledger-ledger benchmarks{}\n",
        if quick {
            " (--quick: smoke test, numbers are rough)"
        } else {
            ""
        }
    );
    println!("{}", machine());
    println!(
        "method: warm-up >= {:?} per row, then rows of one group timed interleaved ({:?} slices) until each has \
         >= {} samples and the group ran >= {:.2} s per row; ops faster than {:?} are repeated within a sample; \
         median & min per op; single thread{}",
        cfg.warmup,
        cfg.slice,
        cfg.min_samples,
        cfg.secs,
        cfg.sample_target,
        if cfg!(debug_assertions) { "; WARNING: debug assertions on, not a release build" } else { "" }
    );
    println!("loadavg at start: {}\n", loadavg());

    if only.contains(&1) {
        bench_commits(&cfg, &[4, 32, 100]);
    }
    if only.contains(&2) {
        bench_apply(&cfg);
    }
    if only.contains(&3) {
        bench_proofs(&cfg, &[10_000, 100_000]);
    }

    println!("loadavg at end: {}", loadavg());
}

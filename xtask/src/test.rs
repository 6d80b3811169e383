//! `cargo xtask test`: every check CI runs, in the order a developer wants them.
//!
//! All steps run even when one fails, so one run shows everything that is broken. The last
//! line is `N passed, M failed`; CI reads it.

use std::time::Instant;

use anyhow::Result;

use crate::{cmd, setup};

/// The checks: a name for the summary and the command that runs it.
const STEPS: &[(&str, &str)] = &[
    ("format", "cargo fmt --all -- --check"),
    ("clippy", "cargo clippy --workspace --all-targets -- -D warnings"),
    ("native tests", "cargo test --workspace --exclude medledger-tests"),
    // Real node processes on loopback; one test at a time so 2 cores are not oversubscribed.
    (
        "end-to-end (node processes)",
        "cargo test -p medledger-tests -- --test-threads=1",
    ),
    (
        "ledger builds for wasm32",
        "cargo build -p medledger-ledger --target wasm32-unknown-unknown",
    ),
];

pub fn run(skip_setup: bool) -> Result<()> {
    if !skip_setup {
        setup::run(false)?;
    }
    let mut summary = Vec::new();
    for (name, line) in STEPS {
        let start = Instant::now();
        let result = cmd::run(&mut cmd::new(line));
        let secs = start.elapsed().as_secs_f32();
        if let Err(e) = &result {
            eprintln!("error: {e:#}");
        }
        summary.push((name, result.is_ok(), secs));
    }

    println!("\nsummary:");
    for (name, ok, secs) in &summary {
        println!("  {:<6} {name} ({secs:.1}s)", if *ok { "ok" } else { "FAILED" });
    }
    let passed = summary.iter().filter(|(_, ok, _)| *ok).count();
    let failed = summary.len() - passed;
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        // Exit here rather than return an error, so the count stays the very last line.
        std::process::exit(1);
    }
    Ok(())
}

//! Light-client benchmarks (issue 6), native; the browser numbers come from
//! `tests/browser_bench.rs` in headless Chromium. Prints a table.
//!
//! `cargo bench -p medledger-light-client --features testing --bench light_client [-- --quick]`
//!
//! - headers/s: a client follows consecutive signed headers (sequential verification,
//!   signatures checked until > 2/3) with 4 and with 100 validators;
//! - skip: a fresh client syncs from genesis to block 100,000 of a stable set (block 1, then
//!   one skip);
//! - window: headers kept after following 20,000 blocks (bounded by TRUSTED_WINDOW).

use futures::executor::block_on;
use light_client::testing::{client_at_block_1, follow, SyntheticChain};
use std::time::Instant;

fn headers_per_second(validators: usize, count: u64) -> f64 {
    let chain = SyntheticChain::new(validators, count + 1);
    let heads: Vec<_> = (2..=count + 1).map(|h| chain.signed(h)).collect();
    let mut client = block_on(client_at_block_1(&chain));
    let started = Instant::now();
    let verified = block_on(follow(&mut client, heads));
    let secs = started.elapsed().as_secs_f64();
    assert_eq!(verified as u64, count, "every synthetic header must verify");
    count as f64 / secs
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let runs = if quick { 1 } else { 5 };
    println!("| measure | value |");
    println!("|---|---:|");
    for (validators, count) in [
        (4, if quick { 500 } else { 3_000 }),
        (100, if quick { 50 } else { 300 }),
    ] {
        let rate = median((0..runs).map(|_| headers_per_second(validators, count)).collect());
        println!("| headers verified/s, {validators} validators (sequential, native) | {rate:.0} |");
    }

    let chain = SyntheticChain::new(4, 100_000);
    chain.header(100_000); // the relay has its headers; hashing the prefix is not the client's cost
    let times: Vec<f64> = (0..runs.max(3))
        .map(|_| {
            let started = Instant::now();
            let mut client = block_on(client_at_block_1(&chain));
            let head = block_on(client.sync()).map(|h| h.height());
            assert_eq!(head.ok(), Some(100_000));
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    println!(
        "| skip genesis → 100,000 (stable set, 4 validators), ms | {:.2} |",
        median(times)
    );

    let chain = SyntheticChain::new(1, 20_001);
    let heads: Vec<_> = (2..=20_001).map(|h| chain.signed(h)).collect();
    let mut client = block_on(client_at_block_1(&chain));
    block_on(follow(&mut client, heads));
    println!(
        "| headers kept after following 20,000 blocks | {} (window {}) |",
        client.trusted_count(),
        light_client::trust::TRUSTED_WINDOW
    );
}

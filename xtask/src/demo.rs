//! `cargo xtask demo`: set up, then run the system locally.
//!
//! For now that is the in-process scenario in `ledger/examples/scenario.rs`; the networked
//! demo (nodes, relay, dashboard) replaces it when those crates arrive.

use anyhow::Result;

use crate::{cmd, setup};

pub fn run() -> Result<()> {
    setup::run(false)?;
    cmd::run(&mut cmd::new(
        "cargo run --release -p medledger-ledger --example scenario",
    ))
}

//! `medledger-node`: run a Medledger validator or follower.

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use node::config::{Home, NodeConfig};
use node::node::{start, Mode};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

// A validator allocates and frees many small buffers per tx (decoding, state reads, tree
// nodes); with glibc's allocator that was ~11 % of its CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "medledger-node",
    version,
    about = "Medledger validator node: runs the ledger on the Malachite BFT engine",
    long_about = "Medledger validator node.\n\n\
        Each node keeps its keys, config, genesis and data in one home directory.\n\
        Quick start for a 4-validator network on this machine:\n\
        \n    medledger-node localnet --dir ./localnet --validators 4\n    \
        medledger-node start --home ./localnet/node0   (and node1..node3, in other terminals)\n\
        \nor simply `cargo xtask localnet --validators 4`, which does both and stops them on Ctrl-C."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create a home directory: a fresh validator key and a default config (kept if present).
    Init {
        /// The node's home directory.
        #[arg(long)]
        home: PathBuf,
        /// Name shown in logs and metrics.
        #[arg(long, default_value = "node")]
        moniker: String,
        /// Consensus p2p port (TCP, loopback).
        #[arg(long, default_value_t = 26600)]
        p2p_port: u16,
        /// HTTP API port (tx submission, queries, /metrics).
        #[arg(long, default_value_t = 26700)]
        rpc_port: u16,
    },
    /// Create homes, keys, configs and one genesis for an N-validator network on loopback.
    Localnet {
        /// Directory for the node homes (node0, node1, ...).
        #[arg(long)]
        dir: PathBuf,
        /// How many validators the genesis holds.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Extra homes without power (followers, or validators to add by governance later).
        #[arg(long, default_value_t = 0)]
        extra: usize,
        /// First p2p port; HTTP ports start 100 higher.
        #[arg(long, default_value_t = 26600)]
        base_port: u16,
        #[arg(long, default_value = "medledger-localnet")]
        chain_id: String,
    },
    /// Run a node from its home directory until Ctrl-C or SIGTERM.
    Start {
        #[arg(long)]
        home: PathBuf,
        /// Run as a non-validator full node: sync, verify and store, never sign.
        #[arg(long)]
        follower: bool,
    },
    /// Print the node's validator public key (its address).
    ShowAddress {
        #[arg(long)]
        home: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,libp2p=warn,arc_malachitebft=warn")),
        )
        .init();
    // mimalloc (v3) asks the kernel for transparent huge pages on its arenas. A validator's
    // heap churns with every block, so its pages are mostly 2 MiB ones that count in full
    // and are zeroed in full on each fault: in a 180 s soak (4 validators, 50 commitments/s)
    // RSS was 445–465 MiB at ~11k blocks with them and 231 MiB without, and the chain made
    // 65 instead of 52–57 blocks/s. Set before the runtime's threads allocate much.
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::disable_transparent_huge_pages(true) {
        tracing::warn!(%error, "could not turn transparent huge pages off for this process");
    }
    match Cli::parse().command {
        Command::Init {
            home,
            moniker,
            p2p_port,
            rpc_port,
        } => {
            let home = Home(home);
            if !home.config().exists() {
                home.save_config(&NodeConfig::new(&moniker, p2p_port, rpc_port))?;
            }
            let key = home.init_key()?;
            println!(
                "home {} ready; validator address {}",
                home.0.display(),
                key.public_key()
            );
            println!(
                "put a genesis.json there, then: medledger-node start --home {}",
                home.0.display()
            );
        }
        Command::Localnet {
            dir,
            validators,
            extra,
            base_port,
            chain_id,
        } => {
            let layout = node::localnet::create(&dir, validators, extra, base_port, &chain_id)?;
            for (home, rpc) in layout.homes.iter().zip(&layout.rpc) {
                println!("{}  http://{rpc}", home.display());
            }
        }
        Command::Start { home, follower } => {
            let home = Home(home);
            let config = home.load_config()?;
            let genesis = home.load_genesis()?;
            let mode = if follower {
                Mode::Follower
            } else {
                Mode::Validator(Box::new(home.load_key()?))
            };
            let running = start(&home, &config, &genesis, mode).await?;
            let listener = tokio::net::TcpListener::bind(&config.rpc_listen)
                .await
                .with_context(|| format!("binding {}", config.rpc_listen))?;
            let api = node::rpc::router(
                running.handle.clone(),
                config.peer_rpcs.clone(),
                config.tx_forward_hops,
            );
            let server = tokio::spawn(async move { axum::serve(listener, api).await });
            let mut consensus = running.consensus;
            tokio::select! {
                result = &mut consensus => {
                    result.context("consensus task panicked")??;
                    anyhow::bail!("consensus loop ended");
                }
                _ = node::node::shutdown_signal() => {
                    tracing::info!("shutting down");
                    running.engine.actor.stop(Some("shutdown".into()));
                    server.abort();
                }
            }
        }
        Command::ShowAddress { home } => println!("{}", Home(home).load_key()?.public_key()),
    }
    Ok(())
}

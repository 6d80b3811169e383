//! `medledger-relay`: the bridge between browsers and the Medledger network.
// The `Cli` field docs are `--help` text for clap (with <DATA> and [optional] parts), not rustdoc.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use anyhow::Context as _;
use clap::Parser;
use relay::config::{default_dist, DevOptions, DEFAULT_DATA_DIR, DEFAULT_HTTP};
use relay::network::limits::LimitsConfig;
use relay::network::{NetworkConfig, DEFAULT_TCP_PORT, DEFAULT_WEBRTC_PORT, DEFAULT_WS_PORT};
use relay::{BlobLocation, ChainSource, Relay, RelayConfig};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    name = "medledger-relay",
    version,
    about = "Medledger relay: follows the chain, serves light clients and the dashboard, stores \
             consent-checked encrypted blobs",
    long_about = "Medledger relay: the native node browsers talk to.\n\n\
        It follows the chain as a non-validator (or, with --dev, runs a one-validator chain \
        itself), serves the dashboard and a discovery document over HTTP, and stores encrypted \
        blobs, serving a blob only to a reader whose signed request the ledger's consent rules \
        allow, and recording every read on chain.\n\n\
        Quick start, everything on this machine:\n    medledger-relay --dev\n    \
        then open http://127.0.0.1:8080\n\n\
        Following a local network:\n    medledger-node localnet --dir ./net --validators 4 --extra 1\n    \
        medledger-node start --home ./net/node0   (and node1..node3)\n    \
        medledger-relay --home ./net/node4\n\n\
        Logs go to stderr; set RUST_LOG (e.g. RUST_LOG=debug) for more."
)]
struct Cli {
    /// Run a complete one-machine network: an embedded validator on a dev genesis with demo
    /// accounts (3 patients, a clinic that is this relay's storage node, a clinician, a
    /// caregiver, a researcher), written into the data folder on first run and reused after.
    /// The demo accounts' keys are in <DATA>/dev-keys.json.
    #[arg(long, conflicts_with = "home")]
    dev: bool,

    /// Create a localnet of --validators nodes in DIR whose genesis holds the demo accounts
    /// (homes DIR/node0.., plus DIR/nodeN for this relay to follow with --home), write the demo
    /// keys into --data, and exit. Start the nodes with `medledger-node start --home DIR/nodeI`.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["dev", "home"])]
    create_localnet: Option<PathBuf>,

    /// With --create-localnet: how many validators.
    #[arg(long, value_name = "N", default_value_t = 4, requires = "create_localnet")]
    validators: usize,

    /// Follow an existing network from this node home (config.toml, genesis.json, data/),
    /// e.g. one made by `medledger-node localnet --extra 1`. Required without --dev.
    #[arg(long, value_name = "DIR", required_unless_present_any = ["dev", "create_localnet"])]
    home: Option<PathBuf>,

    /// Data folder for everything the relay keeps: the dev chain, keys, blobs (unless --blobs
    /// says otherwise) and its follower cursor.
    #[arg(long, value_name = "DIR", default_value = DEFAULT_DATA_DIR)]
    data: PathBuf,

    /// HTTP listen address: dashboard at /, discovery at /.well-known/medledger.json,
    /// Prometheus at /metrics, blobs at /blobs, the node API at /node.
    #[arg(long, value_name = "ADDR", default_value = DEFAULT_HTTP)]
    http: SocketAddr,

    /// Blob storage: a folder (default <DATA>/blobs), or an S3-compatible bucket as
    /// s3://BUCKET[/PREFIX][?endpoint=URL&allow_http=true&region=...]. S3 credentials come
    /// from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), never from the URL.
    #[arg(long, value_name = "DIR|URL")]
    blobs: Option<BlobLocation>,

    /// The dashboard build to serve at / (trunk's dist/). Default: <repo>/dist if it was
    /// built, otherwise a placeholder page.
    #[arg(long, value_name = "DIR")]
    dist: Option<PathBuf>,

    /// Key file of this relay's storage-node account when following a network (created if
    /// missing; default <DATA>/relay-key.json). The account must be an admitted organisation
    /// for blob reads to be served, since the relay records each read on chain with it.
    #[arg(long, value_name = "FILE", conflicts_with = "dev")]
    key: Option<PathBuf>,

    /// Largest blob accepted, in bytes (at most the ledger's 64 MiB commitment limit).
    #[arg(long, value_name = "BYTES", default_value_t = ledger::tx::MAX_BLOB_BYTES)]
    max_blob_bytes: u64,

    /// Interface of the libp2p listeners (TCP, WebSocket, WebRTC-direct). Browsers on other
    /// machines need a routable address here, e.g. 0.0.0.0 or the host's IP.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    p2p_host: IpAddr,

    /// libp2p TCP port (noise + yamux), for native peers (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_TCP_PORT)]
    p2p_tcp: u16,

    /// libp2p WebSocket port (/tcp/PORT/ws, noise + yamux), for browsers and native peers.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_WS_PORT)]
    p2p_ws: u16,

    /// libp2p WebRTC-direct UDP port, for browsers. The certificate (and so the /certhash in
    /// the discovery document) is kept in <DATA>/webrtc-cert.pem and reused across restarts,
    /// as is the libp2p key in <DATA>/p2p-key.
    #[arg(long, value_name = "PORT", default_value_t = DEFAULT_WEBRTC_PORT)]
    p2p_webrtc: u16,

    /// With --dev: minimum time between blocks in ms (0: as fast as consensus goes).
    #[arg(long, value_name = "MS", default_value_t = DevOptions::default().target_block_time_ms)]
    block_time_ms: u64,
}

impl Cli {
    fn into_config(self) -> RelayConfig {
        let chain = match self.home {
            Some(home) => ChainSource::Follow { home },
            None => ChainSource::Dev(DevOptions {
                target_block_time_ms: self.block_time_ms,
                ..DevOptions::default()
            }),
        };
        RelayConfig {
            chain,
            data_dir: self.data,
            http_listen: self.http,
            blobs: self.blobs,
            dist: self.dist.or_else(default_dist),
            max_blob_bytes: self.max_blob_bytes,
            relay_key: self.key,
            network: NetworkConfig {
                host: self.p2p_host,
                tcp_port: self.p2p_tcp,
                ws_port: self.p2p_ws,
                webrtc_port: self.p2p_webrtc,
                limits: LimitsConfig::default(),
            },
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(dir) = &cli.create_localnet {
        let base_port = 26_000;
        let home = relay::dev::create_demo_localnet(dir, &cli.data, cli.validators, base_port)
            .context("creating the demo localnet")?;
        println!(
            "medledger-relay: localnet in {} (relay home {})",
            dir.display(),
            home.display()
        );
        return Ok(());
    }
    // The engine logs every consensus step at info; a lone dev validator has no peers, so
    // every gossip publish "fails" and the network actor would log an error per message.
    let quiet = if cli.dev {
        "info,libp2p=warn,arc_malachitebft=warn,arc_malachitebft_network=off"
    } else {
        "info,libp2p=warn,arc_malachitebft=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(quiet)))
        .init();
    let config = cli.into_config();
    let data_dir = config.data_dir.clone();
    let mut relay = Relay::start(config).await.context("starting the relay")?;
    println!(
        "medledger-relay: chain {} at http://{} (data in {})",
        relay.chain.chain_id(),
        relay.http_addr,
        data_dir.display()
    );
    for addr in &relay.network.listen_addrs {
        println!("medledger-relay: libp2p {addr}");
    }
    tokio::select! {
        result = &mut relay.node.consensus => {
            result.context("consensus task panicked")??;
            anyhow::bail!("consensus loop ended");
        }
        _ = node::node::shutdown_signal() => tracing::info!("shutting down"),
    }
    Ok(())
}

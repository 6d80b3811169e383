//! `lying_relay`: a hostile relay for the dashboard's e2e spec (tests/e2e/lying-relay.spec.mjs,
//! issue 7). It speaks the relay's light-client protocols over WebSocket (what the dashboard
//! dials) and TCP, forwards every request to an honest relay through a native light-client
//! connection, and lies about the chain head as `e2e::lying` describes (`--lie signature` or
//! `--lie fork`). It prints one JSON line with its addresses on stdout once it listens.
//!
//! It announces no heads (no gossipsub): clients then poll `Latest`, which is where it lies.
// The `Cli` field docs are `--help` text for clap, not rustdoc.
#![allow(rustdoc::broken_intra_doc_links)]

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use e2e::lying::{flip_signature, fork, LatestAnswer, Liar, Lie};
use futures::StreamExt;
use ledger::crypto::SigningKey;
use libp2p::multiaddr::Protocol as Ma;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{noise, tcp, yamux, Multiaddr, PeerId, StreamProtocol, Swarm};
use light_client::net::RelayConnection;
use protocol::blobs::{BlobRefusal, BlobRequest, BlobResponse, RefusalKind};
use protocol::codec::{Blobs, Codec, Headers, Proofs, Protocol, Txs};
use protocol::headers::{HeadersRequest, HeadersResponse};
use protocol::proofs::ProofResponse;
use protocol::txs::SubmitTxResponse;
use protocol::{truncate_reason, ServiceError};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

#[derive(Parser)]
#[command(
    name = "lying_relay",
    about = "A relay that forwards to an honest one and lies about the chain head (e2e tests)",
    long_about = "A relay that forwards the light-client protocols to an honest relay and lies \
        about the chain head: after an honest start (--honest-latest answers to each client's \
        Latest request) it serves either the latest header with a flipped commit-signature byte \
        (--lie signature) or a conflicting header at the height the client last got, signed \
        with the dev validator's key (--lie fork: a real fork).\n\n\
        Example, against `medledger-relay --dev --data /tmp/dev`:\n    \
        lying_relay --upstream /ip4/127.0.0.1/tcp/9091/ws/p2p/12D3... --lie fork --dev-data /tmp/dev\n\n\
        Prints {\"ws\": MULTIADDR, \"tcp\": MULTIADDR} on stdout once listening."
)]
struct Cli {
    /// The honest relay: its WebSocket or TCP multiaddr with /p2p/<peer id> (the WebSocket one
    /// is in its /.well-known/medledger.json).
    #[arg(long, value_name = "MULTIADDR")]
    upstream: Multiaddr,

    /// What to lie about.
    #[arg(long, value_enum)]
    lie: LieArg,

    /// The honest dev relay's data folder (`medledger-relay --dev --data DIR`): its validator
    /// key (DIR/node/node_key.json) signs the forked header. Required with --lie fork.
    #[arg(long, value_name = "DIR")]
    dev_data: Option<PathBuf>,

    /// Honest answers to each client's Latest request before the lies start.
    #[arg(long, value_name = "N", default_value_t = 1)]
    honest_latest: u32,

    /// Interface to listen on.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    host: IpAddr,

    /// WebSocket port (0: any free port).
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    ws_port: u16,
}

#[derive(Clone, Copy, ValueEnum)]
enum LieArg {
    /// A flipped byte in the latest header's commit signature.
    Signature,
    /// A validly signed conflicting header at a height the client already trusts.
    Fork,
}

/// A connection with no request in flight stays open this long (clients poll every few
/// seconds; without gossip nothing else keeps it busy).
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
/// Concurrent requests per connection (the real relay allows more; the dashboard paces itself).
const MAX_STREAMS: usize = 64;

#[derive(NetworkBehaviour)]
struct Behaviour {
    headers: request_response::Behaviour<Codec<Headers>>,
    proofs: request_response::Behaviour<Codec<Proofs>>,
    txs: request_response::Behaviour<Codec<Txs>>,
    blobs: request_response::Behaviour<Codec<Blobs>>,
}

fn inbound<P: Protocol>() -> request_response::Behaviour<Codec<P>> {
    request_response::Behaviour::new(
        [(StreamProtocol::new(P::NAME), ProtocolSupport::Inbound)],
        request_response::Config::default()
            .with_request_timeout(P::TIME_LIMIT)
            .with_max_concurrent_streams(MAX_STREAMS),
    )
}

/// An answer computed on a task, to be sent by the swarm loop.
enum Answer {
    Headers(ResponseChannel<HeadersResponse>, HeadersResponse),
    Proofs(ResponseChannel<ProofResponse>, ProofResponse),
    Txs(ResponseChannel<SubmitTxResponse>, SubmitTxResponse),
    Blobs(ResponseChannel<BlobResponse>, BlobResponse),
}

/// What the request tasks share.
struct Forwarder {
    upstream: RelayConnection,
    liar: Liar<PeerId>,
    validator: Option<SigningKey>,
}

impl Forwarder {
    fn unavailable(error: impl std::fmt::Display) -> ServiceError {
        ServiceError::unavailable(format!("upstream: {error}"))
    }

    async fn headers(&self, peer: PeerId, request: HeadersRequest) -> HeadersResponse {
        if request != HeadersRequest::Latest {
            return self.forward_headers(request).await;
        }
        match self.liar.latest(&peer) {
            LatestAnswer::Honest => {
                let answer = self.forward_headers(request).await;
                if let HeadersResponse::Header(signed) = &answer {
                    self.liar.served_honest(&peer, signed.header.height);
                    debug!(%peer, height = signed.header.height, "honest latest");
                }
                answer
            }
            LatestAnswer::TamperedSignature => {
                let mut answer = self.forward_headers(request).await;
                if let HeadersResponse::Header(signed) = &mut answer {
                    flip_signature(signed);
                    info!(%peer, height = signed.header.height, "served a tampered commit signature");
                }
                answer
            }
            LatestAnswer::ForkAt(height) => {
                let Some(validator) = &self.validator else {
                    return HeadersResponse::Failed(ServiceError::unavailable("no validator key"));
                };
                let mut answer = self.forward_headers(HeadersRequest::At { height }).await;
                if let HeadersResponse::Header(signed) = &mut answer {
                    **signed = fork(signed, validator);
                    info!(%peer, height, id = %signed.header.id(), "served a forked header");
                }
                answer
            }
        }
    }

    async fn forward_headers(&self, request: HeadersRequest) -> HeadersResponse {
        self.upstream
            .headers(request)
            .await
            .unwrap_or_else(|e| HeadersResponse::Failed(Self::unavailable(e)))
    }
}

/// Answers `request` on a task (forwarding waits on the network) and hands the answer back.
fn spawn_answer<F>(answers: &mpsc::Sender<Answer>, answer: F)
where
    F: std::future::Future<Output = Answer> + Send + 'static,
{
    let answers = answers.clone();
    tokio::spawn(async move {
        let _ = answers.send(answer.await).await;
    });
}

fn on_request(
    forwarder: &Arc<Forwarder>,
    answers: &mpsc::Sender<Answer>,
    peer: PeerId,
    event: BehaviourEvent,
) {
    use request_response::{Event, Message};
    match event {
        BehaviourEvent::Headers(Event::Message {
            message: Message::Request { request, channel, .. },
            ..
        }) => {
            let forwarder = forwarder.clone();
            spawn_answer(answers, async move {
                let response = match request {
                    Ok(request) => forwarder.headers(peer, request).await,
                    Err(malformed) => Headers::malformed(&malformed),
                };
                Answer::Headers(channel, response)
            });
        }
        BehaviourEvent::Proofs(Event::Message {
            message: Message::Request { request, channel, .. },
            ..
        }) => {
            let forwarder = forwarder.clone();
            spawn_answer(answers, async move {
                let response = match request {
                    Ok(request) => forwarder
                        .upstream
                        .proof(request)
                        .await
                        .unwrap_or_else(|e| ProofResponse::Failed(Forwarder::unavailable(e))),
                    Err(malformed) => Proofs::malformed(&malformed),
                };
                Answer::Proofs(channel, response)
            });
        }
        BehaviourEvent::Txs(Event::Message {
            message: Message::Request { request, channel, .. },
            ..
        }) => {
            let forwarder = forwarder.clone();
            spawn_answer(answers, async move {
                let response = match request {
                    Ok(request) => forwarder.upstream.submit_tx(request).await.unwrap_or_else(|e| {
                        SubmitTxResponse::Rejected {
                            reason: truncate_reason(format!("upstream: {e}")),
                        }
                    }),
                    Err(malformed) => Txs::malformed(&malformed),
                };
                Answer::Txs(channel, response)
            });
        }
        BehaviourEvent::Blobs(Event::Message {
            message: Message::Request { request, channel, .. },
            ..
        }) => {
            let forwarder = forwarder.clone();
            spawn_answer(answers, async move {
                let response = match request {
                    Ok(request) => forward_blob(&forwarder.upstream, request).await,
                    Err(malformed) => Blobs::malformed(&malformed),
                };
                Answer::Blobs(channel, response)
            });
        }
        other => debug!(?other, "request-response event"),
    }
}

async fn forward_blob(upstream: &RelayConnection, request: BlobRequest) -> BlobResponse {
    upstream.blob(request).await.unwrap_or_else(|e| {
        BlobResponse::Refused(BlobRefusal {
            kind: RefusalKind::Unavailable,
            reason: truncate_reason(format!("upstream: {e}")),
        })
    })
}

/// The peer a request-response event came from.
fn peer_of(event: &BehaviourEvent) -> Option<PeerId> {
    use request_response::Event;
    match event {
        BehaviourEvent::Headers(Event::Message { peer, .. })
        | BehaviourEvent::Proofs(Event::Message { peer, .. })
        | BehaviourEvent::Txs(Event::Message { peer, .. })
        | BehaviourEvent::Blobs(Event::Message { peer, .. }) => Some(*peer),
        _ => None,
    }
}

fn send(swarm: &mut Swarm<Behaviour>, answer: Answer) {
    let sent = match answer {
        Answer::Headers(channel, r) => swarm.behaviour_mut().headers.send_response(channel, r).is_ok(),
        Answer::Proofs(channel, r) => swarm.behaviour_mut().proofs.send_response(channel, r).is_ok(),
        Answer::Txs(channel, r) => swarm.behaviour_mut().txs.send_response(channel, r).is_ok(),
        Answer::Blobs(channel, r) => swarm.behaviour_mut().blobs.send_response(channel, r).is_ok(),
    };
    if !sent {
        debug!("the client left before its answer");
    }
}

async fn listen(swarm: &mut Swarm<Behaviour>, addr: Multiaddr) -> anyhow::Result<Multiaddr> {
    swarm
        .listen_on(addr.clone())
        .with_context(|| format!("listening on {addr}"))?;
    let peer = *swarm.local_peer_id();
    loop {
        match swarm.select_next_some().await {
            SwarmEvent::NewListenAddr { address, .. } => return Ok(address.with(Ma::P2p(peer))),
            SwarmEvent::ListenerError { error, .. } => anyhow::bail!("listening on {addr}: {error}"),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,libp2p=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let lie = match cli.lie {
        LieArg::Signature => Lie::Signature,
        LieArg::Fork => Lie::Fork,
    };
    let validator = match (&cli.dev_data, lie) {
        (Some(dir), _) => Some(
            node::config::Home(dir.join("node"))
                .load_key()
                .context("the dev validator's key (--dev-data)")?,
        ),
        (None, Lie::Fork) => anyhow::bail!("--lie fork needs --dev-data (the validator key signs the fork)"),
        (None, Lie::Signature) => None,
    };
    let upstream = RelayConnection::connect(vec![cli.upstream.clone()])
        .await
        .with_context(|| format!("connecting to the honest relay {}", cli.upstream))?;
    info!(upstream = %cli.upstream, "connected to the honest relay");

    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )?
        .with_dns()?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await?
        .with_behaviour(|_| Behaviour {
            headers: inbound::<Headers>(),
            proofs: inbound::<Proofs>(),
            txs: inbound::<Txs>(),
            blobs: inbound::<Blobs>(),
        })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    let host = Multiaddr::from(cli.host);
    let ws = listen(
        &mut swarm,
        host.clone().with(Ma::Tcp(cli.ws_port)).with(Ma::Ws("/".into())),
    )
    .await?;
    let tcp = listen(&mut swarm, host.with(Ma::Tcp(0))).await?;
    println!(
        "{}",
        serde_json::json!({ "ws": ws.to_string(), "tcp": tcp.to_string() })
    );
    info!(%ws, %tcp, lie = ?lie, "lying relay listening");

    let forwarder = Arc::new(Forwarder {
        upstream,
        liar: Liar::new(lie, cli.honest_latest),
        validator,
    });
    let (answers_tx, mut answers) = mpsc::channel(256);
    loop {
        tokio::select! {
            event = swarm.select_next_some() => match event {
                SwarmEvent::Behaviour(event) => match peer_of(&event) {
                    Some(peer) => on_request(&forwarder, &answers_tx, peer, event),
                    None => debug!("request-response event without a request"),
                },
                SwarmEvent::ConnectionEstablished { peer_id, endpoint, .. } => {
                    info!(peer = %peer_id, addr = %endpoint.get_remote_address(), "client connected")
                }
                SwarmEvent::IncomingConnectionError { error, .. } => warn!(%error, "incoming connection failed"),
                _ => {}
            },
            Some(answer) = answers.recv() => send(&mut swarm, answer),
            _ = tokio::signal::ctrl_c() => {
                info!("stopping");
                return Ok(());
            }
        }
    }
}

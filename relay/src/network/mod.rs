//! The relay's libp2p network (issue 5 items 3, 5, 7): WebRTC-direct (UDP) and WebSocket
//! listeners for browsers, TCP (noise + yamux) for native peers; one request-response
//! protocol per [`crate::protocol`] module, answered by [`LightClientService`] and
//! [`BlobService`]; the gossipsub topic [`heads::TOPIC`] with every new finalized header and
//! commit; per-peer limits and bans ([`limits`]).
//!
//! Shaped like rust-libp2p's `examples/file-sharing` (STYLE, relay): [`Listening::bind`] builds
//! the swarm and binds the listeners (so a busy port fails before the node starts),
//! [`Listening::serve`] returns a cheap [`NetworkHandle`] and the [`EventLoop`], whose `run` is
//! a `select!` over swarm events, finished answers, new heads, commands and a ban timer.
//! Requests are answered on spawned tasks (store reads must not stall the loop); a bad peer
//! costs a log line and a strike, never the loop (lumina `p2p.rs` `Worker::run`).
//!
//! Framing: [`codec`]. Identity and certificate persistence: [`identity`]. Limits: [`limits`].
//! The loop and the protocol-to-service routes: `event_loop.rs`.

pub use ::protocol::codec;
mod event_loop;
pub mod identity;
pub mod limits;

pub use event_loop::EventLoop;
use event_loop::Services;

use crate::blobs::BlobService;
use crate::metrics::RelayMetrics;
use crate::protocol::{heads, Message};
use crate::service::LightClientService;
use codec::{is_protocol_violation, Blobs, Codec, Headers, Inbound, Proofs, Protocol, Txs};
use futures::future::BoxFuture;
use futures::StreamExt;
use identity::IdentityError;
use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::ListenerId;
use libp2p::core::Transport as _;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol as Ma;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    allow_block_list, connection_limits, gossipsub, identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm,
    SwarmBuilder,
};
use limits::{LimitExceeded, LimitsConfig, PeerLimits, Strike};
use node::state::FinalizedBlock;
use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, trace, warn};

/// Default ports of the `medledger-relay` binary (tests use 0: any free port).
pub const DEFAULT_TCP_PORT: u16 = 9090;
pub const DEFAULT_WS_PORT: u16 = 9091;
pub const DEFAULT_WEBRTC_PORT: u16 = 9092;
/// The identify protocol version the relay announces.
pub const IDENTIFY_PROTOCOL: &str = "/medledger/relay/1";
/// How long the listeners may take to report their addresses at start.
pub const LISTEN_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection with no open stream (and no gossip subscription) is closed after this.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the relay listens and how it limits peers.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    /// Interface of all three listeners.
    pub host: IpAddr,
    /// TCP (noise + yamux), for native peers.
    pub tcp_port: u16,
    /// WebSocket (`/tcp/P/ws`, noise + yamux), for browsers and native peers.
    pub ws_port: u16,
    /// WebRTC-direct (UDP), for browsers.
    pub webrtc_port: u16,
    pub limits: LimitsConfig,
}

impl Default for NetworkConfig {
    /// Loopback, any free ports (what tests use).
    fn default() -> Self {
        NetworkConfig {
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            tcp_port: 0,
            ws_port: 0,
            webrtc_port: 0,
            limits: LimitsConfig::default(),
        }
    }
}

impl NetworkConfig {
    fn listen_addrs(&self) -> [Multiaddr; 3] {
        let host = Multiaddr::from(self.host);
        [
            host.clone().with(Ma::Tcp(self.tcp_port)),
            host.clone().with(Ma::Tcp(self.ws_port)).with(Ma::Ws("/".into())),
            host.with(Ma::Udp(self.webrtc_port)).with(Ma::WebRTCDirect),
        ]
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Identity(#[from] IdentityError),
    #[error("building the libp2p transports: {0}")]
    Transport(String),
    #[error("listening on {addr}: {reason}")]
    Listen { addr: Multiaddr, reason: String },
    #[error("the listeners did not report their addresses within {0:?}")]
    ListenTimeout(Duration),
}

fn transport_error(error: impl std::fmt::Display) -> NetworkError {
    NetworkError::Transport(error.to_string())
}

/// A swarm over TCP, WebRTC-direct and WebSocket (TCP and WebSocket secured with noise and
/// multiplexed with yamux; WebRTC brings its own), in the builder's required order. Native
/// clients (tests, benchmarks) build theirs with this too.
pub async fn build_swarm<B: NetworkBehaviour>(
    keypair: Keypair,
    certificate: libp2p_webrtc::tokio::Certificate,
    behaviour: B,
) -> Result<Swarm<B>, NetworkError> {
    // WebRTC's DTLS runs on rustls, which is built here with both the ring and the aws-lc-rs
    // providers (through different dependencies) and so cannot pick one by itself: it would
    // panic inside the first WebRTC handshake. Choose ring for the process (a no-op if some
    // provider is already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let swarm = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(transport_error)?
        .with_other_transport(|key| {
            libp2p_webrtc::tokio::Transport::new(key.clone(), certificate)
                .map(|(peer, connection), _| (peer, StreamMuxerBox::new(connection)))
        })
        .map_err(|never| -> NetworkError { match never {} })?
        .with_dns()
        .map_err(transport_error)?
        .with_websocket(noise::Config::new, yamux::Config::default)
        .await
        .map_err(transport_error)?
        .with_behaviour(|_| behaviour)
        .map_err(|never| -> NetworkError { match never {} })?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}

/// A request-response behaviour for protocol `P`: the relay supports it inbound, clients
/// outbound. At most `max_streams` concurrent streams per connection.
pub fn request_response_behaviour<P: Protocol>(
    support: ProtocolSupport,
    max_streams: usize,
) -> request_response::Behaviour<Codec<P>> {
    request_response::Behaviour::new(
        [(P::stream_protocol(), support)],
        request_response::Config::default()
            .with_request_timeout(P::TIME_LIMIT)
            .with_max_concurrent_streams(max_streams),
    )
}

/// Gossipsub for the heads topic: signed messages, strict validation, sized for one
/// [`heads::HeadAnnouncement`]. What clients use.
pub fn heads_gossipsub(keypair: &Keypair) -> Result<gossipsub::Behaviour, NetworkError> {
    gossipsub_with(keypair, false)
}

/// With `validate_messages`, received messages are forwarded only once the application
/// accepts them (the relay accepts none: only it announces heads).
fn gossipsub_with(keypair: &Keypair, validate_messages: bool) -> Result<gossipsub::Behaviour, NetworkError> {
    let mut builder = gossipsub::ConfigBuilder::default();
    builder
        .max_transmit_size(heads::MESSAGE_SIZE_LIMIT + 1024)
        .validation_mode(gossipsub::ValidationMode::Strict);
    if validate_messages {
        builder.validate_messages();
    }
    let config = builder.build().map_err(transport_error)?;
    gossipsub::Behaviour::new(gossipsub::MessageAuthenticity::Signed(keypair.clone()), config)
        .map_err(transport_error)
}

/// The gossipsub topic of new finalized heads.
pub fn heads_topic() -> gossipsub::IdentTopic {
    gossipsub::IdentTopic::new(heads::TOPIC)
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    connection_limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    gossipsub: gossipsub::Behaviour,
    headers: request_response::Behaviour<Codec<Headers>>,
    proofs: request_response::Behaviour<Codec<Proofs>>,
    txs: request_response::Behaviour<Codec<Txs>>,
    blobs: request_response::Behaviour<Codec<Blobs>>,
}

impl Behaviour {
    fn new(keypair: &Keypair, limits: &LimitsConfig) -> Result<Self, NetworkError> {
        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(limits.max_connections))
            .with_max_established_per_peer(Some(limits.max_connections_per_peer))
            .with_max_pending_incoming(Some(limits.max_pending_connections));
        // The handler silently drops streams past its cap; keep it above the per-peer
        // in-flight limit so the loop sees a greedy peer's excess and strikes it.
        let streams = limits.max_in_flight_per_peer.saturating_mul(4).max(1);
        // The relay joins its own topic so that subscribed clients are in its mesh: gossipsub
        // keeps only mesh connections alive, and a browser that just follows heads must not
        // be closed as idle. What clients publish there is rejected, never forwarded.
        let mut gossipsub = gossipsub_with(keypair, true)?;
        gossipsub.subscribe(&heads_topic()).map_err(transport_error)?;
        Ok(Behaviour {
            blocked: Default::default(),
            connection_limits: connection_limits::Behaviour::new(connection_limits),
            identify: identify::Behaviour::new(identify::Config::new(
                IDENTIFY_PROTOCOL.into(),
                keypair.public(),
            )),
            gossipsub,
            headers: request_response_behaviour(ProtocolSupport::Inbound, streams),
            proofs: request_response_behaviour(ProtocolSupport::Inbound, streams),
            txs: request_response_behaviour(ProtocolSupport::Inbound, streams),
            blobs: request_response_behaviour(ProtocolSupport::Inbound, streams),
        })
    }
}

/// What the network reports about its peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetworkStatus {
    pub connected_peers: Vec<PeerId>,
    pub banned_peers: Vec<PeerId>,
}

#[derive(Debug)]
enum Command {
    Status {
        respond_to: oneshot::Sender<NetworkStatus>,
    },
}

/// The relay's network as seen from outside: identity, addresses, and commands to the loop.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    pub peer_id: PeerId,
    /// Every bound listen address, with `/p2p/<peer id>` (and `/certhash` for WebRTC).
    pub listen_addrs: Vec<Multiaddr>,
    commands: mpsc::Sender<Command>,
}

impl NetworkHandle {
    fn find(&self, wanted: impl Fn(Ma<'_>) -> bool) -> Option<Multiaddr> {
        self.listen_addrs.iter().find(|a| a.iter().any(&wanted)).cloned()
    }

    /// The TCP (noise + yamux) address.
    pub fn tcp_addr(&self) -> Option<Multiaddr> {
        self.listen_addrs
            .iter()
            .find(|a| !a.iter().any(|p| matches!(p, Ma::Ws(_) | Ma::Udp(_))))
            .cloned()
    }

    /// The WebSocket address.
    pub fn ws_addr(&self) -> Option<Multiaddr> {
        self.find(|p| matches!(p, Ma::Ws(_)))
    }

    /// The WebRTC-direct address, with its `/certhash`.
    pub fn webrtc_addr(&self) -> Option<Multiaddr> {
        self.find(|p| matches!(p, Ma::WebRTCDirect))
    }

    /// Connected and banned peers; `None` if the loop has stopped.
    pub async fn status(&self) -> Option<NetworkStatus> {
        let (respond_to, answer) = oneshot::channel();
        self.commands.send(Command::Status { respond_to }).await.ok()?;
        answer.await.ok()
    }
}

/// `address` with `/p2p/<peer>` at its end.
fn with_peer_id(address: Multiaddr, peer: PeerId) -> Multiaddr {
    match address.iter().last() {
        Some(Ma::P2p(_)) => address,
        _ => address.with(Ma::P2p(peer)),
    }
}

/// `true` for addresses browsers dial: WebRTC-direct and WebSocket.
pub fn is_browser_addr(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Ma::WebRTCDirect | Ma::Ws(_)))
}

/// A swarm with its listeners bound, not serving yet.
pub struct Listening {
    swarm: Swarm<Behaviour>,
    listen_addrs: Vec<Multiaddr>,
    limits: LimitsConfig,
}

impl std::fmt::Debug for Listening {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listening")
            .field("peer_id", self.swarm.local_peer_id())
            .field("listen_addrs", &self.listen_addrs)
            .finish()
    }
}

impl Listening {
    /// Loads (or creates) the identity and certificate in `data_dir`, builds the swarm and
    /// binds the three listeners, waiting until each reports its address.
    pub async fn bind(config: &NetworkConfig, data_dir: &Path) -> Result<Listening, NetworkError> {
        let keypair = identity::load_or_create_keypair(data_dir)?;
        let certificate = identity::load_or_create_certificate(data_dir)?;
        let behaviour = Behaviour::new(&keypair, &config.limits)?;
        let mut swarm = build_swarm(keypair, certificate, behaviour).await?;
        let peer = *swarm.local_peer_id();
        let mut pending: HashMap<ListenerId, Multiaddr> = HashMap::new();
        for addr in config.listen_addrs() {
            let id = swarm.listen_on(addr.clone()).map_err(|e| NetworkError::Listen {
                addr: addr.clone(),
                reason: e.to_string(),
            })?;
            pending.insert(id, addr);
        }
        let mut listen_addrs = Vec::new();
        let deadline = tokio::time::Instant::now() + LISTEN_TIMEOUT;
        while !pending.is_empty() {
            let event = tokio::time::timeout_at(deadline, swarm.select_next_some())
                .await
                .map_err(|_| NetworkError::ListenTimeout(LISTEN_TIMEOUT))?;
            match event {
                SwarmEvent::NewListenAddr { listener_id, address } => {
                    pending.remove(&listener_id);
                    listen_addrs.push(with_peer_id(address, peer));
                }
                SwarmEvent::ListenerClosed {
                    listener_id, reason, ..
                } => {
                    if let Some(addr) = pending.remove(&listener_id) {
                        let reason = reason.err().map_or("closed".into(), |e| e.to_string());
                        return Err(NetworkError::Listen { addr, reason });
                    }
                }
                SwarmEvent::ListenerError { listener_id, error } => {
                    if let Some(addr) = pending.remove(&listener_id) {
                        return Err(NetworkError::Listen {
                            addr,
                            reason: error.to_string(),
                        });
                    }
                }
                other => trace!(?other, "swarm event while binding"),
            }
        }
        info!(%peer, addrs = ?listen_addrs, "libp2p listening");
        Ok(Listening {
            swarm,
            listen_addrs,
            limits: config.limits.clone(),
        })
    }

    pub fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Starts serving: browser addresses go into `multiaddrs` (the discovery document).
    pub fn serve(
        self,
        light: LightClientService,
        blobs: BlobService,
        metrics: RelayMetrics,
        multiaddrs: Arc<RwLock<Vec<String>>>,
    ) -> (NetworkHandle, EventLoop) {
        let (commands_tx, commands) = mpsc::channel(16);
        let (answers_tx, answers) = mpsc::channel(1024);
        let handle = NetworkHandle {
            peer_id: *self.swarm.local_peer_id(),
            listen_addrs: self.listen_addrs.clone(),
            commands: commands_tx,
        };
        let heads = light.subscribe_heads();
        let event_loop = EventLoop {
            swarm: self.swarm,
            services: Services { light, blobs },
            limits: PeerLimits::new(self.limits),
            metrics,
            heads,
            heads_open: true,
            topic: heads_topic(),
            answers_tx,
            answers,
            commands,
            listen_addrs: self.listen_addrs,
            multiaddrs,
            connected: HashSet::new(),
        };
        event_loop.publish_multiaddrs();
        (handle, event_loop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_addresses_carry_the_peer_id() {
        let peer = PeerId::random();
        let ws: Multiaddr = "/ip4/127.0.0.1/tcp/9091/ws".parse().unwrap();
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/9090".parse().unwrap();
        let ws = with_peer_id(ws, peer);
        assert_eq!(with_peer_id(ws.clone(), peer), ws);
        assert!(ws.to_string().ends_with(&format!("/ws/p2p/{peer}")));
        assert!(is_browser_addr(&ws));
        assert!(!is_browser_addr(&tcp));
    }

    #[test]
    fn default_listeners_are_tcp_ws_and_webrtc_direct_on_loopback() {
        let addrs = NetworkConfig::default().listen_addrs().map(|a| a.to_string());
        assert_eq!(
            addrs,
            [
                "/ip4/127.0.0.1/tcp/0",
                "/ip4/127.0.0.1/tcp/0/ws",
                "/ip4/127.0.0.1/udp/0/webrtc-direct"
            ]
        );
    }
}

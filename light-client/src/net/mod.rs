//! The light client's network transport (DESIGN §5, issue 6 item 7): one libp2p connection to
//! one relay, speaking the relay's request-response protocols ([`protocol::codec`]) and
//! following its heads topic ([`protocol::heads::TOPIC`]).
//!
//! [`RelayConnection`] is a cheap handle; a background task owns the libp2p swarm and takes
//! commands over a channel (the shape of the relay's own network loop and of rust-libp2p's
//! `file-sharing` example). The task redials the relay with exponential backoff when the
//! connection drops (a relay restart): requests made while it is down fail at once with
//! [`NetError::Disconnected`] instead of hanging, and once it is back requests work again and
//! heads resume (gossipsub re-announces the subscription on the new connection).
//!
//! Transports: natively TCP and WebSocket (both noise + yamux) on tokio; in the browser
//! (`wasm32`) WebRTC-direct (`libp2p-webrtc-websys`) and WebSocket (`libp2p-websocket-websys`
//! with noise and yamux). [`RelayConnection::connect`] tries the addresses in the caller's order,
//! so a browser puts the WebRTC-direct address (from the relay's discovery document) first
//! and the WebSocket one after it as the fallback.
//!
//! Nothing here is verified: headers, proofs and heads are the relay's raw answers, which
//! the verification core checks. The codec bounds every frame by its protocol's limit, so an
//! oversized answer is refused before it is read ([`NetError::TooLarge`]).

mod behaviour;
mod event_loop;
mod runtime;
mod transport;

use behaviour::Route;
use event_loop::{Command, EventLoop, Outgoing, Status};
use futures::channel::{mpsc, oneshot};
use futures::Stream;
use protocol::blobs::{BlobRequest, BlobResponse};
use protocol::codec::{Blobs, Headers, Proofs, Protocol, Txs};
use protocol::headers::{HeadersRequest, HeadersResponse};
use protocol::proofs::{ProofRequest, ProofResponse};
use protocol::txs::{SubmitTx, SubmitTxResponse};
use protocol::SignedHeader;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use libp2p::{Multiaddr, PeerId};

/// How a [`RelayConnection`] dials, waits and retries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// How long one dial may take before the next address is tried (a WebRTC handshake to
    /// an unreachable host otherwise waits for ICE to give up).
    pub dial_timeout: Duration,
    /// Wait before redialing after every address failed; doubled per failed round.
    pub min_backoff: Duration,
    /// Longest wait between redial rounds.
    pub max_backoff: Duration,
    /// Time limit of every request; `None` uses each protocol's own limit
    /// (`protocol::*::RESPONSE_TIME_LIMIT`), which the relay also works within.
    pub request_timeout: Option<Duration>,
    /// Heads queued per [`RelayConnection::heads`] stream; a consumer that falls further
    /// behind misses heads rather than stalling the connection (it can ask for `Latest`).
    pub heads_buffer: usize,
    /// Replace the connection with a fresh one after this many requests (requests made
    /// meanwhile wait for the new one). In the browser, libp2p-webrtc-websys 0.5 never
    /// closes a finished stream's RTCDataChannel (rust-libp2p#4333), so the page keeps every
    /// request's channel, its listeners and late messages (the relay's side likewise keeps
    /// each stream) until the peer connection closes. Caveat, measured: with renewals the
    /// dashboard's JS heap still grew ~0.24 MiB per minute, so the page keeps the channels
    /// past the close too; the relay side is what renewal frees for sure. `None` keeps one
    /// connection for ever (the default natively, where TCP/WebSocket streams are freed).
    pub renew_after_requests: Option<u64>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            dial_timeout: Duration::from_secs(15),
            min_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            request_timeout: None,
            heads_buffer: 64,
            renew_after_requests: if cfg!(target_arch = "wasm32") {
                Some(500)
            } else {
                None
            },
        }
    }
}

/// One failed dial: the address and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DialAttempt {
    pub addr: Multiaddr,
    pub error: String,
}

impl fmt::Display for DialAttempt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.addr, self.error)
    }
}

/// Why a connection or a request failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NetError {
    #[error("no relay address to dial")]
    NoAddresses,
    /// The libp2p transports could not be built.
    #[error("building the libp2p transports: {0}")]
    Transport(String),
    /// Every address failed on the first connect (later outages redial instead).
    #[error("could not connect to the relay: {}", join(.attempts))]
    Dial { attempts: Vec<DialAttempt> },
    /// The relay is not connected right now (it is being redialed); try again later.
    #[error("not connected to the relay (reconnecting)")]
    Disconnected,
    /// No answer within the time limit; the relay may still have acted on the request.
    #[error("the relay did not answer {protocol} within {timeout:?}")]
    Timeout {
        protocol: &'static str,
        timeout: Duration,
    },
    /// The answer's length prefix exceeds the protocol's limit: refused unread.
    #[error("{protocol} answer of {len} bytes exceeds the limit of {limit}")]
    TooLarge {
        protocol: &'static str,
        len: u64,
        limit: usize,
    },
    /// The answer did not decode as the protocol's response.
    #[error("invalid {protocol} answer: {reason}")]
    Protocol { protocol: &'static str, reason: String },
    /// The relay does not speak this protocol.
    #[error("the relay does not support {protocol}")]
    Unsupported { protocol: &'static str },
    /// The stream broke (reset, closed early) before a whole answer arrived.
    #[error("{protocol} stream failed: {reason}")]
    Stream { protocol: &'static str, reason: String },
    /// The connection's task has stopped; make a new connection.
    #[error("the relay connection is closed")]
    Closed,
}

impl NetError {
    /// `true` for failures that may pass if the same request is sent again later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            NetError::Disconnected | NetError::Timeout { .. } | NetError::Stream { .. }
        )
    }
}

fn join(attempts: &[DialAttempt]) -> String {
    let parts: Vec<String> = attempts.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// A connection to one relay: a cheap, cloneable handle to the task that owns the swarm.
/// The task stops (and the connection closes) when the last handle is dropped.
#[derive(Clone)]
pub struct RelayConnection {
    relay: PeerId,
    local: PeerId,
    commands: mpsc::UnboundedSender<Command>,
    status: Arc<Mutex<Status>>,
    config: Arc<NetConfig>,
}

impl fmt::Debug for RelayConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayConnection")
            .field("relay", &self.relay)
            .field("remote_addr", &self.remote_addr())
            .finish()
    }
}

impl RelayConnection {
    /// Connects to the relay at the first of `addrs` that answers, trying them in order,
    /// with the default [`NetConfig`]. Natively this must run inside a tokio runtime.
    pub async fn connect(addrs: Vec<Multiaddr>) -> Result<RelayConnection, NetError> {
        Self::connect_with(addrs, NetConfig::default()).await
    }

    /// [`RelayConnection::connect`] with explicit timeouts and backoff.
    pub async fn connect_with(addrs: Vec<Multiaddr>, config: NetConfig) -> Result<RelayConnection, NetError> {
        if addrs.is_empty() {
            return Err(NetError::NoAddresses);
        }
        let swarm = transport::build_swarm(&config).await?;
        let local = *swarm.local_peer_id();
        let (commands_tx, commands) = mpsc::unbounded();
        let status = Arc::new(Mutex::new(Status::default()));
        let (connected_tx, connected) = oneshot::channel();
        let event_loop = EventLoop::new(
            swarm,
            addrs,
            config.clone(),
            commands,
            status.clone(),
            connected_tx,
        );
        runtime::spawn(event_loop.run());
        let relay = connected.await.map_err(|_| NetError::Closed)??;
        Ok(RelayConnection {
            relay,
            local,
            commands: commands_tx,
            status,
            config: Arc::new(config),
        })
    }

    /// The relay's peer id (fixed: redials refuse any other peer).
    pub fn peer_id(&self) -> PeerId {
        self.relay
    }

    /// This client's own (ephemeral) peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// The address of the current connection; `None` while reconnecting.
    pub fn remote_addr(&self) -> Option<Multiaddr> {
        self.status.lock().ok()?.remote_addr.clone()
    }

    pub fn is_connected(&self) -> bool {
        self.status.lock().is_ok_and(|s| s.remote_addr.is_some())
    }

    /// How many times the connection was re-established after a drop.
    pub fn reconnects(&self) -> u64 {
        self.status.lock().map_or(0, |s| s.reconnects)
    }

    /// How many times the connection was replaced on purpose
    /// ([`NetConfig::renew_after_requests`]).
    pub fn renewals(&self) -> u64 {
        self.status.lock().map_or(0, |s| s.renewals)
    }

    /// Resolves once the relay is connected (at once if it is); `Err(Closed)` if the task
    /// stopped. No time limit: wrap it in one.
    pub async fn connected(&self) -> Result<(), NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .unbounded_send(Command::WhenConnected(tx))
            .map_err(|_| NetError::Closed)?;
        rx.await.map_err(|_| NetError::Closed)
    }

    pub async fn headers(&self, request: HeadersRequest) -> Result<HeadersResponse, NetError> {
        self.request::<Headers>(request).await
    }

    pub async fn proof(&self, request: ProofRequest) -> Result<ProofResponse, NetError> {
        self.request::<Proofs>(request).await
    }

    pub async fn submit_tx(&self, request: SubmitTx) -> Result<SubmitTxResponse, NetError> {
        self.request::<Txs>(request).await
    }

    pub async fn blob(&self, request: BlobRequest) -> Result<BlobResponse, NetError> {
        self.request::<Blobs>(request).await
    }

    /// New heads as the relay announces them, unverified. Each call is a new subscriber;
    /// the stream ends when the connection's task stops. It survives reconnects.
    pub fn heads(&self) -> impl Stream<Item = SignedHeader> + Unpin + use<> {
        let (tx, rx) = mpsc::channel(self.config.heads_buffer);
        // If the task is gone the sender is dropped with the command and the stream ends.
        let _ = self.commands.unbounded_send(Command::SubscribeHeads(tx));
        rx
    }

    /// The time limit of protocol `P`'s requests.
    fn timeout<P: Protocol>(&self) -> Duration {
        self.config.request_timeout.unwrap_or(P::TIME_LIMIT)
    }

    async fn request<P: Route>(&self, request: P::Request) -> Result<P::Response, NetError> {
        let (respond_to, answer) = oneshot::channel();
        self.commands
            .unbounded_send(P::command(Outgoing { request, respond_to }))
            .map_err(|_| NetError::Closed)?;
        let limit = self.timeout::<P>();
        // The request-response behaviour enforces `limit` itself; this guard (a little later,
        // so the behaviour's own timeout normally wins) only catches a stalled task.
        match runtime::timeout(limit + GUARD_SLACK, answer).await {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(NetError::Closed),
            None => Err(NetError::Timeout {
                protocol: P::NAME,
                timeout: limit,
            }),
        }
    }
}

/// How much later than the request-response timeout the handle gives up by itself.
const GUARD_SLACK: Duration = Duration::from_secs(2);

//! The task that owns the swarm: it dials the relay (addresses in order, each with a time
//! limit), sends requests and routes their answers back, fans heads out to subscribers, and
//! redials with exponential backoff when the connection drops.
//!
//! States of the link: `Dialing` one address, `Connected`, or `Backoff` between dial rounds.
//! The first round's outcome goes to `connect`; if every address fails then, the task ends
//! (the caller gets [`NetError::Dial`]). After a first success the task never gives up: it
//! redials until the last handle is dropped.

use super::behaviour::{Behaviour, BehaviourEvent, InFlight, Route};
use super::runtime::{self, Sleep};
use super::{DialAttempt, NetConfig, NetError};
use futures::channel::{mpsc, oneshot};
use futures::future::Fuse;
use futures::{FutureExt, StreamExt};
use libp2p::multiaddr::Protocol as Ma;
use libp2p::request_response::{self, OutboundFailure};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{gossipsub, Multiaddr, PeerId, Swarm};
use protocol::codec::{is_protocol_violation, Blobs, FrameTooLarge, Headers, Inbound, Proofs, Protocol, Txs};
use protocol::{Message, SignedHeader};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, info, trace, warn};

pub(super) type Responder<P> = oneshot::Sender<Result<<P as Protocol>::Response, NetError>>;

/// A request for protocol `P` and where its answer goes.
pub(super) struct Outgoing<P: Protocol> {
    pub(super) request: P::Request,
    pub(super) respond_to: Responder<P>,
}

pub(super) enum Command {
    Headers(Outgoing<Headers>),
    Proofs(Outgoing<Proofs>),
    Txs(Outgoing<Txs>),
    Blobs(Outgoing<Blobs>),
    SubscribeHeads(mpsc::Sender<SignedHeader>),
    WhenConnected(oneshot::Sender<()>),
}

/// What the handles read without asking the task.
#[derive(Debug, Default)]
pub(super) struct Status {
    /// The current connection's address; `None` while not connected.
    pub(super) remote_addr: Option<Multiaddr>,
    pub(super) reconnects: u64,
    /// Connections replaced on purpose ([`NetConfig::renew_after_requests`]).
    pub(super) renewals: u64,
}

enum Link {
    Dialing { index: usize, dial: ConnectionId },
    Connected,
    Backoff,
}

/// What woke the loop.
enum Wake {
    Command(Option<Command>),
    Swarm(SwarmEvent<BehaviourEvent>),
    Timer,
}

pub(super) struct EventLoop {
    swarm: Swarm<Behaviour>,
    addrs: Vec<Multiaddr>,
    config: NetConfig,
    commands: mpsc::UnboundedReceiver<Command>,
    status: Arc<Mutex<Status>>,
    /// Learned on the first connection (or from the addresses' `/p2p`); redials insist on it.
    relay: Option<PeerId>,
    link: Link,
    /// Dial timeout while `Dialing`, backoff while in `Backoff`.
    timer: Fuse<Sleep>,
    backoff: Duration,
    /// The current connection has carried an answer or a head. Only then is the backoff
    /// reset: a relay that accepts and at once drops us (say it has banned us) must not be
    /// redialed in a tight loop.
    proven: bool,
    /// This round's failures, reported if the first round fails.
    failures: Vec<DialAttempt>,
    /// `connect` waiting for the first round.
    first: Option<oneshot::Sender<Result<PeerId, NetError>>>,
    ever_connected: bool,
    when_connected: Vec<oneshot::Sender<()>>,
    in_flight: InFlight,
    heads: Vec<mpsc::Sender<SignedHeader>>,
    /// The connection in use while `Connected`.
    connection: Option<ConnectionId>,
    /// Requests sent on it, for [`NetConfig::renew_after_requests`].
    requests_on_link: u64,
    /// Replacing the connection: it closes once its requests are answered, and requests
    /// wait in `held` until the next one is up.
    renewing: bool,
    held: Vec<Command>,
}

impl EventLoop {
    pub(super) fn new(
        swarm: Swarm<Behaviour>,
        addrs: Vec<Multiaddr>,
        config: NetConfig,
        commands: mpsc::UnboundedReceiver<Command>,
        status: Arc<Mutex<Status>>,
        first: oneshot::Sender<Result<PeerId, NetError>>,
    ) -> Self {
        let backoff = config.min_backoff;
        EventLoop {
            swarm,
            addrs,
            config,
            commands,
            status,
            relay: None,
            link: Link::Backoff,
            timer: Fuse::terminated(),
            backoff,
            proven: false,
            failures: Vec::new(),
            first: Some(first),
            ever_connected: false,
            when_connected: Vec::new(),
            in_flight: InFlight::default(),
            heads: Vec::new(),
            connection: None,
            requests_on_link: 0,
            renewing: false,
            held: Vec::new(),
        }
    }

    pub(super) async fn run(mut self) {
        self.dial_from(0);
        // Ends when every handle is dropped, or when the first round fails.
        while !self.stopped() {
            let wake = futures::select_biased! {
                command = self.commands.next() => Wake::Command(command),
                event = self.swarm.select_next_some() => Wake::Swarm(event),
                () = &mut self.timer => Wake::Timer,
            };
            match wake {
                Wake::Command(Some(command)) => self.on_command(command),
                Wake::Command(None) => break,
                Wake::Swarm(event) => self.on_event(event),
                Wake::Timer => self.on_timer(),
            }
        }
        debug!("relay connection task stopped");
    }

    /// The first round failed and `connect` was told: nobody holds a handle.
    fn stopped(&self) -> bool {
        !self.ever_connected && self.first.is_none()
    }

    fn connected(&self) -> bool {
        matches!(self.link, Link::Connected)
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Headers(outgoing) => self.send(outgoing),
            Command::Proofs(outgoing) => self.send(outgoing),
            Command::Txs(outgoing) => self.send(outgoing),
            Command::Blobs(outgoing) => self.send(outgoing),
            Command::SubscribeHeads(sender) => self.heads.push(sender),
            Command::WhenConnected(waiter) => {
                if self.connected() {
                    let _ = waiter.send(());
                } else {
                    self.when_connected.push(waiter);
                }
            }
        }
    }

    fn send<P: Route>(&mut self, outgoing: Outgoing<P>) {
        if !self.renewing
            && self.connected()
            && self
                .config
                .renew_after_requests
                .is_some_and(|limit| self.requests_on_link >= limit)
        {
            debug!(requests = self.requests_on_link, "renewing the relay connection");
            self.renewing = true;
            self.close_if_idle();
        }
        if self.renewing {
            self.held.push(P::command(outgoing));
            return;
        }
        let relay = match (self.connected(), self.relay) {
            (true, Some(relay)) => relay,
            // Fail fast: queueing during an outage would turn every call into a timeout.
            _ => {
                let _ = outgoing.respond_to.send(Err(NetError::Disconnected));
                return;
            }
        };
        // The codec's request type carries decode failures for the relay's side; ours are Ok.
        let id = P::behaviour(self.swarm.behaviour_mut()).send_request(&relay, Ok(outgoing.request));
        P::in_flight(&mut self.in_flight).insert(id, outgoing.respond_to);
        self.requests_on_link += 1;
    }

    /// While renewing: closes the old connection once nothing is in flight on it (its
    /// `ConnectionClosed` then redials at once, as after any proven link).
    fn close_if_idle(&mut self) {
        if self.renewing && self.connected() && self.in_flight.is_empty() {
            if let Some(connection) = self.connection {
                self.swarm.close_connection(connection);
            }
        }
    }

    /// The renewal is over (a new connection, or none could be made): held requests go out,
    /// or fail fast like any request made while disconnected.
    fn release_held(&mut self) {
        self.renewing = false;
        for command in std::mem::take(&mut self.held) {
            self.on_command(command);
        }
    }

    fn on_timer(&mut self) {
        match self.link {
            Link::Dialing { index, .. } => {
                // The late dial may still succeed; `on_event` accepts it if it does.
                self.failed_dial(
                    index,
                    format!("no connection within {:?}", self.config.dial_timeout),
                );
            }
            Link::Backoff => self.dial_from(0),
            Link::Connected => {}
        }
    }

    /// The address to dial for `addrs[index]`: with `/p2p/<relay>` once the relay is known,
    /// so a redial never lands on some other peer that took over the address.
    fn dial_addr(&self, index: usize) -> Multiaddr {
        let addr = self.addrs[index].clone();
        match (addr.iter().last(), self.relay) {
            (Some(Ma::P2p(_)), _) | (_, None) => addr,
            (_, Some(relay)) => addr.with(Ma::P2p(relay)),
        }
    }

    /// Dials `addrs[index..]` in order, one at a time, until one dial starts.
    fn dial_from(&mut self, mut index: usize) {
        if index == 0 {
            self.failures.clear();
        }
        while index < self.addrs.len() {
            let addr = self.dial_addr(index);
            let opts = DialOpts::from(addr.clone());
            let dial = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => {
                    debug!(%addr, "dialing the relay");
                    self.link = Link::Dialing { index, dial };
                    self.timer = runtime::sleep(self.config.dial_timeout).fuse();
                    return;
                }
                // E.g. a TCP address in the browser: no transport for it.
                Err(error) => {
                    self.failures.push(DialAttempt {
                        addr,
                        error: error.to_string(),
                    });
                    index += 1;
                }
            }
        }
        self.round_failed();
    }

    fn failed_dial(&mut self, index: usize, error: String) {
        let addr = self.dial_addr(index);
        debug!(%addr, %error, "dial failed");
        self.failures.push(DialAttempt { addr, error });
        self.dial_from(index + 1);
    }

    fn round_failed(&mut self) {
        if let Some(first) = self.first.take() {
            let attempts = std::mem::take(&mut self.failures);
            let _ = first.send(Err(NetError::Dial { attempts }));
            return;
        }
        let failures: Vec<String> = self.failures.iter().map(ToString::to_string).collect();
        // Loud once per outage, quiet for the retries after it.
        if self.backoff == self.config.min_backoff {
            warn!(?failures, retry_in = ?self.backoff, "the relay is unreachable");
        } else {
            debug!(?failures, retry_in = ?self.backoff, "the relay is still unreachable");
        }
        self.wait_backoff();
    }

    fn wait_backoff(&mut self) {
        self.link = Link::Backoff;
        self.release_held();
        self.timer = runtime::sleep(self.backoff).fuse();
        self.backoff = (self.backoff * 2).min(self.config.max_backoff);
    }

    /// The link works: the next outage starts from the shortest backoff again.
    fn proven(&mut self) {
        if !self.proven {
            self.proven = true;
            self.backoff = self.config.min_backoff;
        }
    }

    fn on_connected(&mut self, peer: PeerId, connection: ConnectionId, addr: Multiaddr) {
        self.relay = Some(peer);
        self.link = Link::Connected;
        self.connection = Some(connection);
        self.requests_on_link = 0;
        self.timer = Fuse::terminated();
        self.proven = false;
        if let Ok(mut status) = self.status.lock() {
            status.remote_addr = Some(addr.clone());
            // A planned renewal is not an outage.
            if self.renewing {
                status.renewals += 1;
            } else if self.ever_connected {
                status.reconnects += 1;
            }
        }
        if self.renewing {
            debug!(%peer, %addr, "relay connection renewed");
        } else if self.ever_connected {
            info!(%peer, %addr, "reconnected to the relay");
        } else {
            info!(%peer, %addr, "connected to the relay");
        }
        self.ever_connected = true;
        if let Some(first) = self.first.take() {
            let _ = first.send(Ok(peer));
        }
        for waiter in self.when_connected.drain(..) {
            let _ = waiter.send(());
        }
        self.release_held();
    }

    fn on_disconnected(&mut self, cause: String) {
        if let Ok(mut status) = self.status.lock() {
            status.remote_addr = None;
        }
        self.connection = None;
        if self.renewing {
            debug!("old relay connection closed; dialing its replacement");
            self.dial_from(0);
        } else if self.proven {
            // Redial at once (a dropped link may be back already); a failed round backs off.
            warn!(%cause, "lost the relay connection; redialing");
            self.dial_from(0);
        } else {
            warn!(%cause, retry_in = ?self.backoff, "the relay dropped a connection it never used; backing off");
            self.wait_backoff();
        }
    }

    fn on_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Headers(event)) => self.on_answer::<Headers>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Proofs(event)) => self.on_answer::<Proofs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Txs(event)) => self.on_answer::<Txs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(event)) => self.on_answer::<Blobs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => self.on_gossip(event),
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let ours = match self.link {
                    Link::Dialing { dial, .. } => dial == connection_id,
                    _ => false,
                };
                let expected = self.relay.map_or(ours, |relay| relay == peer_id);
                if !expected {
                    // Only possible if an address without `/p2p` reached another peer.
                    warn!(%peer_id, "connected to a peer that is not the relay; closing");
                    let _ = self.swarm.close_connection(connection_id);
                } else if !self.connected() {
                    self.on_connected(peer_id, connection_id, endpoint.get_remote_address().clone());
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                if Some(peer_id) == self.relay && num_established == 0 && self.connected() {
                    let cause = match cause {
                        Some(error) => error.to_string(),
                        None => "closed".to_owned(),
                    };
                    self.on_disconnected(cause);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id, error, ..
            } => match self.link {
                Link::Dialing { index, dial } if dial == connection_id => {
                    self.failed_dial(index, error.to_string());
                }
                _ => trace!(%error, "stale dial failed"),
            },
            other => trace!(?other, "swarm event"),
        }
    }

    fn on_answer<P: Route>(&mut self, event: request_response::Event<Inbound<P::Request>, P::Response>) {
        let (request_id, result) = match event {
            request_response::Event::Message {
                message: request_response::Message::Response { request_id, response },
                ..
            } => (request_id, Ok(response)),
            request_response::Event::OutboundFailure {
                request_id, error, ..
            } => {
                let timeout = self.config.request_timeout.unwrap_or(P::TIME_LIMIT);
                (request_id, Err(outbound_error(P::NAME, timeout, error)))
            }
            // Outbound-only behaviours see no inbound requests; nothing else needs an answer.
            _ => return,
        };
        match &result {
            Ok(_) => self.proven(),
            Err(error) => debug!(protocol = P::NAME, %error, "request failed"),
        }
        match P::in_flight(&mut self.in_flight).remove(&request_id) {
            // The caller may have given up already; then nobody is listening.
            Some(respond_to) => {
                let _ = respond_to.send(result);
            }
            None => trace!(protocol = P::NAME, "answer to an unknown request"),
        }
        self.close_if_idle();
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        let gossipsub::Event::Message { message, .. } = event else {
            trace!(?event, "gossipsub");
            return;
        };
        // Only the relay announces heads; anything else on the topic is not its word.
        if message.source.is_none() || message.source != self.relay {
            debug!(source = ?message.source, "dropped a head not signed by the relay");
            return;
        }
        let head = match SignedHeader::from_bytes(&message.data) {
            Ok(head) => head,
            Err(error) => {
                warn!(%error, "the relay gossiped a head that does not decode");
                return;
            }
        };
        trace!(height = head.header.height, "head");
        self.proven();
        // A full queue means a slow consumer: it misses this head rather than stalling the
        // connection. Closed queues are forgotten.
        self.heads
            .retain_mut(|subscriber| match subscriber.try_send(head.clone()) {
                Ok(()) => true,
                Err(error) if error.is_full() => {
                    debug!(
                        height = head.header.height,
                        "a heads subscriber is full; head dropped"
                    );
                    true
                }
                Err(_) => false,
            });
    }
}

fn outbound_error(protocol: &'static str, timeout: Duration, error: OutboundFailure) -> NetError {
    match error {
        OutboundFailure::DialFailure | OutboundFailure::ConnectionClosed => NetError::Disconnected,
        OutboundFailure::Timeout => NetError::Timeout { protocol, timeout },
        OutboundFailure::UnsupportedProtocols => NetError::Unsupported { protocol },
        OutboundFailure::Io(error) if is_protocol_violation(&error) => {
            match error.get_ref().and_then(|e| e.downcast_ref::<FrameTooLarge>()) {
                Some(too_large) => NetError::TooLarge {
                    protocol,
                    len: too_large.len,
                    limit: too_large.limit,
                },
                None => NetError::Protocol {
                    protocol,
                    reason: error.to_string(),
                },
            }
        }
        OutboundFailure::Io(error) => NetError::Stream {
            protocol,
            reason: error.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    #[test]
    fn oversized_and_undecodable_answers_are_told_apart() {
        let too_large = io::Error::new(
            io::ErrorKind::InvalidData,
            FrameTooLarge {
                len: 9_999_999,
                limit: 1024,
            },
        );
        assert_eq!(
            outbound_error("p", Duration::ZERO, OutboundFailure::Io(too_large)),
            NetError::TooLarge {
                protocol: "p",
                len: 9_999_999,
                limit: 1024
            }
        );
        let garbage = io::Error::new(io::ErrorKind::InvalidData, "trailing bytes");
        assert!(matches!(
            outbound_error("p", Duration::ZERO, OutboundFailure::Io(garbage)),
            NetError::Protocol { .. }
        ));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        let error = outbound_error("p", Duration::ZERO, OutboundFailure::Io(reset));
        assert!(matches!(error, NetError::Stream { .. }) && error.is_transient());
        assert_eq!(
            outbound_error("p", Duration::ZERO, OutboundFailure::ConnectionClosed),
            NetError::Disconnected
        );
    }
}

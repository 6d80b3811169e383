//! [`EventLoop`]: the `select!` over swarm events, finished answers, new heads, commands and
//! the ban timer; and the routes from each request-response protocol to its service call.

use super::*;

/// The services the protocols call. Cheap to clone into answering tasks.
#[derive(Clone, Debug)]
pub(super) struct Services {
    pub(super) light: LightClientService,
    pub(super) blobs: BlobService,
}

/// An answer computed on a task, on its way back to the loop.
pub(super) struct Reply<P: Protocol> {
    peer: PeerId,
    channel: ResponseChannel<P::Response>,
    response: P::Response,
}

pub(super) enum Answer {
    Headers(Reply<Headers>),
    Proofs(Reply<Proofs>),
    Txs(Reply<Txs>),
    Blobs(Reply<Blobs>),
}

/// How the loop serves protocol `P`: its behaviour, its service call, its answer wrapper.
trait Route: Protocol + Sized {
    fn behaviour(b: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>>;
    fn serve(services: Services, request: Self::Request) -> BoxFuture<'static, Self::Response>;
    fn answer(reply: Reply<Self>) -> Answer;
}

impl Route for Headers {
    fn behaviour(b: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>> {
        &mut b.headers
    }
    fn serve(s: Services, request: Self::Request) -> BoxFuture<'static, Self::Response> {
        Box::pin(async move { s.light.handle_headers(request).await })
    }
    fn answer(reply: Reply<Self>) -> Answer {
        Answer::Headers(reply)
    }
}

impl Route for Proofs {
    fn behaviour(b: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>> {
        &mut b.proofs
    }
    fn serve(s: Services, request: Self::Request) -> BoxFuture<'static, Self::Response> {
        Box::pin(async move { s.light.handle_proof(request).await })
    }
    fn answer(reply: Reply<Self>) -> Answer {
        Answer::Proofs(reply)
    }
}

impl Route for Txs {
    fn behaviour(b: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>> {
        &mut b.txs
    }
    fn serve(s: Services, request: Self::Request) -> BoxFuture<'static, Self::Response> {
        Box::pin(async move { s.light.handle_submit(request).await })
    }
    fn answer(reply: Reply<Self>) -> Answer {
        Answer::Txs(reply)
    }
}

impl Route for Blobs {
    fn behaviour(b: &mut Behaviour) -> &mut request_response::Behaviour<Codec<Self>> {
        &mut b.blobs
    }
    fn serve(s: Services, request: Self::Request) -> BoxFuture<'static, Self::Response> {
        Box::pin(async move { s.blobs.handle(request).await })
    }
    fn answer(reply: Reply<Self>) -> Answer {
        Answer::Blobs(reply)
    }
}

/// Drives the swarm: serves requests, publishes heads, enforces limits.
pub struct EventLoop {
    pub(super) swarm: Swarm<Behaviour>,
    pub(super) services: Services,
    pub(super) limits: PeerLimits,
    pub(super) metrics: RelayMetrics,
    pub(super) heads: broadcast::Receiver<FinalizedBlock>,
    pub(super) heads_open: bool,
    pub(super) topic: gossipsub::IdentTopic,
    pub(super) answers_tx: mpsc::Sender<Answer>,
    pub(super) answers: mpsc::Receiver<Answer>,
    pub(super) commands: mpsc::Receiver<Command>,
    pub(super) listen_addrs: Vec<Multiaddr>,
    pub(super) multiaddrs: Arc<RwLock<Vec<String>>>,
    pub(super) connected: HashSet<PeerId>,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .field("connected", &self.connected.len())
            .finish()
    }
}

impl EventLoop {
    pub async fn run(mut self) {
        let mut ban_timer = tokio::time::interval(Duration::from_secs(1));
        ban_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.handle_event(event),
                Some(answer) = self.answers.recv() => self.handle_answer(answer),
                head = self.heads.recv(), if self.heads_open => self.handle_head(head),
                Some(command) = self.commands.recv() => self.handle_command(command),
                _ = ban_timer.tick() => self.expire_bans(),
            }
        }
    }

    pub(super) fn publish_multiaddrs(&self) {
        let browser: Vec<String> = self
            .listen_addrs
            .iter()
            .filter(|a| is_browser_addr(a))
            .map(|a| a.to_string())
            .collect();
        if let Ok(mut slot) = self.multiaddrs.write() {
            *slot = browser;
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::Behaviour(BehaviourEvent::Headers(event)) => {
                self.on_request_response::<Headers>(event)
            }
            SwarmEvent::Behaviour(BehaviourEvent::Proofs(event)) => self.on_request_response::<Proofs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Txs(event)) => self.on_request_response::<Txs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Blobs(event)) => self.on_request_response::<Blobs>(event),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                propagation_source,
                message_id,
                ..
            })) => {
                // Only the relay announces heads: a peer publishing on the topic misbehaves.
                let _ = self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(
                        &message_id,
                        &propagation_source,
                        gossipsub::MessageAcceptance::Reject,
                    );
                self.strike(propagation_source, "published on the heads topic");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(event)) => trace!(?event, "gossipsub"),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(event)) => trace!(?event, "identify"),
            SwarmEvent::Behaviour(_) => {}
            SwarmEvent::ConnectionEstablished {
                peer_id, endpoint, ..
            } => {
                debug!(peer = %peer_id, addr = %endpoint.get_remote_address(), "peer connected");
                if self.connected.insert(peer_id) {
                    self.metrics.p2p_peers.inc();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                debug!(peer = %peer_id, ?cause, "connection closed");
                if num_established == 0 && self.connected.remove(&peer_id) {
                    self.metrics.p2p_peers.dec();
                    self.limits.disconnected(&peer_id);
                }
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let address = with_peer_id(address, *self.swarm.local_peer_id());
                if !self.listen_addrs.contains(&address) {
                    info!(%address, "new listen address");
                    self.listen_addrs.push(address);
                    self.publish_multiaddrs();
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                let address = with_peer_id(address, *self.swarm.local_peer_id());
                self.listen_addrs.retain(|a| *a != address);
                self.publish_multiaddrs();
            }
            SwarmEvent::ListenerError { error, .. } => warn!(%error, "libp2p listener error"),
            SwarmEvent::IncomingConnectionError {
                error,
                send_back_addr,
                ..
            } => {
                debug!(%error, from = %send_back_addr, "incoming connection failed")
            }
            other => trace!(?other, "swarm event"),
        }
    }

    fn on_request_response<P: Route>(
        &mut self,
        event: request_response::Event<Inbound<P::Request>, P::Response>,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message: request_response::Message::Request { request, channel, .. },
                ..
            } => self.on_request::<P>(peer, request, channel),
            request_response::Event::Message { .. } => {}
            request_response::Event::InboundFailure { peer, error, .. } => match error {
                request_response::InboundFailure::Io(error) if is_protocol_violation(&error) => {
                    debug!(%peer, protocol = P::NAME, %error, "refused a bad frame");
                    self.strike(peer, "bad frame");
                }
                error => debug!(%peer, protocol = P::NAME, %error, "inbound request failed"),
            },
            request_response::Event::OutboundFailure { .. }
            | request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request<P: Route>(
        &mut self,
        peer: PeerId,
        request: Inbound<P::Request>,
        channel: ResponseChannel<P::Response>,
    ) {
        self.metrics.p2p_request(P::NAME);
        let request = match request {
            Ok(request) => request,
            Err(malformed) => {
                debug!(%peer, protocol = P::NAME, %malformed, "malformed request");
                let response = P::malformed(&malformed);
                let _ = P::behaviour(self.swarm.behaviour_mut()).send_response(channel, response);
                self.strike(peer, "malformed request");
                return;
            }
        };
        if let Err(exceeded) = self.limits.admit(peer, Instant::now()) {
            // Dropping the channel resets the stream: the peer sees its request fail.
            debug!(%peer, protocol = P::NAME, %exceeded, "request refused");
            self.metrics.p2p_refused.inc();
            if exceeded != LimitExceeded::Banned {
                self.strike(peer, "over its request limits");
            }
            return;
        }
        let (services, answers) = (self.services.clone(), self.answers_tx.clone());
        tokio::spawn(async move {
            let response = P::serve(services, request).await;
            let _ = answers
                .send(P::answer(Reply {
                    peer,
                    channel,
                    response,
                }))
                .await;
        });
    }

    fn handle_answer(&mut self, answer: Answer) {
        match answer {
            Answer::Headers(reply) => self.reply(reply),
            Answer::Proofs(reply) => self.reply(reply),
            Answer::Txs(reply) => self.reply(reply),
            Answer::Blobs(reply) => self.reply(reply),
        }
    }

    fn reply<P: Route>(
        &mut self,
        Reply {
            peer,
            channel,
            response,
        }: Reply<P>,
    ) {
        self.limits.finished(&peer);
        let fault = P::is_peer_fault(&response);
        if P::behaviour(self.swarm.behaviour_mut())
            .send_response(channel, response)
            .is_err()
        {
            debug!(%peer, protocol = P::NAME, "peer left before its answer");
        }
        if fault {
            self.strike(peer, "request refused as its fault");
        }
    }

    fn strike(&mut self, peer: PeerId, why: &str) {
        match self.limits.strike(peer, Instant::now()) {
            Strike::Counted { strikes } => debug!(%peer, strikes, why, "strike"),
            Strike::Banned { until } => {
                warn!(%peer, why, for_secs = until.saturating_duration_since(Instant::now()).as_secs(), "banning peer");
                self.metrics.p2p_bans.inc();
                // Closes its connections and refuses new ones until the ban expires.
                self.swarm.behaviour_mut().blocked.block_peer(peer);
            }
            Strike::AlreadyBanned => {}
        }
    }

    fn expire_bans(&mut self) {
        for peer in self.limits.expire_bans(Instant::now()) {
            debug!(%peer, "ban expired");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
    }

    fn handle_head(&mut self, head: Result<FinalizedBlock, broadcast::error::RecvError>) {
        let block = match head {
            Ok(block) => block,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                debug!(missed, "head announcements lagged");
                return;
            }
            Err(broadcast::error::RecvError::Closed) => {
                warn!("the node stopped announcing blocks");
                self.heads_open = false;
                return;
            }
        };
        let bytes = crate::service::signed_header(block).to_bytes();
        if bytes.len() > heads::MESSAGE_SIZE_LIMIT {
            warn!(
                len = bytes.len(),
                "a head announcement exceeds its limit; not gossiped"
            );
            return;
        }
        match self
            .swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            Ok(_) => {}
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => trace!("no head subscribers"),
            Err(error) => debug!(%error, "publishing a head failed"),
        }
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Status { respond_to } => {
                let now = Instant::now();
                let banned_peers = self.limits.banned(now);
                let _ = respond_to.send(NetworkStatus {
                    connected_peers: self.swarm.connected_peers().copied().collect(),
                    banned_peers,
                });
            }
        }
    }
}

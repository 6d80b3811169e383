//! The relay's libp2p network against native clients (issue 5 "Tests"): a client swarm in the
//! test dials the relay over TCP, WebSocket and WebRTC-direct (libp2p-webrtc dials natively
//! when the client also listens on a WebRTC UDP socket), fetches a header with its commit
//! and the validator set and verifies them, fetches and verifies a state proof, follows the
//! heads topic, and submits a tx that lands. Bad input: a malformed request and an oversized
//! frame are refused while a well-behaved client keeps being served; a flooding peer and a
//! peer publishing on the heads topic are banned.

use crate::support::{wait_for, DevRelay};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use ledger::state::keys;
use ledger::tx::Action;
use ledger::types::Cid;
use ledger::verify::verify_commit;
use libp2p::identity::Keypair;
use libp2p::request_response::{self, OutboundFailure, ProtocolSupport};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{gossipsub, Multiaddr, PeerId, StreamProtocol, Swarm};
use libp2p_webrtc::tokio::Certificate;
use relay::dev::{PATIENTS, RESEARCHER};
use relay::network::codec::{Blobs, Codec, Headers, Inbound, Proofs, Protocol, Txs};
use relay::network::limits::LimitsConfig;
use relay::network::{build_swarm, heads_gossipsub, heads_topic, request_response_behaviour, NetworkConfig};
use relay::protocol::blobs::{BlobRequest, BlobResponse, RefusalKind};
use relay::protocol::headers::{self, HeadersRequest, HeadersResponse};
use relay::protocol::proofs::{ProofRequest, ProofResponse};
use relay::protocol::txs::{SubmitTx, SubmitTxResponse};
use relay::protocol::{Message, ServiceError, SignedHeader};
use std::io;
use std::time::Duration;

#[derive(NetworkBehaviour)]
struct Client {
    gossipsub: gossipsub::Behaviour,
    headers: request_response::Behaviour<Codec<Headers>>,
    proofs: request_response::Behaviour<Codec<Proofs>>,
    txs: request_response::Behaviour<Codec<Txs>>,
    blobs: request_response::Behaviour<Codec<Blobs>>,
}

type RrEvent<P> = request_response::Event<Inbound<<P as Protocol>::Request>, <P as Protocol>::Response>;

/// Which client behaviour and event carry protocol `P`.
trait ClientRoute: Protocol {
    fn behaviour(client: &mut Client) -> &mut request_response::Behaviour<Codec<Self>>;
    fn event(event: ClientEvent) -> Result<RrEvent<Self>, Box<ClientEvent>>;
}

macro_rules! client_route {
    ($protocol:ty, $field:ident, $variant:ident) => {
        impl ClientRoute for $protocol {
            fn behaviour(client: &mut Client) -> &mut request_response::Behaviour<Codec<Self>> {
                &mut client.$field
            }
            fn event(event: ClientEvent) -> Result<RrEvent<Self>, Box<ClientEvent>> {
                match event {
                    ClientEvent::$variant(event) => Ok(event),
                    other => Err(Box::new(other)),
                }
            }
        }
    };
}
client_route!(Headers, headers, Headers);
client_route!(Proofs, proofs, Proofs);
client_route!(Txs, txs, Txs);
client_route!(Blobs, blobs, Blobs);

/// Starts listening on a WebRTC UDP socket (libp2p-webrtc dials from its listener's socket).
async fn listen_webrtc<B: NetworkBehaviour>(swarm: &mut Swarm<B>) {
    swarm
        .listen_on("/ip4/127.0.0.1/udp/0/webrtc-direct".parse().unwrap())
        .unwrap();
    loop {
        if let SwarmEvent::NewListenAddr { .. } = swarm.select_next_some().await {
            return;
        }
    }
}

/// Dials `addr` and drives `swarm` until connected to `relay`.
async fn connect<B: NetworkBehaviour>(swarm: &mut Swarm<B>, relay: PeerId, addr: Multiaddr) {
    swarm.dial(addr.clone()).unwrap();
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } if peer_id == relay => return,
                SwarmEvent::OutgoingConnectionError { error, .. } => panic!("dialing {addr}: {error}"),
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("connecting to {addr} timed out"))
}

fn new_identity() -> (Keypair, Certificate) {
    (
        Keypair::generate_ed25519(),
        Certificate::generate(&mut rand_webrtc::rng()).unwrap(),
    )
}

struct TestClient {
    swarm: Swarm<Client>,
    relay: PeerId,
    heads: Vec<SignedHeader>,
}

impl TestClient {
    async fn connect(relay: PeerId, addr: Multiaddr) -> TestClient {
        let (keypair, certificate) = new_identity();
        let mut gossipsub = heads_gossipsub(&keypair).unwrap();
        gossipsub.subscribe(&heads_topic()).unwrap();
        let behaviour = Client {
            gossipsub,
            headers: request_response_behaviour(ProtocolSupport::Outbound, 100),
            proofs: request_response_behaviour(ProtocolSupport::Outbound, 100),
            txs: request_response_behaviour(ProtocolSupport::Outbound, 100),
            blobs: request_response_behaviour(ProtocolSupport::Outbound, 100),
        };
        let mut swarm = build_swarm(keypair, certificate, behaviour).await.unwrap();
        if addr.to_string().contains("webrtc-direct") {
            listen_webrtc(&mut swarm).await;
        }
        connect(&mut swarm, relay, addr).await;
        TestClient {
            swarm,
            relay,
            heads: Vec::new(),
        }
    }

    fn peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    fn other_event(&mut self, event: SwarmEvent<ClientEvent>) {
        if let SwarmEvent::Behaviour(ClientEvent::Gossipsub(gossipsub::Event::Message { message, .. })) =
            event
        {
            self.heads.push(SignedHeader::from_bytes(&message.data).unwrap());
        }
    }

    fn send<P: ClientRoute>(&mut self, request: P::Request) -> request_response::OutboundRequestId {
        let relay = self.relay;
        P::behaviour(self.swarm.behaviour_mut()).send_request(&relay, Ok(request))
    }

    /// Drives the swarm until the answer to `id` (or its failure) arrives.
    async fn answer<P: ClientRoute>(
        &mut self,
        id: request_response::OutboundRequestId,
    ) -> Result<P::Response, OutboundFailure> {
        loop {
            let event = self.swarm.select_next_some().await;
            let SwarmEvent::Behaviour(event) = event else {
                self.other_event(event);
                continue;
            };
            match P::event(event) {
                Ok(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) if request_id == id => return Ok(response),
                Ok(request_response::Event::OutboundFailure {
                    request_id, error, ..
                }) if request_id == id => return Err(error),
                Ok(_) => {}
                Err(other) => self.other_event(SwarmEvent::Behaviour(*other)),
            }
        }
    }

    async fn request<P: ClientRoute>(&mut self, request: P::Request) -> Result<P::Response, OutboundFailure> {
        let id = self.send::<P>(request);
        tokio::time::timeout(Duration::from_secs(30), self.answer::<P>(id))
            .await
            .expect("the relay did not answer within 30 s")
    }

    async fn header(&mut self, request: HeadersRequest) -> SignedHeader {
        match self.request::<Headers>(request).await.unwrap() {
            HeadersResponse::Header(signed) => *signed,
            other => panic!("expected a header, got {other:?}"),
        }
    }

    /// The next gossiped head (waits for one).
    async fn next_head(&mut self) -> SignedHeader {
        tokio::time::timeout(Duration::from_secs(60), async {
            while self.heads.is_empty() {
                let event = self.swarm.select_next_some().await;
                self.other_event(event);
            }
            self.heads.remove(0)
        })
        .await
        .expect("no head was gossiped within 60 s")
    }
}

/// Fetches the latest header, its validator set and a state proof over the wire, and
/// verifies them as a light client would.
async fn fetch_and_verify(client: &mut TestClient, dev: &DevRelay) {
    let chain_id = dev.relay.chain.chain_id().to_owned();
    let latest = client.header(HeadersRequest::Latest).await;
    let height = latest.header.height;
    assert!(height >= 2);
    let validators = match client
        .request::<Headers>(HeadersRequest::ValidatorSet { height })
        .await
        .unwrap()
    {
        HeadersResponse::ValidatorSet {
            height: h,
            validators,
        } if h == height => validators,
        other => panic!("expected the validator set, got {other:?}"),
    };
    let tally = verify_commit(&chain_id, &latest.header, &latest.commit, &validators).unwrap();
    assert!(tally.signed > 0);
    // A range is consecutive and hash-linked.
    match client
        .request::<Headers>(HeadersRequest::Range {
            from: height - 1,
            count: 2,
        })
        .await
        .unwrap()
    {
        HeadersResponse::Range(range) => {
            assert_eq!(range.len(), 2);
            assert_eq!(range[1].header.last_block_id, range[0].header.id());
        }
        other => panic!("expected a range, got {other:?}"),
    }
    // A state value with its proof against the verified header's state root.
    let key = keys::account(&dev.account(PATIENTS[0]).address());
    match client
        .request::<Proofs>(ProofRequest {
            key: key.clone(),
            height,
        })
        .await
        .unwrap()
    {
        ProofResponse::Value {
            height: h,
            value,
            proof,
        } => {
            assert_eq!(h, height);
            assert!(value.is_some());
            proof
                .verify(&latest.header.state_root, &key, value.as_deref())
                .unwrap();
        }
        other => panic!("expected a value, got {other:?}"),
    }
    // Errors are typed answers, not dropped streams.
    match client
        .request::<Headers>(HeadersRequest::At {
            height: height + 1_000_000,
        })
        .await
        .unwrap()
    {
        HeadersResponse::Failed(ServiceError::NotFound { .. }) => {}
        other => panic!("expected NotFound, got {other:?}"),
    }
}

#[tokio::test]
async fn native_clients_over_tcp_websocket_and_webrtc_fetch_verify_follow_and_submit() {
    let dev = DevRelay::start().await;
    dev.wait_height(3).await;
    let network = dev.relay.network.clone();
    let addrs = [
        ("tcp", network.tcp_addr().unwrap()),
        ("websocket", network.ws_addr().unwrap()),
        ("webrtc-direct", network.webrtc_addr().unwrap()),
    ];
    assert!(addrs[2].1.to_string().contains("/certhash/"), "{}", addrs[2].1);
    for (name, addr) in addrs {
        eprintln!("client over {name}: {addr}");
        let mut client = TestClient::connect(network.peer_id, addr).await;
        fetch_and_verify(&mut client, &dev).await;

        // The heads topic brings new finalized headers with commits that verify.
        let head = client.next_head().await;
        let validators = dev.relay.light.validator_set(head.header.height).await.unwrap();
        verify_commit(
            dev.relay.chain.chain_id(),
            &head.header,
            &head.commit,
            &validators,
        )
        .unwrap();

        // A tx submitted over the wire lands in a block.
        let researcher = dev.account(RESEARCHER);
        let tx = dev.tx(
            &researcher,
            Action::Transfer {
                to: dev.account(PATIENTS[1]).address(),
                amount: 1,
            },
        );
        let hash = match client
            .request::<Txs>(SubmitTx { tx: tx.to_bytes() })
            .await
            .unwrap()
        {
            SubmitTxResponse::Accepted { hash } => hash,
            other => panic!("the transfer was rejected over {name}: {other:?}"),
        };
        let node = dev.relay.chain.node().clone();
        wait_for("the tx submitted over libp2p to commit", || {
            let node = node.clone();
            async move { node.tx_height(&hash).unwrap() }
        })
        .await;
        // A blob put over the wire is stored under its CID; bytes that do not hash to the
        // claimed CID are refused.
        let bytes = format!("ciphertext sent over {name}").into_bytes();
        let cid = Cid::of(&bytes);
        let put = BlobRequest::Put {
            cid,
            bytes: bytes.clone(),
        };
        assert_eq!(
            client.request::<Blobs>(put).await.unwrap(),
            BlobResponse::Stored { cid }
        );
        let forged = BlobRequest::Put {
            cid: Cid::of(b"something else"),
            bytes,
        };
        match client.request::<Blobs>(forged).await.unwrap() {
            BlobResponse::Refused(refusal) => assert_eq!(refusal.kind, RefusalKind::CidMismatch),
            other => panic!("a forged put was stored: {other:?}"),
        }
        // The same tx again is rejected with the mempool's reason.
        match client
            .request::<Txs>(SubmitTx { tx: tx.to_bytes() })
            .await
            .unwrap()
        {
            SubmitTxResponse::Rejected { reason } => assert!(!reason.is_empty()),
            other => panic!("a replayed tx was accepted: {other:?}"),
        }
    }
    let metrics = reqwest::get(dev.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("medledger_relay_p2p_requests_total{protocol=\"/medledger/headers/1\"}"),
        "{metrics}"
    );
}

/// Writes requests verbatim (length prefix included) and reads one framed response.
#[derive(Clone, Default)]
struct RawCodec;

impl request_response::Codec for RawCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        let mut prefix = [0u8; 4];
        io.read_exact(&mut prefix).await?;
        let mut body = vec![0u8; u32::from_be_bytes(prefix).min(1 << 20) as usize];
        io.read_exact(&mut body).await?;
        Ok(body)
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&request).await?;
        io.flush().await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }
}

async fn raw_request(
    swarm: &mut Swarm<request_response::Behaviour<RawCodec>>,
    relay: PeerId,
    bytes: Vec<u8>,
) -> Result<Vec<u8>, OutboundFailure> {
    let id = swarm.behaviour_mut().send_request(&relay, bytes);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, response },
                    ..
                }) if request_id == id => return Ok(response),
                SwarmEvent::Behaviour(request_response::Event::OutboundFailure {
                    request_id, error, ..
                }) if request_id == id => return Err(error),
                _ => {}
            }
        }
    })
    .await
    .expect("no answer or failure within 30 s")
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = (body.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(body);
    out
}

#[tokio::test]
async fn bad_input_is_refused_and_floods_and_fake_heads_are_banned_while_good_clients_are_served() {
    let limits = LimitsConfig {
        request_burst: 8,
        requests_per_second: 4.0,
        max_in_flight_per_peer: 8,
        max_strikes: 4,
        ban_duration: Duration::from_secs(300),
        ..LimitsConfig::default()
    };
    let dev = DevRelay::start_with(|config| {
        config.network = NetworkConfig {
            limits,
            ..NetworkConfig::default()
        }
    })
    .await;
    dev.wait_height(2).await;
    let network = dev.relay.network.clone();
    let relay = network.peer_id;
    let tcp = network.tcp_addr().unwrap();
    let mut good = TestClient::connect(relay, tcp.clone()).await;
    good.header(HeadersRequest::Latest).await;

    // A raw peer: a frame within the limit that does not decode gets a typed refusal...
    let (keypair, certificate) = new_identity();
    let raw_behaviour = request_response::Behaviour::<RawCodec>::new(
        [(StreamProtocol::new(headers::PROTOCOL), ProtocolSupport::Outbound)],
        request_response::Config::default(),
    );
    let mut raw = build_swarm(keypair, certificate, raw_behaviour).await.unwrap();
    connect(&mut raw, relay, tcp.clone()).await;
    let answer = raw_request(&mut raw, relay, frame(&[9, 9, 9])).await.unwrap();
    match HeadersResponse::from_bytes(&answer).unwrap() {
        HeadersResponse::Failed(error @ ServiceError::Malformed { .. }) => assert!(error.is_peer_fault()),
        other => panic!("expected a malformed-request refusal, got {other:?}"),
    }
    // ...a frame whose prefix exceeds the protocol's limit is refused without being read...
    let mut oversized = ((headers::REQUEST_SIZE_LIMIT + 1) as u32).to_be_bytes().to_vec();
    oversized.extend(vec![0u8; headers::REQUEST_SIZE_LIMIT + 1]);
    let failure = raw_request(&mut raw, relay, oversized).await.unwrap_err();
    eprintln!("oversized frame refused: {failure}");
    // ...as is a 4 GiB claim with no body.
    let failure = raw_request(&mut raw, relay, u32::MAX.to_be_bytes().to_vec())
        .await
        .unwrap_err();
    eprintln!("4 GiB frame refused: {failure}");
    // The well-behaved client is still served.
    good.header(HeadersRequest::Latest).await;

    // A flooding peer: far more requests at once than its burst and in-flight limits allow.
    let mut flooder = TestClient::connect(relay, tcp.clone()).await;
    let flooder_id = flooder.peer_id();
    let mut ids: std::collections::HashSet<_> = (0..64)
        .map(|_| flooder.send::<Headers>(HeadersRequest::Latest))
        .collect();
    let (mut served, mut failed) = (0, 0);
    tokio::time::timeout(Duration::from_secs(60), async {
        while !ids.is_empty() {
            let event = flooder.swarm.select_next_some().await;
            match event {
                SwarmEvent::Behaviour(ClientEvent::Headers(request_response::Event::Message {
                    message: request_response::Message::Response { request_id, .. },
                    ..
                })) if ids.remove(&request_id) => served += 1,
                SwarmEvent::Behaviour(ClientEvent::Headers(request_response::Event::OutboundFailure {
                    request_id,
                    ..
                })) if ids.remove(&request_id) => failed += 1,
                _ => {}
            }
        }
    })
    .await
    .expect("the flood's requests were neither answered nor failed within 60 s");
    eprintln!("flood: {served} served, {failed} refused");
    assert!(failed > 0, "every flooded request was served");
    let status = wait_for("the flooder to be banned", || {
        let network = network.clone();
        async move {
            let status = network.status().await?;
            status.banned_peers.contains(&flooder_id).then_some(status)
        }
    })
    .await;
    assert!(!status.connected_peers.contains(&flooder_id), "{status:?}");
    assert!(!status.banned_peers.contains(&good.peer_id()), "{status:?}");
    // The banned peer cannot come back; the good client is still served.
    flooder.swarm.dial(tcp.clone()).unwrap();
    let retry = flooder.send::<Headers>(HeadersRequest::Latest);
    let retried = tokio::time::timeout(Duration::from_secs(30), flooder.answer::<Headers>(retry)).await;
    assert!(
        matches!(retried, Ok(Err(_))),
        "a banned peer was served: {retried:?}"
    );
    let latest = good.header(HeadersRequest::Latest).await;
    assert!(latest.header.height >= 2);

    // Only the relay announces heads: a peer publishing on the topic is rejected and banned.
    let mut publisher = TestClient::connect(relay, tcp.clone()).await;
    let publisher_id = publisher.peer_id();
    let mut published = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while published < 4 {
            let junk = format!("not a head {published}").into_bytes();
            match publisher
                .swarm
                .behaviour_mut()
                .gossipsub
                .publish(heads_topic(), junk)
            {
                Ok(_) => published += 1,
                // The relay's subscription has not arrived yet: keep driving the swarm.
                Err(_) => {
                    let _ =
                        tokio::time::timeout(Duration::from_millis(100), publisher.swarm.select_next_some())
                            .await;
                }
            }
        }
        // Let the messages go out.
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            loop {
                publisher.swarm.select_next_some().await;
            }
        })
        .await;
    })
    .await
    .expect("the publisher could not publish");
    wait_for("the publisher to be banned", || {
        let network = network.clone();
        async move {
            let status = network.status().await?;
            status.banned_peers.contains(&publisher_id).then_some(())
        }
    })
    .await;
    good.header(HeadersRequest::Latest).await;

    let metrics = reqwest::get(dev.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("medledger_relay_p2p_bans_total 2"), "{metrics}");
}

//! `light_client::net` against a real `medledger-relay --dev` process (issue 6 item 7): over
//! TCP and over WebSocket it fetches the latest header and validator set and checks the
//! commit, fetches a state proof and checks it against the header's state root, follows
//! gossiped heads, and submits a signed tx whose inclusion proof checks against its block's
//! tx root. Then the relay is killed and restarted on the same ports and data: requests fail
//! with `Disconnected` while it is down, and afterwards the same connection answers again
//! and the same heads stream resumes. A scripted fake relay covers what an honest relay never
//! does: oversized and undecodable answers, silence, and unsupported protocols.
//!
//! The relay binary is `target/debug/medledger-relay` next to this test's own target dir
//! (built with `cargo build -p medledger-relay` if missing), or `MEDLEDGER_RELAY_BIN`.
#![cfg(not(target_arch = "wasm32"))]

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt, StreamExt};
use ledger::crypto::{AccountKeys, Address};
use ledger::state::keys;
use ledger::tx::{Action, Tx};
use ledger::verify::verify_commit;
use ledger::ValidatorSet;
use libp2p::request_response::{self, ProtocolSupport, ResponseChannel};
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, StreamProtocol};
use light_client::net::{NetConfig, NetError, RelayConnection};
use protocol::headers::{self, HeadersRequest, HeadersResponse};
use protocol::proofs::{ProofRequest, ProofResponse};
use protocol::txs::{SubmitTx, SubmitTxResponse};
use protocol::{Message, ServiceError, SignedHeader};
use std::future::Future;
use std::io;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Generous: a debug relay on a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(90);

fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "light_client=debug".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Polls `check` every 100 ms until it returns `Some`, or panics after [`WAIT`].
async fn wait_for<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < WAIT,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn within<T>(what: &str, limit: Duration, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out after {limit:?}: {what}"))
}

fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `target/debug/medledger-relay` of the target dir this test was built in.
fn relay_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("MEDLEDGER_RELAY_BIN") {
        return path.into();
    }
    // The test runs as target/debug/deps/net-<hash>.
    let exe = std::env::current_exe().unwrap();
    let debug_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let binary = debug_dir.join("medledger-relay");
    if !binary.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "medledger-relay", "--bin", "medledger-relay"])
            .status()
            .unwrap();
        assert!(status.success(), "building medledger-relay failed");
    }
    binary
}

/// What the relay's `/.well-known/medledger.json` says.
#[derive(Debug, Clone)]
struct Discovery {
    chain_id: String,
    webrtc: Multiaddr,
    ws: Multiaddr,
}

/// A `medledger-relay --dev` process on fixed ports and a data dir, restartable.
struct RelayProcess {
    child: Option<Child>,
    data: PathBuf,
    http: u16,
    tcp: u16,
    ws: u16,
    webrtc: u16,
    starts: u32,
}

impl RelayProcess {
    async fn start(data: &Path) -> (RelayProcess, Discovery) {
        let mut relay = RelayProcess {
            child: None,
            data: data.to_owned(),
            http: free_tcp_port(),
            tcp: free_tcp_port(),
            ws: free_tcp_port(),
            webrtc: free_udp_port(),
            starts: 0,
        };
        let discovery = relay.restart().await;
        (relay, discovery)
    }

    /// Starts the process (again) on the same ports and data, and waits for its discovery
    /// document to list the libp2p addresses.
    async fn restart(&mut self) -> Discovery {
        assert!(self.child.is_none(), "the relay is still running");
        self.starts += 1;
        let log = std::fs::File::create(self.data.join(format!("relay-{}.log", self.starts))).unwrap();
        let child = Command::new(relay_binary())
            .arg("--dev")
            .arg("--data")
            .arg(&self.data)
            .args(["--http", &format!("127.0.0.1:{}", self.http)])
            .args(["--p2p-host", "127.0.0.1"])
            .args(["--p2p-tcp", &self.tcp.to_string()])
            .args(["--p2p-ws", &self.ws.to_string()])
            .args(["--p2p-webrtc", &self.webrtc.to_string()])
            // Faster blocks: the test waits for several heads.
            .args(["--block-time-ms", "200"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting medledger-relay");
        self.child = Some(child);
        let url = format!("http://127.0.0.1:{}/.well-known/medledger.json", self.http);
        let doc = wait_for("the relay's discovery document", || {
            let url = url.clone();
            async move {
                let doc: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
                let ready = doc["multiaddrs"].as_array().is_some_and(|a| a.len() >= 2);
                ready.then_some(doc)
            }
        })
        .await;
        let addrs: Vec<Multiaddr> = doc["multiaddrs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().parse().unwrap())
            .collect();
        let find = |kind: &str| {
            addrs
                .iter()
                .find(|a| a.to_string().contains(kind))
                .unwrap_or_else(|| panic!("no {kind} address in {addrs:?}"))
                .clone()
        };
        Discovery {
            chain_id: doc["chain_id"].as_str().unwrap().to_owned(),
            webrtc: find("/webrtc-direct/"),
            ws: find("/ws/"),
        }
    }

    /// The TCP address (not in the discovery document, which lists browser addresses),
    /// with the relay's peer id taken from the WebSocket one.
    fn tcp_addr(&self, discovery: &Discovery) -> Multiaddr {
        let peer = discovery.ws.iter().last().unwrap();
        format!("/ip4/127.0.0.1/tcp/{}", self.tcp)
            .parse::<Multiaddr>()
            .unwrap()
            .with(peer)
    }

    /// SIGKILL: the connection drops without a goodbye, as in a crash.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The demo account `name` from DATA/dev-keys.json.
fn dev_account(data: &Path, name: &str) -> AccountKeys {
    let text = std::fs::read_to_string(data.join("dev-keys.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let account = doc["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no dev account {name}"));
    let seed: [u8; 32] = hex::decode(account["master_seed"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let keys = AccountKeys::from_master_seed(seed);
    assert_eq!(keys.address().to_hex(), account["address"].as_str().unwrap());
    keys
}

fn expect_header(response: HeadersResponse) -> SignedHeader {
    match response {
        HeadersResponse::Header(signed) => *signed,
        other => panic!("expected a header, got {other:?}"),
    }
}

async fn validator_set(conn: &RelayConnection, height: u64) -> ValidatorSet {
    match conn
        .headers(HeadersRequest::ValidatorSet { height })
        .await
        .unwrap()
    {
        HeadersResponse::ValidatorSet {
            height: h,
            validators,
        } if h == height => validators,
        other => panic!("expected the validator set at {height}, got {other:?}"),
    }
}

/// Checks `signed`'s commit against the set the relay names for its height.
async fn verify_signed(conn: &RelayConnection, chain_id: &str, signed: &SignedHeader) {
    let validators = validator_set(conn, signed.header.height).await;
    let tally = verify_commit(chain_id, &signed.header, &signed.commit, &validators).unwrap();
    assert!(tally.signed > 0);
}

/// The value under `key` at `header`'s height, checked against its state root.
async fn verified_value(conn: &RelayConnection, header: &SignedHeader, key: &[u8]) -> Option<Vec<u8>> {
    let height = header.header.height;
    match conn
        .proof(ProofRequest {
            key: key.to_vec(),
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
            proof
                .verify(&header.header.state_root, key, value.as_deref())
                .unwrap();
            // The same proof does not fit another root: the check above could fail.
            assert!(proof
                .verify(&header.header.tx_root, key, value.as_deref())
                .is_err());
            value
        }
        other => panic!("expected a value with proof, got {other:?}"),
    }
}

async fn latest(conn: &RelayConnection) -> SignedHeader {
    expect_header(conn.headers(HeadersRequest::Latest).await.unwrap())
}

/// Fetches and verifies the head, a proof, two gossiped heads, and a tx's inclusion.
async fn exercise(conn: &RelayConnection, discovery: &Discovery, data: &Path) {
    let chain_id = &discovery.chain_id;
    let mut heads = conn.heads();

    let head = latest(conn).await;
    assert_eq!(&head.header.chain_id, chain_id);
    verify_signed(conn, chain_id, &head).await;

    let researcher = dev_account(data, "researcher");
    let account = verified_value(conn, &head, &keys::account(&researcher.address())).await;
    assert!(account.is_some(), "the researcher's account is in genesis");

    // Heads arrive by gossip and carry commits that verify.
    let mut last = 0;
    for _ in 0..2 {
        let gossiped = within("a gossiped head", Duration::from_secs(60), heads.next())
            .await
            .expect("the heads stream ended");
        assert!(gossiped.header.height > last);
        last = gossiped.header.height;
        verify_signed(conn, chain_id, &gossiped).await;
    }

    // A signed tx goes in; its inclusion proof checks against its block's tx root.
    let tx = transfer(
        conn,
        chain_id,
        &researcher,
        dev_account(data, "patient-1").address(),
    )
    .await;
    let hash = match conn.submit_tx(SubmitTx { tx: tx.to_bytes() }).await.unwrap() {
        SubmitTxResponse::Accepted { hash } => hash,
        other => panic!("the transfer was rejected: {other:?}"),
    };
    assert_eq!(hash, tx.hash());
    let inclusion = wait_for("the tx to be committed", || async {
        match conn.headers(HeadersRequest::TxInclusion { hash }).await.unwrap() {
            HeadersResponse::TxInclusion(inclusion) => Some(inclusion),
            HeadersResponse::Failed(ServiceError::UnknownTx { .. }) => None,
            other => panic!("expected a tx inclusion, got {other:?}"),
        }
    })
    .await;
    assert_eq!(inclusion.tx, tx.to_bytes());
    let block = expect_header(
        conn.headers(HeadersRequest::At {
            height: inclusion.height,
        })
        .await
        .unwrap(),
    );
    verify_signed(conn, chain_id, &block).await;
    inclusion
        .proof
        .verify(&block.header.tx_root, &inclusion.tx)
        .unwrap();
    assert!(inclusion
        .proof
        .verify(&block.header.state_root, &inclusion.tx)
        .is_err());
}

/// A 1-unit transfer from `from`, with the nonce read (and proven) at the latest height.
async fn transfer(conn: &RelayConnection, chain_id: &str, from: &AccountKeys, to: Address) -> Tx {
    let head = latest(conn).await;
    let nonce = verified_value(conn, &head, &keys::nonce(&from.address()))
        .await
        .map_or(0, |bytes| borsh::from_slice::<u64>(&bytes).unwrap());
    Tx::new(from, chain_id, nonce, Action::Transfer { to, amount: 1 })
}

#[tokio::test]
async fn over_tcp_and_websocket_headers_proofs_heads_and_txs_verify() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (relay, discovery) = RelayProcess::start(dir.path()).await;
    for addr in [relay.tcp_addr(&discovery), discovery.ws.clone()] {
        eprintln!("connecting over {addr}");
        let conn = RelayConnection::connect(vec![addr.clone()]).await.unwrap();
        assert!(conn.is_connected());
        assert_eq!(conn.remote_addr().as_ref(), Some(&addr));
        assert_eq!(
            Some(libp2p::multiaddr::Protocol::P2p(conn.peer_id())),
            addr.iter().last()
        );
        exercise(&conn, &discovery, dir.path()).await;
    }
}

#[tokio::test]
async fn addresses_are_tried_in_order_and_a_dead_relay_fails_with_every_attempt() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, discovery) = RelayProcess::start(dir.path()).await;
    // Nothing listens on the first address, and natively there is no WebRTC transport for
    // the second (a browser's first choice): the third one is used.
    assert!(
        discovery.webrtc.to_string().contains("/certhash/"),
        "{}",
        discovery.webrtc
    );
    let dead: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", free_tcp_port()).parse().unwrap();
    let conn = RelayConnection::connect(vec![dead.clone(), discovery.webrtc.clone(), discovery.ws.clone()])
        .await
        .unwrap();
    assert_eq!(conn.remote_addr(), Some(discovery.ws.clone()));
    latest(&conn).await;
    drop(conn);

    relay.kill();
    let tcp = relay.tcp_addr(&discovery);
    let error = RelayConnection::connect(vec![dead.clone(), tcp.clone()])
        .await
        .unwrap_err();
    match error {
        NetError::Dial { attempts } => {
            let tried: Vec<_> = attempts.iter().map(|a| a.addr.clone()).collect();
            assert_eq!(tried, [dead, tcp]);
        }
        other => panic!("expected a dial error, got {other:?}"),
    }
    assert_eq!(
        RelayConnection::connect(vec![]).await.unwrap_err(),
        NetError::NoAddresses
    );
}

/// The browser's WebRTC workaround, over TCP here: the connection is replaced every few
/// requests, requests made meanwhile wait for the new one instead of failing, and heads
/// keep coming on the new connection.
#[tokio::test]
async fn a_renewed_connection_loses_no_request_and_keeps_the_heads() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (relay, discovery) = RelayProcess::start(dir.path()).await;
    let config = NetConfig {
        renew_after_requests: Some(5),
        ..NetConfig::default()
    };
    let conn = RelayConnection::connect_with(vec![RelayProcess::tcp_addr(&relay, &discovery)], config)
        .await
        .unwrap();
    let mut heads = conn.heads();
    for _ in 0..8 {
        // Three at a time, so some are made while a renewal is under way.
        let answers = futures::future::join_all((0..3).map(|_| conn.headers(HeadersRequest::Latest))).await;
        for answer in answers {
            expect_header(answer.expect("a request during renewals"));
        }
    }
    assert!(conn.renewals() >= 3, "renewed {} times", conn.renewals());
    assert_eq!(conn.reconnects(), 0, "a renewal is not an outage");
    let before = latest(&conn).await.header.height;
    let head = within("a head after the renewals", Duration::from_secs(60), async {
        loop {
            let head = heads.next().await.expect("heads stream open");
            if head.header.height > before {
                return head;
            }
        }
    })
    .await;
    assert!(head.header.height > before);
    drop(relay);
}

#[tokio::test]
async fn after_a_relay_restart_requests_work_again_and_heads_resume() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let (mut relay, discovery) = RelayProcess::start(dir.path()).await;
    let config = NetConfig {
        max_backoff: Duration::from_secs(2),
        ..NetConfig::default()
    };
    let tcp = RelayProcess::tcp_addr(&relay, &discovery);
    let conns = [
        RelayConnection::connect_with(vec![tcp], config.clone())
            .await
            .unwrap(),
        RelayConnection::connect_with(vec![discovery.ws.clone()], config)
            .await
            .unwrap(),
    ];
    let mut heads: Vec<_> = conns.iter().map(|c| c.heads()).collect();
    for stream in &mut heads {
        within(
            "a head before the restart",
            Duration::from_secs(60),
            stream.next(),
        )
        .await
        .unwrap();
    }
    let before = latest(&conns[0]).await.header.height;

    relay.kill();
    for conn in &conns {
        wait_for("the connection to notice the relay is gone", || async {
            (!conn.is_connected()).then_some(())
        })
        .await;
        assert_eq!(conn.remote_addr(), None);
        // While it is down, requests fail at once with a typed error instead of hanging.
        let error = within("a request during the outage", Duration::from_secs(5), async {
            conn.headers(HeadersRequest::Latest).await.unwrap_err()
        })
        .await;
        assert_eq!(error, NetError::Disconnected);
        assert!(error.is_transient());
    }
    // Let a few redial rounds fail, so the backoff path runs.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let restarted = relay.restart().await;
    assert_eq!(
        restarted.ws, discovery.ws,
        "same identity and port after the restart"
    );
    for (conn, stream) in conns.iter().zip(&mut heads) {
        within("reconnecting", Duration::from_secs(60), conn.connected())
            .await
            .unwrap();
        assert_eq!(conn.reconnects(), 1);
        let head = latest(conn).await;
        assert!(head.header.height >= before, "the chain went on from {before}");
        verify_signed(conn, &discovery.chain_id, &head).await;
        // The same stream yields heads again, newer than any before the kill.
        let resumed = within("heads to resume", Duration::from_secs(60), async {
            loop {
                let head = stream.next().await.expect("the heads stream ended");
                if head.header.height > before {
                    return head;
                }
            }
        })
        .await;
        verify_signed(conn, &discovery.chain_id, &resumed).await;
    }
}

/// Answers headers requests the way no honest relay does (see [`scripted_answer`]).
#[derive(Clone, Default)]
struct ScriptedCodec;

/// What the fake relay does with a headers request.
fn scripted_answer(request: &HeadersRequest) -> Option<Vec<u8>> {
    match request {
        // A length prefix past the protocol's 2 MiB limit (and no body).
        HeadersRequest::Latest => Some(((headers::RESPONSE_SIZE_LIMIT + 1) as u32).to_be_bytes().to_vec()),
        // A frame within the limit whose bytes are not a response.
        HeadersRequest::At { height: 1 } => Some([3u32.to_be_bytes().to_vec(), vec![0xff; 3]].concat()),
        // Silence: the request is never answered.
        _ => None,
    }
}

impl request_response::Codec for ScriptedCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<Vec<u8>> {
        protocol::codec::read_frame(io, headers::REQUEST_SIZE_LIMIT).await
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> io::Result<Vec<u8>> {
        Err(io::ErrorKind::Unsupported.into())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: Vec<u8>,
    ) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    /// Raw bytes, length prefix included.
    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        response: Vec<u8>,
    ) -> io::Result<()> {
        io.write_all(&response).await?;
        io.flush().await
    }
}

/// A fake relay over TCP that speaks only the headers protocol, answering per the script.
async fn scripted_relay() -> Multiaddr {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| {
            request_response::Behaviour::<ScriptedCodec>::new(
                [(StreamProtocol::new(headers::PROTOCOL), ProtocolSupport::Inbound)],
                request_response::Config::default().with_request_timeout(Duration::from_secs(300)),
            )
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(300)))
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let peer = *swarm.local_peer_id();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(libp2p::multiaddr::Protocol::P2p(peer));
        }
    };
    tokio::spawn(async move {
        // Unanswered requests stay open: dropping a channel would reset the stream.
        let mut held: Vec<ResponseChannel<Vec<u8>>> = Vec::new();
        loop {
            if let SwarmEvent::Behaviour(request_response::Event::Message {
                message: request_response::Message::Request { request, channel, .. },
                ..
            }) = swarm.select_next_some().await
            {
                let request = HeadersRequest::from_bytes(&request).expect("the client sent a valid request");
                match scripted_answer(&request) {
                    Some(bytes) => {
                        let _ = swarm.behaviour_mut().send_response(channel, bytes);
                    }
                    None => held.push(channel),
                }
            }
        }
    });
    addr
}

#[tokio::test]
async fn oversized_undecodable_missing_and_unsupported_answers_are_typed_errors() {
    init_tracing();
    let addr = scripted_relay().await;
    let config = NetConfig {
        request_timeout: Some(Duration::from_secs(2)),
        ..NetConfig::default()
    };
    let conn = RelayConnection::connect_with(vec![addr], config).await.unwrap();

    let error = conn.headers(HeadersRequest::Latest).await.unwrap_err();
    assert_eq!(
        error,
        NetError::TooLarge {
            protocol: headers::PROTOCOL,
            len: headers::RESPONSE_SIZE_LIMIT as u64 + 1,
            limit: headers::RESPONSE_SIZE_LIMIT,
        }
    );
    let error = conn.headers(HeadersRequest::At { height: 1 }).await.unwrap_err();
    assert!(
        matches!(
            error,
            NetError::Protocol {
                protocol: headers::PROTOCOL,
                ..
            }
        ),
        "{error:?}"
    );
    let started = Instant::now();
    let error = conn.headers(HeadersRequest::At { height: 2 }).await.unwrap_err();
    assert_eq!(
        error,
        NetError::Timeout {
            protocol: headers::PROTOCOL,
            timeout: Duration::from_secs(2)
        }
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let error = conn
        .proof(ProofRequest {
            key: b"account/x".to_vec(),
            height: 1,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, NetError::Unsupported { .. }), "{error:?}");
    // None of that costs the connection.
    assert!(conn.is_connected());
}

/// A fake relay that accepts every connection and closes it at once (what a relay that has
/// banned a peer may look like); returns its address and a count of connections.
async fn slamming_relay() -> (Multiaddr, Arc<AtomicUsize>) {
    let mut swarm = libp2p::SwarmBuilder::with_new_identity()
        .with_tokio()
        .with_tcp(tcp::Config::default(), noise::Config::new, yamux::Config::default)
        .unwrap()
        .with_behaviour(|_| libp2p::swarm::dummy::Behaviour)
        .unwrap()
        .build();
    swarm.listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap()).unwrap();
    let peer = *swarm.local_peer_id();
    let addr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
            break address.with(libp2p::multiaddr::Protocol::P2p(peer));
        }
    };
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            if let SwarmEvent::ConnectionEstablished { connection_id, .. } = swarm.select_next_some().await {
                counter.fetch_add(1, Ordering::SeqCst);
                swarm.close_connection(connection_id);
            }
        }
    });
    (addr, connections)
}

#[tokio::test]
async fn a_relay_that_drops_every_connection_is_redialed_with_backoff_not_in_a_loop() {
    init_tracing();
    let (addr, connections) = slamming_relay().await;
    let config = NetConfig {
        min_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(10),
        ..NetConfig::default()
    };
    let conn = RelayConnection::connect_with(vec![addr], config).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // Backoff 250 ms, 500 ms, 1 s, 2 s: the first connection and at most 4 redials in 3 s.
    let seen = connections.load(Ordering::SeqCst);
    assert!((2..=5).contains(&seen), "{seen} connections in 3 s");
    assert_eq!(
        conn.headers(HeadersRequest::Latest).await,
        Err(NetError::Disconnected)
    );
}

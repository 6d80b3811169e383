//! `light_client::net` in headless Chromium (issue 6 "Tests", item 7): connects to a running
//! `medledger-relay --dev` over WebRTC-direct, and over WebSocket as the fallback, fetches the
//! latest header and its validator set and checks the commit, fetches a state proof and
//! checks it against the header's state root, and follows a gossiped head.
//!
//! The relay's addresses come from its discovery document at compile time:
//! `MEDLEDGER_RELAY_WEBRTC` and `MEDLEDGER_RELAY_WS` (each test is skipped, loudly, without
//! its address), and optionally `MEDLEDGER_RELAY_ACCOUNT` (an account that exists, e.g. the
//! document's `storage_node`, so the proof is an inclusion proof). `cargo xtask test` starts
//! the relay and sets them; by hand:
//!
//! ```sh
//! MEDLEDGER_RELAY_WEBRTC=... MEDLEDGER_RELAY_WS=... CHROMEDRIVER=/usr/bin/chromedriver \
//! CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner WASM_BINDGEN_TEST_TIMEOUT=120 \
//! cargo test -p medledger-light-client --target wasm32-unknown-unknown --test browser
//! ```
#![cfg(target_arch = "wasm32")]

use futures::future::{self, Either};
use futures::StreamExt;
use ledger::crypto::PublicKey;
use ledger::state::keys;
use ledger::verify::verify_commit;
use light_client::net::{Multiaddr, RelayConnection};
use protocol::headers::{HeadersRequest, HeadersResponse};
use protocol::proofs::{ProofRequest, ProofResponse};
use protocol::SignedHeader;
use std::pin::pin;
use std::time::Duration;
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

const WEBRTC: Option<&str> = option_env!("MEDLEDGER_RELAY_WEBRTC");
const WS: Option<&str> = option_env!("MEDLEDGER_RELAY_WS");
const ACCOUNT: Option<&str> = option_env!("MEDLEDGER_RELAY_ACCOUNT");

fn skipped(variable: &str) {
    console_log!(
        "SKIPPED: {variable} was not set at compile time; start medledger-relay --dev and pass its \
         address from /.well-known/medledger.json (cargo xtask test does)"
    );
}

async fn within<T>(what: &str, limit: Duration, fut: impl std::future::Future<Output = T>) -> T {
    match future::select(pin!(fut), futures_timer::Delay::new(limit)).await {
        Either::Left((value, _)) => value,
        Either::Right(_) => panic!("timed out after {limit:?}: {what}"),
    }
}

async fn verify_signed(conn: &RelayConnection, signed: &SignedHeader) {
    let height = signed.header.height;
    let validators = match conn
        .headers(HeadersRequest::ValidatorSet { height })
        .await
        .unwrap()
    {
        HeadersResponse::ValidatorSet {
            height: h,
            validators,
        } if h == height => validators,
        other => panic!("expected the validator set at {height}, got {other:?}"),
    };
    let tally = verify_commit(
        &signed.header.chain_id,
        &signed.header,
        &signed.commit,
        &validators,
    )
    .unwrap();
    assert!(tally.signed > 0);
}

/// Connects with `addrs` (in order), then fetches and verifies a header, a proof and a head.
async fn fetch_and_verify(addrs: Vec<Multiaddr>) -> RelayConnection {
    let conn = within(
        "connecting",
        Duration::from_secs(30),
        RelayConnection::connect(addrs),
    )
    .await
    .unwrap();
    assert!(conn.is_connected());
    let mut heads = conn.heads();

    let latest = match conn.headers(HeadersRequest::Latest).await.unwrap() {
        HeadersResponse::Header(signed) => *signed,
        other => panic!("expected a header, got {other:?}"),
    };
    verify_signed(&conn, &latest).await;

    let address = match ACCOUNT {
        Some(hex) => PublicKey::from_hex(hex).unwrap(),
        // No known account: a non-inclusion proof for a key nobody has.
        None => PublicKey([7; 32]),
    };
    let key = keys::account(&address);
    let height = latest.header.height;
    match conn
        .proof(ProofRequest {
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
            assert_eq!(value.is_some(), ACCOUNT.is_some());
            proof
                .verify(&latest.header.state_root, &key, value.as_deref())
                .unwrap();
            assert!(proof
                .verify(&latest.header.tx_root, &key, value.as_deref())
                .is_err());
        }
        other => panic!("expected a value with proof, got {other:?}"),
    }

    // Gossipsub works over the browser link too.
    let head = within("a gossiped head", Duration::from_secs(60), heads.next())
        .await
        .expect("the heads stream ended");
    verify_signed(&conn, &head).await;
    console_log!(
        "verified header {height} and head {} over {:?}",
        head.header.height,
        conn.remote_addr()
    );
    conn
}

#[wasm_bindgen_test]
async fn over_webrtc_direct_a_header_a_proof_and_a_head_verify() {
    let Some(webrtc) = WEBRTC else {
        return skipped("MEDLEDGER_RELAY_WEBRTC");
    };
    // WebRTC first, WebSocket as the fallback: what the dashboard passes.
    let mut addrs = vec![webrtc.parse().unwrap()];
    addrs.extend(WS.map(|ws| ws.parse().unwrap()));
    let conn = fetch_and_verify(addrs).await;
    let remote = conn.remote_addr().unwrap().to_string();
    assert!(remote.contains("/webrtc-direct"), "{remote}");
}

#[wasm_bindgen_test]
async fn over_websocket_after_an_address_the_browser_cannot_dial() {
    let Some(ws) = WS else {
        return skipped("MEDLEDGER_RELAY_WS");
    };
    // A browser has no TCP transport: that address fails at once and the next one is used.
    let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/9".parse().unwrap();
    let conn = fetch_and_verify(vec![tcp, ws.parse().unwrap()]).await;
    let remote = conn.remote_addr().unwrap().to_string();
    assert!(remote.contains("/ws"), "{remote}");
}

//! [`relay::LightClientService`] called directly, and through its protocol messages as bytes,
//! on a live dev chain: everything it serves verifies with the ledger's light-client checks.
//! Also the HTTP discovery document and metrics of the same relay.

use crate::support::{wait_for, DevRelay};
use ledger::state::keys;
use ledger::tx::{Action, MAX_TX_BYTES};
use ledger::verify::verify_commit;
use relay::dev::{PATIENTS, RESEARCHER};
use relay::protocol::headers::{HeadersRequest, HeadersResponse, MAX_RANGE};
use relay::protocol::proofs::{ProofRequest, ProofResponse, MAX_KEY_LEN};
use relay::protocol::txs::{SubmitTx, SubmitTxResponse};
use relay::protocol::{Message, ServiceError};

#[tokio::test]
async fn serves_verifiable_headers_validator_sets_proofs_and_takes_txs() {
    let dev = DevRelay::start().await;
    dev.wait_height(4).await;
    let light = &dev.relay.light;
    let chain_id = dev.relay.chain.chain_id().to_owned();

    // Latest and at-height headers come with commits that verify against their validator set.
    let latest = light.latest().await.unwrap();
    assert!(latest.header.height >= 4);
    let at = light.signed_header(3).await.unwrap();
    assert_eq!(at.header.height, 3);
    let validators = light.validator_set(3).await.unwrap();
    let tally = verify_commit(&chain_id, &at.header, &at.commit, &validators).unwrap();
    assert!(tally.signed > 0, "{tally:?}");

    // A range is consecutive and hash-linked.
    let range = light.header_range(1, 3).await.unwrap();
    assert_eq!(
        range.iter().map(|s| s.header.height).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    for pair in range.windows(2) {
        assert_eq!(pair[1].header.last_block_id, pair[0].header.id());
    }
    // At the head a range stops early rather than fail.
    let head = light.latest().await.unwrap().header.height;
    let tail = light.header_range(head, MAX_RANGE).await.unwrap();
    assert!(!tail.is_empty() && tail[0].header.height == head);

    // Out-of-range and oversized requests fail with typed errors.
    assert!(matches!(
        light.signed_header(head + 1_000).await,
        Err(ServiceError::NotFound { height, .. }) if height == head + 1_000
    ));
    assert!(matches!(
        light.signed_header(0).await,
        Err(ServiceError::NotFound { .. })
    ));
    assert_eq!(
        light.header_range(1, MAX_RANGE + 1).await,
        Err(ServiceError::RangeTooLarge {
            count: MAX_RANGE + 1,
            max: MAX_RANGE
        })
    );
    assert!(matches!(
        light.state_value(vec![0; MAX_KEY_LEN + 1], 3).await,
        Err(ServiceError::KeyTooLarge { .. })
    ));

    // State values come with proofs against the header's state root: inclusion...
    let patient = dev.account(PATIENTS[0]).address();
    let key = keys::account(&patient);
    let (value, proof) = light.state_value(key.clone(), 3).await.unwrap();
    assert!(value.is_some());
    proof
        .verify(&at.header.state_root, &key, value.as_deref())
        .unwrap();
    // ...and non-inclusion.
    let missing = keys::consent(&ledger::crypto::Hash([9; 32]));
    let (value, proof) = light.state_value(missing.clone(), 3).await.unwrap();
    assert_eq!(value, None);
    proof.verify(&at.header.state_root, &missing, None).unwrap();

    // The same answers through the protocol messages, as bytes with their size limits.
    let request = HeadersRequest::from_bytes(&HeadersRequest::At { height: 3 }.to_bytes()).unwrap();
    let response = light.handle_headers(request).await.to_bytes();
    assert_eq!(
        HeadersResponse::from_bytes(&response).unwrap(),
        HeadersResponse::Header(Box::new(at.clone()))
    );
    let request = ProofRequest {
        key: key.clone(),
        height: 3,
    };
    match ProofResponse::from_bytes(&light.handle_proof(request).await.to_bytes()).unwrap() {
        ProofResponse::Value { height, value, proof } => {
            assert_eq!(height, 3);
            proof
                .verify(&at.header.state_root, &key, value.as_deref())
                .unwrap();
        }
        other => panic!("expected a value, got {other:?}"),
    }
    let failed = light
        .handle_headers(HeadersRequest::Range {
            from: 1,
            count: MAX_RANGE + 1,
        })
        .await;
    assert!(matches!(failed, HeadersResponse::Failed(e) if e.is_peer_fault()));

    // Tx submission: accepted txs land; rejected ones say why.
    let researcher = dev.account(RESEARCHER);
    let tx = dev.tx(
        &researcher,
        Action::Transfer {
            to: patient,
            amount: 5,
        },
    );
    let SubmitTxResponse::Accepted { hash } = light.handle_submit(SubmitTx { tx: tx.to_bytes() }).await
    else {
        panic!("the transfer was rejected");
    };
    let node = dev.relay.chain.node().clone();
    wait_for("the submitted tx to commit", || {
        let node = node.clone();
        async move { node.tx_height(&hash).unwrap() }
    })
    .await;
    match light.submit_tx(tx.to_bytes()).await {
        SubmitTxResponse::Rejected { reason } => assert!(reason.contains("nonce"), "{reason}"),
        other => panic!("a replayed tx was accepted: {other:?}"),
    }
    match light.submit_tx(vec![0xff; MAX_TX_BYTES + 1]).await {
        SubmitTxResponse::Rejected { reason } => assert!(!reason.is_empty()),
        other => panic!("an oversized tx was accepted: {other:?}"),
    }

    // HTTP: discovery document and metrics.
    let discovery: serde_json::Value = reqwest::get(dev.url("/.well-known/medledger.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["chain_id"], chain_id);
    assert_eq!(
        discovery["genesis_hash"],
        dev.relay.chain.node().genesis_hash.to_hex()
    );
    assert!(discovery["height"].as_u64().unwrap() >= 4);
    let peer_id = dev.relay.network.peer_id;
    let multiaddrs: Vec<String> = serde_json::from_value(discovery["multiaddrs"].clone()).unwrap();
    assert_eq!(multiaddrs.len(), 2, "{multiaddrs:?}");
    assert!(
        multiaddrs.iter().any(|a| a.contains("/udp/")
            && a.contains("/webrtc-direct/certhash/")
            && a.ends_with(&format!("/p2p/{peer_id}"))),
        "{multiaddrs:?}"
    );
    assert!(
        multiaddrs
            .iter()
            .any(|a| a.ends_with(&format!("/ws/p2p/{peer_id}"))),
        "{multiaddrs:?}"
    );
    assert_eq!(
        discovery["storage_node"],
        dev.relay.blobs.relay_address().to_hex()
    );
    let metrics = reqwest::get(dev.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("medledger_height{"), "{metrics}");
    assert!(metrics.contains("medledger_relay_head_height "), "{metrics}");
    assert_eq!(metrics.matches("# EOF").count(), 1);
    let page = reqwest::get(dev.url("/")).await.unwrap();
    assert_eq!(page.status(), 200);
    let status: serde_json::Value = reqwest::get(dev.url("/node/status"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["chain_id"], chain_id);
}

//! The validator network as separate processes on loopback (issue 4 tests).

use e2e::Localnet;
use ledger::crypto::{AccountKeys, SigningKey};
use ledger::tx::{Action, Tx, TxBody, MAX_TX_BYTES};
use ledger::types::Role;
use ledger::verify::{verify_commit, verify_sequential, SignatureCheck, TrustOptions, TrustedBlock, Verdict};
use ledger::{Hash, Validator};
use std::time::Duration;

const CHAIN: &str = "medledger-e2e";
const WAIT: Duration = Duration::from_secs(120);

fn fresh_account(seed: u64) -> AccountKeys {
    let mut master: [u8; 32] = rand::random();
    master[..8].copy_from_slice(&seed.to_le_bytes());
    AccountKeys::from_master_seed(master)
}

fn register_tx(keys: &AccountKeys) -> Vec<u8> {
    Tx::new(
        keys,
        CHAIN,
        0,
        Action::RegisterAccount {
            role: Role::Patient,
            encryption_key: keys.encryption_key(),
        },
    )
    .to_bytes()
}

/// Checks that nodes agree on every block up to `height` and that every commit passes the
/// ledger's light-client predicate against the stored validator set.
async fn assert_agreement(net: &Localnet, nodes: &[usize], height: u64) {
    for h in 1..=height {
        let first = net
            .header(nodes[0], h)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("node{} lacks {h}", nodes[0]));
        for &n in &nodes[1..] {
            let other = net
                .header(n, h)
                .await
                .unwrap()
                .unwrap_or_else(|| panic!("node{n} lacks {h}"));
            assert_eq!(
                other.id(),
                first.id(),
                "block id differs at {h} between node{} and node{n}",
                nodes[0]
            );
            assert_eq!(other.state_root, first.state_root);
        }
        for &n in nodes {
            let commit = net.commit(n, h).await.unwrap().unwrap();
            let set = net.validators(n, h).await.unwrap().unwrap();
            verify_commit(CHAIN, &first, &commit, &set).unwrap_or_else(|e| panic!("node{n} commit {h}: {e}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn four_validators_agree_on_every_block_to_height_20() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("agree", 4, 0).unwrap();
    net.start_all_validators(4).unwrap();
    // A few txs so blocks are not all empty.
    for i in 0..10 {
        net.submit(i % 4, register_tx(&fresh_account(i as u64)))
            .await
            .unwrap()
            .unwrap();
    }
    for n in 0..4 {
        net.wait_height(n, 20, WAIT).await.unwrap();
    }
    assert_agreement(&net, &[0, 1, 2, 3], 20).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_txs_are_rejected_with_their_reason_and_never_committed() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("invalid", 4, 0).unwrap();
    net.start_all_validators(4).unwrap();
    net.wait_height(0, 1, WAIT).await.unwrap();
    let keys = fresh_account(1);
    let valid = register_tx(&keys);
    let good = net.submit(0, valid.clone()).await.unwrap().unwrap();

    let mut bad_sig: Tx = ledger::codec::decode(&register_tx(&fresh_account(2))).unwrap();
    bad_sig.signature.0[5] ^= 1;
    let wrong_chain = TxBody {
        chain_id: "other-chain".into(),
        signer: keys.address(),
        nonce: 1,
        action: Action::Transfer {
            to: keys.address(),
            amount: 1,
        },
    }
    .sign(&keys.signing)
    .to_bytes();
    let oversized = vec![0u8; MAX_TX_BYTES + 10];
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("bad signature", bad_sig.to_bytes(), "signature"),
        ("wrong chain", wrong_chain, "chain"),
        ("oversized", oversized, "exceeds"),
        ("garbage", vec![1, 2, 3], "malformed"),
    ];
    for (what, bytes, expected) in cases {
        let reason = net.submit(1, bytes).await.unwrap().expect_err(what);
        assert!(reason.to_lowercase().contains(expected), "{what}: {reason}");
    }
    // Replay: once committed, the same tx (nonce 0 again) is refused as stale.
    let start = net.status(0).await.unwrap().height;
    let committed = loop {
        if let Some(h) = net.tx_height(0, &good).await.unwrap() {
            break h;
        }
        net.wait_height(0, start + 1, WAIT).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(committed >= 1);
    let reason = net.submit(2, valid).await.unwrap().expect_err("replay");
    assert!(
        reason.contains("nonce") || reason.contains("uplicate"),
        "replay: {reason}"
    );
    // None of the bad txs is in any block.
    let head = net.status(0).await.unwrap().height;
    net.wait_height(0, head + 3, WAIT).await.unwrap();
    for h in 1..=head + 3 {
        let block = net.block(0, h).await.unwrap().unwrap();
        for tx in &block.txs {
            let decoded: Tx = ledger::codec::decode(tx).unwrap();
            assert!(decoded.verify_signature().is_ok());
            assert_eq!(decoded.body.chain_id, CHAIN);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_validator_catches_up_and_no_acknowledged_tx_is_lost() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("kill1", 4, 0).unwrap();
    net.start_all_validators(4).unwrap();
    net.wait_height(0, 2, WAIT).await.unwrap();
    let mut acknowledged = Vec::new();
    let mut seed = 100;
    let mut load = |net_n: usize| {
        seed += 1;
        (net_n, register_tx(&fresh_account(seed)))
    };
    for round in 0..3 {
        for _ in 0..20 {
            let (n, tx) = load(round % 3);
            if let Ok(hash) = net.submit(n, tx).await.unwrap() {
                acknowledged.push(hash);
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Wait until every submitted tx is committed, as seen by node3, then crash node3.
    wait_all_committed(&net, 3, &acknowledged).await;
    let before = net.status(3).await.unwrap().height;
    net.kill9(3);
    for _ in 0..20 {
        let (n, tx) = load(0);
        if let Ok(hash) = net.submit(n, tx).await.unwrap() {
            acknowledged.push(hash);
        }
    }
    // The chain goes on with 3 of 4.
    net.wait_height(0, before + 5, WAIT).await.unwrap();
    wait_all_committed(&net, 0, &acknowledged).await;
    net.start(3).unwrap();
    let head = net.status(0).await.unwrap().height;
    net.wait_height(3, head, WAIT).await.unwrap();
    wait_all_committed(&net, 3, &acknowledged).await;
    assert_agreement(&net, &[0, 3], head).await;
}

async fn wait_all_committed(net: &Localnet, node: usize, hashes: &[Hash]) {
    let deadline = std::time::Instant::now() + WAIT;
    for hash in hashes {
        loop {
            if net.tx_height(node, hash).await.ok().flatten().is_some() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "tx {hash:?} never committed on node{node}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_of_four_down_halts_without_fork_and_resumes() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("halt", 4, 0).unwrap();
    net.start_all_validators(4).unwrap();
    net.wait_height(0, 3, WAIT).await.unwrap();
    net.kill9(2);
    net.kill9(3);
    // Let in-flight heights settle, then the height must stop moving.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stalled = net.status(0).await.unwrap().height;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let still = net.status(0).await.unwrap().height;
    assert!(
        still <= stalled + 1,
        "chain advanced from {stalled} to {still} with 2 of 4 validators down"
    );
    assert!(
        net.status(1).await.unwrap().height.abs_diff(still) <= 1,
        "node1 and node0 disagree on the halt height"
    );
    net.start(2).unwrap();
    net.wait_height(0, still + 3, WAIT).await.unwrap();
    net.wait_height(2, still + 3, WAIT).await.unwrap();
    assert_agreement(&net, &[0, 1, 2], still + 3).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fifth_validator_joins_by_governance_and_signs_later_commits() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("join", 4, 1).unwrap();
    // With no target block time a height finalizes on the first 2/3+ precommits, and on a
    // loaded 2-core machine the newcomer's can be the fifth to arrive at every height (seen in
    // CI). A minimum block time lets `Finalized` collect the late precommits, as an operator's
    // chain would.
    net.set_block_time_ms(300).unwrap();
    net.start_all_validators(4).unwrap();
    net.start(4).unwrap(); // runs as a validator, but holds no power yet
    net.wait_height(0, 2, WAIT).await.unwrap();
    let newcomer = e2e_home_key(&net, 4);
    let governance = net.layout.governance().unwrap();
    let tx = TxBody {
        chain_id: CHAIN.into(),
        signer: governance.public_key(),
        nonce: 0,
        action: Action::UpdateValidator {
            validator: Validator {
                address: newcomer.public_key(),
                power: 10,
            },
        },
    }
    .sign(&governance);
    let hash = net.submit(0, tx.to_bytes()).await.unwrap().unwrap();
    wait_all_committed(&net, 0, &[hash]).await;
    let change = net.tx_height(0, &hash).await.unwrap().unwrap();
    // The set changes two heights later; give the newcomer a few blocks to sign.
    net.wait_height(0, change + 8, WAIT).await.unwrap();
    net.wait_height(4, change + 8, WAIT).await.unwrap();
    let mut signed_by_newcomer = 0;
    for h in change + 2..=change + 8 {
        let set = net.validators(0, h).await.unwrap().unwrap();
        assert_eq!(set.len(), 5, "set at {h}");
        let commit = net.commit(0, h).await.unwrap().unwrap();
        signed_by_newcomer += commit
            .signatures
            .iter()
            .filter(|s| s.validator == newcomer.public_key())
            .count();
    }
    assert!(
        signed_by_newcomer > 0,
        "the fifth validator never signed a commit"
    );
    // A light client walks across the change with the sequential rule.
    let options = TrustOptions::default();
    let first = net.header(0, 1).await.unwrap().unwrap();
    let mut trusted = TrustedBlock {
        header: first,
        next_validators: net.validators(0, 2).await.unwrap().unwrap(),
    };
    for h in 2..=change + 8 {
        let header = net.header(0, h).await.unwrap().unwrap();
        let commit = net.commit(0, h).await.unwrap().unwrap();
        let set = net.validators(0, h).await.unwrap().unwrap();
        let now = header.time + 1_000;
        let verdict = verify_sequential(
            &trusted,
            &header,
            &commit,
            &set,
            &options,
            now,
            SignatureCheck::All,
        );
        assert_eq!(verdict, Verdict::Success, "height {h}");
        trusted = TrustedBlock {
            header,
            next_validators: net.validators(0, h + 1).await.unwrap().unwrap(),
        };
    }
    assert_agreement(&net, &[0, 4], change + 8).await;
}

fn e2e_home_key(net: &Localnet, index: usize) -> SigningKey {
    node::config::Home(net.layout.homes[index].clone())
        .load_key()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_follower_syncs_verifies_and_serves_state_proofs_and_metrics() {
    let _network = e2e::one_network_at_a_time().await;
    let mut net = Localnet::new("follower", 4, 1).unwrap();
    net.start_all_validators(4).unwrap();
    let keys = fresh_account(7);
    let hash = net.submit(0, register_tx(&keys)).await.unwrap().unwrap();
    wait_all_committed(&net, 0, &[hash]).await;
    net.wait_height(0, 8, WAIT).await.unwrap();
    // Joins late: everything before now comes through value sync.
    net.start_follower(4).unwrap();
    let head = net.status(0).await.unwrap().height;
    net.wait_height(4, head + 2, WAIT).await.unwrap();
    assert_agreement(&net, &[0, 4], head + 2).await;
    // The follower proves the registered account (inclusion) and a stranger (non-inclusion).
    let h = net.status(4).await.unwrap().height;
    let header = net.header(4, h).await.unwrap().unwrap();
    for (address, present) in [(keys.address(), true), (fresh_account(8).address(), false)] {
        let key = ledger::state::keys::account(&address);
        let url = format!("{}/proof/{h}?key={}", net.rpc(4), hex_encode(&key));
        let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        let (value, proof): (Option<Vec<u8>>, ledger::state::StateProof) =
            ledger::codec::decode(&bytes).unwrap();
        assert_eq!(value.is_some(), present);
        proof.verify(&header.state_root, &key, value.as_deref()).unwrap();
    }
    let metrics = reqwest::get(format!("{}/metrics", net.rpc(0)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["medledger_height", "medledger_txs", "medledger_mempool_size"] {
        assert!(metrics.contains(name), "/metrics lacks {name}");
    }
    // Node 0 has committed blocks (and checked others' proposals): each step was timed.
    for name in [
        "medledger_block_check_seconds_count",
        "medledger_block_store_write_seconds_count",
        "medledger_block_store_sync_seconds_count",
    ] {
        let count: f64 = metrics
            .lines()
            .find(|line| line.starts_with(name))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("/metrics lacks {name}"));
        assert!(count > 0.0, "{name} is {count}");
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

//! The light client against a relay process following a 4-validator localnet (issues 5
//! and 6): sync from genesis over TCP with a WebSocket witness, skip across a long chain,
//! verified proofs, a tx that lands (proved by inclusion against a verified tx_root), a
//! validator-set change by governance walked across by a fresh client, gossiped heads, and a
//! resume from the stored trust without going back to genesis.

use e2e::relay::{RelayMode, RelayProcess};
use e2e::Localnet;
use ledger::crypto::AccountKeys;
use ledger::genesis::GenesisAccount;
use ledger::tx::Action;
use ledger::types::Role;
use ledger::verify::TrustOptions;
use ledger::Validator;
use light_client::net::{Multiaddr, RelayConnection};
use light_client::store::TrustStore;
use light_client::{system_clock, FileStore, LightClient, LightClientError, TrustRoot, TrustSnapshot};
use std::time::{Duration, Instant};

fn account(seed: u8) -> AccountKeys {
    AccountKeys::from_master_seed([seed; 32])
}

fn funded(keys: &AccountKeys, balance: u64) -> GenesisAccount {
    GenesisAccount {
        address: keys.address(),
        role: Role::Patient,
        encryption_key: keys.encryption_key(),
        balance,
        admitted: false,
        attested_by: None,
    }
}

/// Waits until the relay's follower is within a few blocks of the validators.
async fn wait_caught_up(net: &Localnet, relay: &RelayProcess) {
    let started = Instant::now();
    loop {
        let chain = net.status(0).await.map(|s| s.height).unwrap_or(0);
        let followed = relay.discovery().await.map(|d| d.height).unwrap_or(0);
        if followed + 5 >= chain && followed > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "relay stuck at {followed}, chain at {chain}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the relay serves a head above `height`.
async fn wait_relay_above(relay: &RelayProcess, height: u64) {
    let started = Instant::now();
    loop {
        let followed = relay.discovery().await.map(|d| d.height).unwrap_or(0);
        if followed > height {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "relay stuck at {followed}, waiting for a block above {height}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

async fn connect(addr: &str) -> RelayConnection {
    let addr: Multiaddr = addr.parse().expect("relay multiaddr");
    RelayConnection::connect(vec![addr])
        .await
        .expect("connecting to the relay")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_light_client_follows_a_relay_of_a_four_validator_localnet() {
    let _network = e2e::one_network_at_a_time().await;
    let (payer, payee) = (account(11), account(12));
    let accounts = vec![funded(&payer, 10_000), funded(&payee, 0)];
    let mut net = Localnet::with_accounts("light-client", 4, 1, accounts).unwrap();
    net.set_block_time_ms(100).unwrap();
    // Build the relay before the chain starts, so the follower does not begin far behind.
    e2e::relay::relay_binary();
    net.start_all_validators(4).unwrap();
    let relay_home = net.layout.homes[4].clone();
    let (relay, discovery) = RelayProcess::start(RelayMode::Follow(relay_home), &net.dir.join("relay"))
        .await
        .unwrap();
    net.wait_height(0, 3, Duration::from_secs(120)).await.unwrap();
    wait_caught_up(&net, &relay).await;
    // "Caught up" allows a few blocks of lag: the first sync needs the relay at height 3 too.
    wait_relay_above(&relay, 2).await;
    let genesis = relay.genesis(&discovery).await.unwrap();
    let root = TrustRoot::Genesis(Box::new(genesis.clone()));

    // Primary over TCP, witness over WebSocket.
    let primary = connect(&relay.tcp_addr(&discovery)).await;
    let witness = connect(&discovery.ws).await;
    let mut client = LightClient::new(
        root.clone(),
        TrustOptions::default(),
        vec![primary.clone(), witness],
        system_clock(),
    );
    let head = client.sync().await.unwrap();
    assert!(head.height() >= 3);
    let status = client.status();
    let summary = status.head.clone().unwrap();
    assert_eq!(summary.validators, 4);
    assert!(summary.signed_power * 3 > summary.total_power * 2);
    assert!(status.fork.is_none() && status.relays.iter().all(|r| r.faulty.is_none()));

    // Verified state: the genesis balance, and a proven absence.
    assert_eq!(client.balance(&payer.address()).await.unwrap().value, 10_000);
    assert_eq!(client.account(&account(99).address()).await.unwrap().value, None);

    // A tx signed here lands in a block whose header the client verified.
    let transfer = Action::Transfer {
        to: payee.address(),
        amount: 1_234,
    };
    let included = client.submit(&payer.signing, transfer, 60_000).await.unwrap();
    assert!(client.trusted(included.height).is_some());
    client.sync().await.unwrap();
    assert_eq!(client.balance(&payee.address()).await.unwrap().value, 1_234);

    // Gossiped heads verify one by one (a head the client already passed is Stale).
    let mut heads = primary.heads();
    let mut verified_from_gossip = 0;
    let started = Instant::now();
    while verified_from_gossip < 3 && started.elapsed() < Duration::from_secs(60) {
        let next = tokio::time::timeout(Duration::from_secs(10), futures::StreamExt::next(&mut heads)).await;
        let Ok(Some(head)) = next else { continue };
        match client.on_head(head).await {
            Ok(_) => verified_from_gossip += 1,
            Err(LightClientError::Stale { .. }) => {}
            Err(other) => panic!("a gossiped head failed: {other}"),
        }
    }
    assert_eq!(verified_from_gossip, 3);

    // Governance adds a small fifth validator (it never runs: the four keep > 2/3).
    let governance = net.layout.governance().unwrap();
    let newcomer = ledger::crypto::SigningKey::from_seed([77; 32]);
    let validator = Validator {
        address: newcomer.public_key(),
        power: 1,
    };
    let change = client
        .submit(&governance, Action::UpdateValidator { validator }, 60_000)
        .await
        .unwrap();
    net.wait_height(0, change.height + 3, Duration::from_secs(60))
        .await
        .unwrap();
    let after = client.sync().await.unwrap();
    assert_eq!(
        after.validators.len(),
        5,
        "the set at {} should include the newcomer",
        after.height()
    );

    // Let the chain grow, then a fresh client skips from genesis across the change.
    let target = after.height() + 200;
    net.wait_height(0, target, Duration::from_secs(180))
        .await
        .unwrap();
    // The fresh client can only reach what the relay has followed (it may lag a few blocks).
    wait_relay_above(&relay, target).await;
    let fresh_conn = connect(&relay.tcp_addr(&discovery)).await;
    let mut fresh = LightClient::new(
        root.clone(),
        TrustOptions::default(),
        vec![fresh_conn],
        system_clock(),
    );
    let started = Instant::now();
    let head = fresh.sync().await.unwrap();
    let took = started.elapsed();
    assert!(head.height() >= target);
    assert_eq!(head.validators.len(), 5);
    // Block 1, the head and at most a few bisection pivots, not every block.
    assert!(
        fresh.trusted_count() <= 6,
        "trusted {} headers to skip {} blocks",
        fresh.trusted_count(),
        head.height()
    );
    println!(
        "skipped 1 → {} in {took:?} with {} verified headers",
        head.height(),
        fresh.trusted_count()
    );

    // The trust survives a restart: a new client resumes from the file, not from genesis.
    let store = FileStore::new(net.dir.join("light-client.trust"));
    store.save(&fresh.snapshot().to_bytes()).await.unwrap();
    let bytes = store.load().await.unwrap().unwrap();
    let resumed_conn = connect(&discovery.ws).await;
    let mut resumed = LightClient::new(root, TrustOptions::default(), vec![resumed_conn], system_clock());
    let snapshot = TrustSnapshot::from_bytes(&bytes).unwrap();
    let stored = snapshot.headers.len();
    // Restoring needs no relay: the head is back before any request.
    resumed.restore(snapshot).unwrap();
    assert_eq!(resumed.head().unwrap().height(), head.height());
    // "Caught up" allows the relay a few blocks of lag, so it may still be at the head the
    // fresh client saw: wait for a block past it before asking for one.
    wait_relay_above(&relay, head.height()).await;
    let later = resumed.sync().await.unwrap();
    assert!(later.height() > head.height());
    // One new header on top of the stored ones: no walk from genesis.
    assert_eq!(resumed.trusted_count(), stored + 1);
    drop(relay);
}

//! Blocks as a whole: atomicity, determinism, header binding, limits.

use crate::support::World;
use ledger::exec::{apply_block, BlockError, MAX_BLOCK_TXS};
use ledger::merkle;
use ledger::state::StateRead;
use ledger::test_utils::{Actor, TestChain};
use ledger::tx::Action;
use ledger::types::Role;
use ledger::verify::verify_commit;
use ledger::TxError;

#[test]
fn a_block_with_one_invalid_tx_is_rejected_whole_and_changes_nothing() {
    let mut chain = TestChain::new(1);
    let mut alice = chain.register(1, Role::Patient);
    let bob = chain.register(2, Role::Patient);
    chain.fund(&alice, 10);
    let root_before = chain.state.root().unwrap();
    let height_before = chain.height;
    let good = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 5,
    });
    let bad = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 50,
    });
    let err = chain.block(&[good.clone(), bad]).unwrap_err();
    assert_eq!(
        err,
        BlockError::Tx {
            index: 1,
            error: TxError::InsufficientBalance {
                account: alice.address(),
                balance: 5,
                needed: 50
            }
        }
    );
    assert_eq!(chain.state.root().unwrap(), root_before);
    assert_eq!(chain.height, height_before);
    chain.block(&[good]).unwrap();
}

#[test]
fn execution_is_deterministic_across_replicas() {
    let build = || {
        let mut w = World::new();
        for _ in 0..5 {
            w.commit_glucose();
        }
        w.chain
    };
    let (a, b) = (build(), build());
    assert_eq!(a.blocks.len(), b.blocks.len());
    for (x, y) in a.blocks.iter().zip(&b.blocks) {
        assert_eq!(x.header, y.header);
        assert_eq!(x.header.id(), y.header.id());
    }
}

#[test]
fn every_block_header_binds_its_txs_state_and_validators_and_its_commit_verifies() {
    let mut w = World::new();
    w.commit_glucose();
    let chain = &w.chain;
    let mut last = ledger::Hash::ZERO;
    for block in &chain.blocks {
        assert_eq!(block.header.last_block_id, last);
        assert_eq!(block.header.validators_hash, block.validators.hash());
        assert_eq!(block.header.next_validators_hash, block.next_validators.hash());
        verify_commit(
            &chain.genesis.chain_id,
            &block.header,
            &block.commit,
            &block.validators,
        )
        .unwrap();
        last = block.header.id();
    }
    assert_eq!(
        chain.blocks.last().unwrap().header.state_root,
        chain.state.root().unwrap()
    );
}

#[test]
fn tx_root_commits_to_the_block_txs_with_inclusion_proofs() {
    let mut chain = TestChain::new(1);
    let mut alice = chain.register(1, Role::Patient);
    let bob = chain.register(2, Role::Patient);
    chain.fund(&alice, 100);
    let txs: Vec<_> = (0..7)
        .map(|_| {
            alice.tx(Action::Transfer {
                to: bob.address(),
                amount: 1,
            })
        })
        .collect();
    let block = chain.block(&txs).unwrap();
    let bytes: Vec<Vec<u8>> = txs.iter().map(|t| t.to_bytes()).collect();
    assert_eq!(block.header.tx_root, merkle::tx_root(&bytes));
    for (i, tx) in bytes.iter().enumerate() {
        merkle::prove_inclusion(&bytes, i)
            .unwrap()
            .verify(&block.header.tx_root, tx)
            .unwrap();
    }
}

#[test]
fn block_limits_and_malformed_bytes_are_typed_errors() {
    let chain = TestChain::new(1);
    let ctx = chain.ctx();
    let too_many = vec![vec![0u8]; MAX_BLOCK_TXS + 1];
    assert_eq!(
        apply_block(&chain.state, &ctx, &too_many),
        Err(BlockError::TooManyTxs {
            count: MAX_BLOCK_TXS + 1,
            limit: MAX_BLOCK_TXS
        })
    );
    assert!(matches!(
        apply_block(&chain.state, &ctx, &[vec![1, 2, 3]]),
        Err(BlockError::Tx {
            index: 0,
            error: TxError::Malformed(_)
        })
    ));
    let huge = vec![0u8; ledger::tx::MAX_TX_BYTES + 1];
    assert!(matches!(
        apply_block(&chain.state, &ctx, &[huge]),
        Err(BlockError::Tx {
            index: 0,
            error: TxError::TooLarge { .. }
        })
    ));
    // A bad signature in the batch is pinned to its tx.
    let alice = Actor::from_seed(1);
    let mut tx = alice.tx_at_current_nonce(Action::RegisterAccount {
        role: Role::Patient,
        encryption_key: alice.keys.encryption_key(),
    });
    tx.signature.0[0] ^= 1;
    let ok = Actor::from_seed(2).tx_at_current_nonce(Action::RegisterAccount {
        role: Role::Patient,
        encryption_key: alice.keys.encryption_key(),
    });
    assert!(matches!(
        apply_block(&chain.state, &ctx, &[ok.to_bytes(), tx.to_bytes()]),
        Err(BlockError::Tx {
            index: 1,
            error: TxError::BadSignature(_)
        })
    ));
    // Nothing was written: the state still has no account for either.
    assert!(chain
        .state
        .get(&ledger::state::keys::account(&alice.address()))
        .is_none());
}

#[test]
fn only_the_signatures_a_node_has_not_checked_are_verified_again() {
    use ledger::exec::apply_block_verified_in_part;
    let mut chain = TestChain::new(1);
    let mut alice = chain.register(1, Role::Patient);
    let bob = chain.register(2, Role::Patient);
    chain.fund(&alice, 10);
    let good = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 1,
    });
    let mut forged = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 1,
    });
    forged.signature = good.signature;
    let txs = vec![good.to_bytes(), forged.to_bytes()];
    let ctx = chain.ctx();
    // Unchecked, the forged signature fails the block and is named by its index...
    for checked in [|_: usize| false, |i: usize| i == 0] {
        let err = apply_block_verified_in_part(&chain.state, &ctx, &txs, checked).unwrap_err();
        assert!(
            matches!(
                err,
                BlockError::Tx {
                    index: 1,
                    error: TxError::BadSignature(_)
                }
            ),
            "{err:?}"
        );
    }
    assert_eq!(
        apply_block(&chain.state, &ctx, &txs).unwrap_err(),
        apply_block_verified_in_part(&chain.state, &ctx, &txs, |_| false).unwrap_err()
    );
    // ...and a tx the caller vouches for is not checked again: only the node's own mempool
    // may vouch (the node passes exactly the txs it admitted).
    assert!(apply_block_verified_in_part(&chain.state, &ctx, &txs, |_| true).is_ok());
}

#[test]
fn batch_admission_checks_give_each_tx_the_verdict_of_a_single_check() {
    use ledger::exec::{check_tx_stateless, check_txs_stateless};
    let chain = TestChain::new(1);
    let register = |seed: u64| {
        let actor = Actor::from_seed(seed);
        actor.tx_at_current_nonce(Action::RegisterAccount {
            role: Role::Patient,
            encryption_key: actor.keys.encryption_key(),
        })
    };
    let good: Vec<Vec<u8>> = (1..=20).map(|seed| register(seed).to_bytes()).collect();
    let mut forged = register(21);
    forged.signature.0[5] ^= 1;
    let mut other_chain = register(22);
    other_chain.body.chain_id = "another-chain".into();
    let mut borrowed = register(23);
    borrowed.signature = register(24).signature;
    // Signed well by its sender, but carrying a reader's request with a forged signature: a
    // tx's check covers every signature in it, in the batch too.
    let forged_request = {
        let (sender, reader) = (Actor::from_seed(25), Actor::from_seed(26));
        let mut request = ledger::tx::AccessRequest {
            chain_id: chain.ctx().chain_id,
            reader: reader.address(),
            commitment: ledger::Hash([7; 32]),
            cid: ledger::types::Cid::of(b"blob"),
            purpose: ledger::types::Purpose::Treatment,
            time: 1,
            nonce: 1,
        }
        .sign(&reader.keys.signing);
        request.signature.0[9] ^= 1;
        sender.tx_at_current_nonce(Action::RecordAccess { request })
    };
    let bad = [
        forged.to_bytes(),
        other_chain.to_bytes(),
        borrowed.to_bytes(),
        forged_request.to_bytes(),
        vec![0xff; 7],
        vec![0u8; ledger::tx::MAX_TX_BYTES + 1],
    ];
    let chain_id = chain.ctx().chain_id;
    // All good (one batch), all bad, and the bad ones spread among the good.
    let mut mixed = good.clone();
    for (i, tx) in bad.iter().enumerate() {
        mixed.insert(i * 4 + 1, tx.clone());
    }
    assert!(matches!(
        check_tx_stateless(&chain_id, &forged_request.to_bytes()),
        Err(TxError::BadSignature(_))
    ));
    for txs in [good.clone(), bad.to_vec(), mixed, vec![]] {
        let refs: Vec<&[u8]> = txs.iter().map(Vec::as_slice).collect();
        let batch = check_txs_stateless(&chain_id, &refs);
        assert_eq!(batch.len(), txs.len());
        for (tx, verdict) in txs.iter().zip(batch) {
            assert_eq!(verdict, check_tx_stateless(&chain_id, tx));
        }
    }
    let refs: Vec<&[u8]> = good.iter().map(Vec::as_slice).collect();
    assert!(check_txs_stateless(&chain_id, &refs).iter().all(Result::is_ok));
}

//! `verify_sequential`: the header right after a trusted one.

use super::*;

#[test]
fn sequential_verification_accepts_each_of_20_blocks_from_its_parent() {
    let chain = chain_of(4, 20);
    for pair in chain.blocks.windows(2) {
        assert_eq!(
            sequential(&pair[0], &pair[1], soon_after(&pair[1].header)),
            Verdict::Success
        );
    }
}

#[test]
fn sequential_with_until_threshold_accepts_the_next_block() {
    let chain = chain_of(4, 3);
    let (one, two) = (at(&chain, 1), at(&chain, 2));
    let verdict = verify_sequential(
        &trusted(one),
        &two.header,
        &two.commit,
        &two.validators,
        &TrustOptions::default(),
        soon_after(&two.header),
        UNTIL_THRESHOLD,
    );
    assert_eq!(verdict, Verdict::Success);
}

#[test]
fn sequential_refuses_a_gap_as_not_adjacent() {
    let chain = chain_of(4, 3);
    let (one, three) = (at(&chain, 1), at(&chain, 3));
    assert_eq!(
        sequential(one, three, soon_after(&three.header)),
        Verdict::Invalid(VerifyError::NotAdjacent {
            trusted_height: 1,
            untrusted_height: 3
        })
    );
}

#[test]
fn sequential_refuses_an_older_header_as_non_increasing_height() {
    let chain = chain_of(4, 3);
    let (two, three) = (at(&chain, 2), at(&chain, 3));
    assert_eq!(
        sequential(three, two, soon_after(&three.header)),
        Verdict::Invalid(VerifyError::NonIncreasingHeight { got: 2, expected: 4 })
    );
}

#[test]
fn sequential_refuses_the_child_of_a_sibling_as_last_block_id_mismatch() {
    // Same genesis and validators, different tx at height 2: a fork. Its block 3 is validly
    // signed but does not descend from the block 2 we trust.
    let mut main = chain_of(4, 1);
    let mut fork = chain_of(4, 1);
    assert_eq!(at(&main, 1).header, at(&fork, 1).header);
    main.register(10, Role::Patient);
    fork.register(11, Role::Patient);
    extend(&mut fork, 3);
    let (ours, theirs) = (at(&main, 2), at(&fork, 3));
    assert_eq!(
        sequential(ours, theirs, soon_after(&theirs.header)),
        Verdict::Invalid(VerifyError::LastBlockIdMismatch {
            expected: ours.header.id(),
            got: at(&fork, 2).header.id()
        })
    );
}

#[test]
fn sequential_accepts_both_sides_of_an_equivocation_which_is_fork_evidence() {
    // Two different blocks at height 2, each signed by the same validators, each a valid
    // child of block 1: no single-source check can tell. This is why the light client
    // cross-checks several relays (DESIGN §6) and keeps such pairs as evidence.
    let mut main = chain_of(4, 1);
    let mut fork = chain_of(4, 1);
    main.register(10, Role::Patient);
    fork.register(11, Role::Patient);
    let (one, ours, theirs) = (at(&main, 1), at(&main, 2), at(&fork, 2));
    assert_ne!(ours.header.id(), theirs.header.id());
    assert_eq!(sequential(one, ours, soon_after(&ours.header)), Verdict::Success);
    assert_eq!(
        sequential(one, theirs, soon_after(&theirs.header)),
        Verdict::Success
    );
}

#[test]
fn sequential_refuses_a_header_signed_by_a_set_the_trusted_header_did_not_announce() {
    let chain = chain_of(4, 2);
    let one = at(&chain, 1);
    let attackers = outsider_keys(4);
    let fake = forged(&at(&chain, 2).header, &attackers);
    assert_eq!(fake.header.last_block_id, one.header.id());
    assert_eq!(
        sequential(one, &fake, soon_after(&fake.header)),
        Verdict::Invalid(VerifyError::NextValidatorsMismatch {
            trusted_next_validators_hash: one.header.next_validators_hash,
            untrusted_validators_hash: set_of(&attackers, 10).hash(),
        })
    );
}

#[test]
fn sequential_refuses_a_header_no_later_than_its_parent_as_non_monotonic_time() {
    let chain = chain_of(4, 2);
    let one = at(&chain, 1);
    let mut header = at(&chain, 2).header.clone();
    header.time = one.header.time;
    let block = SignedBlock {
        commit: commit_of(&chain, &header),
        header,
        ..at(&chain, 2).clone()
    };
    assert_eq!(
        sequential(one, &block, soon_after(&one.header)),
        Verdict::Invalid(VerifyError::NonMonotonicTime {
            untrusted_time: one.header.time,
            trusted_time: one.header.time
        })
    );
}

#[test]
fn sequential_accepts_a_header_at_the_clock_drift_limit_and_refuses_one_past_it() {
    let mut chain = chain_of(4, 1);
    chain.advance_time(60_000);
    extend(&mut chain, 2);
    let (one, two) = (at(&chain, 1), at(&chain, 2));
    let max_drift_ms = TrustOptions::default().max_clock_drift_ms;
    let header_time = two.header.time;
    assert_eq!(sequential(one, two, header_time - max_drift_ms), Verdict::Success);
    let now = header_time - max_drift_ms - 1;
    assert_eq!(
        sequential(one, two, now),
        Verdict::Invalid(VerifyError::HeaderFromFuture {
            header_time,
            now,
            max_drift_ms
        })
    );
}

#[test]
fn sequential_accepts_until_the_trusting_period_ends_and_refuses_from_then_on() {
    let chain = chain_of(4, 2);
    let (one, two) = (at(&chain, 1), at(&chain, 2));
    let trusted_time = one.header.time;
    let expires_at = trusted_time + TrustOptions::default().trusting_period_ms;
    assert_eq!(sequential(one, two, expires_at - 1), Verdict::Success);
    assert_eq!(
        sequential(one, two, expires_at),
        Verdict::Invalid(VerifyError::TrustExpired {
            trusted_time,
            expires_at,
            now: expires_at
        })
    );
}

#[test]
fn sequential_refuses_a_header_of_another_chain_id() {
    let chain = chain_of(4, 2);
    let one = at(&chain, 1);
    let mut header = at(&chain, 2).header.clone();
    header.chain_id = "medledger-other".into();
    let block = SignedBlock {
        commit: commit_of(&chain, &header),
        header,
        ..at(&chain, 2).clone()
    };
    assert_eq!(
        sequential(one, &block, soon_after(&block.header)),
        Verdict::Invalid(VerifyError::ChainIdMismatch {
            expected: TEST_CHAIN_ID.into(),
            got: "medledger-other".into()
        })
    );
}

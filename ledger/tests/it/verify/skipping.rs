//! `verify_skipping`: a header any height above a trusted one, and bisection when the
//! trusted set no longer vouches for it.

use super::*;

#[test]
fn skipping_from_1_to_20_with_a_stable_set_succeeds() {
    let chain = chain_of(4, 20);
    assert_eq!(skipping(at(&chain, 1), at(&chain, 20), ALL), Verdict::Success);
    assert_eq!(
        skipping(at(&chain, 1), at(&chain, 20), UNTIL_THRESHOLD),
        Verdict::Success
    );
}

#[test]
fn skipping_to_the_adjacent_header_applies_the_sequential_rules() {
    let mut main = chain_of(4, 1);
    let mut fork = chain_of(4, 1);
    main.register(10, Role::Patient);
    fork.register(11, Role::Patient);
    extend(&mut fork, 3);
    assert_eq!(skipping(at(&main, 1), at(&main, 2), ALL), Verdict::Success);
    assert_eq!(
        skipping(at(&main, 2), at(&fork, 3), ALL),
        Verdict::Invalid(VerifyError::LastBlockIdMismatch {
            expected: at(&main, 2).header.id(),
            got: at(&fork, 2).header.id()
        })
    );
}

#[test]
fn skipping_refuses_a_commit_below_two_thirds_of_the_new_set() {
    let chain = chain_of(4, 10);
    let mut target = at(&chain, 10).clone();
    target.commit.signatures.truncate(2);
    assert_eq!(
        skipping(at(&chain, 1), &target, ALL),
        Verdict::Invalid(VerifyError::InsufficientVotingPower(tally(20, 40)))
    );
}

#[test]
fn skipping_refuses_an_expired_trusted_header() {
    let chain = chain_of(4, 10);
    let (one, ten) = (at(&chain, 1), at(&chain, 10));
    let options = TrustOptions {
        trusting_period_ms: 5_000,
        ..TrustOptions::default()
    };
    let trusted_time = one.header.time;
    let now = soon_after(&ten.header);
    assert_eq!(
        verify_skipping(
            &trusted(one),
            &ten.header,
            &ten.commit,
            &ten.validators,
            &options,
            now,
            ALL
        ),
        Verdict::Invalid(VerifyError::TrustExpired {
            trusted_time,
            expires_at: trusted_time + 5_000,
            now
        })
    );
}

#[test]
fn skipping_backwards_is_a_non_increasing_height() {
    let chain = chain_of(4, 10);
    assert_eq!(
        skipping(at(&chain, 10), at(&chain, 10), ALL),
        Verdict::Invalid(VerifyError::NonIncreasingHeight {
            got: 10,
            expected: 11
        })
    );
}

/// A 4-validator chain (power 10 each) in which governance, one update per block from
/// height 2, adds four validators of power 100 and removes three of the original four.
/// The last update lands at height 8 and signs from height 10 on.
fn chain_with_replaced_validators() -> TestChain {
    let mut chain = chain_of(4, 1);
    let newcomers: Vec<SigningKey> = (4..8).map(validator_key).collect();
    for key in &newcomers {
        chain.add_validator_key(key.clone());
        let validator = Validator {
            address: key.public_key(),
            power: 100,
        };
        chain
            .governance_tx(Action::UpdateValidator { validator })
            .unwrap();
    }
    for i in 1..4 {
        let validator = Validator {
            address: validator_key(i).public_key(),
            power: 0,
        };
        chain
            .governance_tx(Action::UpdateValidator { validator })
            .unwrap();
    }
    extend(&mut chain, 20);
    chain
}

#[test]
fn governance_change_takes_effect_two_heights_after_it_lands() {
    let chain = chain_with_replaced_validators();
    // The last update (removing validator 3) lands at height 8: block 9 announces the set
    // without it, block 10 is the first it does not sign.
    assert_eq!(at(&chain, 8).validators.len(), 7);
    assert_eq!(at(&chain, 8).next_validators.len(), 6);
    assert_eq!(at(&chain, 9).validators.len(), 6);
    assert_eq!(at(&chain, 9).next_validators.len(), 5);
    assert_eq!(at(&chain, 10).validators.len(), 5);
    assert!(at(&chain, 9)
        .validators
        .get(&validator_key(3).public_key())
        .is_some());
    assert!(at(&chain, 10)
        .validators
        .get(&validator_key(3).public_key())
        .is_none());
    assert_eq!(at(&chain, 20).validators.total_power(), 410);
    assert_eq!(at(&chain, 1).next_validators.total_power(), 40);
}

#[test]
fn skipping_over_a_replaced_validator_set_is_not_enough_trust() {
    // Of the trusted set (4 × 10), only validator 0 still signs at height 20: 10 of 40 is
    // not more than 1/3, so nothing vouches for the new set. Valid, but bisect.
    let chain = chain_with_replaced_validators();
    assert_eq!(
        skipping(at(&chain, 1), at(&chain, 20), ALL),
        Verdict::NotEnoughTrust(tally(10, 40))
    );
    assert_eq!(
        skipping(at(&chain, 1), at(&chain, 20), UNTIL_THRESHOLD),
        Verdict::NotEnoughTrust(tally(10, 40))
    );
}

/// Tendermint-style bisection: try the target; when trust is short, verify the midpoint
/// first and continue from it. Returns the heights verified, in order.
fn bisect(chain: &TestChain, from: Height, to: Height) -> Result<Vec<Height>, Verdict> {
    let mut trusted_block = at(chain, from).clone();
    let mut verified = Vec::new();
    let mut target = to;
    while trusted_block.header.height < to {
        match skipping(&trusted_block, at(chain, target), ALL) {
            Verdict::Success => {
                verified.push(target);
                trusted_block = at(chain, target).clone();
                target = to;
            }
            Verdict::NotEnoughTrust(_) => target = (trusted_block.header.height + target) / 2,
            invalid => return Err(invalid),
        }
    }
    Ok(verified)
}

#[test]
fn bisection_reaches_the_header_skipping_could_not() {
    let chain = chain_with_replaced_validators();
    // 1 → 20 and 1 → 10 lack trust; 1 → 5 works (the originals still hold 40 of 240 there,
    // all of the trusted 40), and from 5 the next set already holds 310 of 340 at height 20.
    assert_eq!(
        skipping(at(&chain, 1), at(&chain, 10), ALL),
        Verdict::NotEnoughTrust(tally(10, 40))
    );
    assert_eq!(skipping(at(&chain, 1), at(&chain, 5), ALL), Verdict::Success);
    assert_eq!(skipping(at(&chain, 5), at(&chain, 20), ALL), Verdict::Success);
    assert_eq!(bisect(&chain, 1, 20), Ok(vec![5, 20]));
}

#[test]
fn skipping_to_a_header_signed_only_by_unknown_keys_is_not_enough_trust_then_bisection_fails() {
    // A fork by a coalition outside the trusted set: it signs its own header with a set it
    // made up. No trusted power vouches for it, and bisection down to an adjacent step shows
    // that the trusted header never announced that set.
    let chain = chain_of(4, 20);
    let attackers = outsider_keys(4);
    let fake = forged(&at(&chain, 20).header, &attackers);
    assert_eq!(
        skipping(at(&chain, 1), &fake, ALL),
        Verdict::NotEnoughTrust(tally(0, 40))
    );
    let fake_two = forged(&at(&chain, 2).header, &attackers);
    assert_eq!(
        skipping(at(&chain, 1), &fake_two, ALL),
        Verdict::Invalid(VerifyError::NextValidatorsMismatch {
            trusted_next_validators_hash: at(&chain, 1).header.next_validators_hash,
            untrusted_validators_hash: set_of(&attackers, 10).hash(),
        })
    );
}

#[test]
fn skipping_to_a_header_claiming_the_honest_set_but_signed_by_others_is_refused() {
    let chain = chain_of(4, 20);
    let honest = at(&chain, 20);
    let attackers = outsider_keys(4);
    let mut header = honest.header.clone();
    header.state_root = Hash([0xBA; 32]);
    let signers: Vec<&SigningKey> = attackers.iter().collect();
    let commit = sign_commit(&header, 0, &signers);
    let verdict_with = |validators: &ValidatorSet| {
        verify_skipping(
            &trusted(at(&chain, 1)),
            &header,
            &commit,
            validators,
            &TrustOptions::default(),
            soon_after(&header),
            ALL,
        )
    };
    // Served with the honest set: the signers are not in it.
    assert_eq!(
        verdict_with(&honest.validators),
        Verdict::Invalid(VerifyError::UnknownSigner(attackers[0].public_key()))
    );
    // Served with the attackers' set: the header does not bind it.
    let theirs = set_of(&attackers, 10);
    assert_eq!(
        verdict_with(&theirs),
        Verdict::Invalid(VerifyError::ValidatorsHashMismatch {
            header_validators_hash: honest.header.validators_hash,
            validators_hash: theirs.hash(),
        })
    );
}

#[test]
fn skipping_cannot_see_a_fork_its_trusted_validators_signed() {
    // The limit of a single source, pinned so nobody mistakes it for a guarantee: if the
    // trusted validators equivocate, skipping accepts either branch. Fork detection across
    // relays (DESIGN §6) is what catches this.
    let mut main = chain_of(4, 1);
    let mut fork = chain_of(4, 1);
    main.register(10, Role::Patient);
    fork.register(11, Role::Patient);
    extend(&mut main, 10);
    extend(&mut fork, 10);
    assert_ne!(at(&main, 10).header.id(), at(&fork, 10).header.id());
    assert_eq!(skipping(at(&main, 1), at(&main, 10), ALL), Verdict::Success);
    assert_eq!(skipping(at(&main, 1), at(&fork, 10), ALL), Verdict::Success);
}

#[test]
fn skipping_with_until_threshold_refuses_an_unknown_signer_anywhere_in_the_commit() {
    let chain = chain_of(4, 20);
    let target = at(&chain, 20);
    let outsider = validator_key(99);
    let mut commit = target.commit.clone();
    commit.signatures[3] = sign_commit(&target.header, 0, &[&outsider]).signatures[0];
    let block = SignedBlock {
        commit,
        ..target.clone()
    };
    assert_eq!(
        skipping(at(&chain, 1), &block, UNTIL_THRESHOLD),
        Verdict::Invalid(VerifyError::UnknownSigner(outsider.public_key()))
    );
}

#[test]
fn unequal_powers_skip_on_the_heavy_validator_alone() {
    // Trusted: [1, 1, 1, 97]. The heavy validator alone is > 2/3 of the new set and > 1/3
    // of the trusted one.
    let mut chain = TestChain::with_powers(&[1, 1, 1, 97]);
    extend(&mut chain, 12);
    let heavy = validator_key(3).public_key();
    let mut target = at(&chain, 12).clone();
    target
        .commit
        .signatures
        .retain(|s: &CommitSignature| s.validator == heavy);
    assert_eq!(skipping(at(&chain, 1), &target, ALL), Verdict::Success);
    target.commit = at(&chain, 12).commit.clone();
    target.commit.signatures.retain(|s| s.validator != heavy);
    assert_eq!(
        skipping(at(&chain, 1), &target, ALL),
        Verdict::Invalid(VerifyError::InsufficientVotingPower(tally(3, 100)))
    );
}

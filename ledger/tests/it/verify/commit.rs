//! `verify_commit`: is this header final under this set? Every validator and relay runs it on
//! every block; light clients run it with `SignatureCheck::UntilThreshold`.

use super::*;

#[test]
fn commit_of_every_block_of_a_20_block_chain_verifies_with_full_power() {
    let chain = chain_of(4, 20);
    for block in &chain.blocks {
        assert_eq!(
            verify_commit(TEST_CHAIN_ID, &block.header, &block.commit, &block.validators),
            Ok(tally(40, 40)),
            "height {}",
            block.header.height
        );
    }
}

#[test]
fn tampered_first_signature_is_named_as_bad() {
    let chain = chain_of(4, 3);
    let block = at(&chain, 3);
    let mut commit = block.commit.clone();
    flip_signature(&mut commit, 0);
    let validator = commit.signatures[0].validator;
    assert_eq!(validator, block.validators.validators()[0].address);
    assert_eq!(
        verify_commit_with(TEST_CHAIN_ID, &block.header, &commit, &block.validators, ALL),
        Err(VerifyError::BadSignature { validator })
    );
}

#[test]
fn tampered_last_signature_is_named_as_bad() {
    let chain = chain_of(4, 3);
    let block = at(&chain, 3);
    let mut commit = block.commit.clone();
    flip_signature(&mut commit, 3);
    let validator = commit.signatures[3].validator;
    assert_eq!(validator, block.validators.validators()[3].address);
    assert_eq!(
        verify_commit_with(TEST_CHAIN_ID, &block.header, &commit, &block.validators, ALL),
        Err(VerifyError::BadSignature { validator })
    );
}

#[test]
fn a_signature_for_another_round_is_bad() {
    // The round is in the sign bytes: a relay cannot relabel a commit's round.
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.round = 1;
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::BadSignature {
            validator: commit.signatures[0].validator
        })
    );
}

#[test]
fn commit_with_more_than_two_thirds_of_power_verifies() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures.remove(1);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Ok(tally(30, 40))
    );
}

#[test]
fn commit_with_half_the_power_is_insufficient() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures.truncate(2);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::InsufficientVotingPower(tally(20, 40)))
    );
}

#[test]
fn commit_with_exactly_two_thirds_of_power_is_insufficient() {
    // "More than 2/3": exactly 2/3 is not final.
    let chain = chain_of(3, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures.pop();
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::InsufficientVotingPower(tally(20, 30)))
    );
}

#[test]
fn commit_without_signatures_is_insufficient() {
    let chain = chain_of(4, 1);
    let block = at(&chain, 1);
    let commit = Commit {
        signatures: vec![],
        ..block.commit.clone()
    };
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::InsufficientVotingPower(tally(0, 40)))
    );
}

#[test]
fn validly_signed_precommit_from_outside_the_set_is_an_unknown_signer() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let outsider = validator_key(99);
    let mut commit = block.commit.clone();
    commit.signatures[1] = sign_commit(&block.header, 0, &[&outsider]).signatures[0];
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::UnknownSigner(outsider.public_key()))
    );
}

#[test]
fn same_validator_signing_twice_is_a_duplicate_signer() {
    // Counting the repeat would give 40 of 40 with only three distinct signers.
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures[3] = commit.signatures[0];
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::DuplicateSigner(commit.signatures[0].validator))
    );
}

#[test]
fn more_signatures_than_validators_is_refused_before_any_work() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures.push(commit.signatures[0]);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::TooManySignatures {
            count: 5,
            set_size: 4
        })
    );
}

#[test]
fn header_of_another_chain_is_a_chain_id_mismatch() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    assert_eq!(
        verify_commit("medledger-other", &block.header, &block.commit, &block.validators),
        Err(VerifyError::ChainIdMismatch {
            expected: "medledger-other".into(),
            got: TEST_CHAIN_ID.into()
        })
    );
}

#[test]
fn commit_for_another_height_is_a_commit_height_mismatch() {
    let chain = chain_of(4, 6);
    let (five, six) = (at(&chain, 5), at(&chain, 6));
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &six.header, &five.commit, &six.validators),
        Err(VerifyError::CommitHeightMismatch {
            commit_height: 5,
            header_height: 6
        })
    );
}

#[test]
fn header_changed_after_signing_is_a_commit_block_id_mismatch() {
    let chain = chain_of(4, 5);
    let block = at(&chain, 5);
    let mut header = block.header.clone();
    header.state_root = Hash([0xEE; 32]);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &header, &block.commit, &block.validators),
        Err(VerifyError::CommitBlockIdMismatch {
            commit_block_id: block.header.id(),
            header_block_id: header.id()
        })
    );
}

#[test]
fn commit_for_a_sibling_block_is_a_commit_block_id_mismatch() {
    let mut main = chain_of(4, 1);
    let mut fork = chain_of(4, 1);
    main.register(10, Role::Patient);
    fork.register(11, Role::Patient);
    let (ours, theirs) = (at(&main, 2), at(&fork, 2));
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &ours.header, &theirs.commit, &ours.validators),
        Err(VerifyError::CommitBlockIdMismatch {
            commit_block_id: theirs.header.id(),
            header_block_id: ours.header.id()
        })
    );
}

#[test]
fn validator_set_with_inflated_power_is_a_validators_hash_mismatch() {
    // A relay serving a set in which one honest-looking validator holds most of the power.
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut validators = block.validators.validators().to_vec();
    validators[0].power = 1_000;
    let lying = ValidatorSet::new(validators).unwrap();
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &block.commit, &lying),
        Err(VerifyError::ValidatorsHashMismatch {
            header_validators_hash: block.header.validators_hash,
            validators_hash: lying.hash()
        })
    );
}

#[test]
fn decoded_validator_set_out_of_order_is_malformed() {
    // Decoding skips `ValidatorSet::new`; an unsorted set would hash differently from the
    // canonical one and its lookups (binary search) would be wrong.
    let chain = chain_of(4, 1);
    let block = at(&chain, 1);
    let mut members = block.validators.validators().to_vec();
    members.reverse();
    let unsorted: ValidatorSet = decode(&encode(&members)).unwrap();
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &block.commit, &unsorted),
        Err(VerifyError::MalformedValidatorSet(
            ValidatorSetError::NotSortedOrDuplicate
        ))
    );
}

#[test]
fn one_validator_with_97_of_100_power_finalizes_alone() {
    // 1 signature of 4 is > 2/3 of the power: finality sums power, it never counts votes.
    let chain = {
        let mut chain = TestChain::with_powers(&[1, 1, 1, 97]);
        extend(&mut chain, 2);
        chain
    };
    let block = at(&chain, 2);
    let heavy = validator_key(3).public_key();
    let mut commit = block.commit.clone();
    commit.signatures.retain(|s| s.validator == heavy);
    assert_eq!(commit.signatures.len(), 1);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Ok(tally(97, 100))
    );
}

#[test]
fn three_of_four_signatures_holding_3_of_100_power_are_insufficient() {
    let mut chain = TestChain::with_powers(&[1, 1, 1, 97]);
    extend(&mut chain, 2);
    let block = at(&chain, 2);
    let heavy = validator_key(3).public_key();
    let mut commit = block.commit.clone();
    commit.signatures.retain(|s| s.validator != heavy);
    assert_eq!(commit.signatures.len(), 3);
    assert_eq!(
        verify_commit(TEST_CHAIN_ID, &block.header, &commit, &block.validators),
        Err(VerifyError::InsufficientVotingPower(tally(3, 100)))
    );
}

// ---- SignatureCheck::UntilThreshold ---------------------------------------------------------

#[test]
fn until_threshold_accepts_a_valid_commit_and_reports_the_power_it_checked() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    // Three of four signatures already exceed 2/3; the fourth is never verified.
    assert_eq!(
        verify_commit_with(
            TEST_CHAIN_ID,
            &block.header,
            &block.commit,
            &block.validators,
            UNTIL_THRESHOLD
        ),
        Ok(tally(30, 40))
    );
}

#[test]
fn until_threshold_still_refuses_an_unknown_signer_past_the_threshold() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let outsider = validator_key(99);
    let mut commit = block.commit.clone();
    commit.signatures[3] = sign_commit(&block.header, 0, &[&outsider]).signatures[0];
    assert_eq!(
        verify_commit_with(
            TEST_CHAIN_ID,
            &block.header,
            &commit,
            &block.validators,
            UNTIL_THRESHOLD
        ),
        Err(VerifyError::UnknownSigner(outsider.public_key()))
    );
}

#[test]
fn until_threshold_still_refuses_a_duplicate_signer_past_the_threshold() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    commit.signatures[3] = commit.signatures[1];
    assert_eq!(
        verify_commit_with(
            TEST_CHAIN_ID,
            &block.header,
            &commit,
            &block.validators,
            UNTIL_THRESHOLD
        ),
        Err(VerifyError::DuplicateSigner(commit.signatures[1].validator))
    );
}

#[test]
fn until_threshold_refuses_a_tampered_signature_it_needs() {
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    flip_signature(&mut commit, 0);
    assert_eq!(
        verify_commit_with(
            TEST_CHAIN_ID,
            &block.header,
            &commit,
            &block.validators,
            UNTIL_THRESHOLD
        ),
        Err(VerifyError::BadSignature {
            validator: commit.signatures[0].validator
        })
    );
}

#[test]
fn tampered_signature_past_the_threshold_passes_until_threshold_but_not_all() {
    // By design (SignatureCheck docs): an unchecked signature cannot lower the proven power,
    // so a light client may skip it; validators and relays that store commits check all,
    // or they would pass on a commit with a forged entry.
    let chain = chain_of(4, 2);
    let block = at(&chain, 2);
    let mut commit = block.commit.clone();
    flip_signature(&mut commit, 3);
    assert_eq!(
        verify_commit_with(
            TEST_CHAIN_ID,
            &block.header,
            &commit,
            &block.validators,
            UNTIL_THRESHOLD
        ),
        Ok(tally(30, 40))
    );
    assert_eq!(
        verify_commit_with(TEST_CHAIN_ID, &block.header, &commit, &block.validators, ALL),
        Err(VerifyError::BadSignature {
            validator: commit.signatures[3].validator
        })
    );
}

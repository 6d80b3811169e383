//! Light-client predicates (DESIGN §2 commit, §6) on chains built by `TestChain`.
//!
//! One `Ok` test and one exact-variant test per rule, in the tendermint-rs style: a test
//! names the error and its fields, so a predicate that fails for the wrong reason fails the
//! test. Headers and commits the "relay" sends are taken from real chains and then damaged,
//! re-signed after a change by the chain's own validators, or signed by keys the light
//! client does not trust.

use ledger::codec::{decode, encode};
use ledger::crypto::SigningKey;
use ledger::header::Height;
use ledger::test_utils::{sign_commit, validator_key, SignedBlock, TestChain, TEST_CHAIN_ID};
use ledger::types::{Role, TimeMs};
use ledger::validators::ValidatorSetError;
use ledger::verify::{
    verify_commit, verify_commit_with, verify_sequential, verify_skipping, SignatureCheck, TrustOptions,
    TrustedBlock, Verdict, VerifyError, VotingPowerTally,
};
use ledger::{Action, Commit, CommitSignature, Hash, Header, Validator, ValidatorSet};

mod commit;
mod sequential;
mod skipping;

// ---- helpers ------------------------------------------------------------------------------

const ALL: SignatureCheck = SignatureCheck::All;
const UNTIL_THRESHOLD: SignatureCheck = SignatureCheck::UntilThreshold;

fn chain_of(validators: usize, height: Height) -> TestChain {
    let mut chain = TestChain::new(validators);
    extend(&mut chain, height);
    chain
}

fn extend(chain: &mut TestChain, height: Height) {
    while chain.height < height {
        chain.block(&[]).unwrap();
    }
}

fn at(chain: &TestChain, height: Height) -> &SignedBlock {
    let block = &chain.blocks[height as usize - 1];
    assert_eq!(block.header.height, height);
    block
}

fn trusted(block: &SignedBlock) -> TrustedBlock {
    TrustedBlock {
        header: block.header.clone(),
        next_validators: block.next_validators.clone(),
    }
}

/// A verifier clock shortly after `header` was made.
fn soon_after(header: &Header) -> TimeMs {
    header.time + 500
}

fn tally(signed: u64, total: u64) -> VotingPowerTally {
    VotingPowerTally { signed, total }
}

fn sequential(trusted_block: &SignedBlock, untrusted: &SignedBlock, now: TimeMs) -> Verdict {
    verify_sequential(
        &trusted(trusted_block),
        &untrusted.header,
        &untrusted.commit,
        &untrusted.validators,
        &TrustOptions::default(),
        now,
        ALL,
    )
}

fn skipping(trusted_block: &SignedBlock, untrusted: &SignedBlock, check: SignatureCheck) -> Verdict {
    verify_skipping(
        &trusted(trusted_block),
        &untrusted.header,
        &untrusted.commit,
        &untrusted.validators,
        &TrustOptions::default(),
        soon_after(&untrusted.header),
        check,
    )
}

fn commit_of(chain: &TestChain, header: &Header) -> Commit {
    let keys: Vec<&SigningKey> = chain.validator_keys.values().collect();
    sign_commit(header, 0, &keys)
}

fn flip_signature(commit: &mut Commit, index: usize) {
    commit.signatures[index].signature.0[40] ^= 0x01;
}

/// Keys nobody in the test chains' genesis trusts.
fn outsider_keys(n: u64) -> Vec<SigningKey> {
    (100..100 + n).map(validator_key).collect()
}

fn set_of(keys: &[SigningKey], power: u64) -> ValidatorSet {
    ValidatorSet::new(
        keys.iter()
            .map(|k| Validator {
                address: k.public_key(),
                power,
            })
            .collect(),
    )
    .unwrap()
}

/// A header a coalition of `keys` signs in place of `honest`, with their own set bound.
fn forged(honest: &Header, keys: &[SigningKey]) -> SignedBlock {
    let set = set_of(keys, 10);
    let mut header = honest.clone();
    header.state_root = Hash([0xBA; 32]);
    header.validators_hash = set.hash();
    header.next_validators_hash = set.hash();
    let signers: Vec<&SigningKey> = keys.iter().collect();
    SignedBlock {
        commit: sign_commit(&header, 0, &signers),
        header,
        validators: set.clone(),
        next_validators: set,
    }
}

//! State proofs against state roots (DESIGN §2 state_root, §6 "every state answer comes
//! with a proof"): what a light client shows a patient is only as good as these checks.
//!
//! A model (a plain map per version) says what each key holds; the Jellyfish tree must
//! prove exactly that, for present and absent keys, at every version ever committed, and
//! refuse every lie a relay could tell with a proof it got for something else.

use ledger::codec::{decode, encode};
use ledger::state::{keys, MemoryState, StateDiff, StateProof, StateProofError};
use ledger::test_utils::TestChain;
use ledger::types::Role;
use ledger::Hash;
use proptest::prelude::*;
use proptest::sample::Index;
use std::collections::{BTreeMap, BTreeSet};

/// What the state holds at one version, according to the model.
type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// Keys never written by any diff: every version must prove them absent.
const NEVER_WRITTEN: [&[u8]; 3] = [b"never/written", b"", b"account/\xff\xff"];

fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // A small pool, so later versions overwrite and delete earlier versions' keys.
        3 => (0u8..16).prop_map(|i| format!("account/{i:02}").into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 1..40),
    ]
}

fn diff() -> impl Strategy<Value = StateDiff> {
    // Empty values are legal and must stay distinguishable from deletion.
    let value = prop::option::weighted(0.75, prop::collection::vec(any::<u8>(), 0..48));
    prop::collection::btree_map(key(), value, 0..12)
}

/// Commits `diffs` as versions 0, 1, 2… and returns each version's root with its model.
fn commit_versions(diffs: &[StateDiff]) -> (MemoryState, Vec<(Hash, Model)>) {
    let mut state = MemoryState::new();
    let mut model = Model::new();
    let mut versions = Vec::new();
    for (version, diff) in diffs.iter().enumerate() {
        let root = state.commit(diff, version as u64).unwrap();
        for (k, v) in diff {
            match v {
                Some(v) => model.insert(k.clone(), v.clone()),
                None => model.remove(k),
            };
        }
        assert_eq!(state.root().unwrap(), root);
        versions.push((root, model.clone()));
    }
    (state, versions)
}

fn all_keys(diffs: &[StateDiff]) -> BTreeSet<Vec<u8>> {
    diffs
        .iter()
        .flat_map(|d| d.keys().cloned())
        .chain(NEVER_WRITTEN.iter().map(|k| k.to_vec()))
        .collect()
}

fn is_mismatch(result: Result<(), StateProofError>) -> bool {
    matches!(result, Err(StateProofError::Mismatch { .. }))
}

/// Checks one key at one version: the proof shows the model's answer and nothing else.
fn check_key(
    state: &MemoryState,
    version: usize,
    versions: &[(Hash, Model)],
    key: &[u8],
    other_key: &[u8],
    flip: u8,
) -> Result<(), TestCaseError> {
    let (root, model) = &versions[version];
    let (value, proof) = state.get_with_proof(key, version as u64).unwrap();
    prop_assert_eq!(
        value.as_ref(),
        model.get(key),
        "value of {:?} at version {}",
        key,
        version
    );
    prop_assert_eq!(proof.verify(root, key, value.as_deref()), Ok(()));

    // What travels is bytes: the decoded proof must be the same proof.
    let decoded: StateProof = decode(&encode(&proof)).unwrap();
    prop_assert_eq!(&decoded, &proof);
    prop_assert_eq!(decoded.verify(root, key, value.as_deref()), Ok(()));

    // Soundness: whatever a relay claims with this proof, about this key or another, it
    // verifies only if the claim is the truth. (A proof for one key may truthfully show
    // another key absent: both would sit in the same otherwise empty subtree.)
    let refuse_lie = |claimed_key: &[u8], claim: Option<&[u8]>| -> Result<(), TestCaseError> {
        if claim != model.get(claimed_key).map(Vec::as_slice) {
            prop_assert!(
                is_mismatch(proof.verify(root, claimed_key, claim)),
                "lie verified: {:?} = {:?} at version {}",
                claimed_key,
                claim,
                version
            );
        }
        Ok(())
    };
    match &value {
        Some(value) => {
            refuse_lie(key, None)?;
            for at in 0..value.len() {
                let mut forged = value.clone();
                forged[at] ^= flip;
                refuse_lie(key, Some(&forged))?;
            }
            let mut longer = value.clone();
            longer.push(0);
            refuse_lie(key, Some(&longer))?;
            if let Some((_, shorter)) = value.split_last() {
                refuse_lie(key, Some(shorter))?;
            }
        }
        None => {
            for claimed in [&b""[..], b"value", &[flip]] {
                refuse_lie(key, Some(claimed))?;
            }
        }
    }
    // An inclusion proof names its key: it never shows another key present, even one that
    // holds the same value.
    if let Some(value) = &value {
        prop_assert!(
            is_mismatch(proof.verify(root, other_key, Some(value))),
            "proof moved to another key"
        );
    }
    refuse_lie(other_key, value.as_deref())?;
    refuse_lie(other_key, None)?;
    refuse_lie(other_key, Some(b"value"))?;

    for (other_version, (other_root, _)) in versions.iter().enumerate() {
        if other_root != root {
            prop_assert!(
                is_mismatch(proof.verify(other_root, key, value.as_deref())),
                "proof from version {} verified against version {}'s root",
                version,
                other_version
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn every_key_at_every_version_is_provable_and_no_lie_verifies(
        diffs in prop::collection::vec(diff(), 1..6),
        flip in 1u8..=255,
    ) {
        let (state, versions) = commit_versions(&diffs);
        let keys: Vec<Vec<u8>> = all_keys(&diffs).into_iter().collect();
        for version in 0..versions.len() {
            for (i, key) in keys.iter().enumerate() {
                let other_key = &keys[(i + 1) % keys.len()];
                check_key(&state, version, &versions, key, other_key, flip)?;
            }
        }
    }

    #[test]
    fn proofs_taken_early_stay_valid_after_later_commits(
        diffs in prop::collection::vec(diff(), 2..6),
    ) {
        let keys = all_keys(&diffs);
        let mut state = MemoryState::new();
        let mut taken = Vec::new();
        for (version, diff) in diffs.iter().enumerate() {
            let root = state.commit(diff, version as u64).unwrap();
            for key in &keys {
                let (value, proof) = state.get_with_proof(key, version as u64).unwrap();
                taken.push((version as u64, root, key.clone(), value, proof));
            }
        }
        // Newer versions share nodes with older ones; writing them must not disturb the old.
        for (version, root, key, value, proof) in taken {
            prop_assert_eq!(proof.verify(&root, &key, value.as_deref()), Ok(()));
            let (again_value, again_proof) = state.get_with_proof(&key, version).unwrap();
            prop_assert_eq!(again_value, value);
            prop_assert_eq!(again_proof, proof);
        }
    }

    #[test]
    fn deleted_keys_are_provably_absent_afterwards(
        base in diff(),
        delete in prop::collection::vec(any::<Index>(), 1..6),
    ) {
        let present: Vec<Vec<u8>> = base.iter().filter(|(_, v)| v.is_some()).map(|(k, _)| k.clone()).collect();
        prop_assume!(!present.is_empty());
        let deleted: BTreeSet<Vec<u8>> = delete.iter().map(|i| present[i.index(present.len())].clone()).collect();
        let mut deletions: StateDiff = deleted.iter().map(|k| (k.clone(), None)).collect();
        // Deleting a key that never existed must be harmless, not an error.
        deletions.insert(b"never/written".to_vec(), None);
        let (state, versions) = commit_versions(&[base.clone(), deletions]);
        let (before, after) = (versions[0].0, versions[1].0);
        for key in &deleted {
            let old_value = base[key].as_deref();
            let (value, proof) = state.get_with_proof(key, 1).unwrap();
            prop_assert_eq!(value, None);
            prop_assert_eq!(proof.verify(&after, key, None), Ok(()));
            prop_assert!(is_mismatch(proof.verify(&after, key, old_value)), "deleted value still provable");
            // The version before the deletion still proves the old value.
            let (value, proof) = state.get_with_proof(key, 0).unwrap();
            prop_assert_eq!(value.as_deref(), old_value);
            prop_assert_eq!(proof.verify(&before, key, old_value), Ok(()));
        }
        for key in present.iter().filter(|k| !deleted.contains(*k)) {
            let (value, proof) = state.get_with_proof(key, 1).unwrap();
            prop_assert_eq!(value.as_deref(), base[key].as_deref());
            prop_assert_eq!(proof.verify(&after, key, value.as_deref()), Ok(()));
        }
    }

    #[test]
    fn damaged_proof_bytes_never_verify(
        diffs in prop::collection::vec(diff(), 1..3),
        pick in any::<Index>(),
        flip in 1u8..=255,
    ) {
        // The proof itself comes from a relay: any change to its bytes that still decodes
        // must fail to verify the claim the undamaged proof supported.
        let (state, versions) = commit_versions(&diffs);
        let (root, _) = versions.last().unwrap();
        let version = (versions.len() - 1) as u64;
        let keys: Vec<Vec<u8>> = all_keys(&diffs).into_iter().collect();
        let key = &keys[pick.index(keys.len())];
        let (value, proof) = state.get_with_proof(key, version).unwrap();
        let bytes = encode(&proof);
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= flip;
            if let Ok(damaged) = decode::<StateProof>(&damaged) {
                prop_assert!(
                    damaged.verify(root, key, value.as_deref()).is_err(),
                    "byte {} of {} changed and the proof still verified",
                    at,
                    bytes.len()
                );
            }
        }
    }
}

#[test]
fn an_empty_state_proves_every_key_absent() {
    let mut state = MemoryState::new();
    let root = state.commit(&StateDiff::new(), 0).unwrap();
    for key in NEVER_WRITTEN {
        let (value, proof) = state.get_with_proof(key, 0).unwrap();
        assert_eq!(value, None);
        assert_eq!(proof.verify(&root, key, None), Ok(()));
        assert!(is_mismatch(proof.verify(&root, key, Some(b""))));
    }
}

#[test]
fn a_version_never_committed_has_no_proof() {
    let mut state = MemoryState::new();
    state
        .commit(&StateDiff::from([(b"k".to_vec(), Some(b"v".to_vec()))]), 0)
        .unwrap();
    assert!(matches!(
        state.get_with_proof(b"k", 1),
        Err(StateProofError::Storage(_))
    ));
}

#[test]
fn chain_state_is_provable_against_each_header_state_root() {
    // The end-to-end path a light client takes: a header's state_root, a proof from a relay.
    let mut chain = TestChain::new(4);
    chain.block(&[]).unwrap();
    let patient = chain.register(10, Role::Patient);
    let account_key = keys::account(&patient.address());
    let registered_at = chain.height;
    chain.block(&[]).unwrap();

    for block in &chain.blocks {
        let height = block.header.height;
        let (value, proof) = chain.state.get_with_proof(&account_key, height).unwrap();
        proof
            .verify(&block.header.state_root, &account_key, value.as_deref())
            .unwrap();
        if height < registered_at {
            assert_eq!(
                value, None,
                "account exists before it was registered, at {height}"
            );
        } else {
            let value = value.expect("account exists after registration");
            assert!(is_mismatch(proof.verify(
                &block.header.state_root,
                &account_key,
                None
            )));
            let account: ledger::state::records::Account = decode(&value).unwrap();
            assert_eq!(account.role, Role::Patient);
        }
    }
    // The patient never registered a device under its own key: provably so.
    let device_key = keys::device(&patient.address());
    let head = chain.blocks.last().unwrap();
    let (value, proof) = chain
        .state
        .get_with_proof(&device_key, head.header.height)
        .unwrap();
    assert_eq!(value, None);
    proof.verify(&head.header.state_root, &device_key, None).unwrap();
}

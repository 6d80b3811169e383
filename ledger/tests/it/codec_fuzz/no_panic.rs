//! Decoding never panics: random bytes, and valid encodings truncated or damaged.

use super::*;

/// Runs every decoder used on untrusted input over `bytes`, and whatever decodes through
/// the check production code applies next. Passing means: nothing panicked.
fn decode_everything(bytes: &[u8]) {
    let f = &*FIXTURE;
    if let Ok(tx) = decode::<Tx>(bytes) {
        let _ = tx.verify_signature();
        let _ = tx.hash();
    }
    if let Ok(tx) = Tx::from_bytes(bytes) {
        let _ = tx.verify_signature();
    }
    if let Ok(header) = decode::<Header>(bytes) {
        let _ = header.id();
        let _ = verify_commit(TEST_CHAIN_ID, &header, &f.block.commit, &f.block.validators);
    }
    if let Ok(commit) = decode::<Commit>(bytes) {
        let _ = verify_commit(TEST_CHAIN_ID, &f.block.header, &commit, &f.block.validators);
        let _ = verify_commit_with(
            TEST_CHAIN_ID,
            &f.block.header,
            &commit,
            &f.block.validators,
            SignatureCheck::UntilThreshold,
        );
    }
    if let Ok(set) = decode::<ValidatorSet>(bytes) {
        // Decoding bypasses `ValidatorSet::new`, so only `validate` stands between a peer and
        // the power arithmetic below.
        if set.validate().is_ok() {
            let _ = set.total_power();
            let _ = set.proposer(1, 0);
        }
        let _ = verify_commit(TEST_CHAIN_ID, &f.block.header, &f.block.commit, &set);
    }
    if let Ok(genesis) = decode::<Genesis>(bytes) {
        let _ = genesis.state_diff();
        let _ = genesis.hash();
    }
    if let Ok(proof) = decode::<StateProof>(bytes) {
        let _ = proof.verify(&f.state_root, &f.account_key, Some(&f.account_value));
        let _ = proof.verify(&f.state_root, &f.account_key, None);
    }
    if let Ok(proof) = decode::<InclusionProof>(bytes) {
        let _ = proof.verify(&f.block.header.tx_root, bytes);
    }
    if let Ok(request) = decode::<SignedAccessRequest>(bytes) {
        let _ = request.verify();
        let _ = request.request.id();
    }
    if let Ok(block) = decode::<Block>(bytes) {
        let _ = merkle::tx_root(&block.txs);
    }
    if let Ok(account) = decode::<Account>(bytes) {
        let _ = account.attested_by;
    }
    if let Ok(commitment) = decode::<DataCommitment>(bytes) {
        let _ = commitment.time_range.validate();
        let _ = commitment.loinc_codes.iter().map(LoincCode::validate).count();
        let _ = format!("{commitment:?}");
    }
    if let Ok(consent) = decode::<Consent>(bytes) {
        let _ = consent.is_active_at(GENESIS_TIME);
    }
    if let Ok(bg) = decode::<BreakGlass>(bytes) {
        let _ = bg.is_active_at(GENESIS_TIME);
    }
    let _ = decode::<Device>(bytes);
    let _ = decode::<AccessRecord>(bytes);
    let _ = decode::<AlertRule>(bytes);
    let _ = decode::<Alert>(bytes);
    let _ = decode::<Study>(bytes);
    let _ = decode::<Participation>(bytes);
}

#[derive(Clone, Debug)]
enum Damage {
    Truncate(Index),
    Flip(Index, u8),
    Insert(Index, u8),
    Remove(Index),
    Overwrite(Index, Vec<u8>),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Damage::Flip(i, x)),
        (any::<Index>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<Index>().prop_map(Damage::Remove),
        // Length prefixes and enum tags are where decoders usually break: write extreme values.
        (
            any::<Index>(),
            prop_oneof![
                Just(vec![0xFF; 4]),
                Just(vec![0; 4]),
                Just(vec![0x80]),
                Just(vec![2])
            ]
        )
            .prop_map(|(i, b)| Damage::Overwrite(i, b)),
    ]
}

fn apply_damage(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    if bytes.is_empty() {
        return bytes;
    }
    match damage {
        Damage::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Damage::Flip(i, x) => {
            let at = i.index(bytes.len());
            bytes[at] ^= x;
        }
        Damage::Insert(i, b) => {
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, *b);
        }
        Damage::Remove(i) => {
            bytes.remove(i.index(bytes.len()));
        }
        Damage::Overwrite(i, patch) => {
            let at = i.index(bytes.len());
            for (k, b) in patch.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(at + k) {
                    *slot = *b;
                }
            }
        }
    }
    bytes
}

#[test]
fn every_fixture_encoding_is_valid_for_its_type() {
    // The damage tests only mean something if what they damage started out valid.
    let f = &*FIXTURE;
    f.account_proof
        .verify(&f.state_root, &f.account_key, Some(&f.account_value))
        .unwrap();
    f.absent_proof
        .verify(&f.state_root, &keys::device(&Actor::from_seed(7).address()), None)
        .unwrap();
    assert_eq!(
        decode::<Header>(&encode(&f.block.header)).unwrap(),
        f.block.header
    );
    assert_eq!(
        decode::<Commit>(&encode(&f.block.commit)).unwrap(),
        f.block.commit
    );
    assert_eq!(decode::<Genesis>(&encode(&f.genesis)).unwrap(), f.genesis);
    assert_eq!(
        decode::<StateProof>(&encode(&f.absent_proof)).unwrap(),
        f.absent_proof
    );
    for tx in sample_txs() {
        assert_eq!(Tx::from_bytes(&tx.to_bytes()).unwrap(), tx);
        tx.verify_signature().unwrap();
    }
    sample_access_request().verify().unwrap();
    decode::<Account>(&sample_records()[0].1).unwrap();
    for (name, bytes) in sample_records() {
        decode_everything(&bytes);
        assert!(!bytes.is_empty(), "{name}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoding_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_everything(&bytes);
    }

    #[test]
    fn decoding_damaged_valid_encodings_never_panics(
        pick in any::<Index>(),
        damages in prop::collection::vec(damage(), 1..4),
    ) {
        let samples = valid_encodings();
        let (_, bytes) = &samples[pick.index(samples.len())];
        let damaged = damages.iter().fold(bytes.clone(), apply_damage);
        decode_everything(&damaged);
    }

    #[test]
    fn every_prefix_of_a_valid_encoding_decodes_without_panicking(pick in any::<Index>()) {
        let samples = valid_encodings();
        let (_, bytes) = &samples[pick.index(samples.len())];
        for len in 0..bytes.len() {
            decode_everything(&bytes[..len]);
        }
    }
}

//! Valid values round-trip, and the encoding is strict: one encoding per value.

use super::*;

/// `decode(encode(x)) == x`, every appended byte is refused, every strict prefix is refused.
fn assert_canonical<T>(value: &T, extra: u8) -> Result<(), TestCaseError>
where
    T: BorshSerialize + BorshDeserialize + PartialEq + Debug,
{
    let bytes = encode(value);
    prop_assert_eq!(&decode::<T>(&bytes).unwrap(), value);
    let mut longer = bytes.clone();
    longer.push(extra);
    prop_assert!(
        matches!(decode::<T>(&longer), Err(CodecError::Malformed(_))),
        "trailing byte accepted"
    );
    for len in 0..bytes.len() {
        prop_assert!(
            decode::<T>(&bytes[..len]).is_err(),
            "prefix of {} of {} bytes decoded",
            len,
            bytes.len()
        );
    }
    Ok(())
}

fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}

fn public_key() -> impl Strategy<Value = PublicKey> {
    any::<[u8; 32]>().prop_map(PublicKey)
}

fn chain_id() -> impl Strategy<Value = String> {
    "[a-z0-9-]{1,50}"
}

fn header() -> impl Strategy<Value = Header> {
    (
        chain_id(),
        any::<u64>(),
        any::<u64>(),
        [hash(), hash(), hash(), hash(), hash()],
        public_key(),
    )
        .prop_map(
            |(
                chain_id,
                height,
                time,
                [last_block_id, tx_root, state_root, validators_hash, next_validators_hash],
                proposer,
            )| {
                Header {
                    chain_id,
                    height,
                    time,
                    last_block_id,
                    tx_root,
                    state_root,
                    validators_hash,
                    next_validators_hash,
                    proposer,
                }
            },
        )
}

fn commit() -> impl Strategy<Value = Commit> {
    let signature = (public_key(), any::<[u8; 64]>()).prop_map(|(validator, sig)| CommitSignature {
        validator,
        signature: Signature(sig),
    });
    (
        any::<u64>(),
        any::<u32>(),
        hash(),
        prop::collection::vec(signature, 0..8),
    )
        .prop_map(|(height, round, block_id, signatures)| Commit {
            height,
            round,
            block_id,
            signatures,
        })
}

fn validator_set() -> impl Strategy<Value = ValidatorSet> {
    let validator = (public_key(), 1u64..1_000_000).prop_map(|(address, power)| Validator { address, power });
    prop::collection::vec(validator, 1..24)
        .prop_filter_map("duplicate address", |vs| ValidatorSet::new(vs).ok())
}

fn loinc_code() -> impl Strategy<Value = LoincCode> {
    "[0-9]{1,7}-[0-9]".prop_map(|s| LoincCode::new(&s).unwrap())
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(vec![
        Role::Patient,
        Role::Clinician,
        Role::Caregiver,
        Role::Researcher,
        Role::Organisation,
        Role::Auditor,
    ])
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (role(), any::<[u8; 32]>()).prop_map(|(role, k)| Action::RegisterAccount {
            role,
            encryption_key: EncryptionKey(k)
        }),
        (public_key(), any::<u64>()).prop_map(|(to, amount)| Action::Transfer { to, amount }),
        (public_key(), any::<u64>()).prop_map(|(address, power)| Action::UpdateValidator {
            validator: Validator { address, power }
        }),
        hash().prop_map(|consent| Action::RevokeConsent { consent }),
        (
            public_key(),
            prop::option::of(public_key()),
            hash(),
            prop::collection::vec(loinc_code(), 0..4),
            any::<(u64, u64, u64, u32)>(),
        )
            .prop_map(
                |(patient, device, digest, loinc_codes, (start, end, size, reading_count))| {
                    Action::CommitData(DataCommitmentBody {
                        patient,
                        device,
                        cid: Cid { digest },
                        readings_root: sha256(&digest.0),
                        loinc_codes,
                        time_range: TimeRange { start, end },
                        size,
                        reading_count,
                    })
                }
            ),
        (
            prop::sample::select(vec![
                CareRole::PersonUnderCare,
                CareRole::PrimaryProvider,
                CareRole::SecondaryProvider,
                CareRole::TemporaryCaregiver,
            ]),
            public_key(),
            any::<u64>(),
            prop::collection::vec(loinc_code(), 0..3),
        )
            .prop_map(|(role, grantee, now, codes)| {
                Action::GrantConsent(role.terms(Grantee::Organisation(grantee), now, codes))
            }),
        (hash(), prop::collection::vec(hash(), 0..5))
            .prop_map(|(study, evidence)| Action::JoinStudy { study, evidence }),
    ]
}

fn signed_tx() -> impl Strategy<Value = Tx> {
    (0u64..4, chain_id(), any::<u64>(), action()).prop_map(|(seed, chain_id, nonce, action)| {
        let actor = Actor::from_seed(seed);
        TxBody {
            chain_id,
            signer: actor.address(),
            nonce,
            action,
        }
        .sign(&actor.keys.signing)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn headers_round_trip_and_reject_trailing_and_truncated_bytes(h in header(), extra in any::<u8>()) {
        assert_canonical(&h, extra)?;
    }

    #[test]
    fn commits_round_trip_and_reject_trailing_and_truncated_bytes(c in commit(), extra in any::<u8>()) {
        assert_canonical(&c, extra)?;
    }

    #[test]
    fn validator_sets_round_trip_and_stay_valid(set in validator_set(), extra in any::<u8>()) {
        assert_canonical(&set, extra)?;
        let decoded: ValidatorSet = decode(&encode(&set)).unwrap();
        prop_assert_eq!(decoded.validate(), Ok(()));
        prop_assert_eq!(decoded.hash(), set.hash());
    }

    #[test]
    fn signed_txs_round_trip_and_still_verify(tx in signed_tx(), extra in any::<u8>()) {
        assert_canonical(&tx, extra)?;
        let decoded = Tx::from_bytes(&tx.to_bytes()).unwrap();
        prop_assert_eq!(decoded.verify_signature(), Ok(()));
        prop_assert_eq!(decoded.hash(), tx.hash());
        let mut longer = tx.to_bytes();
        longer.push(extra);
        prop_assert!(Tx::from_bytes(&longer).is_err());
    }
}

#[test]
fn every_fixture_value_round_trips_strictly() {
    let f = &*FIXTURE;
    assert_canonical(&f.genesis, 0).unwrap();
    assert_canonical(&f.account_proof, 0).unwrap();
    assert_canonical(&f.absent_proof, 0xFF).unwrap();
    assert_canonical(&sample_access_request(), 1).unwrap();
    let leaves: Vec<Vec<u8>> = sample_txs().iter().map(Tx::to_bytes).collect();
    assert_canonical(&merkle::prove_inclusion(&leaves, 3).unwrap(), 7).unwrap();
    assert_canonical(
        &Block {
            header: f.block.header.clone(),
            txs: leaves,
        },
        0,
    )
    .unwrap();
    let genesis_account = GenesisAccount {
        address: Actor::from_seed(1).address(),
        role: Role::Organisation,
        encryption_key: EncryptionKey([1; 32]),
        balance: 3,
        admitted: true,
        attested_by: None,
    };
    assert_canonical(&genesis_account, 0).unwrap();
}

#[test]
fn non_canonical_tags_and_bools_are_refused() {
    // borsh gives each value one encoding only if tags and bools outside their range are
    // errors rather than being read as "some other true" or "some other variant".
    let account = Account {
        role: Role::Patient,
        encryption_key: EncryptionKey([0; 32]),
        balance: 0,
        admitted: true,
        attested_by: None,
    };
    let bytes = encode(&account);
    let admitted_at = 1 + 32 + 8;
    assert_eq!(bytes[admitted_at], 1);
    let mut two = bytes.clone();
    two[admitted_at] = 2;
    assert!(decode::<Account>(&two).is_err(), "bool 2 accepted");
    let mut role = bytes.clone();
    role[0] = 6;
    assert!(decode::<Account>(&role).is_err(), "role tag 6 accepted");
    let mut option = bytes;
    *option.last_mut().unwrap() = 2;
    assert!(decode::<Account>(&option).is_err(), "option tag 2 accepted");
}

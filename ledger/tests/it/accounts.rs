//! Accounts, signatures, nonces, governance, attestation and transfers.

use crate::support::{reject, World};
use ledger::crypto::{Signature, SignatureError};
use ledger::exec::apply_tx;
use ledger::state::keys::{self, ValidatorSlot};
use ledger::state::StateReadExt;
use ledger::test_utils::{validator_key, Actor, TestChain};
use ledger::tx::{Action, TxBody};
use ledger::types::Role;
use ledger::{TxError, Validator, ValidatorSet};

#[test]
fn registration_creates_an_account_once() {
    let mut chain = TestChain::new(1);
    let alice = chain.register(10, Role::Patient);
    let account: ledger::state::records::Account = chain
        .state
        .read(&keys::account(&alice.address()))
        .unwrap()
        .unwrap();
    assert_eq!(account.role, Role::Patient);
    assert_eq!(account.encryption_key, alice.keys.encryption_key());
    let again = Action::RegisterAccount {
        role: Role::Clinician,
        encryption_key: alice.keys.encryption_key(),
    };
    assert_eq!(
        reject(&mut chain, &alice, again),
        TxError::AlreadyRegistered(alice.address())
    );
}

#[test]
fn wrong_chain_id_is_refused() {
    let mut chain = TestChain::new(1);
    let alice = Actor::from_seed(10);
    let tx = TxBody {
        chain_id: "another-chain".into(),
        signer: alice.address(),
        nonce: 0,
        action: Action::RegisterAccount {
            role: Role::Patient,
            encryption_key: alice.keys.encryption_key(),
        },
    }
    .sign(&alice.keys.signing);
    assert_eq!(
        chain.submit(tx),
        Err(TxError::WrongChain {
            expected: "medledger-test".into(),
            got: "another-chain".into()
        })
    );
}

#[test]
fn bad_signature_is_refused_and_names_the_signer() {
    let mut chain = TestChain::new(1);
    let alice = Actor::from_seed(10);
    let mut tx = alice.tx_at_current_nonce(Action::RegisterAccount {
        role: Role::Patient,
        encryption_key: alice.keys.encryption_key(),
    });
    tx.signature = Signature([1; 64]);
    assert!(matches!(chain.submit(tx.clone()), Err(TxError::BadSignature(_))));
    // Same through apply_tx: the single-tx path and the block batch path agree.
    assert_eq!(
        apply_tx(&chain.state, &chain.ctx(), &tx),
        Err(TxError::BadSignature(SignatureError::Invalid(alice.address())))
    );
    // A signature by someone else over the same body.
    let mallory = Actor::from_seed(11);
    let mut forged = alice.tx_at_current_nonce(Action::RegisterAccount {
        role: Role::Patient,
        encryption_key: alice.keys.encryption_key(),
    });
    forged.signature = mallory.keys.sign(&forged.body.sign_bytes());
    assert!(matches!(chain.submit(forged), Err(TxError::BadSignature(_))));
}

#[test]
fn replayed_and_out_of_order_nonces_are_refused() {
    let mut chain = TestChain::new(1);
    let mut alice = chain.register(10, Role::Patient);
    let bob = chain.register(11, Role::Patient);
    chain.fund(&alice, 100);
    let first = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 1,
    });
    chain.submit(first.clone()).unwrap();
    assert_eq!(
        chain.submit(first),
        Err(TxError::NonceMismatch {
            signer: alice.address(),
            expected: 2,
            got: 1
        })
    );
    alice.nonce += 1; // skip one
    let gap = alice.tx(Action::Transfer {
        to: bob.address(),
        amount: 1,
    });
    assert_eq!(
        chain.submit(gap),
        Err(TxError::NonceMismatch {
            signer: alice.address(),
            expected: 2,
            got: 3
        })
    );
}

#[test]
fn only_governance_admits_organisations() {
    let mut chain = TestChain::new(1);
    let hospital = chain.register(20, Role::Organisation);
    let patient = chain.register(21, Role::Patient);
    assert_eq!(
        reject(
            &mut chain,
            &patient,
            Action::AdmitOrganisation {
                organisation: hospital.address()
            }
        ),
        TxError::NotGovernance(patient.address())
    );
    assert_eq!(
        chain.governance_tx(Action::AdmitOrganisation {
            organisation: patient.address()
        }),
        Err(TxError::WrongRole {
            account: patient.address(),
            expected: Role::Organisation,
            got: Role::Patient
        })
    );
    chain
        .governance_tx(Action::AdmitOrganisation {
            organisation: hospital.address(),
        })
        .unwrap();
    assert_eq!(
        chain.governance_tx(Action::AdmitOrganisation {
            organisation: hospital.address()
        }),
        Err(TxError::AlreadyAdmitted(hospital.address()))
    );
}

#[test]
fn clinicians_are_attested_only_by_admitted_organisations() {
    let mut world = World::new();
    let w = &mut world;
    // The World's hospital attested its clinician.
    assert_eq!(
        w.account(&w.clinician.address()).attested_by,
        Some(w.hospital.address())
    );
    let mut clinic = w.chain.register(30, Role::Organisation);
    assert_eq!(
        reject(
            &mut w.chain,
            &clinic,
            Action::AttestClinician {
                clinician: w.rogue_clinician.address()
            }
        ),
        TxError::OrganisationNotAdmitted(clinic.address())
    );
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::AttestClinician {
                clinician: w.rogue_clinician.address()
            }
        ),
        TxError::WrongRole {
            account: w.patient.address(),
            expected: Role::Organisation,
            got: Role::Patient
        }
    );
    w.chain
        .governance_tx(Action::AdmitOrganisation {
            organisation: clinic.address(),
        })
        .unwrap();
    assert_eq!(
        reject(
            &mut w.chain,
            &clinic,
            Action::AttestClinician {
                clinician: w.caregiver.address()
            }
        ),
        TxError::WrongRole {
            account: w.caregiver.address(),
            expected: Role::Clinician,
            got: Role::Caregiver
        }
    );
    w.chain
        .submit(clinic.tx(Action::AttestClinician {
            clinician: w.rogue_clinician.address(),
        }))
        .unwrap();
    assert_eq!(
        w.account(&w.rogue_clinician.address()).attested_by,
        Some(clinic.address())
    );
}

#[test]
fn transfers_move_exact_amounts_and_never_overdraw() {
    let mut chain = TestChain::new(1);
    let mut alice = chain.register(10, Role::Patient);
    let bob = chain.register(11, Role::Researcher);
    chain.fund(&alice, 100);
    chain
        .submit(alice.tx(Action::Transfer {
            to: bob.address(),
            amount: 40,
        }))
        .unwrap();
    let balance = |chain: &TestChain, a: &Actor| -> u64 {
        chain
            .state
            .read::<ledger::state::records::Account>(&keys::account(&a.address()))
            .unwrap()
            .unwrap()
            .balance
    };
    assert_eq!((balance(&chain, &alice), balance(&chain, &bob)), (60, 40));
    assert_eq!(
        reject(
            &mut chain,
            &alice,
            Action::Transfer {
                to: bob.address(),
                amount: 61
            }
        ),
        TxError::InsufficientBalance {
            account: alice.address(),
            balance: 60,
            needed: 61
        }
    );
    assert_eq!(
        reject(
            &mut chain,
            &alice,
            Action::Transfer {
                to: bob.address(),
                amount: 0
            }
        ),
        TxError::ZeroAmount
    );
    let stranger = Actor::from_seed(99);
    assert_eq!(
        reject(
            &mut chain,
            &alice,
            Action::Transfer {
                to: stranger.address(),
                amount: 1
            }
        ),
        TxError::UnknownAccount(stranger.address())
    );
    assert_eq!((balance(&chain, &alice), balance(&chain, &bob)), (60, 40));
}

#[test]
fn validator_updates_take_effect_two_heights_later() {
    let mut chain = TestChain::new(4);
    let newcomer = validator_key(7);
    chain.add_validator_key(newcomer.clone());
    let before = chain.blocks.len();
    chain
        .governance_tx(Action::UpdateValidator {
            validator: Validator {
                address: newcomer.public_key(),
                power: 10,
            },
        })
        .unwrap();
    let h = chain.height;
    let pending: ValidatorSet = chain
        .state
        .read(&keys::validators(ValidatorSlot::Pending))
        .unwrap()
        .unwrap();
    assert_eq!(pending.len(), 5);
    // Block h (with the update) and h+1 are still signed by 4; h+1 announces 5 as next; h+2 has 5.
    let b1 = chain.block(&[]).unwrap();
    let b2 = chain.block(&[]).unwrap();
    assert_eq!(chain.blocks[before].header.height, h);
    assert_eq!(chain.blocks[before].validators.len(), 4);
    assert_eq!(b1.validators.len(), 4);
    assert_eq!(b1.header.next_validators_hash, pending.hash());
    assert_eq!(b2.validators.len(), 5);
    assert_eq!(b2.commit.signatures.len(), 5);
    assert!(b2
        .commit
        .signatures
        .iter()
        .any(|s| s.validator == newcomer.public_key()));
}

#[test]
fn validator_updates_need_governance_and_keep_the_set_valid() {
    let mut chain = TestChain::new(1);
    let outsider = chain.register(50, Role::Organisation);
    let only = chain.genesis.validators[0].address;
    assert_eq!(
        reject(
            &mut chain,
            &outsider,
            Action::UpdateValidator {
                validator: Validator {
                    address: only,
                    power: 0
                }
            }
        ),
        TxError::NotGovernance(outsider.address())
    );
    assert_eq!(
        chain.governance_tx(Action::UpdateValidator {
            validator: Validator {
                address: only,
                power: 0
            }
        }),
        Err(TxError::ValidatorSet(
            ledger::validators::ValidatorSetError::Empty
        ))
    );
}

//! Research studies: escrow, joining with evidence, delivery and payout, closing.

use crate::support::{code, reject};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Account, Study, StudyStatus};
use ledger::state::StateReadExt;
use ledger::test_utils::{Actor, TestChain};
use ledger::tx::{
    Action, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee, StudyCriteria, StudyTerms,
};
use ledger::types::{loinc, AccessLevel, Cid, Purpose, RecordId, Role, TimeRange, DAY_MS, HOUR_MS};
use ledger::{Hash, TxError};

struct StudyWorld {
    chain: TestChain,
    researcher: Actor,
    study: RecordId,
}

fn balance(chain: &TestChain, a: &Actor) -> u64 {
    chain
        .state
        .read::<Account>(&keys::account(&a.address()))
        .unwrap()
        .unwrap()
        .balance
}

fn study(chain: &TestChain, id: &RecordId) -> Study {
    chain.state.read(&keys::study(id)).unwrap().unwrap()
}

fn terms(chain: &TestChain, reward: u64, escrow: u64) -> StudyTerms {
    StudyTerms {
        description: Cid::of(b"glucose variability study protocol"),
        study_key: Actor::from_seed(777).keys.encryption_key(),
        criteria: StudyCriteria {
            loinc_codes: vec![code(loinc::GLUCOSE_CGM)],
            min_days: 1,
            data_range: TimeRange {
                start: chain.time - 30 * DAY_MS,
                end: chain.time + 30 * DAY_MS,
            },
        },
        reward,
        escrow,
        ends_at: chain.time + 60 * DAY_MS,
    }
}

impl StudyWorld {
    fn new(reward: u64, escrow: u64) -> Self {
        let mut chain = TestChain::new(1);
        chain.advance_time(40 * DAY_MS);
        let mut researcher = chain.register(500, Role::Researcher);
        chain.fund(&researcher, 1_000);
        let t = terms(&chain, reward, escrow);
        chain.submit(researcher.tx(Action::OpenStudy(t))).unwrap();
        let study = *chain
            .state
            .list(ListKind::Studies, &[0; 32])
            .unwrap()
            .last()
            .unwrap();
        StudyWorld {
            chain,
            researcher,
            study,
        }
    }

    /// A patient with one self-signed batch of `codes`; returns the patient and commitment.
    fn patient(&mut self, seed: u64, codes: &[&str]) -> (Actor, RecordId) {
        let mut p = self.chain.register(seed, Role::Patient);
        let end = self.chain.time - HOUR_MS;
        let body = DataCommitmentBody {
            patient: p.address(),
            device: None,
            cid: Cid::of(&seed.to_le_bytes()),
            readings_root: Hash([1; 32]),
            loinc_codes: codes.iter().map(|c| code(c)).collect(),
            time_range: TimeRange {
                start: end - HOUR_MS,
                end,
            },
            size: 1000,
            reading_count: 12,
        };
        self.chain.submit(p.tx(Action::CommitData(body))).unwrap();
        let c = *self
            .chain
            .state
            .list(ListKind::PatientCommitments, &p.address().0)
            .unwrap()
            .last()
            .unwrap();
        (p, c)
    }

    fn consent(&mut self, p: &mut Actor) {
        let from = self.chain.ctx().time;
        let terms = ConsentTerms {
            grantee: Grantee::Study(self.study),
            scope: ConsentScope::default(),
            purpose: Purpose::Research,
            access: AccessLevel::Read,
            valid_from: from,
            valid_until: Some(from + 90 * DAY_MS),
            template: None,
        };
        self.chain.submit(p.tx(Action::GrantConsent(terms))).unwrap();
    }
}

#[test]
fn opening_a_study_escrows_the_rewards() {
    let w = StudyWorld::new(40, 100);
    assert_eq!(balance(&w.chain, &w.researcher), 900);
    let s = study(&w.chain, &w.study);
    assert_eq!(
        (s.escrow_remaining, s.status, s.participants),
        (100, StudyStatus::Open, 0)
    );
}

#[test]
fn studies_need_a_researcher_funds_and_sane_terms() {
    let mut w = StudyWorld::new(40, 100);
    let t = terms(&w.chain, 40, 10_000);
    assert_eq!(
        reject(&mut w.chain, &w.researcher, Action::OpenStudy(t)),
        TxError::InsufficientBalance {
            account: w.researcher.address(),
            balance: 900,
            needed: 10_000
        }
    );
    let t = terms(&w.chain, 40, 39);
    assert_eq!(
        reject(&mut w.chain, &w.researcher, Action::OpenStudy(t)),
        TxError::InvalidTerms("escrow must fund at least one positive reward")
    );
    let patient = w.chain.register(9, Role::Patient);
    let t = terms(&w.chain, 40, 100);
    assert_eq!(
        reject(&mut w.chain, &patient, Action::OpenStudy(t)),
        TxError::WrongRole {
            account: patient.address(),
            expected: Role::Researcher,
            got: Role::Patient
        }
    );
}

#[test]
fn join_needs_consent_and_matching_evidence() {
    let mut w = StudyWorld::new(40, 100);
    let (mut alice, alice_data) = w.patient(1, &[loinc::GLUCOSE_CGM]);
    let study = w.study;
    assert_eq!(
        reject(
            &mut w.chain,
            &alice,
            Action::JoinStudy {
                study,
                evidence: vec![alice_data]
            }
        ),
        TxError::CriteriaNotMet("join needs an active research consent for the study")
    );
    w.consent(&mut alice);
    w.chain
        .submit(alice.tx(Action::JoinStudy {
            study,
            evidence: vec![alice_data],
        }))
        .unwrap();
    assert_eq!(
        reject(
            &mut w.chain,
            &alice,
            Action::JoinStudy {
                study,
                evidence: vec![alice_data]
            }
        ),
        TxError::AlreadyJoined {
            study,
            patient: alice.address()
        }
    );
    // A patient whose data does not match (heart rate only) cannot join.
    let (mut carol, carol_data) = w.patient(3, &[loinc::HEART_RATE]);
    w.consent(&mut carol);
    assert_eq!(
        reject(
            &mut w.chain,
            &carol,
            Action::JoinStudy {
                study,
                evidence: vec![carol_data]
            }
        ),
        TxError::CriteriaNotMet("a cited commitment holds none of the study's codes")
    );
    // Citing someone else's data is not evidence.
    assert!(matches!(
        reject(
            &mut w.chain,
            &carol,
            Action::JoinStudy {
                study,
                evidence: vec![alice_data]
            }
        ),
        TxError::NotPatientsKey { .. }
    ));
    assert_eq!(study_participants(&w), 1);
}

fn study_participants(w: &StudyWorld) -> u32 {
    study(&w.chain, &w.study).participants
}

#[test]
fn delivery_pays_each_participant_exactly_once_and_closes_an_empty_escrow() {
    let mut w = StudyWorld::new(40, 100);
    let study_id = w.study;
    let (mut alice, a_data) = w.patient(1, &[loinc::GLUCOSE_CGM]);
    let (mut bob, b_data) = w.patient(2, &[loinc::GLUCOSE_CGM, loinc::HEART_RATE]);
    let (mut dave, d_data) = w.patient(4, &[loinc::GLUCOSE_CGM]);
    for (p, data) in [(&mut alice, a_data), (&mut bob, b_data), (&mut dave, d_data)] {
        w.consent(p);
        w.chain
            .submit(p.tx(Action::JoinStudy {
                study: study_id,
                evidence: vec![data],
            }))
            .unwrap();
    }
    let deliver = |data| Action::DeliverStudyData {
        study: study_id,
        delivery: Cid::of(b"rewrapped"),
        commitments: vec![data],
    };

    w.chain.submit(alice.tx(deliver(a_data))).unwrap();
    assert_eq!(balance(&w.chain, &alice), 40);
    assert_eq!(study(&w.chain, &study_id).escrow_remaining, 60);
    assert_eq!(
        reject(&mut w.chain, &alice, deliver(a_data)),
        TxError::AlreadyPaid {
            study: study_id,
            patient: alice.address()
        }
    );

    w.chain.submit(bob.tx(deliver(b_data))).unwrap();
    assert_eq!(balance(&w.chain, &bob), 40);
    // 20 left cannot pay a full reward: the study closes and refunds the researcher.
    let s = study(&w.chain, &study_id);
    assert_eq!(
        (s.status, s.escrow_remaining, s.paid),
        (StudyStatus::Closed, 0, 2)
    );
    assert_eq!(balance(&w.chain, &w.researcher), 900 + 20);
    assert_eq!(
        reject(&mut w.chain, &dave, deliver(d_data)),
        TxError::StudyClosed(study_id)
    );
}

#[test]
fn escrow_cannot_be_overdrawn_and_non_participants_are_not_paid() {
    let mut w = StudyWorld::new(40, 100);
    let study_id = w.study;
    let (mut erin, e_data) = w.patient(5, &[loinc::GLUCOSE_CGM]);
    let deliver = Action::DeliverStudyData {
        study: study_id,
        delivery: Cid::of(b"x"),
        commitments: vec![e_data],
    };
    assert_eq!(
        reject(&mut w.chain, &erin, deliver.clone()),
        TxError::NotParticipant {
            study: study_id,
            patient: erin.address()
        }
    );
    w.consent(&mut erin);
    w.chain
        .submit(erin.tx(Action::JoinStudy {
            study: study_id,
            evidence: vec![e_data],
        }))
        .unwrap();
    // Erased data cannot be delivered.
    w.chain
        .submit(erin.tx(Action::EraseData { commitment: e_data }))
        .unwrap();
    assert_eq!(
        reject(&mut w.chain, &erin, deliver),
        TxError::AlreadyErased(e_data)
    );
    assert_eq!(study(&w.chain, &study_id).escrow_remaining, 100);
}

#[test]
fn closing_returns_leftover_escrow() {
    let mut w = StudyWorld::new(40, 100);
    let study_id = w.study;
    let outsider = w.chain.register(6, Role::Patient);
    assert_eq!(
        reject(&mut w.chain, &outsider, Action::CloseStudy { study: study_id }),
        TxError::InvalidTerms("only the researcher may close a study before its end")
    );
    w.chain
        .submit(w.researcher.tx(Action::CloseStudy { study: study_id }))
        .unwrap();
    assert_eq!(balance(&w.chain, &w.researcher), 1_000);
    assert_eq!(
        reject(
            &mut w.chain,
            &w.researcher,
            Action::CloseStudy { study: study_id }
        ),
        TxError::StudyClosed(study_id)
    );
}

#[test]
fn anyone_may_close_a_study_after_its_end() {
    let mut w = StudyWorld::new(40, 100);
    let study_id = w.study;
    let mut outsider = w.chain.register(6, Role::Patient);
    w.chain.advance_time(61 * DAY_MS);
    w.chain
        .submit(outsider.tx(Action::CloseStudy { study: study_id }))
        .unwrap();
    assert_eq!(balance(&w.chain, &w.researcher), 1_000);
}

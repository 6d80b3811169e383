//! Consent grants and revocations, care-role templates, break-glass, access records and
//! the access rule.

use crate::support::{code, reject, World};
use ledger::access::{may_read, AccessDenied};
use ledger::crypto::Signature;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{AccessBasis, AccessRecord};
use ledger::state::StateReadExt;
use ledger::test_utils::{Actor, TEST_CHAIN_ID};
use ledger::tx::{
    AccessRequest, Action, CareRole, ConsentScope, ConsentTerms, EmergencyReason, Grantee, MAX_BREAK_GLASS_MS,
};
use ledger::types::{loinc, AccessLevel, Cid, DataCategory, Purpose, RecordId, Role, DAY_MS, HOUR_MS};
use ledger::TxError;

fn treatment_terms(w: &World, grantee: Grantee, codes: &[&str]) -> ConsentTerms {
    ConsentTerms {
        grantee,
        scope: ConsentScope {
            loinc_codes: codes.iter().map(|c| code(c)).collect(),
            ..Default::default()
        },
        purpose: Purpose::Treatment,
        access: AccessLevel::Read,
        valid_from: w.next_block_time(),
        valid_until: Some(w.next_block_time() + 30 * DAY_MS),
        template: None,
    }
}

fn request(
    w: &World,
    reader: &Actor,
    commitment: RecordId,
    purpose: Purpose,
    time: u64,
    nonce: u64,
) -> ledger::tx::SignedAccessRequest {
    AccessRequest {
        chain_id: TEST_CHAIN_ID.into(),
        reader: reader.address(),
        commitment,
        cid: w.commitment(&commitment).cid,
        purpose,
        time,
        nonce,
    }
    .sign(&reader.keys.signing)
}

#[test]
fn consent_allows_exactly_its_grantee_purpose_and_scope() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let terms = treatment_terms(&w, Grantee::Account(w.clinician.address()), &[loinc::GLUCOSE_CGM]);
    let starts = terms.valid_from;
    let consent = w.grant(terms);
    let now = w.next_block_time();
    let state = &w.chain.state;
    let clinician = w.clinician.address();
    assert_eq!(
        may_read(state, &clinician, &glucose, Purpose::Treatment, now),
        Ok(AccessBasis::Consent(consent))
    );
    // Another purpose, another reader: denied.
    assert_eq!(
        may_read(state, &clinician, &glucose, Purpose::Research, now),
        Err(AccessDenied::NoConsent {
            reader: clinician,
            patient: w.patient.address(),
            purpose: Purpose::Research,
            at: now
        })
    );
    assert!(may_read(state, &w.caregiver.address(), &glucose, Purpose::Treatment, now).is_err());
    // Outside the scope: a blob holding heart rate is not covered by a glucose-only consent.
    let mut body = w.hour_of_glucose();
    body.loinc_codes = vec![code(loinc::GLUCOSE_CGM), code(loinc::HEART_RATE)];
    let tx = w.device_tx(Action::CommitData(body));
    w.chain.submit(tx).unwrap();
    let mixed = w.last_commitment();
    assert!(may_read(&w.chain.state, &clinician, &mixed, Purpose::Treatment, now).is_err());
    // Outside validity: before it starts and after it ends.
    assert!(may_read(
        &w.chain.state,
        &clinician,
        &glucose,
        Purpose::Treatment,
        starts - 1
    )
    .is_err());
    assert!(may_read(
        &w.chain.state,
        &clinician,
        &glucose,
        Purpose::Treatment,
        starts + 30 * DAY_MS
    )
    .is_err());
    // Unknown commitment.
    let unknown = ledger::Hash([1; 32]);
    assert_eq!(
        may_read(&w.chain.state, &clinician, &unknown, Purpose::Treatment, now),
        Err(AccessDenied::UnknownCommitment(unknown))
    );
}

#[test]
fn revocation_ends_access_at_once_but_not_retroactively() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let terms = treatment_terms(&w, Grantee::Account(w.clinician.address()), &[]);
    let before = terms.valid_from;
    let consent = w.grant(terms);
    assert_eq!(
        reject(&mut w.chain, &w.clinician, Action::RevokeConsent { consent }),
        TxError::NotPatientsKey {
            signer: w.clinician.address(),
            patient: w.patient.address()
        }
    );
    w.chain
        .submit(w.patient.tx(Action::RevokeConsent { consent }))
        .unwrap();
    let after = w.next_block_time();
    let clinician = w.clinician.address();
    assert!(may_read(&w.chain.state, &clinician, &glucose, Purpose::Treatment, after).is_err());
    assert_eq!(
        may_read(&w.chain.state, &clinician, &glucose, Purpose::Treatment, before),
        Ok(AccessBasis::Consent(consent))
    );
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::RevokeConsent { consent }),
        TxError::ConsentAlreadyRevoked(consent)
    );
}

#[test]
fn organisation_consent_covers_only_its_attested_clinicians() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let consent = w.grant(treatment_terms(
        &w,
        Grantee::Organisation(w.hospital.address()),
        &[],
    ));
    let now = w.next_block_time();
    assert_eq!(
        may_read(
            &w.chain.state,
            &w.clinician.address(),
            &glucose,
            Purpose::Treatment,
            now
        ),
        Ok(AccessBasis::Consent(consent))
    );
    assert!(may_read(
        &w.chain.state,
        &w.rogue_clinician.address(),
        &glucose,
        Purpose::Treatment,
        now
    )
    .is_err());
    // An organisation that was never admitted cannot be a grantee.
    let lab = w.chain.register(70, Role::Organisation);
    let terms = treatment_terms(&w, Grantee::Organisation(lab.address()), &[]);
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(terms)),
        TxError::OrganisationNotAdmitted(lab.address())
    );
}

#[test]
fn consent_terms_are_validated() {
    let mut w = World::new();
    let grantee = Grantee::Account(w.clinician.address());
    let mut t = treatment_terms(&w, grantee, &[]);
    t.valid_until = Some(t.valid_from);
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(t)),
        TxError::InvalidTerms("consent must end after it starts")
    );
    let mut t = treatment_terms(&w, grantee, &[]);
    t.purpose = Purpose::Emergency;
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(t)),
        TxError::InvalidTerms("emergency access is break-glass, not consent")
    );
    let mut t = treatment_terms(&w, grantee, &[]);
    t.valid_from -= 2 * HOUR_MS;
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(t)),
        TxError::InvalidTerms("consent may not start in the past")
    );
    let stranger = Actor::from_seed(404);
    let t = treatment_terms(&w, Grantee::Account(stranger.address()), &[]);
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(t)),
        TxError::UnknownAccount(stranger.address())
    );
    let t = treatment_terms(&w, Grantee::Account(w.patient.address()), &[]);
    assert_eq!(
        reject(&mut w.chain, &w.clinician, Action::GrantConsent(t)),
        TxError::WrongRole {
            account: w.clinician.address(),
            expected: Role::Patient,
            got: Role::Clinician
        }
    );
    let mut t = treatment_terms(&w, grantee, &[loinc::HEART_RATE]);
    t.scope.loinc_codes.push(code(loinc::HEART_RATE));
    assert!(matches!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(t)),
        TxError::InvalidValue(_)
    ));
}

#[test]
fn care_role_templates_grant_their_terms_and_enforce_their_limits() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let now = w.next_block_time();
    // Temporary caregiver: device readings only, caregiving, a week.
    let terms = CareRole::TemporaryCaregiver.terms(Grantee::Account(w.caregiver.address()), now, vec![]);
    assert_eq!(terms.scope.categories, vec![DataCategory::DeviceReadings]);
    assert_eq!(terms.valid_until, Some(now + 7 * DAY_MS));
    let consent = w.grant(terms.clone());
    let caregiver = w.caregiver.address();
    assert_eq!(
        may_read(&w.chain.state, &caregiver, &glucose, Purpose::Caregiving, now),
        Ok(AccessBasis::Consent(consent))
    );
    assert!(may_read(
        &w.chain.state,
        &caregiver,
        &glucose,
        Purpose::Caregiving,
        now + 8 * DAY_MS
    )
    .is_err());
    // The template's ceiling: a "temporary" caregiver for 60 days is refused.
    let mut too_long = terms;
    too_long.valid_from = w.next_block_time();
    too_long.valid_until = Some(too_long.valid_from + 60 * DAY_MS);
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::GrantConsent(too_long)),
        TxError::InvalidTerms("the care-role template limits how long this consent may last")
    );
    // Primary provider: everything, may annotate, no end; secondary: read only, time-limited.
    let primary = CareRole::PrimaryProvider.terms(Grantee::Account(w.clinician.address()), now, vec![]);
    assert_eq!(
        (primary.access, primary.valid_until, primary.purpose),
        (AccessLevel::ReadAndAnnotate, None, Purpose::Treatment)
    );
    let secondary = CareRole::SecondaryProvider.terms(
        Grantee::Account(w.clinician.address()),
        now,
        vec![code(loinc::HEART_RATE)],
    );
    assert_eq!(secondary.access, AccessLevel::Read);
    assert!(secondary.valid_until.is_some());
    let guardian = CareRole::PersonUnderCare.terms(Grantee::Account(w.caregiver.address()), now, vec![]);
    assert_eq!(guardian.purpose, Purpose::Caregiving);
    w.grant(primary);
    w.grant(secondary);
}

#[test]
fn break_glass_is_for_attested_clinicians_time_limited_and_emergency_only() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let patient = w.patient.address();
    let open = |duration_ms| Action::OpenBreakGlass {
        patient,
        reason: EmergencyReason::Unconscious,
        duration_ms,
    };
    assert_eq!(
        reject(&mut w.chain, &w.rogue_clinician, open(HOUR_MS)),
        TxError::NotAttested(w.rogue_clinician.address())
    );
    assert_eq!(
        reject(&mut w.chain, &w.caregiver, open(HOUR_MS)),
        TxError::WrongRole {
            account: w.caregiver.address(),
            expected: Role::Clinician,
            got: Role::Caregiver
        }
    );
    assert_eq!(
        reject(&mut w.chain, &w.clinician, open(MAX_BREAK_GLASS_MS + 1)),
        TxError::BreakGlassTooLong {
            requested_ms: MAX_BREAK_GLASS_MS + 1,
            max_ms: MAX_BREAK_GLASS_MS
        }
    );
    let opened_at = w.next_block_time();
    w.chain.submit(w.clinician.tx(open(HOUR_MS))).unwrap();
    let bg = w
        .chain
        .state
        .list(ListKind::PatientBreakGlass, &patient.0)
        .unwrap()[0];
    let clinician = w.clinician.address();
    assert_eq!(
        may_read(
            &w.chain.state,
            &clinician,
            &glucose,
            Purpose::Emergency,
            opened_at
        ),
        Ok(AccessBasis::BreakGlass(bg))
    );
    // Break-glass is not a consent for routine treatment, and it expires.
    assert!(may_read(
        &w.chain.state,
        &clinician,
        &glucose,
        Purpose::Treatment,
        opened_at
    )
    .is_err());
    assert!(may_read(
        &w.chain.state,
        &clinician,
        &glucose,
        Purpose::Emergency,
        opened_at + HOUR_MS
    )
    .is_err());
}

#[test]
fn storage_nodes_record_allowed_reads_once() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let consent = w.grant(treatment_terms(&w, Grantee::Account(w.clinician.address()), &[]));
    let now = w.next_block_time();
    let req = request(&w, &w.clinician, glucose, Purpose::Treatment, now, 1);
    w.chain
        .submit(w.hospital.tx(Action::RecordAccess { request: req.clone() }))
        .unwrap();
    let log = w
        .chain
        .state
        .list(ListKind::PatientAccess, &w.patient.address().0)
        .unwrap();
    assert_eq!(log, vec![req.request.id()]);
    let record: AccessRecord = w
        .chain
        .state
        .read(&keys::access_record(&log[0]))
        .unwrap()
        .unwrap();
    assert_eq!(
        (record.reader(), record.basis, record.served_by),
        (
            w.clinician.address(),
            AccessBasis::Consent(consent),
            w.hospital.address()
        )
    );
    assert_eq!(
        reject(
            &mut w.chain,
            &w.hospital,
            Action::RecordAccess { request: req.clone() }
        ),
        TxError::AccessAlreadyRecorded(req.request.id())
    );
}

#[test]
fn access_records_are_refused_when_the_read_was_not_allowed_or_not_genuine() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let now = w.next_block_time();
    let denied = request(&w, &w.caregiver, glucose, Purpose::Caregiving, now, 1);
    assert!(matches!(
        reject(
            &mut w.chain,
            &w.hospital,
            Action::RecordAccess { request: denied }
        ),
        TxError::AccessDenied(AccessDenied::NoConsent { .. })
    ));
    w.grant(treatment_terms(&w, Grantee::Account(w.clinician.address()), &[]));
    let now = w.next_block_time();
    let mut forged = request(&w, &w.clinician, glucose, Purpose::Treatment, now, 2);
    forged.signature = Signature([0; 64]);
    assert!(matches!(
        reject(
            &mut w.chain,
            &w.hospital,
            Action::RecordAccess { request: forged }
        ),
        TxError::BadSignature(_)
    ));
    let mut wrong_blob = request(&w, &w.clinician, glucose, Purpose::Treatment, now, 3).request;
    wrong_blob.cid = Cid::of(b"something else");
    let wrong_blob = wrong_blob.sign(&w.clinician.keys.signing);
    assert!(matches!(
        reject(
            &mut w.chain,
            &w.hospital,
            Action::RecordAccess { request: wrong_blob }
        ),
        TxError::CidMismatch { .. }
    ));
    let stale = request(&w, &w.clinician, glucose, Purpose::Treatment, now - 2 * DAY_MS, 4);
    assert!(matches!(
        reject(&mut w.chain, &w.hospital, Action::RecordAccess { request: stale }),
        TxError::AccessRequestStale { .. }
    ));
    let ok = request(&w, &w.clinician, glucose, Purpose::Treatment, now, 5);
    let lab = w.chain.register(80, Role::Organisation);
    assert_eq!(
        reject(&mut w.chain, &lab, Action::RecordAccess { request: ok }),
        TxError::OrganisationNotAdmitted(lab.address())
    );
}

#[test]
fn a_read_before_revocation_is_still_recorded_after_it() {
    let mut w = World::new();
    let glucose = w.commit_glucose();
    let terms = treatment_terms(&w, Grantee::Account(w.clinician.address()), &[]);
    let read_time = terms.valid_from;
    w.grant(terms);
    let consent = w.last_consent();
    w.chain
        .submit(w.patient.tx(Action::RevokeConsent { consent }))
        .unwrap();
    let req = request(&w, &w.clinician, glucose, Purpose::Treatment, read_time, 9);
    w.chain
        .submit(w.hospital.tx(Action::RecordAccess { request: req }))
        .unwrap();
    let late = request(
        &w,
        &w.clinician,
        glucose,
        Purpose::Treatment,
        w.next_block_time(),
        10,
    );
    assert!(matches!(
        reject(&mut w.chain, &w.hospital, Action::RecordAccess { request: late }),
        TxError::AccessDenied(_)
    ));
}

//! Alert rules and alerts, clinician notes.

use crate::support::{code, reject, World};
use ledger::access::{may_read, AccessDenied};
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{AccessBasis, Alert, AlertRule};
use ledger::state::StateReadExt;
use ledger::tx::{Action, AlertCondition, CareRole, EmergencyReason, Grantee};
use ledger::types::{loinc, Cid, DataCategory, Purpose, TimeRange, HOUR_MS};
use ledger::TxError;

fn hypo() -> AlertCondition {
    AlertCondition::Below { milli: 70_000 }
}

#[test]
fn alert_conditions_fire_on_the_right_side() {
    assert!(hypo().fires(69_999));
    assert!(!hypo().fires(70_000));
    assert!(AlertCondition::Above { milli: 180_000 }.fires(180_001));
}

#[test]
fn patients_and_annotating_clinicians_set_rules_and_devices_raise_alerts() {
    let mut w = World::new();
    let patient = w.patient.address();
    let set = Action::SetAlertRule {
        patient,
        loinc: code(loinc::GLUCOSE_CGM),
        condition: hypo(),
    };
    assert_eq!(
        reject(&mut w.chain, &w.clinician, set.clone()),
        TxError::AccessDenied(AccessDenied::NoAnnotateConsent {
            reader: w.clinician.address(),
            patient
        })
    );
    w.chain.submit(w.patient.tx(set.clone())).unwrap();
    let now = w.next_block_time();
    w.grant(CareRole::PrimaryProvider.terms(Grantee::Account(w.clinician.address()), now, vec![]));
    w.chain.submit(w.clinician.tx(set)).unwrap();
    let rules = w
        .chain
        .state
        .list(ListKind::PatientAlertRules, &patient.0)
        .unwrap();
    assert_eq!(rules.len(), 2);
    let rule: AlertRule = w.chain.state.read(&keys::alert_rule(&rules[1])).unwrap().unwrap();
    assert_eq!(rule.set_by, w.clinician.address());

    let batch = w.commit_glucose();
    let tx = w.device_tx(Action::RaiseAlert {
        patient,
        rule: rules[0],
        commitment: batch,
    });
    w.chain.submit(tx).unwrap();
    let alerts = w.chain.state.list(ListKind::PatientAlerts, &patient.0).unwrap();
    let alert: Alert = w.chain.state.read(&keys::alert(&alerts[0])).unwrap().unwrap();
    assert_eq!(
        (alert.rule, alert.commitment, alert.raised_by),
        (rules[0], batch, w.device.public_key())
    );
}

#[test]
fn alerts_must_cite_a_live_rule_and_a_matching_batch() {
    let mut w = World::new();
    let patient = w.patient.address();
    w.chain
        .submit(w.patient.tx(Action::SetAlertRule {
            patient,
            loinc: code(loinc::HEART_RATE),
            condition: hypo(),
        }))
        .unwrap();
    let rule = w
        .chain
        .state
        .list(ListKind::PatientAlertRules, &patient.0)
        .unwrap()[0];
    let glucose_batch = w.commit_glucose();
    // The batch holds no heart rate.
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RaiseAlert {
                patient,
                rule,
                commitment: glucose_batch
            }
        ),
        TxError::InvalidTerms("the alert's commitment must be the patient's and hold the rule's code")
    );
    // A removed rule no longer fires; only the patient or the setter removes it.
    assert!(matches!(
        reject(&mut w.chain, &w.caregiver, Action::RemoveAlertRule { rule }),
        TxError::NotPatientsKey { .. }
    ));
    w.chain
        .submit(w.patient.tx(Action::RemoveAlertRule { rule }))
        .unwrap();
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RaiseAlert {
                patient,
                rule,
                commitment: glucose_batch
            }
        ),
        TxError::UnknownRecord {
            kind: "alert rule",
            id: rule
        }
    );
    // Someone else's key cannot raise the patient's alerts.
    assert!(matches!(
        reject(
            &mut w.chain,
            &w.caregiver,
            Action::RaiseAlert {
                patient,
                rule,
                commitment: glucose_batch
            }
        ),
        TxError::UnknownDevice(_)
    ));
}

#[test]
fn clinician_notes_need_attestation_and_annotate_consent_or_break_glass() {
    let mut w = World::new();
    let patient = w.patient.address();
    let t = w.next_block_time() - HOUR_MS;
    let note = |n: u8| Action::AddClinicianNote {
        patient,
        cid: Cid::of(&[n]),
        size: 512,
        time_range: TimeRange {
            start: t - HOUR_MS,
            end: t,
        },
    };
    assert_eq!(
        reject(&mut w.chain, &w.rogue_clinician, note(1)),
        TxError::NotAttested(w.rogue_clinician.address())
    );
    assert_eq!(
        reject(&mut w.chain, &w.clinician, note(1)),
        TxError::AccessDenied(AccessDenied::NoAnnotateConsent {
            reader: w.clinician.address(),
            patient
        })
    );
    // Break-glass lets the emergency clinician write.
    w.chain
        .submit(w.clinician.tx(Action::OpenBreakGlass {
            patient,
            reason: EmergencyReason::LifeThreatening,
            duration_ms: HOUR_MS,
        }))
        .unwrap();
    w.chain.submit(w.clinician.tx(note(1))).unwrap();
    let id = w.last_commitment();
    let c = w.commitment(&id);
    assert_eq!(
        (c.category, c.author),
        (DataCategory::ClinicianNotes, Some(w.clinician.address()))
    );
    assert_eq!(
        may_read(
            &w.chain.state,
            &patient,
            &id,
            Purpose::Treatment,
            w.next_block_time()
        ),
        Ok(AccessBasis::Owner)
    );
    // And so does a primary-provider consent, after break-glass has expired.
    w.chain.advance_time(2 * HOUR_MS);
    assert!(matches!(
        reject(&mut w.chain, &w.clinician, note(2)),
        TxError::AccessDenied(_)
    ));
    let now = w.next_block_time();
    w.grant(CareRole::PrimaryProvider.terms(Grantee::Account(w.clinician.address()), now, vec![]));
    w.chain.submit(w.clinician.tx(note(2))).unwrap();
}

//! Research studies: escrowed rewards, joining with evidence, delivery and payout, closing.

use super::accounts::{credit, debit, load_with_role};
use super::data::load_commitment;
use super::{BlockContext, TxError};
use crate::crypto::Address;
use crate::state::keys::{self, ListKind};
use crate::state::records::{Consent, DataCommitment, Participation, Study, StudyStatus};
use crate::state::{Overlay, StateReadExt};
use crate::tx::{record_id, Grantee, StudyTerms, MAX_CODES, MAX_EVIDENCE};
use crate::types::{validate_set, Cid, DataCategory, Purpose, RecordId, Role, DAY_MS};
use std::collections::BTreeSet;

fn load_open_study(o: &Overlay<'_>, ctx: &BlockContext, id: &RecordId) -> Result<Study, TxError> {
    let study: Study = o.read(&keys::study(id))?.ok_or(TxError::UnknownRecord {
        kind: "study",
        id: *id,
    })?;
    if study.status != StudyStatus::Open || ctx.time >= study.terms.ends_at {
        return Err(TxError::StudyClosed(*id));
    }
    Ok(study)
}

pub(super) fn open(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    nonce: u64,
    terms: &StudyTerms,
) -> Result<(), TxError> {
    load_with_role(o, &signer, Role::Researcher)?;
    let criteria = &terms.criteria;
    if criteria.loinc_codes.is_empty() {
        return Err(TxError::InvalidTerms("a study needs at least one LOINC code"));
    }
    validate_set("LOINC codes", &criteria.loinc_codes, MAX_CODES)?;
    for code in &criteria.loinc_codes {
        code.validate()?;
    }
    criteria.data_range.validate()?;
    if terms.reward == 0 || terms.escrow < terms.reward {
        return Err(TxError::InvalidTerms(
            "escrow must fund at least one positive reward",
        ));
    }
    if terms.ends_at <= ctx.time {
        return Err(TxError::InvalidTerms("a study must end in the future"));
    }
    debit(o, &signer, terms.escrow)?;
    let id = record_id(b"study", &signer, nonce);
    let study = Study {
        researcher: signer,
        terms: terms.clone(),
        escrow_remaining: terms.escrow,
        participants: 0,
        paid: 0,
        status: StudyStatus::Open,
    };
    o.write(keys::study(&id), &study);
    o.push_to_list(ListKind::Studies, &[0; 32], &id)?;
    Ok(())
}

/// The patient's active research consent for this study, if any.
fn study_consent(
    o: &Overlay<'_>,
    ctx: &BlockContext,
    patient: &Address,
    study: &RecordId,
) -> Result<Option<Consent>, TxError> {
    for id in o.list(ListKind::PatientConsents, &patient.0)? {
        if let Some(consent) = o.read::<Consent>(&keys::consent(&id))? {
            if consent.terms.grantee == Grantee::Study(*study)
                && consent.terms.purpose == Purpose::Research
                && consent.is_active_at(ctx.time)
            {
                return Ok(Some(consent));
            }
        }
    }
    Ok(None)
}

/// Loads cited commitments and checks each is the patient's, live device data inside the
/// study's range; returns them.
fn cited_commitments(
    o: &Overlay<'_>,
    patient: &Address,
    study: &Study,
    ids: &[RecordId],
) -> Result<Vec<DataCommitment>, TxError> {
    if ids.is_empty() {
        return Err(TxError::CriteriaNotMet("no commitments cited"));
    }
    validate_set("cited commitments", ids, MAX_EVIDENCE)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let c = load_commitment(o, id)?;
        if c.patient != *patient {
            return Err(TxError::NotPatientsKey {
                signer: *patient,
                patient: c.patient,
            });
        }
        if c.erased_at.is_some() {
            return Err(TxError::AlreadyErased(*id));
        }
        if c.category != DataCategory::DeviceReadings
            || !study.terms.criteria.data_range.covers(&c.time_range)
        {
            return Err(TxError::CriteriaNotMet(
                "a cited commitment is outside the study's data range",
            ));
        }
        if !c
            .loinc_codes
            .iter()
            .any(|code| study.terms.criteria.loinc_codes.contains(code))
        {
            return Err(TxError::CriteriaNotMet(
                "a cited commitment holds none of the study's codes",
            ));
        }
        out.push(c);
    }
    Ok(out)
}

pub(super) fn join(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    id: &RecordId,
    evidence: &[RecordId],
) -> Result<(), TxError> {
    load_with_role(o, &signer, Role::Patient)?;
    let mut study = load_open_study(o, ctx, id)?;
    let key = keys::participation(id, &signer);
    if o.contains(&key) {
        return Err(TxError::AlreadyJoined {
            study: *id,
            patient: signer,
        });
    }
    if study_consent(o, ctx, &signer, id)?.is_none() {
        return Err(TxError::CriteriaNotMet(
            "join needs an active research consent for the study",
        ));
    }
    let commitments = cited_commitments(o, &signer, &study, evidence)?;
    let criteria = &study.terms.criteria;
    let covered: BTreeSet<_> = commitments.iter().flat_map(|c| c.loinc_codes.iter()).collect();
    if !criteria.loinc_codes.iter().all(|code| covered.contains(code)) {
        return Err(TxError::CriteriaNotMet(
            "the evidence does not cover every code the study needs",
        ));
    }
    let days: BTreeSet<u64> = commitments
        .iter()
        .flat_map(|c| {
            (c.time_range.start / DAY_MS)..=(c.time_range.end / DAY_MS).min(c.time_range.start / DAY_MS + 366)
        })
        .collect();
    if days.len() < criteria.min_days as usize {
        return Err(TxError::CriteriaNotMet(
            "the evidence spans fewer days than the study needs",
        ));
    }
    o.write(
        key,
        &Participation {
            joined_at: ctx.time,
            delivery: None,
            paid: 0,
        },
    );
    o.push_to_list(ListKind::StudyParticipants, &id.0, &crate::crypto::Hash(signer.0))?;
    study.participants += 1;
    o.write(keys::study(id), &study);
    Ok(())
}

pub(super) fn deliver(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    id: &RecordId,
    delivery: Cid,
    commitments: &[RecordId],
) -> Result<(), TxError> {
    let mut study = load_open_study(o, ctx, id)?;
    let key = keys::participation(id, &signer);
    let mut participation: Participation = o.read(&key)?.ok_or(TxError::NotParticipant {
        study: *id,
        patient: signer,
    })?;
    if participation.paid > 0 {
        return Err(TxError::AlreadyPaid {
            study: *id,
            patient: signer,
        });
    }
    let consent = study_consent(o, ctx, &signer, id)?.ok_or(TxError::CriteriaNotMet(
        "delivery needs an active research consent for the study",
    ))?;
    for c in cited_commitments(o, &signer, &study, commitments)? {
        if !crate::access::scope_covers(&consent.terms.scope, &c) {
            return Err(TxError::CriteriaNotMet(
                "a delivered commitment is outside the consent's scope",
            ));
        }
    }
    let reward = study.terms.reward;
    if study.escrow_remaining < reward {
        return Err(TxError::EscrowExhausted {
            study: *id,
            remaining: study.escrow_remaining,
            reward,
        });
    }
    study.escrow_remaining -= reward;
    study.paid += 1;
    credit(o, &signer, reward)?;
    participation.delivery = Some(delivery);
    participation.paid = reward;
    o.write(key, &participation);
    // A study that can no longer pay a full reward closes and returns what is left.
    if study.escrow_remaining < reward {
        close_and_refund(o, &mut study)?;
    }
    o.write(keys::study(id), &study);
    Ok(())
}

fn close_and_refund(o: &mut Overlay<'_>, study: &mut Study) -> Result<(), TxError> {
    if study.escrow_remaining > 0 {
        credit(o, &study.researcher, study.escrow_remaining)?;
        study.escrow_remaining = 0;
    }
    study.status = StudyStatus::Closed;
    Ok(())
}

pub(super) fn close(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    id: &RecordId,
) -> Result<(), TxError> {
    let mut study: Study = o.read(&keys::study(id))?.ok_or(TxError::UnknownRecord {
        kind: "study",
        id: *id,
    })?;
    if study.status == StudyStatus::Closed {
        return Err(TxError::StudyClosed(*id));
    }
    if signer != study.researcher && ctx.time < study.terms.ends_at {
        return Err(TxError::InvalidTerms(
            "only the researcher may close a study before its end",
        ));
    }
    close_and_refund(o, &mut study)?;
    o.write(keys::study(id), &study);
    Ok(())
}

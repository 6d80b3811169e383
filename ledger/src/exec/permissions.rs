//! Consent grants and revocations, break-glass, and access records.

use super::accounts::{attested_clinician, load, load_with_role};
use super::data::load_commitment;
use super::{BlockContext, TxError, ACCESS_RECORD_WINDOW_MS, MAX_CLOCK_DRIFT_MS};
use crate::access::may_read;
use crate::crypto::Address;
use crate::state::keys::{self, ListKind};
use crate::state::records::{AccessRecord, BreakGlass, Consent, Study, StudyStatus};
use crate::state::Overlay;
use crate::tx::{
    record_id, ConsentTerms, EmergencyReason, Grantee, SignedAccessRequest, MAX_BREAK_GLASS_MS, MAX_CODES,
    MAX_SCOPE_DEVICES,
};
use crate::types::{validate_set, Purpose, RecordId, Role};

fn validate_terms(terms: &ConsentTerms, ctx: &BlockContext) -> Result<(), TxError> {
    let scope = &terms.scope;
    validate_set("categories", &scope.categories, 2)?;
    validate_set("LOINC codes", &scope.loinc_codes, MAX_CODES)?;
    validate_set("devices", &scope.devices, MAX_SCOPE_DEVICES)?;
    for code in &scope.loinc_codes {
        code.validate()?;
    }
    if let Some(range) = &scope.data_range {
        range.validate()?;
    }
    if terms.valid_from.saturating_add(MAX_CLOCK_DRIFT_MS) < ctx.time {
        return Err(TxError::InvalidTerms("consent may not start in the past"));
    }
    if terms.valid_until.is_some_and(|until| until <= terms.valid_from) {
        return Err(TxError::InvalidTerms("consent must end after it starts"));
    }
    if let Some(max) = terms.template.and_then(|t| t.max_duration()) {
        match terms.valid_until {
            Some(until) if until - terms.valid_from <= max => {}
            _ => {
                return Err(TxError::InvalidTerms(
                    "the care-role template limits how long this consent may last",
                ))
            }
        }
    }
    if terms.purpose == Purpose::Emergency {
        return Err(TxError::InvalidTerms(
            "emergency access is break-glass, not consent",
        ));
    }
    Ok(())
}

fn check_grantee(o: &Overlay<'_>, terms: &ConsentTerms) -> Result<(), TxError> {
    match terms.grantee {
        Grantee::Account(address) => {
            load(o, &address)?;
        }
        Grantee::Organisation(org) => {
            if !load_with_role(o, &org, Role::Organisation)?.admitted {
                return Err(TxError::OrganisationNotAdmitted(org));
            }
        }
        Grantee::Study(id) => {
            let study: Study = o
                .read(&keys::study(&id))?
                .ok_or(TxError::UnknownRecord { kind: "study", id })?;
            if study.status != StudyStatus::Open {
                return Err(TxError::StudyClosed(id));
            }
            if terms.purpose != Purpose::Research {
                return Err(TxError::InvalidTerms("a study consent must be for research"));
            }
        }
    }
    Ok(())
}

pub(crate) fn grantee_owner(grantee: &Grantee) -> [u8; 32] {
    match grantee {
        Grantee::Account(a) | Grantee::Organisation(a) => a.0,
        Grantee::Study(id) => id.0,
    }
}

pub(super) fn grant_consent(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    nonce: u64,
    terms: &ConsentTerms,
) -> Result<(), TxError> {
    load_with_role(o, &signer, Role::Patient)?;
    validate_terms(terms, ctx)?;
    check_grantee(o, terms)?;
    let id = record_id(b"consent", &signer, nonce);
    let consent = Consent {
        patient: signer,
        terms: terms.clone(),
        granted_at: ctx.time,
        revoked_at: None,
    };
    o.write(keys::consent(&id), &consent);
    o.push_to_list(ListKind::PatientConsents, &signer.0, &id)?;
    o.push_to_list(ListKind::GranteeConsents, &grantee_owner(&terms.grantee), &id)?;
    Ok(())
}

pub(super) fn revoke_consent(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    id: &RecordId,
) -> Result<(), TxError> {
    let mut consent: Consent = o.read(&keys::consent(id))?.ok_or(TxError::UnknownRecord {
        kind: "consent",
        id: *id,
    })?;
    if consent.patient != signer {
        return Err(TxError::NotPatientsKey {
            signer,
            patient: consent.patient,
        });
    }
    if consent.revoked_at.is_some() {
        return Err(TxError::ConsentAlreadyRevoked(*id));
    }
    consent.revoked_at = Some(ctx.time);
    o.write(keys::consent(id), &consent);
    Ok(())
}

pub(super) fn open_break_glass(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    nonce: u64,
    patient: &Address,
    reason: EmergencyReason,
    duration_ms: u64,
) -> Result<(), TxError> {
    attested_clinician(o, &signer)?;
    load_with_role(o, patient, Role::Patient)?;
    if duration_ms == 0 || duration_ms > MAX_BREAK_GLASS_MS {
        return Err(TxError::BreakGlassTooLong {
            requested_ms: duration_ms,
            max_ms: MAX_BREAK_GLASS_MS,
        });
    }
    let id = record_id(b"breakglass", &signer, nonce);
    let record = BreakGlass {
        clinician: signer,
        patient: *patient,
        reason,
        opened_at: ctx.time,
        expires_at: ctx.time.saturating_add(duration_ms),
    };
    o.write(keys::break_glass(&id), &record);
    o.push_to_list(ListKind::PatientBreakGlass, &patient.0, &id)?;
    Ok(())
}

pub(super) fn record_access(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    signed: &SignedAccessRequest,
) -> Result<(), TxError> {
    // Only admitted organisations run storage nodes that may write the audit trail.
    if !load_with_role(o, &signer, Role::Organisation)?.admitted {
        return Err(TxError::OrganisationNotAdmitted(signer));
    }
    let request = &signed.request;
    // The reader's signature was checked with the tx's own (`Tx::signatures`).
    if request.chain_id != ctx.chain_id {
        return Err(TxError::WrongChain {
            expected: ctx.chain_id.clone(),
            got: request.chain_id.clone(),
        });
    }
    if request.time > ctx.time.saturating_add(MAX_CLOCK_DRIFT_MS)
        || request.time.saturating_add(ACCESS_RECORD_WINDOW_MS) < ctx.time
    {
        return Err(TxError::AccessRequestStale {
            request_time: request.time,
            block_time: ctx.time,
        });
    }
    let id = request.id();
    if o.contains(&keys::access_record(&id)) {
        return Err(TxError::AccessAlreadyRecorded(id));
    }
    let commitment = load_commitment(o, &request.commitment)?;
    if commitment.cid != request.cid {
        return Err(TxError::CidMismatch {
            requested: request.cid,
            committed: commitment.cid,
        });
    }
    // The read is judged at the time it happened: a consent revoked afterwards still covered it.
    let basis = may_read(
        o,
        &request.reader,
        &request.commitment,
        request.purpose,
        request.time,
    )?;
    let record = AccessRecord {
        patient: commitment.patient,
        request: signed.clone(),
        basis,
        served_by: signer,
        recorded_at: ctx.height,
    };
    o.write(keys::access_record(&id), &record);
    o.push_to_list(ListKind::PatientAccess, &commitment.patient.0, &id)?;
    Ok(())
}

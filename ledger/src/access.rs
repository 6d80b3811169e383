//! The access rule (DESIGN §3–§4): may reader X read commitment C for purpose P at time T?
//!
//! Answered from state alone, so storage nodes, validators (when an access record lands)
//! and light clients (over proven state) reach the same verdict. The answer names the
//! consent or break-glass that allowed the read, which is what the audit record keeps.

use crate::crypto::Address;
use crate::state::keys::{self, ListKind};
use crate::state::records::{AccessBasis, Account, BreakGlass, Consent, DataCommitment, Study};
use crate::state::{CorruptState, StateRead, StateReadExt};
use crate::tx::{ConsentScope, Grantee};
use crate::types::{AccessLevel, DataCategory, Purpose, RecordId, TimeMs};

/// Why a read is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessDenied {
    #[error("unknown commitment {0:?}")]
    UnknownCommitment(RecordId),
    #[error("commitment {0:?} was erased")]
    Erased(RecordId),
    #[error("no consent or break-glass lets {reader:?} read {patient:?}'s data for {purpose:?} at {at}")]
    NoConsent {
        reader: Address,
        patient: Address,
        purpose: Purpose,
        at: TimeMs,
    },
    #[error("no consent lets {reader:?} annotate {patient:?}'s record")]
    NoAnnotateConsent { reader: Address, patient: Address },
    #[error(transparent)]
    Corrupt(#[from] CorruptState),
}

/// `true` when `scope` covers everything in the commitment (a blob is read whole, so every
/// code in it must be consented to).
pub fn scope_covers(scope: &ConsentScope, c: &DataCommitment) -> bool {
    (scope.categories.is_empty() || scope.categories.contains(&c.category))
        && (scope.loinc_codes.is_empty() || c.loinc_codes.iter().all(|code| scope.loinc_codes.contains(code)))
        && (scope.devices.is_empty() || c.device.is_some_and(|d| scope.devices.contains(&d)))
        && scope.data_range.is_none_or(|range| range.covers(&c.time_range))
}

/// Does the consent's grantee include `reader`?
fn grantee_includes(
    state: &dyn StateRead,
    grantee: &Grantee,
    reader: &Address,
) -> Result<bool, CorruptState> {
    Ok(match grantee {
        Grantee::Account(a) => a == reader,
        Grantee::Organisation(org) => {
            let attested = state
                .read::<Account>(&keys::account(reader))?
                .and_then(|a| a.attested_by);
            let admitted = state
                .read::<Account>(&keys::account(org))?
                .is_some_and(|o| o.admitted);
            attested == Some(*org) && admitted
        }
        Grantee::Study(id) => state
            .read::<Study>(&keys::study(id))?
            .is_some_and(|s| s.researcher == *reader),
    })
}

fn active_break_glass(
    state: &dyn StateRead,
    reader: &Address,
    patient: &Address,
    at: TimeMs,
) -> Result<Option<RecordId>, CorruptState> {
    for id in state
        .list(ListKind::PatientBreakGlass, &patient.0)?
        .into_iter()
        .rev()
    {
        if let Some(bg) = state.read::<BreakGlass>(&keys::break_glass(&id))? {
            if bg.clinician == *reader && bg.is_active_at(at) {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}

/// May `reader` read `commitment` for `purpose` at `at`? Returns the right that allows it.
pub fn may_read(
    state: &dyn StateRead,
    reader: &Address,
    commitment: &RecordId,
    purpose: Purpose,
    at: TimeMs,
) -> Result<AccessBasis, AccessDenied> {
    let c: DataCommitment = state
        .read(&keys::commitment(commitment))?
        .ok_or(AccessDenied::UnknownCommitment(*commitment))?;
    if c.erased_at.is_some_and(|erased| erased <= at) {
        return Err(AccessDenied::Erased(*commitment));
    }
    if c.patient == *reader {
        return Ok(AccessBasis::Owner);
    }
    if purpose == Purpose::Emergency {
        if let Some(id) = active_break_glass(state, reader, &c.patient, at)? {
            return Ok(AccessBasis::BreakGlass(id));
        }
    } else {
        for id in state.list(ListKind::PatientConsents, &c.patient.0)? {
            let Some(consent) = state.read::<Consent>(&keys::consent(&id))? else {
                continue;
            };
            if consent.terms.purpose == purpose
                && consent.is_active_at(at)
                && scope_covers(&consent.terms.scope, &c)
                && grantee_includes(state, &consent.terms.grantee, reader)?
            {
                return Ok(AccessBasis::Consent(id));
            }
        }
    }
    Err(AccessDenied::NoConsent {
        reader: *reader,
        patient: c.patient,
        purpose,
        at,
    })
}

/// May `reader` write notes and alert rules for `patient` at `at`? A treatment or caregiving
/// consent with annotate access that covers notes, or an open break-glass, allows it.
pub fn may_annotate(
    state: &dyn StateRead,
    reader: &Address,
    patient: &Address,
    at: TimeMs,
) -> Result<AccessBasis, AccessDenied> {
    for id in state.list(ListKind::PatientConsents, &patient.0)? {
        let Some(consent) = state.read::<Consent>(&keys::consent(&id))? else {
            continue;
        };
        let terms = &consent.terms;
        if terms.access == AccessLevel::ReadAndAnnotate
            && matches!(terms.purpose, Purpose::Treatment | Purpose::Caregiving)
            && (terms.scope.categories.is_empty()
                || terms.scope.categories.contains(&DataCategory::ClinicianNotes))
            && consent.is_active_at(at)
            && grantee_includes(state, &terms.grantee, reader)?
        {
            return Ok(AccessBasis::Consent(id));
        }
    }
    if let Some(id) = active_break_glass(state, reader, patient, at)? {
        return Ok(AccessBasis::BreakGlass(id));
    }
    Err(AccessDenied::NoAnnotateConsent {
        reader: *reader,
        patient: *patient,
    })
}

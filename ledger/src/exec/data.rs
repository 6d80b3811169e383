//! Devices, data commitments, clinician notes, erasure, alert rules and alerts.

use super::accounts::{attested_clinician, load_with_role};
use super::{BlockContext, TxError, MAX_CLOCK_DRIFT_MS};
use crate::access::may_annotate;
use crate::crypto::{Address, Hash, PublicKey};
use crate::state::keys::{self, ListKind};
use crate::state::records::{Alert, AlertRule, DataCommitment, Device};
use crate::state::Overlay;
use crate::tx::{commitment_id, record_id, AlertCondition, DataCommitmentBody, MAX_BLOB_BYTES, MAX_CODES};
use crate::types::{validate_set, Cid, DataCategory, LoincCode, RecordId, Role, TimeRange};

pub(super) fn load_commitment(o: &Overlay<'_>, id: &RecordId) -> Result<DataCommitment, TxError> {
    o.read(&keys::commitment(id))?.ok_or(TxError::UnknownRecord {
        kind: "commitment",
        id: *id,
    })
}

fn load_device(o: &Overlay<'_>, device: &PublicKey) -> Result<Device, TxError> {
    o.read(&keys::device(device))?
        .ok_or(TxError::UnknownDevice(*device))
}

/// A device the patient owns that has not been revoked.
fn active_device_of(o: &Overlay<'_>, device: &PublicKey, patient: &Address) -> Result<Device, TxError> {
    let record = load_device(o, device)?;
    if record.owner != *patient {
        return Err(TxError::DeviceNotOwned {
            device: *device,
            owner: record.owner,
            claimed: *patient,
        });
    }
    if record.revoked_at.is_some() {
        return Err(TxError::DeviceRevoked(*device));
    }
    Ok(record)
}

fn validate_codes(codes: &[LoincCode]) -> Result<(), TxError> {
    if codes.is_empty() {
        return Err(TxError::InvalidTerms("at least one LOINC code is required"));
    }
    validate_set("LOINC codes", codes, MAX_CODES)?;
    for code in codes {
        code.validate()?;
    }
    Ok(())
}

pub(super) fn register_device(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    device: PublicKey,
    loinc_codes: &[LoincCode],
) -> Result<(), TxError> {
    load_with_role(o, &signer, Role::Patient)?;
    validate_codes(loinc_codes)?;
    if o.contains(&keys::device(&device)) || o.contains(&keys::account(&device)) {
        return Err(TxError::DeviceAlreadyRegistered(device));
    }
    let record = Device {
        owner: signer,
        loinc_codes: loinc_codes.to_vec(),
        registered_at: ctx.time,
        revoked_at: None,
    };
    o.write(keys::device(&device), &record);
    let id = Hash(device.0);
    o.push_to_list(ListKind::PatientDevices, &signer.0, &id)?;
    Ok(())
}

pub(super) fn revoke_device(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    device: &PublicKey,
) -> Result<(), TxError> {
    let mut record = active_device_of(o, device, &signer)?;
    record.revoked_at = Some(ctx.time);
    o.write(keys::device(device), &record);
    Ok(())
}

/// Records a new commitment under its CID's id and lists it under its patient.
fn insert_commitment(o: &mut Overlay<'_>, commitment: &DataCommitment) -> Result<(), TxError> {
    let id = commitment_id(&commitment.cid);
    if o.contains(&keys::commitment(&id)) {
        return Err(TxError::DuplicateCid(commitment.cid));
    }
    o.write(keys::commitment(&id), commitment);
    o.push_to_list(ListKind::PatientCommitments, &commitment.patient.0, &id)?;
    Ok(())
}

fn check_blob(size: u64, time_range: &TimeRange, ctx: &BlockContext) -> Result<(), TxError> {
    if size == 0 || size > MAX_BLOB_BYTES {
        return Err(TxError::InvalidTerms(
            "blob size must be between 1 byte and the blob limit",
        ));
    }
    time_range.validate()?;
    if time_range.end > ctx.time.saturating_add(MAX_CLOCK_DRIFT_MS) {
        return Err(TxError::InvalidTerms("data time range ends in the future"));
    }
    Ok(())
}

pub(super) fn commit_data(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: PublicKey,
    body: &DataCommitmentBody,
) -> Result<(), TxError> {
    load_with_role(o, &body.patient, Role::Patient)?;
    // Signed by the patient, or by the registered, unrevoked device named in the body.
    let device = match body.device {
        Some(device) => {
            if signer != body.patient && signer != device {
                return Err(TxError::NotPatientsKey {
                    signer,
                    patient: body.patient,
                });
            }
            Some(active_device_of(o, &device, &body.patient)?)
        }
        None if signer == body.patient => None,
        None => {
            return Err(TxError::NotPatientsKey {
                signer,
                patient: body.patient,
            })
        }
    };
    validate_codes(&body.loinc_codes)?;
    if let (Some(device_key), Some(device)) = (body.device, &device) {
        if let Some(code) = body.loinc_codes.iter().find(|c| !device.loinc_codes.contains(c)) {
            return Err(TxError::DeviceCodeNotRegistered {
                device: device_key,
                code: code.clone(),
            });
        }
    }
    check_blob(body.size, &body.time_range, ctx)?;
    let commitment = DataCommitment {
        patient: body.patient,
        category: DataCategory::DeviceReadings,
        device: body.device,
        author: None,
        cid: body.cid,
        readings_root: body.readings_root,
        loinc_codes: body.loinc_codes.clone(),
        time_range: body.time_range,
        size: body.size,
        reading_count: body.reading_count,
        committed_at: ctx.height,
        erased_at: None,
    };
    insert_commitment(o, &commitment)
}

pub(super) fn add_note(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    patient: &Address,
    cid: Cid,
    size: u64,
    time_range: TimeRange,
) -> Result<(), TxError> {
    attested_clinician(o, &signer)?;
    load_with_role(o, patient, Role::Patient)?;
    may_annotate(o, &signer, patient, ctx.time)?;
    check_blob(size, &time_range, ctx)?;
    let commitment = DataCommitment {
        patient: *patient,
        category: DataCategory::ClinicianNotes,
        device: None,
        author: Some(signer),
        cid,
        readings_root: Hash::ZERO,
        loinc_codes: vec![],
        time_range,
        size,
        reading_count: 0,
        committed_at: ctx.height,
        erased_at: None,
    };
    insert_commitment(o, &commitment)
}

pub(super) fn erase(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    id: &RecordId,
) -> Result<(), TxError> {
    let mut commitment = load_commitment(o, id)?;
    if commitment.patient != signer {
        return Err(TxError::NotPatientsKey {
            signer,
            patient: commitment.patient,
        });
    }
    if commitment.erased_at.is_some() {
        return Err(TxError::AlreadyErased(*id));
    }
    commitment.erased_at = Some(ctx.time);
    o.write(keys::commitment(id), &commitment);
    Ok(())
}

pub(super) fn set_alert_rule(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: Address,
    nonce: u64,
    patient: &Address,
    loinc: &LoincCode,
    condition: AlertCondition,
) -> Result<(), TxError> {
    load_with_role(o, patient, Role::Patient)?;
    if signer != *patient {
        may_annotate(o, &signer, patient, ctx.time)?;
    }
    loinc.validate()?;
    let id = record_id(b"alertrule", &signer, nonce);
    let rule = AlertRule {
        patient: *patient,
        loinc: loinc.clone(),
        condition,
        set_by: signer,
        removed: false,
    };
    o.write(keys::alert_rule(&id), &rule);
    o.push_to_list(ListKind::PatientAlertRules, &patient.0, &id)?;
    Ok(())
}

pub(super) fn remove_alert_rule(o: &mut Overlay<'_>, signer: Address, id: &RecordId) -> Result<(), TxError> {
    let mut rule: AlertRule = o.read(&keys::alert_rule(id))?.ok_or(TxError::UnknownRecord {
        kind: "alert rule",
        id: *id,
    })?;
    if signer != rule.patient && signer != rule.set_by {
        return Err(TxError::NotPatientsKey {
            signer,
            patient: rule.patient,
        });
    }
    if rule.removed {
        return Err(TxError::UnknownRecord {
            kind: "alert rule",
            id: *id,
        });
    }
    rule.removed = true;
    o.write(keys::alert_rule(id), &rule);
    Ok(())
}

pub(super) fn raise_alert(
    o: &mut Overlay<'_>,
    ctx: &BlockContext,
    signer: PublicKey,
    nonce: u64,
    patient: &Address,
    rule_id: &RecordId,
    commitment_id: &RecordId,
) -> Result<(), TxError> {
    if signer != *patient {
        active_device_of(o, &signer, patient)?;
    }
    let rule: AlertRule = o
        .read(&keys::alert_rule(rule_id))?
        .filter(|r: &AlertRule| !r.removed && r.patient == *patient)
        .ok_or(TxError::UnknownRecord {
            kind: "alert rule",
            id: *rule_id,
        })?;
    let commitment = load_commitment(o, commitment_id)?;
    if commitment.patient != *patient || !commitment.loinc_codes.contains(&rule.loinc) {
        return Err(TxError::InvalidTerms(
            "the alert's commitment must be the patient's and hold the rule's code",
        ));
    }
    let id = record_id(b"alert", &signer, nonce);
    let alert = Alert {
        patient: *patient,
        rule: *rule_id,
        commitment: *commitment_id,
        raised_by: signer,
        raised_at: ctx.height,
    };
    o.write(keys::alert(&id), &alert);
    o.push_to_list(ListKind::PatientAlerts, &patient.0, &id)?;
    Ok(())
}

//! A patient's data as one FHIR R4 Bundle (type `collection`), built from decoded data with
//! no I/O: [`bundle`] turns a [`PatientRecord`] into the Bundle, [`check_export`] parses an
//! export back and checks every resource in it. The gateway CLI fills the record from the
//! chain and the relay ([`super::relay::fetch_record`]); the dashboard can fill it from its
//! light client and call the same functions.
//!
//! # What goes in, and how it is named
//! - One `Patient`: a pseudonym only. Its id and identifier are the on-chain account address
//!   (hex, system [`fhir::ACCOUNT_SYSTEM`]); no name, birth date, address or any other
//!   demographic, because Medledger never holds them (DESIGN §3).
//! - One `Device` per device the patient registered: id and identifier = the device key, status
//!   `active` or `inactive` (revoked), and the LOINC codes it is registered for as a
//!   `property` (type [`DEVICE_CODES_PROPERTY`], one `valueCode` per code).
//! - Every `Observation` of every committed batch, exactly as the blob holds it (LOINC codes,
//!   UCUM units, `Patient/<address>` and `Device/<key>` references, see [`fhir`]).
//! - One `Consent` per consent the patient granted: status `active` if in force at export time
//!   else `inactive` (expired, revoked, or not started yet); a `permit` provision with the
//!   grantee as actor (an identifier reference: accounts have no FHIR resource of their own),
//!   the purpose (v3 ActReason), the access level (consent actions), the period, and the scope
//!   (data classes, LOINC codes, devices, data period).
//!
//! Every entry's `fullUrl` is `<EXPORT_BASE>/<type>/<id>`, so the relative references inside
//! the Bundle (`Patient/…`, `Device/…`) resolve to entries of the same Bundle. The base uses the
//! reserved `.invalid` domain (RFC 2606): it resolves inside the file and nowhere on the network.

use crate::fhir::{self, FhirError};
use crate::portability::import::{check_observation, Rejection};
use crate::sim::DeviceKind;
use fhir_model::r4b::codes::{
    BundleType, ConsentDataMeaning, ConsentProvisionType, ConsentState, DeviceNameType, FHIRDeviceStatus,
};
use fhir_model::r4b::resources::{
    Bundle, BundleEntry, Consent as FhirConsent, ConsentProvision, ConsentProvisionActor,
    ConsentProvisionData, Device as FhirDevice, DeviceDeviceName, DeviceProperty, Observation, Patient,
    Resource,
};
use fhir_model::r4b::types::{CodeableConcept, Coding, Identifier, Period, Reference};
use fhir_model::{BuilderError, DateTime, Instant};
use ledger::crypto::{sha256_concat, Address, PublicKey};
use ledger::state::records::{Consent, Device};
use ledger::tx::Grantee;
use ledger::types::{AccessLevel, DataCategory, Purpose, RecordId, TimeMs};
use std::collections::{BTreeMap, BTreeSet};

/// The base of every entry's `fullUrl` (module docs).
pub const EXPORT_BASE: &str = "https://medledger.invalid/fhir";
/// `Device.property.type` of the property listing a device's LOINC codes.
pub const DEVICE_CODES_PROPERTY: &str = "registered-loinc-codes";
/// Code system of [`DEVICE_CODES_PROPERTY`].
pub const DEVICE_PROPERTY_SYSTEM: &str = "urn:medledger:device-property";
const ACT_REASON_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ACT_CODE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONSENT_SCOPE_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const CONSENT_ACTION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
const PARTICIPATION_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const RESOURCE_TYPES_SYSTEM: &str = "http://hl7.org/fhir/resource-types";

/// Everything of one patient's that an export holds, decoded and already verified by the
/// caller (commitments and blobs against the chain).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRecord {
    pub patient: Address,
    /// Each registered device: its key and its on-chain record.
    pub devices: Vec<(PublicKey, Device)>,
    /// Every Observation of every committed batch.
    pub observations: Vec<Observation>,
    /// Each consent the patient granted: its record id and record.
    pub consents: Vec<(RecordId, Consent)>,
}

/// Why an export could not be built or does not check.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error("FHIR builder: {0}")]
    Builder(#[from] BuilderError),
    #[error("the export does not parse as a FHIR R4 Bundle: {0}")]
    NotABundle(String),
    #[error("the export's Bundle type is {0:?}, expected collection")]
    WrongBundleType(BundleType),
    #[error("entry {index}: {reason}")]
    BadEntry { index: usize, reason: String },
    #[error("entry {index}: Observation refused: {reason}")]
    BadObservation { index: usize, reason: Rejection },
    #[error("the export holds {0} Patient resources, expected exactly one")]
    PatientCount(usize),
}

/// What [`check_export`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSummary {
    /// Resources by type.
    pub resources: BTreeMap<String, usize>,
    /// The Patient's id (the account address, hex).
    pub patient: String,
}

impl ExportSummary {
    pub fn count(&self, resource_type: &str) -> usize {
        self.resources.get(resource_type).copied().unwrap_or(0)
    }
}

fn coding(system: &str, code: &str, display: &str) -> Result<Coding, BuilderError> {
    Coding::builder()
        .system(system.to_owned())
        .code(code.to_owned())
        .display(display.to_owned())
        .build()
}

fn concept(system: &str, code: &str, display: &str) -> Result<CodeableConcept, BuilderError> {
    CodeableConcept::builder()
        .coding(vec![Some(coding(system, code, display)?)])
        .build()
}

fn identifier(system: &str, value: String) -> Result<Identifier, BuilderError> {
    Identifier::builder()
        .system(system.to_owned())
        .value(value)
        .build()
}

fn period(start: Option<TimeMs>, end: Option<TimeMs>) -> Result<Period, ExportError> {
    let mut builder = Period::builder();
    if let Some(start) = start {
        builder = builder.start(fhir::date_time(start)?);
    }
    if let Some(end) = end {
        builder = builder.end(fhir::date_time(end)?);
    }
    Ok(builder.build()?)
}

fn patient_resource(patient: &Address) -> Result<Patient, ExportError> {
    Ok(Patient::builder()
        .id(patient.to_hex())
        .identifier(vec![Some(identifier(fhir::ACCOUNT_SYSTEM, patient.to_hex())?)])
        .active(true)
        .build()?)
}

/// The simulator's device kind registered for exactly these codes, for a readable name.
fn kind_of_codes(codes: &[String]) -> Option<DeviceKind> {
    DeviceKind::ALL.into_iter().find(|kind| {
        let mut known: Vec<&str> = kind.loinc_codes().to_vec();
        known.sort_unstable();
        let mut given: Vec<&str> = codes.iter().map(String::as_str).collect();
        given.sort_unstable();
        known == given
    })
}

fn device_resource(patient: &Address, key: &PublicKey, device: &Device) -> Result<FhirDevice, ExportError> {
    let codes: Vec<String> = device.loinc_codes.iter().map(|c| c.as_str().to_owned()).collect();
    let values = codes
        .iter()
        .map(|c| Ok(Some(fhir::loinc_concept(c)?)))
        .collect::<Result<Vec<_>, BuilderError>>()?;
    let property = DeviceProperty::builder()
        .r#type(concept(
            DEVICE_PROPERTY_SYSTEM,
            DEVICE_CODES_PROPERTY,
            "LOINC codes the device is registered for",
        )?)
        .value_code(values)
        .build()?;
    let status = match device.revoked_at {
        None => FHIRDeviceStatus::Active,
        Some(_) => FHIRDeviceStatus::Inactive,
    };
    let mut builder = FhirDevice::builder()
        .id(key.to_hex())
        .identifier(vec![Some(identifier(fhir::DEVICE_SYSTEM, key.to_hex())?)])
        .status(status)
        .property(vec![Some(property)])
        .patient(fhir::reference("Patient", patient)?);
    if let Some(kind) = kind_of_codes(&codes) {
        let name = DeviceDeviceName::builder()
            .name(kind.name().to_owned())
            .r#type(DeviceNameType::UserFriendlyName)
            .build()?;
        builder = builder.device_name(vec![Some(name)]);
    }
    Ok(builder.build()?)
}

/// The grantee as a FHIR reference: by identifier, since accounts and studies are chain
/// records, not FHIR resources of this Bundle.
fn grantee_reference(grantee: &Grantee) -> Result<Reference, BuilderError> {
    let (kind, system, value) = match grantee {
        Grantee::Account(a) => (None, fhir::ACCOUNT_SYSTEM, a.to_hex()),
        Grantee::Organisation(o) => (Some("Organization"), fhir::ACCOUNT_SYSTEM, o.to_hex()),
        Grantee::Study(s) => (Some("ResearchStudy"), fhir::STUDY_SYSTEM, s.to_hex()),
    };
    let mut builder = Reference::builder().identifier(identifier(system, value)?);
    if let Some(kind) = kind {
        builder = builder.r#type(kind.to_owned());
    }
    builder.build()
}

fn purpose_coding(purpose: Purpose) -> Result<Coding, BuilderError> {
    let (code, display) = match purpose {
        Purpose::Treatment => ("TREAT", "treatment"),
        Purpose::Caregiving => ("CAREMGT", "care management"),
        Purpose::Research => ("HRESCH", "healthcare research"),
        Purpose::Emergency => ("ETREAT", "emergency treatment"),
    };
    coding(ACT_REASON_SYSTEM, code, display)
}

fn consent_resource(
    patient: &Address,
    id: &RecordId,
    consent: &Consent,
    now: TimeMs,
) -> Result<FhirConsent, ExportError> {
    let terms = &consent.terms;
    let status = if consent.is_active_at(now) {
        ConsentState::Active
    } else {
        ConsentState::Inactive
    };
    // The consent ends at the earlier of its end and its revocation.
    let end = match (terms.valid_until, consent.revoked_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let mut actions = vec![Some(concept(CONSENT_ACTION_SYSTEM, "access", "Access")?)];
    if terms.access == AccessLevel::ReadAndAnnotate {
        actions.push(Some(concept(
            CONSENT_ACTION_SYSTEM,
            "correct",
            "Access and Correct",
        )?));
    }
    let actor = ConsentProvisionActor::builder()
        .role(concept(PARTICIPATION_SYSTEM, "IRCP", "information recipient")?)
        .reference(grantee_reference(&terms.grantee)?)
        .build()?;
    let scope = &terms.scope;
    let classes = scope
        .categories
        .iter()
        .map(|c| {
            let (code, display) = match c {
                DataCategory::DeviceReadings => ("Observation", "device readings"),
                DataCategory::ClinicianNotes => ("DocumentReference", "clinician notes"),
            };
            Ok(Some(coding(RESOURCE_TYPES_SYSTEM, code, display)?))
        })
        .collect::<Result<Vec<_>, BuilderError>>()?;
    let codes = scope
        .loinc_codes
        .iter()
        .map(|c| Ok(Some(fhir::loinc_concept(c.as_str())?)))
        .collect::<Result<Vec<_>, BuilderError>>()?;
    let data = scope
        .devices
        .iter()
        .map(|d| {
            Ok(Some(
                ConsentProvisionData::builder()
                    .meaning(ConsentDataMeaning::Authoredby)
                    .reference(fhir::reference("Device", d)?)
                    .build()?,
            ))
        })
        .collect::<Result<Vec<_>, BuilderError>>()?;
    let mut provision = ConsentProvision::builder()
        .r#type(ConsentProvisionType::Permit)
        .period(period(Some(terms.valid_from), end)?)
        .actor(vec![Some(actor)])
        .action(actions)
        .purpose(vec![Some(purpose_coding(terms.purpose)?)])
        .class(classes)
        .code(codes)
        .data(data);
    if let Some(range) = scope.data_range {
        provision = provision.data_period(period(Some(range.start), Some(range.end))?);
    }
    let (scope_code, scope_display) = match terms.purpose {
        Purpose::Research => ("research", "Research"),
        _ => ("patient-privacy", "Privacy Consent"),
    };
    Ok(FhirConsent::builder()
        .id(id.to_hex())
        .identifier(vec![Some(identifier(fhir::CONSENT_SYSTEM, id.to_hex())?)])
        .status(status)
        .scope(concept(CONSENT_SCOPE_SYSTEM, scope_code, scope_display)?)
        .category(vec![Some(concept(
            fhir::LOINC_SYSTEM,
            "59284-0",
            "Patient Consent",
        )?)])
        .patient(fhir::reference("Patient", patient)?)
        .date_time(fhir::date_time(consent.granted_at)?)
        .performer(vec![Some(fhir::reference("Patient", patient)?)])
        .policy_rule(concept(ACT_CODE_SYSTEM, "OPTIN", "opt-in")?)
        .provision(provision.build()?)
        .build()?)
}

fn entry(resource_type: &str, id: &str, resource: Resource) -> Result<Option<BundleEntry>, BuilderError> {
    Ok(Some(
        BundleEntry::builder()
            .full_url(format!("{EXPORT_BASE}/{resource_type}/{id}"))
            .resource(resource)
            .build()?,
    ))
}

/// The patient's whole record as one FHIR R4 Bundle of type `collection` (module docs),
/// stamped `now`: consents are `active` when in force at `now`.
pub fn bundle(record: PatientRecord, now: TimeMs) -> Result<Bundle, ExportError> {
    let PatientRecord {
        patient,
        devices,
        observations,
        consents,
    } = record;
    let mut entries = Vec::with_capacity(1 + devices.len() + observations.len() + consents.len());
    entries.push(entry(
        "Patient",
        &patient.to_hex(),
        Resource::Patient(patient_resource(&patient)?),
    )?);
    for (key, device) in &devices {
        entries.push(entry(
            "Device",
            &key.to_hex(),
            Resource::Device(device_resource(&patient, key, device)?),
        )?);
    }
    for obs in observations {
        let id = obs.id.clone().unwrap_or_default();
        entries.push(entry("Observation", &id, Resource::Observation(obs))?);
    }
    for (id, consent) in &consents {
        entries.push(entry(
            "Consent",
            &id.to_hex(),
            Resource::Consent(consent_resource(&patient, id, consent, now)?),
        )?);
    }
    let stamp = match fhir::date_time(now)? {
        DateTime::DateTime(instant) => instant,
        DateTime::Date(_) => return Err(FhirError::Time(now).into()),
    };
    let digest = sha256_concat(&[b"medledger/export", &patient.0, &now.to_be_bytes()]);
    Ok(Bundle::builder()
        .id(hex::encode(&digest.0[..16]))
        .r#type(BundleType::Collection)
        .timestamp(stamp)
        .entry(entries)
        .build()?)
}

/// The Bundle as JSON, the export file's bytes.
pub fn to_json(bundle: &Bundle) -> Result<Vec<u8>, ExportError> {
    serde_json::to_vec(bundle).map_err(|e| ExportError::NotABundle(e.to_string()))
}

fn bad(index: usize, reason: impl Into<String>) -> ExportError {
    ExportError::BadEntry {
        index,
        reason: reason.into(),
    }
}

fn resource_id(resource: &Resource) -> (&'static str, Option<&str>) {
    match resource {
        Resource::Patient(r) => ("Patient", r.id.as_deref()),
        Resource::Device(r) => ("Device", r.id.as_deref()),
        Resource::Observation(r) => ("Observation", r.id.as_deref()),
        Resource::Consent(r) => ("Consent", r.id.as_deref()),
        _ => ("other", None),
    }
}

/// Our own check of an export: parses `json` back as a FHIR R4 Bundle with the typed model and
/// checks each entry: only Patient, Device, Observation and Consent resources, each with an id
/// that matches its `fullUrl`, ids unique; exactly one Patient, with no name; every Observation
/// passes the same checks an import applies ([`check_observation`]: status, supported LOINC
/// code, UCUM unit, value, effective time) and refers to the Patient and to a Device of the
/// Bundle; every Device and Consent refers to the Patient.
pub fn check_export(json: &[u8]) -> Result<ExportSummary, ExportError> {
    let bundle: Bundle = serde_json::from_slice(json).map_err(|e| ExportError::NotABundle(e.to_string()))?;
    if bundle.r#type != BundleType::Collection {
        return Err(ExportError::WrongBundleType(bundle.r#type));
    }
    let now = match &bundle.timestamp {
        Some(Instant(at)) => u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(u64::MAX),
        None => u64::MAX,
    };
    let mut summary = ExportSummary::default();
    let mut ids: BTreeSet<(&'static str, String)> = BTreeSet::new();
    // First pass: every entry's type and id; the Patient.
    for (index, entry) in bundle.entry.iter().enumerate() {
        let entry = entry.as_ref().ok_or_else(|| bad(index, "empty entry"))?;
        let resource = entry.resource.as_ref().ok_or_else(|| bad(index, "no resource"))?;
        let (kind, id) = resource_id(resource);
        if kind == "other" {
            return Err(bad(index, "a resource type an export does not hold"));
        }
        let id = id.ok_or_else(|| bad(index, format!("{kind} without an id")))?;
        if entry.full_url.as_deref() != Some(&format!("{EXPORT_BASE}/{kind}/{id}")) {
            return Err(bad(
                index,
                format!("fullUrl {:?} does not name {kind}/{id}", entry.full_url),
            ));
        }
        if !ids.insert((kind, id.to_owned())) {
            return Err(bad(index, format!("{kind}/{id} appears twice")));
        }
        if let Resource::Patient(p) = resource {
            if !p.name.is_empty() {
                return Err(bad(index, "the Patient carries a name"));
            }
            summary.patient = id.to_owned();
        }
        *summary.resources.entry(kind.to_owned()).or_insert(0) += 1;
    }
    if summary.count("Patient") != 1 {
        return Err(ExportError::PatientCount(summary.count("Patient")));
    }
    let patient_ref = format!("Patient/{}", summary.patient);
    let refers_to_patient =
        |r: &Option<Reference>| r.as_ref().and_then(|r| r.reference.as_deref()) == Some(&patient_ref);
    // Second pass: references and Observation content.
    for (index, entry) in bundle.entry.iter().enumerate() {
        let Some(resource) = entry.as_ref().and_then(|e| e.resource.as_ref()) else {
            continue;
        };
        match resource {
            Resource::Observation(obs) => {
                check_observation(obs, now)
                    .map_err(|reason| ExportError::BadObservation { index, reason })?;
                if !refers_to_patient(&obs.subject) {
                    return Err(bad(index, "Observation.subject is not the export's Patient"));
                }
                if let Some(device) = obs.device.as_ref().and_then(|d| d.reference.as_deref()) {
                    let known = device
                        .strip_prefix("Device/")
                        .is_some_and(|id| ids.contains(&("Device", id.to_owned())));
                    if !known {
                        return Err(bad(
                            index,
                            format!("Observation.device {device} is not in the export"),
                        ));
                    }
                }
            }
            Resource::Device(device) if !refers_to_patient(&device.patient) => {
                return Err(bad(index, "Device.patient is not the export's Patient"));
            }
            Resource::Consent(consent) if !refers_to_patient(&consent.patient) => {
                return Err(bad(index, "Consent.patient is not the export's Patient"));
            }
            _ => {}
        }
    }
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::PatientSim;
    use ledger::tx::{CareRole, ConsentScope};
    use ledger::types::{LoincCode, TimeRange};

    const T0: u64 = 1_767_225_600_000;
    const HOUR: u64 = 3_600_000;

    fn record() -> PatientRecord {
        let patient = PublicKey([1; 32]);
        let sim = PatientSim::new(7);
        let mut devices = Vec::new();
        let mut observations = Vec::new();
        for (i, kind) in DeviceKind::ALL.into_iter().enumerate() {
            let key = PublicKey([10 + i as u8; 32]);
            devices.push((
                key,
                Device {
                    owner: patient,
                    loinc_codes: kind
                        .loinc_codes()
                        .iter()
                        .map(|c| LoincCode::new(c).unwrap())
                        .collect(),
                    registered_at: T0,
                    revoked_at: (kind == DeviceKind::Thermometer).then_some(T0 + HOUR),
                },
            ));
            for r in sim.readings(kind, T0, T0 + HOUR) {
                observations.push(fhir::observation(&r, &patient, &key).unwrap());
            }
        }
        let mut scoped = CareRole::TemporaryCaregiver.terms(
            Grantee::Account(PublicKey([3; 32])),
            T0,
            vec![LoincCode::new("99504-3").unwrap()],
        );
        scoped.scope = ConsentScope {
            devices: vec![devices[0].0],
            data_range: Some(TimeRange {
                start: T0,
                end: T0 + HOUR,
            }),
            ..scoped.scope
        };
        let consents = vec![
            (
                ledger::Hash([5; 32]),
                Consent {
                    patient,
                    terms: CareRole::PrimaryProvider.terms(Grantee::Account(PublicKey([2; 32])), T0, vec![]),
                    granted_at: T0,
                    revoked_at: None,
                },
            ),
            (
                ledger::Hash([6; 32]),
                Consent {
                    patient,
                    terms: scoped,
                    granted_at: T0,
                    revoked_at: Some(T0 + HOUR),
                },
            ),
        ];
        PatientRecord {
            patient,
            devices,
            observations,
            consents,
        }
    }

    #[test]
    fn an_export_holds_every_resource_and_checks() {
        let record = record();
        let observations = record.observations.len();
        let bundle = bundle(record, T0 + 2 * HOUR).unwrap();
        let json = to_json(&bundle).unwrap();
        let summary = check_export(&json).unwrap();
        assert_eq!(summary.count("Patient"), 1);
        assert_eq!(summary.count("Device"), 4);
        assert_eq!(summary.count("Observation"), observations);
        assert_eq!(summary.count("Consent"), 2);

        let value: serde_json::Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(value["resourceType"], "Bundle");
        assert_eq!(value["type"], "collection");
        let entries = value["entry"].as_array().unwrap();
        let patient = &entries[0]["resource"];
        assert_eq!(patient["resourceType"], "Patient");
        assert!(patient.get("name").is_none(), "a pseudonym only");
        assert_eq!(patient["identifier"][0]["value"], PublicKey([1; 32]).to_hex());
        let thermometer = &entries[4]["resource"];
        assert_eq!(thermometer["status"], "inactive", "revoked device");
        assert_eq!(
            thermometer["property"][0]["valueCode"][0]["coding"][0]["code"],
            "8310-5"
        );
        let consents: Vec<&serde_json::Value> = entries
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| r["resourceType"] == "Consent")
            .collect();
        assert_eq!(consents[0]["status"], "active");
        assert_eq!(consents[0]["provision"]["purpose"][0]["code"], "TREAT");
        assert_eq!(consents[1]["status"], "inactive", "revoked");
        assert_eq!(
            consents[1]["provision"]["code"][0]["coding"][0]["code"],
            "99504-3"
        );
        assert_eq!(
            consents[1]["provision"]["data"][0]["reference"]["reference"],
            format!("Device/{}", PublicKey([10; 32]).to_hex())
        );
        assert_eq!(consents[1]["provision"]["period"]["end"], "2026-01-01T01:00:00Z");
    }

    #[test]
    fn the_check_refuses_what_an_export_must_not_hold() {
        let base: serde_json::Value =
            serde_json::from_slice(&to_json(&bundle(record(), T0 + 2 * HOUR).unwrap()).unwrap()).unwrap();
        type Edit = fn(&mut serde_json::Value);
        let cases: [(&str, Edit); 6] = [
            ("named patient", |b| {
                b["entry"][0]["resource"]["name"] = serde_json::json!([{"family": "Doe"}])
            }),
            ("unknown device", |b| {
                b["entry"][5]["resource"]["device"]["reference"] = serde_json::json!("Device/00")
            }),
            ("other patient", |b| {
                b["entry"][5]["resource"]["subject"]["reference"] = serde_json::json!("Patient/00")
            }),
            ("bad unit", |b| {
                b["entry"][5]["resource"]["valueQuantity"]["code"] = serde_json::json!("mmol/L")
            }),
            ("wrong type", |b| b["type"] = serde_json::json!("searchset")),
            ("duplicate", |b| {
                let e = b["entry"][5].clone();
                b["entry"].as_array_mut().unwrap().push(e);
            }),
        ];
        for (what, edit) in cases {
            let mut bad = base.clone();
            edit(&mut bad);
            assert!(
                check_export(&serde_json::to_vec(&bad).unwrap()).is_err(),
                "{what} passed the check"
            );
        }
        assert!(check_export(&serde_json::to_vec(&base).unwrap()).is_ok());
    }
}

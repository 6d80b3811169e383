//! Readings as FHIR R4 Observations (DESIGN §4 "Blob payload"), built with `fhir-model`'s
//! typed builders (its `r4b` Observation is R4's), and back again for alerts and charts.
//!
//! Every Observation follows the FHIR vital-signs pattern: status `final`, category
//! `vital-signs`, a LOINC `code`, the patient as `subject`, the device as `device`,
//! `effectiveDateTime`, and a `valueQuantity` in UCUM (`http://unitsofmeasure.org`). Blood
//! pressure is the LOINC panel 85354-9 with no value of its own and two components,
//! systolic 8480-6 and diastolic 8462-4.
//!
//! References name keys, not people: `Patient/<account address hex>` and
//! `Device/<device key hex>`, because nothing personal may leave the patient's side in
//! a form that identifies them beyond the keys the chain already shows (DESIGN §3).

use crate::sim::{Measurement, Reading};
use fhir_model::r4b::codes::ObservationStatus;
use fhir_model::r4b::resources::{
    Observation, ObservationComponent, ObservationComponentValue, ObservationEffective, ObservationValue,
};
use fhir_model::r4b::types::{CodeableConcept, Coding, Identifier, Quantity, Reference};
use fhir_model::{BuilderError, DateTime, Instant};
use ledger::crypto::{sha256_concat, PublicKey};
use ledger::types::{loinc, TimeMs};

pub const LOINC_SYSTEM: &str = "http://loinc.org";
pub const UCUM_SYSTEM: &str = "http://unitsofmeasure.org";
pub const CATEGORY_SYSTEM: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// Identifier systems of Medledger's own names (keys and record ids, hex): a FHIR consumer
/// that follows them back reaches the chain, never a person.
pub const ACCOUNT_SYSTEM: &str = "urn:medledger:account";
pub const DEVICE_SYSTEM: &str = "urn:medledger:device";
pub const CONSENT_SYSTEM: &str = "urn:medledger:consent";
pub const STUDY_SYSTEM: &str = "urn:medledger:study";
/// The id an imported Observation had in the system it came from.
pub const IMPORTED_ID_SYSTEM: &str = "urn:medledger:imported-id";

/// Why an Observation could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FhirError {
    #[error("FHIR builder: {0}")]
    Builder(#[from] BuilderError),
    #[error("time {0} ms is outside what FHIR dateTime can express")]
    Time(TimeMs),
}

/// Display name and UCUM unit (code = unit text here) of each LOINC code the devices produce.
pub fn describe(code: &str) -> Option<(&'static str, &'static str)> {
    Some(match code {
        loinc::GLUCOSE_CGM => ("Glucose [Mass/volume] in Interstitial fluid", "mg/dL"),
        loinc::HEART_RATE => ("Heart rate", "/min"),
        loinc::SPO2 => ("Oxygen saturation in Arterial blood", "%"),
        loinc::BLOOD_PRESSURE_PANEL => ("Blood pressure panel with all children optional", ""),
        loinc::SYSTOLIC_BP => ("Systolic blood pressure", "mm[Hg]"),
        loinc::DIASTOLIC_BP => ("Diastolic blood pressure", "mm[Hg]"),
        loinc::BODY_TEMPERATURE => ("Body temperature", "Cel"),
        _ => return None,
    })
}

pub(crate) fn loinc_concept(code: &str) -> Result<CodeableConcept, BuilderError> {
    let display = describe(code).map_or("", |d| d.0);
    let coding = Coding::builder()
        .system(LOINC_SYSTEM.to_owned())
        .code(code.to_owned())
        .display(display.to_owned())
        .build()?;
    CodeableConcept::builder()
        .coding(vec![Some(coding)])
        .text(display.to_owned())
        .build()
}

fn quantity(value: f64, code: &str) -> Result<Quantity, BuilderError> {
    let unit = describe(code).map_or("", |d| d.1);
    Quantity::builder()
        .value(value)
        .unit(unit.to_owned())
        .system(UCUM_SYSTEM.to_owned())
        .code(unit.to_owned())
        .build()
}

fn vital_signs_category() -> Result<CodeableConcept, BuilderError> {
    let coding = Coding::builder()
        .system(CATEGORY_SYSTEM.to_owned())
        .code("vital-signs".to_owned())
        .display("Vital Signs".to_owned())
        .build()?;
    CodeableConcept::builder().coding(vec![Some(coding)]).build()
}

pub(crate) fn reference(kind: &str, key: &PublicKey) -> Result<Reference, BuilderError> {
    Reference::builder()
        .reference(format!("{kind}/{}", key.to_hex()))
        .build()
}

pub(crate) fn date_time(ms: TimeMs) -> Result<DateTime, FhirError> {
    let nanos = i128::from(ms) * 1_000_000;
    let at = fhir_model::time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .map_err(|_| FhirError::Time(ms))?;
    Ok(DateTime::DateTime(Instant(at)))
}

/// The milliseconds of an Observation's `effectiveDateTime`, if it has a full one.
pub fn effective_ms(obs: &Observation) -> Option<TimeMs> {
    match &obs.effective {
        Some(ObservationEffective::DateTime(DateTime::DateTime(Instant(at)))) => {
            u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()
        }
        _ => None,
    }
}

/// The LOINC code of one reading's Observation.
pub fn code_of(value: &Measurement) -> &'static str {
    match value {
        Measurement::Glucose(_) => loinc::GLUCOSE_CGM,
        Measurement::HeartRate(_) => loinc::HEART_RATE,
        Measurement::SpO2(_) => loinc::SPO2,
        Measurement::BloodPressure { .. } => loinc::BLOOD_PRESSURE_PANEL,
        Measurement::BodyTemperature(_) => loinc::BODY_TEMPERATURE,
    }
}

/// A stable id for the reading: the same reading always maps to the same Observation.
fn observation_id(device: &PublicKey, code: &str, time: TimeMs) -> String {
    let digest = sha256_concat(&[&device.0, code.as_bytes(), &time.to_be_bytes()]);
    hex::encode(&digest.0[..16])
}

/// The FHIR R4 Observation of `reading`, taken by `device` from `patient`.
pub fn observation(
    reading: &Reading,
    patient: &PublicKey,
    device: &PublicKey,
) -> Result<Observation, FhirError> {
    let id = observation_id(device, code_of(&reading.value), reading.time);
    build_observation(id, reading.time, &reading.value, patient, Some(device), None)
}

/// The Observation a reading imported from another system is stored as (issue 8): the same
/// shape as device data, so alerts, charts and exports read it alike, but with no device and
/// with the id it had at its source kept as an identifier. Its own id is derived from the
/// patient, code and time, so one reading imported twice has one id.
pub fn imported_observation(
    time: TimeMs,
    value: &Measurement,
    patient: &PublicKey,
    source_id: Option<&str>,
) -> Result<Observation, FhirError> {
    let code = code_of(value);
    let digest = sha256_concat(&[b"imported", &patient.0, code.as_bytes(), &time.to_be_bytes()]);
    build_observation(
        hex::encode(&digest.0[..16]),
        time,
        value,
        patient,
        None,
        source_id,
    )
}

fn build_observation(
    id: String,
    time: TimeMs,
    value: &Measurement,
    patient: &PublicKey,
    device: Option<&PublicKey>,
    source_id: Option<&str>,
) -> Result<Observation, FhirError> {
    let code = code_of(value);
    let mut builder = Observation::builder()
        .id(id)
        .status(ObservationStatus::Final)
        .category(vec![Some(vital_signs_category()?)])
        .code(loinc_concept(code)?)
        .subject(reference("Patient", patient)?)
        .effective(ObservationEffective::DateTime(date_time(time)?));
    if let Some(device) = device {
        builder = builder.device(reference("Device", device)?);
    }
    if let Some(source_id) = source_id {
        let identifier = Identifier::builder()
            .system(IMPORTED_ID_SYSTEM.to_owned())
            .value(source_id.to_owned())
            .build()?;
        builder = builder.identifier(vec![Some(identifier)]);
    }
    let builder = match *value {
        Measurement::Glucose(v)
        | Measurement::HeartRate(v)
        | Measurement::SpO2(v)
        | Measurement::BodyTemperature(v) => builder.value(ObservationValue::Quantity(quantity(v, code)?)),
        Measurement::BloodPressure { systolic, diastolic } => {
            let component = |code: &str, v: f64| -> Result<Option<ObservationComponent>, BuilderError> {
                Ok(Some(
                    ObservationComponent::builder()
                        .code(loinc_concept(code)?)
                        .value(ObservationComponentValue::Quantity(quantity(v, code)?))
                        .build()?,
                ))
            };
            builder.component(vec![
                component(loinc::SYSTOLIC_BP, systolic)?,
                component(loinc::DIASTOLIC_BP, diastolic)?,
            ])
        }
    };
    Ok(builder.build()?)
}

pub(crate) fn loinc_code_of(concept: &CodeableConcept) -> Option<&str> {
    concept
        .coding
        .iter()
        .flatten()
        .find(|c| c.system.as_deref() == Some(LOINC_SYSTEM))
        .and_then(|c| c.code.as_deref())
}

/// Every (LOINC code, value) an Observation carries: its own `valueQuantity` and those of its
/// components (so a blood-pressure panel yields systolic and diastolic). What alert rules
/// and charts read.
pub fn values(obs: &Observation) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    if let (Some(code), Some(ObservationValue::Quantity(q))) = (loinc_code_of(&obs.code), &obs.value) {
        if let Some(v) = q.value {
            out.push((code.to_owned(), v));
        }
    }
    for component in obs.component.iter().flatten() {
        if let (Some(code), Some(ObservationComponentValue::Quantity(q))) =
            (loinc_code_of(&component.code), &component.value)
        {
            if let Some(v) = q.value {
                out.push((code.to_owned(), v));
            }
        }
    }
    out
}

/// The LOINC code of the Observation itself (the panel code for blood pressure).
pub fn code(obs: &Observation) -> Option<&str> {
    loinc_code_of(&obs.code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::DeviceKind;

    fn keys() -> (PublicKey, PublicKey) {
        (PublicKey([1; 32]), PublicKey([2; 32]))
    }

    #[test]
    fn each_measurement_maps_to_its_loinc_code_and_ucum_unit() {
        let (patient, device) = keys();
        let cases = [
            (Measurement::Glucose(63.0), "99504-3", "mg/dL", 63.0),
            (Measurement::HeartRate(72.0), "8867-4", "/min", 72.0),
            (Measurement::SpO2(97.0), "2708-6", "%", 97.0),
            (Measurement::BodyTemperature(36.8), "8310-5", "Cel", 36.8),
        ];
        for (value, code, unit, v) in cases {
            let reading = Reading {
                time: 1_767_225_600_000,
                device: DeviceKind::Cgm,
                value,
            };
            let obs = observation(&reading, &patient, &device).unwrap();
            let json = serde_json::to_value(&obs).unwrap();
            assert_eq!(json["resourceType"], "Observation");
            assert_eq!(json["status"], "final");
            assert_eq!(json["code"]["coding"][0]["system"], LOINC_SYSTEM);
            assert_eq!(json["code"]["coding"][0]["code"], code);
            assert_eq!(json["category"][0]["coding"][0]["code"], "vital-signs");
            assert_eq!(json["valueQuantity"]["system"], UCUM_SYSTEM);
            assert_eq!(json["valueQuantity"]["code"], unit);
            assert_eq!(json["valueQuantity"]["value"], v);
            assert_eq!(json["effectiveDateTime"], "2026-01-01T00:00:00Z");
            assert_eq!(
                json["subject"]["reference"],
                format!("Patient/{}", patient.to_hex())
            );
            assert_eq!(json["device"]["reference"], format!("Device/{}", device.to_hex()));
            assert_eq!(values(&obs), vec![(code.to_owned(), v)]);
            assert_eq!(effective_ms(&obs), Some(reading.time));
        }
    }

    #[test]
    fn blood_pressure_is_a_panel_with_two_components() {
        let (patient, device) = keys();
        let reading = Reading {
            time: 1_767_225_600_000,
            device: DeviceKind::BpCuff,
            value: Measurement::BloodPressure {
                systolic: 128.0,
                diastolic: 82.0,
            },
        };
        let obs = observation(&reading, &patient, &device).unwrap();
        let json = serde_json::to_value(&obs).unwrap();
        assert_eq!(json["code"]["coding"][0]["code"], "85354-9");
        assert!(json.get("valueQuantity").is_none());
        assert_eq!(json["component"][0]["code"]["coding"][0]["code"], "8480-6");
        assert_eq!(json["component"][0]["valueQuantity"]["code"], "mm[Hg]");
        assert_eq!(json["component"][1]["code"]["coding"][0]["code"], "8462-4");
        assert_eq!(
            values(&obs),
            vec![("8480-6".to_owned(), 128.0), ("8462-4".to_owned(), 82.0)]
        );
        // JSON round trip through the typed model is lossless.
        let back: Observation = serde_json::from_value(json).unwrap();
        assert_eq!(back, obs);
    }
}

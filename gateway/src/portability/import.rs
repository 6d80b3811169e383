//! Observations from another system, checked one by one and grouped into batches the gateway
//! commits like device data (issue 8 item 3). Pure: [`read_entries`] splits the input,
//! [`check_entry`] accepts or rejects each resource with a reason, [`plan`] groups the
//! accepted readings into [`PlainBatch`]es; sealing and committing are
//! [`super::relay::commit_batches`].
//!
//! # What is accepted
//! A FHIR R4 `Observation` that parses with the typed model, with status `final`, `amended` or
//! `corrected`; a LOINC code the devices produce (glucose 99504-3, heart rate 8867-4, SpO2
//! 2708-6, body temperature 8310-5, or the blood-pressure panel 85354-9 with its systolic and
//! diastolic components); a `valueQuantity` in UCUM with that code's unit (the code, not the
//! display text, is compared) and a finite value in a plausible range; an
//! `effectiveDateTime` (or `effectiveInstant`) with a time of day and zone, after 1970 and not
//! after `now`. Anything else is rejected with a [`Rejection`] naming what was wrong, and a
//! reading already accepted at the same time with the same code is rejected as a duplicate,
//! within the input and against the patient's readings already on chain ([`drop_on_chain`]:
//! importing the same file twice commits nothing the second time).
//!
//! # What is stored
//! Accepted readings are stored in the gateway's own Observation shape
//! ([`fhir::imported_observation`]): no device, the source's id kept as an identifier. What
//! else the source put in a resource (performer, notes, free text) is not copied: the blob
//! holds exactly what the chain's commitment and the dashboard describe.
//!
//! # Batches and the ledger
//! One batch per LOINC code per window (an hour by default), at most
//! [`MAX_READINGS_PER_BATCH`] readings each. The ledger takes a commitment without a device
//! only when the patient signs it (`ledger/src/exec/data.rs` `commit_data`), lists its codes
//! as a set, and refuses a time range that ends in the future.

use crate::batch::{window_start, PlainBatch};
use crate::envelope::{loinc_codes_of, observation_lines, ContentType, EnvelopeHeader, ENVELOPE_VERSION};
use crate::fhir::{self, FhirError};
use crate::sim::{DeviceKind, Measurement};
use fhir_model::r4b::codes::ObservationStatus;
use fhir_model::r4b::resources::{
    Observation, ObservationComponentValue, ObservationEffective, ObservationValue,
};
use fhir_model::r4b::types::Quantity;
use fhir_model::{DateTime, Instant};
use ledger::crypto::Address;
use ledger::types::{loinc, LoincCode, RecordId, TimeMs, TimeRange, ValueError};
use std::collections::{BTreeMap, HashMap};

/// Most readings in one imported batch; a window holding more is split.
pub const MAX_READINGS_PER_BATCH: usize = 5_000;
/// Largest input accepted (the blob limit: an input larger than that cannot be stored anyway).
pub const MAX_INPUT_BYTES: usize = ledger::tx::MAX_BLOB_BYTES as usize;

/// Why one resource of an import was rejected.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum Rejection {
    #[error("not JSON: {0}")]
    NotJson(String),
    #[error("a Bundle entry without a resource")]
    NoResource,
    #[error("resourceType is {0:?}, not Observation")]
    NotAnObservation(String),
    #[error("not a valid FHIR R4 Observation: {0}")]
    Malformed(String),
    #[error("status {0:?}: only final, amended and corrected results are imported")]
    Status(String),
    #[error("no LOINC coding in Observation.code")]
    NoLoincCode,
    #[error("LOINC {0} is not a code Medledger stores (99504-3, 8867-4, 2708-6, 8310-5, 85354-9)")]
    UnsupportedCode(String),
    #[error("{code}: no valueQuantity")]
    NoValue { code: String },
    #[error("{code}: the quantity has no value")]
    NoNumber { code: String },
    #[error("{code}: the unit system is {system:?}, expected UCUM (http://unitsofmeasure.org)")]
    NotUcum { code: String, system: Option<String> },
    #[error("{code}: the UCUM unit is {got:?}, expected {expected:?}")]
    WrongUnit {
        code: String,
        expected: &'static str,
        got: Option<String>,
    },
    #[error("{code}: value {value} is outside {min}..={max}")]
    OutOfRange {
        code: String,
        value: f64,
        min: f64,
        max: f64,
    },
    #[error("the blood-pressure panel lacks its {0} component")]
    MissingComponent(&'static str),
    #[error("no effectiveDateTime or effectiveInstant with a time of day")]
    NoEffectiveTime,
    #[error("effective time {at} ms is after now ({now} ms)")]
    InFuture { at: TimeMs, now: TimeMs },
    #[error("the same reading ({code} at {at} ms) is entry {first}")]
    Duplicate { code: String, at: TimeMs, first: usize },
    #[error("already on chain: a reading of {code} at {at} ms is in commitment {commitment}")]
    AlreadyOnChain {
        code: String,
        at: TimeMs,
        /// The commitment (hex) that holds it.
        commitment: String,
    },
}

/// Readings the patient already has on chain, by (LOINC code, time): an import run twice, or
/// overlapping an earlier one, keeps each reading once.
pub type OnChain = HashMap<(&'static str, TimeMs), RecordId>;

/// Rejects the accepted readings that `on_chain` already holds (module docs); returns the
/// readings left and the rejections, by position.
pub fn drop_on_chain(accepted: Vec<Accepted>, on_chain: &OnChain) -> (Vec<Accepted>, Vec<Rejected>) {
    let mut kept = Vec::with_capacity(accepted.len());
    let mut rejected = Vec::new();
    for a in accepted {
        let code = fhir::code_of(&a.value);
        match on_chain.get(&(code, a.time)) {
            Some(commitment) => rejected.push(Rejected {
                index: a.index,
                reason: Rejection::AlreadyOnChain {
                    code: code.to_owned(),
                    at: a.time,
                    commitment: commitment.to_hex(),
                },
            }),
            None => kept.push(a),
        }
    }
    (kept, rejected)
}

/// The time range `accepted` spans, if any: what [`OnChain`] needs to cover.
pub fn span(accepted: &[Accepted]) -> Option<TimeRange> {
    let start = accepted.iter().map(|a| a.time).min()?;
    let end = accepted.iter().map(|a| a.time).max()?;
    Some(TimeRange { start, end })
}

/// Why an import could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("the input is {0} bytes; at most {MAX_INPUT_BYTES} are imported at once")]
    TooLarge(usize),
    #[error("the input is a {0}, not a Bundle, an Observation or NDJSON")]
    NotObservations(String),
    #[error(transparent)]
    Fhir(#[from] FhirError),
    #[error(transparent)]
    Envelope(#[from] crate::envelope::EnvelopeError),
    #[error(transparent)]
    Value(#[from] ValueError),
}

/// One resource of the input: a Bundle entry's resource or an NDJSON line, by position.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// Position in the input: the Bundle's `entry` index, or the NDJSON line index (from 0).
    pub index: usize,
    pub resource: Result<serde_json::Value, Rejection>,
}

/// A reading that passed every check.
#[derive(Clone, Debug, PartialEq)]
pub struct Accepted {
    pub index: usize,
    pub time: TimeMs,
    pub value: Measurement,
    /// The Observation's id at its source.
    pub source_id: Option<String>,
}

/// A resource that did not.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejected {
    pub index: usize,
    pub reason: Rejection,
}

/// Splits an input into resources: a FHIR Bundle (its entries), a single resource, or NDJSON
/// (one resource per non-empty line; a line that is not JSON is rejected, the others kept).
pub fn read_entries(input: &[u8]) -> Result<Vec<Entry>, ImportError> {
    if input.len() > MAX_INPUT_BYTES {
        return Err(ImportError::TooLarge(input.len()));
    }
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(input) {
        return match value.get("resourceType").and_then(|t| t.as_str()) {
            Some("Bundle") => {
                let entries = value
                    .get("entry")
                    .and_then(|e| e.as_array())
                    .cloned()
                    .unwrap_or_default();
                Ok(entries
                    .into_iter()
                    .enumerate()
                    .map(|(index, mut entry)| Entry {
                        index,
                        resource: entry
                            .get_mut("resource")
                            .map(serde_json::Value::take)
                            .ok_or(Rejection::NoResource),
                    })
                    .collect())
            }
            Some(_) => Ok(vec![Entry {
                index: 0,
                resource: Ok(value),
            }]),
            None => Err(ImportError::NotObservations(
                "JSON value without a resourceType".into(),
            )),
        };
    }
    Ok(input
        .split(|b| *b == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(index, line)| Entry {
            index,
            resource: serde_json::from_slice(line).map_err(|e| Rejection::NotJson(e.to_string())),
        })
        .collect())
}

/// The UCUM unit and plausible range of each stored value's code.
fn expected(code: &str) -> Option<(&'static str, f64, f64)> {
    Some(match code {
        loinc::GLUCOSE_CGM => ("mg/dL", 1.0, 1500.0),
        loinc::HEART_RATE => ("/min", 1.0, 350.0),
        loinc::SPO2 => ("%", 0.0, 100.0),
        loinc::BODY_TEMPERATURE => ("Cel", 20.0, 46.0),
        loinc::SYSTOLIC_BP | loinc::DIASTOLIC_BP => ("mm[Hg]", 1.0, 350.0),
        _ => return None,
    })
}

fn quantity_value(code: &str, q: &Quantity) -> Result<f64, Rejection> {
    let (unit, min, max) = expected(code).ok_or_else(|| Rejection::UnsupportedCode(code.to_owned()))?;
    if q.system.as_deref() != Some(fhir::UCUM_SYSTEM) {
        return Err(Rejection::NotUcum {
            code: code.to_owned(),
            system: q.system.clone(),
        });
    }
    if q.code.as_deref() != Some(unit) {
        return Err(Rejection::WrongUnit {
            code: code.to_owned(),
            expected: unit,
            got: q.code.clone(),
        });
    }
    let value = q.value.ok_or_else(|| Rejection::NoNumber {
        code: code.to_owned(),
    })?;
    if !(value.is_finite() && (min..=max).contains(&value)) {
        return Err(Rejection::OutOfRange {
            code: code.to_owned(),
            value,
            min,
            max,
        });
    }
    Ok(value)
}

fn single_value(obs: &Observation, code: &str) -> Result<f64, Rejection> {
    match &obs.value {
        Some(ObservationValue::Quantity(q)) => quantity_value(code, q),
        _ => Err(Rejection::NoValue {
            code: code.to_owned(),
        }),
    }
}

fn component_value(obs: &Observation, code: &'static str) -> Result<f64, Rejection> {
    let component = obs
        .component
        .iter()
        .flatten()
        .find(|c| fhir::loinc_code_of(&c.code) == Some(code))
        .ok_or(Rejection::MissingComponent(code))?;
    match &component.value {
        Some(ObservationComponentValue::Quantity(q)) => quantity_value(code, q),
        _ => Err(Rejection::NoValue {
            code: code.to_owned(),
        }),
    }
}

fn effective_time(obs: &Observation) -> Result<TimeMs, Rejection> {
    let at = match &obs.effective {
        Some(ObservationEffective::DateTime(DateTime::DateTime(Instant(at))))
        | Some(ObservationEffective::Instant(Instant(at))) => at,
        _ => return Err(Rejection::NoEffectiveTime),
    };
    u64::try_from(at.unix_timestamp_nanos() / 1_000_000).map_err(|_| Rejection::NoEffectiveTime)
}

/// The checks of the module docs on a parsed Observation: its time and value, or why not.
pub fn check_observation(obs: &Observation, now: TimeMs) -> Result<(TimeMs, Measurement), Rejection> {
    match obs.status {
        ObservationStatus::Final | ObservationStatus::Amended | ObservationStatus::Corrected => {}
        other => {
            let name = serde_json::to_value(other)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(Rejection::Status(name));
        }
    }
    let code = fhir::loinc_code_of(&obs.code).ok_or(Rejection::NoLoincCode)?;
    let value = match code {
        loinc::GLUCOSE_CGM => Measurement::Glucose(single_value(obs, code)?),
        loinc::HEART_RATE => Measurement::HeartRate(single_value(obs, code)?),
        loinc::SPO2 => Measurement::SpO2(single_value(obs, code)?),
        loinc::BODY_TEMPERATURE => Measurement::BodyTemperature(single_value(obs, code)?),
        loinc::BLOOD_PRESSURE_PANEL => Measurement::BloodPressure {
            systolic: component_value(obs, loinc::SYSTOLIC_BP)?,
            diastolic: component_value(obs, loinc::DIASTOLIC_BP)?,
        },
        other => return Err(Rejection::UnsupportedCode(other.to_owned())),
    };
    let at = effective_time(obs)?;
    if at > now {
        return Err(Rejection::InFuture { at, now });
    }
    Ok((at, value))
}

/// Accepts or rejects one input resource (module docs), as of `now`.
pub fn check_entry(
    resource: &serde_json::Value,
    now: TimeMs,
) -> Result<(TimeMs, Measurement, Option<String>), Rejection> {
    match resource.get("resourceType").and_then(|t| t.as_str()) {
        Some("Observation") => {}
        other => return Err(Rejection::NotAnObservation(other.unwrap_or("(none)").to_owned())),
    }
    let obs: Observation =
        serde_json::from_value(resource.clone()).map_err(|e| Rejection::Malformed(e.to_string()))?;
    let (at, value) = check_observation(&obs, now)?;
    Ok((at, value, obs.id.clone()))
}

/// Checks every entry: the accepted readings and the rejected resources, each by position.
pub fn check_entries(entries: &[Entry], now: TimeMs) -> (Vec<Accepted>, Vec<Rejected>) {
    let mut accepted = Vec::new();
    let mut rejected = Vec::new();
    let mut seen: HashMap<(&'static str, TimeMs), usize> = HashMap::new();
    for entry in entries {
        let checked = entry
            .resource
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|resource| check_entry(resource, now));
        match checked {
            Ok((time, value, source_id)) => {
                let code = fhir::code_of(&value);
                if let Some(&first) = seen.get(&(code, time)) {
                    rejected.push(Rejected {
                        index: entry.index,
                        reason: Rejection::Duplicate {
                            code: code.to_owned(),
                            at: time,
                            first,
                        },
                    });
                    continue;
                }
                seen.insert((code, time), entry.index);
                accepted.push(Accepted {
                    index: entry.index,
                    time,
                    value,
                    source_id,
                });
            }
            Err(reason) => rejected.push(Rejected {
                index: entry.index,
                reason,
            }),
        }
    }
    (accepted, rejected)
}

/// The simulator's device kind producing a code: batches carry one for display.
fn kind_of(value: &Measurement) -> DeviceKind {
    match value {
        Measurement::Glucose(_) => DeviceKind::Cgm,
        Measurement::HeartRate(_) | Measurement::SpO2(_) => DeviceKind::PulseOximeter,
        Measurement::BloodPressure { .. } => DeviceKind::BpCuff,
        Measurement::BodyTemperature(_) => DeviceKind::Thermometer,
    }
}

/// An imported batch before sealing, and which input entries it holds (in line order).
#[derive(Clone, Debug, PartialEq)]
pub struct ImportBatch {
    pub plain: PlainBatch,
    pub entries: Vec<usize>,
}

/// Groups accepted readings into batches: one per LOINC code per `window_ms` window, readings
/// in time order, at most [`MAX_READINGS_PER_BATCH`] each; each an envelope header with no
/// device and the codes its Observations carry.
pub fn plan(
    patient: Address,
    accepted: &[Accepted],
    window_ms: u64,
) -> Result<Vec<ImportBatch>, ImportError> {
    let mut groups: BTreeMap<(&'static str, TimeMs), Vec<&Accepted>> = BTreeMap::new();
    for a in accepted {
        groups
            .entry((fhir::code_of(&a.value), window_start(a.time, window_ms.max(1))))
            .or_default()
            .push(a);
    }
    let mut out = Vec::new();
    for (_, mut readings) in groups {
        readings.sort_by_key(|a| a.time);
        for chunk in readings.chunks(MAX_READINGS_PER_BATCH) {
            let (Some(first), Some(last)) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let observations = chunk
                .iter()
                .map(|a| fhir::imported_observation(a.time, &a.value, &patient, a.source_id.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            let lines = observation_lines(&observations)?;
            let loinc_codes = loinc_codes_of(&observations)
                .iter()
                .map(|c| LoincCode::new(c))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(ImportBatch {
                plain: PlainBatch {
                    device_kind: kind_of(&first.value),
                    header: EnvelopeHeader {
                        version: ENVELOPE_VERSION,
                        content_type: ContentType::FhirNdjson,
                        patient,
                        device: None,
                        time_range: public_range(first.time, last.time, window_ms),
                    },
                    observations,
                    lines,
                    loinc_codes,
                },
                entries: chunk.iter().map(|a| a.index).collect(),
            });
        }
    }
    Ok(out)
}

/// The commitment's public time range for readings `first..=last` of one window: the window's
/// bounds, cut at the whole minute after the last reading so a window still open never ends in
/// the future. Never the readings' own times, which would put exact reading times on chain.
fn public_range(first: TimeMs, last: TimeMs, window_ms: u64) -> TimeRange {
    const MINUTE_MS: u64 = 60_000;
    let start = window_start(first, window_ms.max(1));
    let window_end = start.saturating_add(window_ms.max(1) - 1);
    let minute_end = (last / MINUTE_MS)
        .saturating_mul(MINUTE_MS)
        .saturating_add(MINUTE_MS - 1);
    TimeRange {
        start,
        end: window_end.min(minute_end).max(last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const T0: u64 = 1_767_225_600_000;
    const NOW: u64 = T0 + 86_400_000;

    fn glucose(value: serde_json::Value, unit: &str, at: &str) -> serde_json::Value {
        json!({
            "resourceType": "Observation", "id": "src-1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "99504-3"}]},
            "subject": {"reference": "Patient/elsewhere-42", "display": "Jane Doe"},
            "effectiveDateTime": at,
            "valueQuantity": {"value": value, "unit": unit, "system": "http://unitsofmeasure.org", "code": unit}
        })
    }

    #[test]
    fn readings_already_on_chain_are_rejected_and_the_rest_kept() {
        let reading = |index: usize, time: TimeMs, value: Measurement| Accepted {
            index,
            time,
            value,
            source_id: None,
        };
        let accepted = vec![
            reading(0, T0, Measurement::Glucose(104.0)),
            reading(1, T0, Measurement::HeartRate(61.0)),
            reading(2, T0 + 60_000, Measurement::Glucose(110.0)),
        ];
        assert_eq!(
            span(&accepted),
            Some(TimeRange {
                start: T0,
                end: T0 + 60_000
            })
        );
        assert_eq!(span(&[]), None);
        let commitment: RecordId = ledger::crypto::Hash([7; 32]);
        // The glucose reading at T0 is on chain; the heart rate at the same time is not.
        let on_chain: OnChain = [(("99504-3", T0), commitment)].into_iter().collect();
        let (kept, rejected) = drop_on_chain(accepted, &on_chain);
        assert_eq!(kept.iter().map(|a| a.index).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].index, 0);
        assert!(
            matches!(&rejected[0].reason, Rejection::AlreadyOnChain { code, at, commitment: c }
                if code == "99504-3" && *at == T0 && *c == commitment.to_hex()),
            "{:?}",
            rejected[0].reason
        );
    }

    /// The reading a case yields, or a test of the reason it is rejected for.
    type Expected = Result<Measurement, fn(&Rejection) -> bool>;

    #[test]
    fn each_resource_is_accepted_or_rejected_with_its_reason() {
        let ok = glucose(json!(104.0), "mg/dL", "2026-01-01T00:05:00Z");
        let with = |edit: fn(&mut serde_json::Value)| {
            let mut v = ok.clone();
            edit(&mut v);
            v
        };
        let bp = json!({
            "resourceType": "Observation", "status": "amended",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "effectiveDateTime": "2026-01-01T00:30:00+01:00",
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                 "valueQuantity": {"value": 121, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                 "valueQuantity": {"value": 79, "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}
            ]
        });
        let cases: Vec<(serde_json::Value, Expected)> = vec![
            (ok.clone(), Ok(Measurement::Glucose(104.0))),
            (
                bp.clone(),
                Ok(Measurement::BloodPressure {
                    systolic: 121.0,
                    diastolic: 79.0,
                }),
            ),
            (
                json!({"resourceType": "Patient"}),
                Err(|r| matches!(r, Rejection::NotAnObservation(t) if t == "Patient")),
            ),
            (
                with(|v| v["status"] = json!("preliminary")),
                Err(|r| matches!(r, Rejection::Status(s) if s == "preliminary")),
            ),
            (
                with(|v| v["status"] = json!("bogus")),
                Err(|r| matches!(r, Rejection::Malformed(_))),
            ),
            (
                with(|v| v["code"]["coding"][0]["code"] = json!("2339-0")),
                Err(|r| matches!(r, Rejection::UnsupportedCode(c) if c == "2339-0")),
            ),
            (
                with(|v| v["code"]["coding"][0]["system"] = json!("http://snomed.info/sct")),
                Err(|r| *r == Rejection::NoLoincCode),
            ),
            (
                with(|v| v["valueQuantity"]["code"] = json!("mmol/L")),
                Err(|r| {
                    matches!(
                        r,
                        Rejection::WrongUnit {
                            expected: "mg/dL",
                            ..
                        }
                    )
                }),
            ),
            (
                with(|v| v["valueQuantity"]["system"] = json!("http://example.org")),
                Err(|r| matches!(r, Rejection::NotUcum { .. })),
            ),
            (
                with(|v| v["valueQuantity"]["value"] = json!(-3)),
                Err(|r| matches!(r, Rejection::OutOfRange { .. })),
            ),
            (
                with(|v| v["valueQuantity"]["value"] = json!("high")),
                Err(|r| matches!(r, Rejection::Malformed(_) | Rejection::NoValue { .. })),
            ),
            (
                with(|v| {
                    v.as_object_mut().unwrap().remove("valueQuantity");
                }),
                Err(|r| matches!(r, Rejection::NoValue { .. })),
            ),
            (
                with(|v| v["effectiveDateTime"] = json!("2026-01-01")),
                Err(|r| *r == Rejection::NoEffectiveTime),
            ),
            (
                with(|v| {
                    v.as_object_mut().unwrap().remove("effectiveDateTime");
                }),
                Err(|r| *r == Rejection::NoEffectiveTime),
            ),
            (
                with(|v| v["effectiveDateTime"] = json!("2027-01-01T00:00:00Z")),
                Err(|r| matches!(r, Rejection::InFuture { .. })),
            ),
            (
                {
                    let mut b = bp.clone();
                    b["component"].as_array_mut().unwrap().pop();
                    b
                },
                Err(|r| *r == Rejection::MissingComponent("8462-4")),
            ),
        ];
        for (i, (resource, expected)) in cases.into_iter().enumerate() {
            let got = check_entry(&resource, NOW);
            match (got, expected) {
                (Ok((_, value, _)), Ok(want)) => assert_eq!(value, want, "case {i}"),
                (Err(reason), Err(is_expected)) => assert!(is_expected(&reason), "case {i}: {reason}"),
                (got, _) => panic!("case {i}: {got:?}"),
            }
        }
        let (at, _, id) = check_entry(&bp, NOW).unwrap();
        assert_eq!(at, T0 + 30 * 60_000 - 3_600_000, "the zone is honoured");
        assert_eq!(check_entry(&ok, NOW).unwrap().2.as_deref(), Some("src-1"));
        assert_eq!(id, None);
    }

    #[test]
    fn bundles_and_ndjson_split_into_entries_and_duplicates_are_rejected() {
        let a = glucose(json!(100.0), "mg/dL", "2026-01-01T00:05:00Z");
        let b = glucose(json!(101.0), "mg/dL", "2026-01-01T01:05:00Z");
        let bundle = json!({"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": a}, {"fullUrl": "x"}, {"resource": b}, {"resource": a}]});
        let entries = read_entries(&serde_json::to_vec(&bundle).unwrap()).unwrap();
        assert_eq!(entries.len(), 4);
        let (accepted, rejected) = check_entries(&entries, NOW);
        assert_eq!(accepted.iter().map(|a| a.index).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(
            rejected[0],
            Rejected {
                index: 1,
                reason: Rejection::NoResource
            }
        );
        assert!(matches!(
            rejected[1],
            Rejected {
                index: 3,
                reason: Rejection::Duplicate { first: 0, .. }
            }
        ));

        let ndjson = format!("{a}\nnot json\n\n{b}\n");
        let entries = read_entries(ndjson.as_bytes()).unwrap();
        let (accepted, rejected) = check_entries(&entries, NOW);
        assert_eq!(accepted.iter().map(|a| a.index).collect::<Vec<_>>(), vec![0, 3]);
        assert!(matches!(
            rejected[..],
            [Rejected {
                index: 1,
                reason: Rejection::NotJson(_)
            }]
        ));
        assert!(read_entries(b"[1, 2]").is_err());
    }

    #[test]
    fn accepted_readings_are_batched_per_code_per_window() {
        let patient = Address::from_hex(&"11".repeat(32)).unwrap();
        let at = |min: u64| T0 + min * 60_000;
        let accepted = vec![
            Accepted {
                index: 0,
                time: at(70),
                value: Measurement::Glucose(90.0),
                source_id: None,
            },
            Accepted {
                index: 1,
                time: at(5),
                value: Measurement::Glucose(95.0),
                source_id: Some("x".into()),
            },
            Accepted {
                index: 2,
                time: at(10),
                value: Measurement::HeartRate(60.0),
                source_id: None,
            },
            Accepted {
                index: 3,
                time: at(1),
                value: Measurement::Glucose(99.0),
                source_id: None,
            },
            Accepted {
                index: 4,
                time: at(2),
                value: Measurement::BloodPressure {
                    systolic: 120.0,
                    diastolic: 80.0,
                },
                source_id: None,
            },
        ];
        let batches = plan(patient, &accepted, 3_600_000).unwrap();
        let shape: Vec<(Vec<String>, Vec<usize>)> = batches
            .iter()
            .map(|b| {
                (
                    b.plain
                        .loinc_codes
                        .iter()
                        .map(|c| c.as_str().to_owned())
                        .collect(),
                    b.entries.clone(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (vec!["8462-4".into(), "8480-6".into(), "85354-9".into()], vec![4]),
                (vec!["8867-4".into()], vec![2]),
                (vec!["99504-3".into()], vec![3, 1]),
                (vec!["99504-3".into()], vec![0]),
            ]
        );
        let glucose = &batches[2].plain;
        assert_eq!(glucose.header.device, None);
        assert_eq!(
            glucose.header.time_range,
            // Public: from the window's start to the end of the last reading's minute, never
            // the readings' own times.
            TimeRange {
                start: window_start(at(1), 3_600_000),
                end: at(5) + 59_999
            }
        );
        let line: serde_json::Value = serde_json::from_slice(&glucose.lines[1]).unwrap();
        assert_eq!(line["identifier"][0]["value"], "x");
        assert!(line.get("device").is_none());
        assert_eq!(
            line["subject"]["reference"],
            format!("Patient/{}", patient.to_hex())
        );
    }
}

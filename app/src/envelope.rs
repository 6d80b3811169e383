//! Reading decrypted readings without the FHIR model.
//!
//! `gateway::open_batch` parses every line as a full `fhir_model` Observation; linking that
//! parser (its `contained` resources pull in every FHIR resource) made the wasm 17 MB. The page
//! opens blobs with `gateway::open_lines_verified` (decrypt, and check CID, header, readings
//! root and count against the commitment) and reads only the fields a chart or a note needs.

use ledger::types::TimeMs;
use serde::Deserialize;

/// The parts of a FHIR R4 Observation the charts and notes read.
#[derive(Debug, Deserialize)]
pub struct Reading {
    pub code: Concept,
    #[serde(rename = "effectiveDateTime")]
    pub effective: Option<String>,
    #[serde(rename = "valueQuantity")]
    pub value_quantity: Option<Quantity>,
    #[serde(rename = "valueString")]
    pub value_string: Option<String>,
    #[serde(default)]
    pub component: Vec<Component>,
}

#[derive(Debug, Deserialize)]
pub struct Concept {
    #[serde(default)]
    pub coding: Vec<Coding>,
}

#[derive(Debug, Deserialize)]
pub struct Coding {
    pub system: Option<String>,
    pub code: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Quantity {
    pub value: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Component {
    pub code: Concept,
    #[serde(rename = "valueQuantity")]
    pub value_quantity: Option<Quantity>,
}

impl Concept {
    fn loinc(&self) -> Option<&str> {
        self.coding
            .iter()
            .find(|c| c.system.as_deref() == Some(gateway::fhir::LOINC_SYSTEM))
            .and_then(|c| c.code.as_deref())
    }
}

impl Reading {
    pub fn parse(line: &[u8]) -> Option<Reading> {
        serde_json::from_slice(line).ok()
    }

    pub fn time_ms(&self) -> Option<TimeMs> {
        let ms = js_sys::Date::parse(self.effective.as_deref()?);
        (ms.is_finite() && ms >= 0.0).then_some(ms as TimeMs)
    }

    /// (LOINC code, value) of the Observation and of its components (blood pressure).
    pub fn values(&self) -> Vec<(String, f64)> {
        let own = self
            .code
            .loinc()
            .zip(self.value_quantity.as_ref().and_then(|q| q.value))
            .map(|(c, v)| (c.to_string(), v));
        let parts = self
            .component
            .iter()
            .filter_map(|c| Some((c.code.loinc()?.to_string(), c.value_quantity.as_ref()?.value?)));
        own.into_iter().chain(parts).collect()
    }
}

//! How values are written on the page.

use ledger::crypto::Hash;
use ledger::types::TimeMs;

/// `2026-11-25 14:03:08 UTC`.
pub fn time(ms: TimeMs) -> String {
    let iso = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64))
        .to_iso_string()
        .as_string()
        .unwrap_or_default();
    // 2026-11-25T14:03:08.123Z
    if iso.len() >= 19 {
        format!("{} {} UTC", &iso[..10], &iso[11..19])
    } else {
        format!("{ms} ms")
    }
}

/// `14:03` (UTC), for chart axes.
pub fn clock(ms: f64) -> String {
    let minutes = (ms / 60_000.0).floor() as i64;
    let day_minutes = minutes.rem_euclid(24 * 60);
    format!("{:02}:{:02}", day_minutes / 60, day_minutes % 60)
}

/// The first 12 hex characters, for ids and keys.
pub fn short(hex: &str) -> String {
    if hex.len() > 12 {
        format!("{}…", &hex[..12])
    } else {
        hex.to_string()
    }
}

pub fn short_hash(h: &Hash) -> String {
    short(&h.to_hex())
}

/// How long ago `ms` was, roughly.
pub fn ago(ms: TimeMs, now: TimeMs) -> String {
    let s = now.saturating_sub(ms) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=86_399 => format!("{} h ago", s / 3600),
        _ => format!("{} d ago", s / 86_400),
    }
}

/// The name of a LOINC code the devices produce.
pub fn loinc_name(code: &str) -> String {
    match code {
        ledger::types::loinc::GLUCOSE_CGM => "Glucose (CGM)".into(),
        ledger::types::loinc::HEART_RATE => "Heart rate".into(),
        ledger::types::loinc::SPO2 => "SpO₂".into(),
        ledger::types::loinc::BLOOD_PRESSURE_PANEL => "Blood pressure".into(),
        ledger::types::loinc::SYSTOLIC_BP => "Systolic BP".into(),
        ledger::types::loinc::DIASTOLIC_BP => "Diastolic BP".into(),
        ledger::types::loinc::BODY_TEMPERATURE => "Body temperature".into(),
        other => format!("LOINC {other}"),
    }
}

pub fn unit(code: &str) -> &'static str {
    gateway::fhir::describe(code).map_or("", |d| d.1)
}

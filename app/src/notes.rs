//! Clinician notes (DESIGN §3): a note is one FHIR Observation (LOINC 11506-3, progress note,
//! `valueString`) sealed in the gateway's blob envelope for the patient and its author,
//! stored on the relay and committed with `AddClinicianNote`.

use crate::api;
use crate::error::{AppError, AppResult};
use gateway::envelope::{seal_lines, ContentType, EnvelopeHeader, ENVELOPE_VERSION};
use ledger::crypto::{AccountKeys, Address};
use ledger::state::records::DataCommitment;
use ledger::tx::Action;
use ledger::types::{Purpose, RecordId, TimeRange};
use rand_core::{CryptoRng, RngCore};

/// LOINC "Progress note".
pub const NOTE_LOINC: &str = "11506-3";
/// Longest note accepted by the form.
pub const MAX_NOTE_CHARS: usize = 4_000;

/// The browser's CSPRNG (`crypto.getRandomValues`) as a `rand_core` RNG.
#[derive(Debug)]
pub struct BrowserRng;

impl RngCore for BrowserRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // Encryption keys without randomness would be worse than no note: stop here.
        getrandom02::getrandom(dest).expect("the browser has crypto.getRandomValues");
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        getrandom02::getrandom(dest).map_err(|e| rand_core::Error::from(e.code()))
    }
}

impl CryptoRng for BrowserRng {}

fn note_line(patient: &Address, author: &Address, text: &str, at: u64) -> AppResult<Vec<u8>> {
    let when = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(at as f64))
        .to_iso_string()
        .as_string()
        .unwrap_or_default();
    let json = serde_json::json!({
        "resourceType": "Observation",
        "status": "final",
        "code": { "coding": [{ "system": "http://loinc.org", "code": NOTE_LOINC, "display": "Progress note" }] },
        "subject": { "reference": format!("Patient/{}", patient.to_hex()) },
        "performer": [{ "reference": format!("Practitioner/{}", author.to_hex()) }],
        "effectiveDateTime": when,
        "valueString": text,
    });
    serde_json::to_vec(&json).map_err(|e| AppError::Input(e.to_string()))
}

/// Seals `text` for the patient and the author, stores it and commits it on chain.
pub async fn write(
    author: &AccountKeys,
    patient: Address,
    text: &str,
    state: crate::state::AppState,
) -> AppResult<ledger::types::Cid> {
    if text.trim().is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(AppError::Input(format!(
            "a note has 1 to {MAX_NOTE_CHARS} characters"
        )));
    }
    let account = api::query(async |c| c.account(&patient).await).await?;
    let patient_key = account
        .value
        .ok_or_else(|| AppError::Input("the patient has no account on chain".into()))?
        .encryption_key;
    let now = api::now_ms();
    let line = note_line(&patient, &author.address(), text.trim(), now)?;
    let header = EnvelopeHeader {
        version: ENVELOPE_VERSION,
        content_type: ContentType::FhirNdjson,
        patient,
        device: None,
        time_range: TimeRange { start: now, end: now },
    };
    let sealed = seal_lines(
        header,
        &[line],
        &[patient_key, author.encryption_key()],
        &mut BrowserRng,
    )
    .map_err(|e| AppError::Blob(e.to_string()))?;
    api::put_blob(&sealed.cid, &sealed.blob).await?;
    let action = Action::AddClinicianNote {
        patient,
        cid: sealed.cid,
        size: sealed.blob.len() as u64,
        time_range: TimeRange { start: now, end: now },
    };
    api::submit(author, action, state).await?;
    Ok(sealed.cid)
}

/// Reads and decrypts a note (the CID is checked against the commitment).
pub async fn read(reader: &AccountKeys, id: RecordId, commitment: &DataCommitment) -> AppResult<String> {
    // Each read is an access record on chain: read a note once per page load.
    if let Some(text) = READ.with(|r| r.borrow().get(&id).cloned()) {
        return Ok(text);
    }
    let blob = api::fetch_blob(reader, id, commitment, Purpose::Treatment).await?;
    let lines = gateway::open_lines(reader, &blob)
        .map_err(|e| AppError::Blob(e.to_string()))?
        .lines;
    let text = lines
        .iter()
        .filter_map(|l| crate::envelope::Reading::parse(l)?.value_string)
        .collect::<Vec<_>>()
        .join("\n");
    READ.with(|r| {
        let mut r = r.borrow_mut();
        if r.len() >= 256 {
            r.clear();
        }
        r.insert(id, text.clone());
    });
    Ok(text)
}

thread_local! {
    static READ: std::cell::RefCell<std::collections::HashMap<RecordId, String>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

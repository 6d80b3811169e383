//! Opening a gateway blob in the browser without the FHIR model.
//!
//! `gateway::open_batch` decrypts and then parses every line as a full `fhir_model`
//! Observation; linking that parser (its `contained` resources pull in every FHIR resource)
//! made the wasm 17 MB. So the page decrypts the envelope itself, exactly as the gateway's
//! format documents it (`gateway::envelope`: HPKE base mode X25519-HKDF-SHA256 /
//! HKDF-SHA256 / ChaCha20-Poly1305 with info `HPKE_INFO` and aad = header ‖ nonce wraps the
//! data key; XChaCha20-Poly1305 with aad = borsh(header) seals the NDJSON payload), checks the
//! blob against its commitment like `open_batch_verified`, and reads only the fields a chart
//! needs. TODO(gateway): expose `open_lines` (decrypt + verify, no parsing) and use it here.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use gateway::envelope::{readings_root, Envelope, EnvelopeHeader, HPKE_INFO};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR};
use ledger::crypto::AccountKeys;
use ledger::state::records::DataCommitment;
use ledger::types::{Cid, TimeMs};
use serde::Deserialize;

type Kem = X25519HkdfSha256;

/// Why a blob could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OpenError {
    #[error("the blob hashes to {actual}, the commitment names {committed}")]
    CidMismatch { committed: Cid, actual: Cid },
    #[error("malformed blob: {0}")]
    Malformed(String),
    #[error("the data key is not wrapped for this account (the batch was sealed before access was granted)")]
    NotARecipient,
    #[error("the data key does not unwrap: {0}")]
    Unwrap(String),
    #[error("the payload does not decrypt (altered ciphertext or header)")]
    Decrypt,
    #[error("the blob's header (patient, device or time range) differs from the commitment's")]
    HeaderMismatch,
    #[error("the readings' Merkle root differs from the commitment's")]
    RootMismatch,
    #[error("the blob holds {actual} readings, the commitment says {committed}")]
    CountMismatch { committed: u32, actual: usize },
}

/// Decrypts `blob` with `keys`: the header and the payload's lines (exact bytes).
pub fn open_lines(keys: &AccountKeys, blob: &[u8]) -> Result<(EnvelopeHeader, Vec<Vec<u8>>), OpenError> {
    let envelope = Envelope::from_bytes(blob).map_err(|e| OpenError::Malformed(e.to_string()))?;
    let me = keys.encryption_key();
    let wrapped = envelope
        .recipients
        .iter()
        .find(|w| w.recipient == me)
        .ok_or(OpenError::NotARecipient)?;
    let header = envelope.header();
    let header_bytes = ledger::codec::encode(&header);
    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(&keys.encryption_secret().to_bytes())
        .map_err(|e| OpenError::Unwrap(e.to_string()))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&wrapped.enc)
        .map_err(|e| OpenError::Unwrap(e.to_string()))?;
    let wrap_aad = [header_bytes.as_slice(), envelope.nonce.as_slice()].concat();
    let mut data_key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &secret,
        &enc,
        HPKE_INFO,
        &wrapped.wrapped_key,
        &wrap_aad,
    )
    .map_err(|e| OpenError::Unwrap(e.to_string()))?;
    if data_key.len() != 32 {
        return Err(OpenError::Unwrap(format!("data key of {} bytes", data_key.len())));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(&data_key).map_err(|_| OpenError::Decrypt)?;
    data_key.fill(0);
    let payload = cipher
        .decrypt(
            XNonce::from_slice(&envelope.nonce),
            Payload {
                msg: &envelope.ciphertext,
                aad: &header_bytes,
            },
        )
        .map_err(|_| OpenError::Decrypt)?;
    let lines = payload.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    Ok((header, lines))
}

/// [`open_lines`], after checking the blob against its on-chain commitment: the CID, the
/// header, the readings' Merkle root and their count (as `gateway::open_batch_verified`).
pub fn open_verified(
    keys: &AccountKeys,
    blob: &[u8],
    commitment: &DataCommitment,
) -> Result<Vec<Vec<u8>>, OpenError> {
    if !commitment.cid.matches(blob) {
        return Err(OpenError::CidMismatch {
            committed: commitment.cid,
            actual: Cid::of(blob),
        });
    }
    let (h, lines) = open_lines(keys, blob)?;
    if h.patient != commitment.patient
        || h.device != commitment.device
        || h.time_range != commitment.time_range
    {
        return Err(OpenError::HeaderMismatch);
    }
    if readings_root(&lines) != commitment.readings_root {
        return Err(OpenError::RootMismatch);
    }
    if lines.len() != commitment.reading_count as usize {
        return Err(OpenError::CountMismatch {
            committed: commitment.reading_count,
            actual: lines.len(),
        });
    }
    Ok(lines)
}

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

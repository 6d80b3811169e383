//! The encrypted blob format (DESIGN §4), version 1: what the gateway uploads to a relay and
//! what the dashboard decrypts in the browser. Pure Rust, no I/O, builds for wasm32.
//!
//! # Format
//! A blob is the borsh encoding of [`Envelope`]:
//!
//! | field | borsh type | meaning |
//! | --- | --- | --- |
//! | `version` | `u8` | [`ENVELOPE_VERSION`] (= 1); read first, so later layouts fail cleanly |
//! | `content_type` | `u8` enum | [`ContentType::FhirNdjson`]: one FHIR R4 Observation JSON per line |
//! | `patient` | `[u8; 32]` | the patient's account (Ed25519 public key) |
//! | `device` | `Option<[u8; 32]>` | the device that took the readings |
//! | `time_range` | `(u64, u64)` | the batch window, first and last ms (the commitment's range) |
//! | `recipients` | `Vec<WrappedKey>` | the data key, wrapped once per reader, sorted by key |
//! | `nonce` | `[u8; 24]` | XChaCha20-Poly1305 nonce of the payload |
//! | `ciphertext` | `Vec<u8>` | XChaCha20-Poly1305(data key, nonce, payload, aad = header) |
//!
//! `WrappedKey` is `{ recipient: [u8; 32] (X25519 public key), enc: [u8; 32] (HPKE
//! encapsulated key), wrapped_key: Vec<u8> (48 bytes: key + tag) }`. The data key is wrapped
//! with HPKE (RFC 9180) base mode, suite DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 /
//! ChaCha20-Poly1305, info [`HPKE_INFO`], aad = header bytes ‖ nonce.
//!
//! "Header bytes" are the borsh encoding of [`EnvelopeHeader`] (version, content type,
//! patient, device, time range): authenticated by both layers, so a blob's metadata cannot be
//! swapped onto another blob's ciphertext. They repeat facts the on-chain commitment already
//! shows, nothing more.
//!
//! # Readings root
//! The payload is NDJSON: Observation JSON objects separated by `\n`. The commitment's
//! `readings_root` is the RFC 6962 root ([`ledger::merkle::tx_root`]) over the lines' exact
//! bytes (without the newline), so a reader checks it without re-serialising anything
//! ([`open_batch_verified`]).
//!
//! # For the dashboard
//! [`decrypt_batch`] (keys + blob → Observations) or, better, [`open_batch_verified`], which
//! also checks the blob against its on-chain commitment (CID, readings root, count).
//! [`open_lines_verified`] does the same checks and returns the lines unparsed, for a caller
//! that reads a few fields itself and should not link the FHIR model's parser.

use crate::fhir;
use borsh::{BorshDeserialize, BorshSerialize};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use fhir_model::r4b::resources::Observation;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use ledger::crypto::{AccountKeys, Address, EncryptionKey, Hash, PublicKey};
use ledger::merkle;
use ledger::state::records::DataCommitment;
use ledger::types::{Cid, TimeRange};
use rand_core::{CryptoRng, RngCore};

/// The envelope layout this code writes and reads.
pub const ENVELOPE_VERSION: u8 = 1;
/// HPKE `info`: binds wrapped keys to this use.
pub const HPKE_INFO: &[u8] = b"medledger/blob/v1/data-key";
/// Largest blob accepted for decoding (the ledger's commitment limit).
pub const MAX_ENVELOPE_BYTES: usize = ledger::tx::MAX_BLOB_BYTES as usize;
/// Most readers one blob is wrapped for.
pub const MAX_RECIPIENTS: usize = 64;

type Kem = X25519HkdfSha256;

/// What the payload holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum ContentType {
    /// FHIR R4 Observations, one JSON object per line.
    FhirNdjson,
}

/// The authenticated, unencrypted part of an envelope.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct EnvelopeHeader {
    pub version: u8,
    pub content_type: ContentType,
    pub patient: Address,
    pub device: Option<PublicKey>,
    pub time_range: TimeRange,
}

/// The data key wrapped for one reader.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct WrappedKey {
    /// The reader's X25519 key (their account's `encryption_key`).
    pub recipient: EncryptionKey,
    /// HPKE encapsulated key.
    pub enc: [u8; 32],
    /// HPKE ciphertext of the 32-byte data key.
    pub wrapped_key: Vec<u8>,
}

/// A blob, version 1 (see the module docs for the byte layout).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Envelope {
    pub version: u8,
    pub content_type: ContentType,
    pub patient: Address,
    pub device: Option<PublicKey>,
    pub time_range: TimeRange,
    pub recipients: Vec<WrappedKey>,
    pub nonce: [u8; 24],
    pub ciphertext: Vec<u8>,
}

impl Envelope {
    pub fn header(&self) -> EnvelopeHeader {
        EnvelopeHeader {
            version: self.version,
            content_type: self.content_type,
            patient: self.patient,
            device: self.device,
            time_range: self.time_range,
        }
    }

    /// Decodes a blob, refusing other versions, oversized input and trailing bytes.
    pub fn from_bytes(blob: &[u8]) -> Result<Self, EnvelopeError> {
        match blob.first() {
            None => return Err(EnvelopeError::Malformed("empty blob".into())),
            Some(&v) if v != ENVELOPE_VERSION => return Err(EnvelopeError::UnsupportedVersion(v)),
            Some(_) => {}
        }
        let envelope: Envelope = ledger::codec::decode_limited(blob, MAX_ENVELOPE_BYTES)
            .map_err(|e| EnvelopeError::Malformed(e.to_string()))?;
        if envelope.recipients.len() > MAX_RECIPIENTS {
            return Err(EnvelopeError::TooManyRecipients(envelope.recipients.len()));
        }
        Ok(envelope)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        ledger::codec::encode(self)
    }
}

/// Why a blob could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("blob envelope version {0} is not supported (this code reads version {ENVELOPE_VERSION})")]
    UnsupportedVersion(u8),
    #[error("malformed blob: {0}")]
    Malformed(String),
    #[error("a blob has at most {MAX_RECIPIENTS} recipients, got {0}")]
    TooManyRecipients(usize),
    #[error("a blob needs at least one recipient")]
    NoRecipients,
    #[error("a batch needs at least one reading")]
    EmptyBatch,
    #[error("the blob has no data key wrapped for {0:?}")]
    NotARecipient(EncryptionKey),
    #[error("{0:?} is not a valid X25519 public key")]
    BadRecipientKey(EncryptionKey),
    /// Wrong key, or the wrapped key or its header was altered.
    #[error("the data key does not unwrap: {0}")]
    Unwrap(String),
    #[error("the payload does not decrypt (altered ciphertext or header)")]
    Decrypt,
    #[error("sealing failed: {0}")]
    Seal(String),
    #[error("line {line} is not a FHIR Observation: {reason}")]
    BadObservation { line: usize, reason: String },
    #[error("the blob hashes to {actual}, the commitment names {committed}")]
    CidMismatch { committed: Cid, actual: Cid },
    #[error("the readings' Merkle root is {actual}, the commitment holds {committed}")]
    RootMismatch { committed: Hash, actual: Hash },
    #[error("the blob holds {actual} readings, the commitment says {committed}")]
    CountMismatch { committed: u32, actual: usize },
    #[error("the blob's header (patient, device or time range) differs from the commitment's")]
    HeaderMismatch,
}

/// The RFC 6962 root over readings' canonical bytes: what a commitment's `readings_root` holds.
pub fn readings_root<T: AsRef<[u8]>>(lines: &[T]) -> Hash {
    merkle::tx_root(lines)
}

/// Each Observation's JSON bytes: the payload's lines and the Merkle tree's leaves.
pub fn observation_lines(observations: &[Observation]) -> Result<Vec<Vec<u8>>, EnvelopeError> {
    observations
        .iter()
        .map(|o| serde_json::to_vec(o).map_err(|e| EnvelopeError::Seal(e.to_string())))
        .collect()
}

/// A sealed batch, ready to upload and commit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBatch {
    /// The blob (borsh [`Envelope`]).
    pub blob: Vec<u8>,
    pub cid: Cid,
    pub readings_root: Hash,
    pub reading_count: u32,
}

fn aad(header: &EnvelopeHeader) -> Vec<u8> {
    ledger::codec::encode(header)
}

fn wrap_aad(header_bytes: &[u8], nonce: &[u8; 24]) -> Vec<u8> {
    [header_bytes, nonce].concat()
}

/// Encrypts `lines` (one Observation's JSON each) under a fresh data key wrapped for every
/// key in `recipients` (deduplicated). `rng` must be a CSPRNG: it draws the data key, the
/// nonce and HPKE's ephemeral keys.
pub fn seal_lines<R: CryptoRng + RngCore>(
    header: EnvelopeHeader,
    lines: &[Vec<u8>],
    recipients: &[EncryptionKey],
    rng: &mut R,
) -> Result<SealedBatch, EnvelopeError> {
    if lines.is_empty() {
        return Err(EnvelopeError::EmptyBatch);
    }
    let mut readers: Vec<EncryptionKey> = recipients.to_vec();
    readers.sort();
    readers.dedup();
    if readers.is_empty() {
        return Err(EnvelopeError::NoRecipients);
    }
    if readers.len() > MAX_RECIPIENTS {
        return Err(EnvelopeError::TooManyRecipients(readers.len()));
    }
    let reading_count =
        u32::try_from(lines.len()).map_err(|_| EnvelopeError::Seal("too many readings".into()))?;

    let mut data_key = [0u8; 32];
    rng.fill_bytes(&mut data_key);
    let mut nonce = [0u8; 24];
    rng.fill_bytes(&mut nonce);
    let header_bytes = aad(&header);

    let payload = lines.join(&b'\n');
    let cipher = XChaCha20Poly1305::new((&data_key).into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &payload,
                aad: &header_bytes,
            },
        )
        .map_err(|_| EnvelopeError::Seal("payload encryption".into()))?;

    let key_aad = wrap_aad(&header_bytes, &nonce);
    let mut wrapped = Vec::with_capacity(readers.len());
    for reader in readers {
        let pk = <Kem as hpke::Kem>::PublicKey::from_bytes(&reader.0)
            .map_err(|_| EnvelopeError::BadRecipientKey(reader))?;
        let (enc, wrapped_key) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, R>(
            &OpModeS::Base,
            &pk,
            HPKE_INFO,
            &data_key,
            &key_aad,
            rng,
        )
        .map_err(|e| EnvelopeError::Seal(e.to_string()))?;
        let mut enc_bytes = [0u8; 32];
        enc_bytes.copy_from_slice(&enc.to_bytes());
        wrapped.push(WrappedKey {
            recipient: reader,
            enc: enc_bytes,
            wrapped_key,
        });
    }
    // The data key is not kept: once sealed, only recipients can open the blob.
    data_key.fill(0);

    let envelope = Envelope {
        version: header.version,
        content_type: header.content_type,
        patient: header.patient,
        device: header.device,
        time_range: header.time_range,
        recipients: wrapped,
        nonce,
        ciphertext,
    };
    let blob = envelope.to_bytes();
    Ok(SealedBatch {
        cid: Cid::of(&blob),
        readings_root: readings_root(lines),
        reading_count,
        blob,
    })
}

/// [`seal_lines`] for Observations.
pub fn seal_batch<R: CryptoRng + RngCore>(
    header: EnvelopeHeader,
    observations: &[Observation],
    recipients: &[EncryptionKey],
    rng: &mut R,
) -> Result<SealedBatch, EnvelopeError> {
    seal_lines(header, &observation_lines(observations)?, recipients, rng)
}

/// A decrypted batch before parsing: the header and each reading's exact bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenedLines {
    pub header: EnvelopeHeader,
    pub lines: Vec<Vec<u8>>,
}

impl OpenedLines {
    pub fn readings_root(&self) -> Hash {
        readings_root(&self.lines)
    }
}

/// A decrypted batch: the header and each reading's exact bytes and Observation.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenedBatch {
    pub header: EnvelopeHeader,
    pub lines: Vec<Vec<u8>>,
    pub observations: Vec<Observation>,
}

impl OpenedBatch {
    pub fn readings_root(&self) -> Hash {
        readings_root(&self.lines)
    }
}

/// Unwraps the data key with `keys`' X25519 secret and decrypts the payload into its lines,
/// without parsing them: for callers that read only a few fields and must not link a full
/// FHIR parser (the dashboard's wasm bundle).
pub fn open_lines(keys: &AccountKeys, blob: &[u8]) -> Result<OpenedLines, EnvelopeError> {
    let envelope = Envelope::from_bytes(blob)?;
    let me = keys.encryption_key();
    let wrapped = envelope
        .recipients
        .iter()
        .find(|w| w.recipient == me)
        .ok_or(EnvelopeError::NotARecipient(me))?;
    let header = envelope.header();
    let header_bytes = aad(&header);

    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(&keys.encryption_secret().to_bytes())
        .map_err(|e| EnvelopeError::Unwrap(e.to_string()))?;
    let enc = <Kem as hpke::Kem>::EncappedKey::from_bytes(&wrapped.enc)
        .map_err(|e| EnvelopeError::Unwrap(e.to_string()))?;
    let mut data_key = hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &secret,
        &enc,
        HPKE_INFO,
        &wrapped.wrapped_key,
        &wrap_aad(&header_bytes, &envelope.nonce),
    )
    .map_err(|e| EnvelopeError::Unwrap(e.to_string()))?;
    if data_key.len() != 32 {
        return Err(EnvelopeError::Unwrap(format!(
            "data key of {} bytes",
            data_key.len()
        )));
    }
    let cipher = XChaCha20Poly1305::new_from_slice(&data_key).map_err(|_| EnvelopeError::Decrypt)?;
    data_key.fill(0);
    let payload = cipher
        .decrypt(
            XNonce::from_slice(&envelope.nonce),
            Payload {
                msg: &envelope.ciphertext,
                aad: &header_bytes,
            },
        )
        .map_err(|_| EnvelopeError::Decrypt)?;

    let lines = payload.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
    Ok(OpenedLines { header, lines })
}

/// Parses each line as a FHIR Observation.
fn parse(opened: OpenedLines) -> Result<OpenedBatch, EnvelopeError> {
    let OpenedLines { header, lines } = opened;
    let observations = lines
        .iter()
        .enumerate()
        .map(|(line, bytes)| {
            serde_json::from_slice::<Observation>(bytes).map_err(|e| EnvelopeError::BadObservation {
                line,
                reason: e.to_string(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OpenedBatch {
        header,
        lines,
        observations,
    })
}

/// [`open_lines`], then every line parsed as a FHIR Observation.
pub fn open_batch(keys: &AccountKeys, blob: &[u8]) -> Result<OpenedBatch, EnvelopeError> {
    parse(open_lines(keys, blob)?)
}

/// The Observations in `blob`, decrypted with `keys`. Does not check the blob against the
/// chain: prefer [`open_batch_verified`] when the commitment is at hand.
pub fn decrypt_batch(keys: &AccountKeys, blob: &[u8]) -> Result<Vec<Observation>, EnvelopeError> {
    open_batch(keys, blob).map(|b| b.observations)
}

/// Opens `blob` and checks it against its on-chain `commitment` (DESIGN §4 "any holder
/// verifies a blob against its on-chain commitment before use"): the CID, the header (patient,
/// device, time range), the readings' Merkle root and their count. Lines are not parsed.
pub fn open_lines_verified(
    keys: &AccountKeys,
    blob: &[u8],
    commitment: &DataCommitment,
) -> Result<OpenedLines, EnvelopeError> {
    if !commitment.cid.matches(blob) {
        return Err(EnvelopeError::CidMismatch {
            committed: commitment.cid,
            actual: Cid::of(blob),
        });
    }
    let batch = open_lines(keys, blob)?;
    let h = &batch.header;
    if h.patient != commitment.patient
        || h.device != commitment.device
        || h.time_range != commitment.time_range
    {
        return Err(EnvelopeError::HeaderMismatch);
    }
    let actual = batch.readings_root();
    if actual != commitment.readings_root {
        return Err(EnvelopeError::RootMismatch {
            committed: commitment.readings_root,
            actual,
        });
    }
    if batch.lines.len() != commitment.reading_count as usize {
        return Err(EnvelopeError::CountMismatch {
            committed: commitment.reading_count,
            actual: batch.lines.len(),
        });
    }
    Ok(batch)
}

/// [`open_lines_verified`], then every line parsed as a FHIR Observation.
pub fn open_batch_verified(
    keys: &AccountKeys,
    blob: &[u8],
    commitment: &DataCommitment,
) -> Result<OpenedBatch, EnvelopeError> {
    parse(open_lines_verified(keys, blob, commitment)?)
}

/// Every LOINC code the Observations carry (panel and component codes), sorted: what the
/// commitment lists.
pub fn loinc_codes_of(observations: &[Observation]) -> Vec<String> {
    let mut codes: Vec<String> = observations
        .iter()
        .flat_map(|o| {
            let own = fhir::code(o).map(str::to_owned);
            own.into_iter().chain(fhir::values(o).into_iter().map(|(c, _)| c))
        })
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{DeviceKind, PatientSim};
    use ledger::types::DataCategory;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    const T0: u64 = 1_767_225_600_000;

    fn batch(patient: &AccountKeys, device: PublicKey) -> (EnvelopeHeader, Vec<Observation>) {
        let sim = PatientSim::new(9);
        let obs: Vec<Observation> = sim
            .readings(DeviceKind::Cgm, T0, T0 + 3_600_000)
            .iter()
            .map(|r| fhir::observation(r, &patient.address(), &device).unwrap())
            .collect();
        let header = EnvelopeHeader {
            version: ENVELOPE_VERSION,
            content_type: ContentType::FhirNdjson,
            patient: patient.address(),
            device: Some(device),
            time_range: TimeRange {
                start: fhir::effective_ms(&obs[0]).unwrap(),
                end: fhir::effective_ms(&obs[obs.len() - 1]).unwrap(),
            },
        };
        (header, obs)
    }

    fn commitment_of(header: &EnvelopeHeader, sealed: &SealedBatch) -> DataCommitment {
        DataCommitment {
            patient: header.patient,
            category: DataCategory::DeviceReadings,
            device: header.device,
            author: None,
            cid: sealed.cid,
            readings_root: sealed.readings_root,
            loinc_codes: vec![],
            time_range: header.time_range,
            size: sealed.blob.len() as u64,
            reading_count: sealed.reading_count,
            committed_at: 1,
            erased_at: None,
        }
    }

    #[test]
    fn every_recipient_decrypts_and_nobody_else_does() {
        let patient = AccountKeys::from_master_seed([1; 32]);
        let clinician = AccountKeys::from_master_seed([2; 32]);
        let stranger = AccountKeys::from_master_seed([3; 32]);
        let (header, obs) = batch(&patient, PublicKey([9; 32]));
        let mut rng = StdRng::seed_from_u64(1);
        let recipients = [
            patient.encryption_key(),
            clinician.encryption_key(),
            patient.encryption_key(),
        ];
        let sealed = seal_batch(header.clone(), &obs, &recipients, &mut rng).unwrap();
        assert_eq!(sealed.reading_count, 12);
        assert_eq!(Envelope::from_bytes(&sealed.blob).unwrap().recipients.len(), 2);

        for reader in [&patient, &clinician] {
            assert_eq!(decrypt_batch(reader, &sealed.blob).unwrap(), obs);
            let opened = open_batch_verified(reader, &sealed.blob, &commitment_of(&header, &sealed)).unwrap();
            assert_eq!(opened.header, header);
        }
        assert_eq!(
            decrypt_batch(&stranger, &sealed.blob),
            Err(EnvelopeError::NotARecipient(stranger.encryption_key()))
        );
        assert_eq!(loinc_codes_of(&obs), vec!["99504-3".to_owned()]);
    }

    #[test]
    fn the_same_batch_seals_to_different_blobs() {
        let patient = AccountKeys::from_master_seed([1; 32]);
        let (header, obs) = batch(&patient, PublicKey([9; 32]));
        let mut rng = StdRng::seed_from_u64(2);
        let a = seal_batch(header.clone(), &obs, &[patient.encryption_key()], &mut rng).unwrap();
        let b = seal_batch(header, &obs, &[patient.encryption_key()], &mut rng).unwrap();
        assert_ne!(a.cid, b.cid, "a fresh data key and nonce per blob");
        assert_eq!(a.readings_root, b.readings_root);
    }

    #[test]
    fn tampering_is_detected_at_the_right_layer() {
        let patient = AccountKeys::from_master_seed([1; 32]);
        let (header, obs) = batch(&patient, PublicKey([9; 32]));
        let mut rng = StdRng::seed_from_u64(3);
        let sealed = seal_batch(header.clone(), &obs, &[patient.encryption_key()], &mut rng).unwrap();
        let envelope = Envelope::from_bytes(&sealed.blob).unwrap();

        let mut bad = envelope.clone();
        let last = bad.ciphertext.len() - 1;
        bad.ciphertext[last] ^= 1;
        assert_eq!(
            decrypt_batch(&patient, &bad.to_bytes()),
            Err(EnvelopeError::Decrypt)
        );

        // A header moved onto another blob: both layers authenticate it.
        let mut moved = envelope.clone();
        moved.time_range.end += 1;
        assert!(matches!(
            decrypt_batch(&patient, &moved.to_bytes()),
            Err(EnvelopeError::Unwrap(_))
        ));

        let mut future = sealed.blob.clone();
        future[0] = 2;
        assert_eq!(
            decrypt_batch(&patient, &future),
            Err(EnvelopeError::UnsupportedVersion(2))
        );
        let mut trailing = sealed.blob.clone();
        trailing.push(0);
        assert!(matches!(
            decrypt_batch(&patient, &trailing),
            Err(EnvelopeError::Malformed(_))
        ));

        let mut commitment = commitment_of(&header, &sealed);
        commitment.readings_root = Hash([0; 32]);
        assert!(matches!(
            open_batch_verified(&patient, &sealed.blob, &commitment),
            Err(EnvelopeError::RootMismatch { .. })
        ));
        let commitment = commitment_of(&header, &sealed);
        assert!(matches!(
            open_batch_verified(&patient, &bad.to_bytes(), &commitment),
            Err(EnvelopeError::CidMismatch { .. })
        ));
    }

    #[test]
    fn the_readings_root_is_rfc6962_over_the_lines() {
        let patient = AccountKeys::from_master_seed([1; 32]);
        let (header, obs) = batch(&patient, PublicKey([9; 32]));
        let lines = observation_lines(&obs).unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let sealed = seal_lines(header, &lines, &[patient.encryption_key()], &mut rng).unwrap();
        assert_eq!(sealed.readings_root, merkle::tx_root(&lines));
        let opened = open_batch(&patient, &sealed.blob).unwrap();
        assert_eq!(opened.lines, lines);
        let commitment = commitment_of(&opened.header, &sealed);
        assert_eq!(
            open_lines_verified(&patient, &sealed.blob, &commitment)
                .unwrap()
                .lines,
            lines
        );
        // Each reading has an inclusion proof under the committed root.
        let proof = merkle::prove_inclusion(&lines, 5).unwrap();
        proof.verify(&sealed.readings_root, &lines[5]).unwrap();
    }
}

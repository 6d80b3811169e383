//! Domain values shared by transactions and state records (DESIGN §3).
//!
//! Every type here is validated where it enters ([`LoincCode::new`], [`Cid::from_bytes`],
//! [`TimeRange::new`]) and again by the state machine, because a decoded tx bypasses
//! constructors: `validate()` methods are what the state machine calls.

use crate::crypto::{sha256, Hash};
use borsh::{BorshDeserialize, BorshSerialize};
use std::fmt;

/// Milliseconds since the Unix epoch. Time always comes from a block header, never a clock.
pub type TimeMs = u64;

/// Token amounts (rewards, escrow, balances), in the smallest unit.
pub type Amount = u64;

pub const HOUR_MS: u64 = 3_600_000;
pub const DAY_MS: u64 = 24 * HOUR_MS;

/// What an account is for. Roles gate what an account may sign.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum Role {
    Patient,
    Clinician,
    Caregiver,
    Researcher,
    /// A hospital or lab; must be admitted by governance before it can attest clinicians.
    Organisation,
    Auditor,
}

/// A LOINC code such as `8867-4` (heart rate): digits, a dash, one check digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct LoincCode(String);

/// Invalid domain value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not a LOINC code (digits, '-', check digit)")]
    BadLoinc(String),
    #[error("CID must be CIDv1 raw sha2-256 (36 bytes, prefix 01 55 12 20)")]
    BadCid,
    #[error("time range start {start} is after end {end}")]
    BadTimeRange { start: TimeMs, end: TimeMs },
    #[error("{what} has {got} entries, at most {max} allowed")]
    TooMany {
        what: &'static str,
        got: usize,
        max: usize,
    },
    #[error("{what} lists {item} twice")]
    Duplicate { what: &'static str, item: String },
}

impl LoincCode {
    pub const MAX_LEN: usize = 10;

    pub fn new(code: &str) -> Result<Self, ValueError> {
        let code = LoincCode(code.to_owned());
        code.validate()?;
        Ok(code)
    }

    pub fn validate(&self) -> Result<(), ValueError> {
        let s = self.0.as_str();
        let ok = s.len() <= Self::MAX_LEN
            && matches!(s.split_once('-'), Some((num, check))
                if (1..=7).contains(&num.len())
                    && num.bytes().all(|b| b.is_ascii_digit())
                    && check.len() == 1
                    && check.bytes().all(|b| b.is_ascii_digit()));
        if ok {
            Ok(())
        } else {
            Err(ValueError::BadLoinc(s.chars().take(16).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for LoincCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LOINC {}", self.0)
    }
}

impl fmt::Display for LoincCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Well-known codes for the vital signs Medledger's devices produce.
pub mod loinc {
    pub const GLUCOSE_CGM: &str = "99504-3";
    pub const HEART_RATE: &str = "8867-4";
    pub const SPO2: &str = "2708-6";
    pub const BLOOD_PRESSURE_PANEL: &str = "85354-9";
    pub const SYSTOLIC_BP: &str = "8480-6";
    pub const DIASTOLIC_BP: &str = "8462-4";
    pub const BODY_TEMPERATURE: &str = "8310-5";
}

/// Checks a list for size and duplicates (lists on chain are sets in sorted order or not,
/// but never with repeats: a repeat would let two encodings mean the same thing).
pub fn validate_set<T: Ord + fmt::Debug>(
    what: &'static str,
    items: &[T],
    max: usize,
) -> Result<(), ValueError> {
    if items.len() > max {
        return Err(ValueError::TooMany {
            what,
            got: items.len(),
            max,
        });
    }
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort();
    if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
        return Err(ValueError::Duplicate {
            what,
            item: format!("{:?}", w[0]),
        });
    }
    Ok(())
}

/// Content identifier of an encrypted blob: CIDv1, multicodec raw (0x55), sha2-256 (DESIGN §4).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Cid {
    pub digest: Hash,
}

impl Cid {
    const PREFIX: [u8; 4] = [0x01, 0x55, 0x12, 0x20];

    /// The CID of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Cid {
            digest: sha256(bytes),
        }
    }

    /// Parses the binary CID form; only CIDv1 raw sha2-256 is accepted.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ValueError> {
        if bytes.len() != 36 || bytes[..4] != Self::PREFIX {
            return Err(ValueError::BadCid);
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(&bytes[4..]);
        Ok(Cid { digest: Hash(digest) })
    }

    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..4].copy_from_slice(&Self::PREFIX);
        out[4..].copy_from_slice(&self.digest.0);
        out
    }

    /// `true` when `bytes` are the content this CID names.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        sha256(bytes) == self.digest
    }

    /// The usual text form: multibase base32 lower-case, `b` prefix (e.g. `bafkrei...`).
    pub fn to_text(&self) -> String {
        const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
        let bytes = self.to_bytes();
        let mut out = String::with_capacity(1 + (bytes.len() * 8).div_ceil(5));
        out.push('b');
        let (mut buffer, mut bits) = (0u32, 0u32);
        for byte in bytes {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
            }
        }
        if bits > 0 {
            out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
        }
        out
    }

    /// Parses [`Cid::to_text`]'s form.
    pub fn from_text(text: &str) -> Result<Self, ValueError> {
        let body = text.strip_prefix('b').ok_or(ValueError::BadCid)?;
        let (mut buffer, mut bits, mut bytes) = (0u32, 0u32, Vec::with_capacity(36));
        for c in body.bytes() {
            let v = match c {
                b'a'..=b'z' => c - b'a',
                b'2'..=b'7' => c - b'2' + 26,
                _ => return Err(ValueError::BadCid),
            };
            buffer = (buffer << 5) | u32::from(v);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes.push((buffer >> bits) as u8);
                buffer &= (1 << bits) - 1;
            }
        }
        let cid = Self::from_bytes(&bytes)?;
        if cid.to_text() != text {
            return Err(ValueError::BadCid);
        }
        Ok(cid)
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_text();
        write!(f, "cid:…{}", &text[text.len() - 10..])
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// A closed time interval `[start, end]` in ms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct TimeRange {
    pub start: TimeMs,
    pub end: TimeMs,
}

impl TimeRange {
    pub fn new(start: TimeMs, end: TimeMs) -> Result<Self, ValueError> {
        let range = TimeRange { start, end };
        range.validate()?;
        Ok(range)
    }

    pub fn validate(&self) -> Result<(), ValueError> {
        if self.start > self.end {
            return Err(ValueError::BadTimeRange {
                start: self.start,
                end: self.end,
            });
        }
        Ok(())
    }

    pub fn contains(&self, t: TimeMs) -> bool {
        self.start <= t && t <= self.end
    }

    /// `true` when `other` lies entirely inside `self`.
    pub fn covers(&self, other: &TimeRange) -> bool {
        self.start <= other.start && other.end <= self.end
    }

    pub fn overlaps(&self, other: &TimeRange) -> bool {
        self.start <= other.end && other.start <= self.end
    }
}

/// Why someone reads a patient's data. Consents are granted for one purpose.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum Purpose {
    Treatment,
    Caregiving,
    Research,
    Emergency,
}

/// What a grantee may do with data covered by a consent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum AccessLevel {
    /// Read data.
    Read,
    /// Read, and also write clinician notes and alert rules for the patient.
    ReadAndAnnotate,
}

/// What kind of data a commitment holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum DataCategory {
    /// Readings from the patient's devices (or imported from another system).
    DeviceReadings,
    /// Notes and diagnoses written by a clinician.
    ClinicianNotes,
}

/// A stable 32-byte identifier of a record, derived from who created it and their nonce.
pub type RecordId = Hash;

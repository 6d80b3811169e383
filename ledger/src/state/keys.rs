//! State keys: a readable namespace, then fixed-width binary ids (DESIGN §2 "Keys are
//! namespaced"). Lists are stored as a count plus one key per item, so every item has its
//! own inclusion proof and appending rewrites two small values, never a growing one.

use crate::crypto::PublicKey;
use crate::types::RecordId;

fn key(namespace: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(namespace.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>());
    out.extend_from_slice(namespace.as_bytes());
    out.push(b'/');
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

pub fn account(address: &PublicKey) -> Vec<u8> {
    key("account", &[&address.0])
}
pub fn nonce(signer: &PublicKey) -> Vec<u8> {
    key("nonce", &[&signer.0])
}
pub fn device(device: &PublicKey) -> Vec<u8> {
    key("device", &[&device.0])
}
pub fn commitment(id: &RecordId) -> Vec<u8> {
    key("commitment", &[&id.0])
}
pub fn consent(id: &RecordId) -> Vec<u8> {
    key("consent", &[&id.0])
}
pub fn break_glass(id: &RecordId) -> Vec<u8> {
    key("breakglass", &[&id.0])
}
pub fn access_record(id: &RecordId) -> Vec<u8> {
    key("access", &[&id.0])
}
pub fn alert_rule(id: &RecordId) -> Vec<u8> {
    key("alertrule", &[&id.0])
}
pub fn alert(id: &RecordId) -> Vec<u8> {
    key("alert", &[&id.0])
}
pub fn study(id: &RecordId) -> Vec<u8> {
    key("study", &[&id.0])
}
pub fn participation(study: &RecordId, patient: &PublicKey) -> Vec<u8> {
    key("participant", &[&study.0, &patient.0])
}
pub fn governance() -> Vec<u8> {
    key("chain", &[b"governance"])
}
pub fn chain_id() -> Vec<u8> {
    key("chain", &[b"id"])
}
/// Validator sets: signing the current block, the next one, and the one after (pending).
pub fn validators(which: ValidatorSlot) -> Vec<u8> {
    key("validators", &[which.tag()])
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidatorSlot {
    Current,
    Next,
    Pending,
}

impl ValidatorSlot {
    fn tag(self) -> &'static [u8] {
        match self {
            ValidatorSlot::Current => b"current",
            ValidatorSlot::Next => b"next",
            ValidatorSlot::Pending => b"pending",
        }
    }
}

/// Per-owner lists of record ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// A patient's commitments (device data and notes).
    PatientCommitments,
    /// Consents a patient granted.
    PatientConsents,
    /// Consents naming an account, organisation or study as grantee.
    GranteeConsents,
    /// Break-glass openings on a patient.
    PatientBreakGlass,
    /// Reads of a patient's data.
    PatientAccess,
    PatientAlertRules,
    PatientAlerts,
    /// Devices a patient registered.
    PatientDevices,
    /// All studies ever opened (owner: the zero key).
    Studies,
    /// Patients who joined a study (owner: the study id).
    StudyParticipants,
}

impl ListKind {
    fn tag(self) -> &'static str {
        match self {
            ListKind::PatientCommitments => "list/commitments",
            ListKind::PatientConsents => "list/consents",
            ListKind::GranteeConsents => "list/granted",
            ListKind::PatientBreakGlass => "list/breakglass",
            ListKind::PatientAccess => "list/access",
            ListKind::PatientAlertRules => "list/alertrules",
            ListKind::PatientAlerts => "list/alerts",
            ListKind::PatientDevices => "list/devices",
            ListKind::Studies => "list/studies",
            ListKind::StudyParticipants => "list/participants",
        }
    }
}

pub fn list_len(kind: ListKind, owner: &[u8; 32]) -> Vec<u8> {
    key(kind.tag(), &[owner, b"/n"])
}

pub fn list_item(kind: ListKind, owner: &[u8; 32], index: u64) -> Vec<u8> {
    key(kind.tag(), &[owner, b"/", &index.to_be_bytes()])
}

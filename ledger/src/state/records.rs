//! The records the state holds, one per fact (DESIGN §3). Stored borsh-encoded under
//! the keys of [`super::keys`].

use crate::crypto::{Address, EncryptionKey, PublicKey};
use crate::header::Height;
use crate::tx::{AlertCondition, ConsentTerms, EmergencyReason, SignedAccessRequest, StudyTerms};
use crate::types::{Amount, Cid, DataCategory, LoincCode, Purpose, RecordId, Role, TimeMs, TimeRange};
use borsh::{BorshDeserialize, BorshSerialize};

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Account {
    pub role: Role,
    pub encryption_key: EncryptionKey,
    pub balance: Amount,
    /// Organisations only: admitted by governance.
    pub admitted: bool,
    /// Clinicians only: the admitted organisation that attests them.
    pub attested_by: Option<Address>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Device {
    pub owner: Address,
    pub loinc_codes: Vec<LoincCode>,
    pub registered_at: TimeMs,
    pub revoked_at: Option<TimeMs>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DataCommitment {
    pub patient: Address,
    pub category: DataCategory,
    pub device: Option<PublicKey>,
    /// The clinician who wrote it, for notes.
    pub author: Option<Address>,
    pub cid: Cid,
    pub readings_root: crate::crypto::Hash,
    pub loinc_codes: Vec<LoincCode>,
    pub time_range: TimeRange,
    pub size: u64,
    pub reading_count: u32,
    pub committed_at: Height,
    pub erased_at: Option<TimeMs>,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Consent {
    pub patient: Address,
    pub terms: ConsentTerms,
    pub granted_at: TimeMs,
    pub revoked_at: Option<TimeMs>,
}

impl Consent {
    /// In force at `at`: started, not expired, not revoked.
    pub fn is_active_at(&self, at: TimeMs) -> bool {
        at >= self.terms.valid_from
            && self.terms.valid_until.is_none_or(|until| at < until)
            && self.revoked_at.is_none_or(|revoked| at < revoked)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct BreakGlass {
    pub clinician: Address,
    pub patient: Address,
    pub reason: EmergencyReason,
    pub opened_at: TimeMs,
    pub expires_at: TimeMs,
}

impl BreakGlass {
    pub fn is_active_at(&self, at: TimeMs) -> bool {
        self.opened_at <= at && at < self.expires_at
    }
}

/// Under what right a read was allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AccessBasis {
    /// The patient reading their own data.
    Owner,
    Consent(RecordId),
    BreakGlass(RecordId),
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AccessRecord {
    pub patient: Address,
    pub request: SignedAccessRequest,
    pub basis: AccessBasis,
    /// The storage node that served the read and submitted this record.
    pub served_by: Address,
    pub recorded_at: Height,
}

impl AccessRecord {
    pub fn reader(&self) -> Address {
        self.request.request.reader
    }

    pub fn purpose(&self) -> Purpose {
        self.request.request.purpose
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AlertRule {
    pub patient: Address,
    pub loinc: LoincCode,
    pub condition: AlertCondition,
    pub set_by: Address,
    pub removed: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Alert {
    pub patient: Address,
    pub rule: RecordId,
    pub commitment: RecordId,
    pub raised_by: PublicKey,
    pub raised_at: Height,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum StudyStatus {
    Open,
    Closed,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Study {
    pub researcher: Address,
    pub terms: StudyTerms,
    pub escrow_remaining: Amount,
    pub participants: u32,
    pub paid: u32,
    pub status: StudyStatus,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Participation {
    pub joined_at: TimeMs,
    pub delivery: Option<Cid>,
    pub paid: Amount,
}

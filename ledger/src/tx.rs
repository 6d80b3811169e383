//! Transactions (DESIGN §3): every kind of fact a patient, clinician, organisation, researcher,
//! storage node or the validator set's governance can put on chain.
//!
//! A tx is signed by one key over [`TxBody::sign_bytes`] and carries the chain id and the
//! signer's next nonce, so it can be neither replayed nor moved to another chain. Nothing
//! personal travels in plaintext: readings and notes are off-chain ciphertext named by CID.

use crate::codec::{decode_limited, encode, CodecError};
use crate::crypto::{
    sha256, sha256_concat, verify_signature, AccountKeys, Address, EncryptionKey, Hash, PublicKey, Signature,
    SignatureError, SigningKey,
};
use crate::types::{
    AccessLevel, Amount, Cid, DataCategory, LoincCode, Purpose, RecordId, Role, TimeMs, TimeRange, DAY_MS,
};
use crate::validators::Validator;
use borsh::{BorshDeserialize, BorshSerialize};

/// Largest encoded tx accepted by the mempool and the state machine.
pub const MAX_TX_BYTES: usize = 16 * 1024;
/// Domain tag of tx sign bytes.
pub const TX_DOMAIN: &[u8] = b"medledger/tx/v1";
/// Domain tag of a reader's signed blob access request.
pub const ACCESS_REQUEST_DOMAIN: &[u8] = b"medledger/access-request/v1";

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Tx {
    pub body: TxBody,
    pub signature: Signature,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxBody {
    pub chain_id: String,
    pub signer: PublicKey,
    /// Must equal the signer's count of accepted txs.
    pub nonce: u64,
    pub action: Action,
}

impl TxBody {
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut out = TX_DOMAIN.to_vec();
        borsh::to_writer(&mut out, self).expect("writing into a Vec never fails");
        out
    }

    pub fn sign(self, key: &SigningKey) -> Tx {
        let signature = key.sign(&self.sign_bytes());
        Tx {
            body: self,
            signature,
        }
    }
}

impl Tx {
    /// Builds and signs a tx with an account's key.
    pub fn new(keys: &AccountKeys, chain_id: &str, nonce: u64, action: Action) -> Tx {
        TxBody {
            chain_id: chain_id.to_owned(),
            signer: keys.address(),
            nonce,
            action,
        }
        .sign(&keys.signing)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        encode(self)
    }

    /// Decodes a tx from the network, refusing anything above [`MAX_TX_BYTES`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Tx, CodecError> {
        decode_limited(bytes, MAX_TX_BYTES)
    }

    /// Identifies the tx (hash of its canonical bytes, signature included).
    pub fn hash(&self) -> Hash {
        sha256(&self.to_bytes())
    }

    /// Verifies every signature the tx carries ([`Tx::signatures`]).
    pub fn verify_signature(&self) -> Result<(), SignatureError> {
        for (key, message, signature) in self.signatures() {
            verify_signature(key, &message, signature)?;
        }
        Ok(())
    }

    /// Every signature the tx carries, as (key, signed bytes, signature): the signer's over the
    /// body and, for [`Action::RecordAccess`], the reader's over its request. Checking a tx's
    /// signatures means all of these, so that one batch holds them all; execution trusts that
    /// it was done.
    pub fn signatures(&self) -> Vec<(&PublicKey, Vec<u8>, &Signature)> {
        let mut out = vec![(&self.body.signer, self.body.sign_bytes(), &self.signature)];
        if let Action::RecordAccess { request } = &self.body.action {
            out.push((
                &request.request.reader,
                request.request.sign_bytes(),
                &request.signature,
            ));
        }
        out
    }
}

/// What a tx does. One variant per fact in DESIGN §3.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum Action {
    /// The signer becomes an account with this role and encryption key.
    RegisterAccount {
        role: Role,
        encryption_key: EncryptionKey,
    },
    /// Governance admits an organisation account (hospital, lab).
    AdmitOrganisation {
        organisation: Address,
    },
    /// Governance adds, re-weights (power > 0) or removes (power 0) a validator; the change
    /// takes effect two heights later, announced by `next_validators_hash`.
    UpdateValidator {
        validator: Validator,
    },
    /// An admitted organisation vouches for a clinician account.
    AttestClinician {
        clinician: Address,
    },
    /// A patient registers one of their devices by the device's own key.
    RegisterDevice {
        device: PublicKey,
        loinc_codes: Vec<LoincCode>,
    },
    /// The owner revokes a device; it can no longer commit data.
    RevokeDevice {
        device: PublicKey,
    },
    /// A batch of readings stored off-chain as an encrypted blob.
    CommitData(DataCommitmentBody),
    /// A patient grants access to their data.
    GrantConsent(ConsentTerms),
    /// A patient ends a consent at once.
    RevokeConsent {
        consent: RecordId,
    },
    /// An attested clinician opens time-limited emergency access without consent.
    OpenBreakGlass {
        patient: Address,
        reason: EmergencyReason,
        duration_ms: u64,
    },
    /// A storage node records a read it served, with the reader's signed request.
    RecordAccess {
        request: SignedAccessRequest,
    },
    /// A clinician with annotate consent (or open break-glass) commits a note blob.
    AddClinicianNote {
        patient: Address,
        cid: Cid,
        size: u64,
        time_range: TimeRange,
    },
    /// The patient or an annotating clinician sets an alert threshold for a LOINC code.
    SetAlertRule {
        patient: Address,
        loinc: LoincCode,
        condition: AlertCondition,
    },
    RemoveAlertRule {
        rule: RecordId,
    },
    /// The patient's gateway (or device) reports that a rule fired for a committed batch.
    RaiseAlert {
        patient: Address,
        rule: RecordId,
        commitment: RecordId,
    },
    /// Moves tokens between accounts.
    Transfer {
        to: Address,
        amount: Amount,
    },
    /// A researcher opens a study and escrows its rewards.
    OpenStudy(StudyTerms),
    /// A patient joins a study, citing commitments that meet its criteria.
    JoinStudy {
        study: RecordId,
        evidence: Vec<RecordId>,
    },
    /// A participant delivers their matching data (re-wrapped for the study key); pays the reward.
    DeliverStudyData {
        study: RecordId,
        delivery: Cid,
        commitments: Vec<RecordId>,
    },
    /// Closes a study (its researcher any time, anyone after its end); leftover escrow returns.
    CloseStudy {
        study: RecordId,
    },
    /// The patient erases a commitment's blob (storage drops ciphertext and keys).
    EraseData {
        commitment: RecordId,
    },
}

/// Most LOINC codes one commitment, device, rule set or scope may list.
pub const MAX_CODES: usize = 16;
/// Most devices a consent scope may list.
pub const MAX_SCOPE_DEVICES: usize = 16;
/// Most commitments a study join or delivery may cite.
pub const MAX_EVIDENCE: usize = 64;
/// Longest break-glass window.
pub const MAX_BREAK_GLASS_MS: u64 = DAY_MS;
/// Largest blob a commitment may describe.
pub const MAX_BLOB_BYTES: u64 = 64 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DataCommitmentBody {
    pub patient: Address,
    /// The device that produced the readings; `None` for imports signed by the patient.
    pub device: Option<PublicKey>,
    pub cid: Cid,
    /// Merkle root (RFC 6962) over the canonical readings inside the blob.
    pub readings_root: Hash,
    pub loinc_codes: Vec<LoincCode>,
    /// Time span the readings cover. Coarse on purpose: finer times stay inside the blob.
    pub time_range: TimeRange,
    pub size: u64,
    pub reading_count: u32,
}

/// Who a consent is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum Grantee {
    Account(Address),
    /// Every clinician the organisation attests.
    Organisation(Address),
    /// The study's researcher, for the study's purpose.
    Study(RecordId),
}

/// What data a consent covers. An empty list means "no restriction on this axis".
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsentScope {
    pub categories: Vec<DataCategory>,
    pub loinc_codes: Vec<LoincCode>,
    pub devices: Vec<PublicKey>,
    /// Only data whose time range lies inside this one.
    pub data_range: Option<TimeRange>,
}

/// The care-model roles consents are templated on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum CareRole {
    /// Someone acting for the person under care (guardian, proxy): everything, caregiving.
    PersonUnderCare,
    /// The patient's main clinician: everything, treatment, may annotate.
    PrimaryProvider,
    /// A specialist: named codes, treatment, read only, time-limited.
    SecondaryProvider,
    /// A short-term caregiver: device readings, caregiving, read only, at most 30 days.
    TemporaryCaregiver,
}

impl CareRole {
    /// Longest validity a template allows (`None`: no limit).
    pub fn max_duration(self) -> Option<u64> {
        match self {
            CareRole::PersonUnderCare | CareRole::PrimaryProvider => None,
            CareRole::SecondaryProvider => Some(365 * DAY_MS),
            CareRole::TemporaryCaregiver => Some(30 * DAY_MS),
        }
    }

    /// The consent terms this role's template grants `grantee` from `now`.
    pub fn terms(self, grantee: Grantee, now: TimeMs, loinc_codes: Vec<LoincCode>) -> ConsentTerms {
        let (purpose, access, categories, duration) = match self {
            CareRole::PersonUnderCare => (Purpose::Caregiving, AccessLevel::ReadAndAnnotate, vec![], None),
            CareRole::PrimaryProvider => (Purpose::Treatment, AccessLevel::ReadAndAnnotate, vec![], None),
            CareRole::SecondaryProvider => (Purpose::Treatment, AccessLevel::Read, vec![], Some(90 * DAY_MS)),
            CareRole::TemporaryCaregiver => (
                Purpose::Caregiving,
                AccessLevel::Read,
                vec![DataCategory::DeviceReadings],
                Some(7 * DAY_MS),
            ),
        };
        ConsentTerms {
            grantee,
            scope: ConsentScope {
                categories,
                loinc_codes,
                devices: vec![],
                data_range: None,
            },
            purpose,
            access,
            valid_from: now,
            valid_until: duration.map(|d| now.saturating_add(d)),
            template: Some(self),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsentTerms {
    pub grantee: Grantee,
    pub scope: ConsentScope,
    pub purpose: Purpose,
    pub access: AccessLevel,
    pub valid_from: TimeMs,
    /// Exclusive end; `None` until revoked.
    pub valid_until: Option<TimeMs>,
    /// The care-role template these terms follow, if any; its limits are enforced.
    pub template: Option<CareRole>,
}

/// Why break-glass was opened: a closed list, because no free text goes on chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub enum EmergencyReason {
    Unconscious,
    LifeThreatening,
    UnableToConsent,
    Other,
}

/// A reader's request for one blob, signed by the reader and kept in the access record.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AccessRequest {
    pub chain_id: String,
    pub reader: Address,
    pub commitment: RecordId,
    pub cid: Cid,
    pub purpose: Purpose,
    /// When the read happened (the storage node checks it against its clock).
    pub time: TimeMs,
    /// Random per request, so one read cannot be recorded twice.
    pub nonce: u64,
}

impl AccessRequest {
    pub fn sign_bytes(&self) -> Vec<u8> {
        let mut out = ACCESS_REQUEST_DOMAIN.to_vec();
        borsh::to_writer(&mut out, self).expect("writing into a Vec never fails");
        out
    }

    pub fn sign(self, key: &SigningKey) -> SignedAccessRequest {
        let signature = key.sign(&self.sign_bytes());
        SignedAccessRequest {
            request: self,
            signature,
        }
    }

    pub fn id(&self) -> RecordId {
        sha256(&encode(self))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedAccessRequest {
    pub request: AccessRequest,
    pub signature: Signature,
}

impl SignedAccessRequest {
    pub fn verify(&self) -> Result<(), SignatureError> {
        verify_signature(&self.request.reader, &self.request.sign_bytes(), &self.signature)
    }
}

/// When an alert rule fires. Thresholds are in thousandths of the code's UCUM unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AlertCondition {
    Below { milli: i64 },
    Above { milli: i64 },
}

impl AlertCondition {
    pub fn fires(&self, value_milli: i64) -> bool {
        match *self {
            AlertCondition::Below { milli } => value_milli < milli,
            AlertCondition::Above { milli } => value_milli > milli,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StudyCriteria {
    /// A joining patient's evidence must cover every one of these codes.
    pub loinc_codes: Vec<LoincCode>,
    /// ... on at least this many distinct days ...
    pub min_days: u32,
    /// ... within this range.
    pub data_range: TimeRange,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StudyTerms {
    /// Public study description (title, protocol) stored off-chain.
    pub description: Cid,
    /// Delivered data keys are wrapped to this key.
    pub study_key: EncryptionKey,
    pub criteria: StudyCriteria,
    pub reward: Amount,
    /// Moved from the researcher's balance into escrow at opening.
    pub escrow: Amount,
    pub ends_at: TimeMs,
}

/// The id of the data commitment that holds the blob `cid`: SHA-256 of a domain tag and the
/// CID's digest. Commitments are keyed by their content, so a CID is committed at most once
/// and whoever holds a CID (storage, a researcher, the patient's own gateway) finds its
/// commitment with one read and no index.
pub fn commitment_id(cid: &Cid) -> RecordId {
    sha256_concat(&[b"medledger/record/commitment-of-cid/", &cid.digest.0])
}

/// Deterministic id of the record a tx creates: SHA-256(kind ‖ signer ‖ nonce). (Data
/// commitments are the exception: see [`commitment_id`].)
pub fn record_id(kind: &[u8], signer: &PublicKey, nonce: u64) -> RecordId {
    sha256_concat(&[b"medledger/record/", kind, &signer.0, &nonce.to_be_bytes()])
}

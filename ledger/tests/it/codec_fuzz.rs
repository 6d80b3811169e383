//! The canonical codec on hostile and on valid input (DESIGN §2 "Canonical encoding";
//! STYLE habit 3 "Untrusted input never panics", habit 5 "Golden fixtures as files").
//!
//! Every decoder a relay, node or light client runs on bytes from a peer is fed random
//! bytes and damaged valid encodings, and what decodes is pushed on into the checks that
//! follow decoding in production (signature checks, proof checks, set validation), because
//! a panic there is as fatal as one in the decoder. Valid values must round-trip, and the
//! encoding must be strict: no trailing bytes, no truncation, one encoding per value.

use borsh::{BorshDeserialize, BorshSerialize};
use ledger::codec::{decode, encode, CodecError};
use ledger::crypto::{sha256, EncryptionKey};
use ledger::genesis::{Genesis, GenesisAccount};
use ledger::header::Block;
use ledger::merkle::{self, InclusionProof};
use ledger::state::records::{
    AccessBasis, AccessRecord, Account, Alert, AlertRule, BreakGlass, Consent, DataCommitment, Device,
    Participation, Study, StudyStatus,
};
use ledger::state::{keys, StateProof};
use ledger::test_utils::{validator_key, Actor, SignedBlock, TestChain, GENESIS_TIME, TEST_CHAIN_ID};
use ledger::tx::{
    AccessRequest, AlertCondition, CareRole, ConsentScope, ConsentTerms, DataCommitmentBody, EmergencyReason,
    Grantee, SignedAccessRequest, StudyCriteria, StudyTerms, TxBody,
};
use ledger::types::{
    loinc, AccessLevel, Cid, DataCategory, LoincCode, Purpose, Role, TimeRange, DAY_MS, HOUR_MS,
};
use ledger::verify::{verify_commit, verify_commit_with, SignatureCheck};
use ledger::{
    Action, Commit, CommitSignature, Hash, Header, PublicKey, Signature, Tx, Validator, ValidatorSet,
};
use proptest::prelude::*;
use proptest::sample::Index;
use std::fmt::Debug;
use std::sync::LazyLock;

mod golden;
mod no_panic;
mod round_trip;

// ---- fixtures -----------------------------------------------------------------------------

fn code(s: &str) -> LoincCode {
    LoincCode::new(s).unwrap()
}

/// A small real chain: a signed block, its state (for proofs) and genesis.
struct Fixture {
    block: SignedBlock,
    genesis: Genesis,
    account_key: Vec<u8>,
    account_value: Vec<u8>,
    account_proof: StateProof,
    absent_proof: StateProof,
    state_root: Hash,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let mut chain = TestChain::new(4);
    let patient = chain.register(7, Role::Patient);
    let block = chain.blocks.last().unwrap().clone();
    let account_key = keys::account(&patient.address());
    let (account_value, account_proof) = chain.state.get_with_proof(&account_key, chain.height).unwrap();
    let (_, absent_proof) = chain
        .state
        .get_with_proof(&keys::device(&patient.address()), chain.height)
        .unwrap();
    Fixture {
        state_root: block.header.state_root,
        block,
        genesis: chain.genesis.clone(),
        account_key,
        account_value: account_value.unwrap(),
        account_proof,
        absent_proof,
    }
});

fn sample_terms() -> ConsentTerms {
    ConsentTerms {
        grantee: Grantee::Account(Actor::from_seed(2).address()),
        scope: ConsentScope {
            categories: vec![DataCategory::DeviceReadings],
            loinc_codes: vec![code(loinc::GLUCOSE_CGM)],
            devices: vec![validator_key(9).public_key()],
            data_range: Some(TimeRange {
                start: GENESIS_TIME - DAY_MS,
                end: GENESIS_TIME,
            }),
        },
        purpose: Purpose::Treatment,
        access: AccessLevel::Read,
        valid_from: GENESIS_TIME,
        valid_until: Some(GENESIS_TIME + 30 * DAY_MS),
        template: None,
    }
}

fn sample_access_request() -> SignedAccessRequest {
    let reader = Actor::from_seed(3);
    AccessRequest {
        chain_id: TEST_CHAIN_ID.into(),
        reader: reader.address(),
        commitment: Hash([0xC0; 32]),
        cid: Cid::of(b"ciphertext"),
        purpose: Purpose::Treatment,
        time: GENESIS_TIME + HOUR_MS,
        nonce: 0xDEAD_BEEF,
    }
    .sign(&reader.keys.signing)
}

fn sample_study_terms() -> StudyTerms {
    StudyTerms {
        description: Cid::of(b"protocol"),
        study_key: EncryptionKey([0x5D; 32]),
        criteria: StudyCriteria {
            loinc_codes: vec![code(loinc::HEART_RATE), code(loinc::SPO2)],
            min_days: 14,
            data_range: TimeRange {
                start: GENESIS_TIME,
                end: GENESIS_TIME + 90 * DAY_MS,
            },
        },
        reward: 50,
        escrow: 5_000,
        ends_at: GENESIS_TIME + 120 * DAY_MS,
    }
}

/// One signed tx per shape of action the encoder has to handle (unit-like, nested
/// structs, vectors, options, enums with payloads).
fn sample_txs() -> Vec<Tx> {
    let mut actor = Actor::from_seed(1);
    let other = Actor::from_seed(2).address();
    let actions = vec![
        Action::RegisterAccount {
            role: Role::Patient,
            encryption_key: actor.keys.encryption_key(),
        },
        Action::Transfer {
            to: other,
            amount: u64::MAX,
        },
        Action::UpdateValidator {
            validator: Validator {
                address: validator_key(5).public_key(),
                power: 0,
            },
        },
        Action::GrantConsent(sample_terms()),
        Action::CommitData(DataCommitmentBody {
            patient: actor.address(),
            device: None,
            cid: Cid::of(b"blob"),
            readings_root: Hash([0x77; 32]),
            loinc_codes: vec![code(loinc::GLUCOSE_CGM), code(loinc::HEART_RATE)],
            time_range: TimeRange { start: 1, end: 2 },
            size: 4096,
            reading_count: 12,
        }),
        Action::RecordAccess {
            request: sample_access_request(),
        },
        Action::OpenBreakGlass {
            patient: other,
            reason: EmergencyReason::Unconscious,
            duration_ms: HOUR_MS,
        },
        Action::SetAlertRule {
            patient: other,
            loinc: code(loinc::SPO2),
            condition: AlertCondition::Below { milli: -90_000 },
        },
        Action::OpenStudy(sample_study_terms()),
        Action::JoinStudy {
            study: Hash([1; 32]),
            evidence: vec![Hash([2; 32]), Hash([3; 32])],
        },
    ];
    actions.into_iter().map(|a| actor.tx(a)).collect()
}

fn sample_records() -> Vec<(&'static str, Vec<u8>)> {
    let patient = Actor::from_seed(1).address();
    let clinician = Actor::from_seed(2).address();
    let device = validator_key(9).public_key();
    vec![
        (
            "account",
            encode(&Account {
                role: Role::Clinician,
                encryption_key: EncryptionKey([0xEE; 32]),
                balance: 12,
                admitted: false,
                attested_by: Some(patient),
            }),
        ),
        (
            "device",
            encode(&Device {
                owner: patient,
                loinc_codes: vec![code(loinc::GLUCOSE_CGM)],
                registered_at: GENESIS_TIME,
                revoked_at: Some(GENESIS_TIME + 1),
            }),
        ),
        (
            "commitment",
            encode(&DataCommitment {
                patient,
                category: DataCategory::ClinicianNotes,
                device: Some(device),
                author: Some(clinician),
                cid: Cid::of(b"note"),
                readings_root: Hash([4; 32]),
                loinc_codes: vec![],
                time_range: TimeRange { start: 5, end: 6 },
                size: 100,
                reading_count: 0,
                committed_at: 3,
                erased_at: None,
            }),
        ),
        (
            "consent",
            encode(&Consent {
                patient,
                terms: CareRole::TemporaryCaregiver.terms(
                    Grantee::Study(Hash([8; 32])),
                    GENESIS_TIME,
                    vec![],
                ),
                granted_at: GENESIS_TIME,
                revoked_at: None,
            }),
        ),
        (
            "breakglass",
            encode(&BreakGlass {
                clinician,
                patient,
                reason: EmergencyReason::Other,
                opened_at: 1,
                expires_at: 2,
            }),
        ),
        (
            "access",
            encode(&AccessRecord {
                patient,
                request: sample_access_request(),
                basis: AccessBasis::Consent(Hash([6; 32])),
                served_by: device,
                recorded_at: 9,
            }),
        ),
        (
            "alertrule",
            encode(&AlertRule {
                patient,
                loinc: code(loinc::HEART_RATE),
                condition: AlertCondition::Above { milli: 150_000 },
                set_by: clinician,
                removed: true,
            }),
        ),
        (
            "alert",
            encode(&Alert {
                patient,
                rule: Hash([1; 32]),
                commitment: Hash([2; 32]),
                raised_by: device,
                raised_at: 4,
            }),
        ),
        (
            "study",
            encode(&Study {
                researcher: clinician,
                terms: sample_study_terms(),
                escrow_remaining: 10,
                participants: 3,
                paid: 1,
                status: StudyStatus::Closed,
            }),
        ),
        (
            "participation",
            encode(&Participation {
                joined_at: 1,
                delivery: Some(Cid::of(b"d")),
                paid: 50,
            }),
        ),
    ]
}

/// Canonical bytes of one valid value of every type a peer can send us.
fn valid_encodings() -> Vec<(&'static str, Vec<u8>)> {
    let f = &*FIXTURE;
    let txs = sample_txs();
    let leaves: Vec<Vec<u8>> = txs.iter().map(Tx::to_bytes).collect();
    let mut out = vec![
        ("header", encode(&f.block.header)),
        ("commit", encode(&f.block.commit)),
        ("validators", encode(&f.block.validators)),
        ("genesis", encode(&f.genesis)),
        ("state proof (present)", encode(&f.account_proof)),
        ("state proof (absent)", encode(&f.absent_proof)),
        (
            "inclusion proof",
            encode(&merkle::prove_inclusion(&leaves, 5).unwrap()),
        ),
        ("access request", encode(&sample_access_request())),
        (
            "block",
            encode(&Block {
                header: f.block.header.clone(),
                txs: leaves.clone(),
            }),
        ),
    ];
    out.extend(txs.iter().map(|tx| ("tx", tx.to_bytes())));
    out.extend(sample_records());
    out
}

//! Fixtures shared by the state-machine scenario tests.

use ledger::crypto::SigningKey;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{Account, DataCommitment};
use ledger::state::StateReadExt;
use ledger::test_utils::{Actor, TestChain};
use ledger::tx::{Action, ConsentTerms, DataCommitmentBody, TxBody};
use ledger::types::{loinc, Cid, LoincCode, RecordId, Role, TimeRange, HOUR_MS};
use ledger::{Hash, PublicKey, Tx};

pub fn code(s: &str) -> LoincCode {
    LoincCode::new(s).unwrap()
}

/// A world with one patient owning one registered CGM + heart-rate device, an admitted
/// hospital, an attested clinician, an unattested clinician and a caregiver.
pub struct World {
    pub chain: TestChain,
    pub patient: Actor,
    pub device: SigningKey,
    pub device_nonce: u64,
    pub hospital: Actor,
    pub clinician: Actor,
    pub rogue_clinician: Actor,
    pub caregiver: Actor,
    blob_counter: u64,
}

impl World {
    pub fn new() -> Self {
        let mut chain = TestChain::new(4);
        let mut patient = chain.register(1, Role::Patient);
        let mut hospital = chain.register(2, Role::Organisation);
        chain
            .governance_tx(Action::AdmitOrganisation {
                organisation: hospital.address(),
            })
            .unwrap();
        let clinician = chain.register(3, Role::Clinician);
        let rogue_clinician = chain.register(4, Role::Clinician);
        let caregiver = chain.register(5, Role::Caregiver);
        chain
            .submit(hospital.tx(Action::AttestClinician {
                clinician: clinician.address(),
            }))
            .unwrap();
        let device = SigningKey::from_seed([42; 32]);
        chain
            .submit(patient.tx(Action::RegisterDevice {
                device: device.public_key(),
                loinc_codes: vec![code(loinc::GLUCOSE_CGM), code(loinc::HEART_RATE)],
            }))
            .unwrap();
        World {
            chain,
            patient,
            device,
            device_nonce: 0,
            hospital,
            clinician,
            rogue_clinician,
            caregiver,
            blob_counter: 0,
        }
    }

    /// Signs `action` with the device key and the device's next nonce.
    pub fn device_tx(&mut self, action: Action) -> Tx {
        let body = TxBody {
            chain_id: ledger::test_utils::TEST_CHAIN_ID.into(),
            signer: self.device.public_key(),
            nonce: self.device_nonce,
            action,
        };
        self.device_nonce += 1;
        body.sign(&self.device)
    }

    /// A commitment body for a fresh blob from the device: one hour of CGM readings.
    pub fn hour_of_glucose(&mut self) -> DataCommitmentBody {
        self.blob_counter += 1;
        let end = self.chain.time - HOUR_MS;
        DataCommitmentBody {
            patient: self.patient.address(),
            device: Some(self.device.public_key()),
            cid: Cid::of(format!("ciphertext {}", self.blob_counter).as_bytes()),
            readings_root: Hash([7; 32]),
            loinc_codes: vec![code(loinc::GLUCOSE_CGM)],
            time_range: TimeRange::new(end - HOUR_MS, end).unwrap(),
            size: 4096,
            reading_count: 12,
        }
    }

    /// Commits one hour of glucose from the device and returns the commitment id.
    pub fn commit_glucose(&mut self) -> RecordId {
        let body = self.hour_of_glucose();
        let tx = self.device_tx(Action::CommitData(body));
        self.chain.submit(tx).unwrap();
        self.last_commitment()
    }

    pub fn last_commitment(&self) -> RecordId {
        let list = self
            .chain
            .state
            .list(ListKind::PatientCommitments, &self.patient.address().0)
            .unwrap();
        *list.last().unwrap()
    }

    pub fn commitment(&self, id: &RecordId) -> DataCommitment {
        self.chain.state.read(&keys::commitment(id)).unwrap().unwrap()
    }

    pub fn account(&self, address: &PublicKey) -> Account {
        self.chain.state.read(&keys::account(address)).unwrap().unwrap()
    }

    /// The patient grants `terms`; returns the consent id.
    pub fn grant(&mut self, terms: ConsentTerms) -> RecordId {
        self.chain
            .submit(self.patient.tx(Action::GrantConsent(terms)))
            .unwrap();
        self.last_consent()
    }

    pub fn last_consent(&self) -> RecordId {
        *self
            .chain
            .state
            .list(ListKind::PatientConsents, &self.patient.address().0)
            .unwrap()
            .last()
            .unwrap()
    }

    /// Time the next block will carry.
    pub fn next_block_time(&self) -> u64 {
        self.chain.ctx().time
    }
}

/// Submits a tx expected to fail, without advancing the actor's nonce.
pub fn reject(chain: &mut TestChain, actor: &Actor, action: Action) -> ledger::TxError {
    chain
        .submit(actor.tx_at_current_nonce(action))
        .expect_err("tx should be rejected")
}

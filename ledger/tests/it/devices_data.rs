//! Devices and data commitments, erasure.

use crate::support::{code, reject, World};
use ledger::access::{may_read, AccessDenied};
use ledger::crypto::SigningKey;
use ledger::state::records::AccessBasis;
use ledger::tx::{commitment_id, Action};
use ledger::types::{loinc, Cid, DataCategory, Purpose, Role, TimeRange, ValueError, HOUR_MS};
use ledger::TxError;

#[test]
fn a_registered_device_commits_its_readings() {
    let mut w = World::new();
    let id = w.commit_glucose();
    let c = w.commitment(&id);
    assert_eq!(c.patient, w.patient.address());
    assert_eq!(c.device, Some(w.device.public_key()));
    assert_eq!(c.category, DataCategory::DeviceReadings);
    assert_eq!(c.erased_at, None);
    // The owner may also sign for the device.
    let body = w.hour_of_glucose();
    w.chain.submit(w.patient.tx(Action::CommitData(body))).unwrap();
}

#[test]
fn only_patients_register_devices_and_each_key_once() {
    let mut w = World::new();
    let device = SigningKey::from_seed([1; 32]).public_key();
    let codes = vec![code(loinc::SPO2)];
    assert_eq!(
        reject(
            &mut w.chain,
            &w.clinician,
            Action::RegisterDevice {
                device,
                loinc_codes: codes.clone()
            }
        ),
        TxError::WrongRole {
            account: w.clinician.address(),
            expected: Role::Patient,
            got: Role::Clinician
        }
    );
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RegisterDevice {
                device: w.device.public_key(),
                loinc_codes: codes.clone()
            }
        ),
        TxError::DeviceAlreadyRegistered(w.device.public_key())
    );
    // An account key cannot double as a device key.
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RegisterDevice {
                device: w.clinician.address(),
                loinc_codes: codes
            }
        ),
        TxError::DeviceAlreadyRegistered(w.clinician.address())
    );
    // Decoded LOINC codes are validated by the state machine, not only by constructors.
    let bogus: ledger::types::LoincCode =
        ledger::codec::decode(&ledger::codec::encode(&"DROP TABLE".to_string())).unwrap();
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RegisterDevice {
                device,
                loinc_codes: vec![bogus]
            }
        ),
        TxError::InvalidValue(ValueError::BadLoinc("DROP TABLE".into()))
    );
}

#[test]
fn unknown_revoked_and_foreign_devices_cannot_commit() {
    let mut w = World::new();
    // Unknown device key signing for the patient.
    let stranger = SigningKey::from_seed([9; 32]);
    let mut body = w.hour_of_glucose();
    body.device = Some(stranger.public_key());
    let tx = ledger::tx::TxBody {
        chain_id: "medledger-test".into(),
        signer: stranger.public_key(),
        nonce: 0,
        action: Action::CommitData(body),
    }
    .sign(&stranger);
    assert_eq!(
        w.chain.submit(tx),
        Err(TxError::UnknownDevice(stranger.public_key()))
    );

    // Another patient's device.
    let mut other = w.chain.register(60, Role::Patient);
    let theirs = SigningKey::from_seed([8; 32]);
    w.chain
        .submit(other.tx(Action::RegisterDevice {
            device: theirs.public_key(),
            loinc_codes: vec![code(loinc::GLUCOSE_CGM)],
        }))
        .unwrap();
    let mut body = w.hour_of_glucose();
    body.device = Some(theirs.public_key());
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::CommitData(body)),
        TxError::DeviceNotOwned {
            device: theirs.public_key(),
            owner: other.address(),
            claimed: w.patient.address()
        }
    );

    // A code the device was not registered for.
    let mut body = w.hour_of_glucose();
    body.loinc_codes = vec![code(loinc::SPO2)];
    let tx = w.device_tx(Action::CommitData(body));
    w.device_nonce -= 1;
    assert_eq!(
        w.chain.submit(tx),
        Err(TxError::DeviceCodeNotRegistered {
            device: w.device.public_key(),
            code: code(loinc::SPO2)
        })
    );

    // Someone else signing for the patient.
    let body = w.hour_of_glucose();
    let mut no_device = body.clone();
    no_device.device = None;
    assert_eq!(
        reject(&mut w.chain, &w.clinician, Action::CommitData(no_device)),
        TxError::NotPatientsKey {
            signer: w.clinician.address(),
            patient: w.patient.address()
        }
    );

    // Revoked: committed before, refused after.
    w.commit_glucose();
    w.chain
        .submit(w.patient.tx(Action::RevokeDevice {
            device: w.device.public_key(),
        }))
        .unwrap();
    let body = w.hour_of_glucose();
    let tx = w.device_tx(Action::CommitData(body));
    assert_eq!(
        w.chain.submit(tx),
        Err(TxError::DeviceRevoked(w.device.public_key()))
    );
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::RevokeDevice {
                device: w.device.public_key()
            }
        ),
        TxError::DeviceRevoked(w.device.public_key())
    );
}

#[test]
fn a_blob_is_committed_once_and_never_dated_in_the_future() {
    let mut w = World::new();
    let body = w.hour_of_glucose();
    let tx = w.device_tx(Action::CommitData(body.clone()));
    w.chain.submit(tx).unwrap();
    // The commitment's id is its CID's, so anyone holding the CID finds it with one read.
    let id = w.last_commitment();
    assert_eq!(id, commitment_id(&body.cid));
    assert_eq!(w.commitment(&id).cid, body.cid);
    let mut dup = w.hour_of_glucose();
    dup.cid = body.cid;
    let tx = w.device_tx(Action::CommitData(dup));
    w.device_nonce -= 1;
    assert_eq!(w.chain.submit(tx), Err(TxError::DuplicateCid(body.cid)));

    let mut future = w.hour_of_glucose();
    let t = w.next_block_time() + 2 * HOUR_MS;
    future.time_range = TimeRange {
        start: t,
        end: t + HOUR_MS,
    };
    let tx = w.device_tx(Action::CommitData(future));
    w.device_nonce -= 1;
    assert_eq!(
        w.chain.submit(tx),
        Err(TxError::InvalidTerms("data time range ends in the future"))
    );

    let mut inverted = w.hour_of_glucose();
    inverted.time_range = TimeRange { start: 10, end: 5 };
    let tx = w.device_tx(Action::CommitData(inverted));
    assert_eq!(
        w.chain.submit(tx),
        Err(TxError::InvalidValue(ValueError::BadTimeRange {
            start: 10,
            end: 5
        }))
    );
}

#[test]
fn erasure_is_the_patients_and_ends_every_read() {
    let mut w = World::new();
    let id = w.commit_glucose();
    let now = w.next_block_time();
    assert_eq!(
        may_read(&w.chain.state, &w.patient.address(), &id, Purpose::Treatment, now),
        Ok(AccessBasis::Owner)
    );
    assert_eq!(
        reject(&mut w.chain, &w.clinician, Action::EraseData { commitment: id }),
        TxError::NotPatientsKey {
            signer: w.clinician.address(),
            patient: w.patient.address()
        }
    );
    w.chain
        .submit(w.patient.tx(Action::EraseData { commitment: id }))
        .unwrap();
    assert!(w.commitment(&id).erased_at.is_some());
    let later = w.next_block_time();
    assert_eq!(
        may_read(
            &w.chain.state,
            &w.patient.address(),
            &id,
            Purpose::Treatment,
            later
        ),
        Err(AccessDenied::Erased(id))
    );
    assert_eq!(
        reject(&mut w.chain, &w.patient, Action::EraseData { commitment: id }),
        TxError::AlreadyErased(id)
    );
    let unknown = ledger::Hash([3; 32]);
    assert_eq!(
        reject(
            &mut w.chain,
            &w.patient,
            Action::EraseData { commitment: unknown }
        ),
        TxError::UnknownRecord {
            kind: "commitment",
            id: unknown
        }
    );
    // The chain keeps only the CID of ciphertext.
    assert_eq!(w.commitment(&id).cid, Cid::of(b"ciphertext 1"));
}

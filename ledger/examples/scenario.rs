//! A short in-process walk through the ledger: a patient's device commits readings, the
//! patient consents to a clinician, a storage node records the clinician's read, a
//! revocation ends access, a study pays a contributor, and a light client verifies the
//! chain by skipping and checks a state proof. Run with `cargo xtask demo`.

use ledger::access::may_read;
use ledger::crypto::SigningKey;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{AccessRecord, Account};
use ledger::state::StateReadExt;
use ledger::test_utils::{Actor, TestChain, TEST_CHAIN_ID};
use ledger::tx::{
    AccessRequest, Action, CareRole, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee, StudyCriteria,
    StudyTerms, TxBody,
};
use ledger::types::{loinc, AccessLevel, Cid, LoincCode, Purpose, Role, TimeRange, DAY_MS, HOUR_MS};
use ledger::verify::{verify_skipping, SignatureCheck, TrustOptions, TrustedBlock, Verdict};
use ledger::Hash;

fn step(n: u32, what: &str) {
    println!("\n[{n}] {what}");
}

fn main() {
    let mut chain = TestChain::new(4);
    chain.advance_time(10 * DAY_MS);
    println!("Medledger ledger scenario — chain {TEST_CHAIN_ID}, 4 validators, all in memory");

    step(
        1,
        "accounts: a patient, a hospital admitted by governance, its attested clinician, a researcher",
    );
    let mut patient = chain.register(1, Role::Patient);
    let mut hospital = chain.register(2, Role::Organisation);
    chain
        .governance_tx(Action::AdmitOrganisation {
            organisation: hospital.address(),
        })
        .expect("admit");
    let clinician = chain.register(3, Role::Clinician);
    chain
        .submit(hospital.tx(Action::AttestClinician {
            clinician: clinician.address(),
        }))
        .expect("attest");
    let mut researcher = chain.register(4, Role::Researcher);
    chain.fund(&researcher, 500);
    println!(
        "    patient {}  clinician {}",
        patient.address(),
        clinician.address()
    );

    step(
        2,
        "the patient registers a CGM; the CGM commits one hour of encrypted readings",
    );
    let cgm = SigningKey::from_seed([42; 32]);
    let glucose = LoincCode::new(loinc::GLUCOSE_CGM).expect("code");
    chain
        .submit(patient.tx(Action::RegisterDevice {
            device: cgm.public_key(),
            loinc_codes: vec![glucose.clone()],
        }))
        .expect("register device");
    let ciphertext = b"(XChaCha20-Poly1305 ciphertext of 12 FHIR Observations)";
    let end = chain.time - HOUR_MS;
    let body = DataCommitmentBody {
        patient: patient.address(),
        device: Some(cgm.public_key()),
        cid: Cid::of(ciphertext),
        readings_root: Hash([7; 32]),
        loinc_codes: vec![glucose.clone()],
        time_range: TimeRange {
            start: end - HOUR_MS,
            end,
        },
        size: ciphertext.len() as u64,
        reading_count: 12,
    };
    let tx = TxBody {
        chain_id: TEST_CHAIN_ID.into(),
        signer: cgm.public_key(),
        nonce: 0,
        action: Action::CommitData(body),
    }
    .sign(&cgm);
    chain.submit(tx).expect("commit");
    let commitment = chain
        .state
        .list(ListKind::PatientCommitments, &patient.address().0)
        .expect("list")[0];
    println!("    commitment {commitment} for blob {}", Cid::of(ciphertext));

    step(3, "without consent the clinician may not read");
    let now = chain.ctx().time;
    match may_read(
        &chain.state,
        &clinician.address(),
        &commitment,
        Purpose::Treatment,
        now,
    ) {
        Ok(basis) => println!("    unexpected: allowed by {basis:?}"),
        Err(denied) => println!("    denied: {denied}"),
    }

    step(
        4,
        "the patient grants a primary-provider consent; the hospital's storage node records a read",
    );
    let terms = CareRole::PrimaryProvider.terms(Grantee::Account(clinician.address()), now, vec![]);
    chain
        .submit(patient.tx(Action::GrantConsent(terms)))
        .expect("grant");
    let consent = chain
        .state
        .list(ListKind::PatientConsents, &patient.address().0)
        .expect("list")[0];
    let read_at = chain.ctx().time;
    let request = AccessRequest {
        chain_id: TEST_CHAIN_ID.into(),
        reader: clinician.address(),
        commitment,
        cid: Cid::of(ciphertext),
        purpose: Purpose::Treatment,
        time: read_at,
        nonce: 1,
    }
    .sign(&clinician.keys.signing);
    chain
        .submit(hospital.tx(Action::RecordAccess { request }))
        .expect("record access");
    for id in chain
        .state
        .list(ListKind::PatientAccess, &patient.address().0)
        .expect("list")
    {
        let record: AccessRecord = chain
            .state
            .read(&keys::access_record(&id))
            .expect("read")
            .expect("present");
        println!(
            "    access log: {} read {:?} for {:?} under {:?}",
            record.reader(),
            commitment,
            record.purpose(),
            record.basis
        );
    }

    step(5, "the patient revokes; the same read is now refused");
    chain
        .submit(patient.tx(Action::RevokeConsent { consent }))
        .expect("revoke");
    let later = chain.ctx().time;
    match may_read(
        &chain.state,
        &clinician.address(),
        &commitment,
        Purpose::Treatment,
        later,
    ) {
        Ok(basis) => println!("    unexpected: allowed by {basis:?}"),
        Err(denied) => println!("    denied: {denied}"),
    }

    step(
        6,
        "a researcher opens a study; the patient joins, delivers and is paid from escrow",
    );
    let study_terms = StudyTerms {
        description: Cid::of(b"CGM variability study"),
        study_key: Actor::from_seed(99).keys.encryption_key(),
        criteria: StudyCriteria {
            loinc_codes: vec![glucose],
            min_days: 1,
            data_range: TimeRange {
                start: 0,
                end: later + DAY_MS,
            },
        },
        reward: 50,
        escrow: 200,
        ends_at: later + 30 * DAY_MS,
    };
    chain
        .submit(researcher.tx(Action::OpenStudy(study_terms)))
        .expect("open study");
    let study = chain.state.list(ListKind::Studies, &[0; 32]).expect("list")[0];
    let from = chain.ctx().time;
    let research = ConsentTerms {
        grantee: Grantee::Study(study),
        scope: ConsentScope::default(),
        purpose: Purpose::Research,
        access: AccessLevel::Read,
        valid_from: from,
        valid_until: Some(from + 90 * DAY_MS),
        template: None,
    };
    chain
        .submit(patient.tx(Action::GrantConsent(research)))
        .expect("research consent");
    chain
        .submit(patient.tx(Action::JoinStudy {
            study,
            evidence: vec![commitment],
        }))
        .expect("join");
    chain
        .submit(patient.tx(Action::DeliverStudyData {
            study,
            delivery: Cid::of(b"rewrapped keys"),
            commitments: vec![commitment],
        }))
        .expect("deliver");
    let balance = |a: &Actor| {
        chain
            .state
            .read::<Account>(&keys::account(&a.address()))
            .ok()
            .flatten()
            .map_or(0, |a| a.balance)
    };
    println!(
        "    patient balance {} (reward 50), researcher balance {}",
        balance(&patient),
        balance(&researcher)
    );

    step(7, "an overdraw is refused with its reason and changes nothing");
    let root = chain.state.root().expect("root");
    let overdraw = patient.tx_at_current_nonce(Action::Transfer {
        to: researcher.address(),
        amount: 1_000_000,
    });
    match chain.submit(overdraw) {
        Ok(()) => println!("    unexpected: accepted"),
        Err(e) => println!(
            "    rejected: {e}; state root unchanged: {}",
            chain.state.root().expect("root") == root
        ),
    }

    step(
        8,
        "a light client skips from genesis' first block to the head and checks a proof",
    );
    let first = &chain.blocks[0];
    let head = chain.blocks.last().expect("head");
    let trusted = TrustedBlock {
        header: first.header.clone(),
        next_validators: first.next_validators.clone(),
    };
    let verdict = verify_skipping(
        &trusted,
        &head.header,
        &head.commit,
        &head.validators,
        &TrustOptions::default(),
        head.header.time + 1_000,
        SignatureCheck::All,
    );
    println!(
        "    skip {} -> {}: {verdict:?}",
        first.header.height, head.header.height
    );
    assert_eq!(verdict, Verdict::Success);
    let key = keys::consent(&consent);
    let (value, proof) = chain
        .state
        .get_with_proof(&key, head.header.height)
        .expect("proof");
    let ok = proof
        .verify(&head.header.state_root, &key, value.as_deref())
        .is_ok();
    println!(
        "    consent proven present at height {}: {ok} ({} byte proof)",
        head.header.height,
        proof.encoded_len()
    );
    let missing = keys::consent(&Hash([0xEE; 32]));
    let (none, proof) = chain
        .state
        .get_with_proof(&missing, head.header.height)
        .expect("proof");
    let absent = none.is_none() && proof.verify(&head.header.state_root, &missing, None).is_ok();
    println!("    unknown consent proven absent: {absent}");
    println!(
        "\n{} blocks, state holds {} keys. The networked demo arrives with the node, relay and dashboard.",
        chain.height,
        chain.state.entries().count()
    );
}

//! Consent-checked blob reads on a live dev chain (issue 5 "Access"): denied without consent,
//! served with it (and the read recorded on chain), denied again after revocation; replays,
//! forgeries, stale and back-dated requests refused; erasure deletes the blob for good.

use crate::support::{now_ms, wait_for, DevRelay, TEST_MAX_BLOB};
use bytes::Bytes;
use ledger::access::AccessDenied;
use ledger::crypto::{AccountKeys, Hash, PublicKey};
use ledger::state::keys::ListKind;
use ledger::state::records::AccessBasis;
use ledger::state::StateReadExt;
use ledger::tx::{
    commitment_id, record_id, AccessRequest, Action, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee,
    SignedAccessRequest,
};
use ledger::types::{loinc, AccessLevel, Cid, LoincCode, Purpose, RecordId, TimeRange};
use relay::blobs::{ReplayError, MAX_REQUEST_SKEW_MS};
use relay::clock::{FixedClock, SystemClock};
use relay::dev::{CLINICIAN, PATIENTS};
use relay::http::ACCESS_RECORD_HEADER;
use relay::BlobError;
use std::sync::Arc;

fn request(
    reader: &AccountKeys,
    chain_id: &str,
    commitment: RecordId,
    cid: Cid,
    time: u64,
) -> SignedAccessRequest {
    AccessRequest {
        chain_id: chain_id.into(),
        reader: reader.address(),
        commitment,
        cid,
        purpose: Purpose::Treatment,
        time,
        nonce: rand::random(),
    }
    .sign(&reader.signing)
}

fn access_records(dev: &DevRelay, patient: &PublicKey) -> u64 {
    let state = dev.relay.chain.snapshot().unwrap();
    state.list_len(ListKind::PatientAccess, &patient.0).unwrap()
}

async fn post_get(dev: &DevRelay, signed: &SignedAccessRequest) -> reqwest::Response {
    reqwest::Client::new()
        .post(dev.url("/blobs/get"))
        .body(borsh::to_vec(signed).unwrap())
        .send()
        .await
        .unwrap()
}

async fn json_error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: serde_json::Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn reads_follow_consent_and_are_recorded_on_chain() {
    let dev = DevRelay::start().await;
    let chain_id = dev.relay.chain.chain_id().to_owned();
    let blobs = &dev.relay.blobs;
    let patient = dev.account(PATIENTS[0]);
    let clinician = dev.account(CLINICIAN);
    let http = reqwest::Client::new();

    // The patient's gateway uploads a blob over HTTP, then commits to it on chain.
    let ciphertext = Bytes::from_static(b"XChaCha20-Poly1305 ciphertext of FHIR Observations");
    let cid = Cid::of(&ciphertext);
    let put = http
        .put(dev.url(&format!("/blobs/{cid}")))
        .body(ciphertext.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let now = now_ms();
    let commit = dev.tx(
        &patient,
        Action::CommitData(DataCommitmentBody {
            patient: patient.address(),
            device: None,
            cid,
            readings_root: Hash::ZERO,
            loinc_codes: vec![LoincCode::new(loinc::HEART_RATE).unwrap()],
            time_range: TimeRange::new(now - 3_600_000, now - 1_000).unwrap(),
            size: ciphertext.len() as u64,
            reading_count: 60,
        }),
    );
    let commitment = commitment_id(&cid);
    dev.commit(commit).await;

    // The patient reads their own data.
    let own = blobs
        .get(&request(&patient, &chain_id, commitment, cid, now_ms()))
        .await
        .unwrap();
    assert_eq!(own.basis, AccessBasis::Owner);

    // A relay whose account is not an admitted organisation cannot record reads, so it
    // serves none (a second service over the same chain, signing with a patient's key).
    let stranger = dev.account(PATIENTS[1]);
    let unadmitted = relay::BlobService::new(
        blobs.store().clone(),
        dev.relay.chain.clone(),
        stranger.clone(),
        Arc::new(SystemClock),
        relay::metrics::RelayMetrics::new(),
    );
    assert!(!unadmitted.is_admitted().unwrap());
    match unadmitted
        .get(&request(&patient, &chain_id, commitment, cid, now_ms()))
        .await
    {
        Err(BlobError::RelayNotAdmitted(address)) => assert_eq!(address, stranger.address()),
        other => panic!("expected RelayNotAdmitted, got {other:?}"),
    }

    // 1. Without consent the clinician is denied, with the ledger's reason.
    let denied = blobs
        .get(&request(&clinician, &chain_id, commitment, cid, now_ms()))
        .await;
    match denied {
        Err(BlobError::Denied(AccessDenied::NoConsent {
            reader,
            patient: p,
            purpose,
            ..
        })) => {
            assert_eq!(
                (reader, p, purpose),
                (clinician.address(), patient.address(), Purpose::Treatment)
            );
        }
        other => panic!("expected a NoConsent denial, got {other:?}"),
    }
    let response = post_get(&dev, &request(&clinician, &chain_id, commitment, cid, now_ms())).await;
    assert_eq!(json_error(response).await, (403, "denied".into()));

    // 2. With a consent, the clinician gets the blob and the read lands on chain.
    let grant = dev.tx(
        &patient,
        Action::GrantConsent(ConsentTerms {
            grantee: Grantee::Account(clinician.address()),
            scope: ConsentScope::default(),
            purpose: Purpose::Treatment,
            access: AccessLevel::Read,
            valid_from: now_ms(),
            valid_until: None,
            template: None,
        }),
    );
    let consent = record_id(b"consent", &patient.address(), grant.body.nonce);
    dev.commit(grant).await;
    let records_before = access_records(&dev, &patient.address());
    let signed = request(&clinician, &chain_id, commitment, cid, now_ms());
    let served = blobs.get(&signed).await.unwrap();
    assert_eq!(served.bytes, ciphertext);
    assert_eq!(served.basis, AccessBasis::Consent(consent));
    let node = dev.relay.chain.node().clone();
    let record_tx = served.access_record_tx;
    wait_for("the access record to commit", || {
        let node = node.clone();
        async move { node.tx_height(&record_tx).unwrap() }
    })
    .await;
    assert!(access_records(&dev, &patient.address()) > records_before);

    // A burst of reads submits records faster than blocks commit: the relay numbers them
    // itself, and every one lands.
    let burst = futures::future::join_all((0..5).map(|_| {
        let signed = request(&clinician, &chain_id, commitment, cid, now_ms());
        async move { blobs.get(&signed).await }
    }))
    .await;
    let records: Vec<Hash> = burst.into_iter().map(|r| r.unwrap().access_record_tx).collect();
    for hash in records {
        let node = node.clone();
        wait_for("a burst access record to commit", || {
            let node = node.clone();
            async move { node.tx_height(&hash).unwrap() }
        })
        .await;
    }
    assert!(access_records(&dev, &patient.address()) >= records_before + 6);

    // Over HTTP too, with the record's tx in a header.
    let response = post_get(&dev, &request(&clinician, &chain_id, commitment, cid, now_ms())).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key(ACCESS_RECORD_HEADER));
    assert_eq!(response.bytes().await.unwrap(), ciphertext);

    // 3. The same signed request is served once.
    match blobs.get(&signed).await {
        Err(BlobError::Replay(ReplayError::Replayed { reader, nonce })) => {
            assert_eq!((reader, nonce), (clinician.address(), signed.request.nonce));
        }
        other => panic!("expected a replay refusal, got {other:?}"),
    }
    assert_eq!(
        json_error(post_get(&dev, &signed).await).await,
        (409, "replayed".into())
    );

    // Forged, stale and foreign-chain requests are refused before any state is read.
    let mut forged = request(&clinician, &chain_id, commitment, cid, now_ms());
    forged.request.purpose = Purpose::Research;
    assert!(matches!(
        blobs.get(&forged).await,
        Err(BlobError::BadSignature(_))
    ));
    let stale = request(&clinician, &chain_id, commitment, cid, now_ms() - 10 * 60 * 1000);
    assert!(matches!(
        blobs.get(&stale).await,
        Err(BlobError::StaleRequest { .. })
    ));
    // The relay's clock is injected: one running six minutes ahead finds a fresh request stale.
    let ahead = relay::BlobService::new(
        blobs.store().clone(),
        dev.relay.chain.clone(),
        dev.account(relay::dev::STORAGE_NODE),
        Arc::new(FixedClock::new(now_ms() + 6 * 60 * 1000)),
        relay::metrics::RelayMetrics::new(),
    );
    match ahead
        .get(&request(&clinician, &chain_id, commitment, cid, now_ms()))
        .await
    {
        Err(BlobError::StaleRequest { max_skew_ms, .. }) => assert_eq!(max_skew_ms, MAX_REQUEST_SKEW_MS),
        other => panic!("expected StaleRequest, got {other:?}"),
    }
    let foreign = request(&clinician, "other-chain", commitment, cid, now_ms());
    assert!(matches!(
        blobs.get(&foreign).await,
        Err(BlobError::WrongChain { .. })
    ));
    let wrong_cid = request(&clinician, &chain_id, commitment, Cid::of(b"x"), now_ms());
    assert!(matches!(
        blobs.get(&wrong_cid).await,
        Err(BlobError::RequestCidMismatch { .. })
    ));
    let garbage = http
        .post(dev.url("/blobs/get"))
        .body(vec![1, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(garbage).await, (400, "malformed".into()));

    // 4. After revocation the clinician is denied again, also with a back-dated request.
    let revoke = dev.tx(&patient, Action::RevokeConsent { consent });
    let revoked_at = dev.commit(revoke).await;
    let revoked_time = dev.relay.chain.node().header(revoked_at).unwrap().unwrap().time;
    let after = blobs
        .get(&request(&clinician, &chain_id, commitment, cid, now_ms()))
        .await;
    assert!(
        matches!(after, Err(BlobError::Denied(AccessDenied::NoConsent { .. }))),
        "{after:?}"
    );
    let back_dated = request(&clinician, &chain_id, commitment, cid, revoked_time - 1);
    assert!(matches!(
        blobs.get(&back_dated).await,
        Err(BlobError::Denied(AccessDenied::NoConsent { .. }))
    ));

    // Oversize and wrong-CID puts are refused over HTTP with their reasons.
    let big = vec![1u8; TEST_MAX_BLOB as usize + 1];
    let response = http
        .put(dev.url(&format!("/blobs/{}", Cid::of(&big))))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(response).await, (413, "too_large".into()));
    let huge = vec![1u8; 4 * TEST_MAX_BLOB as usize];
    let response = http
        .put(dev.url(&format!("/blobs/{}", Cid::of(&huge))))
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    let response = http
        .put(dev.url(&format!("/blobs/{cid}")))
        .body("not the committed bytes")
        .send()
        .await
        .unwrap();
    assert_eq!(json_error(response).await, (400, "cid_mismatch".into()));

    // 5. Erasure: the follower deletes the blob once the erasure commits; it never comes back.
    dev.commit(dev.tx(&patient, Action::EraseData { commitment }))
        .await;
    let store = blobs.store().clone();
    wait_for("the erased blob to be deleted", || {
        let store = store.clone();
        async move { (!store.contains(&cid).await.unwrap()).then_some(()) }
    })
    .await;
    assert!(matches!(
        blobs.put(cid, ciphertext.clone()).await,
        Err(BlobError::Erased(c)) if c == cid
    ));
    // Gone for the patient too, and said so: "erased", not "denied" (HTTP 410).
    let own = blobs
        .get(&request(&patient, &chain_id, commitment, cid, now_ms()))
        .await;
    assert!(matches!(own, Err(BlobError::Erased(c)) if c == cid), "{own:?}");
    let over_http = post_get(&dev, &request(&patient, &chain_id, commitment, cid, now_ms())).await;
    assert_eq!(json_error(over_http).await, (410, "erased".into()));

    let metrics = dev.relay.metrics.export();
    for line in [
        "medledger_relay_blob_gets_total 8",
        "medledger_relay_blob_denials_total 4",
        "medledger_relay_blobs_erased_total 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
}

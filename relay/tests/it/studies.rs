//! A study's public description (`GET /studies/{id}/description`): anyone reads the blob its
//! verified terms name; nothing else is served this way.

use crate::support::{now_ms, DevRelay};
use ledger::crypto::EncryptionKey;
use ledger::state::keys::ListKind;
use ledger::state::StateReadExt;
use ledger::tx::{Action, StudyCriteria, StudyTerms};
use ledger::types::{loinc, Cid, LoincCode, RecordId, TimeRange, DAY_MS};
use relay::dev::RESEARCHER;

/// `GET /studies/{study}/description` on the dev relay.
async fn description_of(dev: &DevRelay, study: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(dev.url(&format!("/studies/{study}/description")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_study_description_is_public_and_nothing_else_is() {
    let dev = DevRelay::start().await;
    let researcher = dev.account(RESEARCHER);
    let text = br#"{"title":"Night-time hypoglycaemia","purpose":"How often CGM users go low at night"}"#;
    let description = Cid::of(text);
    let stored = reqwest::Client::new()
        .put(dev.url(&format!("/blobs/{}", description.to_text())))
        .body(text.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);

    // Before the study exists the blob is like any other: not served without a request.
    let unknown = RecordId::from_hex(&"ab".repeat(32)).unwrap();
    let missing = description_of(&dev, &unknown.to_hex()).await;
    assert_eq!(missing.status(), 404);

    let now = now_ms();
    let terms = StudyTerms {
        description,
        study_key: EncryptionKey([9; 32]),
        criteria: StudyCriteria {
            loinc_codes: vec![LoincCode::new(loinc::GLUCOSE_CGM).unwrap()],
            min_days: 1,
            data_range: TimeRange {
                start: now - 30 * DAY_MS,
                end: now + 30 * DAY_MS,
            },
        },
        reward: 100,
        escrow: 1_000,
        ends_at: now + 60 * DAY_MS,
    };
    dev.commit(dev.tx(&researcher, Action::OpenStudy(terms))).await;
    let study = *dev
        .relay
        .chain
        .snapshot()
        .unwrap()
        .list(ListKind::Studies, &[0; 32])
        .unwrap()
        .last()
        .unwrap();

    let served = description_of(&dev, &study.to_hex()).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), text);

    let malformed = description_of(&dev, "not-a-study").await;
    assert_eq!(malformed.status(), 400);
}

//! Research studies in the browser (DESIGN §3 "Research and rewards", issue 8 part 1).
//!
//! - **Open** (researcher): the study key is an X25519 key made here; its seed is stored with
//!   the researcher's identity (and in its backup) before `OpenStudy` is sent. The title and
//!   purpose go in a public description blob (JSON) stored on the relay; only its CID is on
//!   chain.
//! - **Match** ([`match_study`], pure): which of the patient's commitments are evidence for a
//!   study and why a patient does not qualify.
//! - **Join** (patient): a research consent to the study (scope: its codes and data range),
//!   then `JoinStudy` citing the evidence.
//! - **Deliver** (patient): the cited batches are read from the relay and checked against
//!   their commitments, their lines re-sealed in ONE envelope for the study key and the
//!   patient, stored, committed with `CommitData` (device `None`), and `DeliverStudyData` cites
//!   the originals and the delivery's CID. The relay serves the delivery to the researcher
//!   under the patient's research consent (consent-checked, audited like any read).
//! - **Dataset** (researcher): every delivery is read, opened with the study key, checked
//!   against its own commitment, then each batch in it against its original commitment
//!   (patient, codes, range, Merkle root, count): FHIR NDJSON, one Observation a line.
//!
//! A delivery's first line is a manifest (not an Observation): the original commitments and
//! how many lines each contributed, so the researcher can check every batch on its own.
//!
//! # Security considerations
//! - The researcher trusts nothing the patient's browser claims: the manifest only says where
//!   each batch's lines are; each slice must hash to the Merkle root the chain holds for that
//!   batch, which the patient's device committed.
//! - Imported data and earlier deliveries (device `None`) are not used as evidence, so a
//!   delivery is never delivered again inside another one.

use crate::api;
use crate::error::{AppError, AppResult};
use crate::notes::BrowserRng;
use crate::state::AppState;
use gateway::envelope::{readings_root, seal_lines, ContentType, EnvelopeHeader, ENVELOPE_VERSION};
use ledger::crypto::{AccountKeys, Address};
use ledger::state::keys;
use ledger::state::records::{DataCommitment, Study, StudyStatus};
use ledger::tx::{
    commitment_id, Action, ConsentScope, ConsentTerms, DataCommitmentBody, Grantee, MAX_EVIDENCE,
};
use ledger::types::{
    AccessLevel, Cid, DataCategory, LoincCode, Purpose, RecordId, TimeMs, TimeRange, DAY_MS,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The public description a study's `description` CID names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Description {
    pub title: String,
    pub purpose: String,
}

/// Longest title or purpose the form accepts.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// Stores the description on the relay (and keeps a copy in this browser); returns its CID.
pub async fn publish_description(description: &Description) -> AppResult<Cid> {
    let bytes = serde_json::to_vec(description).map_err(|e| AppError::Input(e.to_string()))?;
    let cid = Cid::of(&bytes);
    api::put_blob(&cid, &bytes).await?;
    crate::idb::put(&description_key(&cid), &bytes).await?;
    Ok(cid)
}

fn description_key(cid: &Cid) -> String {
    format!("study-description/{}", cid.to_text())
}

/// The description of study `id`, whose verified terms name `cid`: this browser's copy, else
/// the relay's public copy. Either must hash to `cid`, so a relay cannot swap the text.
/// `None` when neither is available or valid (the page shows the study without it).
pub async fn description(id: &RecordId, cid: &Cid) -> Option<Description> {
    let local = crate::idb::get(&description_key(cid)).await.ok().flatten();
    let bytes = match local {
        Some(bytes) if cid.matches(&bytes) => bytes,
        _ => {
            let url = format!("/studies/{}/description", id.to_hex());
            let bytes = crate::http::request("GET", &url, None).await.ok()?.ok().ok()?;
            if !cid.matches(&bytes) {
                leptos::logging::warn!(
                    "study {}: the relay's description does not match its CID",
                    id.to_hex()
                );
                return None;
            }
            // Kept, so the relay is asked once per study.
            let _ = crate::idb::put(&description_key(cid), &bytes).await;
            bytes
        }
    };
    serde_json::from_slice(&bytes).ok()
}

/// How the patient's data meets a study's criteria.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// Commitments to cite (sorted, at most [`MAX_EVIDENCE`]).
    pub evidence: Vec<RecordId>,
    /// The cited commitments as proven when listed (a delivery reads their blobs).
    pub records: Vec<(RecordId, DataCommitment)>,
    /// Distinct UTC days the evidence covers.
    pub days: usize,
    /// Why the patient cannot join; `None` when they can.
    pub refusal: Option<String>,
}

/// Day numbers (UTC) a commitment's range touches; the ledger counts the same way.
fn days_of(range: &TimeRange) -> impl Iterator<Item = u64> {
    let first = range.start / DAY_MS;
    first..=(range.end / DAY_MS).min(first + 366)
}

/// A commitment the study could use: the patient's live device data inside the range, every
/// code of it among the study's (so the research consent, scoped to the study's codes,
/// covers it whole, as a delivery needs).
pub fn usable(study: &Study, c: &DataCommitment) -> bool {
    let criteria = &study.terms.criteria;
    c.category == DataCategory::DeviceReadings
        && c.device.is_some()
        && c.erased_at.is_none()
        && criteria.data_range.covers(&c.time_range)
        && !c.loinc_codes.is_empty()
        && c.loinc_codes
            .iter()
            .all(|code| criteria.loinc_codes.contains(code))
}

/// Picks evidence among `commitments` (newest first): one per day first (so the day count is
/// as high as the citation limit allows), then the newest others.
pub fn match_study(study: &Study, commitments: &[(RecordId, DataCommitment)], now: TimeMs) -> Match {
    let criteria = &study.terms.criteria;
    let names = |codes: &[&LoincCode]| {
        codes
            .iter()
            .map(|c| crate::format::loinc_name(c.as_str()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let closed = if study.status == StudyStatus::Closed || now >= study.terms.ends_at {
        Some("the study is closed".to_string())
    } else {
        None
    };
    let usable: Vec<&(RecordId, DataCommitment)> =
        commitments.iter().filter(|(_, c)| usable(study, c)).collect();
    let mut chosen: Vec<RecordId> = Vec::new();
    let mut seen_days = BTreeSet::new();
    for (id, c) in &usable {
        if chosen.len() < MAX_EVIDENCE && days_of(&c.time_range).any(|d| !seen_days.contains(&d)) {
            seen_days.extend(days_of(&c.time_range));
            chosen.push(*id);
        }
    }
    for (id, _) in &usable {
        if chosen.len() >= MAX_EVIDENCE {
            break;
        }
        if !chosen.contains(id) {
            chosen.push(*id);
        }
    }
    let covered: BTreeSet<&LoincCode> = usable
        .iter()
        .filter(|(id, _)| chosen.contains(id))
        .flat_map(|(_, c)| c.loinc_codes.iter())
        .collect();
    let missing: Vec<&LoincCode> = criteria
        .loinc_codes
        .iter()
        .filter(|c| !covered.contains(c))
        .collect();
    let days = seen_days.len();
    let refusal = closed.or_else(|| {
        if !missing.is_empty() {
            Some(format!(
                "your data in the study's range has no batch of {} (only batches holding the study's codes alone count)",
                names(&missing)
            ))
        } else if days < criteria.min_days as usize {
            Some(format!(
                "your data covers {days} day(s) in the study's range; it needs {}",
                criteria.min_days
            ))
        } else {
            None
        }
    });
    chosen.sort();
    let records = chosen
        .iter()
        .filter_map(|id| usable.iter().find(|(u, _)| u == id).map(|(u, c)| (*u, c.clone())))
        .collect();
    Match {
        evidence: chosen,
        records,
        days,
        refusal,
    }
}

/// The consent a patient grants to join: research, read only, the study's codes and range.
pub fn research_consent(study_id: RecordId, study: &Study, now: TimeMs) -> ConsentTerms {
    let mut codes = study.terms.criteria.loinc_codes.clone();
    codes.sort();
    ConsentTerms {
        grantee: Grantee::Study(study_id),
        scope: ConsentScope {
            categories: vec![DataCategory::DeviceReadings],
            loinc_codes: codes,
            devices: vec![],
            data_range: Some(study.terms.criteria.data_range),
        },
        purpose: Purpose::Research,
        access: AccessLevel::Read,
        valid_from: now,
        valid_until: None,
        template: None,
    }
}

/// Does the patient hold an active research consent for this study (verified)?
async fn has_research_consent(patient: &Address, study_id: &RecordId) -> AppResult<bool> {
    let (_, consents) = crate::lists::records::<ledger::state::records::Consent>(
        ledger::state::keys::ListKind::PatientConsents,
        patient.0,
        64,
        keys::consent,
        false,
    )
    .await?;
    let now = api::now_ms();
    Ok(consents.iter().any(|(_, c)| {
        c.terms.grantee == Grantee::Study(*study_id)
            && c.terms.purpose == Purpose::Research
            && c.is_active_at(now)
    }))
}

/// Joins: grants the research consent unless one is active, then `JoinStudy`. `progress`
/// hears each step.
pub async fn join(
    me: &AccountKeys,
    study_id: RecordId,
    study: &Study,
    evidence: Vec<RecordId>,
    state: AppState,
    progress: impl Fn(String),
) -> AppResult<u64> {
    if !has_research_consent(&me.address(), &study_id).await? {
        progress("granting research consent to the study…".into());
        let terms = research_consent(study_id, study, api::now_ms());
        api::submit(me, Action::GrantConsent(terms), state).await?;
    }
    progress(format!("joining, citing {} batches…", evidence.len()));
    let included = api::submit(
        me,
        Action::JoinStudy {
            study: study_id,
            evidence,
        },
        state,
    )
    .await?;
    Ok(included.height)
}

/// The first line of a delivery.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "medledgerDelivery")]
    pub delivery: ManifestBody,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestBody {
    /// The study id (hex).
    pub study: String,
    pub batches: Vec<ManifestBatch>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ManifestBatch {
    /// The original commitment id (hex).
    pub commitment: String,
    /// How many lines (readings) follow for it.
    pub lines: u32,
}

/// Delivers: reads and checks each cited batch, re-seals all their lines for the study key
/// and the patient, stores and commits the delivery, then `DeliverStudyData`. Returns the
/// delivery's CID.
pub async fn deliver(
    me: &AccountKeys,
    study_id: RecordId,
    study: &Study,
    cited: &[(RecordId, DataCommitment)],
    state: AppState,
    progress: impl Fn(String),
) -> AppResult<Cid> {
    let patient = me.address();
    let mut lines: Vec<Vec<u8>> = vec![Vec::new()];
    let mut manifest = ManifestBody {
        study: study_id.to_hex(),
        batches: Vec::new(),
    };
    let mut codes: BTreeSet<LoincCode> = BTreeSet::new();
    let mut range: Option<TimeRange> = None;
    let mut cited: Vec<(RecordId, DataCommitment)> = cited.to_vec();
    cited.sort_by_key(|(id, _)| *id);
    // The records were proven when listed; an erasure since then fails the delivery on chain.
    for (n, (id, commitment)) in cited.iter().enumerate() {
        progress(format!(
            "reading batch {}/{} and checking it against its commitment…",
            n + 1,
            cited.len()
        ));
        if !usable(study, commitment) {
            return Err(AppError::Input(format!(
                "batch {} no longer fits the study (erased, or outside its codes or range)",
                crate::format::short_hash(id)
            )));
        }
        let batch = api::read_blob(me, *id, commitment, Purpose::Research).await?;
        manifest.batches.push(ManifestBatch {
            commitment: id.to_hex(),
            lines: batch.len() as u32,
        });
        lines.extend(batch);
        codes.extend(commitment.loinc_codes.iter().cloned());
        range = Some(match range {
            None => commitment.time_range,
            Some(r) => TimeRange {
                start: r.start.min(commitment.time_range.start),
                end: r.end.max(commitment.time_range.end),
            },
        });
    }
    let range = range.ok_or_else(|| AppError::Input("nothing to deliver".into()))?;
    lines[0] =
        serde_json::to_vec(&Manifest { delivery: manifest }).map_err(|e| AppError::Input(e.to_string()))?;
    progress("sealing the delivery for the study key…".into());
    let header = EnvelopeHeader {
        version: ENVELOPE_VERSION,
        content_type: ContentType::FhirNdjson,
        patient,
        device: None,
        time_range: range,
    };
    let sealed = seal_lines(
        header,
        &lines,
        &[study.terms.study_key, me.encryption_key()],
        &mut BrowserRng,
    )
    .map_err(|e| AppError::Blob(e.to_string()))?;
    api::put_blob(&sealed.cid, &sealed.blob).await?;
    progress("committing the delivery…".into());
    let body = DataCommitmentBody {
        patient,
        device: None,
        cid: sealed.cid,
        readings_root: sealed.readings_root,
        loinc_codes: codes.into_iter().collect(),
        time_range: range,
        size: sealed.blob.len() as u64,
        reading_count: sealed.reading_count,
    };
    api::submit(me, Action::CommitData(body), state).await?;
    progress("delivering (releases the reward)…".into());
    api::submit(
        me,
        Action::DeliverStudyData {
            study: study_id,
            delivery: sealed.cid,
            commitments: cited.into_iter().map(|(id, _)| id).collect(),
        },
        state,
    )
    .await?;
    Ok(sealed.cid)
}

/// One contributor's delivery as the researcher checked it.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    pub patient: Address,
    pub observations: usize,
}

/// The dataset of a study: the Observation lines of every delivery, each batch checked.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Dataset {
    pub ndjson: String,
    pub contributions: Vec<Contribution>,
    /// Deliveries that could not be used, and why.
    pub problems: Vec<String>,
}

/// Splits an opened delivery into its batches and checks each against its original
/// commitment (`originals`, read from the chain); returns the Observation lines.
pub fn check_delivery(
    study: &Study,
    patient: &Address,
    lines: &[Vec<u8>],
    originals: &BTreeMap<RecordId, DataCommitment>,
) -> Result<Vec<Vec<u8>>, String> {
    let (first, rest) = lines.split_first().ok_or("an empty delivery")?;
    let manifest: Manifest =
        serde_json::from_slice(first).map_err(|e| format!("the delivery's manifest does not parse: {e}"))?;
    let mut at = 0usize;
    let mut out = Vec::new();
    for batch in &manifest.delivery.batches {
        let id = RecordId::from_hex(&batch.commitment).map_err(|_| "a manifest id is not hex".to_string())?;
        let c = originals
            .get(&id)
            .ok_or_else(|| format!("batch {} is not on chain", batch.commitment))?;
        let n = batch.lines as usize;
        let slice = rest.get(at..at + n).ok_or_else(|| {
            format!(
                "batch {}: the delivery is shorter than its manifest",
                batch.commitment
            )
        })?;
        at += n;
        if c.patient != *patient {
            return Err(format!("batch {} is another patient's", batch.commitment));
        }
        if c.category != DataCategory::DeviceReadings
            || !study.terms.criteria.data_range.covers(&c.time_range)
            || !c
                .loinc_codes
                .iter()
                .all(|code| study.terms.criteria.loinc_codes.contains(code))
        {
            return Err(format!(
                "batch {} is outside the study's codes or range",
                batch.commitment
            ));
        }
        if readings_root(slice) != c.readings_root || slice.len() != c.reading_count as usize {
            return Err(format!(
                "batch {}: the delivered readings do not match the Merkle root and count committed on chain",
                batch.commitment
            ));
        }
        out.extend(slice.iter().cloned());
    }
    if at != rest.len() {
        return Err("the delivery holds lines its manifest does not account for".into());
    }
    Ok(out)
}

/// Builds the study's dataset: every participant's delivery, read from the relay under the
/// research consent, opened with the study key and checked batch by batch.
pub async fn dataset(
    researcher: &AccountKeys,
    study_key: &AccountKeys,
    study_id: RecordId,
    study: &Study,
    progress: impl Fn(String),
) -> AppResult<Dataset> {
    let (_, participants) = crate::lists::ids(
        ledger::state::keys::ListKind::StudyParticipants,
        study_id.0,
        1_000,
    )
    .await?;
    let mut out = Dataset::default();
    let mut lines_out: Vec<Vec<u8>> = Vec::new();
    for (n, p) in participants.iter().enumerate() {
        let patient = ledger::crypto::PublicKey(p.0);
        let who = crate::format::short(&patient.to_hex());
        progress(format!("contributor {}/{}: {who}…", n + 1, participants.len()));
        let participation = api::query(async |c| c.participation(&study_id, &patient).await)
            .await?
            .value;
        let Some(cid) = participation.and_then(|p| p.delivery) else {
            continue;
        };
        match contribution(researcher, study_key, study, &patient, &cid).await {
            Ok(lines) => {
                out.contributions.push(Contribution {
                    patient,
                    observations: lines.len(),
                });
                lines_out.extend(lines);
            }
            Err(e) => out.problems.push(format!("{who}: {e}")),
        }
    }
    let text: Vec<String> = lines_out
        .iter()
        .map(|l| String::from_utf8_lossy(l).into_owned())
        .collect();
    out.ndjson = text.join("\n");
    if !out.ndjson.is_empty() {
        out.ndjson.push('\n');
    }
    Ok(out)
}

async fn contribution(
    researcher: &AccountKeys,
    study_key: &AccountKeys,
    study: &Study,
    patient: &Address,
    cid: &Cid,
) -> AppResult<Vec<Vec<u8>>> {
    let id = commitment_id(cid);
    let delivery = api::query(async |c| c.commitment(&id).await)
        .await?
        .value
        .ok_or_else(|| AppError::Blob(format!("no commitment names the delivery {}", cid.to_text())))?;
    if delivery.patient != *patient {
        return Err(AppError::Blob(
            "the delivery was committed by someone else".into(),
        ));
    }
    if delivery.erased_at.is_some() {
        return Err(AppError::Blob("the patient erased this delivery".into()));
    }
    let blob = api::fetch_blob(researcher, id, &delivery, Purpose::Research).await?;
    let opened = gateway::open_lines_verified(study_key, &blob, &delivery)
        .map_err(|e| AppError::Blob(e.to_string()))?;
    let manifest: Manifest = opened
        .lines
        .first()
        .and_then(|l| serde_json::from_slice(l).ok())
        .ok_or_else(|| AppError::Blob("the delivery has no manifest".into()))?;
    let mut originals = BTreeMap::new();
    for batch in &manifest.delivery.batches {
        let Ok(bid) = RecordId::from_hex(&batch.commitment) else {
            continue;
        };
        if let Some(c) = api::query(async |c| c.commitment(&bid).await).await?.value {
            originals.insert(bid, c);
        }
    }
    check_delivery(study, patient, &opened.lines, &originals).map_err(AppError::Blob)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ledger::crypto::{Hash, PublicKey};
    use ledger::tx::{StudyCriteria, StudyTerms};
    use ledger::types::loinc;

    fn study(codes: &[&str], min_days: u32) -> Study {
        Study {
            researcher: PublicKey([1; 32]),
            terms: StudyTerms {
                description: Cid::of(b"d"),
                study_key: AccountKeys::from_master_seed([9; 32]).encryption_key(),
                criteria: StudyCriteria {
                    loinc_codes: codes.iter().map(|c| LoincCode::new(c).unwrap()).collect(),
                    min_days,
                    data_range: TimeRange {
                        start: 0,
                        end: 10 * DAY_MS,
                    },
                },
                reward: 10,
                escrow: 100,
                ends_at: 20 * DAY_MS,
            },
            escrow_remaining: 100,
            participants: 0,
            paid: 0,
            status: StudyStatus::Open,
        }
    }

    fn batch(n: u8, codes: &[&str], start: TimeMs, lines: &[Vec<u8>]) -> (RecordId, DataCommitment) {
        (
            Hash([n; 32]),
            DataCommitment {
                patient: PublicKey([2; 32]),
                category: DataCategory::DeviceReadings,
                device: Some(PublicKey([3; 32])),
                author: None,
                cid: Cid::of(&[n]),
                readings_root: readings_root(lines),
                loinc_codes: codes.iter().map(|c| LoincCode::new(c).unwrap()).collect(),
                time_range: TimeRange {
                    start,
                    end: start + 60_000,
                },
                size: 1,
                reading_count: lines.len() as u32,
                committed_at: 1,
                erased_at: None,
            },
        )
    }

    #[test]
    fn a_patient_with_the_codes_on_enough_days_matches() {
        let s = study(&[loinc::GLUCOSE_CGM], 2);
        let data = vec![
            batch(1, &[loinc::GLUCOSE_CGM], DAY_MS, &[]),
            batch(2, &[loinc::GLUCOSE_CGM], DAY_MS + 1000, &[]),
            batch(3, &[loinc::GLUCOSE_CGM], 2 * DAY_MS, &[]),
            batch(4, &[loinc::HEART_RATE, loinc::SPO2], 2 * DAY_MS, &[]),
        ];
        let m = match_study(&s, &data, 0);
        assert_eq!(m.refusal, None);
        assert_eq!(m.days, 2);
        assert_eq!(m.evidence, vec![Hash([1; 32]), Hash([2; 32]), Hash([3; 32])]);
    }

    #[test]
    fn too_few_days_missing_codes_and_erased_data_are_refused_with_the_reason() {
        let s = study(&[loinc::GLUCOSE_CGM], 2);
        let one_day = vec![batch(1, &[loinc::GLUCOSE_CGM], DAY_MS, &[])];
        assert!(match_study(&s, &one_day, 0).refusal.unwrap().contains("1 day(s)"));
        let other = vec![batch(1, &[loinc::HEART_RATE], DAY_MS, &[])];
        assert!(match_study(&s, &other, 0)
            .refusal
            .unwrap()
            .contains("no batch of"));
        let mut erased = batch(1, &[loinc::GLUCOSE_CGM], DAY_MS, &[]);
        erased.1.erased_at = Some(5);
        assert!(match_study(&study(&[loinc::GLUCOSE_CGM], 1), &[erased], 0)
            .refusal
            .is_some());
        assert!(match_study(&s, &[], 0).refusal.is_some());
    }

    #[test]
    fn a_delivery_is_checked_batch_by_batch_against_the_chain() {
        let s = study(&[loinc::GLUCOSE_CGM], 1);
        let a = vec![b"{\"a\":1}".to_vec(), b"{\"a\":2}".to_vec()];
        let b = vec![b"{\"b\":1}".to_vec()];
        let (ida, ca) = batch(1, &[loinc::GLUCOSE_CGM], DAY_MS, &a);
        let (idb, cb) = batch(2, &[loinc::GLUCOSE_CGM], DAY_MS, &b);
        let originals: BTreeMap<_, _> = [(ida, ca), (idb, cb)].into_iter().collect();
        let manifest = |n: u32| {
            serde_json::to_vec(&Manifest {
                delivery: ManifestBody {
                    study: "00".into(),
                    batches: vec![
                        ManifestBatch {
                            commitment: ida.to_hex(),
                            lines: n,
                        },
                        ManifestBatch {
                            commitment: idb.to_hex(),
                            lines: 1,
                        },
                    ],
                },
            })
            .unwrap()
        };
        let patient = PublicKey([2; 32]);
        let good = [vec![manifest(2)], a.clone(), b.clone()].concat();
        assert_eq!(check_delivery(&s, &patient, &good, &originals).unwrap().len(), 3);
        // A changed reading no longer hashes to the committed root.
        let mut forged = good.clone();
        forged[1] = b"{\"a\":9}".to_vec();
        assert!(check_delivery(&s, &patient, &forged, &originals)
            .unwrap_err()
            .contains("Merkle root"));
        // Lines moved between batches fail too.
        let shifted = [vec![manifest(1)], a, b].concat();
        assert!(check_delivery(&s, &patient, &shifted, &originals).is_err());
        // Another patient's batch is refused.
        assert!(check_delivery(&s, &PublicKey([7; 32]), &good, &originals).is_err());
    }
}

//! Live readings: the newest data commitments of a patient, each blob read from the relay,
//! decrypted in the browser and checked against its commitment (CID, header, Merkle root of
//! the readings, count) before its values enter the charts.
//!
//! Memory is bounded: at most [`MAX_POINTS`] points per LOINC code within [`WINDOW_MS`] of the
//! newest, [`MAX_ROWS`] batch rows, [`MAX_SEEN`] remembered commitment ids.

use crate::api::{self, Proof};
use crate::envelope::Reading;
use crate::error::AppError;
use ledger::crypto::{AccountKeys, Address, PublicKey};
use ledger::state::keys::ListKind;
use ledger::state::records::DataCommitment;
use ledger::tx::ConsentScope;
use ledger::types::{DataCategory, Purpose, RecordId, TimeMs, TimeRange};
use leptos::prelude::*;
use std::collections::{BTreeMap, VecDeque};

pub const MAX_POINTS: usize = 1_000;
pub const WINDOW_MS: TimeMs = 24 * 3_600_000;
pub const MAX_ROWS: usize = 40;
pub const MAX_SEEN: usize = 512;
/// Newest commitments looked at per refresh.
pub const BATCHES_PER_REFRESH: u64 = 24;

/// One batch as the page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchRow {
    pub id: RecordId,
    pub device: Option<PublicKey>,
    pub codes: Vec<String>,
    pub range: TimeRange,
    pub count: u32,
    pub proof: Proof,
    /// Readings decrypted and matched against the commitment, or why not.
    pub outcome: Result<usize, String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct Readings {
    pub series: BTreeMap<String, VecDeque<(TimeMs, f64)>>,
    pub rows: VecDeque<BatchRow>,
    seen: VecDeque<RecordId>,
}

impl Readings {
    fn seen(&self, id: &RecordId) -> bool {
        self.seen.contains(id)
    }

    fn mark(&mut self, id: RecordId) {
        self.seen.push_back(id);
        while self.seen.len() > MAX_SEEN {
            self.seen.pop_front();
        }
    }

    fn add_row(&mut self, row: BatchRow) {
        self.rows.push_front(row);
        self.rows
            .make_contiguous()
            .sort_by_key(|row| std::cmp::Reverse(row.range.end));
        self.rows.truncate(MAX_ROWS);
    }

    fn add_points(&mut self, points: Vec<(String, TimeMs, f64)>) {
        for (code, t, v) in points {
            self.series.entry(code).or_default().push_back((t, v));
        }
        let newest = self
            .series
            .values()
            .filter_map(|s| s.iter().map(|p| p.0).max())
            .max()
            .unwrap_or(0);
        for series in self.series.values_mut() {
            let v = series.make_contiguous();
            v.sort_by_key(|p| p.0);
            let mut points: Vec<(TimeMs, f64)> = v.to_vec();
            points.dedup_by_key(|p| p.0);
            points.retain(|p| p.0 + WINDOW_MS >= newest);
            let skip = points.len().saturating_sub(MAX_POINTS);
            *series = points.into_iter().skip(skip).collect();
        }
    }

    /// The chart lines for `codes`, as (label, points).
    pub fn lines(&self, codes: &[&str]) -> Vec<crate::components::chart::Line> {
        codes
            .iter()
            .filter_map(|code| {
                let s = self.series.get(*code)?;
                Some((
                    crate::format::loinc_name(code),
                    s.iter().map(|&(t, v)| (t as f64, v)).collect(),
                ))
            })
            .collect()
    }
}

/// Who reads whose data, and under which terms.
#[derive(Clone, Debug)]
pub struct Reader {
    pub keys: AccountKeys,
    pub patient: Address,
    pub purpose: Purpose,
    /// The consent's scope; `None` for the patient's own data (or break-glass).
    pub scope: Option<ConsentScope>,
    /// Skip batches that start before this (a consent covers data sealed after it began).
    pub not_before: Option<TimeMs>,
}

/// Reads the commitments this page has not seen yet and adds their readings.
pub async fn refresh(readings: RwSignal<Readings>, reader: Reader) -> Result<(), AppError> {
    let patient = reader.patient;
    let (_, ids) = crate::lists::ids(ListKind::PatientCommitments, patient.0, BATCHES_PER_REFRESH).await?;
    let fresh: Vec<RecordId> = ids
        .iter()
        .filter(|id| readings.try_with_untracked(|r| !r.seen(id)).unwrap_or(false))
        .copied()
        .collect();
    // Oldest first, so the charts fill in time order.
    for id in fresh.into_iter().rev() {
        let verified = api::query(async |c| c.commitment(&id).await).await?;
        let proof = Proof::from(&verified);
        let Some(commitment) = verified.value else {
            readings.try_update(|r| r.mark(id));
            continue;
        };
        if !wanted(&commitment, reader.scope.as_ref())
            || reader.not_before.is_some_and(|t| commitment.time_range.start < t)
        {
            readings.try_update(|r| r.mark(id));
            continue;
        }
        let outcome = api::read_blob(&reader.keys, id, &commitment, reader.purpose).await;
        if matches!(outcome, Err(AppError::Http(_))) {
            // The relay is unreachable: try this batch again at the next refresh.
            outcome?;
            continue;
        }
        let points = match &outcome {
            Ok(lines) => points_of(lines),
            Err(_) => Vec::new(),
        };
        let row = BatchRow {
            id,
            device: commitment.device,
            codes: commitment
                .loinc_codes
                .iter()
                .map(|c| c.as_str().to_string())
                .collect(),
            range: commitment.time_range,
            count: commitment.reading_count,
            proof,
            outcome: outcome.map(|lines| lines.len()).map_err(|e| e.to_string()),
        };
        let alive = readings.try_update(|r| {
            r.mark(id);
            r.add_row(row);
            r.add_points(points);
        });
        if alive.is_none() {
            // The view is gone.
            return Ok(());
        }
    }
    Ok(())
}

/// Asks the relay for one batch again (a row's "read again"): the outcome replaces the row's.
/// An erased batch is requested too, so the relay's refusal is what the row shows.
pub async fn reread(readings: RwSignal<Readings>, reader: Reader, id: RecordId) -> Result<(), AppError> {
    let verified = api::query(async |c| c.commitment(&id).await).await?;
    let proof = Proof::from(&verified);
    let Some(commitment) = verified.value else {
        return Err(AppError::Input("the batch is not on chain".into()));
    };
    let outcome = api::read_blob(&reader.keys, id, &commitment, reader.purpose)
        .await
        .map(|lines| lines.len())
        .map_err(|e| match commitment.erased_at {
            Some(at) => format!(
                "{e} (erased on chain at {}, proven at height {})",
                crate::format::time(at),
                proof.height
            ),
            None => e.to_string(),
        });
    readings.try_update(|r| {
        if let Some(row) = r.rows.iter_mut().find(|row| row.id == id) {
            row.outcome = outcome;
            row.proof = proof;
        }
    });
    Ok(())
}

fn wanted(c: &DataCommitment, scope: Option<&ConsentScope>) -> bool {
    c.category == DataCategory::DeviceReadings
        && c.erased_at.is_none()
        && scope.is_none_or(|s| ledger::access::scope_covers(s, c))
}

fn points_of(lines: &[Vec<u8>]) -> Vec<(String, TimeMs, f64)> {
    lines
        .iter()
        .filter_map(|line| Reading::parse(line))
        .filter_map(|r| Some((r.time_ms()?, r)))
        .flat_map(|(t, r)| r.values().into_iter().map(move |(code, v)| (code, t, v)))
        .collect()
}

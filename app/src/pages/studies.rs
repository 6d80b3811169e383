//! The patient's research studies: open studies (verified list), whether the patient's data
//! matches each one and why not, join (research consent + `JoinStudy`), deliver, and the
//! reward paid. See [`crate::study`] for what each step does.

use crate::api::{self, Proof};
use crate::components::{render, VerifiedMark};
use crate::error::AppError;
use crate::format;
use crate::keys::Identity;
use crate::lists;
use crate::pages::common::{TxMessage, TxOutcome};
use crate::state::{use_state, AppState};
use crate::study::{self, Description, Match};
use ledger::crypto::AccountKeys;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::{DataCommitment, Participation, Study, StudyStatus};
use ledger::types::RecordId;
use leptos::prelude::*;

/// Newest studies listed.
pub const STUDIES_SHOWN: u64 = 20;
/// Newest commitments looked at when matching (the evidence limit is 64).
pub const COMMITMENTS_SCANNED: u64 = 128;

#[derive(Clone, Debug, PartialEq)]
struct Row {
    id: RecordId,
    study: Study,
    participation: Option<Participation>,
    proof: Proof,
    matched: Match,
    description: Option<Description>,
}

/// The study's codes, named.
pub fn codes_text(study: &Study) -> String {
    study
        .terms
        .criteria
        .loinc_codes
        .iter()
        .map(|c| format::loinc_name(c.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the study asks for, in one line.
pub fn criteria_text(study: &Study) -> String {
    let c = &study.terms.criteria;
    format!(
        "{} on ≥ {} day(s), data from {} to {}",
        codes_text(study),
        c.min_days,
        format::time(c.data_range.start),
        format::time(c.data_range.end)
    )
}

pub fn title_of(id: &RecordId, description: &Option<Description>) -> String {
    description.as_ref().map_or_else(
        || format!("study {}", format::short_hash(id)),
        |d| d.title.clone(),
    )
}

/// Reports a step of a running action.
pub type Progress = std::rc::Rc<dyn Fn(String)>;

/// Runs one multi-step action, reporting each step into `out`; one at a time per form.
pub fn act<F>(out: TxOutcome, what: &'static str, job: impl FnOnce(Progress) -> F)
where
    F: std::future::Future<Output = Result<String, AppError>> + 'static,
{
    if out
        .get_untracked()
        .is_some_and(|o| o.is_ok_and(|m| m.ends_with('…')))
    {
        return;
    }
    out.set(Some(Ok(format!("{what}: starting…"))));
    let progress: Progress = std::rc::Rc::new(move |m: String| {
        let _ = out.try_set(Some(Ok(format!("{what}: {m}"))));
    });
    let job = job(progress);
    leptos::task::spawn_local(async move {
        let outcome = job.await;
        let _ = out.try_set(Some(outcome.map_err(|e| format!("{what} failed: {e}"))));
    });
}

#[component]
pub fn PatientStudies(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let data = LocalResource::new(move || {
        state.refresh.track();
        async move {
            let (proof, studies) =
                lists::records::<Study>(ListKind::Studies, [0; 32], STUDIES_SHOWN, keys::study, false)
                    .await?;
            let now = api::now_ms();
            let commitments = if studies.iter().any(|(_, s)| s.status == StudyStatus::Open) {
                lists::records::<DataCommitment>(
                    ListKind::PatientCommitments,
                    address.0,
                    COMMITMENTS_SCANNED,
                    keys::commitment,
                    true,
                )
                .await?
                .1
            } else {
                Vec::new()
            };
            let mut rows = Vec::new();
            for (id, s) in studies {
                let part = api::query(async |c| c.participation(&id, &address).await).await?;
                if s.status == StudyStatus::Closed && part.value.is_none() {
                    continue;
                }
                rows.push(Row {
                    id,
                    matched: study::match_study(&s, &commitments, now),
                    description: study::description(&id, &s.terms.description).await,
                    proof: Proof::from(&part),
                    participation: part.value,
                    study: s,
                });
            }
            Ok::<_, AppError>((proof, rows))
        }
    });
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    view! {
        <section data-testid="studies">
            <h2>"Research studies"</h2>
            <p class="muted">"Join a study by consenting to research use of the data it asks for; delivering it pays the reward from the study's escrow. Studies you cannot join say why."</p>
            {move || render(data.get(), |(proof, rows)| {
                let keys = keys.clone();
                let items = rows.into_iter().map(|row| study_row(state, keys.clone(), row, out)).collect_view();
                view! {
                    <p class="muted">"Studies on chain " <VerifiedMark proof=proof /></p>
                    <table>
                        <thead><tr><th>"study"</th><th>"asks for"</th><th>"reward"</th><th>"escrow left"</th><th>"your data"</th><th>"you"</th></tr></thead>
                        <tbody>{items}</tbody>
                    </table>
                }
            })}
            <TxMessage out=out />
        </section>
    }
}

fn study_row(state: AppState, keys: AccountKeys, row: Row, out: TxOutcome) -> impl IntoView {
    let Row {
        id,
        study,
        participation,
        proof,
        matched,
        description,
    } = row;
    let title = title_of(&id, &description);
    let purpose = description.map(|d| d.purpose).unwrap_or_default();
    let open = study.status == StudyStatus::Open && api::now_ms() < study.terms.ends_at;
    let data_text = match &matched.refusal {
        None => format!(
            "matches: {} batches on {} day(s)",
            matched.evidence.len(),
            matched.days
        ),
        Some(why) => format!("does not match: {why}"),
    };
    let reward = study.terms.reward;
    let action = match participation {
        Some(p) if p.paid > 0 => view! {
            <span data-testid="study-paid">"✔ delivered · reward " {p.paid} " paid " <VerifiedMark proof=proof /></span>
        }
        .into_any(),
        Some(_) if open => {
            let study = study.clone();
            let evidence = matched.records.clone();
            let deliver = move |_| {
                let (keys, study, evidence) = (keys.clone(), study.clone(), evidence.clone());
                act(out, "deliver", move |progress| async move {
                    let cid = study::deliver(&keys, id, &study, &evidence, state, move |m| progress(m)).await?;
                    Ok(format!(
                        "delivered {} batches (delivery blob {}); the reward of {reward} is released to you",
                        evidence.len(),
                        format::short(&cid.to_text())
                    ))
                });
            };
            view! {
                <span data-testid="study-joined">"joined " <VerifiedMark proof=proof /></span>
                " " <button data-testid="deliver-study" disabled=matched.evidence.is_empty() on:click=deliver>"Deliver data"</button>
            }
            .into_any()
        }
        Some(_) => view! { <span>"joined; the study closed before your delivery"</span> }.into_any(),
        None => {
            let refusal = matched.refusal.clone();
            let can = refusal.is_none();
            let study = study.clone();
            let evidence = matched.evidence.clone();
            let join = move |_| {
                let (keys, study, evidence) = (keys.clone(), study.clone(), evidence.clone());
                act(out, "join study", move |progress| async move {
                    let height = study::join(&keys, id, &study, evidence, state, move |m| progress(m)).await?;
                    Ok(format!("joined: included in verified block #{height}"))
                });
            };
            view! {
                <button data-testid="join-study" disabled=!can on:click=join>"Join"</button>
                {refusal.map(|r| view! { <div class="muted small" data-testid="join-reason">"cannot join: " {r}</div> })}
            }
            .into_any()
        }
    };
    view! {
        <tr data-testid="study-row" data-study=id.to_hex()>
            <td><b data-testid="study-title">{title}</b><div class="muted small">{purpose}</div></td>
            <td>{criteria_text(&study)}</td>
            <td>{reward}</td>
            <td data-testid="study-escrow">{study.escrow_remaining}</td>
            <td data-testid="study-match">{data_text}</td>
            <td>{action}</td>
        </tr>
    }
}

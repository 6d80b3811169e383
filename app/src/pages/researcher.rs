//! The researcher's view: open a study (its key made in this browser), the researcher's
//! studies with escrow, participants (pseudonymous: short addresses) and payments, the
//! dataset as FHIR NDJSON (every delivery checked against the chain), closing a study.

use crate::api::{self, Proof};
use crate::components::{render, ErrorBox, VerifiedMark};
use crate::error::AppError;
use crate::format;
use crate::keys::{self, Identity};
use crate::lists;
use crate::pages::common::{TxMessage, TxOutcome};
use crate::pages::patient::{AccountCard, SCOPE_CODES};
use crate::pages::studies::{act, criteria_text, title_of};
use crate::state::{use_state, AppState};
use crate::study::{self, Description};
use ledger::crypto::{AccountKeys, Address};
use ledger::state::keys::{self as state_keys, ListKind};
use ledger::state::records::{Participation, Study, StudyStatus};
use ledger::tx::{Action, StudyCriteria, StudyTerms};
use ledger::types::{loinc, LoincCode, RecordId, TimeRange, DAY_MS};
use leptos::prelude::*;
use std::collections::HashMap;

#[component]
pub fn ResearcherPage() -> impl IntoView {
    let state = use_state();
    // Keyed on the identity itself (its equality ignores study keys), so adding a study key
    // does not rebuild the view under a running action.
    let me = Memo::new(move |_| state.identity());
    move || match me.get() {
        None => view! { <ErrorBox error=AppError::NoIdentity /> }.into_any(),
        Some(me) => view! { <ResearcherView me=me /> }.into_any(),
    }
}

#[component]
fn ResearcherView(me: Identity) -> impl IntoView {
    view! {
        <div class="page researcher" data-testid="researcher-view">
            <AccountCard me=me.clone() />
            <OpenStudy me=me.clone() />
            <MyStudies me=me />
        </div>
    }
}

/// The active identity as stored now (with every study key).
fn current(state: AppState, me: &Identity) -> Option<Identity> {
    let address = me.address_hex();
    state
        .identities
        .with_untracked(|l| l.iter().find(|i| i.address_hex() == address).cloned())
}

/// Makes a study key and stores it with the identity (IndexedDB) before anything is sent.
async fn new_study_key(state: AppState, me: &Identity) -> Result<AccountKeys, AppError> {
    let mut seed = [0u8; 32];
    getrandom02::getrandom(&mut seed).map_err(|e| AppError::Keys(format!("no randomness: {e}")))?;
    let address = me.address_hex();
    state.identities.update(|list| {
        if let Some(i) = list.iter_mut().find(|i| i.address_hex() == address) {
            i.study_seeds.push(seed);
        }
    });
    keys::save(&state.identities.get_untracked()).await?;
    Ok(AccountKeys::from_master_seed(seed))
}

fn number(text: &str, what: &str) -> Result<f64, AppError> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite() && *n >= 0.0)
        .ok_or_else(|| AppError::Input(format!("{what} must be a number ≥ 0")))
}

#[component]
fn OpenStudy(me: Identity) -> impl IntoView {
    let state = use_state();
    let title = RwSignal::new(String::from("Glucose variability"));
    let purpose = RwSignal::new(String::from("How CGM glucose varies across the day"));
    let codes = RwSignal::new(vec![loinc::GLUCOSE_CGM]);
    let min_days = RwSignal::new(String::from("1"));
    let from_days = RwSignal::new(String::from("7"));
    let until_days = RwSignal::new(String::from("30"));
    let reward = RwSignal::new(String::from("100"));
    let escrow = RwSignal::new(String::from("1000"));
    let ends_days = RwSignal::new(String::from("30"));
    let out: TxOutcome = RwSignal::new(None);
    let open = move |_| {
        let me = me.clone();
        act(out, "open study", move |progress| async move {
            let description = Description {
                title: title.get_untracked().trim().to_string(),
                purpose: purpose.get_untracked().trim().to_string(),
            };
            if description.title.is_empty()
                || description.title.chars().count() > study::MAX_DESCRIPTION_CHARS
                || description.purpose.chars().count() > study::MAX_DESCRIPTION_CHARS
            {
                return Err(AppError::Input(format!(
                    "a study needs a title; title and purpose have at most {} characters",
                    study::MAX_DESCRIPTION_CHARS
                )));
            }
            let mut loinc_codes: Vec<LoincCode> = codes
                .get_untracked()
                .iter()
                .filter_map(|c| LoincCode::new(c).ok())
                .collect();
            loinc_codes.sort();
            loinc_codes.dedup();
            if loinc_codes.is_empty() {
                return Err(AppError::Input("choose at least one vital sign".into()));
            }
            let now = api::now_ms();
            let day = |n: f64| (n * DAY_MS as f64) as u64;
            let min_days = number(&min_days.get_untracked(), "minimum days")? as u32;
            let start = now.saturating_sub(day(number(&from_days.get_untracked(), "data from")?));
            let end = now + day(number(&until_days.get_untracked(), "data until")?);
            let reward = number(&reward.get_untracked(), "reward")? as u64;
            let escrow = number(&escrow.get_untracked(), "escrow")? as u64;
            let ends_at = now + day(number(&ends_days.get_untracked(), "ends in")?);
            if reward == 0 || escrow < reward {
                return Err(AppError::Input(
                    "the escrow must fund at least one positive reward".into(),
                ));
            }
            progress("making the study key (kept with your keys in this browser)…".into());
            let study_key = new_study_key(state, &me).await?;
            progress("storing the public description…".into());
            let description = study::publish_description(&description).await?;
            progress("opening the study (escrow leaves your balance)…".into());
            let terms = StudyTerms {
                description,
                study_key: study_key.encryption_key(),
                criteria: StudyCriteria {
                    loinc_codes,
                    min_days,
                    data_range: TimeRange { start, end },
                },
                reward,
                escrow,
                ends_at,
            };
            let included = api::submit(&me.keys, Action::OpenStudy(terms), state).await?;
            Ok(format!(
                "study opened: included in verified block #{}",
                included.height
            ))
        });
    };
    let text = |label: &'static str, id: &'static str, sig: RwSignal<String>, size: &'static str| {
        view! {
            <label>{label} " " <input data-testid=id size=size prop:value=move || sig.get() on:input:target=move |ev| sig.set(ev.target().value()) /></label>
        }
    };
    view! {
        <section class="form" data-testid="open-study-form">
            <h2>"Open a study"</h2>
            <p class="muted">"Title and purpose are stored off chain as a public description (its CID goes on chain). The study key is made in this browser and kept with your keys (export a backup): only it opens the data patients deliver."</p>
            {text("title", "study-title-input", title, "40")}
            {text(" purpose", "study-purpose-input", purpose, "50")}
            <div>"vital signs " {SCOPE_CODES.iter().map(|&(code, name)| view! {
                <label class="check"><input type="checkbox" data-testid=format!("study-code-{code}")
                    prop:checked=move || codes.with(|c| c.contains(&code))
                    on:change:target=move |ev| {
                        let on = ev.target().checked();
                        let group: &[&'static str] = if code == loinc::BLOOD_PRESSURE_PANEL {
                            &[loinc::BLOOD_PRESSURE_PANEL, loinc::SYSTOLIC_BP, loinc::DIASTOLIC_BP]
                        } else {
                            std::slice::from_ref(&code)
                        };
                        codes.update(|c| { c.retain(|x| !group.contains(x)); if on { c.extend_from_slice(group); } });
                    } />{name}</label>
            }).collect_view()}</div>
            <div>
                {text("min days of data", "study-min-days", min_days, "3")}
                {text(" data from (days ago)", "study-from-days", from_days, "4")}
                {text(" data until (days ahead)", "study-until-days", until_days, "4")}
            </div>
            <div>
                {text("reward per contributor", "study-reward", reward, "8")}
                {text(" escrow", "study-escrow", escrow, "10")}
                {text(" ends in (days)", "study-ends-days", ends_days, "4")}
            </div>
            <button data-testid="open-study" on:click=open>"Open study"</button>
            <TxMessage out=out />
        </section>
    }
}

#[derive(Clone, Debug, PartialEq)]
struct MyStudy {
    id: RecordId,
    study: Study,
    description: Option<Description>,
    participants: Vec<(Address, Option<Participation>)>,
    proof: Proof,
}

#[component]
fn MyStudies(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let data = LocalResource::new(move || {
        state.refresh.track();
        async move {
            let (proof, studies) =
                lists::records::<Study>(ListKind::Studies, [0; 32], 50, state_keys::study, false).await?;
            let mut out = Vec::new();
            for (id, s) in studies.into_iter().filter(|(_, s)| s.researcher == address) {
                let (_, ids) = lists::ids(ListKind::StudyParticipants, id.0, 200).await?;
                let mut participants = Vec::new();
                for p in ids {
                    let patient = ledger::crypto::PublicKey(p.0);
                    let part = api::query(async |c| c.participation(&id, &patient).await).await?;
                    participants.push((patient, part.value));
                }
                out.push(MyStudy {
                    id,
                    description: study::description(&id, &s.terms.description).await,
                    study: s,
                    participants,
                    proof,
                });
            }
            Ok::<_, AppError>(out)
        }
    });
    // Created under this component's owner, not the list's: the list rebuilds its cards on
    // every refresh, and a card's running download must find its signals alive afterwards.
    let owner = Owner::current();
    let cards = StoredValue::new(HashMap::<RecordId, CardState>::new());
    let card_state = move |id: RecordId| {
        if let Some(ui) = cards.with_value(|m| m.get(&id).copied()) {
            return ui;
        }
        let make = || CardState {
            out: RwSignal::new(None),
            dataset: RwSignal::new(None),
        };
        let ui = owner.as_ref().map_or_else(make, |o| o.with(make));
        cards.update_value(|m| {
            m.insert(id, ui);
        });
        ui
    };
    view! {
        <section data-testid="my-studies">
            <h2>"Your studies"</h2>
            {move || render(data.get(), |list| {
                if list.is_empty() {
                    return view! { <p class="muted">"You have opened no study yet."</p> }.into_any();
                }
                let me = me.clone();
                list.into_iter()
                    .map(|s| {
                        let ui = card_state(s.id);
                        view! { <StudyCard me=me.clone() s=s ui=ui /> }
                    })
                    .collect_view()
                    .into_any()
            })}
        </section>
    }
}

/// What a study's card shows of its own actions (their outcome, the fetched dataset); kept by
/// the list so that it outlives the card, which is rebuilt whenever the list refreshes.
#[derive(Clone, Copy)]
struct CardState {
    out: TxOutcome,
    dataset: RwSignal<Option<study::Dataset>>,
}

#[component]
fn StudyCard(me: Identity, s: MyStudy, ui: CardState) -> impl IntoView {
    let state = use_state();
    let MyStudy {
        id,
        study,
        description,
        participants,
        proof,
    } = s;
    let CardState { out, dataset } = ui;
    let file = format!("study-{}.ndjson", &id.to_hex()[..12]);
    let open = study.status == StudyStatus::Open;
    let rows = participants
        .iter()
        .map(|(p, part)| {
            let (delivered, paid) = match part {
                Some(p) => (
                    p.delivery.map_or("not yet".to_string(), |c| format!("blob {}", format::short(&c.to_text()))),
                    p.paid,
                ),
                None => ("—".to_string(), 0),
            };
            view! {
                <tr data-testid="contributor-row">
                    <td><code title="pseudonymous: the patient's public key">{format::short(&p.to_hex())}</code></td>
                    <td>{part.as_ref().map(|p| format::time(p.joined_at))}</td>
                    <td>{delivered}</td>
                    <td data-testid="contributor-paid">{paid}</td>
                </tr>
            }
        })
        .collect_view();
    let download = {
        let me = me.clone();
        let study = study.clone();
        let file = file.clone();
        move |_| {
            let (me, study, file) = (me.clone(), study.clone(), file.clone());
            act(out, "dataset", move |progress| async move {
                let holder = current(state, &me).ok_or(AppError::NoIdentity)?;
                let study_key = holder
                    .study_keys()
                    .into_iter()
                    .find(|k| k.encryption_key() == study.terms.study_key)
                    .ok_or_else(|| {
                        AppError::Keys(
                            "this browser holds no key for this study: import the key backup made after opening it".into(),
                        )
                    })?;
                let set = study::dataset(&me.keys, &study_key, id, &study, move |m| progress(m)).await?;
                let summary = format!(
                    "{} Observations from {} contributor(s), every batch checked against its commitment{}",
                    set.ndjson.lines().count(),
                    set.contributions.len(),
                    if set.problems.is_empty() {
                        String::new()
                    } else {
                        format!("; {} delivery(ies) refused", set.problems.len())
                    }
                );
                // Saved at once through a detached link: the card may have been rebuilt while
                // the dataset was fetched. The card's own link stays for another copy.
                save_file(&file, &ndjson_url(&set.ndjson))?;
                let _ = dataset.try_set(Some(set));
                Ok(summary)
            });
        }
    };
    let close = {
        let keys = me.keys.clone();
        move |_| {
            let keys = keys.clone();
            act(out, "close study", move |_| async move {
                let included = api::submit(&keys, Action::CloseStudy { study: id }, state).await?;
                Ok(format!(
                    "study closed, leftover escrow returned: included in verified block #{}",
                    included.height
                ))
            });
        }
    };
    view! {
        <div class="study" data-testid="my-study" data-study=id.to_hex()>
            <h3><span data-testid="my-study-title">{title_of(&id, &description)}</span> " "
                <span class="muted">{if open { "open" } else { "closed" }}</span> " " <VerifiedMark proof=proof /></h3>
            <p class="muted">{description.map(|d| d.purpose)}</p>
            <p>{criteria_text(&study)} " · ends " {format::time(study.terms.ends_at)}</p>
            <p>"reward " {study.terms.reward} " · escrow " {study.terms.escrow}
               " · escrow remaining " <b data-testid="escrow-remaining">{study.escrow_remaining}</b>
               " · participants " <b data-testid="participants">{study.participants}</b>
               " · paid " <b data-testid="paid-count">{study.paid}</b></p>
            <table>
                <thead><tr><th>"contributor"</th><th>"joined"</th><th>"delivery"</th><th>"paid"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <button data-testid="download-dataset" on:click=download>"Download dataset"</button>
            {open.then(|| view! { " " <button data-testid="close-study" on:click=close>"Close study"</button> })}
            {move || dataset.with(|d| d.as_ref().map(|d| {
                let problems = d.problems.iter().map(|p| view! { <li class="bad">{p.clone()}</li> }).collect_view();
                let by = d.contributions.iter().map(|c| format!("{} ({} Observations)", format::short(&c.patient.to_hex()), c.observations)).collect::<Vec<_>>().join(", ");
                view! {
                    " " <a data-testid="dataset-link" download=file.clone() href=ndjson_url(&d.ndjson)>
                        "save the dataset again (FHIR NDJSON)"
                    </a>
                    <p data-testid="dataset-summary">"dataset: " {d.ndjson.lines().count()} " Observations · contributors " {by}</p>
                    <ul>{problems}</ul>
                }
            }))}
            <TxMessage out=out />
        </div>
    }
}

fn ndjson_url(ndjson: &str) -> String {
    format!(
        "data:application/x-ndjson;charset=utf-8,{}",
        String::from(js_sys::encode_uri_component(ndjson))
    )
}

/// Hands `url` to the browser as a download named `file`, through a link that lives only
/// for the click.
fn save_file(file: &str, url: &str) -> Result<(), AppError> {
    use wasm_bindgen::JsCast;
    let fail = |e| AppError::Browser(AppError::js(&format!("could not save {file}"), e));
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| AppError::Browser("no document".into()))?;
    let body = document
        .body()
        .ok_or_else(|| AppError::Browser("no document body".into()))?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a").map_err(fail)?.unchecked_into();
    a.set_href(url);
    a.set_download(file);
    body.append_child(&a).map_err(fail)?;
    a.click();
    a.remove();
    Ok(())
}

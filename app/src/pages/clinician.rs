//! The clinician's view: patients who consented (verified consents naming this account),
//! their readings within each consent's scope, a note for a patient, and break-glass.

use crate::api;
use crate::components::{render, ErrorBox, VerifiedMark};
use crate::error::AppError;
use crate::format;
use crate::keys::Identity;
use crate::pages::common::{name_of, parse_address, send, TxMessage, TxOutcome};
use crate::pages::patient::AccountCard;
use crate::pages::readings::ReadingsPanel;
use crate::readings::Reader;
use crate::state::use_state;
use ledger::crypto::Address;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::Consent;
use ledger::tx::{Action, EmergencyReason};
use ledger::types::{AccessLevel, Purpose, RecordId};
use leptos::prelude::*;

#[component]
pub fn ClinicianPage() -> impl IntoView {
    let state = use_state();
    move || match state.identity() {
        None => view! { <ErrorBox error=AppError::NoIdentity /> }.into_any(),
        Some(me) => view! { <ClinicianView me=me /> }.into_any(),
    }
}

/// Which patient's data is open, and on what basis.
#[derive(Clone, Debug, PartialEq)]
enum Open {
    Consent(RecordId, Box<Consent>),
    Emergency(Address),
}

#[component]
fn ClinicianView(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let consents = LocalResource::new(move || {
        state.refresh.track();
        async move {
            crate::lists::records::<Consent>(ListKind::GranteeConsents, address.0, 20, keys::consent, false)
                .await
        }
    });
    let open = RwSignal::new(None::<Open>);
    // Close a patient whose consent is no longer active (revoked or expired).
    Effect::new(move |_| {
        if let (Some(Open::Consent(id, _)), Some(Ok((_, list)))) = (open.get_untracked(), consents.get()) {
            let now = api::now_ms();
            let still = list.iter().any(|(cid, c)| *cid == id && c.is_active_at(now));
            if !still {
                open.set(None);
            }
        }
    });
    let keys = me.keys.clone();
    view! {
        <div class="page clinician" data-testid="clinician-view">
            <AccountCard me=me.clone() />
            <section data-testid="my-patients">
                <h2>"Patients who consented"</h2>
                {move || render(consents.get(), |(proof, list)| {
                    let now = api::now_ms();
                    let rows = list.into_iter().map(|(id, c)| {
                        let active = c.is_active_at(now);
                        let scope = if c.terms.scope.loinc_codes.is_empty() { "all data".to_string() } else {
                            c.terms.scope.loinc_codes.iter().map(|l| format::loinc_name(l.as_str())).collect::<Vec<_>>().join(", ")
                        };
                        let status = if c.revoked_at.is_some() { "revoked" } else if active { "active" } else { "expired" };
                        let patient = c.patient;
                        let consent = c.clone();
                        view! {
                            <tr class:inactive=!active data-testid="patient-row">
                                <td>{name_of(state, &patient)}</td>
                                <td>{format!("{:?}", c.terms.purpose)} " · " {format!("{:?}", c.terms.access)}</td>
                                <td>{scope}</td>
                                <td>{c.terms.valid_until.map_or("no expiry".to_string(), format::time)}</td>
                                <td data-testid="patient-consent-status">{status}</td>
                                <td>{active.then(|| view! {
                                    <button data-testid="open-patient" on:click=move |_| open.set(Some(Open::Consent(id, Box::new(consent.clone()))))>"Open readings"</button>
                                })}</td>
                            </tr>
                        }
                    }).collect_view();
                    view! {
                        <p class="muted">"Consents naming you " <VerifiedMark proof=proof /></p>
                        <table><thead><tr><th>"patient"</th><th>"purpose"</th><th>"scope"</th><th>"until"</th><th>"status"</th><th></th></tr></thead>
                        <tbody>{rows}</tbody></table>
                    }
                })}
            </section>
            {move || open.get().map(|o| {
                let keys = keys.clone();
                let (patient, purpose, scope, annotate, basis) = match &o {
                    Open::Consent(id, c) => (c.patient, c.terms.purpose, Some(c.terms.scope.clone()),
                        c.terms.access == AccessLevel::ReadAndAnnotate, format!("consent {}", format::short_hash(id))),
                    Open::Emergency(p) => (*p, Purpose::Emergency, None, false, "break-glass (emergency)".to_string()),
                };
                let not_before = match &o {
                    Open::Consent(_, c) => Some(c.terms.valid_from),
                    Open::Emergency(_) => None,
                };
                let reader = Reader { keys: keys.clone(), patient, purpose, scope, not_before };
                view! {
                    <section data-testid="patient-readings">
                        <h2>"Readings of " {name_of(state, &patient)}</h2>
                        <p class="muted">"Read under " {basis} "; only batches the basis covers are requested. Each read is recorded in the patient's access log."</p>
                        <ReadingsPanel reader=reader />
                        {annotate.then(|| view! { <NoteForm me=keys.clone() patient=patient /> })}
                    </section>
                }
            })}
            <BreakGlass me=me open=open />
        </div>
    }
}

#[component]
fn NoteForm(me: ledger::crypto::AccountKeys, patient: Address) -> impl IntoView {
    let state = use_state();
    let text = RwSignal::new(String::new());
    let out: TxOutcome = RwSignal::new(None);
    let write = move |_| {
        let me = me.clone();
        let note = text.get_untracked();
        out.set(Some(Ok(
            "note: sealing for the patient, storing, committing…".into()
        )));
        leptos::task::spawn_local(async move {
            let outcome = crate::notes::write(&me, patient, &note, state).await;
            let _ = out.try_set(Some(
                outcome
                    .map(|cid| format!("note committed (blob {})", format::short(&cid.to_text())))
                    .map_err(|e| format!("note failed: {e}")),
            ));
        });
    };
    view! {
        <div class="form note" data-testid="note-form">
            <h3>"Write a note"</h3>
            <textarea rows="3" cols="70" data-testid="note-text" prop:value=move || text.get() on:input:target=move |ev| text.set(ev.target().value())></textarea>
            <br /><button data-testid="write-note" on:click=write>"Encrypt for the patient and commit"</button>
            <TxMessage out=out />
        </div>
    }
}

#[component]
fn BreakGlass(me: Identity, open: RwSignal<Option<Open>>) -> impl IntoView {
    let state = use_state();
    let patient = RwSignal::new(String::new());
    let reason = RwSignal::new(String::from("LifeThreatening"));
    let minutes = RwSignal::new(String::from("60"));
    let out: TxOutcome = RwSignal::new(None);
    let keys = me.keys.clone();
    let patients = move || {
        state.identities.with(|list| {
            list.iter()
                .filter(|i| i.role == "patient")
                .map(|i| (i.name.clone(), i.address_hex()))
                .collect::<Vec<_>>()
        })
    };
    let go = move |_| {
        let address = match parse_address(&patient.get_untracked()) {
            Ok(a) => a,
            Err(e) => return out.set(Some(Err(format!("break-glass: {e}")))),
        };
        let reason = match reason.get_untracked().as_str() {
            "Unconscious" => EmergencyReason::Unconscious,
            "UnableToConsent" => EmergencyReason::UnableToConsent,
            "Other" => EmergencyReason::Other,
            _ => EmergencyReason::LifeThreatening,
        };
        let Ok(minutes) = minutes.get_untracked().trim().parse::<u64>() else {
            return out.set(Some(Err("break-glass: duration in whole minutes".into())));
        };
        send(
            state,
            keys.clone(),
            Action::OpenBreakGlass {
                patient: address,
                reason,
                duration_ms: minutes * 60_000,
            },
            "break-glass",
            out,
        );
        open.set(Some(Open::Emergency(address)));
    };
    view! {
        <section class="break-glass" data-testid="break-glass-form">
            <h2>"Emergency access (break-glass)"</h2>
            <p class="muted">"Opens time-limited access without consent. It is always audited and shown to the patient first."</p>
            <label>"patient "
                <select data-testid="break-glass-patient" on:change:target=move |ev| patient.set(ev.target().value())>
                    <option value="">"— choose —"</option>
                    {move || patients().into_iter().map(|(n, a)| view! { <option value=a.clone()>{n}</option> }).collect_view()}
                </select>
                " or address " <input size="40" prop:value=move || patient.get() on:input:target=move |ev| patient.set(ev.target().value()) />
            </label>
            <label>" reason "
                <select on:change:target=move |ev| reason.set(ev.target().value())>
                    <option value="LifeThreatening">"life-threatening"</option>
                    <option value="Unconscious">"unconscious"</option>
                    <option value="UnableToConsent">"unable to consent"</option>
                    <option value="Other">"other"</option>
                </select>
            </label>
            <label>" for (minutes) " <input size="5" prop:value=move || minutes.get() on:input:target=move |ev| minutes.set(ev.target().value()) /></label>
            <button class="danger" data-testid="open-break-glass" on:click=go>"Open break-glass"</button>
            <TxMessage out=out />
        </section>
    }
}

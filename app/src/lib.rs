//! The Medledger dashboard (DESIGN §7): a Leptos client-side app that embeds the light
//! client. It finds the relay that served it, verifies the chain from genesis (or from the
//! trust stored in IndexedDB), follows new heads, and shows every chain value with the proof
//! it was checked against. Keys are made and kept in the browser.
//!
//! Layout: [`api`] wraps the light client and the relay's HTTP routes; [`pages`] holds the
//! views (patient, clinician, researcher, keys); [`components`] the shared widgets (status
//! bar, proof mark, charts); [`readings`] the windowed store of decrypted readings; [`study`]
//! research studies (open, match, join, deliver, dataset).

// `AppError` carries the light client's error (which names the relay and the refused check)
// to show it to the user; it is returned once per user action, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod components;
pub mod envelope;
pub mod error;
pub mod format;
pub mod http;
pub mod idb;
pub mod keys;
pub mod lists;
pub mod notes;
pub mod pages;
pub mod readings;
pub mod source;
pub mod state;
pub mod study;

use components::StatusBar;
use leptos::prelude::*;
use pages::clinician::ClinicianPage;
use pages::keys::KeysPage;
use pages::patient::PatientPage;
use pages::researcher::ResearcherPage;
use state::{AppState, Page};

/// Loads the stored keys, then connects; both report into the state.
async fn boot(state: AppState) {
    match keys::load().await {
        Ok(list) => {
            let saved = web_sys::window()
                .and_then(|w| w.local_storage().ok().flatten())
                .and_then(|s| s.get_item("medledger-active").ok().flatten())
                .and_then(|s| s.parse::<usize>().ok());
            let active = saved
                .filter(|i| *i < list.len())
                .or((!list.is_empty()).then_some(0));
            if let Some(identity) = active.and_then(|i| list.get(i)) {
                match identity.role.as_str() {
                    "clinician" => state.page.set(Page::Clinician),
                    "researcher" => state.page.set(Page::Researcher),
                    _ => {}
                }
            } else {
                state.page.set(Page::Keys);
            }
            state.identities.set(list);
            state.active.set(active);
        }
        Err(e) => {
            state.page.set(Page::Keys);
            state.sync_error.set(Some(e.to_string()));
        }
    }
    api::start(state).await;
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    leptos::task::spawn_local(boot(state));
    let tab = move |page: Page, label: &'static str, id: &'static str| {
        view! {
            <button class="tab" class:selected=move || state.page.get() == page data-testid=id
                on:click=move |_| state.page.set(page)>{label}</button>
        }
    };
    let who = move || {
        state.identity().map(|i| {
            view! { <span class="who" data-testid="who">"acting as " <b>{i.name.clone()}</b> " " <code>{format::short(&i.address_hex())}</code></span> }
        })
    };
    view! {
        <StatusBar />
        <nav>
            {tab(Page::Patient, "Patient", "tab-patient")}
            {tab(Page::Clinician, "Clinician", "tab-clinician")}
            {tab(Page::Researcher, "Researcher", "tab-researcher")}
            {tab(Page::Keys, "Keys", "tab-keys")}
            {who}
        </nav>
        <main>
            {move || match state.page.get() {
                Page::Patient => view! { <PatientPage /> }.into_any(),
                Page::Clinician => view! { <ClinicianPage /> }.into_any(),
                Page::Researcher => view! { <ResearcherPage /> }.into_any(),
                Page::Keys => view! { <KeysPage /> }.into_any(),
            }}
        </main>
    }
}

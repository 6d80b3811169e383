//! Pieces the views share: submitting a tx with a visible outcome, naming accounts.

use crate::api;
use crate::format;
use crate::state::AppState;
use ledger::crypto::{AccountKeys, Address};
use ledger::tx::Action;
use leptos::prelude::*;

/// The outcome of the last tx a form sent.
pub type TxOutcome = RwSignal<Option<Result<String, String>>>;

/// Signs `action` with `keys`, submits it and reports into `out` once a verified block
/// includes it (or why not).
pub fn send(state: AppState, keys: AccountKeys, action: Action, what: &'static str, out: TxOutcome) {
    out.set(Some(Ok(format!("{what}: signing and submitting…"))));
    leptos::task::spawn_local(async move {
        let outcome = api::submit(&keys, action, state).await;
        let _ = out.try_set(Some(
            outcome
                .map(|i| {
                    format!(
                        "{what}: included in verified block #{} (tx {})",
                        i.height,
                        format::short_hash(&i.hash)
                    )
                })
                .map_err(|e| format!("{what} failed: {e}")),
        ));
    });
}

#[component]
pub fn TxMessage(out: TxOutcome) -> impl IntoView {
    move || {
        out.get().map(|o| match o {
            Ok(m) => view! { <div class="tx ok" data-testid="tx-ok">{m}</div> }.into_any(),
            Err(m) => view! { <div class="tx bad error" data-testid="tx-error">{m}</div> }.into_any(),
        })
    }
}

/// A name for an address: one of the user's identities, else a short hex.
pub fn name_of(state: AppState, address: &Address) -> String {
    let hex = address.to_hex();
    state
        .identities
        .with_untracked(|list| {
            list.iter()
                .find(|i| i.address_hex() == hex)
                .map(|i| i.name.clone())
        })
        .map_or_else(
            || format::short(&hex),
            |n| format!("{n} ({})", format::short(&hex)),
        )
}

pub fn parse_address(text: &str) -> Result<Address, String> {
    Address::from_hex(text.trim()).map_err(|_| "an address is 64 hex characters".to_string())
}

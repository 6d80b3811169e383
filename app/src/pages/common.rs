//! Pieces the views share: submitting a tx with a visible outcome, naming accounts.

use crate::api;
use crate::error::AppError;
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
    // One tx per form at a time: a second click must not queue a tx that would fail.
    if out
        .get_untracked()
        .is_some_and(|o| o.is_ok_and(|m| m.ends_with("submitting…")))
    {
        return;
    }
    out.set(Some(Ok(format!("{what}: signing and submitting…"))));
    leptos::task::spawn_local(async move {
        let outcome = match still_applies(&action).await {
            Ok(()) => api::submit(&keys, action, state).await,
            Err(e) => Err(e),
        };
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

/// Checks against verified state that a revocation or removal still has something to do:
/// the chain drops a tx that fails, and the signer's later txs then wait behind its nonce.
async fn still_applies(action: &Action) -> Result<(), AppError> {
    let gone = |what: &str| Err(AppError::Input(format!("{what} (the list was out of date)")));
    match action {
        Action::RevokeConsent { consent } => {
            let c = api::query(async |c| c.consent(consent).await).await?;
            if c.value.is_none_or(|c| c.revoked_at.is_some()) {
                return gone("this consent is already revoked");
            }
        }
        Action::RevokeDevice { device } => {
            let d = api::query(async |c| c.device(device).await).await?;
            if d.value.is_none_or(|d| d.revoked_at.is_some()) {
                return gone("this device is already revoked");
            }
        }
        Action::RemoveAlertRule { rule } => {
            let key = ledger::state::keys::alert_rule(rule);
            let r = api::query(async |c| c.read::<ledger::state::records::AlertRule>(&key).await).await?;
            if r.value.is_none_or(|r| r.removed) {
                return gone("this alert rule is already removed");
            }
        }
        _ => {}
    }
    Ok(())
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

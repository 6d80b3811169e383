//! The "verified" mark every chain value carries: click it for the proof summary.

use crate::api::Proof;
use leptos::prelude::*;

#[component]
pub fn VerifiedMark(proof: Proof) -> impl IntoView {
    let open = RwSignal::new(false);
    let summary = format!(
        "proven at height {} against state root {} with a {}-byte Merkle proof",
        proof.height,
        proof.state_root.to_hex(),
        proof.proof_bytes
    );
    view! {
        <span class="verified" data-testid="verified" title="checked by the light client: click for the proof"
            on:click=move |_| open.update(|o| *o = !*o)>
            "✔ verified"
        </span>
        <Show when=move || open.get()>
            <div class="proof" data-testid="proof">{summary.clone()}</div>
        </Show>
    }
}

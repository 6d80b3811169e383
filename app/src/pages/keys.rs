//! Keys: create one in the browser, import a backup (or the dev chain's demo keys), export
//! a backup, choose which account acts.

use crate::format;
use crate::keys::{self, Identity};
use crate::state::{use_state, AppState};
use leptos::prelude::*;

fn persist(state: AppState, note: RwSignal<Option<Result<String, String>>>) {
    let list = state.identities.get_untracked();
    leptos::task::spawn_local(async move {
        if let Err(e) = keys::save(&list).await {
            let _ = note.try_set(Some(Err(e.to_string())));
        }
    });
}

/// Makes the identity at `index` the active one and stores the choice with the keys.
pub fn activate(state: AppState, index: usize) {
    state.active.set(Some(index));
    let _ = web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .map(|s| s.set_item("medledger-active", &index.to_string()));
}

#[component]
pub fn KeysPage() -> impl IntoView {
    let state = use_state();
    let note = RwSignal::new(None::<Result<String, String>>);
    let import_text = RwSignal::new(String::new());
    let new_name = RwSignal::new(String::from("me"));
    let new_role = RwSignal::new(String::from("patient"));
    let exported = RwSignal::new(None::<String>);
    let create = move |_| match Identity::generate(new_name.get_untracked(), new_role.get_untracked()) {
        Ok(identity) => {
            let address = identity.address_hex();
            state.identities.update(|l| keys::merge(l, vec![identity]));
            let index = state
                .identities
                .with_untracked(|l| l.iter().position(|i| i.address_hex() == address));
            if let Some(i) = index {
                activate(state, i);
            }
            persist(state, note);
            note.set(Some(Ok(format!(
                "created key {} — export a backup; register it on chain from the Patient view",
                format::short(&address)
            ))));
        }
        Err(e) => note.set(Some(Err(e.to_string()))),
    };
    let import = move |_| match keys::import(&import_text.get_untracked()) {
        Ok(list) => {
            let n = list.len();
            state.identities.update(|l| keys::merge(l, list));
            if state.active.get_untracked().is_none() {
                activate(state, 0);
            }
            persist(state, note);
            import_text.set(String::new());
            note.set(Some(Ok(format!("imported {n} key(s)"))));
        }
        Err(e) => note.set(Some(Err(e.to_string()))),
    };
    let rows = move || {
        let active = state.active.get();
        state
            .identities
            .get()
            .into_iter()
            .enumerate()
            .map(|(i, id)| {
                let backup = id.export();
                view! {
                    <tr class:active=active == Some(i) data-testid="key-row">
                        <td>{id.name.clone()}</td>
                        <td>{id.role.clone()}</td>
                        <td><code>{id.address_hex()}</code></td>
                        <td>
                            <button data-testid=format!("use-{}", id.name) on:click=move |_| activate(state, i)>
                                {if active == Some(i) { "in use" } else { "use" }}
                            </button>
                            <button on:click=move |_| exported.set(Some(backup.clone()))>"export backup"</button>
                        </td>
                    </tr>
                }
            })
            .collect_view()
    };
    view! {
        <div class="page keys" data-testid="keys-view">
            <section>
                <h2>"Your keys"</h2>
                <p class="muted">"Kept in this browser (IndexedDB). Only signatures and public keys leave it."</p>
                <table><thead><tr><th>"name"</th><th>"role"</th><th>"address"</th><th></th></tr></thead><tbody>{rows}</tbody></table>
                {move || exported.get().map(|text| view! {
                    <p>"Backup (keep it secret; import it to restore this key):"</p>
                    <textarea rows="7" cols="90" readonly data-testid="backup">{text}</textarea>
                })}
            </section>
            <section>
                <h3>"Create a key"</h3>
                <label>"name " <input data-testid="new-key-name" prop:value=move || new_name.get() on:input:target=move |ev| new_name.set(ev.target().value()) /></label>
                <label>" role " <select data-testid="new-key-role" on:change:target=move |ev| new_role.set(ev.target().value())>
                    <option value="patient">"patient"</option>
                    <option value="clinician">"clinician"</option>
                    <option value="caregiver">"caregiver"</option>
                    <option value="researcher">"researcher"</option>
                </select></label>
                <button data-testid="create-key" on:click=create>"Create"</button>
            </section>
            <section>
                <h3>"Import"</h3>
                <p class="muted">"Paste a backup, a relay key file, the dev chain's dev-keys.json (imports every demo account), or a 64-hex master seed."</p>
                <textarea rows="6" cols="90" data-testid="import-text" prop:value=move || import_text.get() on:input:target=move |ev| import_text.set(ev.target().value())></textarea>
                <br /><button data-testid="import" on:click=import>"Import"</button>
            </section>
            {move || note.get().map(|n| match n {
                Ok(m) => view! { <div class="tx ok">{m}</div> }.into_any(),
                Err(m) => view! { <div class="error">{m}</div> }.into_any(),
            })}
        </div>
    }
}

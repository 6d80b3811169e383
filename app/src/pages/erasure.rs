//! Erasure (DESIGN §3 "Erasure", issue 8 part 4): the patient erases one batch or all their
//! data with `EraseData` (one tx per commitment). Relays drop the ciphertext and wrapped keys
//! when the erasure commits and refuse every later read, the patient's and earlier grantees'
//! alike. An erased batch is shown with its proof: the commitment record carrying
//! `erased_at`, proven against a verified state root. "Read" asks the relay for the blob
//! again, so anyone can see the refusal for themselves.

use crate::api::{self, Proof};
use crate::components::{render, VerifiedMark};
use crate::error::AppError;
use crate::format;
use crate::keys::Identity;
use crate::lists;
use crate::pages::common::{TxMessage, TxOutcome};
use crate::pages::studies::act;
use crate::state::{use_state, AppState};
use ledger::crypto::AccountKeys;
use ledger::state::keys::{self, ListKind};
use ledger::state::records::DataCommitment;
use ledger::tx::Action;
use ledger::types::{DataCategory, Purpose, RecordId};
use leptos::prelude::*;
use std::collections::BTreeMap;

/// Newest batches listed.
pub const BATCHES_SHOWN: u64 = 30;

/// Erases one commitment unless verified state says it is already erased (a failing tx
/// would hold up the patient's later txs behind its nonce).
async fn erase(me: &AccountKeys, id: RecordId, state: AppState) -> Result<bool, AppError> {
    let current = api::query(async |c| c.commitment(&id).await).await?.value;
    let Some(c) = current else {
        return Err(AppError::Input("no such commitment on chain".into()));
    };
    if c.erased_at.is_some() {
        lists::forget(&keys::commitment(&id));
        return Ok(false);
    }
    api::submit(me, Action::EraseData { commitment: id }, state).await?;
    // The views re-read after a submit; make sure they prove this record again.
    lists::forget(&keys::commitment(&id));
    state.refresh.update(|r| *r += 1);
    Ok(true)
}

fn kind(c: &DataCommitment) -> &'static str {
    match (c.category, c.device) {
        (DataCategory::ClinicianNotes, _) => "clinician note",
        (_, Some(_)) => "device batch",
        (_, None) => "imported or delivered",
    }
}

#[component]
pub fn Erasure(me: Identity) -> impl IntoView {
    let state = use_state();
    let address = me.keys.address();
    let data = LocalResource::new(move || {
        state.refresh.track();
        async move {
            let (proof, list) = lists::records::<DataCommitment>(
                ListKind::PatientCommitments,
                address.0,
                BATCHES_SHOWN,
                keys::commitment,
                true,
            )
            .await?;
            // An erased batch carries its own proof: the record with `erased_at`, proven now.
            let mut rows = Vec::new();
            for (id, c) in list {
                let own = if c.erased_at.is_some() {
                    let v = api::query(async |cl| cl.commitment(&id).await).await?;
                    Some(Proof::from(&v))
                } else {
                    None
                };
                rows.push((id, c, own));
            }
            Ok::<_, AppError>((proof, rows))
        }
    });
    let out: TxOutcome = RwSignal::new(None);
    let reads = RwSignal::new(BTreeMap::<RecordId, Result<String, String>>::new());
    let keys_all = me.keys.clone();
    let erase_all = move |_| {
        let me = keys_all.clone();
        act(out, "erase all", move |progress| async move {
            let (_, ids) = lists::ids(ListKind::PatientCommitments, me.address().0, u64::MAX).await?;
            let total = ids.len();
            let mut erased = 0;
            for (n, id) in ids.into_iter().enumerate() {
                progress(format!("batch {}/{total}…", n + 1));
                if erase(&me, id, state).await? {
                    erased += 1;
                }
            }
            Ok(format!(
                "erased {erased} batch(es); {total} in all are now erased"
            ))
        });
    };
    let keys = me.keys.clone();
    view! {
        <section data-testid="erasure">
            <h2>"Your data: erasure"</h2>
            <p class="muted">"Erasing a batch deletes its ciphertext and wrapped keys from the relays that hold it; the chain keeps only the CID, which reveals nothing, and the time of the erasure. Nobody can read it afterwards: not you, not anyone you consented to before."</p>
            {move || render(data.get(), |(proof, rows)| {
                let keys = keys.clone();
                let items = rows.into_iter().map(|(id, c, own)| {
                    let keys_erase = keys.clone();
                    let keys_read = keys.clone();
                    let commitment = c.clone();
                    let erased = c.erased_at.is_some();
                    let codes = c.loinc_codes.iter().map(|l| format::loinc_name(l.as_str())).collect::<Vec<_>>().join(", ");
                    let status = match (c.erased_at, own) {
                        (Some(at), Some(p)) => view! {
                            <span class="erased" data-testid="erased">"erased " {format::time(at)} " · commitment.erased_at = " {at} " at height " {p.height} " "</span>
                            <VerifiedMark proof=p />
                        }.into_any(),
                        (Some(at), None) => view! { <span class="erased" data-testid="erased">"erased " {format::time(at)}</span> }.into_any(),
                        (None, _) => view! { <span data-testid="stored">"stored"</span> }.into_any(),
                    };
                    let erase_one = move |_| {
                        let me = keys_erase.clone();
                        act(out, "erase", move |_| async move {
                            erase(&me, id, state).await?;
                            Ok(format!("batch {} erased: included in a verified block", format::short_hash(&id)))
                        });
                    };
                    let read = move |_| {
                        let (me, commitment) = (keys_read.clone(), commitment.clone());
                        leptos::task::spawn_local(async move {
                            let outcome = api::read_blob(&me, id, &commitment, Purpose::Treatment)
                                .await
                                .map(|lines| format!("✔ {} readings decrypted and checked", lines.len()))
                                .map_err(|e| format!("✖ {e}"));
                            let _ = reads.try_update(|r| r.insert(id, outcome));
                        });
                    };
                    view! {
                        <tr class:erased=erased data-testid="data-row" data-id=id.to_hex()>
                            <td>{format::time(c.time_range.start)} " – " {format::clock(c.time_range.end as f64)}</td>
                            <td>{kind(&c)}</td>
                            <td>{codes}</td>
                            <td><code title=c.cid.to_text()>{format::short(&c.cid.to_text())}</code></td>
                            <td>{status}</td>
                            <td>
                                {(!erased).then(|| view! { <button class="danger" data-testid="erase-batch" on:click=erase_one>"Erase"</button> " " })}
                                <button data-testid="read-batch" on:click=read>"Read"</button>
                                {move || reads.with(|r| r.get(&id).cloned()).map(|o| match o {
                                    Ok(m) => view! { <div class="ok small" data-testid="read-ok">{m}</div> }.into_any(),
                                    Err(m) => view! { <div class="bad small" data-testid="read-refused">{m}</div> }.into_any(),
                                })}
                            </td>
                        </tr>
                    }
                }).collect_view();
                view! {
                    <p class="muted">"Your newest batches, as committed on chain " <VerifiedMark proof=proof /></p>
                    <table>
                        <thead><tr><th>"time range"</th><th>"kind"</th><th>"signs"</th><th>"blob"</th><th>"status"</th><th></th></tr></thead>
                        <tbody>{items}</tbody>
                    </table>
                }
            })}
            <button class="danger" data-testid="erase-all" on:click=erase_all>"Erase all my data"</button>
            <TxMessage out=out />
        </section>
    }
}

//! Charts of decrypted readings per vital sign, and the batches they came from.

use crate::components::{Chart, ErrorBox, VerifiedMark};
use crate::format;
use crate::readings::{self, Reader, Readings};
use crate::state::use_state;
use ledger::types::loinc;
use leptos::prelude::*;

const GROUPS: [(&str, &str, &[&str]); 5] = [
    ("Glucose (CGM)", "mg/dL", &[loinc::GLUCOSE_CGM]),
    ("Heart rate", "/min", &[loinc::HEART_RATE]),
    ("SpO₂", "%", &[loinc::SPO2]),
    (
        "Blood pressure",
        "mm[Hg]",
        &[loinc::SYSTOLIC_BP, loinc::DIASTOLIC_BP],
    ),
    ("Body temperature", "Cel", &[loinc::BODY_TEMPERATURE]),
];

#[component]
pub fn ReadingsPanel(reader: Reader) -> impl IntoView {
    let state = use_state();
    let data = RwSignal::new(Readings::default());
    let error = RwSignal::new(None);
    let busy = StoredValue::new(false);
    let reader_again = reader.clone();
    Effect::new(move |_| {
        state.refresh.track();
        if busy.get_value() {
            return;
        }
        busy.set_value(true);
        let reader = reader.clone();
        leptos::task::spawn_local(async move {
            let outcome = readings::refresh(data, reader).await;
            let _ = error.try_set(outcome.err());
            busy.try_set_value(false);
        });
    });
    let charts = GROUPS
        .iter()
        .map(|&(title, unit, codes)| {
            let lines = Signal::derive(move || data.with(|d| d.lines(codes)));
            view! { <Chart title=title unit=unit lines=lines /> }
        })
        .collect_view();
    let rows = move || {
        data.with(|d| {
            d.rows
                .iter()
                .take(12)
                .map(|row| {
                    let codes: Vec<String> = row.codes.iter().map(|c| format::loinc_name(c)).collect();
                    let outcome = match &row.outcome {
                        Ok(n) => view! {
                            <span class="ok" data-testid="batch-ok">
                                "✔ " {*n} " readings decrypted; CID, Merkle root and count match the commitment"
                            </span>
                        }
                        .into_any(),
                        Err(e) => view! { <span class="bad" data-testid="batch-bad">"✖ " {e.clone()}</span> }.into_any(),
                    };
                    let id = row.id;
                    let reader = reader_again.clone();
                    let again = move |_| {
                        let reader = reader.clone();
                        leptos::task::spawn_local(async move {
                            if let Err(e) = readings::reread(data, reader, id).await {
                                let _ = error.try_set(Some(e));
                            }
                        });
                    };
                    view! {
                        <tr data-testid="batch-row" data-id=id.to_hex()>
                            <td>{format::time(row.range.start)} " – " {format::clock(row.range.end as f64)}</td>
                            <td>{codes.join(", ")}</td>
                            <td>{row.count}</td>
                            <td>{outcome}</td>
                            <td><VerifiedMark proof=row.proof /></td>
                            <td><button data-testid="read-again" on:click=again>"read again"</button></td>
                        </tr>
                    }
                })
                .collect_view()
        })
    };
    view! {
        <div class="readings" data-testid="readings">
            {move || error.get().map(|e| view! { <ErrorBox error=e /> })}
            <div class="charts">{charts}</div>
            <details>
                <summary>"Batches (newest first): each checked against its on-chain commitment"</summary>
                <table>
                    <thead><tr><th>"time range"</th><th>"signs"</th><th>"readings"</th><th>"check"</th><th>"commitment"</th><th></th></tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </div>
    }
}

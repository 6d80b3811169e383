//! Always on screen: the verified head, how it was verified, the relays, a fork warning.

use crate::format;
use crate::state::{use_state, Conn};
use leptos::prelude::*;

#[component]
pub fn StatusBar() -> impl IntoView {
    let state = use_state();
    // "Live" means new verified headers keep coming: not after a fork (the client halts) nor
    // while every relay is marked untrusted (nothing it serves is accepted).
    let halted = move || {
        state.status.with(|s| {
            s.as_ref().and_then(|s| {
                if s.fork.is_some() {
                    Some("fork detected, no new header is trusted")
                } else if !s.relays.is_empty() && s.relays.iter().all(|r| r.faulty.is_some()) {
                    Some("no trusted relay")
                } else {
                    None
                }
            })
        })
    };
    let conn = move || match state.conn.get() {
        Conn::Connecting(what) => {
            view! { <span class="conn connecting">"connecting: " {what}</span> }.into_any()
        }
        Conn::Live => match halted() {
            Some(why) => {
                view! { <span class="conn failed" data-testid="conn-halted">"✖ halted: " {why}</span> }
                    .into_any()
            }
            None => view! { <span class="conn live" data-testid="conn">"● live"</span> }.into_any(),
        },
        Conn::Failed(why) => {
            view! { <span class="conn failed" data-testid="conn-failed">"✖ not connected: " {why}</span> }
                .into_any()
        }
    };
    let head = move || {
        state.status.get().and_then(|s| s.head).map(|h| {
            let ok = h.signed_power * 3 > h.total_power * 2;
            view! {
                <span class="head" data-testid="head">
                    "verified head "
                    <b data-testid="head-height">"#" {h.height}</b>
                    " · " <span data-testid="head-time">{format::time(h.time)}</span>
                    " · id " <code title=h.id.to_hex()>{format::short_hash(&h.id)}</code>
                </span>
                <span class="how" data-testid="head-how">
                    {if ok { "✔ " } else { "✖ " }}
                    "commit signed by " {h.signed_power} " of " {h.total_power} " voting power ("
                    {h.validators} {if h.validators == 1 { " validator" } else { " validators" }}
                    ", > 2/3 needed) · state root "
                    <code title=h.state_root.to_hex()>{format::short_hash(&h.state_root)}</code>
                </span>
            }
        })
    };
    let relays = move || {
        let transport = state.transport.get();
        state.status.get().map(|s| {
            s.relays
                .into_iter()
                .map(|r| {
                    let label = transport.clone().unwrap_or(r.label);
                    let kind = if label.contains("webrtc-direct") {
                        "WebRTC-direct"
                    } else if label.contains("/ws") {
                        "WebSocket"
                    } else {
                        "libp2p"
                    };
                    view! {
                        <span class="relay" data-testid="relay" title=label.clone()>
                            {if r.primary { "primary relay" } else { "witness relay" }} " via " {kind}
                            {r.faulty.map(|f| format!(" — not trusted: {f}"))}
                        </span>
                    }
                })
                .collect_view()
        })
    };
    let fork = move || {
        state.status.get().and_then(|s| s.fork).map(|f| {
            view! {
                <div class="fork" data-testid="fork">
                    "⚠ FORK at height " {f.height} ": " {f.first_relay} " and " {f.second_relay}
                    " serve different valid headers. No new header is trusted; the evidence is kept."
                </div>
            }
        })
    };
    let sync_error = move || {
        state
            .sync_error
            .get()
            .map(|e| view! { <span class="sync-error">"⚠ " {e}</span> })
    };
    view! {
        <header class="status" data-testid="status">
            <div class="row">
                <span class="brand">"Medledger"</span>
                {move || state.status.get().map(|s| view! { <span class="chain">{s.chain_id}</span> })}
                {conn}
                {head}
            </div>
            <div class="row small">{relays} {sync_error}</div>
            {fork}
        </header>
    }
}

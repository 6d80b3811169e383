//! Medledger's light client (DESIGN §6): trusts a genesis or a pinned header, verifies every
//! header by its commit (sequential, or skipping with bisection), cross-checks relays and
//! keeps fork evidence, checks every state answer against a verified state root, signs txs
//! locally and waits for a verified block to include them, and persists its trust.
//!
//! The verification rules are `ledger::verify`'s; this crate adds the policy around them and
//! the I/O. [`LightClient`] is generic over a [`ChainSource`] (one relay): [`net`] is the
//! libp2p transport (TCP/WebSocket natively, WebRTC-direct/WebSocket in the browser), tests
//! plug in relays that lie. [`wasm`] is the JavaScript API (wasm-bindgen, IndexedDB).

// `LightClientError` carries the offending relay's name and the ledger's verification error so
// the dashboard can say exactly what was refused; it is returned once per request, never in a
// hot loop, so its size does not matter.
#![allow(clippy::result_large_err)]

mod client;
mod error;
pub mod net;
pub mod queries;
mod relay_source;
pub mod source;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod time;
pub mod trust;

pub use client::{system_clock, Clock, HeadSummary, Included, LightClient, RelayStatus, Status, Verified};
pub use error::LightClientError;
pub use source::{ChainSource, SourceError};
pub use store::{MemoryStore, TrustStore};
pub use trust::{ForkEvidence, TrustRoot, TrustSnapshot, TrustedHeader};

#[cfg(not(target_arch = "wasm32"))]
pub use store::FileStore;

#[cfg(target_arch = "wasm32")]
pub mod wasm;

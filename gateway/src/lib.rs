#![doc = include_str!("../README.md")]
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

// The pure part: no I/O, no clock, builds for wasm32 (`--no-default-features`).
pub mod alerts;
pub mod batch;
pub mod envelope;
pub mod fhir;
pub mod portability;
pub mod sim;

// The gateway itself (feature `native`): relay client, spool, the per-patient loop.
#[cfg(feature = "native")]
pub mod chain;
#[cfg(feature = "native")]
pub mod keys;
#[cfg(feature = "native")]
pub mod patient;
#[cfg(feature = "native")]
pub mod run;
#[cfg(feature = "native")]
pub mod spool;

pub use envelope::{
    decrypt_batch, open_batch, open_batch_verified, open_lines, open_lines_verified, Envelope, EnvelopeError,
    OpenedBatch, OpenedLines,
};
pub use fhir_model::r4b::resources::Observation;

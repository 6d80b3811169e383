//! Ledger integration tests, one binary (one link step, shared helpers).

mod accounts;
mod alerts_notes;
mod blocks;
mod codec_fuzz;
mod consent_access;
mod devices_data;
mod state_proofs;
mod studies;
mod support;
mod verify;

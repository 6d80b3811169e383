//! Portability (issue 8 items 2 and 3): a patient takes all their data anywhere as one FHIR
//! R4 Bundle, and brings Observations from another system in.
//!
//! - [`export`] (pure): [`export::bundle`] builds the Bundle (Patient pseudonym, Devices,
//!   Observations, Consents) from a [`export::PatientRecord`]; [`export::check_export`] parses an
//!   export back and checks every resource.
//! - [`import`] (pure): splits a Bundle or NDJSON into resources, accepts or rejects each one
//!   with a reason, and groups the accepted readings into batches.
//! - `relay` (feature `native`): fills a record from the chain and the relay, every blob
//!   verified against its commitment, and commits imported batches signed by the patient.
//!
//! The pure parts build for wasm32 (`--no-default-features`) so the dashboard can export from
//! what its light client verified.

pub mod export;
pub mod import;
#[cfg(feature = "native")]
pub mod relay;

//! The views: patient, clinician, keys.

pub mod clinician;
pub mod common;
pub mod keys;
pub mod patient;
pub mod readings;

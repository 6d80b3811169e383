//! The views: patient (with its studies and erasure sections), clinician, researcher, keys.

pub mod clinician;
pub mod common;
pub mod erasure;
pub mod keys;
pub mod patient;
pub mod readings;
pub mod researcher;
pub mod studies;

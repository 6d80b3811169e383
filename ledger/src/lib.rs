//! Medledger's protocol core (DESIGN §2–§3): everything validators, relays, light clients
//! and the dashboard must agree on, with no I/O, no clock, no randomness and no async.
//!
//! - [`codec`]: canonical borsh encoding; [`crypto`]: SHA-256, Ed25519 (ZIP-215) and batches.
//! - [`tx`]: signed transactions; [`exec`]: the deterministic state machine
//!   ([`exec::apply_block`]); [`access`]: "may X read C for P at T".
//! - [`state`]: records, keys, and the Jellyfish Merkle state tree with proofs.
//! - [`merkle`]: the RFC 6962 tx root; [`header`]: headers, commits and precommit sign bytes.
//! - [`verify`]: light-client predicates ([`verify::verify_commit`],
//!   [`verify::verify_skipping`]).
//!
//! Builds for `wasm32-unknown-unknown`; the dashboard runs the same code as validators.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod access;
pub mod codec;
pub mod crypto;
pub mod exec;
pub mod genesis;
pub mod header;
pub mod merkle;
pub mod state;
pub mod tx;
pub mod types;
pub mod validators;
pub mod verify;

#[cfg(any(test, feature = "test-utils"))]
pub mod test_utils;

pub use crypto::{AccountKeys, Address, Hash, PublicKey, Signature};
pub use exec::{apply_block, apply_tx, BlockBuilder, BlockContext, BlockError, BlockOutcome, TxError};
pub use genesis::Genesis;
pub use header::{Block, BlockId, Commit, CommitSignature, Header, Height};
pub use tx::{Action, Tx};
pub use validators::{Validator, ValidatorSet};

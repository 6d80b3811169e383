//! Medledger's validator full node (DESIGN §1, §2): the `ledger` state machine on the
//! Malachite BFT engine, with a redb block store, a fair mempool, value sync and an HTTP API.
//! Runs as a validator or as a non-signing follower ([`node::Mode`]); the relay embeds the
//! follower through [`node::start`] and [`node::NodeHandle`].
//!
//! - [`context`]: the engine's types and signed bytes; [`signing`], [`codec`]: plug-ins.
//! - [`state`]: proposal building, block checking, commits; [`app`]: the `AppMsg` loop. A
//!   proposal travels in two signed parts, its txs first and its header once the proposer
//!   has the state root, so peers re-execute while the proposer hashes
//!   ([`context::ProposalPart`]).
//! - [`store`]: durable blocks, commits, validator sets and the state tree.
//! - [`mempool`]: admission and fair block building; [`rpc`]: HTTP; [`config`]: home dir.

pub mod app;
pub mod codec;
pub mod config;
pub mod context;
pub mod localnet;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod rpc;
pub mod signing;
pub mod state;
pub mod store;

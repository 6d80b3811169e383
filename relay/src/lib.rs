//! Medledger's relay (DESIGN §1, §4, §5): the native bridge between browsers and the
//! validator network. It runs the `node` crate as a follower (or, with `--dev`, as the single
//! validator of a one-machine chain), answers light clients, stores encrypted blobs behind
//! consent checks and serves the built dashboard. See [`Relay::start`] for the entry point.
//!
//! - [`protocol`]: wire messages (borsh, named size and time limits), one module per protocol.
//! - [`service`]: [`LightClientService`], the transport-independent answers to light clients.
//! - [`blobs`]: [`BlobService`] (put, consent-checked get, erasure) over [`blobs::BlobStore`].
//! - [`chain`]: the node handle plus tx forwarding; [`follow`]: the per-block follower task.
//! - [`http`]: dashboard, discovery document, `/metrics`, blob routes; [`dev`]: the dev chain;
//!   [`keys`]: account key files; [`config`]: what a relay starts with; [`clock`]: time.
//!
//! - [`network`]: libp2p (WebRTC-direct, WebSocket, TCP), one request-response protocol per
//!   [`protocol`] module calling the services, the heads gossipsub topic, per-peer limits.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::panic))]

pub mod blobs;
pub mod chain;
pub mod clock;
pub mod config;
pub mod dev;
pub mod follow;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod network;
pub use ::protocol;
mod relay;
pub mod service;

pub use blobs::{BlobError, BlobService};
pub use config::{BlobLocation, ChainSource, RelayConfig};
pub use relay::{Relay, StartError};
pub use service::LightClientService;

//! The relay's integration tests, one binary (STYLE §5): an in-process dev chain for the
//! services, a real S3-compatible server (moto) and the filesystem for the blob store, and
//! the `medledger-relay` binary itself for the CLI.

mod access;
mod blob_store;
mod cli;
mod light_client;
mod network;
mod studies;
mod support;

//! Integration tests: the gateway against a real `medledger-relay --dev` process, and the
//! `medledger-gateway` binary's CLI. One binary, shared helpers (STYLE §5).

mod cli;
mod portability;
mod relay_restart;
mod support;

//! The relay's Prometheus metrics (issue 5 item 8), in a registry of its own so that several
//! relays in one process (tests) do not share counters. `/metrics` shows the embedded node's
//! metrics (`node::metrics::export`: height, rounds, mempool, engine) followed by these.

use malachitebft_metrics::prometheus::encoding::text::encode;
use malachitebft_metrics::prometheus::metrics::counter::Counter;
use malachitebft_metrics::prometheus::metrics::family::Family;
use malachitebft_metrics::prometheus::metrics::gauge::Gauge;
use malachitebft_metrics::prometheus::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug)]
pub struct RelayMetrics {
    /// Bytes of blob ciphertext held in the blob store.
    pub blob_bytes: Gauge,
    /// Blobs newly stored.
    pub blob_puts: Counter,
    /// Blob reads served (each with an access record submitted).
    pub blob_gets: Counter,
    /// Blob reads the ledger's access rule refused.
    pub blob_denials: Counter,
    /// Other refused blob requests (malformed, forged, stale, replayed, oversized...).
    pub blob_refusals: Counter,
    /// Blobs deleted after their patient erased them.
    pub blobs_erased: Counter,
    /// Height of the last block the relay's follower processed.
    pub head_height: Gauge,
    /// libp2p peers connected now.
    pub p2p_peers: Gauge,
    /// libp2p requests received, by protocol.
    pub p2p_requests: Family<[(&'static str, &'static str); 1], Counter>,
    /// libp2p requests refused for exceeding a peer's limits.
    pub p2p_refused: Counter,
    /// Peers banned for faults or floods.
    pub p2p_bans: Counter,
    registry: Arc<Registry>,
}

impl Default for RelayMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl RelayMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("medledger_relay");
        let (blob_bytes, head_height, p2p_peers) = (Gauge::default(), Gauge::default(), Gauge::default());
        let (p2p_requests, p2p_refused, p2p_bans) =
            (Family::default(), Counter::default(), Counter::default());
        let [blob_puts, blob_gets, blob_denials, blob_refusals, blobs_erased] =
            std::array::from_fn(|_| Counter::default());
        registry.register(
            "blob_bytes",
            "Bytes of blob ciphertext stored",
            blob_bytes.clone(),
        );
        registry.register("blob_puts", "Blobs newly stored", blob_puts.clone());
        registry.register("blob_gets", "Blob reads served", blob_gets.clone());
        registry.register(
            "blob_denials",
            "Blob reads refused by the ledger's access rule",
            blob_denials.clone(),
        );
        registry.register(
            "blob_refusals",
            "Blob requests refused for other reasons (malformed, forged, stale, replayed, oversized)",
            blob_refusals.clone(),
        );
        registry.register("blobs_erased", "Blobs deleted on erasure", blobs_erased.clone());
        registry.register(
            "head_height",
            "Last block height the relay processed",
            head_height.clone(),
        );
        registry.register("p2p_peers", "libp2p peers connected", p2p_peers.clone());
        registry.register(
            "p2p_requests",
            "libp2p requests received, by protocol",
            p2p_requests.clone(),
        );
        registry.register(
            "p2p_refused",
            "libp2p requests refused for exceeding the peer's limits",
            p2p_refused.clone(),
        );
        registry.register("p2p_bans", "Peers banned for faults or floods", p2p_bans.clone());
        RelayMetrics {
            blob_bytes,
            blob_puts,
            blob_gets,
            blob_denials,
            blob_refusals,
            blobs_erased,
            head_height,
            p2p_peers,
            p2p_requests,
            p2p_refused,
            p2p_bans,
            registry: Arc::new(registry),
        }
    }

    /// Counts one libp2p request of `protocol` (a `crate::protocol::*::PROTOCOL` name).
    pub fn p2p_request(&self, protocol: &'static str) {
        self.p2p_requests.get_or_create(&[("protocol", protocol)]).inc();
    }

    /// The node's metrics and the relay's, as one OpenMetrics text document.
    pub fn export(&self) -> String {
        let mut out = node::metrics::export();
        // Each export ends with "# EOF"; the document may have only one, at its end.
        if let Some(stripped) = out.strip_suffix("# EOF\n") {
            out.truncate(stripped.len());
        }
        if encode(&mut out, &self.registry).is_err() {
            tracing::error!("encoding relay metrics failed");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_has_one_eof_and_the_relay_metrics() {
        let metrics = RelayMetrics::new();
        metrics.blob_puts.inc();
        metrics.blob_bytes.set(42);
        let text = metrics.export();
        assert_eq!(text.matches("# EOF").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"));
        assert!(text.contains("medledger_relay_blob_puts_total 1"), "{text}");
        assert!(text.contains("medledger_relay_blob_bytes 42"), "{text}");
    }
}

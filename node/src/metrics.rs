//! Prometheus metrics of the node (DESIGN issue 4 item 8), registered in the same global
//! registry as the engine's own (rounds, steps, peers), so one `/metrics` shows both.

use malachitebft_metrics::prometheus::metrics::counter::Counter;
use malachitebft_metrics::prometheus::metrics::gauge::Gauge;
use malachitebft_metrics::SharedRegistry;

#[derive(Clone, Debug, Default)]
pub struct NodeMetrics {
    pub height: Gauge,
    pub round: Gauge,
    pub txs: Counter,
    pub mempool_size: Gauge,
    pub txs_rejected: Counter,
    pub commit_check_failures: Counter,
}

impl NodeMetrics {
    pub fn register(moniker: &str) -> Self {
        let metrics = NodeMetrics::default();
        SharedRegistry::global()
            .with_moniker(moniker)
            .with_prefix("medledger", |reg| {
                reg.register(
                    "height",
                    "Height of the last committed block",
                    metrics.height.clone(),
                );
                reg.register(
                    "round",
                    "Round in which the last block was decided",
                    metrics.round.clone(),
                );
                reg.register("txs", "Transactions committed", metrics.txs.clone());
                reg.register(
                    "mempool_size",
                    "Transactions waiting in the mempool",
                    metrics.mempool_size.clone(),
                );
                reg.register(
                    "txs_rejected",
                    "Transactions refused at admission",
                    metrics.txs_rejected.clone(),
                );
                reg.register(
                    "commit_check_failures",
                    "Decided commits that failed the ledger light-client predicate (must stay 0)",
                    metrics.commit_check_failures.clone(),
                );
            });
        metrics
    }
}

/// Every registered metric in Prometheus text format.
pub fn export() -> String {
    let mut out = String::new();
    malachitebft_metrics::export(&mut out);
    out
}

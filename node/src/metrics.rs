//! Prometheus metrics of the node (DESIGN issue 4 item 8), registered in the same global
//! registry as the engine's own (rounds, steps, peers), so one `/metrics` shows both.

use malachitebft_metrics::prometheus::metrics::counter::Counter;
use malachitebft_metrics::prometheus::metrics::gauge::Gauge;
use malachitebft_metrics::prometheus::metrics::histogram::{exponential_buckets, Histogram};
use malachitebft_metrics::SharedRegistry;

/// Under load a height's time is mostly these three steps on every validator: checking the
/// proposal (execution and the new state root), building the commit's write transaction, and
/// redb's commit (page writes and two fsyncs). Their histograms tell an operator which one a
/// slow chain is waiting on.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    pub height: Gauge,
    pub round: Gauge,
    pub txs: Counter,
    pub mempool_size: Gauge,
    pub txs_rejected: Counter,
    pub commit_check_failures: Counter,
    pub block_check_seconds: Histogram,
    pub block_store_write_seconds: Histogram,
    pub block_store_sync_seconds: Histogram,
}

/// 1 ms to ~16 s, doubling.
fn step_buckets() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            height: Gauge::default(),
            round: Gauge::default(),
            txs: Counter::default(),
            mempool_size: Gauge::default(),
            txs_rejected: Counter::default(),
            commit_check_failures: Counter::default(),
            block_check_seconds: step_buckets(),
            block_store_write_seconds: step_buckets(),
            block_store_sync_seconds: step_buckets(),
        }
    }
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
                for (name, help, histogram) in [
                    (
                        "block_check_seconds",
                        "Checking another validator's proposal: executing its txs and computing the state root",
                        &metrics.block_check_seconds,
                    ),
                    (
                        "block_store_write_seconds",
                        "Committing a decided block: building the store's write transaction",
                        &metrics.block_store_write_seconds,
                    ),
                    (
                        "block_store_sync_seconds",
                        "Committing a decided block: the store's commit (page writes and fsyncs)",
                        &metrics.block_store_sync_seconds,
                    ),
                ] {
                    reg.register(name, help, histogram.clone());
                }
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

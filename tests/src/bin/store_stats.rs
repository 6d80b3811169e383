//! Per-table size of a node's store file (`<home>/data/store.redb`): entries, B-tree height,
//! pages, stored and fragmented bytes. Used to see where a validator's disk and write volume
//! go (e.g. `node_bench --keep`, then this on `node0/data/store.redb`); open it only while
//! the node is stopped (redb locks the file).
//!
//! Usage: `store_stats PATH/store.redb`

use anyhow::Context;
use redb::{ReadableDatabase, ReadableTableMetadata, TableHandle};

fn main() -> anyhow::Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: store_stats PATH/store.redb")?;
    let db = redb::Database::open(&path).with_context(|| format!("opening {path}"))?;
    let txn = db.begin_read()?;
    println!("| table | entries | height | leaf pages | branch pages | stored bytes | fragmented bytes |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for handle in txn.list_tables()? {
        let name = handle.name().to_string();
        let table = txn.open_untyped_table(handle)?;
        let stats = table.stats()?;
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            table.len()?,
            stats.tree_height(),
            stats.leaf_pages(),
            stats.branch_pages(),
            stats.stored_bytes(),
            stats.fragmented_bytes()
        );
    }
    Ok(())
}

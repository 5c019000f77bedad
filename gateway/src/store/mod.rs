//! The stores behind the storage port: sled, embedded, the default (trees, indexes, the log, and
//! the single writer that makes every acknowledged write durable by group commit); and
//! PostgreSQL, shared by any number of gateway replicas.

mod codec;
mod ids;
mod keys;
pub mod migrate;
pub mod postgres;
mod sled_store;
mod trees;
mod writer;

pub use sled_store::{DEFAULT_CACHE_MB, OpenError, SledOptions, SledStore};

/// Metric: seconds one flush to disk took (on PostgreSQL: one commit).
pub const METRIC_FLUSH_SECONDS: &str = "epr_store_flush_duration_seconds";
/// Metric: units of work made durable by one flush (on PostgreSQL: 1, one per commit).
pub const METRIC_FLUSH_BATCH: &str = "epr_store_flush_batch_size";

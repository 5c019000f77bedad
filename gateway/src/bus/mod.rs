//! Consumers of the durable log: the live stream, the Kafka relay, the cursor they keep, and
//! the lease under which a singleton consumer runs.

pub mod cursor;
pub mod kafka;
pub mod log_stream;
pub mod tenure;

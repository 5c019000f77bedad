//! Consumers of the durable log: the live stream, the Kafka relay, and the cursor they keep.

pub mod cursor;
pub mod kafka;
pub mod log_stream;

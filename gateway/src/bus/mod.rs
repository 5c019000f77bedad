//! Consumers of the durable log: the live stream (and later the Kafka relay).

pub mod kafka;
pub mod log_stream;

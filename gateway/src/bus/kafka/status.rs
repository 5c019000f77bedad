//! What the relay reports: broker state, lag, delivery errors (for readiness and `/metrics`).
//! State changes are logged once, at warn level when the broker becomes unreachable.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Instant;

use serde_json::{Value, json};

use crate::sync::lock;

/// Metric: 1 when the last delivery attempt succeeded.
pub const BROKER_UP: &str = "epr_kafka_broker_up";
/// Metric: durable log messages not yet acknowledged by the broker.
pub const LAG_MESSAGES: &str = "epr_kafka_relay_lag_messages";
/// Metric: seconds since the relay was last caught up.
pub const LAG_SECONDS: &str = "epr_kafka_relay_lag_seconds";
/// Metric: failed delivery attempts.
pub const DELIVERY_ERRORS: &str = "epr_kafka_delivery_errors_total";
/// Metric: messages acknowledged by the broker.
pub const DELIVERED: &str = "epr_kafka_messages_delivered_total";
/// Metric: 1 while the relay is stopped at a log entry it cannot render or encode.
pub const STUCK: &str = "epr_kafka_relay_stuck";
/// Metric: from an event's storage (its 2xx) to the broker's acknowledgement of its message.
pub const END_TO_END: &str = "epr_kafka_end_to_end_seconds";

/// Broker state: not yet reached.
const CONNECTING: u8 = 0;
/// Broker state: answering.
const UP: u8 = 1;
/// Broker state: failing.
const DOWN: u8 = 2;

/// Shared state of the relay.
pub struct RelayStatus {
    broker: AtomicU8,
    delivered_seq: AtomicU64,
    caught_up_at: Mutex<Instant>,
    last_error: Mutex<Option<String>>,
    /// The log entry the relay cannot get past, and why (0: none).
    stuck_at: AtomicU64,
}

impl RelayStatus {
    /// A relay that has delivered everything up to `cursor`, and not yet reached the broker.
    pub fn new(cursor: u64) -> Self {
        metrics::gauge!(BROKER_UP).set(0.0);
        // present from the start, so that an alert on it sees 0, not nothing
        metrics::gauge!(STUCK).set(0.0);
        RelayStatus {
            broker: AtomicU8::new(CONNECTING),
            delivered_seq: AtomicU64::new(cursor),
            caught_up_at: Mutex::new(Instant::now()),
            last_error: Mutex::new(None),
            stuck_at: AtomicU64::new(0),
        }
    }

    /// Everything up to `seq` is acknowledged; `caught_up` when nothing more is durable.
    pub fn delivered(&self, seq: u64, caught_up: bool) {
        self.delivered_seq.store(seq, Ordering::Relaxed);
        let stuck = self.stuck_at.load(Ordering::Relaxed);
        if stuck != 0 && stuck <= seq {
            self.stuck_at.store(0, Ordering::Relaxed);
            metrics::gauge!(STUCK).set(0.0);
            tracing::info!(
                seq,
                "the Kafka relay got past the log entry it was stuck on"
            );
        }
        if caught_up {
            *lock(&self.caught_up_at) = Instant::now();
        }
    }

    /// The broker answered.
    pub fn reachable(&self) {
        if self.broker.swap(UP, Ordering::Relaxed) != UP {
            tracing::info!("Kafka broker reachable; relaying");
        }
        metrics::gauge!(BROKER_UP).set(1.0);
    }

    /// A delivery attempt failed with `error`.
    pub fn failed(&self, error: &str) {
        metrics::counter!(DELIVERY_ERRORS).increment(1);
        *lock(&self.last_error) = Some(error.to_owned());
        if self.broker.swap(DOWN, Ordering::Relaxed) != DOWN {
            tracing::warn!(%error, "Kafka delivery failing; events stay in the log and will be relayed when the broker is back");
        }
        metrics::gauge!(BROKER_UP).set(0.0);
    }

    /// The relay cannot render or encode log entry `seq`: it stops there (never skips it) and
    /// tries again later.
    pub fn stuck(&self, seq: u64, error: &str) {
        *lock(&self.last_error) = Some(format!("log entry {seq}: {error}"));
        if self.stuck_at.swap(seq, Ordering::Relaxed) != seq {
            tracing::error!(seq, %error, "the Kafka relay is stuck: it cannot relay this log entry and will not skip it; retrying");
        }
        metrics::gauge!(STUCK).set(1.0);
    }

    /// Whether the relay is stuck at log entry `seq`.
    pub fn is_stuck_at(&self, seq: u64) -> bool {
        self.stuck_at.load(Ordering::Relaxed) == seq
    }

    /// The relay's state, given the last durable log sequence number; updates the lag gauges.
    pub fn report(&self, durable: u64) -> Value {
        let delivered = self.delivered_seq.load(Ordering::Relaxed);
        let lag = durable.saturating_sub(delivered);
        let seconds = if lag == 0 {
            0.0
        } else {
            lock(&self.caught_up_at).elapsed().as_secs_f64()
        };
        metrics::gauge!(LAG_MESSAGES).set(lag as f64);
        metrics::gauge!(LAG_SECONDS).set(seconds);
        let broker = match self.broker.load(Ordering::Relaxed) {
            UP => "ok",
            DOWN => "unreachable",
            _ => "connecting",
        };
        json!({
            "broker": broker,
            "delivered_sequence": delivered,
            "lag_messages": lag,
            "lag_seconds": seconds,
            "last_error": *lock(&self.last_error),
            "stuck_at_sequence": match self.stuck_at.load(Ordering::Relaxed) {
                0 => None,
                seq => Some(seq),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_relay_says_where_until_it_gets_past() {
        let status = RelayStatus::new(4);
        status.stuck(5, "cannot render the log entry: storage error: disk");
        assert!(status.is_stuck_at(5));
        let report = status.report(9);
        assert_eq!(report["stuck_at_sequence"], 5);
        assert_eq!(report["delivered_sequence"], 4, "not advanced past it");
        assert!(
            report["last_error"]
                .as_str()
                .unwrap()
                .contains("log entry 5")
        );
        status.delivered(5, false);
        assert_eq!(status.report(9)["stuck_at_sequence"], Value::Null);
    }
}

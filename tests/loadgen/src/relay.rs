//! The Kafka side of a relay phase: a consumer reading the gateway's topic from the start,
//! measuring for each event message the time from the event's storage (its `created_at`, taken
//! before the POST is answered) to the moment the message is readable from the broker.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::Value;

use crate::workload::Target;

/// Event messages read so far and their end-to-end latency in microseconds.
struct Seen {
    events: u64,
    latency_us: Histogram<u64>,
}

/// A consumer of the relay's topic, counting event messages of one receiver type.
pub struct Reader {
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Reader {
    /// Reads every partition of `topic` on `brokers` from the start, counting the EPR messages
    /// of type `kind` (with their latency), or every message when there is no `kind` (a peer's
    /// topic: no latency).
    pub fn start(brokers: &str, topic: &str, kind: Option<&str>) -> anyhow::Result<Reader> {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("group.id", "epr-loadgen")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "10")
            .create()
            .context("cannot create the Kafka consumer")?;
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .with_context(|| format!("cannot read the metadata of {topic} from {brokers}"))?;
        let partitions = metadata
            .topics()
            .first()
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            bail!("topic {topic} has no partitions on {brokers}");
        }
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(topic, p as i32, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let seen = Arc::new(Mutex::new(Seen {
            events: 0,
            latency_us: Histogram::new(3)?,
        }));
        let sink = seen.clone();
        let kind = kind.map(str::to_owned);
        let task = tokio::spawn(async move {
            while let Ok(message) = consumer.recv().await {
                let read_at = Utc::now();
                let stored = match &kind {
                    Some(kind) => match message.payload().and_then(|v| stored_at(v, kind)) {
                        Some(stored) => Some(stored),
                        None => continue,
                    },
                    None => None,
                };
                let mut seen = sink.lock().unwrap_or_else(|e| e.into_inner());
                seen.events += 1;
                if let Some(stored) = stored {
                    let micros = (read_at - stored).num_microseconds().unwrap_or(0).max(0);
                    // the histogram grows as needed: recording cannot fail
                    let _ = seen.latency_us.record(micros as u64);
                }
            }
        });
        Ok(Reader { seen, task })
    }

    /// Event messages read so far.
    pub fn events(&self) -> u64 {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).events
    }

    /// The latencies recorded since the last call.
    pub fn take_latency(&self) -> anyhow::Result<Histogram<u64>> {
        let fresh = Histogram::new(3)?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        Ok(std::mem::replace(&mut seen.latency_us, fresh))
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The `created_at` of the event an EPR message of type `kind` carries.
fn stored_at(value: &[u8], kind: &str) -> Option<DateTime<Utc>> {
    let message: Value = serde_json::from_slice(value).ok()?;
    if message["type"] != kind {
        return None;
    }
    message
        .pointer("/data/events/0/created_at")?
        .as_str()?
        .parse()
        .ok()
}

/// Polls the gateway's readiness until the relay has no lag (at most `limit`); returns the
/// largest lag seen, in messages.
pub async fn wait_drained(target: &Target, limit: Duration) -> anyhow::Result<u64> {
    let mut largest = 0;
    poll_relay(target, limit, "have no lag", |kafka| {
        let lag = kafka["lag_messages"].as_u64()?;
        largest = largest.max(lag);
        Some(lag == 0)
    })
    .await?;
    Ok(largest)
}

/// Polls the gateway's readiness until the relay has reached the broker (at most 30 s).
pub async fn wait_connected(target: &Target) -> anyhow::Result<()> {
    poll_relay(
        target,
        Duration::from_secs(30),
        "reach the broker",
        |kafka| Some(kafka["broker"] == "ok"),
    )
    .await
}

/// Polls the `kafka` part of the gateway's readiness every 50 ms until `done` says so, for at
/// most `limit`; `done` answers `None` when the part lacks what it looks for.
async fn poll_relay(
    target: &Target,
    limit: Duration,
    what: &str,
    mut done: impl FnMut(&Value) -> Option<bool>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let ready = target.get_json("/healthz/readiness").await?;
        match done(&ready["kafka"]) {
            Some(true) => return Ok(()),
            Some(false) if started.elapsed() > limit => {
                bail!("the relay did not {what} within {limit:?}: {ready}")
            }
            Some(false) => tokio::time::sleep(Duration::from_millis(50)).await,
            None => bail!("unexpected readiness answer (no Kafka relay?): {ready}"),
        }
    }
}

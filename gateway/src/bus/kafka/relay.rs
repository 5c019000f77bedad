//! The relay loop: read the durable log from the cursor, produce in batches, move the cursor
//! past what the broker acknowledged, and retry the rest with backoff.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::future::join_all;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::record::{Record, envelope_only, record};
use super::status::{DELIVERED, END_TO_END, RelayStatus};
use super::{BrokerContext, KafkaConfig};
use crate::backoff::Backoff;
use crate::bus::cursor::DurableCursor;
use crate::bus::tenure;
use crate::registry::Registry;
use crate::registry::message::Message;
use crate::registry::port::LogEntry;

/// Log messages produced per batch.
const BATCH: usize = 1000;
/// Setting key of the relay's durable cursor.
const CURSOR: &str = "cursor/kafka";
/// The lease of the relay: one gateway relays at a time.
const LEASE: &str = "relay";
/// Waits between failed attempts.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(5),
};

/// Starts the relay; it stops when `stop` turns true (after its current batch).
pub async fn spawn(
    registry: Arc<Registry>,
    config: KafkaConfig,
    stop: watch::Receiver<bool>,
) -> Result<(Arc<RelayStatus>, JoinHandle<()>), KafkaError> {
    let context = BrokerContext::default();
    let producer = config.producer(&context)?;
    let admin: AdminClient<BrokerContext> = config
        .client_config()
        .create_with_context(context.clone())?;
    let cursor = DurableCursor::load(registry.clone(), CURSOR).await;
    let status = Arc::new(RelayStatus::new(cursor.position()));
    let relay = Relay {
        registry,
        producer,
        admin,
        context,
        config,
        status: status.clone(),
        cursor,
    };
    Ok((status, tokio::spawn(relay.run(stop))))
}

struct Relay {
    registry: Arc<Registry>,
    producer: FutureProducer<BrokerContext>,
    admin: AdminClient<BrokerContext>,
    /// Shared by both clients: tells when the broker connections were lost.
    context: BrokerContext,
    config: KafkaConfig,
    status: Arc<RelayStatus>,
    /// Everything up to here is acknowledged by the broker.
    cursor: DurableCursor,
}

impl Relay {
    /// Relays while this gateway holds the relay's lease (from the durable cursor each time it
    /// takes the lease over), until `stop`.
    async fn run(mut self, stop: watch::Receiver<bool>) {
        let store = self.registry.store().clone();
        while let Some(tenure) = tenure::hold(&store, LEASE, &stop).await {
            self.cursor = DurableCursor::load(self.registry.clone(), CURSOR).await;
            tracing::info!(cursor = self.cursor.position(), "relaying the log to Kafka");
            self.relay(tenure.stop.clone()).await;
        }
    }

    async fn relay(&mut self, mut stop: watch::Receiver<bool>) {
        let mut durable = self.registry.store().durable_seq();
        let mut failures = 0;
        let mut topic_ready = false;
        let mut losses = self.context.losses();
        while !*stop.borrow() {
            if self.context.losses() > losses {
                // the broker may come back without the topic or the producer's state (e.g.
                // restarted without storage): some brokers then acknowledge records for a
                // missing topic and drop them, or choke on the old producer id; a new producer
                // (dropping the old one purges what it still had queued) starts clean
                losses = self.context.losses();
                topic_ready = false;
                self.reset_producer();
            }
            if !topic_ready {
                topic_ready = self.ensure_topic().await;
                if !topic_ready {
                    sleep_or_stop(&mut stop, &mut failures).await;
                    continue;
                }
            }
            durable.borrow_and_update();
            let entries = match self
                .registry
                .store()
                .log_after(self.cursor.position(), BATCH)
                .await
            {
                Ok(entries) => entries,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the log; retrying");
                    sleep_or_stop(&mut stop, &mut failures).await;
                    continue;
                }
            };
            if entries.is_empty() {
                self.cursor.save().await;
                self.status.delivered(self.cursor.position(), true);
                tokio::select! {
                    changed = durable.changed() => if changed.is_err() { return },
                    _ = stop.changed() => {}
                }
                continue;
            }
            let last = entries
                .last()
                .map_or(self.cursor.position(), |(seq, _)| *seq);
            let delivered = self.deliver(entries, losses).await;
            if delivered > self.cursor.position() {
                self.status.reachable();
                self.cursor.advance(delivered);
                self.cursor.save_if_due().await;
                let caught_up = delivered >= *durable.borrow();
                self.status.delivered(delivered, caught_up);
            }
            if delivered < last {
                if !self.status.is_stuck_at(delivered + 1) {
                    // a failed batch: check the topic and start over with a new producer (which
                    // also covers the connection losses seen so far)
                    topic_ready = false;
                    losses = self.context.losses();
                    self.reset_producer();
                }
                sleep_or_stop(&mut stop, &mut failures).await;
            } else {
                failures = 0;
            }
        }
        self.cursor.save().await;
    }

    /// Replaces the producer after a failed batch or a lost connection (cheap; a broker that is
    /// simply down makes every batch fail anyway): an idempotent producer whose broker came back
    /// without its
    /// state (restarted, or a new leader) stops on its old sequence numbers. Messages not yet
    /// acknowledged are sent again from the log.
    fn reset_producer(&mut self) {
        match self.config.producer(&self.context) {
            Ok(producer) => {
                tracing::info!("recreating the Kafka producer");
                let old = std::mem::replace(&mut self.producer, producer);
                // dropping a producer purges its queue and flushes for up to 500 ms: not on
                // the runtime's threads
                tokio::task::spawn_blocking(move || drop(old));
            }
            Err(e) => tracing::error!(error = %e, "cannot recreate the Kafka producer"),
        }
    }

    /// Creates the topic if missing; false when the broker cannot be reached.
    async fn ensure_topic(&self) -> bool {
        let topic = NewTopic::new(
            &self.config.topic,
            self.config.partitions,
            TopicReplication::Fixed(1),
        );
        let timeout = Some(Timeout::After(Duration::from_secs(5)));
        let options = AdminOptions::new()
            .operation_timeout(timeout)
            .request_timeout(timeout);
        match self.admin.create_topics([&topic], &options).await {
            Ok(results) => {
                for result in results {
                    match result {
                        Ok(name) => {
                            tracing::info!(topic = %name, partitions = self.config.partitions, "created the Kafka topic")
                        }
                        Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((name, code)) => tracing::error!(topic = %name, error = %code,
                            "cannot create the Kafka topic (the broker refused); relaying to it anyway"),
                    }
                }
                self.status.reachable();
                true
            }
            Err(e) => {
                self.status
                    .failed(&format!("cannot reach the broker to create the topic: {e}"));
                false
            }
        }
    }

    /// Produces the entries in order; returns the sequence number up to which all were
    /// acknowledged. An entry that cannot be rendered or encoded stops the batch there (the
    /// relay reports itself stuck on it and tries again later): nothing is ever skipped. A batch
    /// is abandoned when the broker connections are lost more than `losses` times while it is
    /// in flight (its messages are sent again by a new producer).
    async fn deliver(&self, entries: Vec<(u64, LogEntry)>, losses: u64) -> u64 {
        let mut prepared = Vec::with_capacity(entries.len());
        for (seq, entry) in entries {
            match self.prepare(entry).await {
                Ok((message, record)) => prepared.push((seq, message, record)),
                Err(error) => {
                    self.status.stuck(seq, &error);
                    break;
                }
            }
        }
        if prepared.is_empty() {
            return self.cursor.position();
        }
        let sends = join_all(prepared.iter().map(|(_, _, r)| self.send(r)));
        let results = tokio::select! {
            results = sends => results,
            _ = self.context.lost_since(losses) => {
                self.status.failed("lost every connection to the broker");
                return self.cursor.position();
            }
        };
        let mut delivered = self.cursor.position();
        for ((seq, message, r), result) in prepared.into_iter().zip(results) {
            let outcome = match result {
                Err(KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)) => {
                    self.send_envelope_only(&message, &r).await
                }
                other => other,
            };
            match outcome {
                Ok(()) => {
                    delivered = seq;
                    metrics::counter!(DELIVERED).increment(1);
                    if let Some(at) = message.data.events.as_ref().and_then(|e| e.first()) {
                        let seconds = (Utc::now() - at.created_at).num_microseconds().unwrap_or(0)
                            as f64
                            / 1e6;
                        metrics::histogram!(END_TO_END).record(seconds.max(0.0));
                    }
                }
                Err(e) => {
                    self.status.failed(&e.to_string());
                    break;
                }
            }
        }
        delivered
    }

    /// The message of a log entry and its record, or why there is none.
    async fn prepare(&self, entry: LogEntry) -> Result<(Message, Record), String> {
        let message = self
            .registry
            .render(&entry)
            .await
            .map_err(|e| format!("cannot render the log entry: {e}"))?;
        let record = record(
            &message,
            self.config.max_message_bytes,
            &self.config.public_url,
        )
        .map_err(|e| format!("cannot encode the message: {e}"))?;
        Ok((message, record))
    }

    async fn send_envelope_only(&self, message: &Message, r: &Record) -> Result<(), KafkaError> {
        let small = envelope_only(message, r, &self.config.public_url).map_err(|e| {
            tracing::error!(error = %e, "cannot shorten a message the broker refused");
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
        })?;
        tracing::warn!(key = %r.key, "the broker refused a message as too large; sent it without its data");
        self.send(&small).await
    }

    async fn send(&self, r: &Record) -> Result<(), KafkaError> {
        let headers = r.headers.iter().fold(
            OwnedHeaders::new_with_capacity(r.headers.len()),
            |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: Some(value.as_str()),
                })
            },
        );
        let record = FutureRecord::to(&self.config.topic)
            .key(r.key.as_str())
            .payload(r.value.as_slice())
            .headers(headers);
        self.producer
            .send(record, Timeout::After(Duration::from_secs(1)))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }
}

/// Counts one more failure and waits its backoff, unless stopped first.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, failures: &mut u32) {
    *failures += 1;
    tokio::select! {
        _ = RETRY.sleep(*failures) => {}
        _ = stop.changed() => {}
    }
}

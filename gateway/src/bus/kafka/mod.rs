//! The Kafka relay: every message of the durable log reaches the topic, in order per unit, and
//! the cursor moves only past messages the broker acknowledged. The HTTP path never waits for
//! Kafka; a broker that is down, slow or restarted only makes the relay wait and retry.

mod record;
mod relay;
mod status;

use std::sync::Arc;
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::FutureProducer;
use tokio::sync::watch;

pub use relay::spawn;
pub use status::RelayStatus;

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers (`host:port,...`).
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// Partitions of the topic when the relay creates it.
    pub partitions: i32,
    /// Largest message value; larger ones carry a reference instead of their payloads.
    pub max_message_bytes: usize,
    /// The gateway's public base URL, for references.
    pub public_url: String,
    /// Further librdkafka properties (SASL, TLS, timeouts...), from `EPR_KAFKA_*`.
    pub extra: Vec<(String, String)>,
}

/// How long the broker has to acknowledge a message before the relay retries it.
const MESSAGE_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaConfig {
    /// librdkafka's configuration: idempotent, `acks=all`, lz4, a few ms of batching.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", "lz4")
            .set("linger.ms", "5")
            // the relay creates the topic itself, with the configured partition count; a broker
            // that auto-creates it on the first produce would pick its own count
            .set("allow.auto.create.topics", "false")
            .set(
                "message.timeout.ms",
                MESSAGE_TIMEOUT.as_millis().to_string(),
            )
            .set(
                "message.max.bytes",
                (self.max_message_bytes + 64 * 1024)
                    .max(1_000_000)
                    .to_string(),
            );
        for (key, value) in &self.extra {
            config.set(key, value);
        }
        config
    }

    /// The producer (connects lazily: creating it works while the broker is down).
    pub fn producer(
        &self,
        context: &BrokerContext,
    ) -> Result<FutureProducer<BrokerContext>, KafkaError> {
        self.client_config().create_with_context(context.clone())
    }
}

/// The relay's librdkafka client context: librdkafka's own errors and logs go to debug level
/// only (the relay reports broker trouble itself, once per change of state), and it counts the
/// times every connection to the brokers was lost: a broker that comes back may have lost the
/// topic and the producer's state.
#[derive(Clone)]
pub struct BrokerContext {
    losses: Arc<watch::Sender<u64>>,
}

impl Default for BrokerContext {
    fn default() -> Self {
        BrokerContext {
            losses: Arc::new(watch::channel(0).0),
        }
    }
}

impl BrokerContext {
    /// How many times every broker connection was lost so far.
    pub fn losses(&self) -> u64 {
        *self.losses.borrow()
    }

    /// Returns once the connections were lost more than `seen` times.
    pub async fn lost_since(&self, seen: u64) {
        let mut losses = self.losses.subscribe();
        // the sender lives in `self`: the channel cannot close while this waits
        let _ = losses.wait_for(|n| *n > seen).await;
    }
}

impl ClientContext for BrokerContext {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        tracing::debug!(?level, facility, message, "librdkafka");
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.losses.send_modify(|n| *n += 1);
        }
        tracing::debug!(%error, reason, "librdkafka");
    }
}

/// librdkafka properties from `EPR_KAFKA_<NAME>` variables: `EPR_KAFKA_SASL_MECHANISM=PLAIN`
/// becomes `sasl.mechanism=PLAIN`.
pub fn extra_properties(vars: impl Iterator<Item = (String, String)>) -> Vec<(String, String)> {
    let mut extra: Vec<(String, String)> = vars
        .filter_map(|(name, value)| {
            let property = name.strip_prefix("EPR_KAFKA_")?;
            Some((property.to_ascii_lowercase().replace('_', "."), value))
        })
        .collect();
    extra.sort();
    extra
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(extra: &[(&str, &str)]) -> KafkaConfig {
        KafkaConfig {
            brokers: "127.0.0.1:1".into(),
            topic: "t".into(),
            partitions: 1,
            max_message_bytes: 1_000_000,
            public_url: "http://gw".into(),
            extra: extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn tls_and_sasl_settings_are_accepted_by_the_built_librdkafka() {
        for (protocol, mechanism) in [
            ("SSL", None),
            ("SASL_SSL", Some("SCRAM-SHA-512")),
            ("SASL_SSL", Some("SCRAM-SHA-256")),
            ("SASL_SSL", Some("PLAIN")),
            ("SASL_PLAINTEXT", Some("PLAIN")),
        ] {
            let mut extra = vec![
                ("security.protocol", protocol),
                ("ssl.endpoint.identification.algorithm", "https"),
            ];
            if let Some(mechanism) = mechanism {
                extra.extend([
                    ("sasl.mechanism", mechanism),
                    ("sasl.username", "u"),
                    ("sasl.password", "p"),
                ]);
            }
            if let Err(e) = config(&extra).producer(&BrokerContext::default()) {
                panic!("{protocol} {mechanism:?}: {e}");
            }
        }
    }

    #[test]
    fn a_wrong_librdkafka_setting_is_refused_at_start() {
        let e = config(&[("security.protocol", "CARRIER_PIGEON")])
            .producer(&BrokerContext::default())
            .err()
            .expect("refused");
        assert!(e.to_string().contains("security.protocol"), "{e}");
    }

    #[test]
    fn kafka_variables_become_librdkafka_properties() {
        let vars = [
            ("EPR_KAFKA_SASL_MECHANISM", "PLAIN"),
            ("EPR_KAFKA_SECURITY_PROTOCOL", "SASL_SSL"),
            ("EPR_TOPIC", "t"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()));
        assert_eq!(
            extra_properties(vars.into_iter()),
            [
                ("sasl.mechanism".to_owned(), "PLAIN".to_owned()),
                ("security.protocol".to_owned(), "SASL_SSL".to_owned())
            ]
        );
    }
}

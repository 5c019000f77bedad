//! The Kafka relay against a real broker (Tansu): every message kind with EPR's value, CloudEvents
//! headers and the NVRPP key; nothing lost while the broker is down, hangs, is restarted, or when
//! the gateway is killed; oversized payloads become references.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Headers, Message as _};
use rdkafka::{Offset, TopicPartitionList};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::support;
use crate::support::{Api, Broker, Gateway, Until, event_body};

const TOPIC: &str = "test.events";
const PARTITIONS: i32 = 3;

/// EPR's message, as its Go watcher decodes it.
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // every field is decoded to prove the shape; not every test reads each
pub(crate) struct EprMessage {
    success: bool,
    pub(crate) id: String,
    specversion: String,
    #[serde(rename = "type")]
    kind: String,
    source: String,
    api_version: String,
    name: String,
    version: String,
    release: String,
    platform_id: String,
    package: String,
    data: EprData,
}

#[derive(Debug, Deserialize)]
struct EprData {
    events: Option<Vec<Value>>,
    event_receivers: Option<Vec<Value>>,
    event_receiver_groups: Option<Vec<Value>>,
}

/// One consumed record.
#[derive(Debug)]
pub(crate) struct Consumed {
    key: String,
    headers: HashMap<String, String>,
    value: Value,
    pub(crate) message: EprMessage,
}

/// Records consumed so far, by a background consumer reading every partition from the start.
#[derive(Clone, Default)]
pub(crate) struct Collector(pub(crate) Arc<Mutex<Vec<Consumed>>>);

impl Collector {
    pub(crate) fn start(broker: &str) -> Collector {
        let consumer: StreamConsumer = ClientConfig::new()
            .set("bootstrap.servers", broker)
            .set("group.id", "epr-tests")
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        let mut partitions = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            partitions
                .add_partition_offset(TOPIC, p, Offset::Beginning)
                .unwrap();
        }
        consumer.assign(&partitions).expect("assign");
        let collector = Collector::default();
        let sink = collector.clone();
        tokio::spawn(async move {
            loop {
                let Ok(m) = consumer.recv().await else {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                };
                let value: Value =
                    serde_json::from_slice(m.payload().unwrap_or_default()).expect("JSON value");
                let message: EprMessage =
                    serde_json::from_value(value.clone()).expect("EPR's message shape");
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(h.value.unwrap_or_default())
                                        .into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
                sink.0.lock().unwrap().push(Consumed {
                    key,
                    headers,
                    value,
                    message,
                });
            }
        });
        collector
    }

    /// Waits until `done` holds for what was consumed (at most `secs`), then returns a view.
    pub(crate) async fn wait<T>(
        &self,
        secs: u64,
        what: &str,
        done: impl Fn(&[Consumed]) -> Option<T>,
    ) -> T {
        for _ in 0..secs * 10 {
            if let Some(t) = done(&self.0.lock().unwrap()) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let n = self.0.lock().unwrap().len();
        panic!("{what}: not there after {secs} s ({n} records consumed)");
    }
}

/// How many partitions the topic has.
fn partitions(broker: &str) -> usize {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(TOPIC), Duration::from_secs(10))
        .expect("topic metadata");
    metadata.topics()[0].partitions().len()
}

pub(crate) fn kafka_env(broker: &Broker) -> Vec<(&'static str, String)> {
    vec![
        ("EPR_BROKERS", broker.address.clone()),
        ("EPR_TOPIC", TOPIC.into()),
        ("EPR_TOPIC_PARTITIONS", PARTITIONS.to_string()),
        // librdkafka passthrough: retry sooner than the default 10 s after a broker restart
        ("EPR_KAFKA_MESSAGE_TIMEOUT_MS", "3000".into()),
    ]
}

async fn gateway(
    broker: &Broker,
    extra: &[(&'static str, String)],
    dir: Option<&std::path::Path>,
) -> Gateway {
    let mut env = kafka_env(broker);
    env.extend(extra.iter().cloned());
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match dir {
        Some(dir) => Gateway::start_in(dir, &env).await,
        None => Gateway::start_with(&env).await,
    }
}

#[tokio::test]
async fn every_message_kind_arrives_with_epr_value_cloudevents_headers_and_nvrpp_key() {
    let broker = Broker::start().await;
    let gw = gateway(&broker, &[], None).await;
    let collector = Collector::start(&broker.address);
    let r = gw.receiver("dev.build.finished").await;
    let g = gw.group("dev.release.ready", &[&r]).await;
    let e = gw.event(&r, "app", true).await;
    let records = collector
        .wait(30, "4 messages", |c| {
            (c.len() >= 4).then(|| {
                c.iter()
                    .map(|r| (r.message.kind.clone(), r.message.id.clone()))
                    .collect::<Vec<_>>()
            })
        })
        .await;
    let kinds: BTreeSet<&str> = records.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "epr.event.receiver.created",
            "epr.event.receiver.group.created",
            "dev.build.finished",
            "dev.release.ready"
        ])
    );
    {
        let all = collector.0.lock().unwrap();
        check_records(&all, &e, &r, &g);
    }
    // what readiness and the metrics say of a relay that delivered everything
    let last = gw.last_sequence().await;
    let mut ready = Value::Null;
    for _ in 0..100 {
        ready = gw.get("/healthz/readiness").await.1;
        if ready["kafka"]["delivered_sequence"] == last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let kafka = &ready["kafka"];
    assert_eq!(kafka["broker"], "ok", "{ready}");
    assert_eq!(kafka["delivered_sequence"], last, "{ready}");
    assert_eq!(kafka["lag_messages"], 0, "{ready}");
    assert_eq!(kafka["lag_seconds"], 0.0, "{ready}");
    assert_eq!(kafka["stuck_at_sequence"], Value::Null, "{ready}");
    let metrics = gw.metrics().await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} in:\n{metrics}"))
    };
    assert_eq!(value("epr_kafka_broker_up"), 1.0);
    assert_eq!(value("epr_kafka_relay_lag_messages"), 0.0);
    assert_eq!(value("epr_kafka_relay_stuck"), 0.0);
    assert_eq!(value("epr_log_readers_stuck"), 0.0);
    assert!(value("epr_kafka_messages_delivered_total") >= last as f64);
    assert!(
        value("epr_kafka_end_to_end_seconds_count") >= 2.0,
        "each event's time to the broker is measured"
    );
}

/// What every record, and the records of each kind, must hold.
fn check_records(all: &[Consumed], e: &str, r: &str, g: &str) {
    for c in all.iter() {
        assert_eq!(c.headers["ce_specversion"], "1.0");
        assert_eq!(c.headers["ce_id"], c.message.id);
        assert_eq!(c.headers["ce_source"], "epr");
        assert_eq!(c.headers["ce_type"], c.message.kind);
        assert_eq!(c.headers["content-type"], "application/json");
        assert!(c.headers["ce_time"].ends_with('Z'), "{:?}", c.headers);
        assert_eq!(c.message.specversion, "1.0");
        assert_eq!(c.message.api_version, "v1");
        assert_eq!(
            c.key,
            format!(
                "{}/{}/{}/{}/{}",
                c.message.name,
                c.message.version,
                c.message.release,
                c.message.platform_id,
                c.message.package
            )
        );
    }
    let event = all
        .iter()
        .find(|c| c.message.kind == "dev.build.finished")
        .unwrap();
    assert_eq!(event.message.id, e);
    assert_eq!(event.key, "app/1.0.0/2026.11/x86_64-linux/oci");
    assert_eq!(event.message.data.events.as_ref().unwrap()[0]["id"], e);
    assert_eq!(
        event.message.data.event_receivers.as_ref().unwrap()[0]["id"],
        r
    );
    let complete = all
        .iter()
        .find(|c| c.message.kind == "dev.release.ready")
        .unwrap();
    assert_eq!(complete.key, event.key, "a unit's messages share a key");
    assert_ne!(
        complete.message.id, e,
        "group-complete messages have their own id"
    );
    assert_eq!(
        complete
            .message
            .data
            .event_receiver_groups
            .as_ref()
            .unwrap()[0]["id"],
        g
    );
    let receiver = all
        .iter()
        .find(|c| c.message.kind == "epr.event.receiver.created")
        .unwrap();
    assert_eq!(receiver.message.package, "event.receiver");
    assert!(receiver.message.success);
}

/// Posts `per_unit` events for each of `units` units, each unit's in order; returns the ids
/// acknowledged per unit, in posting order.
async fn post_units(
    api: &Api,
    receiver: &str,
    units: usize,
    per_unit: usize,
) -> BTreeMap<String, Vec<String>> {
    let tasks: Vec<_> = (0..units)
        .map(|u| {
            let (api, receiver) = (api.clone(), receiver.to_owned());
            tokio::spawn(async move {
                let unit = format!("unit-{u}");
                let mut ids = Vec::new();
                for i in 0..per_unit {
                    let (status, answer) = api
                        .post(
                            "/api/v1/events",
                            &event_body(&receiver, &unit, true, json!({"i": i})),
                        )
                        .await;
                    assert_eq!(status, StatusCode::CREATED, "{answer}");
                    ids.push(answer["data"].as_str().unwrap().to_owned());
                }
                (unit, ids)
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for t in tasks {
        let (unit, ids) = t.await.unwrap();
        acked.insert(unit, ids);
    }
    acked
}

#[tokio::test]
async fn events_taken_while_the_broker_is_down_all_arrive_in_order_per_key() {
    let mut broker = Broker::not_started();
    let gw = gateway(&broker, &[], None).await;
    let receiver = gw.receiver("dev.offline").await;
    let acked = post_units(&gw, &receiver, 10, 100).await;
    assert_eq!(
        acked.values().map(Vec::len).sum::<usize>(),
        1000,
        "all 1,000 answered 2xx with no broker"
    );
    let mut unreachable = false;
    for _ in 0..100 {
        let (status, ready) = gw.get("/healthz/readiness").await;
        assert_eq!(status, StatusCode::OK, "still ready: events are kept");
        if ready["kafka"]["broker"] == "unreachable" {
            assert!(
                ready["kafka"]["lag_messages"].as_u64().unwrap() >= 1000,
                "{ready}"
            );
            unreachable = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(unreachable, "readiness reports the broker as unreachable");
    let metrics = gw.metrics().await;
    assert!(metrics.contains("epr_kafka_broker_up 0"), "{metrics}");

    broker.restart().await;
    let collector = Collector::start(&broker.address);
    let consumed = collector
        .wait(60, "1,000 event messages", |c| {
            let events: Vec<(String, String)> = c
                .iter()
                .filter(|r| r.message.kind == "dev.offline")
                .map(|r| (r.key.clone(), r.message.id.clone()))
                .collect();
            (events
                .iter()
                .map(|(_, id)| id)
                .collect::<BTreeSet<_>>()
                .len()
                >= 1000)
                .then_some(events)
        })
        .await;
    for (unit, ids) in &acked {
        let mut seen = Vec::new();
        for (key, id) in &consumed {
            if key.starts_with(&format!("{unit}/")) && !seen.contains(id) {
                seen.push(id.clone());
            }
        }
        assert_eq!(
            &seen, ids,
            "{unit}'s messages arrive in the order its events were stored"
        );
    }
    let (_, ready) = gw.get("/healthz/readiness").await;
    assert_eq!(ready["kafka"]["broker"], "ok", "{ready}");
}

/// Reads the topic from the start until every id of `wanted` is there as a `dev.chaos`
/// message; returns (distinct, duplicates) among those messages.
async fn delivered(broker: &Broker, wanted: &[String], what: &str) -> (usize, usize) {
    let wanted: BTreeSet<&String> = wanted.iter().collect();
    Collector::start(&broker.address)
        .wait(90, what, |c| {
            broker.assert_sound();
            let ids: Vec<&String> = c
                .iter()
                .filter(|r| r.message.kind == "dev.chaos")
                .map(|r| &r.message.id)
                .collect();
            let unique: BTreeSet<&String> = ids.iter().copied().collect();
            wanted
                .is_subset(&unique)
                .then(|| (unique.len(), ids.len() - unique.len()))
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_killed_under_load_delivers_every_acknowledged_message_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let broker = Broker::start().await;
    let mut gw = gateway(&broker, &[], Some(&dir)).await;
    let receiver = gw.receiver("dev.chaos").await;
    let load = {
        let (api, receiver) = (gw.api.clone(), receiver.clone());
        tokio::spawn(async move { api.post_load(&receiver, 8, |_| true, Until::Gone).await })
    };
    tokio::time::sleep(Duration::from_millis(1000)).await;
    gw.kill9().await;
    let acked = load.await.unwrap();
    assert!(acked.len() > 50, "{} acknowledged", acked.len());
    let _gw = gateway(&broker, &[], Some(&dir)).await;
    let (distinct, duplicates) =
        delivered(&broker, &acked, "every event acknowledged before the kill").await;
    println!(
        "kill -9 under load: {} acknowledged, all delivered; {distinct} distinct, {duplicates} duplicates",
        acked.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_hangs_under_load_gets_every_acknowledged_message_when_it_recovers() {
    let broker = Broker::start().await;
    let gw = gateway(&broker, &[], None).await;
    let receiver = gw.receiver("dev.chaos").await;
    let (stop, load) = gw.spawn_load(&receiver, 8);
    tokio::time::sleep(Duration::from_millis(500)).await;
    // longer than the message timeout (3 s): produce requests time out and are retried
    broker.freeze(true);
    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.freeze(false);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.send_replace(true);
    let acked = load.await.unwrap();
    assert!(acked.len() > 50, "{} acknowledged", acked.len());
    let (distinct, duplicates) = delivered(&broker, &acked, "every event acknowledged").await;
    println!(
        "broker hung 4 s under load: {} acknowledged, all delivered; {distinct} distinct, {duplicates} duplicates",
        acked.len()
    );
}

/// A broker stopped under load and started again, with its storage or without; returns it, the
/// gateway relaying to it, the acknowledged ids and when the broker went down (Unix ms).
async fn broker_restarted_under_load(keep_storage: bool) -> (Broker, Gateway, Vec<String>, u64) {
    let mut broker = Broker::start().await;
    let gw = gateway(&broker, &[], None).await;
    let receiver = gw.receiver("dev.chaos").await;
    let (stop, load) = gw.spawn_load(&receiver, 8);
    tokio::time::sleep(Duration::from_millis(700)).await;
    broker.stop().await;
    let died = ulid::Ulid::new().timestamp_ms();
    tokio::time::sleep(Duration::from_millis(500)).await;
    match keep_storage {
        true => broker.restart().await,
        false => broker.restart_empty().await,
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.send_replace(true);
    let acked = load.await.unwrap();
    (broker, gw, acked, died)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_empty_under_load_gets_every_message_it_had_not_acknowledged() {
    // the broker comes back without its storage: what it had acknowledged before now is gone
    // with it; whatever the gateway stored from now on must reach the new broker
    let (broker, _gw, acked, died) = broker_restarted_under_load(false).await;

    let after: Vec<String> = acked
        .iter()
        .filter(|id| ulid::Ulid::from_string(id).unwrap().timestamp_ms() > died)
        .cloned()
        .collect();
    assert!(
        after.len() > 50,
        "{} acknowledged after the broker died",
        after.len()
    );
    let (distinct, duplicates) = delivered(
        &broker,
        &after,
        "every event acknowledged after the broker died",
    )
    .await;
    assert_eq!(
        partitions(&broker.address),
        PARTITIONS as usize,
        "the relay recreated the topic with the configured partitions, not the broker's default"
    );
    println!(
        "broker restarted under load: {} acknowledged after it died, all delivered; {distinct} distinct, {duplicates} duplicates",
        after.len()
    );
}

#[tokio::test]
async fn a_graceful_restart_relays_nothing_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let broker = Broker::start().await;
    let mut gw = gateway(&broker, &[], Some(&dir)).await;
    let receiver = gw.receiver("dev.restart").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(gw.event(&receiver, &format!("unit-{i}"), true).await);
    }
    let collector = Collector::start(&broker.address);
    delivered_once(&collector, &ids, "dev.restart").await;
    assert!(gw.terminate().await.success());
    let gw = gateway(&broker, &[], Some(&dir)).await;
    ids.push(gw.event(&receiver, "after-restart", true).await);
    delivered_once(&collector, &ids, "dev.restart").await;
    // nothing more arrives later
    tokio::time::sleep(Duration::from_millis(500)).await;
    delivered_once(&collector, &ids, "dev.restart").await;
}

/// Waits until the `kind` messages in `collector` are exactly `ids`, each once.
async fn delivered_once(collector: &Collector, ids: &[String], kind: &str) {
    let wanted: Vec<&String> = ids.iter().collect();
    collector
        .wait(30, &format!("{} messages, each once", ids.len()), |c| {
            let mut seen: Vec<&String> = c
                .iter()
                .filter(|r| r.message.kind == kind)
                .map(|r| &r.message.id)
                .collect();
            seen.sort();
            (seen == wanted).then_some(())
        })
        .await;
}

#[tokio::test]
async fn an_oversized_payload_is_relayed_as_a_reference() {
    let broker = Broker::start().await;
    let gw = gateway(
        &broker,
        &[
            ("EPR_MAX_BODY_BYTES", (8 << 20).to_string()),
            ("EPR_PUBLIC_URL", "https://epr.example.com".into()),
        ],
        None,
    )
    .await;
    let collector = Collector::start(&broker.address);
    let receiver = gw.receiver("dev.sbom").await;
    let sbom = json!({"bomFormat": "CycloneDX", "components": "x".repeat(3 << 20)});
    let id = gw
        .create("/api/v1/events", &event_body(&receiver, "app", true, sbom))
        .await;
    let record = collector
        .wait(30, "the SBOM's message", |c| {
            c.iter()
                .find(|r| r.message.id == id)
                .map(|r| (r.value.clone(), r.headers.clone()))
        })
        .await;
    let reference = format!("https://epr.example.com/api/v1/events/{id}");
    assert_eq!(record.0["payload_ref"], reference);
    assert_eq!(record.0["data"]["events"][0]["payload"], Value::Null);
    assert_eq!(record.0["data"]["events"][0]["id"], id);
    assert_eq!(record.1["epr_payload_ref"], reference);
    let (status, _) = gw.get(&format!("/api/v1/events/{id}")).await;
    assert_eq!(status, StatusCode::OK, "the reference resolves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_with_its_storage_under_load_has_every_acknowledged_event() {
    let (broker, _gw, acked, _) = broker_restarted_under_load(true).await;

    assert!(acked.len() > 50, "{} acknowledged", acked.len());
    let (distinct, duplicates) = delivered(
        &broker,
        &acked,
        "every event acknowledged, before, during and after the restart",
    )
    .await;
    println!(
        "broker restarted with its storage under load: {} acknowledged, all delivered; {distinct} distinct, {duplicates} duplicates",
        acked.len()
    );
}

/// An event body for `receiver` whose payload is `{"deep": [[[...1...]]], "pad": "xxx..."}`
/// with `depth` levels of arrays (as text: serde_json would not parse it back past 128).
fn deep_event(receiver: &str, depth: usize) -> String {
    let mut body = event_body(receiver, "app", true, json!("PAYLOAD")).to_string();
    let payload = format!(
        r#"{{"deep":{}1{},"pad":"{}"}}"#,
        "[".repeat(depth),
        "]".repeat(depth),
        "x".repeat(3000)
    );
    body = body.replace(r#""PAYLOAD""#, &payload);
    body
}

#[tokio::test]
async fn a_deep_oversized_payload_is_relayed_and_a_deeper_one_refused_with_nothing_stored() {
    let broker = Broker::start().await;
    let gw = gateway(
        &broker,
        &[
            // small enough that the deep payload's message must become a reference
            ("EPR_MAX_MESSAGE_BYTES", "2000".into()),
            ("EPR_PUBLIC_URL", "https://epr.example.com".into()),
        ],
        None,
    )
    .await;
    let collector = Collector::start(&broker.address);
    let receiver = gw.receiver("dev.deep").await;
    let before = gw.last_sequence().await;
    // too deep to be rendered later by every reader: refused with the limit named
    let post_deep = |depth| {
        gw.call(
            reqwest::Method::POST,
            "/api/v1/events",
            Some(deep_event(&receiver, depth)),
            None,
        )
    };
    let (status, answer) = post_deep(200).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let error = support::error_of(&answer);
    assert!(
        error.contains("nested 201 levels deep") && error.contains("limit is 64"),
        "{error}"
    );
    assert_eq!(gw.last_sequence().await, before, "nothing stored or logged");
    // as deep as allowed, and larger than a message may be: relayed as a reference
    let (status, answer) = post_deep(63).await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let id = answer["data"].as_str().expect("id").to_owned();
    let record = collector
        .wait(30, "the deep event's message", |c| {
            c.iter()
                .find(|r| r.message.id == id)
                .map(|r| r.value.clone())
        })
        .await;
    assert_eq!(
        record["payload_ref"],
        format!("https://epr.example.com/api/v1/events/{id}")
    );
    let (_, ready) = gw.get("/healthz/readiness").await;
    assert_eq!(ready["kafka"]["stuck_at_sequence"], Value::Null, "{ready}");
}

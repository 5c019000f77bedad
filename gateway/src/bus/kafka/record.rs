//! A log message as a Kafka record: EPR's message JSON as the value, the NVRPP as the key (one
//! unit's messages stay in order), CloudEvents Kafka binary-mode headers. A value over the
//! size limit is never dropped: the payloads it carries are replaced by a reference to the
//! event's URL, marked in the value (`payload_ref`) and in a header (`epr_payload_ref`).

use serde::Serialize;
use serde_json::value::RawValue;

use crate::registry::message::{Message, MessageData};

/// Header marking a record whose payloads were replaced by a reference.
pub const PAYLOAD_REF_HEADER: &str = "epr_payload_ref";

/// One record to produce.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The NVRPP, `name/version/release/platform_id/package`.
    pub key: String,
    /// CloudEvents Kafka binary-mode headers (plus `epr_payload_ref` when shortened).
    pub headers: Vec<(&'static str, String)>,
    /// EPR's message JSON.
    pub value: Vec<u8>,
}

/// When the message was made: the time of the object it is about.
fn message_time(message: &Message) -> Option<String> {
    let data = &message.data;
    let time = data
        .events
        .as_ref()
        .and_then(|e| e.first().map(|e| e.created_at))
        .or_else(|| {
            data.event_receiver_groups
                .as_ref()
                .and_then(|g| g.first().map(|g| g.updated_at))
        })
        .or_else(|| {
            data.event_receivers
                .as_ref()
                .and_then(|r| r.first().map(|r| r.created_at))
        })?;
    Some(crate::registry::message::rfc3339(time))
}

/// The record for `message`; `max_bytes` bounds the value, `public_url` is the gateway's base
/// URL used in references. Nothing is parsed: payloads are written as stored, so every
/// message that could be stored can be encoded, however its payload nests.
pub fn record(
    message: &Message,
    max_bytes: usize,
    public_url: &str,
) -> Result<Record, serde_json::Error> {
    let key = [
        &message.name,
        &message.version,
        &message.release,
        &message.platform_id,
        &message.package,
    ]
    .map(|s| s.as_str())
    .join("/");
    let mut headers = vec![
        ("ce_specversion", "1.0".to_owned()),
        ("ce_id", message.id.clone()),
        ("ce_source", message.source.clone()),
        ("ce_type", message.kind.clone()),
        ("content-type", "application/json".to_owned()),
    ];
    if let Some(time) = message_time(message) {
        headers.push(("ce_time", time));
    }
    let mut value = serde_json::to_vec(message)?;
    if value.len() > max_bytes {
        let reference = reference(message, public_url);
        value = referenced(&without_payloads(message), &reference)?;
        headers.push((PAYLOAD_REF_HEADER, reference));
    }
    Ok(Record {
        key,
        headers,
        value,
    })
}

/// A message with `payload_ref` beside its fields.
#[derive(Serialize)]
struct Referenced<'a> {
    #[serde(flatten)]
    message: &'a Message,
    payload_ref: &'a str,
}

fn referenced(message: &Message, reference: &str) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Referenced {
        message,
        payload_ref: reference,
    })
}

/// Where the data a shortened message leaves out can be read.
fn reference(message: &Message, public_url: &str) -> String {
    let base = public_url.trim_end_matches('/');
    match message.data.events.as_ref().and_then(|e| e.first()) {
        Some(event) => format!("{base}/api/v1/events/{}", event.id),
        None => match message
            .data
            .event_receivers
            .as_ref()
            .and_then(|r| r.first())
        {
            Some(receiver) => format!("{base}/api/v1/receivers/{}", receiver.id),
            None => format!("{base}/api/v1/groups/{}", message.id),
        },
    }
}

/// The message with its events' payloads set to `null`.
fn without_payloads(message: &Message) -> Message {
    let mut shortened = message.clone();
    for event in shortened.data.events.iter_mut().flatten() {
        event.payload = null_payload();
    }
    shortened
}

fn null_payload() -> Box<RawValue> {
    // `null` is JSON text: the conversion cannot fail
    serde_json::value::to_raw_value(&()).unwrap_or_else(|_| unreachable!("null is JSON"))
}

/// The record of `message` reduced to its envelope: `data` emptied, `payload_ref` set (for a
/// value still too large once its payloads are gone, e.g. a receiver with a huge schema).
pub fn envelope_only(
    message: &Message,
    record: &Record,
    public_url: &str,
) -> Result<Record, serde_json::Error> {
    let reference = reference(message, public_url);
    let envelope = Message {
        data: MessageData::default(),
        ..message.clone()
    };
    let mut headers: Vec<_> = record
        .headers
        .iter()
        .filter(|(n, _)| *n != PAYLOAD_REF_HEADER)
        .cloned()
        .collect();
    let value = referenced(&envelope, &reference)?;
    headers.push((PAYLOAD_REF_HEADER, reference));
    Ok(Record {
        key: record.key.clone(),
        headers,
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::model::{Event, Receiver};
    use chrono::Utc;
    use serde_json::Value;
    use serde_json::value::to_raw_value;

    fn message(payload_len: usize) -> Message {
        let event = Event {
            id: "01EVENT".into(),
            name: "app".into(),
            version: "1".into(),
            release: "r".into(),
            platform_id: "p".into(),
            package: "k".into(),
            description: "d".into(),
            payload: to_raw_value(&"x".repeat(payload_len)).unwrap(),
            success: true,
            event_receiver_id: "01RECV".into(),
            created_at: Utc::now(),
            caused_by: None,
            completed_group_ids: Vec::new(),
        };
        let receiver = Receiver {
            id: "01RECV".into(),
            name: "r".into(),
            kind: "dev.build".into(),
            version: "1".into(),
            description: "d".into(),
            schema: to_raw_value(&serde_json::json!({})).unwrap(),
            fingerprint: "f".into(),
            created_at: Utc::now(),
        };
        Message::event_created(&event, &receiver)
    }

    #[test]
    fn headers_key_and_value_follow_the_bindings() {
        let r = record(&message(10), 1_000_000, "http://gw").unwrap();
        assert_eq!(r.key, "app/1/r/p/k");
        let names: Vec<&str> = r.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "ce_specversion",
                "ce_id",
                "ce_source",
                "ce_type",
                "content-type",
                "ce_time"
            ]
        );
        let value: Value = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(value["type"], "dev.build");
        assert!(value.get("payload_ref").is_none());
    }

    #[test]
    fn an_oversized_payload_becomes_a_reference() {
        let r = record(&message(5000), 2000, "http://gw/").unwrap();
        assert!(r.value.len() < 2000);
        let value: Value = serde_json::from_slice(&r.value).unwrap();
        assert_eq!(value["payload_ref"], "http://gw/api/v1/events/01EVENT");
        assert_eq!(value["data"]["events"][0]["payload"], Value::Null);
        assert_eq!(value["data"]["events"][0]["id"], "01EVENT");
        assert!(
            r.headers
                .contains(&(PAYLOAD_REF_HEADER, "http://gw/api/v1/events/01EVENT".into()))
        );
        let small = envelope_only(&message(5000), &r, "http://gw").unwrap();
        let value: Value = serde_json::from_slice(&small.value).unwrap();
        assert_eq!(value["data"]["events"], Value::Null);
        assert_eq!(value["payload_ref"], "http://gw/api/v1/events/01EVENT");
    }

    #[test]
    fn a_deeply_nested_oversized_payload_still_becomes_a_reference() {
        let mut m = message(0);
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        m.data.events.as_mut().unwrap()[0].payload = RawValue::from_string(deep).unwrap();
        let r = record(&m, 100, "http://gw").unwrap();
        assert!(r.value.len() < 1000);
        assert!(
            String::from_utf8(r.value)
                .unwrap()
                .contains("\"payload_ref\"")
        );
    }
}

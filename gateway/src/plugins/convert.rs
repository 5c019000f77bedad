//! Events between the gateway's shapes and the contract's.

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::bindings::wit_types;
use crate::ingest::cloudevent::DEFINED_ATTRIBUTES;
use crate::registry::message::rfc3339;
use crate::registry::model::{Event, Nvrpp, Receiver};
use crate::registry::transform::Candidate;

fn wit_nvrpp(nvrpp: Nvrpp) -> wit_types::Nvrpp {
    wit_types::Nvrpp {
        name: nvrpp.name,
        version: nvrpp.version,
        release: nvrpp.release,
        platform_id: nvrpp.platform_id,
        package: nvrpp.package,
    }
}

/// A stored event of `receiver`, as a watcher gets it.
pub fn stored_event(event: &Event, receiver: &Receiver) -> wit_types::Event {
    wit_types::Event {
        id: event.id.clone(),
        receiver_id: event.event_receiver_id.clone(),
        receiver_type: receiver.kind.clone(),
        nvrpp: wit_nvrpp(event.nvrpp()),
        success: event.success,
        description: event.description.clone(),
        payload: event.payload.get().to_owned(),
        created_at: rfc3339(event.created_at),
        cloudevent: cloudevent_of(&event.payload),
        caused_by: event.caused_by.clone(),
    }
}

/// An incoming event, as a transform gets it.
pub fn candidate_event(candidate: &Candidate) -> wit_types::Event {
    wit_types::Event {
        id: String::new(),
        receiver_id: candidate.receiver_id.clone(),
        receiver_type: candidate.receiver_type.clone(),
        nvrpp: wit_nvrpp(candidate.nvrpp.clone()),
        success: candidate.success,
        description: candidate.description.clone(),
        payload: candidate.payload.get().to_owned(),
        created_at: String::new(),
        cloudevent: cloudevent_of(&candidate.payload),
        caused_by: None,
    }
}

/// The CloudEvent attributes of a payload that is a CloudEvent in structured form: how the
/// gateway stores what came in as a CloudEvent (or through a CDEvents webhook).
pub fn cloudevent_of(payload: &RawValue) -> Option<wit_types::Cloudevent> {
    // most payloads are not CloudEvents: skip parsing them
    if !payload.get().contains("\"specversion\"") {
        return None;
    }
    let event: Map<String, Value> = serde_json::from_str(payload.get()).ok()?;
    let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
    if text("specversion")? != "1.0" {
        return None;
    }
    let extensions = event
        .iter()
        .filter(|(name, _)| !DEFINED_ATTRIBUTES.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let value = match value {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => value.to_string(),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect();
    Some(wit_types::Cloudevent {
        id: text("id")?,
        source: text("source")?,
        type_: text("type")?,
        subject: text("subject"),
        time: text("time"),
        extensions,
    })
}

/// An event a transform returned, to go on in place of `input`; fails when its payload is
/// not JSON.
pub fn returned_candidate(event: wit_types::Event, input: &Candidate) -> Result<Candidate, String> {
    let payload = RawValue::from_string(event.payload)
        .map_err(|e| format!("returned an event whose payload is not JSON: {e}"))?;
    Ok(Candidate {
        receiver_id: event.receiver_id,
        receiver_type: event.receiver_type,
        nvrpp: Nvrpp {
            name: event.nvrpp.name,
            version: event.nvrpp.version,
            release: event.nvrpp.release,
            platform_id: event.nvrpp.platform_id,
            package: event.nvrpp.package,
        },
        success: event.success,
        description: event.description,
        payload,
        path: input.path.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(value: serde_json::Value) -> Box<RawValue> {
        serde_json::value::to_raw_value(&value).unwrap()
    }

    #[test]
    fn a_structured_cloudevent_payload_gives_its_attributes() {
        let payload = raw(serde_json::json!({
            "specversion": "1.0", "id": "e1", "source": "/ci", "type": "dev.test.done",
            "subject": "app", "time": "2026-11-23T10:00:00Z", "datacontenttype": "application/json",
            "eprname": "app", "attempt": 2, "data": {"specversion": "inner"}
        }));
        let ce = cloudevent_of(&payload).expect("a CloudEvent");
        assert_eq!((ce.id.as_str(), ce.source.as_str()), ("e1", "/ci"));
        assert_eq!(ce.type_, "dev.test.done");
        assert_eq!(ce.subject.as_deref(), Some("app"));
        assert_eq!(ce.time.as_deref(), Some("2026-11-23T10:00:00Z"));
        assert_eq!(
            ce.extensions,
            vec![
                ("attempt".to_owned(), "2".to_owned()),
                ("eprname".to_owned(), "app".to_owned())
            ]
        );
    }

    #[test]
    fn other_payloads_give_none() {
        for payload in [
            serde_json::json!({"build": 7}),
            serde_json::json!({"context": {"specversion": "0.5.0"}}),
            serde_json::json!({"specversion": "0.3", "id": "e", "source": "/s", "type": "t"}),
            serde_json::json!({"specversion": "1.0", "id": "e", "type": "t"}),
        ] {
            assert!(cloudevent_of(&raw(payload.clone())).is_none(), "{payload}");
        }
    }
}

//! CDEvents: validated offline by `cdevents-sdk` (every event type of spec 0.3, 0.4 and 0.5),
//! given a content id when they have none, and mapped to an event of the registry.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::registry::ingest::{AutoReceiver, Ingested, Route};
use crate::registry::model::Nvrpp;

/// CDEvents spec versions accepted (`context.specversion`, or `context.version` before 0.4).
const SPEC_VERSIONS: [&str; 3] = ["0.3.", "0.4.", "0.5."];

/// A body that is not a valid CDEvent, with the field at fault.
#[derive(Debug, Error)]
#[error("invalid CDEvent: {0}")]
pub struct CdEventError(pub String);

/// A validated CDEvent.
#[derive(Debug, Clone)]
pub struct CdEvent {
    /// The event JSON, with `context.id` filled in when it had none.
    pub json: Value,
    /// `context.type`, e.g. `dev.cdevents.pipelinerun.finished.0.2.0`.
    pub kind: String,
    /// `context.id`.
    pub id: String,
    /// `context.source`.
    pub source: String,
    /// The spec version.
    pub spec_version: String,
    /// `context.timestamp`.
    pub timestamp: String,
    /// `subject.id`.
    pub subject_id: String,
    /// From `subject.content.outcome` where the type has one (`success` or `pass` is a
    /// success; `failure`, `error`, `fail`, `cancel`... are not), else true.
    pub success: bool,
}

fn text<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

impl CdEvent {
    /// Validates `json` as a CDEvent of a supported spec version; a missing or `"0"`
    /// `context.id` becomes a content id (the same event posted again gets the same id).
    pub fn parse(mut json: Value) -> Result<Self, CdEventError> {
        let context = json
            .get_mut("context")
            .and_then(Value::as_object_mut)
            .ok_or_else(|| {
                CdEventError("context: missing (a CDEvent has a context and a subject)".into())
            })?;
        if matches!(context.get("id").and_then(Value::as_str), None | Some("0")) {
            context.remove("id");
            let id = content_id(&json);
            json["context"]["id"] = Value::String(id);
        }
        let spec_version = text(&json, "/context/specversion")
            .or_else(|| text(&json, "/context/version"))
            .unwrap_or_default()
            .to_owned();
        if !SPEC_VERSIONS.iter().any(|v| spec_version.starts_with(v)) {
            return Err(CdEventError(format!(
                "context.specversion: {spec_version:?} is not a supported CDEvents version (0.3.x, 0.4.x, 0.5.x)"
            )));
        }
        let kind = text(&json, "/context/type").unwrap_or_default().to_owned();
        if !kind.starts_with("dev.cdevents.") && !kind.starts_with("dev.cdeventsx.") {
            return Err(CdEventError(format!(
                "context.type: {kind:?} is neither a CDEvents type (dev.cdevents.*) nor a custom one (dev.cdeventsx.*)"
            )));
        }
        let parsed: Result<cdevents_sdk::CDEvent, _> = serde_path_to_error::deserialize(&json);
        if let Err(e) = parsed {
            let path = e.path().to_string();
            let detail = e.into_inner().to_string();
            let field = match path.as_str() {
                "." => locate(&json, &detail),
                _ => Some(path),
            };
            return Err(CdEventError(match field {
                Some(field) => format!("{field}: {detail}"),
                None => detail,
            }));
        }
        Ok(CdEvent {
            id: text(&json, "/context/id").unwrap_or_default().to_owned(),
            source: text(&json, "/context/source")
                .unwrap_or_default()
                .to_owned(),
            timestamp: text(&json, "/context/timestamp")
                .unwrap_or_default()
                .to_owned(),
            subject_id: text(&json, "/subject/id").unwrap_or_default().to_owned(),
            success: text(&json, "/subject/content/outcome")
                .is_none_or(|outcome| matches!(outcome, "success" | "pass")),
            kind,
            spec_version,
            json,
        })
    }

    /// `(subject, predicate, version)` of the type: `dev.cdevents.build.finished.0.2.0` gives
    /// `("build", "finished", "0.2.0")`.
    pub fn type_parts(&self) -> (&str, &str, &str) {
        let mut parts = self.kind.splitn(5, '.');
        let _ = (parts.next(), parts.next());
        let subject = parts.next().unwrap_or_default();
        let predicate = parts.next().unwrap_or_default();
        let version = parts.next().unwrap_or_default();
        (subject, predicate, version)
    }

    /// The registry event for this CDEvent. Its payload is the CDEvent wrapped in a structured
    /// CloudEvent: `base` holds the attributes it arrived with, if it arrived as a CloudEvent;
    /// `extra` attributes are added. `path` is where it was posted.
    pub fn into_ingested(
        self,
        base: Option<Map<String, Value>>,
        extra: Map<String, Value>,
        path: &str,
    ) -> Result<Ingested, serde_json::Error> {
        let (subject, predicate, version) = self.type_parts();
        let (subject, predicate, version) =
            (subject.to_owned(), predicate.to_owned(), version.to_owned());
        let mut event = base.unwrap_or_else(|| {
            let mut event = Map::new();
            event.insert("specversion".into(), "1.0".into());
            event.insert("id".into(), self.id.clone().into());
            event.insert("source".into(), self.source.clone().into());
            event.insert("type".into(), self.kind.clone().into());
            if !self.timestamp.is_empty() {
                event.insert("time".into(), self.timestamp.clone().into());
            }
            event
        });
        event.remove("data_base64");
        event.insert("datacontenttype".into(), "application/json".into());
        event.insert("data".into(), self.json);
        event.extend(extra);
        Ok(Ingested {
            path: path.to_owned(),
            payload: serde_json::value::to_raw_value(&event)?,
            route: Route::Type {
                kind: self.kind.clone(),
                auto: Some(AutoReceiver {
                    name: self.kind.clone(),
                    version: version.clone(),
                    description: format!("CDEvents {subject} {predicate}, created on first sight"),
                }),
            },
            origin: (self.source.clone(), self.id),
            nvrpp: Nvrpp {
                name: self.subject_id,
                version,
                release: self.spec_version,
                platform_id: self.source,
                package: subject,
            },
            description: self.kind,
            success: self.success,
        })
    }
}

/// The field an SDK error is about, when the error quotes the field's value
/// (e.g. "unknown variant `pass`" → `subject.content.outcome`).
fn locate(json: &Value, detail: &str) -> Option<String> {
    let quoted = detail.split('`').nth(1)?;
    fn find(value: &Value, needle: &str, path: &mut Vec<String>) -> bool {
        match value {
            Value::String(s) => s == needle,
            Value::Object(map) => map.iter().any(|(k, v)| {
                path.push(k.clone());
                let found = find(v, needle, path);
                if !found {
                    path.pop();
                }
                found
            }),
            _ => false,
        }
    }
    let mut path = Vec::new();
    find(json, quoted, &mut path).then(|| path.join("."))
}

/// A deterministic id from the content: the first 16 bytes of the SHA-256 of its JSON text
/// with sorted keys, as 32 hex digits.
fn content_id(json: &Value) -> String {
    let digest = Sha256::digest(json.to_string().as_bytes());
    hex::encode(&digest[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn finished(spec: &str, ty: &str, outcome: &str) -> Value {
        json!({"context": {"specversion": spec, "id": "0", "source": "/ci", "type": ty,
            "timestamp": "2026-11-23T10:00:00Z"},
            "subject": {"id": "run-1", "source": "/ci", "type": "pipelineRun",
            "content": {"pipelineName": "p", "outcome": outcome}}})
    }

    #[test]
    fn a_v05_outcome_outside_the_enum_is_refused() {
        let bad = finished("0.5.0", "dev.cdevents.pipelinerun.finished.0.3.0", "pass");
        let err = CdEvent::parse(bad).unwrap_err().0;
        assert!(
            err.starts_with("subject.content.outcome: unknown variant `pass`"),
            "{err}"
        );
        let ok = CdEvent::parse(finished(
            "0.5.0",
            "dev.cdevents.pipelinerun.finished.0.3.0",
            "success",
        ))
        .unwrap();
        assert!(ok.success);
        assert_eq!(ok.type_parts(), ("pipelinerun", "finished", "0.3.0"));
    }

    #[test]
    fn a_missing_id_becomes_a_content_id() {
        let v04 = |outcome| {
            let mut e = finished("0.4.1", "dev.cdevents.pipelinerun.finished.0.2.0", outcome);
            let spec = e["context"]
                .as_object_mut()
                .unwrap()
                .remove("specversion")
                .unwrap();
            e["context"]["version"] = spec;
            e
        };
        let a = CdEvent::parse(v04("failure")).unwrap();
        let b = CdEvent::parse(v04("failure")).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(a.id.len(), 32);
        assert!(!a.success);
        let c = CdEvent::parse(v04("success")).unwrap();
        assert_ne!(a.id, c.id);
    }

    #[test]
    fn unknown_versions_and_foreign_types_are_refused() {
        assert!(
            CdEvent::parse(finished(
                "0.9.0",
                "dev.cdevents.pipelinerun.finished.0.3.0",
                "success"
            ))
            .is_err()
        );
        assert!(
            CdEvent::parse(finished("0.5.0", "com.example.thing.done.0.1.0", "success")).is_err()
        );
        let custom = json!({"context": {"specversion": "0.5.0", "id": "x", "source": "/probe",
            "type": "dev.cdeventsx.probes-ping.done.0.1.0", "timestamp": "2026-11-23T10:00:00Z"},
            "subject": {"id": "p", "content": {"anything": [1, 2]}}});
        assert!(CdEvent::parse(custom).is_ok());
    }
}

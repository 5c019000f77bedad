//! How a CloudEvent becomes an event of the registry.
//!
//! | event field | CloudEvent extension | default |
//! |---|---|---|
//! | receiver | `eprreceiverid` | the one receiver whose type is the CloudEvent `type` |
//! | name | `eprname` | `subject`, else `source` |
//! | version | `eprversion` | `0` |
//! | release | `eprrelease` | `0` |
//! | platform_id | `eprplatformid` | `source` |
//! | package | `eprpackage` | `cloudevents` |
//! | description | `eprdescription` | `type` |
//! | success | `eprsuccess` (`true`/`false`) | `true` |
//!
//! The payload is the whole CloudEvent in structured form; `source` + `id` identify it, so
//! posting it again stores nothing new.

use super::cloudevent::{AttributeError, CloudEvent, attribute};
use crate::registry::ingest::{AutoReceiver, Ingested, Route};
use crate::registry::model::Nvrpp;

/// The registry event for a checked CloudEvent posted to `path`; `auto_receivers` lets a type
/// without a receiver get one created on the fly.
pub fn ingested(
    event: CloudEvent,
    auto_receivers: bool,
    path: &str,
) -> Result<Ingested, AttributeError> {
    let get = |name: &str| attribute(&event, name).filter(|v| !v.is_empty());
    let kind = get("type").unwrap_or_default();
    let source = get("source").unwrap_or_default();
    let id = get("id").unwrap_or_default();
    let route = match get("eprreceiverid") {
        Some(receiver) => Route::Receiver(receiver),
        None => Route::Type {
            auto: auto_receivers.then(|| AutoReceiver {
                name: kind.clone(),
                version: "1.0.0".into(),
                description: format!("CloudEvents of type {kind}, created on first sight"),
            }),
            kind: kind.clone(),
        },
    };
    let success = match get("eprsuccess").as_deref() {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => {
            return Err(AttributeError {
                attribute: "eprsuccess".into(),
                problem: format!("must be true or false, got {other:?}"),
            });
        }
    };
    let payload = serde_json::value::to_raw_value(&event).map_err(|e| AttributeError {
        attribute: "(event)".into(),
        problem: e.to_string(),
    })?;
    Ok(Ingested {
        path: path.to_owned(),
        route,
        nvrpp: Nvrpp {
            name: get("eprname")
                .or_else(|| get("subject"))
                .unwrap_or_else(|| source.clone()),
            version: get("eprversion").unwrap_or_else(|| "0".into()),
            release: get("eprrelease").unwrap_or_else(|| "0".into()),
            platform_id: get("eprplatformid").unwrap_or_else(|| source.clone()),
            package: get("eprpackage").unwrap_or_else(|| "cloudevents".into()),
        },
        description: get("eprdescription").unwrap_or_else(|| kind.clone()),
        success,
        payload,
        origin: (source, id),
    })
}

//! cdevents-migrate: rewrites CDEvents of spec 0.4 (`context.version` 0.4.x) as spec 0.5.0
//! events, following the differences between the spec's 0.4.1 and 0.5 schemas:
//! - `context.version` becomes `context.specversion`, `0.5.0`;
//! - the type moves to its 0.5 version (`dev.cdevents.build.finished.0.2.0` becomes
//!   `dev.cdevents.build.finished.0.3.0`; custom `dev.cdeventsx.*` types keep theirs);
//! - in `subject.content`, every `url` is now a `uri`;
//! - an outcome takes one of 0.5's words: success, failure, cancel, error (`pass` is a
//!   success, `fail` a failure).
//!
//! The payload is either the CDEvent itself (posted to `/api/v1/events`) or a CloudEvent
//! carrying it in `data` (what the CDEvents webhook stores), whose `type` follows. NVRPP fields
//! the gateway derived from the old versions (version = type version, release = spec version)
//! follow too; the event stays with its receiver. Other payloads and other spec versions pass
//! unchanged. A 0.4 event that cannot be migrated (a type or outcome 0.4.1 does not have) is
//! refused, with the reason.

use epr_plugin_sdk::manifest;
use epr_plugin_sdk::transform::{Event, Guest, Manifest};
use serde_json::Value;

/// The spec version events are migrated to.
const SPEC: &str = "0.5.0";

/// Every event type of CDEvents 0.4.1: `subject.predicate`, its version there and in 0.5.
const TYPES: [(&str, &str, &str); 45] = [
    ("artifact.deleted", "0.1.0", "0.2.0"),
    ("artifact.downloaded", "0.1.0", "0.2.0"),
    ("artifact.packaged", "0.2.0", "0.3.0"),
    ("artifact.published", "0.2.0", "0.3.0"),
    ("artifact.signed", "0.2.0", "0.3.0"),
    ("branch.created", "0.2.0", "0.3.0"),
    ("branch.deleted", "0.2.0", "0.3.0"),
    ("build.finished", "0.2.0", "0.3.0"),
    ("build.queued", "0.2.0", "0.3.0"),
    ("build.started", "0.2.0", "0.3.0"),
    ("change.abandoned", "0.2.0", "0.3.0"),
    ("change.created", "0.3.0", "0.4.0"),
    ("change.merged", "0.2.0", "0.3.0"),
    ("change.reviewed", "0.2.0", "0.3.0"),
    ("change.updated", "0.2.0", "0.3.0"),
    ("environment.created", "0.2.0", "0.3.0"),
    ("environment.deleted", "0.2.0", "0.3.0"),
    ("environment.modified", "0.2.0", "0.3.0"),
    ("incident.detected", "0.2.0", "0.3.0"),
    ("incident.reported", "0.2.0", "0.3.0"),
    ("incident.resolved", "0.2.0", "0.3.0"),
    ("pipelinerun.finished", "0.2.0", "0.3.0"),
    ("pipelinerun.queued", "0.2.0", "0.3.0"),
    ("pipelinerun.started", "0.2.0", "0.3.0"),
    ("repository.created", "0.2.0", "0.3.0"),
    ("repository.deleted", "0.2.0", "0.3.0"),
    ("repository.modified", "0.2.0", "0.3.0"),
    ("service.deployed", "0.2.0", "0.3.0"),
    ("service.published", "0.2.0", "0.3.0"),
    ("service.removed", "0.2.0", "0.3.0"),
    ("service.rolledback", "0.2.0", "0.3.0"),
    ("service.upgraded", "0.2.0", "0.3.0"),
    ("taskrun.finished", "0.2.0", "0.3.0"),
    ("taskrun.started", "0.2.0", "0.3.0"),
    ("testcaserun.finished", "0.2.0", "0.3.0"),
    ("testcaserun.queued", "0.2.0", "0.3.0"),
    ("testcaserun.skipped", "0.1.0", "0.2.0"),
    ("testcaserun.started", "0.2.0", "0.3.0"),
    ("testoutput.published", "0.2.0", "0.3.0"),
    ("testsuiterun.finished", "0.2.0", "0.3.0"),
    ("testsuiterun.queued", "0.2.0", "0.3.0"),
    ("testsuiterun.started", "0.2.0", "0.3.0"),
    ("ticket.closed", "0.1.0", "0.2.0"),
    ("ticket.created", "0.1.0", "0.2.0"),
    ("ticket.updated", "0.1.0", "0.2.0"),
];

/// What a migration changed that the event's other fields may repeat.
struct Migrated {
    /// The spec version it had.
    spec: String,
    /// Its new type.
    kind: String,
    /// The type version it had and the one it has now.
    type_version: (String, String),
}

/// The 0.5 type for a 0.4.1 type, with the old and new type versions.
fn type_0_5(kind: &str) -> Result<(String, (String, String)), String> {
    if let Some(custom) = kind.strip_prefix("dev.cdeventsx.") {
        let version = custom.splitn(3, '.').nth(2).unwrap_or_default().to_owned();
        return Ok((kind.to_owned(), (version.clone(), version)));
    }
    let name_and_version = kind
        .strip_prefix("dev.cdevents.")
        .ok_or_else(|| format!("context.type {kind:?} is not a CDEvents type"))?;
    let mut parts = name_and_version.splitn(3, '.');
    let (subject, predicate, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let name = format!("{subject}.{predicate}");
    let (_, old, new) = TYPES
        .iter()
        .find(|(known, ..)| *known == name)
        .ok_or_else(|| format!("context.type {kind:?}: CDEvents 0.4.1 has no {name} event"))?;
    if version != *old {
        return Err(format!(
            "context.type {kind:?}: CDEvents 0.4.1 has {name} {old}, not {version}"
        ));
    }
    Ok((
        format!("dev.cdevents.{name}.{new}"),
        ((*old).to_owned(), (*new).to_owned()),
    ))
}

/// An outcome in 0.5's words.
fn outcome_0_5(outcome: &str) -> Result<&'static str, String> {
    match outcome.to_ascii_lowercase().as_str() {
        "success" | "succeeded" | "pass" | "passed" => Ok("success"),
        "failure" | "failed" | "fail" => Ok("failure"),
        "cancel" | "canceled" | "cancelled" => Ok("cancel"),
        "error" | "errored" => Ok("error"),
        _ => Err(format!(
            "subject.content.outcome {outcome:?} has no CDEvents 0.5 equivalent (success, failure, cancel, error)"
        )),
    }
}

/// Renames every `url` key in `value` (at any depth) to `uri`.
fn rename_urls(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(url) = map.remove("url") {
                map.insert("uri".into(), url);
            }
            map.values_mut().for_each(rename_urls);
        }
        Value::Array(items) => items.iter_mut().for_each(rename_urls),
        _ => {}
    }
}

/// Migrates `cdevent` in place if it is a 0.4 CDEvent (`None`: left as it is).
fn migrate(cdevent: &mut Value) -> Result<Option<Migrated>, String> {
    let Some(context) = cdevent.get_mut("context").and_then(Value::as_object_mut) else {
        return Ok(None);
    };
    let Some(spec) = context
        .get("version")
        .and_then(Value::as_str)
        .filter(|v| v.starts_with("0.4."))
        .map(str::to_owned)
    else {
        return Ok(None);
    };
    let kind = context
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let (kind, type_version) = type_0_5(kind)?;
    context.remove("version");
    context.insert("specversion".into(), SPEC.into());
    context.insert("type".into(), kind.clone().into());
    if let Some(content) = cdevent.pointer_mut("/subject/content") {
        rename_urls(content);
        if let Some(outcome) = content.get_mut("outcome").filter(|o| o.is_string()) {
            *outcome = outcome_0_5(outcome.as_str().unwrap_or_default())?.into();
        }
    }
    Ok(Some(Migrated {
        spec,
        kind,
        type_version,
    }))
}

struct CdEventsMigrate;

impl Guest for CdEventsMigrate {
    fn describe() -> Manifest {
        manifest(
            "cdevents-migrate",
            env!("CARGO_PKG_VERSION"),
            "migrates CDEvents 0.4 to 0.5",
            &["dev.cdevents.*", "dev.cdeventsx.*"],
            Vec::new(),
        )
    }

    fn handle(mut event: Event) -> Result<Vec<Event>, String> {
        let Ok(mut payload) = serde_json::from_str::<Value>(&event.payload) else {
            return Ok(vec![event]);
        };
        // the CDEvent itself, or a CloudEvent carrying it as data
        let enveloped = payload.get("context").is_none()
            && payload
                .get("data")
                .is_some_and(|d| d.get("context").is_some());
        let cdevent = match enveloped {
            true => &mut payload["data"],
            false => &mut payload,
        };
        let Some(migrated) = migrate(cdevent)? else {
            return Ok(vec![event]);
        };
        if enveloped {
            payload["type"] = migrated.kind.into();
        }
        let (old_version, new_version) = migrated.type_version;
        let nvrpp = &mut event.nvrpp;
        if nvrpp.version == old_version {
            nvrpp.version = new_version;
        }
        if nvrpp.release == migrated.spec {
            nvrpp.release = SPEC.into();
        }
        event.payload = payload.to_string();
        Ok(vec![event])
    }
}

epr_plugin_sdk::transform::export_transform!(CdEventsMigrate);

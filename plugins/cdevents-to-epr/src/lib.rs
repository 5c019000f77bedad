//! cdevents-to-epr: for an event whose payload is a CDEvent, fills the NVRPP fields left empty
//! and sets `success`, as the gateway's built-in CDEvents webhook does: name = `subject.id`,
//! version = the type's version, release = the spec version, platform id = `context.source`,
//! package = the subject (`build`, `artifact`...), success = `subject.content.outcome` is
//! `success` or `pass` (true for types without an outcome). Other payloads pass unchanged.

use epr_plugin_sdk::manifest;
use epr_plugin_sdk::transform::{Event, Guest, Manifest};
use serde_json::Value;

struct CdEventsToEpr;

impl Guest for CdEventsToEpr {
    fn describe() -> Manifest {
        manifest(
            "cdevents-to-epr",
            env!("CARGO_PKG_VERSION"),
            "derives NVRPP and success from CDEvent payloads",
            &["dev.cdevents.*"],
            Vec::new(),
        )
    }

    fn handle(mut event: Event) -> Result<Vec<Event>, String> {
        let Ok(payload) = serde_json::from_str::<Value>(&event.payload) else {
            return Ok(vec![event]);
        };
        let text = |pointer: &str| payload.pointer(pointer).and_then(Value::as_str);
        let Some(kind) = text("/context/type").filter(|t| t.starts_with("dev.cdevents.")) else {
            return Ok(vec![event]);
        };
        // dev.cdevents.<subject>.<predicate>.<major>.<minor>.<patch>
        let parts: Vec<&str> = kind.split('.').collect();
        if parts.len() < 7 {
            return Err(format!("`{kind}` is not a CDEvent type"));
        }
        let derived = [
            text("/subject/id").unwrap_or_default().to_owned(),
            parts[4..].join("."),
            text("/context/specversion")
                .or_else(|| text("/context/version"))
                .unwrap_or_default()
                .to_owned(),
            text("/context/source").unwrap_or_default().to_owned(),
            parts[2].to_owned(),
        ];
        let n = &mut event.nvrpp;
        for (field, value) in [
            &mut n.name,
            &mut n.version,
            &mut n.release,
            &mut n.platform_id,
            &mut n.package,
        ]
        .into_iter()
        .zip(derived)
        {
            if field.is_empty() {
                *field = value;
            }
        }
        event.success =
            text("/subject/content/outcome").is_none_or(|o| matches!(o, "success" | "pass"));
        Ok(vec![event])
    }
}

epr_plugin_sdk::transform::export_transform!(CdEventsToEpr);

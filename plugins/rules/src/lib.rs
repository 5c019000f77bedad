//! rules: a watcher that emits a new event to a configured receiver when a stored event
//! matches a rule.
//!
//! Configuration `rules`: a JSON array; each rule matches on any of `type` (the receiver type),
//! `name`, `version`, `release`, `platform_id`, `package` (globs, `*` any run of characters)
//! and `success` (true/false), and emits to `receiver_id` an event about the same unit with the
//! same success, described by `description` (default: the rule's index), whose payload is
//! `payload` if given, else `{"rule", "event_id", "receiver_type", "success"}`.
//!
//! ```json
//! [{"type": "dev.cdevents.build.*", "success": false,
//!   "receiver_id": "01J...", "description": "a build failed"}]
//! ```

use epr_plugin_sdk::watcher::{Capability, Event, Guest, Manifest, host};
use epr_plugin_sdk::{glob_matches, manifest};
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Rule {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    version: Option<String>,
    release: Option<String>,
    platform_id: Option<String>,
    package: Option<String>,
    success: Option<bool>,
    receiver_id: String,
    description: Option<String>,
    payload: Option<Value>,
}

impl Rule {
    fn matches(&self, event: &Event) -> bool {
        let unit = &event.nvrpp;
        let fields = [
            (&self.kind, &event.receiver_type),
            (&self.name, &unit.name),
            (&self.version, &unit.version),
            (&self.release, &unit.release),
            (&self.platform_id, &unit.platform_id),
            (&self.package, &unit.package),
        ];
        fields
            .iter()
            .all(|(pattern, value)| pattern.as_ref().is_none_or(|p| glob_matches(p, value)))
            && self.success.is_none_or(|s| s == event.success)
    }
}

struct Rules;

impl Guest for Rules {
    fn describe() -> Manifest {
        manifest(
            "rules",
            env!("CARGO_PKG_VERSION"),
            "emits an event to a receiver when a stored event matches a rule",
            &[],
            vec![Capability::EmitEvent],
        )
    }

    fn on_event(event: Event) -> Result<(), String> {
        let text = host::config_get("rules").ok_or("no `rules` configured")?;
        let rules: Vec<Rule> =
            serde_json::from_str(&text).map_err(|e| format!("configuration `rules`: {e}"))?;
        for (index, rule) in rules.iter().enumerate() {
            if !rule.matches(&event) {
                continue;
            }
            let payload = rule.payload.clone().unwrap_or_else(|| {
                json!({
                    "rule": index,
                    "event_id": event.id,
                    "receiver_type": event.receiver_type,
                    "success": event.success,
                })
            });
            host::emit_event(&host::NewEvent {
                receiver_id: rule.receiver_id.clone(),
                nvrpp: event.nvrpp.clone(),
                success: event.success,
                description: rule
                    .description
                    .clone()
                    .unwrap_or_else(|| format!("rule {index} matched event {}", event.id)),
                payload: payload.to_string(),
            })
            .map_err(|e| format!("rule {index}: {e}"))?;
        }
        Ok(())
    }
}

epr_plugin_sdk::watcher::export_watcher!(Rules);

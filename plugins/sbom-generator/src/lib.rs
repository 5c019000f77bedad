//! sbom-generator: for artifact and build events whose payload lists components, emits an event
//! whose payload is a CycloneDX 1.5 JSON SBOM of the unit (the event's NVRPP) and those
//! components, to the configured `receiver_id`.
//!
//! Components are read from `components`, `subject.content.components` or
//! `data.subject.content.components` of the payload (a plain event, a CDEvent, or a CloudEvent
//! carrying one): objects with `name` and optional `version`, `purl`, `type` (a CycloneDX
//! component type; `library` when absent or unknown). Events without components are skipped.

use epr_plugin_sdk::manifest;
use epr_plugin_sdk::watcher::{Capability, Event, Guest, Manifest, host};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// CycloneDX 1.5 component types.
const TYPES: [&str; 12] = [
    "application",
    "framework",
    "library",
    "container",
    "platform",
    "operating-system",
    "device",
    "device-driver",
    "firmware",
    "file",
    "machine-learning-model",
    "data",
];

struct SbomGenerator;

impl Guest for SbomGenerator {
    fn describe() -> Manifest {
        manifest(
            "sbom-generator",
            env!("CARGO_PKG_VERSION"),
            "emits a CycloneDX SBOM event for artifact and build events listing components",
            &["*artifact*", "*build*"],
            vec![Capability::EmitEvent],
        )
    }

    fn on_event(event: Event) -> Result<(), String> {
        let receiver_id = host::config_get("receiver_id").ok_or("no `receiver_id` configured")?;
        let payload: Value = serde_json::from_str(&event.payload).unwrap_or(Value::Null);
        let Some(listed) = [
            "/components",
            "/subject/content/components",
            "/data/subject/content/components",
        ]
        .iter()
        .find_map(|p| payload.pointer(p).and_then(Value::as_array)) else {
            return Ok(());
        };
        let components: Vec<Value> = listed.iter().filter_map(component).collect();
        let unit = &event.nvrpp;
        let bom = json!({
            "bomFormat": "CycloneDX",
            "specVersion": "1.5",
            "serialNumber": serial_number(&event.id),
            "version": 1,
            "metadata": {
                "timestamp": event.created_at,
                "tools": {"components": [{"type": "application", "name": "epr-gateway sbom-generator",
                    "version": env!("CARGO_PKG_VERSION")}]},
                "component": {"type": "application", "bom-ref": "unit", "name": unit.name,
                    "version": unit.version},
            },
            "components": components,
        });
        host::emit_event(&host::NewEvent {
            receiver_id,
            nvrpp: event.nvrpp.clone(),
            success: event.success,
            description: format!("CycloneDX SBOM of {} {}", unit.name, unit.version),
            payload: bom.to_string(),
        })?;
        Ok(())
    }
}

/// A CycloneDX component from a listed one (`None` without a name).
fn component(listed: &Value) -> Option<Value> {
    let text = |key: &str| listed.get(key).and_then(Value::as_str);
    let name = text("name")?;
    let kind = text("type")
        .filter(|t| TYPES.contains(t))
        .unwrap_or("library");
    let mut out = Map::new();
    out.insert("type".into(), kind.into());
    out.insert("name".into(), name.into());
    let reference = match (text("purl"), text("version")) {
        (Some(purl), _) => purl.to_owned(),
        (None, Some(version)) => format!("{name}@{version}"),
        (None, None) => name.to_owned(),
    };
    out.insert("bom-ref".into(), reference.into());
    for key in ["version", "purl"] {
        if let Some(value) = text(key) {
            out.insert(key.into(), value.into());
        }
    }
    Some(Value::Object(out))
}

/// A name-based UUID (version 5 layout, SHA-256) of the event id: the same event always gives
/// the same serial number.
fn serial_number(event_id: &str) -> String {
    let mut b: [u8; 16] = Sha256::digest(event_id.as_bytes())[..16]
        .try_into()
        .unwrap_or_default();
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

epr_plugin_sdk::watcher::export_watcher!(SbomGenerator);

//! The entities of the registry, as stored and as returned by the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// A receiver: a named, versioned kind of event with the JSON Schema its payloads must match.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Receiver {
    /// Server-made ULID.
    pub id: String,
    /// Name given by the client.
    pub name: String,
    /// The event type (e.g. `dev.cdevents.build.finished`); also the type of its Kafka messages.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version given by the client.
    pub version: String,
    /// Free text.
    pub description: String,
    /// The JSON Schema document, exactly as posted.
    #[schema(value_type = Object)]
    pub schema: Box<RawValue>,
    /// `hex(sha256("v1 " + type + " " + description + " " + name + " " + version))`, as EPR computes it.
    pub fingerprint: String,
    /// When the receiver was stored.
    pub created_at: DateTime<Utc>,
}

/// EPR's receiver fingerprint.
pub fn fingerprint(kind: &str, description: &str, name: &str, version: &str) -> String {
    let text = format!("v1 {kind} {description} {name} {version}");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The unit an event is about: name, version, release, platform id and package.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Nvrpp {
    /// Name of the unit.
    pub name: String,
    /// Version of the unit.
    pub version: String,
    /// Release of the unit.
    pub release: String,
    /// Platform the unit runs on.
    pub platform_id: String,
    /// Package the unit ships in.
    pub package: String,
}

impl Nvrpp {
    /// The five parts in their fixed order.
    pub fn parts(&self) -> [&str; 5] {
        [
            &self.name,
            &self.version,
            &self.release,
            &self.platform_id,
            &self.package,
        ]
    }
}

/// An event: immutable once stored.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Event {
    /// Server-made ULID; ids sort in the order events were stored.
    pub id: String,
    /// Name of the unit the event is about.
    pub name: String,
    /// Version of the unit.
    pub version: String,
    /// Release of the unit.
    pub release: String,
    /// Platform the unit runs on.
    pub platform_id: String,
    /// Package the unit ships in.
    pub package: String,
    /// Free text.
    pub description: String,
    /// The payload, byte for byte as posted.
    #[schema(value_type = serde_json::Value)]
    pub payload: Box<RawValue>,
    /// Whether the step the event reports succeeded.
    pub success: bool,
    /// The receiver whose schema the payload matched.
    pub event_receiver_id: String,
    /// When the event was stored.
    pub created_at: DateTime<Utc>,
    /// The event whose handling by a plugin emitted this one (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caused_by: Option<String>,
    /// Ids of the groups this event completed when it was stored (absent when none): written
    /// with the event, so a unit's provenance needs no scan of the log.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub completed_group_ids: Vec<String>,
}

impl Event {
    /// The unit the event is about.
    pub fn nvrpp(&self) -> Nvrpp {
        Nvrpp {
            name: self.name.clone(),
            version: self.version.clone(),
            release: self.release.clone(),
            platform_id: self.platform_id.clone(),
            package: self.package.clone(),
        }
    }
}

/// A group: a set of receivers whose joint success for one unit is itself an event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Group {
    /// Server-made ULID.
    pub id: String,
    /// Name given by the client.
    pub name: String,
    /// The type of the group-complete messages.
    #[serde(rename = "type")]
    pub kind: String,
    /// Version given by the client.
    pub version: String,
    /// Free text.
    pub description: String,
    /// Disabled groups never complete.
    pub enabled: bool,
    /// The member receivers (at least one, no duplicates).
    pub event_receiver_ids: Vec<String>,
    /// When the group was stored.
    pub created_at: DateTime<Utc>,
    /// When the group was last enabled or disabled.
    pub updated_at: DateTime<Utc>,
}

/// An event together with its receiver, as `GET /api/v1/events/{id}` returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventWithReceiver {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Its receiver, under EPR's key.
    #[serde(rename = "EventReceiver")]
    pub receiver: Receiver,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_matches_epr() {
        assert_eq!(
            fingerprint(
                "foo.bar",
                "The event receiver of Brixton",
                "watcher-workshop",
                "1.0.0"
            ),
            "b183c34c7ba56b17f89dfe0c0b22c0a340889cae88d8e87a3f16bc5bdc8f7acb"
        );
    }
}

//! What clients send to create things, and the checks EPR applies to it.
//!
//! Every field is optional at the serde level so that a missing or `null` field gets EPR's
//! `<field> cannot be blank` message instead of a parser error; unknown keys are ignored.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use super::error::RegistryError;
use super::model::Nvrpp;

/// Body of `POST /api/v1/receivers`.
#[derive(Debug, Default, Deserialize, ToSchema, JsonSchema)]
pub struct NewReceiver {
    /// Name.
    #[schemars(required)]
    pub name: Option<String>,
    /// Event type, e.g. `dev.cdevents.build.finished`.
    #[serde(rename = "type")]
    #[schemars(required)]
    pub kind: Option<String>,
    /// Version.
    #[schemars(required)]
    pub version: Option<String>,
    /// Description.
    #[schemars(required)]
    pub description: Option<String>,
    /// JSON Schema document (or a string holding one) that events' payloads must match.
    #[schema(value_type = Option<Object>)]
    #[schemars(required, with = "serde_json::Map<String, serde_json::Value>")]
    pub schema: Option<Box<RawValue>>,
}

/// Body of `POST /api/v1/events`.
#[derive(Debug, Default, Deserialize, ToSchema, JsonSchema)]
pub struct NewEvent {
    /// Unit name.
    #[schemars(required)]
    pub name: Option<String>,
    /// Unit version.
    #[schemars(required)]
    pub version: Option<String>,
    /// Unit release.
    #[schemars(required)]
    pub release: Option<String>,
    /// Unit platform.
    #[schemars(required)]
    pub platform_id: Option<String>,
    /// Unit package.
    #[schemars(required)]
    pub package: Option<String>,
    /// Description.
    #[schemars(required)]
    pub description: Option<String>,
    /// Payload, kept byte for byte; must match the receiver's JSON Schema (read it from the
    /// resource `epr://receivers/{id}/schema`).
    #[schema(value_type = Option<serde_json::Value>)]
    #[schemars(required, with = "serde_json::Value")]
    pub payload: Option<Box<RawValue>>,
    /// Success (default false).
    pub success: Option<bool>,
    /// The receiver the event belongs to.
    #[schemars(required)]
    pub event_receiver_id: Option<String>,
}

/// Body of `POST /api/v1/groups`.
#[derive(Debug, Default, Deserialize, ToSchema, JsonSchema)]
pub struct NewGroup {
    /// Name.
    #[schemars(required)]
    pub name: Option<String>,
    /// Type of the group-complete messages.
    #[serde(rename = "type")]
    #[schemars(required)]
    pub kind: Option<String>,
    /// Version.
    #[schemars(required)]
    pub version: Option<String>,
    /// Description.
    #[schemars(required)]
    pub description: Option<String>,
    /// Enabled from the start (default true).
    pub enabled: Option<bool>,
    /// Member receivers (ids): the group completes for a unit when each one's latest event
    /// about it is a success.
    #[schemars(required)]
    pub event_receiver_ids: Option<Vec<String>>,
}

/// Body of `PATCH /api/v1/groups/{id}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct GroupPatch {
    /// Enable or disable the group.
    pub enabled: Option<bool>,
}

/// Collects `<label> cannot be blank` messages, joined by newlines as EPR does (and `<label>
/// cannot contain NUL characters`: no store keeps them in a name, and PostgreSQL refuses them).
#[derive(Default)]
struct FieldCheck {
    missing: Vec<String>,
}

impl FieldCheck {
    /// Takes the field's value, noting it when blank (absent, null or only whitespace).
    fn take(&mut self, value: &mut Option<String>, label: &str) -> String {
        let value = value.take().unwrap_or_default();
        self.check(&value, label);
        value
    }

    /// Notes the field when `value` is blank (empty or only whitespace) or holds a NUL.
    fn check(&mut self, value: &str, label: &str) {
        if value.trim().is_empty() {
            self.missing.push(format!("{label} cannot be blank"));
        } else if value.contains('\0') {
            self.missing
                .push(format!("{label} cannot contain NUL characters"));
        }
    }

    /// Fails with every blank field in one message.
    fn finish(self) -> Result<(), RegistryError> {
        if self.missing.is_empty() {
            Ok(())
        } else {
            Err(RegistryError::invalid(self.missing.join("\n")))
        }
    }
}

/// The text fields every definition (receiver or group) has, none of them blank.
pub(crate) struct Definition {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) version: String,
    pub(crate) description: String,
}

impl Definition {
    /// Takes the fields, failing with every blank one in EPR's words.
    fn take(
        name: &mut Option<String>,
        kind: &mut Option<String>,
        version: &mut Option<String>,
        description: &mut Option<String>,
    ) -> Result<Self, RegistryError> {
        let mut check = FieldCheck::default();
        let definition = Definition {
            name: check.take(name, "name"),
            kind: check.take(kind, "type"),
            version: check.take(version, "version"),
            description: check.take(description, "description"),
        };
        check.finish()?;
        Ok(definition)
    }
}

impl NewReceiver {
    /// Its definition fields, none blank.
    pub(crate) fn definition(&mut self) -> Result<Definition, RegistryError> {
        Definition::take(
            &mut self.name,
            &mut self.kind,
            &mut self.version,
            &mut self.description,
        )
    }
}

impl NewGroup {
    /// Its definition fields, none blank.
    pub(crate) fn definition(&mut self) -> Result<Definition, RegistryError> {
        Definition::take(
            &mut self.name,
            &mut self.kind,
            &mut self.version,
            &mut self.description,
        )
    }
}

/// Checks the text fields of an event (its unit and description, then `extra`), failing with
/// every blank one in EPR's words and order.
pub(crate) fn check_event_fields(
    unit: &Nvrpp,
    description: &str,
    extra: &[(&str, &str)],
) -> Result<(), RegistryError> {
    let mut check = FieldCheck::default();
    for (value, label) in [
        (unit.name.as_str(), "name"),
        (&unit.version, "version"),
        (&unit.release, "release"),
        (&unit.platform_id, "platform id"),
        (&unit.package, "package"),
        (description, "description"),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    {
        check.check(value, label);
    }
    check.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_fields_are_all_reported_in_order() {
        let mut check = FieldCheck::default();
        check.take(&mut None, "name");
        check.take(&mut Some("  ".into()), "version");
        check.take(&mut Some("ok".into()), "release");
        check.take(&mut Some("a\0b".into()), "package");
        let err = check.finish().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid input: name cannot be blank\nversion cannot be blank\npackage cannot contain NUL characters"
        );
    }
}

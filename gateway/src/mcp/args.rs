//! The arguments of each tool: what an assistant sends, with the JSON Schema it is shown.
//!
//! The first nine take the names and arguments of the EPR workshop's MCP server, so that
//! prompts written for it work: `epr_url` is accepted and ignored (this server is the
//! registry), searches take their fields in `data`, creates their object in `<kind>_data`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::registry::error::RegistryError;
use crate::registry::input::{NewEvent, NewGroup, NewReceiver};
use crate::registry::model::Nvrpp;
use crate::registry::query::{DefinitionFilter, EventFilter, Page};

/// Accepted for prompts written for the workshop's server, and ignored: this server is the
/// registry it reports on.
pub type EprUrl = Option<String>;

/// One object by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ById {
    /// Ignored (this server is the registry); accepted for prompts written for EPR's own MCP server.
    #[serde(default, rename = "epr_url")]
    pub _epr_url: EprUrl,
    /// The id (a 26-character ULID).
    pub id: String,
}

/// A search: `F` is the filter of the objects searched (events, or receivers and groups).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Search<F: Default> {
    /// Ignored (this server is the registry); accepted for prompts written for EPR's own MCP server.
    #[serde(default, rename = "epr_url")]
    pub _epr_url: EprUrl,
    /// Fields that must all be equal (none: every object), e.g. `{"name": "checkout"}`.
    #[serde(default)]
    pub data: F,
    /// Results per page, 1 to 1000 (default 100).
    pub limit: Option<i64>,
    /// The `next` cursor of the previous page's result.
    pub after: Option<String>,
}

impl<F: Default> Search<F> {
    /// The page asked for.
    pub fn page(&self) -> Result<Page, RegistryError> {
        Page::new(self.limit, self.after.clone())
    }
}

/// A search of events.
pub type EventSearch = Search<EventFilter>;
/// A search of receivers or groups.
pub type DefinitionSearch = Search<DefinitionFilter>;

/// A new event.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEvent {
    /// Ignored (this server is the registry); accepted for prompts written for EPR's own MCP server.
    #[serde(default, rename = "epr_url")]
    pub _epr_url: EprUrl,
    /// The event, as `POST /api/v1/events` takes it.
    pub event_data: NewEvent,
}

/// A new receiver.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateReceiver {
    /// Ignored (this server is the registry); accepted for prompts written for EPR's own MCP server.
    #[serde(default, rename = "epr_url")]
    pub _epr_url: EprUrl,
    /// The receiver, as `POST /api/v1/receivers` takes it.
    pub receiver_data: NewReceiver,
}

/// A new group.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGroup {
    /// Ignored (this server is the registry); accepted for prompts written for EPR's own MCP server.
    #[serde(default, rename = "epr_url")]
    pub _epr_url: EprUrl,
    /// The group, as `POST /api/v1/groups` takes it.
    pub group_data: NewGroup,
}

/// A unit's history.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    /// The unit: all five parts, as its events carry them.
    pub unit: Nvrpp,
    /// Most events (the latest ones), 1 to 1000 (default 100).
    pub limit: Option<i64>,
}

/// A group's gate for a unit.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupStatus {
    /// The group's id.
    pub group_id: String,
    /// The unit: all five parts, as its events carry them.
    pub unit: Nvrpp,
}

/// The latest messages of the log.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentEvents {
    /// How many, 1 to 100 (default 20).
    pub count: Option<usize>,
    /// Only messages whose type starts with this, e.g. `dev.cdevents.service`.
    #[serde(default)]
    pub type_prefix: String,
}

/// One plugin by name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PluginName {
    /// The plugin's name.
    pub name: String,
}

/// No arguments.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Nothing {}

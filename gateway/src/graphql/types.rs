//! The object and input types of EPR's GraphQL schema, and their conversions to and from the
//! registry's.

use async_graphql::{ID, InputObject, SimpleObject};

use super::scalars::{Json, Time};
use crate::plugins::dead_letters::DeadLetter;
use crate::plugins::manager::PluginView;
use crate::plugins::model::World;
use crate::registry::input::{NewEvent, NewGroup, NewReceiver};
use crate::registry::model::{Event, Group, Receiver};
use crate::registry::provenance::ProvenanceStep;
use crate::registry::query::{DefinitionFilter, EventFilter};

/// An event.
#[derive(SimpleObject)]
#[graphql(name = "Event", rename_fields = "snake_case")]
pub struct EventObject {
    id: ID,
    name: String,
    version: String,
    release: String,
    platform_id: String,
    package: String,
    description: String,
    payload: Json,
    event_receiver_id: ID,
    success: bool,
    created_at: Time,
}

impl From<Event> for EventObject {
    fn from(e: Event) -> Self {
        EventObject {
            id: ID(e.id),
            name: e.name,
            version: e.version,
            release: e.release,
            platform_id: e.platform_id,
            package: e.package,
            description: e.description,
            payload: Json(e.payload),
            event_receiver_id: ID(e.event_receiver_id),
            success: e.success,
            created_at: Time(e.created_at),
        }
    }
}

/// An event receiver.
#[derive(SimpleObject)]
#[graphql(name = "EventReceiver", rename_fields = "snake_case")]
pub struct ReceiverObject {
    id: ID,
    name: String,
    #[graphql(name = "type")]
    kind: String,
    version: String,
    description: String,
    schema: Json,
    fingerprint: String,
    created_at: Time,
}

impl From<Receiver> for ReceiverObject {
    fn from(r: Receiver) -> Self {
        ReceiverObject {
            id: ID(r.id),
            name: r.name,
            kind: r.kind,
            version: r.version,
            description: r.description,
            schema: Json(r.schema),
            fingerprint: r.fingerprint,
            created_at: Time(r.created_at),
        }
    }
}

/// An event receiver group.
#[derive(SimpleObject)]
#[graphql(name = "EventReceiverGroup", rename_fields = "snake_case")]
pub struct GroupObject {
    id: ID,
    name: String,
    #[graphql(name = "type")]
    kind: String,
    version: String,
    description: String,
    enabled: bool,
    event_receiver_ids: Vec<ID>,
    created_at: Time,
    updated_at: Time,
}

impl From<Group> for GroupObject {
    fn from(g: Group) -> Self {
        GroupObject {
            id: ID(g.id),
            name: g.name,
            kind: g.kind,
            version: g.version,
            description: g.description,
            enabled: g.enabled,
            event_receiver_ids: g.event_receiver_ids.into_iter().map(ID).collect(),
            created_at: Time(g.created_at),
            updated_at: Time(g.updated_at),
        }
    }
}

/// Checks a field the server makes (`id`, `created_at`...), which EPR's Python client sends
/// empty with every create (it sends its whole dataclass): empty is ignored, a value refused.
fn output_only(value: &String) -> Result<(), String> {
    match value.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "the gateway sets this field itself: leave it out or empty (got {value:?})"
        )),
    }
}

/// The fields the server makes, on every create input: EPR's Python client sends them empty
/// (its whole dataclass), so empty is accepted and ignored, and a value refused.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
struct ServerMade {
    /// Output only: empty or absent.
    #[graphql(validator(custom = "output_only"))]
    id: Option<String>,
    /// Output only: empty or absent.
    #[graphql(validator(custom = "output_only"))]
    fingerprint: Option<String>,
    /// Output only: empty or absent.
    #[graphql(validator(custom = "output_only"))]
    created_at: Option<String>,
    /// Output only: empty or absent.
    #[graphql(validator(custom = "output_only"))]
    updated_at: Option<String>,
}

/// A new event.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct CreateEventInput {
    #[graphql(flatten)]
    _made_by_the_server: ServerMade,
    /// Output only, ignored (EPR's Python client sends `{}`).
    #[graphql(name = "event_receiver")]
    _event_receiver: Option<Json>,
    name: String,
    version: String,
    release: String,
    platform_id: String,
    package: String,
    description: String,
    payload: Json,
    event_receiver_id: ID,
    success: bool,
}

impl From<CreateEventInput> for NewEvent {
    fn from(i: CreateEventInput) -> Self {
        NewEvent {
            name: Some(i.name),
            version: Some(i.version),
            release: Some(i.release),
            platform_id: Some(i.platform_id),
            package: Some(i.package),
            description: Some(i.description),
            payload: Some(i.payload.0),
            success: Some(i.success),
            event_receiver_id: Some(i.event_receiver_id.0),
        }
    }
}

/// What events to find: every given field must be equal.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct FindEventInput {
    id: Option<ID>,
    name: Option<String>,
    version: Option<String>,
    release: Option<String>,
    platform_id: Option<String>,
    package: Option<String>,
    success: Option<bool>,
    event_receiver_id: Option<ID>,
}

impl From<FindEventInput> for EventFilter {
    fn from(i: FindEventInput) -> Self {
        EventFilter {
            id: i.id.map(|id| id.0),
            name: i.name,
            version: i.version,
            release: i.release,
            platform_id: i.platform_id,
            package: i.package,
            success: i.success,
            event_receiver_id: i.event_receiver_id.map(|id| id.0),
        }
    }
}

/// A new event receiver.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct CreateEventReceiverInput {
    #[graphql(flatten)]
    _made_by_the_server: ServerMade,
    name: String,
    #[graphql(name = "type")]
    kind: String,
    version: String,
    description: String,
    schema: Json,
}

impl From<CreateEventReceiverInput> for NewReceiver {
    fn from(i: CreateEventReceiverInput) -> Self {
        NewReceiver {
            name: Some(i.name),
            kind: Some(i.kind),
            version: Some(i.version),
            description: Some(i.description),
            schema: Some(i.schema.0),
        }
    }
}

/// A new event receiver group.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct CreateEventReceiverGroupInput {
    #[graphql(flatten)]
    _made_by_the_server: ServerMade,
    name: String,
    #[graphql(name = "type")]
    kind: String,
    version: String,
    description: String,
    enabled: bool,
    event_receiver_ids: Vec<ID>,
}

impl From<CreateEventReceiverGroupInput> for NewGroup {
    fn from(i: CreateEventReceiverGroupInput) -> Self {
        NewGroup {
            name: Some(i.name),
            kind: Some(i.kind),
            version: Some(i.version),
            description: Some(i.description),
            enabled: Some(i.enabled),
            event_receiver_ids: Some(i.event_receiver_ids.into_iter().map(|id| id.0).collect()),
        }
    }
}

/// What receivers to find: every given field must be equal.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct FindEventReceiverInput {
    id: Option<ID>,
    name: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
    version: Option<String>,
}

/// What groups to find: every given field must be equal.
#[derive(InputObject)]
#[graphql(rename_fields = "snake_case")]
pub struct FindEventReceiverGroupInput {
    id: Option<ID>,
    name: Option<String>,
    #[graphql(name = "type")]
    kind: Option<String>,
    version: Option<String>,
}

/// A receiver or group filter of the same four fields.
fn definition_filter(
    id: Option<ID>,
    name: Option<String>,
    kind: Option<String>,
    version: Option<String>,
) -> DefinitionFilter {
    DefinitionFilter {
        id: id.map(|id| id.0),
        name,
        kind,
        version,
    }
}

impl From<FindEventReceiverInput> for DefinitionFilter {
    fn from(i: FindEventReceiverInput) -> Self {
        definition_filter(i.id, i.name, i.kind, i.version)
    }
}

impl From<FindEventReceiverGroupInput> for DefinitionFilter {
    fn from(i: FindEventReceiverGroupInput) -> Self {
        definition_filter(i.id, i.name, i.kind, i.version)
    }
}

/// An installed plugin (beyond EPR's schema).
#[derive(SimpleObject)]
#[graphql(name = "Plugin", rename_fields = "snake_case")]
pub struct PluginObject {
    name: String,
    /// `watcher` or `transform`.
    world: String,
    /// Its manifest's version.
    version: String,
    description: String,
    enabled: bool,
    revision: u32,
    /// Calls since the gateway started.
    calls: u64,
    /// Failed calls since the gateway started.
    failures: u64,
    last_error: Option<String>,
    /// A watcher's cursor: the last log sequence number it is done with.
    cursor: Option<u64>,
    /// A watcher's dead letters.
    dead_letters: Option<u64>,
    /// Why the stored plugin did not load at start (it runs nothing until replaced).
    load_error: Option<String>,
    updated_at: Time,
}

impl From<PluginView> for PluginObject {
    fn from(p: PluginView) -> Self {
        let record = p.record;
        PluginObject {
            world: match record.world {
                World::Watcher => "watcher",
                World::Transform => "transform",
            }
            .into(),
            version: record.manifest.version,
            description: record.manifest.description,
            name: record.name,
            enabled: record.enabled,
            revision: record.revision,
            calls: p.calls,
            failures: p.failures,
            last_error: p.last_error,
            cursor: p.cursor,
            dead_letters: p.dead_letters.map(|n| n as u64),
            load_error: p.load_error,
            updated_at: Time(record.updated_at),
        }
    }
}

/// An event a watcher gave up on (beyond EPR's schema).
#[derive(SimpleObject)]
#[graphql(name = "DeadLetter", rename_fields = "snake_case")]
pub struct DeadLetterObject {
    /// Its log sequence number.
    seq: u64,
    event_id: ID,
    receiver_type: String,
    /// The last attempt's error.
    error: String,
    attempts: u32,
    failed_at: Time,
}

impl From<DeadLetter> for DeadLetterObject {
    fn from(d: DeadLetter) -> Self {
        DeadLetterObject {
            seq: d.seq,
            event_id: ID(d.event_id),
            receiver_type: d.receiver_type,
            error: d.error,
            attempts: d.attempts,
            failed_at: Time(d.failed_at),
        }
    }
}

/// One step of a unit's provenance (beyond EPR's schema): an event, its receiver and the groups
/// it completed.
#[derive(SimpleObject)]
#[graphql(name = "ProvenanceStep", rename_fields = "snake_case")]
pub struct ProvenanceStepObject {
    event: EventObject,
    event_receiver: ReceiverObject,
    /// The groups the event completed when it was stored.
    completed_groups: Vec<GroupObject>,
}

impl From<ProvenanceStep> for ProvenanceStepObject {
    fn from(s: ProvenanceStep) -> Self {
        ProvenanceStepObject {
            event: s.event.into(),
            event_receiver: s.receiver.into(),
            completed_groups: s.completed_groups.into_iter().map(Into::into).collect(),
        }
    }
}

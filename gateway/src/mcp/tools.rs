//! The tools: their catalogue (names, descriptions, input schemas, the token each needs) and
//! what each does, over the same registry, tokens and bounded queries as the REST API.

use std::sync::{Arc, LazyLock};

use axum::http::HeaderMap;
use rmcp::handler::server::common::schema_for_type;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::args;
use crate::http::AppState;
use crate::http::envelope::ApiError;
use crate::registry::gate::{GateStatus, MemberState};
use crate::registry::message::Message;
use crate::registry::model::Nvrpp;
use crate::registry::query::{Found, MAX_LIMIT, Page};

/// What calling a tool needs, as the equivalent REST call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Nothing (reads are open).
    Read,
    /// The ingest token (or the admin token), when an ingest token is set.
    Ingest,
    /// The admin token, when one is set.
    Admin,
}

/// What a tool answers: a short text for the assistant and the structured result.
struct Reply {
    summary: String,
    data: Value,
}

type Outcome = Result<Reply, ApiError>;

/// Which tool a call is for.
#[derive(Debug, Clone, Copy)]
enum Which {
    FetchEvent,
    FetchReceiver,
    FetchGroup,
    SearchEvents,
    SearchReceivers,
    SearchGroups,
    CreateEvent,
    CreateReceiver,
    CreateGroup,
    Provenance,
    GroupStatus,
    RecentEvents,
    ListPlugins,
    PluginDeadLetters,
    GatewayStatus,
}

/// One tool.
struct Spec {
    which: Which,
    name: &'static str,
    title: &'static str,
    description: &'static str,
    access: Access,
    schema: fn() -> Arc<JsonObject>,
}

/// Every tool, in the order they are listed.
const SPECS: &[Spec] = &[
    Spec {
        which: Which::FetchEvent,
        name: "fetch_event",
        title: "Fetch Event",
        description: "Fetch one event by id: its unit (name, version, release, platform_id, package), success, payload exactly as posted, and its receiver.",
        access: Access::Read,
        schema: schema_for_type::<args::ById>,
    },
    Spec {
        which: Which::FetchReceiver,
        name: "fetch_receiver",
        title: "Fetch Event Receiver",
        description: "Fetch one event receiver by id: its name, type, version, description and the JSON Schema its events' payloads must match.",
        access: Access::Read,
        schema: schema_for_type::<args::ById>,
    },
    Spec {
        which: Which::FetchGroup,
        name: "fetch_group",
        title: "Fetch Event Receiver Group",
        description: "Fetch one event receiver group by id: its member receivers, whether it is enabled, and the type of the message published when it completes for a unit.",
        access: Access::Read,
        schema: schema_for_type::<args::ById>,
    },
    Spec {
        which: Which::SearchEvents,
        name: "search_events",
        title: "Search Events",
        description: "Search events whose given fields (in data) are all equal, newest first, one page at a time: pass the result's next as after for the next page.",
        access: Access::Read,
        schema: schema_for_type::<args::EventSearch>,
    },
    Spec {
        which: Which::SearchReceivers,
        name: "search_receivers",
        title: "Search Event Receivers",
        description: "Search event receivers by id, name, type or version (in data), newest first, paged like search_events.",
        access: Access::Read,
        schema: schema_for_type::<args::DefinitionSearch>,
    },
    Spec {
        which: Which::SearchGroups,
        name: "search_groups",
        title: "Search Event Receiver Groups",
        description: "Search event receiver groups by id, name, type or version (in data), newest first, paged like search_events.",
        access: Access::Read,
        schema: schema_for_type::<args::DefinitionSearch>,
    },
    Spec {
        which: Which::CreateEvent,
        name: "create_event",
        title: "Create Event",
        description: "Store a new event for a receiver; its payload must match the receiver's JSON Schema (read the resource epr://receivers/{id}/schema first). Answers the new event's id once it is durable. Needs the ingest token when the gateway has one.",
        access: Access::Ingest,
        schema: schema_for_type::<args::CreateEvent>,
    },
    Spec {
        which: Which::CreateReceiver,
        name: "create_receiver",
        title: "Create Event Receiver",
        description: "Create an event receiver: a named, versioned event type with the JSON Schema its payloads must match. Answers the new receiver's id. Needs the admin token when the gateway has one.",
        access: Access::Admin,
        schema: schema_for_type::<args::CreateReceiver>,
    },
    Spec {
        which: Which::CreateGroup,
        name: "create_group",
        title: "Create Event Receiver Group",
        description: "Create a group of receivers that completes for a unit when the latest event of each member about that unit is a success. Answers the new group's id. Needs the admin token when the gateway has one.",
        access: Access::Admin,
        schema: schema_for_type::<args::CreateGroup>,
    },
    Spec {
        which: Which::Provenance,
        name: "provenance",
        title: "Provenance of a Unit",
        description: "The timeline of one unit (name, version, release, platform_id, package): its events oldest first, each with its receiver and the groups it completed.",
        access: Access::Read,
        schema: schema_for_type::<args::Provenance>,
    },
    Spec {
        which: Which::GroupStatus,
        name: "group_status",
        title: "Group Status for a Unit",
        description: "Why a group has or has not completed for a unit: for each member receiver, whether it is satisfied (latest event a success), failed or still waiting, and the event that decided it.",
        access: Access::Read,
        schema: schema_for_type::<args::GroupStatus>,
    },
    Spec {
        which: Which::RecentEvents,
        name: "recent_events",
        title: "Recent Events",
        description: "The latest messages of the gateway's log (events stored, receivers and groups created, groups completed), newest first, optionally only those whose type starts with a prefix. Payloads are left out: fetch_event has them.",
        access: Access::Read,
        schema: schema_for_type::<args::RecentEvents>,
    },
    Spec {
        which: Which::ListPlugins,
        name: "list_plugins",
        title: "List Plugins",
        description: "The installed WebAssembly plugins: world (transform or watcher), revision, enabled, calls, failures, last error, a watcher's cursor and dead letters. Needs the admin token when the gateway has one.",
        access: Access::Admin,
        schema: schema_for_type::<args::Nothing>,
    },
    Spec {
        which: Which::PluginDeadLetters,
        name: "plugin_dead_letters",
        title: "Plugin Dead Letters",
        description: "The events a watcher plugin gave up on, with the last error and the attempts made. Needs the admin token when the gateway has one.",
        access: Access::Admin,
        schema: schema_for_type::<args::PluginName>,
    },
    Spec {
        which: Which::GatewayStatus,
        name: "gateway_status",
        title: "Gateway Status",
        description: "The gateway's health: version, uptime, store size, log position, the Kafka relay's broker state and lag, and the plugins in trouble.",
        access: Access::Read,
        schema: schema_for_type::<args::Nothing>,
    },
];

/// The tools as MCP lists them.
pub fn catalogue() -> &'static [Tool] {
    static TOOLS: LazyLock<Vec<Tool>> = LazyLock::new(|| {
        SPECS
            .iter()
            .map(|spec| {
                let annotations = ToolAnnotations::new()
                    .read_only(spec.access == Access::Read)
                    .destructive(false)
                    .open_world(false);
                Tool::new(spec.name, spec.description, (spec.schema)())
                    .with_title(spec.title)
                    .with_annotations(annotations)
            })
            .collect()
    });
    &TOOLS
}

/// Calls tool `name` with `arguments` for a request with `headers`; `None` when there is no
/// such tool. Every failure (a bad argument, a missing token, a payload the schema refuses) is
/// a tool error carrying the gateway's message, never a protocol error.
pub async fn call(
    state: &AppState,
    headers: &HeaderMap,
    name: &str,
    arguments: JsonObject,
) -> Option<CallToolResult> {
    let spec = SPECS.iter().find(|spec| spec.name == name)?;
    let outcome = match allowed(state, headers, spec.access) {
        Ok(()) => run(state, spec.which, Value::Object(arguments)).await,
        Err(e) => Err(e),
    };
    Some(match outcome {
        Ok(reply) => {
            let mut result = CallToolResult::structured(reply.data);
            result.content.insert(0, ContentBlock::text(reply.summary));
            result
        }
        Err(e) => {
            let (status, message) = e.status_and_message();
            let mut result = CallToolResult::structured_error(
                json!({"error": message, "status": status.as_u16()}),
            );
            result.content = vec![ContentBlock::text(message)];
            result
        }
    })
}

/// Whether `headers` carry the token `access` needs.
fn allowed(state: &AppState, headers: &HeaderMap, access: Access) -> Result<(), ApiError> {
    match access {
        Access::Read => Ok(()),
        Access::Ingest => state.tokens.ingest_allowed(headers),
        Access::Admin => state.tokens.admin_allowed(headers),
    }
}

/// The arguments as `T`, or an error naming the argument that is wrong.
fn parse<T: DeserializeOwned>(arguments: Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(arguments).map_err(|e| {
        let path = e.path().to_string();
        match path.as_str() {
            "." => ApiError::invalid(format!("arguments: {}", e.inner())),
            _ => ApiError::invalid(format!("argument {path}: {}", e.inner())),
        }
    })
}

async fn run(state: &AppState, which: Which, arguments: Value) -> Outcome {
    let registry = &state.registry;
    match which {
        Which::FetchEvent => {
            let id = parse::<args::ById>(arguments)?.id;
            let found = registry.event(&id).await?;
            let e = &found.event;
            Ok(Reply {
                summary: format!(
                    "event {} ({}) about {}, success {}, stored {}",
                    e.id,
                    found.receiver.kind,
                    unit_text(&e.nvrpp()),
                    e.success,
                    e.created_at
                ),
                data: json!({"event": found}),
            })
        }
        Which::FetchReceiver => {
            let r = registry
                .receiver(&parse::<args::ById>(arguments)?.id)
                .await?;
            Ok(Reply {
                summary: format!(
                    "receiver {} {} {} of type {}",
                    r.id, r.name, r.version, r.kind
                ),
                data: json!({"receiver": r}),
            })
        }
        Which::FetchGroup => {
            let g = registry.group(&parse::<args::ById>(arguments)?.id).await?;
            Ok(Reply {
                summary: format!(
                    "group {} {} {} of type {}, {}, {} member receivers",
                    g.id,
                    g.name,
                    g.version,
                    g.kind,
                    if g.enabled { "enabled" } else { "disabled" },
                    g.event_receiver_ids.len()
                ),
                data: json!({"group": g}),
            })
        }
        Which::SearchEvents => {
            let q = parse::<args::EventSearch>(arguments)?;
            let found = registry.find_events(&q.data, &q.page()?).await?;
            Ok(page_reply("events", found))
        }
        Which::SearchReceivers => {
            let q = parse::<args::DefinitionSearch>(arguments)?;
            let found = registry.find_receivers(&q.data, &q.page()?).await?;
            Ok(page_reply("receivers", found))
        }
        Which::SearchGroups => {
            let q = parse::<args::DefinitionSearch>(arguments)?;
            let found = registry.find_groups(&q.data, &q.page()?).await?;
            Ok(page_reply("groups", found))
        }
        Which::CreateEvent => {
            let input = parse::<args::CreateEvent>(arguments)?.event_data;
            Ok(match registry.create_event(input).await? {
                Some(id) => created("event", id),
                None => Reply {
                    summary: "a transform plugin dropped the event: nothing was stored".into(),
                    data: json!({"id": null}),
                },
            })
        }
        Which::CreateReceiver => {
            let input = parse::<args::CreateReceiver>(arguments)?.receiver_data;
            Ok(created("receiver", registry.create_receiver(input).await?))
        }
        Which::CreateGroup => {
            let input = parse::<args::CreateGroup>(arguments)?.group_data;
            Ok(created("group", registry.create_group(input).await?))
        }
        Which::Provenance => provenance(state, parse(arguments)?).await,
        Which::GroupStatus => {
            let q = parse::<args::GroupStatus>(arguments)?;
            let gate = registry.gate(&q.group_id, &q.unit).await?;
            Ok(Reply {
                summary: gate_text(&gate),
                data: serde_json::to_value(&gate).map_err(internal)?,
            })
        }
        Which::RecentEvents => {
            let q = parse::<args::RecentEvents>(arguments)?;
            let found = registry
                .recent_messages(q.count.unwrap_or(20), &q.type_prefix)
                .await?;
            let messages: Vec<Value> = found.iter().map(|(seq, m)| message_view(*seq, m)).collect();
            Ok(Reply {
                summary: format!("the {} latest messages, newest first", messages.len()),
                data: json!({"messages": messages}),
            })
        }
        Which::ListPlugins => {
            parse::<args::Nothing>(arguments)?;
            let plugins = state.plugins.list().await;
            let names: Vec<String> = plugins
                .iter()
                .map(|p| {
                    let enabled = if p.record.enabled {
                        "enabled"
                    } else {
                        "disabled"
                    };
                    format!(
                        "{} ({:?}, {enabled}, {} failures)",
                        p.record.name, p.record.world, p.failures
                    )
                })
                .collect();
            Ok(Reply {
                summary: format!("{} plugins: {}", plugins.len(), names.join(", ")),
                data: json!({"plugins": plugins}),
            })
        }
        Which::PluginDeadLetters => {
            let name = parse::<args::PluginName>(arguments)?.name;
            let letters = state.plugins.dead_letters(&name).await?;
            Ok(Reply {
                summary: format!("{} dead letters of plugin {name}", letters.len()),
                data: json!({"dead_letters": letters}),
            })
        }
        Which::GatewayStatus => {
            parse::<args::Nothing>(arguments)?;
            let status = crate::http::health::status_report(state).await;
            Ok(Reply {
                summary: status_text(&status),
                data: status,
            })
        }
    }
}

async fn provenance(state: &AppState, q: args::Provenance) -> Outcome {
    let limit = Page::new(q.limit, None)?.limit.min(MAX_LIMIT);
    let steps = state.registry.provenance(&q.unit, limit).await?;
    let completions: usize = steps.iter().map(|s| s.completed_groups.len()).sum();
    let steps: Vec<Value> = steps
        .into_iter()
        .map(|s| json!({"event": s.event, "receiver": s.receiver, "completed_groups": s.completed_groups}))
        .collect();
    Ok(Reply {
        summary: format!(
            "{} events about {}, oldest first; {completions} group completions",
            steps.len(),
            unit_text(&q.unit)
        ),
        data: json!({"unit": q.unit, "steps": steps}),
    })
}

fn page_reply<T: serde::Serialize>(kind: &str, found: Found<T>) -> Reply {
    let more = match &found.next {
        Some(next) => format!("; more with after = {next:?}"),
        None => String::new(),
    };
    Reply {
        summary: format!("{} {kind} found, newest first{more}", found.items.len()),
        data: json!({kind: found.items, "next": found.next}),
    }
}

fn created(kind: &str, id: String) -> Reply {
    Reply {
        summary: format!("created {kind} {id}"),
        data: json!({"id": id}),
    }
}

/// `name version (release, platform_id, package)`.
fn unit_text(u: &Nvrpp) -> String {
    format!(
        "{} {} ({}, {}, {})",
        u.name, u.version, u.release, u.platform_id, u.package
    )
}

fn gate_text(gate: &GateStatus) -> String {
    let names = |state| {
        gate.members_in(state)
            .map(|m| match &m.deciding_event {
                Some(e) => format!("{} (event {})", m.receiver.name, e.id),
                None => m.receiver.name.clone(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let unit = unit_text(&gate.unit);
    let name = &gate.group.name;
    if gate.complete {
        return format!("group {name} is complete for {unit}: every member receiver is satisfied");
    }
    let mut parts = Vec::new();
    if !gate.group.enabled {
        parts.push("the group is disabled".to_owned());
    }
    for (state, label) in [
        (MemberState::Failed, "failed"),
        (MemberState::Waiting, "waiting for"),
    ] {
        let list = names(state);
        if !list.is_empty() {
            parts.push(format!("{label}: {list}"));
        }
    }
    format!(
        "group {name} is not complete for {unit}; {}",
        parts.join("; ")
    )
}

/// The gist of the status report.
fn status_text(status: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("unknown").to_owned();
    let kafka = match &status["kafka"] {
        Value::Null => "no broker configured (embedded mode)".to_owned(),
        kafka => format!(
            "broker {}, {} messages not yet delivered",
            text(&kafka["broker"]),
            kafka["lag_messages"]
        ),
    };
    let troubled: Vec<String> = status["plugins"]["troubled"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| text(&p["name"]))
        .collect();
    format!(
        "store {}, log at sequence {}, Kafka: {kafka}, {} plugins installed, in trouble: {}",
        text(&status["status"]),
        status["log"]["last_sequence"],
        status["plugins"]["installed"],
        if troubled.is_empty() {
            "none".to_owned()
        } else {
            troubled.join(", ")
        }
    )
}

/// A log message without its payloads: what happened, to which unit, with the id to fetch.
fn message_view(seq: u64, m: &Message) -> Value {
    json!({
        "seq": seq,
        "type": m.kind,
        "id": m.id,
        "success": m.success,
        "name": m.name,
        "version": m.version,
        "release": m.release,
        "platform_id": m.platform_id,
        "package": m.package,
    })
}

fn internal(e: serde_json::Error) -> ApiError {
    ApiError::Registry(crate::registry::error::RegistryError::internal_json(e))
}

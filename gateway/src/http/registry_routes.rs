//! EPR's REST routes for receivers, events and groups, plus search.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::{ApiError, Envelope, ErrorBody, created, ok};
use super::extract::{AdminAuth, IngestAuth, JsonBody, Params};
use crate::registry::input::{GroupPatch, NewEvent, NewGroup, NewReceiver};
use crate::registry::model::{Event, EventWithReceiver, Group, Receiver};
use crate::registry::query::{DefinitionFilter, EventFilter, Found, Page};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_receiver, find_receivers))
        .routes(routes!(get_receiver))
        .routes(routes!(
            create_event,
            find_events,
            super::ingest_routes::events_handshake
        ))
        .routes(routes!(get_event))
        .routes(routes!(create_group, find_groups))
        .routes(routes!(get_group, patch_group))
}

type Answer<T> = Result<Json<Envelope<T>>, ApiError>;

/// The answer of a create: 201 with the new id.
type Created<T> = Result<(StatusCode, Json<Envelope<T>>), ApiError>;

/// Creates a receiver: 201 with its id.
#[utoipa::path(post, path = "/api/v1/receivers", tag = "registry", request_body = NewReceiver,
    security(("bearer" = [])),
    responses((status = 201, description = "The receiver's id", body = Envelope<String>),
        (status = 400, description = "Blank fields or an invalid schema", body = ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody)))]
async fn create_receiver(
    _: AdminAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewReceiver>,
) -> Created<String> {
    Ok(created(state.registry.create_receiver(input).await?))
}

/// Stores an event whose payload matches its receiver's schema, once durable.
#[utoipa::path(post, path = "/api/v1/events", tag = "registry", request_body = NewEvent,
    security(("bearer" = [])),
    responses((status = 201, description = "The event's id", body = Envelope<String>),
        (status = 200, description = "A transform plugin dropped the event: nothing was stored (`data` is null)",
            body = Envelope<Option<String>>),
        (status = 400, description = "Blank fields, unknown receiver or a payload the schema refuses",
            body = ErrorBody),
        (status = 401, description = "The ingest token is missing or wrong", body = ErrorBody),
        (status = 422, description = "A transform plugin refused the event", body = ErrorBody)))]
async fn create_event(
    _: IngestAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewEvent>,
) -> Created<Option<String>> {
    let id = state.registry.create_event(input).await?;
    let status = match id {
        Some(_) => StatusCode::CREATED,
        None => StatusCode::OK,
    };
    Ok((status, ok(id)))
}

/// Creates a group of receivers whose joint success for a unit completes it.
#[utoipa::path(post, path = "/api/v1/groups", tag = "registry", request_body = NewGroup,
    security(("bearer" = [])),
    responses((status = 201, description = "The group's id", body = Envelope<String>),
        (status = 400, description = "Blank fields or unknown receivers", body = ErrorBody),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody)))]
async fn create_group(
    _: AdminAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewGroup>,
) -> Created<String> {
    Ok(created(state.registry.create_group(input).await?))
}

/// Enables or disables a group.
#[utoipa::path(patch, path = "/api/v1/groups/{id}", tag = "registry", request_body = GroupPatch,
    params(("id" = String, Path, description = "Group id")), security(("bearer" = [])),
    responses((status = 200, description = "The group's id", body = Envelope<String>),
        (status = 400, description = "`enabled` is missing", body = ErrorBody),
        (status = 404, description = "No such group", body = ErrorBody)))]
async fn patch_group(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<GroupPatch>,
) -> Answer<String> {
    let enabled = patch
        .enabled
        .ok_or_else(|| ApiError::invalid("enabled is required (true or false)"))?;
    Ok(ok(state.registry.set_group_enabled(&id, enabled).await?))
}

/// A receiver by id (a list of one, as in EPR).
#[utoipa::path(get, path = "/api/v1/receivers/{id}", tag = "registry",
    params(("id" = String, Path, description = "Receiver id")),
    responses((status = 200, description = "The receiver", body = Envelope<Vec<Receiver>>),
        (status = 404, description = "No such receiver", body = ErrorBody)))]
async fn get_receiver(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<[Receiver; 1]> {
    Ok(ok([state.registry.receiver(&id).await?]))
}

/// An event by id with its receiver (a list of one, as in EPR).
#[utoipa::path(get, path = "/api/v1/events/{id}", tag = "registry",
    params(("id" = String, Path, description = "Event id")),
    responses((status = 200, description = "The event", body = Envelope<Vec<EventWithReceiver>>),
        (status = 404, description = "No such event", body = ErrorBody)))]
async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<[EventWithReceiver; 1]> {
    Ok(ok([state.registry.event(&id).await?]))
}

/// A group by id (a list of one, as in EPR).
#[utoipa::path(get, path = "/api/v1/groups/{id}", tag = "registry",
    params(("id" = String, Path, description = "Group id")),
    responses((status = 200, description = "The group", body = Envelope<Vec<Group>>),
        (status = 404, description = "No such group", body = ErrorBody)))]
async fn get_group(State(state): State<AppState>, Path(id): Path<String>) -> Answer<[Group; 1]> {
    Ok(ok([state.registry.group(&id).await?]))
}

fn found<T>(found: Found<T>) -> Json<Envelope<Vec<T>>> {
    Json(Envelope {
        data: found.items,
        next: found.next,
    })
}

/// Query of an event search: exact matches, and the page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct EventSearch {
    /// Event id.
    id: Option<String>,
    /// Unit name.
    name: Option<String>,
    /// Unit version.
    version: Option<String>,
    /// Unit release.
    release: Option<String>,
    /// Unit platform id.
    platform_id: Option<String>,
    /// Unit package.
    package: Option<String>,
    /// Success.
    success: Option<bool>,
    /// Receiver id.
    event_receiver_id: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

/// Events whose given fields all match, newest first; `next` is the cursor of the next page.
#[utoipa::path(get, path = "/api/v1/events", tag = "registry", params(EventSearch),
    responses((status = 200, description = "The events", body = Envelope<Vec<Event>>),
        (status = 400, description = "An unknown or malformed parameter", body = ErrorBody)))]
async fn find_events(
    State(state): State<AppState>,
    Params(q): Params<EventSearch>,
) -> Answer<Vec<Event>> {
    let filter = EventFilter {
        id: q.id,
        name: q.name,
        version: q.version,
        release: q.release,
        platform_id: q.platform_id,
        package: q.package,
        success: q.success,
        event_receiver_id: q.event_receiver_id,
    };
    let page = Page::new(q.limit.map(saturating), q.after)?;
    Ok(found(state.registry.find_events(&filter, &page).await?))
}

/// Query of a receiver or group search: exact matches, and the page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DefinitionSearch {
    /// Id.
    id: Option<String>,
    /// Name.
    name: Option<String>,
    /// Type.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Version.
    version: Option<String>,
    /// Page size, 1 to 1000 (default 100).
    limit: Option<usize>,
    /// The `next` cursor of the previous page.
    after: Option<String>,
}

impl DefinitionSearch {
    fn split(self) -> Result<(DefinitionFilter, Page), ApiError> {
        let page = Page::new(self.limit.map(saturating), self.after)?;
        let filter = DefinitionFilter {
            id: self.id,
            name: self.name,
            kind: self.kind,
            version: self.version,
        };
        Ok((filter, page))
    }
}

/// Receivers whose given fields all match, newest first.
#[utoipa::path(get, path = "/api/v1/receivers", tag = "registry", params(DefinitionSearch),
    responses((status = 200, description = "The receivers", body = Envelope<Vec<Receiver>>),
        (status = 400, description = "An unknown or malformed parameter", body = ErrorBody)))]
async fn find_receivers(
    State(state): State<AppState>,
    Params(q): Params<DefinitionSearch>,
) -> Answer<Vec<Receiver>> {
    let (filter, page) = q.split()?;
    Ok(found(state.registry.find_receivers(&filter, &page).await?))
}

/// Groups whose given fields all match, newest first.
#[utoipa::path(get, path = "/api/v1/groups", tag = "registry", params(DefinitionSearch),
    responses((status = 200, description = "The groups", body = Envelope<Vec<Group>>),
        (status = 400, description = "An unknown or malformed parameter", body = ErrorBody)))]
async fn find_groups(
    State(state): State<AppState>,
    Params(q): Params<DefinitionSearch>,
) -> Answer<Vec<Group>> {
    let (filter, page) = q.split()?;
    Ok(found(state.registry.find_groups(&filter, &page).await?))
}

/// A `limit` from a query string as [`Page::new`] takes it.
fn saturating(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

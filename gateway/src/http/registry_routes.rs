//! EPR's REST routes for receivers, events and groups, plus search.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;

use super::envelope::{ok, ApiError, Envelope};
use super::extract::{AdminAuth, IngestAuth, JsonBody, Params};
use super::AppState;
use crate::registry::input::{GroupPatch, NewEvent, NewGroup, NewReceiver};
use crate::registry::model::{Event, EventWithReceiver, Group, Receiver};
use crate::registry::query::{DefinitionFilter, EventFilter, Found, Page};

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/receivers",
            post(create_receiver).get(find_receivers),
        )
        .route("/api/v1/receivers/{id}", get(get_receiver))
        .route(
            "/api/v1/events",
            post(create_event)
                .get(find_events)
                .options(super::ingest_routes::handshake),
        )
        .route("/api/v1/events/{id}", get(get_event))
        .route("/api/v1/groups", post(create_group).get(find_groups))
        .route("/api/v1/groups/{id}", get(get_group).patch(patch_group))
}

type Answer<T> = Result<Json<Envelope<T>>, ApiError>;

async fn create_receiver(
    _: AdminAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewReceiver>,
) -> Answer<String> {
    Ok(ok(state.registry.create_receiver(input).await?))
}

async fn create_event(
    _: IngestAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewEvent>,
) -> Answer<Option<String>> {
    Ok(ok(state.registry.create_event(input).await?))
}

async fn create_group(
    _: AdminAuth,
    State(state): State<AppState>,
    JsonBody(input): JsonBody<NewGroup>,
) -> Answer<String> {
    Ok(ok(state.registry.create_group(input).await?))
}

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

async fn get_receiver(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<[Receiver; 1]> {
    Ok(ok([state.registry.receiver(&id)?]))
}

async fn get_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<[EventWithReceiver; 1]> {
    Ok(ok([state.registry.event(&id)?]))
}

async fn get_group(State(state): State<AppState>, Path(id): Path<String>) -> Answer<[Group; 1]> {
    Ok(ok([state.registry.group(&id)?]))
}

fn found<T>(found: Found<T>) -> Json<Envelope<Vec<T>>> {
    Json(Envelope {
        data: found.items,
        next: found.next,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSearch {
    id: Option<String>,
    name: Option<String>,
    version: Option<String>,
    release: Option<String>,
    platform_id: Option<String>,
    package: Option<String>,
    success: Option<bool>,
    event_receiver_id: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

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
    Ok(found(state.registry.find_events(&filter, &page)?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DefinitionSearch {
    id: Option<String>,
    name: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    version: Option<String>,
    limit: Option<usize>,
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

async fn find_receivers(
    State(state): State<AppState>,
    Params(q): Params<DefinitionSearch>,
) -> Answer<Vec<Receiver>> {
    let (filter, page) = q.split()?;
    Ok(found(state.registry.find_receivers(&filter, &page)?))
}

async fn find_groups(
    State(state): State<AppState>,
    Params(q): Params<DefinitionSearch>,
) -> Answer<Vec<Group>> {
    let (filter, page) = q.split()?;
    Ok(found(state.registry.find_groups(&filter, &page)?))
}

/// A `limit` from a query string as [`Page::new`] takes it.
fn saturating(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

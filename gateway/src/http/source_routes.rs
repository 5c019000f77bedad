//! The admin API of webhook sources: list, read, create or replace, delete.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::{ApiError, Envelope, ErrorBody, ok};
use super::extract::{AdminAuth, JsonBody};
use crate::ingest::sources::{SourceView, WebhookSource};

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_sources))
        .routes(routes!(get_source, put_source, delete_source))
}

/// The webhook sources (secrets hidden).
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks", security(("bearer" = [])),
    responses((status = 200, description = "The sources", body = Envelope<Vec<Object>>),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody)))]
async fn list_sources(
    _: AdminAuth,
    State(state): State<AppState>,
) -> Json<Envelope<Vec<SourceView>>> {
    ok(state
        .sources
        .list()
        .iter()
        .map(WebhookSource::view)
        .collect())
}

/// One webhook source (secret hidden).
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook source id")),
    responses((status = 200, description = "The source", body = Envelope<Vec<Object>>),
        (status = 404, description = "No such source", body = ErrorBody)))]
async fn get_source(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Envelope<[SourceView; 1]>>, ApiError> {
    Ok(ok([state.sources.get(&id)?.view()]))
}

/// Creates or replaces a webhook source.
#[utoipa::path(put, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook source id")),
    request_body(content = Object, description = "The source: accept, signature, secret, headers"),
    responses((status = 200, description = "Replaced", body = Envelope<String>),
        (status = 201, description = "Created", body = Envelope<String>),
        (status = 400, description = "An invalid source", body = ErrorBody)))]
async fn put_source(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(source): JsonBody<WebhookSource>,
) -> Result<Response, ApiError> {
    if !source.id.is_empty() && source.id != id {
        return Err(ApiError::invalid(format!(
            "the body's id {:?} differs from the URL's {id:?}",
            source.id
        )));
    }
    let created = state.sources.put(&id, source).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ok(id)).into_response())
}

/// Deletes a webhook source.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "Webhook source id")),
    responses((status = 200, description = "Deleted: its id", body = Envelope<String>),
        (status = 404, description = "No such source", body = ErrorBody)))]
async fn delete_source(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Envelope<String>>, ApiError> {
    state.sources.delete(&id).await?;
    Ok(ok(id))
}

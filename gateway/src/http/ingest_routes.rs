//! Ingestion beyond EPR's API: CloudEvents over HTTP, CDViz-style webhooks, the CloudEvents
//! webhook handshake, and the admin API of webhook sources.

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::future::join_all;
use serde::Serialize;
use serde_json::{Map, Value};

use super::envelope::{ok, ApiError};
use super::extract::{AdminAuth, IngestAuth, JsonBody, RawBody};
use super::AppState;
use crate::ingest::cdevent::CdEvent;
use crate::ingest::cloudevent::{AttributeError, CloudEvent};
use crate::ingest::http_binding::{self, BindingError, Carried};
use crate::ingest::mapping;
use crate::ingest::signature;
use crate::ingest::sources::{Accept, SourceView, WebhookSource};
use crate::registry::ingest::Ingested;
use crate::registry::port::Committed;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/cloudevents",
            post(post_cloudevents).options(handshake),
        )
        .route("/webhook/{id}", post(post_webhook).options(handshake))
        .route("/api/v1/webhooks", get(list_sources))
        .route(
            "/api/v1/webhooks/{id}",
            get(get_source).put(put_source).delete(delete_source),
        )
}

/// The CloudEvents webhook abuse-protection handshake (CloudEvents HTTP webhook spec, 4):
/// allows the requesting origin, at any rate.
pub async fn handshake(headers: HeaderMap) -> Response {
    let allow = [(header::ALLOW, HeaderValue::from_static("POST, OPTIONS"))];
    match headers.get("webhook-request-origin") {
        Some(origin) => (
            StatusCode::OK,
            allow,
            [
                ("webhook-allowed-origin", origin.clone()),
                ("webhook-allowed-rate", HeaderValue::from_static("*")),
            ],
        )
            .into_response(),
        None => (StatusCode::NO_CONTENT, allow).into_response(),
    }
}

/// 201 with the new id, 200 with the id already stored for a duplicate, or 202 without an id
/// when a transform dropped the event.
fn stored(committed: Option<Committed>) -> Response {
    let status = outcome_status(committed.as_ref());
    (status, ok(committed.map(|c| c.id))).into_response()
}

/// The status answering a stored, duplicate or dropped event.
fn outcome_status(committed: Option<&Committed>) -> StatusCode {
    match committed {
        Some(c) if c.created => StatusCode::CREATED,
        Some(_) => StatusCode::OK,
        None => StatusCode::ACCEPTED,
    }
}

/// The outcome of one item of a batch.
#[derive(Serialize)]
struct ItemResult {
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// Stores one CloudEvent posted to `path` (with `extra` attributes added), as routed by its
/// attributes.
async fn store_cloudevent(
    state: &AppState,
    mut event: CloudEvent,
    extra: &Map<String, Value>,
    path: &str,
) -> Result<Option<Committed>, ApiError> {
    event.extend(extra.clone());
    let item: Ingested = mapping::ingested(event, state.auto_receivers, path)?;
    Ok(state.registry.ingest(item).await?)
}

/// Stores what a CloudEvents request to `path` carried. A batch is answered item by item (200
/// with a result per item, in order; rejected items store nothing).
async fn store_carried(
    state: &AppState,
    carried: Carried,
    extra: &Map<String, Value>,
    path: &str,
) -> Result<Response, ApiError> {
    match carried {
        Carried::Single(event) => Ok(stored(store_cloudevent(state, event, extra, path).await?)),
        Carried::Batch(items) => {
            let results = join_all(items.into_iter().map(|item| async move {
                let outcome = match item {
                    Ok(event) => store_cloudevent(state, event, extra, path).await,
                    Err(e) => Err(ApiError::from(e)),
                };
                match outcome {
                    Ok(c) => ItemResult {
                        status: outcome_status(c.as_ref()).as_u16(),
                        id: c.map(|c| c.id),
                        error: None,
                    },
                    Err(e) => {
                        let (status, message) = e.status_and_message();
                        ItemResult {
                            status: status.as_u16(),
                            id: None,
                            error: Some(message),
                        }
                    }
                }
            }))
            .await;
            Ok((StatusCode::OK, ok(results)).into_response())
        }
    }
}

async fn post_cloudevents(
    _: IngestAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let carried = http_binding::decode(&headers, &body)?;
    store_carried(&state, carried, &Map::new(), "/api/v1/cloudevents").await
}

async fn post_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let source = state.sources.get(&id).ok_or_else(|| {
        ApiError::Status(
            StatusCode::NOT_FOUND,
            format!("not found: no webhook source {id}"),
        )
    })?;
    signature::verify(
        source.signature,
        source.secret.as_deref().unwrap_or_default(),
        &headers,
        &body,
    )?;
    let kept = source.kept_headers(&headers);
    let path = format!("/webhook/{id}");
    match source.accept {
        Accept::Cloudevents => {
            let carried = http_binding::decode(&headers, &body)?;
            store_carried(&state, carried, &kept, &path).await
        }
        Accept::Cdevents => {
            let (envelope, json) = cdevent_body(&headers, &body)?;
            let item = CdEvent::parse(json)?
                .into_ingested(envelope, kept, &path)
                .map_err(ApiError::invalid)?;
            Ok(stored(state.registry.ingest(item).await?))
        }
    }
}

/// The CDEvent of a webhook request and, when it came as the data of a CloudEvent (structured
/// or binary mode), that CloudEvent's attributes.
fn cdevent_body(headers: &HeaderMap, body: &[u8]) -> Result<(Option<CloudEvent>, Value), ApiError> {
    if http_binding::is_structured(headers) || http_binding::is_binary(headers) {
        let Carried::Single(mut event) = http_binding::decode(headers, body)? else {
            return Err(BindingError::Body("send one CDEvent at a time".into()).into());
        };
        let data = event.remove("data").ok_or_else(|| AttributeError {
            attribute: "data".into(),
            problem: "must hold the CDEvent as JSON".into(),
        })?;
        return Ok((Some(event), data));
    }
    let json = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid CDEvent: the body is not JSON: {e}")))?;
    Ok((None, json))
}

async fn list_sources(
    _: AdminAuth,
    State(state): State<AppState>,
) -> Json<super::envelope::Envelope<Vec<SourceView>>> {
    ok(state
        .sources
        .list()
        .iter()
        .map(WebhookSource::view)
        .collect())
}

async fn get_source(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<super::envelope::Envelope<[SourceView; 1]>>, ApiError> {
    let source = state.sources.get(&id).ok_or_else(|| {
        ApiError::Status(
            StatusCode::NOT_FOUND,
            format!("object not found: webhook source with id {id} not found"),
        )
    })?;
    Ok(ok([source.view()]))
}

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

async fn delete_source(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<super::envelope::Envelope<String>>, ApiError> {
    state.sources.delete(&id).await?;
    Ok(ok(id))
}

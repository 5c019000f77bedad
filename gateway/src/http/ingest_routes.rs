//! Ingestion beyond EPR's API: CloudEvents over HTTP, CDViz-style webhooks and the CloudEvents
//! webhook handshake.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::{ApiError, Envelope, ErrorBody, ok};
use super::extract::{IngestAuth, RawBody};
use crate::ingest::cdevent::CdEvent;
use crate::ingest::cloudevent::{AttributeError, CloudEvent};
use crate::ingest::http_binding::{self, BindingError, Carried};
use crate::ingest::mapping;
use crate::ingest::signature::{self, Scheme};
use crate::ingest::sources::{Accept, WebhookSource};
use crate::registry::ingest::Ingested;
use crate::registry::port::Committed;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(post_cloudevents, cloudevents_handshake))
        .routes(routes!(post_webhook, webhook_handshake))
}

/// Defines `$name`, the CloudEvents webhook handshake (see [`handshake`]) documented at
/// `$path`: a route needs a handler of its own to be in the OpenAPI document.
macro_rules! handshake_at {
    ($(#[$doc:meta])* $name:ident, $path:tt, $tag:tt $(, $params:tt)?) => {
        $(#[$doc])*
        #[utoipa::path(options, path = $path, tag = $tag, $(params $params,)?
            responses((status = 200, description = "The origin in `WebHook-Request-Origin` is allowed"),
                (status = 204, description = "No origin asked about; the allowed methods")))]
        pub(super) async fn $name(headers: HeaderMap) -> Response {
            handshake(headers).await
        }
    };
}

handshake_at!(
    /// The CloudEvents webhook handshake on the events route.
    events_handshake,
    "/api/v1/events",
    "registry"
);
handshake_at!(
    /// The CloudEvents webhook handshake on the CloudEvents route.
    cloudevents_handshake,
    "/api/v1/cloudevents",
    "ingest"
);
handshake_at!(
    /// The CloudEvents webhook handshake on a webhook source.
    webhook_handshake,
    "/webhook/{id}",
    "ingest",
    (("id" = String, Path, description = "Webhook source id"))
);

/// The CloudEvents webhook abuse-protection handshake (CloudEvents HTTP webhook spec, 4):
/// allows the requesting origin, at any rate.
async fn handshake(headers: HeaderMap) -> Response {
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
/// with a result per item, in order; rejected items store nothing). Its items are stored one
/// after the other, so that they reach the log in the batch's order and, of two with the same
/// origin, the first is the one stored, on every store (a store with several writers would
/// otherwise let them race).
async fn store_carried(
    state: &AppState,
    carried: Carried,
    extra: &Map<String, Value>,
    path: &str,
) -> Result<Response, ApiError> {
    match carried {
        Carried::Single(event) => Ok(stored(store_cloudevent(state, event, extra, path).await?)),
        Carried::Batch(items) => {
            let mut results = Vec::with_capacity(items.len());
            for item in items {
                let outcome = match item {
                    Ok(event) => store_cloudevent(state, event, extra, path).await,
                    Err(e) => Err(ApiError::from(e)),
                };
                results.push(match outcome {
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
                });
            }
            Ok((StatusCode::OK, ok(results)).into_response())
        }
    }
}

/// Stores CloudEvents sent over HTTP: binary mode (`ce-*` headers), structured mode
/// (`application/cloudevents+json`) or a batch (`application/cloudevents-batch+json`), routed to
/// the receiver of their `type`.
#[utoipa::path(post, path = "/api/v1/cloudevents", tag = "ingest", security(("bearer" = [])),
    request_body(description = "A CloudEvent (structured or binary mode), or an array of them in batch mode",
        content((Object = "application/cloudevents+json"),
            (Vec<Object> = "application/cloudevents-batch+json"), (Object = "application/json"))),
    responses((status = 201, description = "Stored: the event's id", body = Envelope<String>),
        (status = 200, description = "A duplicate (same source and id): the stored event's id; a batch: one result per item",
            body = Envelope<Object>),
        (status = 202, description = "A transform plugin dropped the event", body = Envelope<Option<String>>),
        (status = 400, description = "Not a valid CloudEvent, or no receiver for its type", body = ErrorBody),
        (status = 401, description = "The ingest token is missing or wrong", body = ErrorBody)))]
async fn post_cloudevents(
    _: IngestAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let carried = http_binding::decode(&headers, &body)?;
    store_carried(&state, carried, &Map::new(), "/api/v1/cloudevents").await
}

/// Stores the CloudEvent or CDEvent a configured webhook source sends (signature checked).
#[utoipa::path(post, path = "/webhook/{id}", tag = "ingest",
    params(("id" = String, Path, description = "Webhook source id")),
    request_body(content = Object, description = "A CDEvent or a CloudEvent, as the source accepts"),
    responses((status = 201, description = "Stored: the event's id", body = Envelope<String>),
        (status = 200, description = "A duplicate: the stored event's id", body = Envelope<Object>),
        (status = 202, description = "A transform plugin dropped the event", body = Envelope<Option<String>>),
        (status = 400, description = "Not a valid event", body = ErrorBody),
        (status = 401, description = "The signature (or, when one is set, the ingest token) is missing or wrong", body = ErrorBody),
        (status = 404, description = "No such webhook source", body = ErrorBody)))]
async fn post_webhook(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let source = state.sources.get(&id)?;
    authorized(&state, &source, &headers, &body)?;
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

/// Whether a webhook request may be stored: a source that requires a signature takes its
/// signature or the ingest token (for senders that cannot sign); one that does not takes
/// anything while no ingest token is set, and the ingest token once one is.
fn authorized(
    state: &AppState,
    source: &WebhookSource,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), ApiError> {
    if source.signature == Scheme::None {
        return state.tokens.ingest_allowed(headers);
    }
    let signed = signature::verify(
        source.signature,
        source.secret.as_deref().unwrap_or_default(),
        headers,
        body,
    );
    match signed {
        Ok(()) => Ok(()),
        Err(e) if state.tokens.ingest.is_some() && headers.contains_key(header::AUTHORIZATION) => {
            state
                .tokens
                .ingest_allowed(headers)
                .map_err(|_| ApiError::from(e))
        }
        Err(e) => Err(e.into()),
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

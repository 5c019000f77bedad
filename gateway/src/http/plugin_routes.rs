//! The plugin management API: upload, list, get, enable/disable, replace, delete, dead letters.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::Deserialize;

use super::envelope::{ok, ApiError};
use super::extract::{AdminAuth, JsonBody, Params};
use super::AppState;
use crate::plugins::grants::Grants;
use crate::plugins::host::PluginPatch;

/// Largest component that can be uploaded, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;
/// The header carrying the operator's grants (JSON) with an upload or replacement.
pub const GRANTS_HEADER: &str = "x-epr-grants";

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/plugins", get(list).post(upload))
        .route(
            "/api/v1/plugins/{name}",
            get(one).patch(update).put(replace).delete(remove),
        )
        .route("/api/v1/plugins/{name}/dead-letters", get(dead_letters))
        .route("/api/v1/plugins/{name}/dead-letters/redrive", post(redrive))
        .layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES))
}

/// An uploaded component (up to [`MAX_COMPONENT_BYTES`]).
struct Component(Vec<u8>);

impl FromRequest<AppState> for Component {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::Status(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("component too large: the limit is {MAX_COMPONENT_BYTES} bytes"),
                )
            } else {
                ApiError::invalid(rejection.body_text())
            }
        })?;
        if bytes.is_empty() {
            return Err(ApiError::invalid(
                "the body is empty: send the .wasm component (curl --data-binary @plugin.wasm -H 'content-type: application/wasm')",
            ));
        }
        Ok(Component(bytes.to_vec()))
    }
}

/// The grants sent in the `X-Epr-Grants` header, if any.
fn grants(headers: &HeaderMap) -> Result<Option<Grants>, ApiError> {
    let Some(value) = headers.get(GRANTS_HEADER) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::invalid(format!("{GRANTS_HEADER} must be JSON text")))?;
    Ok(Some(Grants::parse(text)?))
}

async fn list(_: AdminAuth, State(state): State<AppState>) -> Response {
    ok(state.plugins.list()).into_response()
}

async fn one(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.get(&name)?).into_response())
}

/// Query of an upload.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// Install under this name instead of the manifest's.
    name: Option<String>,
}

async fn upload(
    _: AdminAuth,
    State(state): State<AppState>,
    Params(query): Params<UploadQuery>,
    headers: HeaderMap,
    Component(bytes): Component,
) -> Result<Response, ApiError> {
    let grants = grants(&headers)?.unwrap_or_default();
    let view = state.plugins.upload(bytes, grants, query.name).await?;
    Ok((StatusCode::CREATED, ok(view)).into_response())
}

async fn replace(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Component(bytes): Component,
) -> Result<Response, ApiError> {
    let grants = grants(&headers)?;
    Ok(ok(state.plugins.replace(&name, bytes, grants).await?).into_response())
}

async fn update(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(patch): JsonBody<PluginPatch>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.update(&name, patch).await?).into_response())
}

async fn remove(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.plugins.delete(&name).await?;
    Ok(ok(name).into_response())
}

async fn dead_letters(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.dead_letters(&name)?).into_response())
}

async fn redrive(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.redrive(&name).await?).into_response())
}

//! The plugin management API: upload, list, get, enable/disable, replace, delete, dead letters.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::{ApiError, Envelope, ErrorBody, ok};
use super::extract::{AdminAuth, JsonBody, Params, read_body};
use crate::plugins::grants::Grants;
use crate::plugins::manager::PluginPatch;

/// Largest component that can be uploaded, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 32 * 1024 * 1024;
/// The header carrying the operator's grants (JSON) with an upload or replacement.
pub const GRANTS_HEADER: &str = "x-epr-grants";

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, upload))
        .routes(routes!(one, update, replace, remove))
        .routes(routes!(dead_letters))
        .routes(routes!(redrive))
}

/// An uploaded component (up to [`MAX_COMPONENT_BYTES`]).
struct Component(Vec<u8>);

impl FromRequest<AppState> for Component {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let bytes = read_body(
            req.into_body(),
            state,
            MAX_COMPONENT_BYTES,
            "component too large",
        )
        .await?;
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

/// The installed plugins with their state and counters.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    responses((status = 200, description = "The plugins", body = Envelope<Vec<Object>>),
        (status = 401, description = "The admin token is missing or wrong", body = ErrorBody)))]
async fn list(_: AdminAuth, State(state): State<AppState>) -> Response {
    ok(state.plugins.list().await).into_response()
}

/// One plugin.
#[utoipa::path(get, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, description = "The plugin", body = Envelope<Object>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn one(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.get(&name).await?).into_response())
}

/// Query of an upload.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct UploadQuery {
    /// Install under this name instead of the manifest's.
    name: Option<String>,
}

/// Uploads a WebAssembly component (a watcher or a transform); grants in `X-EPR-Grants`.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins", security(("bearer" = [])),
    params(UploadQuery,
        ("X-EPR-Grants" = Option<String>, Header, description = "The operator's grants (JSON)")),
    request_body(content = Vec<u8>, content_type = "application/wasm",
        description = "The component"),
    responses((status = 201, description = "Installed", body = Envelope<Object>),
        (status = 400, description = "Not a component of a plugin world, or invalid grants", body = ErrorBody),
        (status = 409, description = "A plugin of that name exists", body = ErrorBody),
        (status = 413, description = "Larger than 32 MiB", body = ErrorBody)))]
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

/// Replaces a plugin's component (a watcher keeps its cursor).
#[utoipa::path(put, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name"),
        ("X-EPR-Grants" = Option<String>, Header, description = "The operator's grants (JSON)")),
    request_body(content = Vec<u8>, content_type = "application/wasm",
        description = "The new component"),
    responses((status = 200, description = "Replaced", body = Envelope<Object>),
        (status = 400, description = "Not a component of the plugin's world", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
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

/// Enables or disables a plugin, or changes its grants.
#[utoipa::path(patch, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name")),
    request_body(content = Object, description = "`{\"enabled\": bool}` and/or `{\"grants\": {...}}`"),
    responses((status = 200, description = "The plugin", body = Envelope<Object>),
        (status = 400, description = "Malformed JSON or invalid grants", body = ErrorBody),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn update(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(patch): JsonBody<PluginPatch>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.update(&name, patch).await?).into_response())
}

/// Deletes a plugin (its kv store and dead letters too).
#[utoipa::path(delete, path = "/api/v1/plugins/{name}", tag = "plugins", security(("bearer" = [])),
    params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, description = "Deleted: its name", body = Envelope<String>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn remove(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    state.plugins.delete(&name).await?;
    Ok(ok(name).into_response())
}

/// The events a watcher gave up on, oldest first.
#[utoipa::path(get, path = "/api/v1/plugins/{name}/dead-letters", tag = "plugins",
    security(("bearer" = [])), params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, description = "The dead letters", body = Envelope<Vec<Object>>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn dead_letters(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.dead_letters(&name).await?).into_response())
}

/// Hands a watcher's dead letters to it again.
#[utoipa::path(post, path = "/api/v1/plugins/{name}/dead-letters/redrive", tag = "plugins",
    security(("bearer" = [])), params(("name" = String, Path, description = "Plugin name")),
    responses((status = 200, description = "How many were redriven", body = Envelope<Object>),
        (status = 404, description = "No such plugin", body = ErrorBody)))]
async fn redrive(
    _: AdminAuth,
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(ok(state.plugins.redrive(&name).await?).into_response())
}

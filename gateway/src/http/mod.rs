//! The HTTP surface: routes, extractors and the error envelope. No business logic lives here.

pub mod envelope;
pub mod extract;
mod graphql_routes;
pub mod guard;
pub(crate) mod health;
mod ingest_routes;
mod observe;
mod openapi;
mod plugin_routes;
mod registry_routes;
mod source_routes;
mod stream;

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode, Uri};
use axum::{Extension, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::bus::kafka::RelayStatus;
use crate::ingest::sources::WebhookSources;
use crate::plugins::PluginManager;
use crate::registry::Registry;
use envelope::ApiError;

/// Bearer tokens; `None` leaves that kind of call open.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Needed to manage receivers, groups and plugins.
    pub admin: Option<String>,
    /// Needed to post events (the admin token is accepted too).
    pub ingest: Option<String>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("admin", &self.admin.as_ref().map(|_| "<set>"))
            .field("ingest", &self.ingest.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Bounds on what a client may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest time to receive a request body (a deadline for the whole body).
    pub body_timeout: Duration,
    /// Most event streams open at once.
    pub max_streams: usize,
}

/// What every handler can reach.
pub struct Shared {
    /// The registry.
    pub registry: Arc<Registry>,
    /// Tokens.
    pub tokens: Tokens,
    /// Input bounds.
    pub limits: Limits,
    /// Renders `/metrics`.
    pub metrics: PrometheusHandle,
    /// Where the store lives (for `/healthz/status`).
    pub store_location: String,
    /// When the process started.
    pub started: Instant,
    /// Turns true when the server shuts down; long-lived responses end then.
    pub shutdown: watch::Receiver<bool>,
    /// Webhook sources.
    pub sources: WebhookSources,
    /// Whether CloudEvents of a type no receiver has create one.
    pub auto_receivers: bool,
    /// The Kafka relay's state, when a broker is configured.
    pub relay: Option<Arc<RelayStatus>>,
    /// The plugins.
    pub plugins: Arc<PluginManager>,
    /// The host names requests may name.
    pub hosts: guard::AllowedHosts,
    /// Permits for open event streams (at most `limits.max_streams`).
    pub streams: Arc<tokio::sync::Semaphore>,
    /// The web origins that may call `/mcp`.
    pub mcp_origins: crate::mcp::Origins,
}

/// Cheap-to-clone handle on [`Shared`].
#[derive(Clone)]
pub struct AppState(pub Arc<Shared>);

impl Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// Every route of the gateway, with metrics and envelope errors for unknown routes (bodies are
/// bounded where they are read: `extract::read_body`).
pub fn router(state: AppState) -> Router {
    let (routes, document) = documented_routes(&state).split_for_parts();
    routes
        .merge(crate::mcp::routes(&state))
        .layer(Extension(openapi::Rendered::new(&document)))
        .fallback(unknown_route)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.hosts.clone(),
            guard::browsers,
        ))
        .layer(axum::middleware::from_fn(observe::record))
        .with_state(state)
}

/// The routes, each with its OpenAPI description.
fn documented_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(registry_routes::routes())
        .merge(stream::routes())
        .merge(ingest_routes::routes())
        .merge(source_routes::routes())
        .merge(health::routes())
        .merge(plugin_routes::routes())
        .merge(graphql_routes::routes(
            state.registry.clone(),
            state.plugins.clone(),
        ))
        .routes(routes!(openapi::document))
}

async fn unknown_route(method: Method, uri: Uri) -> ApiError {
    ApiError::Status(
        StatusCode::NOT_FOUND,
        format!("not found: no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::Status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!(
            "method not allowed: {method} is not supported on {}",
            uri.path()
        ),
    )
}

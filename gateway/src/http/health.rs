//! Health checks and Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use crate::bus::log_stream;
use crate::telemetry;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(liveness))
        .routes(routes!(readiness))
        .routes(routes!(status))
        .routes(routes!(metrics))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz/liveness", tag = "health",
    responses((status = 200, description = "`{\"status\": \"alive\"}`", body = Object)))]
async fn liveness() -> impl IntoResponse {
    Json(json!({"status": "alive"}))
}

/// The relay's report, when a broker is configured.
fn kafka(state: &AppState) -> serde_json::Value {
    let durable = *state.registry.store().durable_seq().borrow();
    state
        .relay
        .as_ref()
        .map_or(serde_json::Value::Null, |relay| relay.report(durable))
}

/// 200 when the store can be read and its writer runs and flushes, else 503 saying what is
/// wrong. The broker's state (and a relay stuck at an entry) and log readers held at an entry
/// are reported but do not make the gateway unready: events are still taken and kept in the
/// log.
#[utoipa::path(get, path = "/healthz/readiness", tag = "health",
    responses((status = 200, description = "Ready", body = Object),
        (status = 503, description = "Not ready, and why", body = Object)))]
async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    let kafka = kafka(&state);
    let log = log_readers();
    match state.registry.store().check().await {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": "ok", "kafka": kafka, "log": log})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({"status": "not ready", "store": e.to_string(), "kafka": kafka, "log": log}),
            ),
        ),
    }
}

/// The log's readers that are held at an entry they cannot render (never skipped).
fn log_readers() -> serde_json::Value {
    json!({"readers_stuck": log_stream::readers_stuck()})
}

/// Version, uptime, store size, log position, the Kafka relay's state and the plugins' health.
#[utoipa::path(get, path = "/healthz/status", tag = "health",
    responses((status = 200, description = "The status", body = Object)))]
async fn status(State(state): State<AppState>) -> impl IntoResponse {
    Json(status_report(&state).await)
}

/// What `/healthz/status` reports (also the MCP tool `gateway_status`).
pub(crate) async fn status_report(state: &AppState) -> serde_json::Value {
    let store = state.registry.store();
    let last_seq = *store.durable_seq().borrow();
    let healthy = store.check().await.is_ok();
    let size_on_disk = store.size_on_disk().await.ok();
    json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "log": {"last_sequence": last_seq, "readers_stuck": log_stream::readers_stuck()},
        "store": {
            "location": state.store_location,
            "size_on_disk_bytes": size_on_disk,
        },
        "kafka": kafka(state),
        "plugins": plugin_health(state),
        "auth": {
            "admin_token": state.tokens.admin.is_some(),
            "ingest_token": state.tokens.ingest.is_some(),
        },
    })
}

/// How many plugins there are, how many run, and the ones in trouble (failed calls since the
/// start, or not loaded), by name and counts only: their errors, grants, configuration and dead
/// letters are for the admin token (`GET /api/v1/plugins`). From memory: no store reads on an
/// open endpoint.
fn plugin_health(state: &AppState) -> serde_json::Value {
    let plugins = state.plugins.health();
    let enabled = plugins.iter().filter(|p| p.enabled).count();
    let installed = plugins.len();
    let troubled: Vec<_> = plugins
        .into_iter()
        .filter(|p| p.failures > 0 || !p.loaded)
        .collect();
    json!({"installed": installed, "enabled": enabled, "troubled": troubled})
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", body = String,
        content_type = "text/plain")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.registry.store();
    metrics::gauge!(telemetry::LOG_LENGTH).set(*store.durable_seq().borrow() as f64);
    kafka(&state);
    if let Ok(bytes) = store.size_on_disk().await {
        metrics::gauge!(telemetry::STORE_BYTES).set(bytes as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

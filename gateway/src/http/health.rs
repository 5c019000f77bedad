//! Health checks and Prometheus metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use crate::telemetry;

/// The routes of this module.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz/liveness", get(liveness))
        .route("/healthz/readiness", get(readiness))
        .route("/healthz/status", get(status))
        .route("/metrics", get(metrics))
}

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

/// 200 when the store can be read and its writer runs, else 503 saying what is wrong. The
/// broker's state is reported but does not make the gateway unready: events are still taken
/// and kept in the log until the broker is back.
async fn readiness(State(state): State<AppState>) -> impl IntoResponse {
    let kafka = kafka(&state);
    match state.registry.store().check() {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({"status": "ready", "store": "ok", "kafka": kafka})),
        ),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not ready", "store": e.to_string(), "kafka": kafka})),
        ),
    }
}

async fn status(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.registry.store();
    let last_seq = *store.durable_seq().borrow();
    Json(json!({
        "status": if store.check().is_ok() { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "log": {"last_sequence": last_seq},
        "store": {
            "data_dir": state.data_dir.display().to_string(),
            "size_on_disk_bytes": store.size_on_disk().ok(),
        },
        "kafka": kafka(&state),
        "auth": {
            "admin_token": state.tokens.admin.is_some(),
            "ingest_token": state.tokens.ingest.is_some(),
        },
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let store = state.registry.store();
    metrics::gauge!(telemetry::LOG_LENGTH).set(*store.durable_seq().borrow() as f64);
    kafka(&state);
    if let Ok(bytes) = store.size_on_disk() {
        metrics::gauge!(telemetry::STORE_BYTES).set(bytes as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}

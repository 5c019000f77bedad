//! `/mcp`: MCP's Streamable HTTP transport (rmcp), stateless so that any replica answers any
//! request. The body is read here, within the gateway's body limit and deadline, after the
//! `Origin` check; `Host` is checked by the gateway's guard like every route's.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tower::ServiceExt;

use super::handler::GatewayMcp;
use crate::http::AppState;
use crate::http::extract::read_body;

/// The path of the transport.
pub const PATH: &str = "/mcp";

type Transport = StreamableHttpService<GatewayMcp, NeverSessionManager>;

/// The route of `/mcp`.
pub fn routes(state: &AppState) -> Router<AppState> {
    let for_factory = state.clone();
    // Stateless: no session to keep (the revision of 2026-07-28 has none; earlier clients
    // get no Mcp-Session-Id, which those revisions allow), JSON answers to plain calls.
    // Host is the guard's job, Origin this module's, the body limit read_body's.
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_sse_keep_alive(None)
        .disable_allowed_hosts()
        .disable_allowed_origins()
        .with_max_request_body_bytes(state.limits.max_body_bytes);
    let transport: Transport = StreamableHttpService::new(
        move || Ok(GatewayMcp::new(for_factory.clone())),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new().route(
        PATH,
        any(move |State(state): State<AppState>, request: Request| {
            serve(state, transport.clone(), request)
        }),
    )
}

async fn serve(state: AppState, transport: Transport, request: Request) -> Response {
    if let Err(refused) = state.mcp_origins.check(request.headers()) {
        return refused.into_response();
    }
    let (parts, body) = request.into_parts();
    let limit = state.limits.max_body_bytes;
    let bytes = match read_body(body, &state, limit, "MCP message too large").await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let request = Request::from_parts(parts, Body::from(bytes));
    match transport.oneshot(request).await {
        Ok(response) => response.map(Body::new),
        Err(never) => match never {},
    }
}

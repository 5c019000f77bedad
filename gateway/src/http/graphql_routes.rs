//! GraphQL: `POST /api/v1/graphql/query` (EPR's schema, HTTP 200 with errors in `errors[]`) and
//! the GraphiQL page at `GET /api/v1/graphql`.

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQLResponse;
use axum::Extension;
use axum::response::Html;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::ApiError;
use super::extract::{AdminAuth, IngestAuth, JsonBody};
use crate::graphql::{self, Caller, EprSchema};
use crate::plugins::PluginManager;
use crate::registry::Registry;

/// The GraphQL routes over `registry` and `plugins`.
pub fn routes(registry: Arc<Registry>, plugins: Arc<PluginManager>) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(query))
        .routes(routes!(playground))
        .layer(Extension(graphql::schema(registry, plugins)))
}

/// Runs a GraphQL request against EPR's schema; 200 with errors in `errors[]` (the body is
/// read within the body limit and deadline, like every other; malformed JSON is a 400).
#[utoipa::path(post, path = "/api/v1/graphql/query", tag = "graphql", security((), ("bearer" = [])),
    request_body(content = Object, description = "`{\"query\": ..., \"variables\": {...}}`"),
    responses((status = 200, description = "`{\"data\": ..., \"errors\": [...]}`",
            content((Object = "application/json"), (Object = "application/graphql-response+json"))),
        (status = 400, description = "The body is not a GraphQL request in JSON", body = super::envelope::ErrorBody),
        (status = 413, description = "The body is over the size limit", body = super::envelope::ErrorBody)))]
async fn query(
    Extension(schema): Extension<EprSchema>,
    admin: Result<AdminAuth, ApiError>,
    ingest: Result<IngestAuth, ApiError>,
    JsonBody(request): JsonBody<async_graphql::Request>,
) -> GraphQLResponse {
    let caller = Caller {
        admin: admin.is_ok(),
        ingest: ingest.is_ok(),
    };
    let mut response = schema.execute(request.data(caller)).await;
    graphql::explain_limits(&mut response);
    response.into()
}

/// The GraphiQL page.
#[utoipa::path(get, path = "/api/v1/graphql", tag = "graphql",
    responses((status = 200, description = "HTML", body = String, content_type = "text/html")))]
async fn playground() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/api/v1/graphql/query")
            .finish(),
    )
}

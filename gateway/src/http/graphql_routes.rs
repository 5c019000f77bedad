//! GraphQL: `POST /api/v1/graphql/query` (EPR's schema, HTTP 200 with errors in `errors[]`) and
//! the GraphiQL page at `GET /api/v1/graphql`.

use std::sync::Arc;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::response::Html;
use axum::routing::{get, post};
use axum::{Extension, Router};

use super::envelope::ApiError;
use super::extract::{AdminAuth, IngestAuth};
use super::AppState;
use crate::graphql::{self, Caller, EprSchema};
use crate::plugins::PluginHost;
use crate::registry::Registry;

/// The GraphQL routes over `registry` and `plugins`.
pub fn routes(registry: Arc<Registry>, plugins: Arc<PluginHost>) -> Router<AppState> {
    Router::new()
        .route("/api/v1/graphql/query", post(query))
        .route("/api/v1/graphql", get(playground))
        .layer(Extension(graphql::schema(registry, plugins)))
}

async fn query(
    Extension(schema): Extension<EprSchema>,
    admin: Result<AdminAuth, ApiError>,
    ingest: Result<IngestAuth, ApiError>,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let caller = Caller {
        admin: admin.is_ok(),
        ingest: ingest.is_ok(),
    };
    schema
        .execute(request.into_inner().data(caller))
        .await
        .into()
}

async fn playground() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/api/v1/graphql/query")
            .finish(),
    )
}

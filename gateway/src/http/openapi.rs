//! `GET /api/v1/openapi`: the OpenAPI 3.1 document of the REST surface, collected from the
//! route handlers' annotations as the router is built (a route cannot be served undocumented).

use axum::Extension;
use axum::body::Bytes;
use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

/// The document's fixed parts; the paths come from the routers.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "epr-gateway",
        description = "Event gateway speaking the Event Provenance Registry's API: events \
            validated against their receiver's JSON Schema, stored durably, handed to \
            WebAssembly plugins and published to Kafka.",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    modifiers(&BearerToken),
    tags(
        (name = "registry", description = "EPR's receivers, events and groups"),
        (name = "ingest", description = "CloudEvents and webhook sources"),
        (name = "webhooks", description = "Management of webhook sources"),
        (name = "plugins", description = "Management of WebAssembly plugins"),
        (name = "stream", description = "The log as Server-Sent Events"),
        (name = "graphql", description = "EPR's GraphQL API"),
        (name = "health", description = "Health checks and metrics"),
        (name = "openapi", description = "This document")
    )
)]
pub struct ApiDoc;

/// Adds the `bearer` security scheme the operations refer to.
struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "The admin token (EPR_ADMIN_TOKEN) or, to post events, the ingest \
                         token (EPR_INGEST_TOKEN); not needed when the gateway has none set",
                    ))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document of every route.
#[utoipa::path(get, path = "/api/v1/openapi", tag = "openapi",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object)))]
pub async fn document(Extension(document): Extension<Rendered>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document.0)
}

/// The document as JSON text, rendered once when the router is built (cloning shares it).
#[derive(Clone)]
pub struct Rendered(Bytes);

impl Rendered {
    /// Renders `document`.
    pub fn new(document: &Document) -> Self {
        let json = document
            .to_json()
            .expect("an OpenAPI document always serializes");
        Rendered(Bytes::from(json))
    }
}

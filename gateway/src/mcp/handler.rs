//! The MCP server of the gateway: tools and the receivers' schemas as resources, answered
//! from the registry for the HTTP request that carried the call (its `Authorization` header
//! decides what it may do).

use axum::http::HeaderMap;
use axum::http::request::Parts;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, ErrorData, Implementation,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Resource,
    ResourceContents, ResourceTemplate, ServerCapabilities, ServerConfig,
};
use rmcp::service::RequestContext;
use rmcp::{RoleServer, ServerHandler};

use super::tools;
use crate::http::AppState;
use crate::registry::error::RegistryError;
use crate::registry::query::{DefinitionFilter, Page};

/// The URI template of a receiver's schema.
pub const SCHEMA_TEMPLATE: &str = "epr://receivers/{id}/schema";
/// What the server tells an assistant about itself when it connects.
const INSTRUCTIONS: &str = "An Event Provenance Registry (epr-gateway). Events are about a unit \
(name, version, release, platform_id, package) and belong to a receiver whose JSON Schema \
their payload must match: read epr://receivers/{id}/schema before create_event. Groups complete \
for a unit when every member receiver's latest event about it is a success; group_status says \
why one has not. Searches page with limit and after (the next of the previous result).";

/// The server, for one HTTP request.
#[derive(Clone)]
pub struct GatewayMcp {
    state: AppState,
}

impl GatewayMcp {
    /// A server over the gateway's state.
    pub fn new(state: AppState) -> Self {
        GatewayMcp { state }
    }
}

/// The headers of the HTTP request that carried the call (none over other transports).
fn headers(context: &RequestContext<RoleServer>) -> Option<&HeaderMap> {
    context
        .extensions
        .get::<Parts>()
        .map(|parts| &parts.headers)
}

/// The URI of receiver `id`'s schema.
fn schema_uri(id: &str) -> String {
    SCHEMA_TEMPLATE.replace("{id}", id)
}

/// A registry failure as MCP reports a resource read's: not found, bad request, or internal.
fn resource_error(e: RegistryError) -> ErrorData {
    match e {
        e @ RegistryError::NotFound { .. } => ErrorData::resource_not_found(e.to_string(), None),
        e @ RegistryError::InvalidInput(_) => ErrorData::invalid_params(e.to_string(), None),
        e => {
            tracing::error!(error = %e, "MCP resource read failed");
            ErrorData::internal_error("internal server error", None)
        }
    }
}

impl ServerHandler for GatewayMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .build();
        let mut info = ServerConfig::new(capabilities).with_instructions(INSTRUCTIONS);
        info.server_info = Implementation::new("epr-gateway", env!("CARGO_PKG_VERSION"));
        info
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(tools::catalogue().to_vec()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let arguments = request.arguments.unwrap_or_default();
        let none = HeaderMap::new();
        let headers = headers(&context).unwrap_or(&none);
        match tools::call(&self.state, headers, &request.name, arguments).await {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!(
                    "no tool is named {:?} (tools/list names them)",
                    request.name
                ),
                None,
            )),
        }
    }

    /// One resource per receiver, its schema; newest first, paged by the receiver id cursor.
    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let after = request.and_then(|r| r.cursor);
        let page = Page::new(None, after).map_err(resource_error)?;
        let found = self
            .state
            .registry
            .find_receivers(&DefinitionFilter::default(), &page)
            .await
            .map_err(resource_error)?;
        let resources = found
            .items
            .iter()
            .map(|r| {
                Resource::new(schema_uri(&r.id), format!("{} {}", r.name, r.version))
                    .with_title(format!("JSON Schema of receiver {} {}", r.name, r.version))
                    .with_description(format!(
                        "What the payload of an event of type {} must match",
                        r.kind
                    ))
                    .with_mime_type("application/schema+json")
            })
            .collect();
        let mut result = ListResourcesResult::with_all_items(resources);
        result.next_cursor = found.next;
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let template = ResourceTemplate::new(SCHEMA_TEMPLATE, "receiver-schema")
            .with_title("JSON Schema of a receiver")
            .with_description("What the payload of an event for receiver {id} must match")
            .with_mime_type("application/schema+json");
        Ok(ListResourceTemplatesResult::with_all_items(vec![template]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let id = request
            .uri
            .strip_prefix("epr://receivers/")
            .and_then(|rest| rest.strip_suffix("/schema"))
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .ok_or_else(|| {
                ErrorData::resource_not_found(
                    format!(
                        "no resource {:?}: resources are {SCHEMA_TEMPLATE}",
                        request.uri
                    ),
                    None,
                )
            })?;
        let receiver = self
            .state
            .registry
            .receiver(id)
            .await
            .map_err(resource_error)?;
        let contents = ResourceContents::text(receiver.schema.get(), request.uri.clone())
            .with_mime_type("application/schema+json");
        Ok(ReadResourceResult::new(vec![contents]).into())
    }
}

//! `epr-gateway mcp`: an MCP server on standard input and output for clients that launch a
//! command (Claude Desktop, VS Code...), bridging every request to a running gateway's `/mcp`
//! with the token of `EPR_TOKEN`. The tools are the gateway's own, so both transports answer
//! alike; the token is sent as a bearer token and never printed.

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, ResultType, ServerConfig,
};
use rmcp::service::{RequestContext, RunningService, ServiceError};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{Peer, RoleClient, RoleServer, ServerHandler, ServiceExt};
use thiserror::Error;

use crate::cli::Connection;
use crate::registry::query::MAX_PAGE_BYTES;

/// Why the bridge stopped.
#[derive(Debug, Error)]
pub enum StdioError {
    /// The gateway's `/mcp` could not be reached or did not speak MCP.
    #[error(
        "cannot reach the MCP server of the gateway at {url} (is it running? set --url or EPR_URL): {reason}"
    )]
    Upstream {
        /// Its URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// Standard input or output failed.
    #[error("the MCP session on standard input/output failed: {0}")]
    Downstream(String),
}

/// A result relayed from the gateway, marked complete: the gateway leaves out the marker for
/// the bridge's older protocol revision, and a client on the current one requires it.
trait Relayed {
    fn complete(self) -> Self;
}

macro_rules! relayed {
    ($($result:ty),*) => {$(
        impl Relayed for $result {
            fn complete(mut self) -> Self {
                self.result_type = Some(ResultType::COMPLETE);
                self
            }
        }
    )*};
}

relayed!(
    CallToolResult,
    ListToolsResult,
    ListResourcesResult,
    ListResourceTemplatesResult,
    ReadResourceResult
);

/// The server the launching client talks to: each request goes to the gateway.
struct Bridge {
    upstream: Peer<RoleClient>,
    info: ServerConfig,
    url: String,
}

impl Bridge {
    /// The gateway's answer to a relayed request, marked complete, or its failure as the
    /// client sees it.
    async fn relay<T: Relayed>(
        &self,
        answer: impl Future<Output = Result<T, ServiceError>>,
    ) -> Result<T, ErrorData> {
        answer
            .await
            .map(Relayed::complete)
            .map_err(|e| self.failed(e))
    }

    /// An upstream failure as the client sees it: the gateway's own protocol error, or an
    /// internal error saying the gateway did not answer.
    fn failed(&self, e: ServiceError) -> ErrorData {
        match e {
            ServiceError::McpError(data) => data,
            other => {
                tracing::warn!(error = %other, "the gateway did not answer");
                ErrorData::internal_error(
                    format!("the gateway at {} did not answer: {other}", self.url),
                    None,
                )
            }
        }
    }
}

impl ServerHandler for Bridge {
    fn get_info(&self) -> ServerConfig {
        self.info.clone()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.relay(self.upstream.list_tools(request)).await
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        self.relay(self.upstream.call_tool(request))
            .await
            .map(Into::into)
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.relay(self.upstream.list_resources(request)).await
    }

    async fn list_resource_templates(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.relay(self.upstream.list_resource_templates(request))
            .await
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.relay(self.upstream.read_resource(request))
            .await
            .map(Into::into)
    }
}

/// Connects to the gateway of `connection`, then serves MCP on standard input and output
/// until the client closes its end.
pub async fn run(connection: Connection) -> Result<(), StdioError> {
    let url = format!("{}/mcp", connection.url.trim_end_matches('/'));
    let upstream_failed = |reason: String| StdioError::Upstream {
        url: url.clone(),
        reason,
    };
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
    // a page of results carries up to MAX_PAGE_BYTES of payloads, twice (structured and as
    // text) and escaped in the text: more than the client's 16 MiB default
    config.max_json_response_size = 4 * MAX_PAGE_BYTES;
    if let Some(token) = connection.token {
        config = config.auth_header(token);
    }
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .map_err(|e| upstream_failed(e.to_string()))?;
    let client: RunningService<RoleClient, ()> =
        ().serve(StreamableHttpClientTransport::with_client(http, config))
            .await
            .map_err(|e| upstream_failed(e.to_string()))?;
    let peer = client
        .peer_info()
        .ok_or_else(|| upstream_failed("it sent no server information".into()))?;
    let mut info = ServerConfig::new(peer.capabilities.clone());
    info.instructions = peer.instructions.clone();
    if let Some(implementation) = &peer.server_info {
        info.server_info = implementation.clone();
    }
    let bridge = Bridge {
        upstream: client.peer().clone(),
        info,
        url: url.clone(),
    };
    let server = bridge
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| StdioError::Downstream(e.to_string()))?;
    let ended = server
        .waiting()
        .await
        .map_err(|e| StdioError::Downstream(e.to_string()));
    let _ = client.cancel().await;
    ended.map(|_| ())
}

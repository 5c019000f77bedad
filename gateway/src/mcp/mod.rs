//! The MCP (Model Context Protocol) server: AI assistants fetch, search and create events,
//! receivers and groups, follow a unit's provenance and ask why a group has not completed.
//!
//! A view over the registry with the same tokens and bounded queries as REST, and no state of
//! its own. Files, bottom up: `args` (the tools' arguments), `origins` (who may call from a
//! browser), `tools` (the catalogue and what each tool does), `handler` (the rmcp server),
//! `route` (`/mcp`, Streamable HTTP), `stdio` (`epr-gateway mcp`, a bridge to a running
//! gateway's `/mcp` for clients that launch a command).

mod args;
mod handler;
mod origins;
mod route;
pub mod stdio;
mod tools;

pub(crate) use origins::Origins;
pub(crate) use route::routes;

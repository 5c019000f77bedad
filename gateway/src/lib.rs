//! epr-gateway: an event gateway that speaks the API of the Event Provenance Registry (EPR),
//! validates every event against its receiver's JSON Schema, acknowledges only what is durable,
//! and publishes everything from a durable log.

mod backoff;
mod bus;
pub mod cli;
pub mod config;
mod error_chain;
mod graphql;
mod http;
pub mod ingest;
pub mod mcp;
pub mod plugins;
pub mod registry;
pub mod schema;
pub mod server;
pub mod store;
mod sync;
pub mod telemetry;

//! Decoding what arrives in other shapes (CloudEvents over HTTP, CDEvents, webhooks) into the
//! registry's [`Ingested`](crate::registry::ingest::Ingested) events.

pub mod cdevent;
pub mod cloudevent;
pub mod http_binding;
pub mod mapping;
pub mod signature;
pub mod sources;

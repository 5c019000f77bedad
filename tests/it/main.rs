#![allow(clippy::unwrap_used)] // a test fails by panicking
//! The end-to-end tests: the real `epr-gateway` binary, spoken to over real HTTP, with a real
//! Kafka-protocol broker and real WebAssembly components. One test binary (built and linked
//! once), one module per area.

mod support;

mod attacks;
mod claims;
mod cli;
mod cloudevents;
mod graphql;
mod group_completion;
mod kafka;
mod lifecycle;
mod mcp;
mod migrate;
mod openapi;
mod plugins;
mod postgres;
mod readme;
mod replicas;
mod rest_api;
mod stream;
mod tour;
mod webhooks;

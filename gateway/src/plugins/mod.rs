//! WebAssembly plugins: the wasmtime host of the contract in `wit/plugin.wit`.
//!
//! Uploaded components are checked and compiled off the request path ([`compile`]), stored
//! with their precompiled form ([`catalog`]), and run in sandboxes with memory and CPU caps
//! ([`sandbox`], [`instance`]): transforms in the request path ([`PluginHost`] implements the
//! registry's transform hook), watchers from the durable log, each with its own cursor, retries
//! and dead letters ([`runner`]), on lower-priority threads ([`background`]).

pub mod addresses;
pub mod background;
pub mod bindings;
pub mod catalog;
pub mod clocks;
pub mod compile;
pub mod convert;
pub mod engine;
pub mod grants;
pub mod host;
pub mod instance;
pub mod runner;
pub mod sandbox;

use thiserror::Error;

pub use host::PluginHost;

/// Metric: plugin calls, by plugin.
pub const METRIC_CALLS: &str = "epr_plugin_calls_total";
/// Metric: failed plugin calls (error, trap, limit), by plugin.
pub const METRIC_FAILURES: &str = "epr_plugin_failures_total";
/// Metric: seconds one plugin call took (time in the plugin, not in host calls), by plugin.
pub const METRIC_CALL_SECONDS: &str = "epr_plugin_call_duration_seconds";
/// Metric: largest memory of a plugin's instances, in bytes, by plugin.
pub const METRIC_MEMORY_PEAK: &str = "epr_plugin_memory_peak_bytes";
/// Metric: events a watcher dead-lettered, by plugin.
pub const METRIC_DEAD_LETTERS: &str = "epr_plugin_dead_letters_total";

/// A failed plugin operation.
#[derive(Debug, Error)]
pub enum PluginError {
    /// The upload or request is wrong (400); the text says what.
    #[error("{0}")]
    Invalid(String),
    /// No plugin has that name (404).
    #[error("no plugin is named {0}")]
    NotFound(String),
    /// A plugin with that name exists already (409).
    #[error("a plugin named {0} exists already: replace it with PUT /api/v1/plugins/{0}")]
    Exists(String),
    /// Something failed in the gateway (500); details go to the log.
    #[error("{0}")]
    Internal(String),
}

impl From<crate::registry::error::StoreError> for PluginError {
    fn from(e: crate::registry::error::StoreError) -> Self {
        PluginError::Internal(e.to_string())
    }
}

impl From<crate::registry::error::RegistryError> for PluginError {
    fn from(e: crate::registry::error::RegistryError) -> Self {
        PluginError::Internal(e.to_string())
    }
}

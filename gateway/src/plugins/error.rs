//! How a plugin operation fails, as the API answers it.

use thiserror::Error;

use crate::registry::error::{RegistryError, StoreError};

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

impl From<StoreError> for PluginError {
    fn from(e: StoreError) -> Self {
        PluginError::Internal(e.to_string())
    }
}

impl From<RegistryError> for PluginError {
    fn from(e: RegistryError) -> Self {
        PluginError::Internal(e.to_string())
    }
}

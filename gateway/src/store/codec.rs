//! How objects are encoded in a store: JSON, with the payloads' text kept as posted.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::registry::error::StoreError;

/// Decodes a stored JSON value.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::new(format!("corrupt record: {e}")))
}

/// Encodes a value to store.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(value).map_err(|e| StoreError::new(format!("cannot encode record: {e}")))
}

/// Encodes a value to store as text.
pub(crate) fn encode_text<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::new(format!("cannot encode record: {e}")))
}

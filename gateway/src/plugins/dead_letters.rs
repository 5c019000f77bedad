//! A watcher's dead letters: the events it failed on at every attempt, kept until re-driven
//! or the plugin is deleted.

use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::catalog;
use super::error::PluginError;
use super::keys;
use crate::registry::port::Store;

/// An event a watcher failed on at every attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Its place in the log.
    pub seq: u64,
    /// The event.
    pub event_id: String,
    /// Its receiver's type.
    pub receiver_type: String,
    /// The last error.
    pub error: String,
    /// Attempts made.
    pub attempts: u32,
    /// When it was dead-lettered (or last re-driven).
    pub failed_at: chrono::DateTime<Utc>,
}

/// Stores (or replaces) watcher `name`'s dead letter.
pub async fn put(
    store: &Arc<dyn Store>,
    name: &str,
    letter: &DeadLetter,
) -> Result<(), PluginError> {
    let key = keys::dead_letter(name, letter.seq);
    let value = serde_json::to_value(letter)
        .map_err(|e| PluginError::Internal(format!("cannot encode a dead letter: {e}")))?;
    catalog::write(store, move |txn| txn.put_setting(&key, Some(&value))).await
}

/// Removes watcher `name`'s dead letter for log entry `seq`.
pub async fn remove(store: &Arc<dyn Store>, name: &str, seq: u64) -> Result<(), PluginError> {
    let key = keys::dead_letter(name, seq);
    catalog::write(store, move |txn| txn.put_setting(&key, None)).await
}

/// The dead letters of watcher `name`, oldest first.
pub async fn list(store: &dyn Store, name: &str) -> Result<Vec<DeadLetter>, PluginError> {
    store
        .settings(&keys::dead_letters(name))
        .await?
        .into_iter()
        .map(|(key, value)| {
            serde_json::from_value(value)
                .map_err(|e| PluginError::Internal(format!("corrupt dead letter {key}: {e}")))
        })
        .collect()
}

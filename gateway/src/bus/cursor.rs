//! A consumer's durable position in the log, kept in a setting and saved at most every
//! [`SAVE_INTERVAL`] while it moves (and whenever the consumer asks, e.g. when idle or stopping):
//! each save is a durable write, and after a crash the consumer sees at most that much again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::registry::Registry;
use crate::registry::port::{Committed, Txn};

/// Longest time a moving cursor goes unsaved.
pub const SAVE_INTERVAL: Duration = Duration::from_millis(250);

/// A durable log position.
pub struct DurableCursor {
    registry: Arc<Registry>,
    key: String,
    position: u64,
    saved: u64,
    saved_at: Instant,
}

impl DurableCursor {
    /// The cursor stored under setting `key` (0, the start of the log, when there is none).
    pub async fn load(registry: Arc<Registry>, key: impl Into<String>) -> Self {
        let key = key.into();
        let position = stored(&registry, &key).await;
        DurableCursor {
            registry,
            key,
            position,
            saved: position,
            saved_at: Instant::now(),
        }
    }

    /// Everything up to here is done.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Moves the cursor to `seq` (saved later).
    pub fn advance(&mut self, seq: u64) {
        self.position = seq;
    }

    /// Saves the cursor if it moved and the last save is [`SAVE_INTERVAL`] old.
    pub async fn save_if_due(&mut self) {
        if self.saved_at.elapsed() >= SAVE_INTERVAL {
            self.save().await;
        }
    }

    /// Saves the cursor if it moved since it was last saved.
    pub async fn save(&mut self) {
        if self.position == self.saved {
            self.saved_at = Instant::now();
            return;
        }
        match store(&self.registry, &self.key, self.position).await {
            Ok(()) => {
                self.saved = self.position;
                self.saved_at = Instant::now();
            }
            Err(e) => {
                tracing::error!(cursor = %self.key, error = %e, "cannot save the cursor; what follows it may be handled twice")
            }
        }
    }
}

/// The position stored under setting `key` (0 when there is none or it cannot be read).
pub async fn stored(registry: &Registry, key: &str) -> u64 {
    match registry.store().setting(key).await {
        Ok(value) => value.and_then(|v| v.as_u64()).unwrap_or(0),
        Err(e) => {
            tracing::error!(cursor = key, error = %e, "cannot read the cursor; starting from the start of the log (at-least-once)");
            0
        }
    }
}

/// Stores `position` under setting `key`, durably.
pub async fn store(
    registry: &Registry,
    key: &str,
    position: u64,
) -> Result<(), crate::registry::error::RegistryError> {
    let key = key.to_owned();
    registry
        .store()
        .commit(Box::new(move |txn: &mut dyn Txn| {
            txn.put_setting(&key, Some(&serde_json::Value::from(position)))?;
            Ok(Committed::written(key))
        }))
        .await
        .map(|_| ())
}

//! Running a watcher from the durable log: its own cursor, retries with exponential backoff
//! and jitter, then a dead letter; a slow or failing watcher delays nothing but itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::catalog::{self, cursor_key, dead_letter_prefix};
use super::host::{Installed, PluginHost};
use super::PluginError;
use super::METRIC_DEAD_LETTERS;
use crate::bus::cursor::{DurableCursor, SAVE_INTERVAL};
use crate::bus::log_stream::follow;
use crate::registry::message::Message;
use crate::registry::model::{Event, Receiver};

/// Wait before the first retry; doubled at each further attempt.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

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

fn dead_letter_key(name: &str, seq: u64) -> String {
    format!("{}{seq:020}", dead_letter_prefix(name))
}

/// A running watcher.
pub struct Runner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Runner {
    /// Starts watcher `name` from its cursor.
    pub fn spawn(host: Arc<PluginHost>, name: String) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = host.background().spawn(run(host.clone(), name, stopped));
        Runner { stop, task }
    }

    /// Stops the watcher once its call in flight (if any) has returned.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// The event and receiver of an event-created message (other messages are not for watchers).
fn event_of(message: &Message) -> Option<(&Event, &Receiver)> {
    if message.data.event_receiver_groups.is_some() {
        return None;
    }
    let event = message.data.events.as_ref()?.first()?;
    let receiver = message.data.event_receivers.as_ref()?.first()?;
    Some((event, receiver))
}

/// What became of one event.
enum Handled {
    /// Handled, skipped, or dead-lettered: the cursor moves past it.
    Done,
    /// The watcher was stopped or deleted first: the cursor stays.
    Stopped,
}

async fn run(host: Arc<PluginHost>, name: String, mut stop: watch::Receiver<bool>) {
    let mut cursor = DurableCursor::load(host.registry().clone(), cursor_key(&name));
    // every message, so that the cursor moves past those that are not for watchers too
    let log = follow(
        host.registry().clone(),
        cursor.position(),
        stop.clone(),
        |_| true,
    );
    tokio::pin!(log);
    tracing::info!(plugin = %name, cursor = cursor.position(), "watcher started");
    loop {
        let (seq, message) = match tokio::time::timeout(SAVE_INTERVAL, log.next()).await {
            Ok(Some(item)) => item,
            Ok(None) => break,
            Err(_idle) => {
                cursor.save().await;
                continue;
            }
        };
        let handled = match event_of(&message) {
            Some((event, receiver)) => handle(&host, &name, seq, event, receiver, &mut stop).await,
            None => Handled::Done,
        };
        match handled {
            Handled::Done => cursor.advance(seq),
            Handled::Stopped => break,
        }
        cursor.save_if_due().await;
    }
    if host.installed(&name).is_some() {
        cursor.save().await;
    }
    tracing::info!(plugin = %name, cursor = cursor.position(), "watcher stopped");
}

/// The installed plugin `name` once it is enabled; `None` if it is deleted or the runner stops.
async fn enabled(
    host: &PluginHost,
    name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Arc<Installed>> {
    let mut changes = host.changes();
    loop {
        if *stop.borrow() {
            return None;
        }
        let installed = host.installed(name)?;
        if installed.record.enabled {
            return Some(installed);
        }
        tokio::select! {
            _ = changes.changed() => {}
            _ = stop.changed() => {}
        }
    }
}

/// Hands one event to the watcher, retrying with backoff, then dead-letters it.
async fn handle(
    host: &Arc<PluginHost>,
    name: &str,
    seq: u64,
    event: &Event,
    receiver: &Receiver,
    stop: &mut watch::Receiver<bool>,
) -> Handled {
    let mut attempt = 0;
    loop {
        // the current revision at each attempt: a replacement takes over at once
        let Some(installed) = enabled(host, name, stop).await else {
            return Handled::Stopped;
        };
        if !installed
            .record
            .subscription()
            .matches(&receiver.id, &receiver.kind, "")
        {
            return Handled::Done;
        }
        attempt += 1;
        let error = match host.call_watcher(&installed, event, receiver).await {
            Ok(()) => return Handled::Done,
            Err(e) => e,
        };
        let attempts = installed.record.grants.attempts();
        tracing::warn!(plugin = name, event = %event.id, attempt, attempts, error = %error, "watcher failed on an event");
        if attempt >= attempts {
            let letter = DeadLetter {
                seq,
                event_id: event.id.clone(),
                receiver_type: receiver.kind.clone(),
                error: error.to_string(),
                attempts: attempt,
                failed_at: Utc::now(),
            };
            return dead_letter(host, name, letter, stop).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff(attempt)) => {}
            _ = stop.changed() => return Handled::Stopped,
        }
    }
}

/// The wait after failed attempt `attempt` (1-based): exponential, capped, with jitter (50% to
/// 100% of the step) so that failing watchers do not retry in lockstep.
pub fn backoff(attempt: u32) -> Duration {
    let step = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(MAX_BACKOFF);
    step.mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Stores the dead letter of `event`, retrying until the store takes it: the cursor moves
/// past the event only once its dead letter is durable (`Stopped` if the watcher stops first).
async fn dead_letter(
    host: &PluginHost,
    name: &str,
    letter: DeadLetter,
    stop: &mut watch::Receiver<bool>,
) -> Handled {
    tracing::error!(plugin = name, event = %letter.event_id, attempts = letter.attempts, error = %letter.error, "event dead-lettered");
    let mut tries = 0;
    loop {
        match put_dead_letter(host, name, &letter).await {
            Ok(()) => {
                metrics::counter!(METRIC_DEAD_LETTERS, "plugin" => name.to_owned()).increment(1);
                return Handled::Done;
            }
            Err(e) => {
                tries += 1;
                tracing::error!(plugin = name, event = %letter.event_id, error = %e, "cannot store the dead letter; the watcher stays on this event and retries");
                tokio::select! {
                    _ = tokio::time::sleep(backoff(tries)) => {}
                    _ = stop.changed() => return Handled::Stopped,
                }
            }
        }
    }
}

/// Stores (or replaces) a dead letter.
pub async fn put_dead_letter(
    host: &PluginHost,
    name: &str,
    letter: &DeadLetter,
) -> Result<(), PluginError> {
    let key = dead_letter_key(name, letter.seq);
    let value = serde_json::to_value(letter)
        .map_err(|e| PluginError::Internal(format!("cannot encode a dead letter: {e}")))?;
    catalog::write(host.registry().store(), move |txn| {
        txn.put_setting(&key, Some(&value))
    })
    .await
}

/// Removes a dead letter.
pub async fn remove_dead_letter(
    host: &PluginHost,
    name: &str,
    seq: u64,
) -> Result<(), PluginError> {
    let key = dead_letter_key(name, seq);
    catalog::write(host.registry().store(), move |txn| {
        txn.put_setting(&key, None)
    })
    .await
}

/// The dead letters of watcher `name`, oldest first.
pub fn dead_letters(host: &PluginHost, name: &str) -> Result<Vec<DeadLetter>, PluginError> {
    host.registry()
        .store()
        .settings(&dead_letter_prefix(name))?
        .into_iter()
        .map(|(key, value)| {
            serde_json::from_value(value)
                .map_err(|e| PluginError::Internal(format!("corrupt dead letter {key}: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        for attempt in 1..40 {
            let step = FIRST_BACKOFF
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(MAX_BACKOFF);
            let wait = backoff(attempt);
            assert!(
                wait >= step / 2 && wait <= step,
                "attempt {attempt}: {wait:?}"
            );
        }
        assert!(backoff(30) <= MAX_BACKOFF);
    }

    #[test]
    fn dead_letter_keys_sort_in_log_order() {
        assert!(dead_letter_key("p", 9) < dead_letter_key("p", 10));
    }
}

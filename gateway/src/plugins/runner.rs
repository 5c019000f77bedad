//! Running a watcher from the durable log: its own cursor, retries with exponential backoff
//! and jitter, then a dead letter; a slow or failing watcher delays nothing but itself.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::dead_letters::{self, DeadLetter};
use super::inventory::{Installed, Inventory};
use super::keys;
use super::sandbox::Services;
use super::stats::METRIC_DEAD_LETTERS;
use crate::backoff::Backoff;
use crate::bus::cursor::{DurableCursor, SAVE_INTERVAL};
use crate::bus::log_stream::follow;
use crate::bus::tenure;
use crate::registry::message::Message;
use crate::registry::model::{Event, Receiver};

/// Waits between attempts at one event.
const RETRY: Backoff = Backoff {
    first: Duration::from_millis(100),
    max: Duration::from_secs(30),
};

/// What a runner works with: the installed plugins and the services of the `host` interface
/// (whose runtime, at a lower priority than the request path, runs the runners too).
#[derive(Clone)]
pub struct Context {
    /// The installed plugins.
    pub inventory: Arc<Inventory>,
    /// The services of the `host` interface.
    pub services: Arc<Services>,
}

/// A running watcher.
pub struct Runner {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Runner {
    /// Starts watcher `name` from its cursor.
    pub fn spawn(context: Context, name: String) -> Self {
        let (stop, stopped) = watch::channel(false);
        let task = context
            .services
            .runtime
            .clone()
            .spawn(run(context, name, stopped));
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

/// Runs watcher `name` while this gateway holds its lease (from the durable cursor each time it
/// takes the lease over), until `stop` or the watcher is deleted.
async fn run(context: Context, name: String, stop: watch::Receiver<bool>) {
    let store = context.services.registry.store().clone();
    let lease = keys::watcher_lease(&name);
    while context.inventory.get(&name).is_some() {
        let Some(tenure) = tenure::hold(&store, &lease, &stop).await else {
            return;
        };
        watch_log(&context, &name, tenure.stop.clone()).await;
    }
}

async fn watch_log(context: &Context, name: &str, mut stop: watch::Receiver<bool>) {
    let registry = &context.services.registry;
    let mut cursor = DurableCursor::load(registry.clone(), keys::cursor(name)).await;
    // every message, so that the cursor moves past those that are not for watchers too
    let log = follow(registry.clone(), cursor.position(), stop.clone(), |_| true);
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
            Some((event, receiver)) => handle(context, name, seq, event, receiver, &mut stop).await,
            None => Handled::Done,
        };
        match handled {
            Handled::Done => cursor.advance(seq),
            Handled::Stopped => break,
        }
        cursor.save_if_due().await;
    }
    if context.inventory.get(name).is_some() {
        cursor.save().await;
    }
    tracing::info!(plugin = %name, cursor = cursor.position(), "watcher stopped");
}

/// The installed plugin `name` once it is enabled; `None` if it is deleted or the runner stops.
async fn enabled(
    inventory: &Inventory,
    name: &str,
    stop: &mut watch::Receiver<bool>,
) -> Option<Arc<Installed>> {
    let mut changes = inventory.changes();
    loop {
        if *stop.borrow() {
            return None;
        }
        let installed = inventory.get(name)?;
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
    context: &Context,
    name: &str,
    seq: u64,
    event: &Event,
    receiver: &Receiver,
    stop: &mut watch::Receiver<bool>,
) -> Handled {
    let mut attempt = 0;
    loop {
        // the current revision at each attempt: a replacement takes over at once
        let Some(installed) = enabled(&context.inventory, name, stop).await else {
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
        let error = match installed.watch(&context.services, event, receiver).await {
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
            return dead_letter(context, name, letter, stop).await;
        }
        tokio::select! {
            _ = RETRY.sleep(attempt) => {}
            _ = stop.changed() => return Handled::Stopped,
        }
    }
}

/// Stores the dead letter of `event`, retrying until the store takes it: the cursor moves
/// past the event only once its dead letter is durable (`Stopped` if the watcher stops first).
async fn dead_letter(
    context: &Context,
    name: &str,
    letter: DeadLetter,
    stop: &mut watch::Receiver<bool>,
) -> Handled {
    tracing::error!(plugin = name, event = %letter.event_id, attempts = letter.attempts, error = %letter.error, "event dead-lettered");
    let mut tries = 0;
    loop {
        match dead_letters::put(context.services.registry.store(), name, &letter).await {
            Ok(()) => {
                metrics::counter!(METRIC_DEAD_LETTERS, "plugin" => name.to_owned()).increment(1);
                return Handled::Done;
            }
            Err(e) => {
                tries += 1;
                tracing::error!(plugin = name, event = %letter.event_id, error = %e, "cannot store the dead letter; the watcher stays on this event and retries");
                tokio::select! {
                    _ = RETRY.sleep(tries) => {}
                    _ = stop.changed() => return Handled::Stopped,
                }
            }
        }
    }
}

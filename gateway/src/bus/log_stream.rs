//! Following the durable log: every message after a sequence number, in order, live.
//!
//! A reader never skips an entry: one that cannot be rendered (the store failed to read it)
//! holds the reader there, counted in [`METRIC_READERS_STUCK`] and retried every
//! [`STUCK_RETRY`], until it renders. Readers yield to the runtime every [`YIELD_EVERY`] entries,
//! so that a filter rejecting a long stretch of the log does not hold a worker thread.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use futures::stream::{self, Stream};
use tokio::sync::watch;

use crate::registry::Registry;
use crate::registry::message::Message;
use crate::registry::port::LogEntry;

/// Log entries read from the store at a time.
const READ_AHEAD: usize = 256;
/// Entries looked at between two yields to the runtime.
const YIELD_EVERY: usize = 64;
/// Wait before trying again to render an entry that failed.
pub const STUCK_RETRY: Duration = Duration::from_secs(1);
/// Metric: log readers (stream clients, watchers) held at an entry they cannot render.
pub const METRIC_READERS_STUCK: &str = "epr_log_readers_stuck";

/// Readers currently held at an entry they cannot render.
static STUCK: AtomicI64 = AtomicI64::new(0);

/// How many log readers are held at an entry they cannot render.
pub fn readers_stuck() -> i64 {
    STUCK.load(Ordering::Relaxed)
}

struct Follower<F> {
    registry: Arc<Registry>,
    after: u64,
    pending: VecDeque<(u64, LogEntry)>,
    durable: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    keep: F,
    looked_at: usize,
    stuck: bool,
}

impl<F> Follower<F> {
    fn set_stuck(&mut self, stuck: bool) {
        if self.stuck != stuck {
            self.stuck = stuck;
            let delta = if stuck { 1 } else { -1 };
            let now = STUCK.fetch_add(delta, Ordering::Relaxed) + delta;
            metrics::gauge!(METRIC_READERS_STUCK).set(now as f64);
        }
    }
}

impl<F> Follower<F> {
    /// Waits [`STUCK_RETRY`]; false when stopped meanwhile.
    async fn wait_to_retry(&mut self) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(STUCK_RETRY) => true,
            _ = self.stop.changed() => false,
        }
    }
}

impl<F> Drop for Follower<F> {
    fn drop(&mut self) {
        self.set_stuck(false);
    }
}

/// Durable log messages with a sequence number above `after` that `keep` accepts, as
/// `(sequence, message)`, waiting for new ones; ends when `stop` turns true.
pub fn follow<F>(
    registry: Arc<Registry>,
    after: u64,
    stop: watch::Receiver<bool>,
    keep: F,
) -> impl Stream<Item = (u64, Message)>
where
    F: FnMut(&Message) -> bool,
{
    let durable = registry.store().durable_seq();
    let follower = Follower {
        registry,
        after,
        pending: VecDeque::new(),
        durable,
        stop,
        keep,
        looked_at: 0,
        stuck: false,
    };
    stream::unfold(follower, |mut f| async move {
        loop {
            while let Some((seq, entry)) = f.pending.pop_front() {
                f.looked_at += 1;
                if f.looked_at % YIELD_EVERY == 0 {
                    tokio::task::yield_now().await;
                }
                match f.registry.render(&entry).await {
                    Ok(message) => {
                        f.set_stuck(false);
                        f.after = seq;
                        if (f.keep)(&message) {
                            return Some(((seq, message), f));
                        }
                    }
                    Err(e) => {
                        if !f.stuck {
                            tracing::error!(seq, error = %e, "log entry cannot be rendered; waiting for it (it is not skipped)");
                        }
                        f.set_stuck(true);
                        f.pending.push_front((seq, entry));
                        if !f.wait_to_retry().await {
                            return None;
                        }
                    }
                }
            }
            f.durable.borrow_and_update();
            match f.registry.store().log_after(f.after, READ_AHEAD).await {
                Ok(entries) if !entries.is_empty() => {
                    f.pending.extend(entries);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    if !f.stuck {
                        tracing::error!(after = f.after, error = %e, "cannot read the log; retrying");
                    }
                    f.set_stuck(true);
                    if !f.wait_to_retry().await {
                        return None;
                    }
                    continue;
                }
            }
            if *f.stop.borrow() {
                return None;
            }
            tokio::select! {
                changed = f.durable.changed() => if changed.is_err() { return None },
                _ = f.stop.changed() => {}
            }
        }
    })
}

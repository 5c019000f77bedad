//! Following the durable log: every message after a sequence number, in order, live.

use std::collections::VecDeque;
use std::sync::Arc;

use futures::stream::{self, Stream};
use tokio::sync::watch;

use crate::registry::message::Message;
use crate::registry::port::LogEntry;
use crate::registry::Registry;

/// Log entries read from the store at a time.
const READ_AHEAD: usize = 256;

struct Follower {
    registry: Arc<Registry>,
    after: u64,
    pending: VecDeque<(u64, LogEntry)>,
    durable: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
}

/// Durable log messages with a sequence number above `after`, as `(sequence, message)`, waiting
/// for new ones; ends when `stop` turns true or the log cannot be read.
pub fn follow(
    registry: Arc<Registry>,
    after: u64,
    stop: watch::Receiver<bool>,
) -> impl Stream<Item = (u64, Message)> {
    let durable = registry.store().durable_seq();
    let follower = Follower {
        registry,
        after,
        pending: VecDeque::new(),
        durable,
        stop,
    };
    stream::unfold(follower, |mut f| async move {
        loop {
            while let Some((seq, entry)) = f.pending.pop_front() {
                f.after = seq;
                match f.registry.render(entry) {
                    Ok(message) => return Some(((seq, message), f)),
                    Err(e) => {
                        tracing::error!(seq, error = %e, "log entry cannot be rendered; skipped")
                    }
                }
            }
            f.durable.borrow_and_update();
            match f.registry.store().log_after(f.after, READ_AHEAD) {
                Ok(entries) if !entries.is_empty() => {
                    f.pending.extend(entries);
                    continue;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the log; ending the stream");
                    return None;
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

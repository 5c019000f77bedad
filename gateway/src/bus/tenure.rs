//! Singletons among the gateways sharing a store (the Kafka relay, each watcher): a consumer of
//! the log runs only while its gateway holds the lease of its name, and stops as soon as the
//! lease is lost; another gateway then takes over from the durable cursor.

use std::sync::Arc;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::registry::port::Store;

/// A lease held, and the stop signal of the work done under it.
pub struct Tenure {
    /// Turns true when the gateway stops or the lease is lost.
    pub stop: watch::Receiver<bool>,
    keeper: JoinHandle<()>,
}

impl Drop for Tenure {
    fn drop(&mut self) {
        // gives the lease up
        self.keeper.abort();
    }
}

/// Waits until this gateway holds the lease `name`; `None` when `stop` turned true first.
pub async fn hold(
    store: &Arc<dyn Store>,
    name: &str,
    stop: &watch::Receiver<bool>,
) -> Option<Tenure> {
    let mut stopping = stop.clone();
    let mut lease = tokio::select! {
        lease = store.lease(name) => lease,
        _ = stopping.wait_for(|s| *s) => return None,
    };
    let (end, ended) = watch::channel(false);
    let keeper = tokio::spawn(async move {
        tokio::select! {
            _ = lease.lost() => {}
            _ = stopping.wait_for(|s| *s) => {}
        }
        end.send_replace(true);
        // keeps the signal open (and the lease, if still held) until the tenure is dropped
        std::future::pending::<()>().await;
    });
    Some(Tenure {
        stop: ended,
        keeper,
    })
}

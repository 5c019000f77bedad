//! Leases on PostgreSQL: session advisory locks, each on a connection of its own, which the
//! server releases when that connection ends (its gateway died, or lost the database). The
//! holder checks its connection every [`CHECK`] and reports the lease lost as soon as a check
//! fails, since another gateway may hold the lock from then on.

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::errors::pg_error;
use super::locks::{self, Scope};
use crate::registry::error::StoreError;
use crate::registry::port::Lease;

/// How often a holder checks its connection, and a waiting gateway tries the lock.
const CHECK: Duration = Duration::from_secs(1);
/// Keepalives on the lease's connection, so that the server drops the connection of a gateway
/// it no longer hears from (and with it the lock) within about 11 s, rather than the system's
/// two hours.
const KEEPALIVES: &str =
    "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; SET tcp_keepalives_count = 3";

/// The tasks behind a held lease; dropping them closes its connection, which releases the lock.
struct Held(Vec<JoinHandle<()>>);

impl Drop for Held {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// Waits until this gateway holds the lease `name`, trying every [`CHECK`].
pub(super) async fn acquire(config: &tokio_postgres::Config, name: &str) -> Lease {
    let key = locks::key(Scope::Lease, &[name]);
    let mut failing = false;
    loop {
        match wait_for_lock(config, key).await {
            Ok(lease) => {
                tracing::info!(lease = name, "holding the lease");
                return lease;
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(lease = name, error = %e, "cannot try the lease; retrying");
                    failing = true;
                }
                tokio::time::sleep(CHECK).await;
            }
        }
    }
}

/// Connects and tries the lock until it is granted.
async fn wait_for_lock(config: &tokio_postgres::Config, key: i64) -> Result<Lease, StoreError> {
    let (client, connection) = config.connect(NoTls).await.map_err(pg_error)?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    // the connection goes with the driver if this fails half-way
    let held = Held(vec![driver]);
    client.batch_execute(KEEPALIVES).await.map_err(pg_error)?;
    loop {
        let granted: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
            .await
            .map_err(pg_error)?
            .get(0);
        if granted {
            return Ok(hold(client, held));
        }
        tokio::time::sleep(CHECK).await;
    }
}

/// The lease held on `client`'s connection: lost when a check of it fails.
fn hold(client: Client, mut held: Held) -> Lease {
    let (lost_tx, lost) = watch::channel(false);
    held.0.push(tokio::spawn(async move {
        loop {
            tokio::time::sleep(CHECK).await;
            if client.simple_query("SELECT 1").await.is_err() {
                break;
            }
        }
        tracing::warn!("lost the connection that held a lease; giving it up");
        let _ = lost_tx.send(true);
    }));
    Lease::new(held, lost)
}

//! Gateways sharing a store share their plugins: each one reads the stored catalogue every
//! [`FOLLOW_INTERVAL`] and installs, replaces, re-grants, enables, disables or removes locally
//! what another gateway changed. A watcher runs on one gateway at a time (its lease, see
//! `bus::tenure`), so a deleted watcher stops everywhere before its `DELETE` is answered: the
//! deleting gateway waits for the watcher's lease, which the gateway running it gives up when it
//! sees the deletion (after its call in flight).

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::PluginManager;
use crate::plugins::catalog::{self, PluginRecord};
use crate::plugins::inventory::Installed;
use crate::plugins::keys;
use crate::sync::lock;

/// How often a gateway reads the stored catalogue.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// What tells one stored state of a plugin from another.
fn version(record: &PluginRecord) -> (u32, chrono::DateTime<chrono::Utc>) {
    (record.revision, record.updated_at)
}

impl PluginManager {
    /// Follows the stored catalogue until the manager is dropped.
    pub(super) fn follow_store(manager: Weak<PluginManager>) {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(FOLLOW_INTERVAL).await;
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                if let Err(e) = manager.catch_up().await {
                    tracing::warn!(error = %e, "cannot read the stored plugins; retrying");
                }
            }
        });
    }

    /// Makes the local plugins what the store holds.
    async fn catch_up(self: &Arc<Self>) -> Result<(), super::PluginError> {
        let _one = self.manage.lock().await;
        let stored: BTreeMap<String, PluginRecord> =
            catalog::records(self.registry().store().as_ref())
                .await?
                .into_iter()
                .map(|r| (r.name.clone(), r))
                .collect();
        let mut changed = false;
        for record in stored.values() {
            let local = self.inventory.get(&record.name).map(|p| p.record.clone());
            let unloaded = lock(&self.unloaded)
                .get(&record.name)
                .map(|(r, _)| r.clone());
            let known = local.as_ref().or(unloaded.as_ref()).map(version);
            if known == Some(version(record)) {
                continue;
            }
            changed = true;
            tracing::info!(plugin = %record.name, revision = record.revision, "plugin changed by another gateway");
            match local {
                // the same component: new grants or state, same call counts
                Some(old) if old.revision == record.revision => {
                    let installed = self.inventory.get(&record.name).expect("just read");
                    self.inventory.put(Installed::new(
                        record.clone(),
                        &installed.loaded,
                        installed.loaded.stats().clone(),
                    ));
                }
                _ => self.load_or_note(record.clone()).await,
            }
        }
        let gone: Vec<String> = self
            .inventory
            .all()
            .iter()
            .map(|p| p.record.name.clone())
            .chain(lock(&self.unloaded).keys().cloned())
            .filter(|name| !stored.contains_key(name))
            .collect();
        for name in gone {
            tracing::info!(plugin = %name, "plugin deleted by another gateway");
            self.inventory.remove(&name);
            lock(&self.unloaded).remove(&name);
            lock(&self.services.kv_usage).remove(&name);
            changed = true;
        }
        if changed {
            self.sync_runners().await;
        }
        Ok(())
    }

    /// Waits until no gateway runs watcher `name` (after its deletion): its lease is free.
    pub(super) async fn wait_until_stopped_everywhere(&self, name: &str) {
        drop(
            self.registry()
                .store()
                .lease(&keys::watcher_lease(name))
                .await,
        );
    }
}

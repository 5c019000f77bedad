//! The installed plugins: the current revision of each, the enabled transforms the request
//! path runs, and a notification at each change. The manager changes it; the registry's
//! transform hook and the watchers' runners read it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use tokio::sync::watch;

use super::catalog::PluginRecord;
use super::convert::{candidate_event, returned_candidate, stored_event};
use super::instance::{CallFailure, Loaded};
use super::model::World;
use super::sandbox::{HostAccess, Permissions, Services};
use super::stats::CallStats;
use crate::registry::error::RegistryError;
use crate::registry::model::{Event, Receiver};
use crate::registry::transform::{Candidate, Transforms};
use crate::sync::{read, write};

/// An installed revision of a plugin.
pub struct Installed {
    /// Its record.
    pub record: PluginRecord,
    /// The loaded component.
    pub loaded: Arc<Loaded>,
    /// What a watcher may use of the `host` interface.
    pub permissions: Arc<Permissions>,
}

impl Installed {
    /// `linked` installed under `record`'s name, limits and grants, counting into `stats`.
    pub fn new(record: PluginRecord, linked: &Loaded, stats: Arc<CallStats>) -> Self {
        let loaded = linked.configured(
            &record.name,
            record.grants.memory_bytes(),
            record.grants.cpu_budget(record.world),
            record.grants.deadline(record.world),
            stats,
        );
        let permissions = Arc::new(Permissions::new(
            record.grants.clone(),
            &record.manifest.wit_capabilities(),
        ));
        Installed {
            record,
            loaded: Arc::new(loaded),
            permissions,
        }
    }

    /// Hands a stored event to this watcher on a blocking thread, with access to `services`
    /// within its permissions.
    pub async fn watch(
        &self,
        services: &Arc<Services>,
        event: &Event,
        receiver: &Receiver,
    ) -> Result<(), CallFailure> {
        let access = HostAccess {
            services: services.clone(),
            permissions: self.permissions.clone(),
            cause: event.id.clone(),
            emitted: 0,
        };
        let wit_event = stored_event(event, receiver);
        let loaded = self.loaded.clone();
        tokio::task::spawn_blocking(move || loaded.watch(&wit_event, access))
            .await
            .unwrap_or_else(|e| Err(CallFailure::Trapped(format!("the call panicked: {e}"))))
    }
}

/// The installed plugins, by name.
pub struct Inventory {
    plugins: RwLock<BTreeMap<String, Arc<Installed>>>,
    /// The enabled transforms, in name order: what the request path reads.
    transforms: RwLock<Arc<Vec<Arc<Installed>>>>,
    changes: watch::Sender<u64>,
}

impl Default for Inventory {
    fn default() -> Self {
        Inventory {
            plugins: RwLock::default(),
            transforms: RwLock::default(),
            changes: watch::channel(0).0,
        }
    }
}

impl Inventory {
    /// The installed plugin `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Installed>> {
        read(&self.plugins).get(name).cloned()
    }

    /// Every installed plugin, by name.
    pub fn all(&self) -> Vec<Arc<Installed>> {
        read(&self.plugins).values().cloned().collect()
    }

    /// Makes `installed` the current revision of its plugin.
    pub fn put(&self, installed: Installed) {
        let name = installed.record.name.clone();
        write(&self.plugins).insert(name, Arc::new(installed));
        self.changed();
    }

    /// Uninstalls plugin `name`; `None` if it was not installed.
    pub fn remove(&self, name: &str) -> Option<Arc<Installed>> {
        let removed = write(&self.plugins).remove(name);
        self.changed();
        removed
    }

    /// Notified at each change.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Publishes a change: the transform list and the runners' view.
    fn changed(&self) {
        let transforms = read(&self.plugins)
            .values()
            .filter(|p| p.record.world == World::Transform && p.record.enabled)
            .cloned()
            .collect();
        *write(&self.transforms) = Arc::new(transforms);
        self.changes.send_modify(|n| *n += 1);
    }
}

impl Transforms for Inventory {
    fn active(&self) -> bool {
        !read(&self.transforms).is_empty()
    }

    fn apply(&self, candidate: Candidate) -> Result<Vec<Candidate>, RegistryError> {
        let transforms = read(&self.transforms).clone();
        let mut current = vec![candidate];
        for transform in transforms.iter() {
            let mut next = Vec::with_capacity(current.len());
            for candidate in current {
                if !transform.record.subscription().matches(
                    &candidate.receiver_id,
                    &candidate.receiver_type,
                    &candidate.path,
                ) {
                    next.push(candidate);
                    continue;
                }
                let refused = |reason: String| RegistryError::Refused {
                    plugin: transform.record.name.clone(),
                    reason,
                };
                let event = candidate_event(&candidate);
                let events = transform
                    .loaded
                    .transform(&event)
                    .map_err(|e| refused(e.to_string()))?;
                for event in events {
                    next.push(returned_candidate(event, &candidate).map_err(refused)?);
                }
            }
            current = next;
        }
        Ok(current)
    }
}

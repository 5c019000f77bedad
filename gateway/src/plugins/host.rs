//! The plugin manager: loads stored plugins at start, installs, replaces, changes and deletes
//! them at run time, runs transforms for the registry and a runner per watcher.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;

use super::background::Background;
use super::catalog::{self, PluginRecord};
use super::compile::{self, Compiled};
use super::convert::{candidate_event, returned_candidate, stored_event};
use super::engine::PluginEngine;
use super::grants::Grants;
use super::instance::{CallFailure, CallStats, Loaded, World};
use super::runner::{self, DeadLetter, Runner};
use super::sandbox::{Granted, HostAccess, Services, HTTP_TIMEOUT};
use super::PluginError;
use crate::bus::cursor;
use crate::registry::error::RegistryError;
use crate::registry::model::{Event, Receiver};
use crate::registry::transform::{Candidate, Transforms};
use crate::registry::Registry;

/// An installed revision of a plugin.
pub struct Installed {
    /// Its record.
    pub record: PluginRecord,
    /// The loaded component.
    pub loaded: Arc<Loaded>,
    /// What a watcher may use of the `host` interface.
    granted: Arc<Granted>,
}

/// A plugin as the API shows it: configuration values whose key names a secret, token,
/// password or key are shown as `<set>`.
#[derive(Debug, Serialize)]
pub struct PluginView {
    /// The stored record.
    #[serde(flatten)]
    pub record: PluginRecord,
    /// Calls since the gateway started.
    pub calls: u64,
    /// Failed calls since the gateway started.
    pub failures: u64,
    /// The last failure's error.
    pub last_error: Option<String>,
    /// The capabilities it has: those of its manifest's (`manifest.capabilities`, what it
    /// asks for) that the grants give.
    pub granted_capabilities: Vec<&'static str>,
    /// A watcher's cursor: the last log sequence number it is done with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<u64>,
    /// A watcher's dead letters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letters: Option<usize>,
}

/// A change to a plugin (`PATCH`): fields left out stay as they are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginPatch {
    /// Enable or disable it.
    pub enabled: Option<bool>,
    /// New grants (replacing the old ones whole).
    pub grants: Option<Grants>,
}

/// The outcome of re-driving dead letters.
#[derive(Debug, Serialize)]
pub struct Redriven {
    /// Dead letters tried.
    pub tried: usize,
    /// Handled this time (removed from the dead letters).
    pub handled: usize,
    /// Still failing (kept, with the new error).
    pub failed: usize,
}

/// The plugin manager.
pub struct PluginHost {
    engine: Arc<PluginEngine>,
    /// Where watchers run (their host calls wait on it too).
    background: Background,
    services: Arc<Services>,
    plugins: RwLock<BTreeMap<String, Arc<Installed>>>,
    /// The enabled transforms, in name order: what the request path reads.
    transforms: RwLock<Arc<Vec<Arc<Installed>>>>,
    runners: tokio::sync::Mutex<HashMap<String, Runner>>,
    /// One management operation at a time.
    manage: tokio::sync::Mutex<()>,
    changes: watch::Sender<u64>,
}

impl PluginHost {
    /// Loads the stored plugins, hooks the transforms into `registry`, starts the watchers.
    pub async fn start(registry: Arc<Registry>) -> Result<Arc<Self>, PluginError> {
        let engine = PluginEngine::new()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(super::addresses::PublicOnly))
            .timeout(HTTP_TIMEOUT)
            .build()
            .map_err(|e| PluginError::Internal(format!("HTTP client: {e}")))?;
        let background = Background::start()?;
        let services = Arc::new(Services {
            registry: registry.clone(),
            http,
            runtime: background.handle().clone(),
            kv_usage: Default::default(),
        });
        let host = Arc::new(PluginHost {
            engine,
            background,
            services,
            plugins: RwLock::new(BTreeMap::new()),
            transforms: RwLock::new(Arc::new(Vec::new())),
            runners: tokio::sync::Mutex::new(HashMap::new()),
            manage: tokio::sync::Mutex::new(()),
            changes: watch::channel(0).0,
        });
        for record in catalog::records(registry.store().as_ref())? {
            let name = record.name.clone();
            match host.load_stored(record).await {
                Ok(installed) => host.put(installed),
                Err(e) => {
                    tracing::error!(plugin = %name, error = %e, "cannot load the stored plugin; it stays off until replaced")
                }
            }
        }
        registry.set_transforms(host.clone());
        host.sync_runners().await;
        tracing::info!(plugins = host.read().len(), "plugins loaded");
        Ok(host)
    }

    /// The runtime watchers run on, at a lower priority than the request path.
    pub fn background(&self) -> &tokio::runtime::Handle {
        self.background.handle()
    }

    /// The registry plugins work on.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.services.registry
    }

    /// The installed plugin `name`.
    pub fn installed(&self, name: &str) -> Option<Arc<Installed>> {
        self.read().get(name).cloned()
    }

    /// Notified at each change of the installed plugins.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Installed>>> {
        self.plugins.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Loads a stored plugin from its precompiled form, compiling it again when that no longer
    /// loads (another gateway version).
    async fn load_stored(&self, record: PluginRecord) -> Result<Installed, PluginError> {
        let store = self.registry().store();
        let (component_bytes, artifact) = catalog::binaries(store.as_ref(), &record.name)?;
        let loaded = artifact.and_then(|a| compile::deserialize(&self.engine, &a).ok());
        let linked = match loaded {
            Some(component) => Loaded::link(&self.engine, record.world, &component)?,
            None => {
                tracing::info!(plugin = %record.name, "compiling the stored component again");
                let compiled = self.compile(component_bytes).await?.0;
                catalog::save_artifact(
                    store,
                    &record.name,
                    compile::serialize(&compiled.component)?,
                )
                .await?;
                compiled.linked
            }
        };
        Ok(self.install(record, &linked, Arc::default()))
    }

    /// `linked` installed under `record`'s name and grants, counting into `stats`.
    fn install(&self, record: PluginRecord, linked: &Loaded, stats: Arc<CallStats>) -> Installed {
        let loaded = linked.configured(
            &record.name,
            record.grants.memory_bytes(),
            record.grants.cpu_budget(record.world),
            record.grants.deadline(record.world),
            stats,
        );
        let granted = Arc::new(Granted::new(
            record.grants.clone(),
            &record.manifest.wit_capabilities(),
        ));
        Installed {
            record,
            loaded: Arc::new(loaded),
            granted,
        }
    }

    /// Compiles uploaded bytes on a blocking thread; also returns the bytes.
    async fn compile(&self, bytes: Vec<u8>) -> Result<(Compiled, Vec<u8>), PluginError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || compile::compile(&engine, &bytes).map(|c| (c, bytes)))
            .await
            .map_err(|e| PluginError::Internal(format!("compilation task: {e}")))?
    }

    /// Makes `installed` the current revision of its plugin.
    fn put(&self, installed: Installed) {
        let name = installed.record.name.clone();
        self.plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, Arc::new(installed));
        self.changed();
    }

    /// Publishes a change: the transform list and the runners' view.
    fn changed(&self) {
        let transforms = self
            .read()
            .values()
            .filter(|p| p.record.world == World::Transform && p.record.enabled)
            .cloned()
            .collect();
        *self.transforms.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(transforms);
        self.changes.send_modify(|n| *n += 1);
    }

    /// Starts a runner for each installed watcher without one, stops those of plugins that are
    /// no longer watchers; returns once stopped runners have finished their call in flight.
    async fn sync_runners(self: &Arc<Self>) {
        let watchers: Vec<String> = self
            .read()
            .values()
            .filter(|p| p.record.world == World::Watcher)
            .map(|p| p.record.name.clone())
            .collect();
        let mut runners = self.runners.lock().await;
        let gone: Vec<String> = runners
            .keys()
            .filter(|name| !watchers.contains(name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(runner) = runners.remove(&name) {
                runner.stop().await;
            }
        }
        for name in watchers {
            runners
                .entry(name.clone())
                .or_insert_with(|| Runner::spawn(self.clone(), name));
        }
    }

    /// Stops every watcher (each after its call in flight).
    pub async fn stop(&self) {
        let mut runners = self.runners.lock().await;
        for (_, runner) in runners.drain() {
            runner.stop().await;
        }
    }

    /// Every plugin, by name.
    pub fn list(&self) -> Vec<PluginView> {
        let installed: Vec<Arc<Installed>> = self.read().values().cloned().collect();
        installed.iter().map(|p| self.view(p)).collect()
    }

    /// Plugin `name`.
    pub fn get(&self, name: &str) -> Result<PluginView, PluginError> {
        let installed = self
            .installed(name)
            .ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        Ok(self.view(&installed))
    }

    fn view(&self, installed: &Installed) -> PluginView {
        let name = &installed.record.name;
        let watcher = installed.record.world == World::Watcher;
        let mut record = installed.record.clone();
        for (key, value) in record.grants.config.iter_mut() {
            let key = key.to_ascii_lowercase();
            if ["secret", "token", "password", "key"]
                .iter()
                .any(|s| key.contains(s))
            {
                *value = "<set>".into();
            }
        }
        PluginView {
            record,
            calls: installed.loaded.stats().calls(),
            failures: installed.loaded.stats().failures(),
            last_error: installed.loaded.stats().last_error(),
            granted_capabilities: installed.granted.names(),
            cursor: watcher.then(|| cursor::stored(self.registry(), &catalog::cursor_key(name))),
            dead_letters: watcher.then(|| {
                runner::dead_letters(self, name)
                    .map(|d| d.len())
                    .unwrap_or(0)
            }),
        }
    }

    /// Installs a new plugin from its component and grants; live at once. A new watcher gets
    /// the events stored from now on.
    /// `name`, when given, installs it under that name instead of its manifest's (to run one
    /// component twice with different grants).
    pub async fn upload(
        self: &Arc<Self>,
        bytes: Vec<u8>,
        grants: Grants,
        name: Option<String>,
    ) -> Result<PluginView, PluginError> {
        grants.check()?;
        if let Some(name) = &name {
            compile::check_name(name)?;
        }
        let _one = self.manage.lock().await;
        let (compiled, bytes) = self.compile(bytes).await?;
        grants.check_for(compiled.world)?;
        let name = name.unwrap_or_else(|| compiled.manifest.name.clone());
        if self.installed(&name).is_some() {
            return Err(PluginError::Exists(name));
        }
        let now = Utc::now();
        let record = PluginRecord {
            name: name.clone(),
            world: compiled.world,
            manifest: compiled.manifest.clone(),
            grants,
            enabled: true,
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len(),
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        let installed = self.install(record.clone(), &compiled.linked, Arc::default());
        if compiled.world == World::Watcher {
            let now_seq = *self.registry().store().durable_seq().borrow();
            cursor::store(self.registry(), &catalog::cursor_key(&name), now_seq).await?;
        }
        let artifact = compile::serialize(&compiled.component)?;
        catalog::save(self.registry().store(), &record, Some((bytes, artifact))).await?;
        self.put(installed);
        self.sync_runners().await;
        tracing::info!(plugin = %name, world = ?record.world, "plugin installed");
        self.get(&name)
    }

    /// Replaces plugin `name` with a new component (its manifest must carry the same name),
    /// keeping its grants unless new ones are given, its state and a watcher's cursor. Calls in
    /// flight finish on the old revision.
    pub async fn replace(
        self: &Arc<Self>,
        name: &str,
        bytes: Vec<u8>,
        grants: Option<Grants>,
    ) -> Result<PluginView, PluginError> {
        if let Some(grants) = &grants {
            grants.check()?;
        }
        let _one = self.manage.lock().await;
        let old = self
            .installed(name)
            .ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        let (compiled, bytes) = self.compile(bytes).await?;
        if compiled.manifest.name != old.record.manifest.name {
            return Err(PluginError::Invalid(format!(
                "the new component's manifest names it {}, not {} (delete {name} and upload it instead)",
                compiled.manifest.name, old.record.manifest.name
            )));
        }
        let grants = grants.unwrap_or_else(|| old.record.grants.clone());
        grants.check_for(compiled.world)?;
        let record = PluginRecord {
            world: compiled.world,
            manifest: compiled.manifest.clone(),
            grants,
            sha256: hex::encode(Sha256::digest(&bytes)),
            size: bytes.len(),
            revision: old.record.revision + 1,
            updated_at: Utc::now(),
            ..old.record.clone()
        };
        let installed = self.install(record.clone(), &compiled.linked, old.loaded.stats().clone());
        let artifact = compile::serialize(&compiled.component)?;
        catalog::save(self.registry().store(), &record, Some((bytes, artifact))).await?;
        self.put(installed);
        self.sync_runners().await;
        tracing::info!(plugin = %name, revision = record.revision, "plugin replaced");
        self.get(name)
    }

    /// Enables, disables or re-grants plugin `name`.
    pub async fn update(
        self: &Arc<Self>,
        name: &str,
        patch: PluginPatch,
    ) -> Result<PluginView, PluginError> {
        if let Some(grants) = &patch.grants {
            grants.check()?;
        }
        let _one = self.manage.lock().await;
        let old = self
            .installed(name)
            .ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        if let Some(grants) = &patch.grants {
            grants.check_for(old.record.world)?;
        }
        let record = PluginRecord {
            enabled: patch.enabled.unwrap_or(old.record.enabled),
            grants: patch.grants.unwrap_or_else(|| old.record.grants.clone()),
            updated_at: Utc::now(),
            ..old.record.clone()
        };
        // same component: new limits and grants, same call counts
        let installed = self.install(record.clone(), &old.loaded, old.loaded.stats().clone());
        catalog::save(self.registry().store(), &record, None).await?;
        self.put(installed);
        self.get(name)
    }

    /// Deletes plugin `name` and everything it kept; once this returns, it handles nothing more.
    pub async fn delete(self: &Arc<Self>, name: &str) -> Result<(), PluginError> {
        let _one = self.manage.lock().await;
        let removed = self
            .plugins
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if removed.is_none() {
            return Err(PluginError::NotFound(name.to_owned()));
        }
        self.changed();
        self.sync_runners().await;
        catalog::remove(self.registry().store(), name).await?;
        // its key-value store went with it: a plugin uploaded under this name starts empty
        self.services
            .kv_usage
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        tracing::info!(plugin = %name, "plugin deleted");
        Ok(())
    }

    /// Hands a stored event to watcher `installed` on a blocking thread.
    pub async fn call_watcher(
        &self,
        installed: &Arc<Installed>,
        event: &Event,
        receiver: &Receiver,
    ) -> Result<(), CallFailure> {
        let access = HostAccess {
            services: self.services.clone(),
            granted: installed.granted.clone(),
            cause: event.id.clone(),
            emitted: 0,
        };
        let wit_event = stored_event(event, receiver);
        let loaded = installed.loaded.clone();
        tokio::task::spawn_blocking(move || loaded.watch(&wit_event, access))
            .await
            .unwrap_or_else(|e| Err(CallFailure::Trapped(format!("the call panicked: {e}"))))
    }

    /// The dead letters of watcher `name`, oldest first.
    pub fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, PluginError> {
        self.watcher(name)?;
        runner::dead_letters(self, name)
    }

    fn watcher(&self, name: &str) -> Result<Arc<Installed>, PluginError> {
        let installed = self
            .installed(name)
            .ok_or_else(|| PluginError::NotFound(name.to_owned()))?;
        match installed.record.world {
            World::Watcher => Ok(installed),
            World::Transform => Err(PluginError::Invalid(format!(
                "{name} is a transform: only watchers have dead letters"
            ))),
        }
    }

    /// Hands each dead letter of watcher `name` to its current revision once more; those
    /// handled are removed, the others keep the new error.
    pub async fn redrive(&self, name: &str) -> Result<Redriven, PluginError> {
        let installed = self.watcher(name)?;
        let letters = runner::dead_letters(self, name)?;
        let mut outcome = Redriven {
            tried: letters.len(),
            handled: 0,
            failed: 0,
        };
        for mut letter in letters {
            let found = self.registry().event(&letter.event_id);
            let result = match found {
                Ok(found) => {
                    self.call_watcher(&installed, &found.event, &found.receiver)
                        .await
                }
                Err(RegistryError::NotFound { .. }) => {
                    Err(CallFailure::Returned("the event no longer exists".into()))
                }
                Err(e) => return Err(e.into()),
            };
            match result {
                Ok(()) => {
                    runner::remove_dead_letter(self, name, letter.seq).await?;
                    outcome.handled += 1;
                }
                Err(e) => {
                    letter.error = e.to_string();
                    letter.attempts += 1;
                    letter.failed_at = Utc::now();
                    runner::put_dead_letter(self, name, &letter).await?;
                    outcome.failed += 1;
                }
            }
        }
        Ok(outcome)
    }
}

impl Transforms for PluginHost {
    fn active(&self) -> bool {
        !self
            .transforms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }

    fn apply(&self, candidate: Candidate) -> Result<Vec<Candidate>, RegistryError> {
        let transforms = self
            .transforms
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
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

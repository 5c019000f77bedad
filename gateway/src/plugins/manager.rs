//! The plugin manager: loads stored plugins at start, installs, replaces, changes and deletes
//! them at run time, runs transforms for the registry and a runner per watcher.

mod shared;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::Utc;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::addresses::PublicOnly;
use super::background::Background;
use super::catalog::{self, PluginRecord};
use super::compile::{self, Compiled};
use super::dead_letters::{self, DeadLetter};
use super::engine::PluginEngine;
use super::error::PluginError;
use super::grants::Grants;
use super::instance::{CallFailure, Loaded};
use super::inventory::{Installed, Inventory};
use super::keys;
use super::limits::HTTP_TIMEOUT;
use super::model::World;
use super::runner::{self, Runner};
use super::sandbox::Services;
use super::stats::CallStats;
use crate::bus::cursor;
use crate::registry::Registry;
use crate::registry::error::RegistryError;
use crate::sync::lock;

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
    /// Why the stored plugin did not load at start (built for another contract, say): it runs
    /// nothing until it is replaced (`PUT`) or deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load_error: Option<String>,
}

/// A plugin's health from memory alone (no store reads): what the open status report shows.
#[derive(Debug, Serialize)]
pub struct PluginHealth {
    /// Its name.
    pub name: String,
    /// Whether it is enabled.
    pub enabled: bool,
    /// Calls since the gateway started.
    pub calls: u64,
    /// Failed calls since the gateway started.
    pub failures: u64,
    /// Whether it loaded at start (one that did not runs nothing).
    pub loaded: bool,
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
pub struct PluginManager {
    engine: Arc<PluginEngine>,
    /// Where watchers run (their host calls wait on it too); dropped last.
    _background: Background,
    services: Arc<Services>,
    inventory: Arc<Inventory>,
    /// Stored plugins that did not load at start, with why: shown, replaceable, deletable.
    unloaded: std::sync::Mutex<BTreeMap<String, (PluginRecord, String)>>,
    runners: tokio::sync::Mutex<HashMap<String, Runner>>,
    /// One management operation at a time.
    manage: tokio::sync::Mutex<()>,
}

impl PluginManager {
    /// Loads the stored plugins, hooks the transforms into `registry`, starts the watchers.
    pub async fn start(registry: Arc<Registry>) -> Result<Arc<Self>, PluginError> {
        let engine = PluginEngine::new()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PublicOnly))
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
        let manager = Arc::new(PluginManager {
            engine,
            _background: background,
            services,
            inventory: Arc::default(),
            unloaded: Default::default(),
            runners: tokio::sync::Mutex::new(HashMap::new()),
            manage: tokio::sync::Mutex::new(()),
        });
        for record in catalog::records(registry.store().as_ref()).await? {
            manager.load_or_note(record).await;
        }
        registry.set_transforms(manager.inventory.clone());
        manager.sync_runners().await;
        PluginManager::follow_store(Arc::downgrade(&manager));
        tracing::info!(plugins = manager.inventory.all().len(), "plugins loaded");
        Ok(manager)
    }

    /// The registry plugins work on.
    fn registry(&self) -> &Arc<Registry> {
        &self.services.registry
    }

    /// Whether a plugin named `name` is stored: installed, or stored but not loaded at start
    /// (every stored plugin is one or the other while the management lock is held).
    fn exists(&self, name: &str) -> bool {
        self.inventory.get(name).is_some() || lock(&self.unloaded).contains_key(name)
    }

    /// The installed plugin `name`, or why there is none.
    fn installed(&self, name: &str) -> Result<Arc<Installed>, PluginError> {
        self.inventory
            .get(name)
            .ok_or_else(|| PluginError::NotFound(name.to_owned()))
    }

    /// Installs stored plugin `record`, or notes why it does not load (it stays off until
    /// replaced).
    async fn load_or_note(&self, record: PluginRecord) {
        let name = record.name.clone();
        let record_of_failed = record.clone();
        match self.load_stored(record).await {
            Ok(installed) => {
                self.inventory.put(installed);
                lock(&self.unloaded).remove(&name);
            }
            Err(e) => {
                tracing::error!(plugin = %name, error = %e, "cannot load the stored plugin; it stays off until replaced");
                self.inventory.remove(&name);
                lock(&self.unloaded).insert(name, (record_of_failed, e.to_string()));
            }
        }
    }

    /// Loads a stored plugin from its precompiled form, compiling it again when that no longer
    /// loads (another gateway version).
    async fn load_stored(&self, record: PluginRecord) -> Result<Installed, PluginError> {
        let store = self.registry().store();
        let (component_bytes, artifact) = catalog::binaries(store.as_ref(), &record.name).await?;
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
        Ok(Installed::new(record, &linked, Arc::default()))
    }

    /// Compiles uploaded bytes on a blocking thread; also returns the bytes.
    async fn compile(&self, bytes: Vec<u8>) -> Result<(Compiled, Vec<u8>), PluginError> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || compile::compile(&engine, &bytes).map(|c| (c, bytes)))
            .await
            .map_err(|e| PluginError::Internal(format!("compilation task: {e}")))?
    }

    /// Starts a runner for each installed watcher without one, stops those of plugins that are
    /// no longer watchers; returns once stopped runners have finished their call in flight.
    async fn sync_runners(self: &Arc<Self>) {
        let watchers: Vec<String> = self
            .inventory
            .all()
            .iter()
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
                .or_insert_with(|| Runner::spawn(self.runner_context(), name));
        }
    }

    fn runner_context(&self) -> runner::Context {
        runner::Context {
            inventory: self.inventory.clone(),
            services: self.services.clone(),
        }
    }

    /// Stops every watcher (each after its call in flight).
    pub async fn stop(&self) {
        let mut runners = self.runners.lock().await;
        for (_, runner) in runners.drain() {
            runner.stop().await;
        }
    }

    /// Every plugin, by name (those that did not load at start too).
    pub async fn list(&self) -> Vec<PluginView> {
        let unloaded: Vec<_> = lock(&self.unloaded).values().cloned().collect();
        let mut views = Vec::new();
        for installed in self.inventory.all().iter() {
            views.push(self.view(installed).await);
        }
        for (record, error) in &unloaded {
            views.push(self.unloaded_view(record, error).await);
        }
        views.sort_by(|a, b| a.record.name.cmp(&b.record.name));
        views
    }

    /// Every plugin's health, by name, from memory (cheap enough for an open endpoint; the
    /// counts that need the store, cursors and dead letters, are in [`Self::list`]).
    pub fn health(&self) -> Vec<PluginHealth> {
        let installed = self.inventory.all();
        let mut health: Vec<PluginHealth> = installed
            .iter()
            .map(|p| PluginHealth {
                name: p.record.name.clone(),
                enabled: p.record.enabled,
                calls: p.loaded.stats().calls(),
                failures: p.loaded.stats().failures(),
                loaded: true,
            })
            .collect();
        health.extend(
            lock(&self.unloaded)
                .values()
                .map(|(record, _)| PluginHealth {
                    name: record.name.clone(),
                    enabled: record.enabled,
                    calls: 0,
                    failures: 0,
                    loaded: false,
                }),
        );
        health.sort_by(|a, b| a.name.cmp(&b.name));
        health
    }

    /// Plugin `name`.
    pub async fn get(&self, name: &str) -> Result<PluginView, PluginError> {
        let unloaded = lock(&self.unloaded).get(name).cloned();
        if let Some((record, error)) = unloaded {
            return Ok(self.unloaded_view(&record, &error).await);
        }
        let installed = self.installed(name)?;
        Ok(self.view(&installed).await)
    }

    async fn view(&self, installed: &Installed) -> PluginView {
        let stats = installed.loaded.stats();
        PluginView {
            calls: stats.calls(),
            failures: stats.failures(),
            last_error: stats.last_error(),
            granted_capabilities: installed.permissions.names(),
            ..self.record_view(&installed.record).await
        }
    }

    /// The view of a stored plugin that did not load, and why.
    async fn unloaded_view(&self, record: &PluginRecord, error: &str) -> PluginView {
        PluginView {
            load_error: Some(error.to_owned()),
            ..self.record_view(record).await
        }
    }

    /// What the store says of `record`'s plugin (secret-looking configuration values hidden),
    /// with no calls and no capabilities.
    async fn record_view(&self, record: &PluginRecord) -> PluginView {
        let name = &record.name;
        let watcher = record.world == World::Watcher;
        let (cursor, dead_letters) = match watcher {
            true => {
                let cursor = cursor::stored(self.registry(), &keys::cursor(name)).await;
                let letters = dead_letters::list(self.registry().store().as_ref(), name).await;
                (Some(cursor), Some(letters.map_or(0, |d| d.len())))
            }
            false => (None, None),
        };
        let mut record = record.clone();
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
            calls: 0,
            failures: 0,
            last_error: None,
            granted_capabilities: Vec::new(),
            cursor,
            dead_letters,
            load_error: None,
            record,
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
        if self.exists(&name) {
            return Err(PluginError::Exists(name));
        }
        if compiled.world == World::Watcher {
            let now_seq = *self.registry().store().durable_seq().borrow();
            cursor::store(self.registry(), &keys::cursor(&name), now_seq).await?;
        }
        let now = Utc::now();
        let record = PluginRecord {
            name,
            world: compiled.world,
            manifest: compiled.manifest.clone(),
            grants,
            enabled: true,
            sha256: String::new(),
            size: 0,
            revision: 1,
            created_at: now,
            updated_at: now,
        };
        self.install_revision(record, compiled, bytes, Arc::default())
            .await
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
        // the installed revision, or a stored one that did not load at start (e.g. built for
        // an earlier contract): replacing it is how it comes back
        let (old, stats) = match self.inventory.get(name) {
            Some(installed) => (installed.record.clone(), installed.loaded.stats().clone()),
            None => (
                lock(&self.unloaded)
                    .get(name)
                    .map(|(record, _)| record.clone())
                    .ok_or_else(|| PluginError::NotFound(name.to_owned()))?,
                Arc::default(),
            ),
        };
        let (compiled, bytes) = self.compile(bytes).await?;
        if compiled.manifest.name != old.manifest.name {
            return Err(PluginError::Invalid(format!(
                "the new component's manifest names it {}, not {} (delete {name} and upload it instead)",
                compiled.manifest.name, old.manifest.name
            )));
        }
        let grants = grants.unwrap_or_else(|| old.grants.clone());
        grants.check_for(compiled.world)?;
        let record = PluginRecord {
            world: compiled.world,
            manifest: compiled.manifest.clone(),
            grants,
            revision: old.revision + 1,
            updated_at: Utc::now(),
            ..old
        };
        self.install_revision(record, compiled, bytes, stats).await
    }

    /// Stores `compiled` (uploaded as `bytes`) as revision `record` and makes it current,
    /// counting its calls into `stats`; the caller holds the management lock.
    async fn install_revision(
        self: &Arc<Self>,
        mut record: PluginRecord,
        compiled: Compiled,
        bytes: Vec<u8>,
        stats: Arc<CallStats>,
    ) -> Result<PluginView, PluginError> {
        record.sha256 = hex::encode(Sha256::digest(&bytes));
        record.size = bytes.len();
        let installed = Installed::new(record.clone(), &compiled.linked, stats);
        let artifact = compile::serialize(&compiled.component)?;
        catalog::save(self.registry().store(), &record, Some((bytes, artifact))).await?;
        self.inventory.put(installed);
        lock(&self.unloaded).remove(&record.name);
        self.sync_runners().await;
        tracing::info!(plugin = %record.name, world = ?record.world, revision = record.revision, "plugin installed");
        self.get(&record.name).await
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
        let old = self.installed(name)?;
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
        let installed = Installed::new(record.clone(), &old.loaded, old.loaded.stats().clone());
        catalog::save(self.registry().store(), &record, None).await?;
        self.inventory.put(installed);
        self.get(name).await
    }

    /// Deletes plugin `name` and everything it kept; once this returns, it handles nothing more.
    pub async fn delete(self: &Arc<Self>, name: &str) -> Result<(), PluginError> {
        let _one = self.manage.lock().await;
        // a stored plugin that did not load is deleted as well
        let unloaded = lock(&self.unloaded).remove(name).is_some();
        if self.inventory.remove(name).is_none() && !unloaded {
            return Err(PluginError::NotFound(name.to_owned()));
        }
        self.sync_runners().await;
        catalog::remove(self.registry().store(), name).await?;
        // its key-value store went with it: a plugin uploaded under this name starts empty
        lock(&self.services.kv_usage).remove(name);
        self.wait_until_stopped_everywhere(name).await;
        tracing::info!(plugin = %name, "plugin deleted");
        Ok(())
    }

    /// The dead letters of watcher `name`, oldest first.
    pub async fn dead_letters(&self, name: &str) -> Result<Vec<DeadLetter>, PluginError> {
        self.watcher(name)?;
        dead_letters::list(self.registry().store().as_ref(), name).await
    }

    fn watcher(&self, name: &str) -> Result<Arc<Installed>, PluginError> {
        let installed = self.installed(name)?;
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
        let store = self.registry().store();
        let letters = dead_letters::list(store.as_ref(), name).await?;
        let mut outcome = Redriven {
            tried: letters.len(),
            handled: 0,
            failed: 0,
        };
        for mut letter in letters {
            let found = self.registry().event(&letter.event_id);
            let result = match found.await {
                Ok(found) => {
                    installed
                        .watch(&self.services, &found.event, &found.receiver)
                        .await
                }
                Err(RegistryError::NotFound { .. }) => {
                    Err(CallFailure::Returned("the event no longer exists".into()))
                }
                Err(e) => return Err(e.into()),
            };
            match result {
                Ok(()) => {
                    dead_letters::remove(store, name, letter.seq).await?;
                    outcome.handled += 1;
                }
                Err(e) => {
                    letter.error = e.to_string();
                    letter.attempts += 1;
                    letter.failed_at = Utc::now();
                    dead_letters::put(store, name, &letter).await?;
                    outcome.failed += 1;
                }
            }
        }
        Ok(outcome)
    }
}

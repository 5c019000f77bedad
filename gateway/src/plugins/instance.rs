//! A loaded plugin: its pre-instantiated component and a few warm instances, each call bounded
//! by the plugin's memory cap and CPU budget.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::transform::{Transform, TransformPre};
use super::bindings::watcher::{Watcher, WatcherPre};
use super::bindings::wit_types;
use super::engine::{PluginEngine, EPOCH_TICK};
use super::grants::{DEFAULT_MEMORY_MIB, DEFAULT_WATCHER_CPU_MS, DEFAULT_WATCHER_DEADLINE_MS};
use super::sandbox::{log_safe, HostAccess, Sandbox};
use super::{PluginError, METRIC_CALLS, METRIC_CALL_SECONDS, METRIC_FAILURES, METRIC_MEMORY_PEAK};

/// Warm instances kept per plugin (more run at once are made fresh and dropped after). A
/// transform is called from as many request threads as are busy at once: with 4, a loaded
/// gateway instantiated often enough to lose a tenth of its throughput. A watcher uses one.
/// They count against the engine's pooled instance slots.
const WARM_INSTANCES: usize = 16;
/// Most events a transform can make of one.
pub const MAX_TRANSFORM_OUTPUTS: usize = 100;
/// Longest error a plugin can return, in bytes (longer ones are cut; control characters are
/// escaped): it reaches clients, the API and the log.
pub const MAX_ERROR_BYTES: usize = 1024;

/// Calls and failures of a plugin, across its revisions (shown by the API; the metrics count
/// the same calls).
#[derive(Debug, Default)]
pub struct CallStats {
    calls: AtomicU64,
    failures: AtomicU64,
    last_error: Mutex<Option<String>>,
}

impl CallStats {
    /// Calls so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Failed calls so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// The last failure's error.
    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// The world a plugin targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Runs in the request path.
    Transform,
    /// Runs from the log.
    Watcher,
}

/// How a call failed.
#[derive(Debug, Clone, Error)]
pub enum CallFailure {
    /// The plugin returned an error.
    #[error("{0}")]
    Returned(String),
    /// The plugin trapped, ran out of CPU or memory, or could not be instantiated.
    #[error("{0}")]
    Trapped(String),
}

enum Pre {
    Watcher(WatcherPre<Sandbox>),
    Transform(TransformPre<Sandbox>),
}

enum Bound {
    Watcher(Watcher),
    Transform(Transform),
}

struct Warm {
    store: Store<Sandbox>,
    bound: Bound,
}

/// A plugin ready to be called.
pub struct Loaded {
    /// Its name.
    pub name: Arc<str>,
    /// Its world.
    pub world: World,
    engine: Arc<PluginEngine>,
    pre: Pre,
    memory: usize,
    budget: Duration,
    deadline: Duration,
    warm: Mutex<Vec<Warm>>,
    stats: Arc<CallStats>,
}

impl Loaded {
    /// Links `component` for `world`, with the default limits: fails, saying why, when it
    /// imports what the host does not offer or does not export what the world requires.
    pub fn link(
        engine: &Arc<PluginEngine>,
        world: World,
        component: &Component,
    ) -> Result<Self, PluginError> {
        let linker = match world {
            World::Watcher => &engine.watcher_linker,
            World::Transform => &engine.transform_linker,
        };
        let pre = linker.instantiate_pre(component).map_err(|e| {
            PluginError::Invalid(format!(
                "the component imports what the host does not offer to a {world:?} (only WASI without capabilities, epr:plugin/logging{}): {e:#}",
                if world == World::Watcher { " and epr:plugin/host" } else { "" }
            ))
        })?;
        let mismatch = |e: wasmtime::Error| {
            PluginError::Invalid(format!(
                "the component's exports do not match the {world:?} world of epr:plugin@0.1.0: {e:#}"
            ))
        };
        let pre = match world {
            World::Watcher => Pre::Watcher(WatcherPre::new(pre).map_err(mismatch)?),
            World::Transform => Pre::Transform(TransformPre::new(pre).map_err(mismatch)?),
        };
        Ok(Loaded {
            name: "(uploading)".into(),
            world,
            engine: engine.clone(),
            pre,
            memory: DEFAULT_MEMORY_MIB as usize * 1024 * 1024,
            budget: Duration::from_millis(DEFAULT_WATCHER_CPU_MS),
            deadline: Duration::from_millis(DEFAULT_WATCHER_DEADLINE_MS),
            warm: Mutex::new(Vec::new()),
            stats: Arc::default(),
        })
    }

    /// The same component as plugin `name`, with these limits and call counts (no link again).
    pub fn configured(
        &self,
        name: &str,
        memory: usize,
        budget: Duration,
        deadline: Duration,
        stats: Arc<CallStats>,
    ) -> Loaded {
        Loaded {
            name: name.into(),
            world: self.world,
            engine: self.engine.clone(),
            pre: match &self.pre {
                Pre::Watcher(pre) => Pre::Watcher(pre.clone()),
                Pre::Transform(pre) => Pre::Transform(pre.clone()),
            },
            memory,
            budget,
            deadline,
            warm: Mutex::new(Vec::new()),
            stats,
        }
    }

    /// Its calls and failures.
    pub fn stats(&self) -> &Arc<CallStats> {
        &self.stats
    }

    /// Gives `store` a fresh budget for a call.
    fn rearm(&self, store: &mut Store<Sandbox>) {
        store.data_mut().clock.restart();
        store.set_epoch_deadline(ticks(self.budget));
    }

    /// A warm instance, or a new one.
    fn instance(&self) -> Result<Warm, CallFailure> {
        if let Some(warm) = self.warm.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(warm);
        }
        let sandbox = Sandbox::new(
            self.name.clone(),
            self.memory,
            self.budget,
            self.world == World::Watcher,
            self.deadline,
        );
        let mut store = Store::new(&self.engine.engine, sandbox);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            let clock = &ctx.data().clock;
            if clock.left().is_zero() {
                return Err(wasmtime::format_err!(
                    "wall-clock deadline of {} ms passed",
                    clock.deadline.as_millis()
                ));
            }
            let used = clock.used();
            if used >= clock.budget {
                return Err(wasmtime::format_err!(
                    "CPU time limit of {} ms exceeded",
                    clock.budget.as_millis()
                ));
            }
            Ok(UpdateDeadline::Continue(ticks(clock.budget - used)))
        });
        self.rearm(&mut store);
        let bound = match &self.pre {
            Pre::Watcher(pre) => pre.instantiate(&mut store).map(Bound::Watcher),
            Pre::Transform(pre) => pre.instantiate(&mut store).map(Bound::Transform),
        }
        .map_err(|e| CallFailure::Trapped(format!("cannot instantiate: {e:#}")))?;
        Ok(Warm { store, bound })
    }

    /// Runs `call` on an instance with a fresh budget and keeps the instance warm unless it
    /// trapped; records the time and memory taken.
    fn run<R>(
        &self,
        access: Option<HostAccess>,
        call: impl FnOnce(&Bound, &mut Store<Sandbox>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallFailure> {
        let mut warm = self.instance()?;
        warm.store.data_mut().host = access;
        self.rearm(&mut warm.store);
        let result = call(&warm.bound, &mut warm.store);
        let data = warm.store.data_mut();
        data.host = None;
        let plugin = self.name.to_string();
        metrics::histogram!(METRIC_CALL_SECONDS, "plugin" => plugin.clone())
            .record(data.clock.duration().as_secs_f64());
        metrics::gauge!(METRIC_MEMORY_PEAK, "plugin" => plugin).set(data.limiter.peak as f64);
        match result {
            Ok(returned) => {
                let mut warm_ones = self.warm.lock().unwrap_or_else(|e| e.into_inner());
                if warm_ones.len() < WARM_INSTANCES {
                    warm_ones.push(warm);
                }
                returned.map_err(|e| CallFailure::Returned(log_safe(&e, MAX_ERROR_BYTES)))
            }
            Err(trap) => Err(CallFailure::Trapped(log_safe(
                &format!("{trap:#}"),
                MAX_ERROR_BYTES,
            ))),
        }
    }

    /// [`Self::run`], counted in the metrics and the plugin's stats.
    fn call<R>(
        &self,
        access: Option<HostAccess>,
        call: impl FnOnce(&Bound, &mut Store<Sandbox>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallFailure> {
        let outcome = self.run(access, call);
        let plugin = self.name.to_string();
        metrics::counter!(METRIC_CALLS, "plugin" => plugin.clone()).increment(1);
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = &outcome {
            metrics::counter!(METRIC_FAILURES, "plugin" => plugin).increment(1);
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
            *self
                .stats
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
        }
        outcome
    }

    /// The plugin's manifest.
    pub fn describe(&self) -> Result<wit_types::Manifest, CallFailure> {
        self.run(None, |bound, store| match bound {
            Bound::Watcher(w) => w.call_describe(store).map(Ok),
            Bound::Transform(t) => t.call_describe(store).map(Ok),
        })
    }

    /// What a transform makes of `event` (more than [`MAX_TRANSFORM_OUTPUTS`] events fail).
    pub fn transform(
        &self,
        event: &wit_types::Event,
    ) -> Result<Vec<wit_types::Event>, CallFailure> {
        self.call(None, |bound, store| match bound {
            Bound::Transform(t) => t.call_handle(store, event).map(|returned| {
                returned.and_then(|events| match events.len() > MAX_TRANSFORM_OUTPUTS {
                    true => Err(format!(
                        "returned {} events; at most {MAX_TRANSFORM_OUTPUTS} are taken",
                        events.len()
                    )),
                    false => Ok(events),
                })
            }),
            Bound::Watcher(_) => Ok(Err("a watcher is not a transform".into())),
        })
    }

    /// Hands a stored event to a watcher, with access to `host`.
    pub fn watch(&self, event: &wit_types::Event, access: HostAccess) -> Result<(), CallFailure> {
        self.call(Some(access), |bound, store| match bound {
            Bound::Watcher(w) => w.call_on_event(store, event),
            Bound::Transform(_) => Ok(Err("a transform is not a watcher".into())),
        })
    }
}

/// Epoch ticks covering `budget` (at least one: a deadline of 0 traps at once).
fn ticks(budget: Duration) -> u64 {
    (budget.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64
}

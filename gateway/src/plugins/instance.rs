//! A loaded plugin: its pre-instantiated component and a few warm instances, each call bounded
//! by the plugin's memory cap and CPU budget.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use thiserror::Error;
use wasmtime::component::Component;
use wasmtime::{Store, UpdateDeadline};

use super::bindings::transform::{Transform, TransformPre};
use super::bindings::watcher::{Watcher, WatcherPre};
use super::bindings::wit_types;
use super::engine::{EPOCH_TICK, PluginEngine};
use super::error::PluginError;
use super::host::log_safe;
use super::limits::{
    DEFAULT_MEMORY_MIB, DEFAULT_WATCHER_CPU_MS, DEFAULT_WATCHER_DEADLINE_MS, MAX_ERROR_BYTES,
    MAX_TRANSFORM_OUTPUTS,
};
use super::model::World;
use super::sandbox::{HostAccess, Sandbox};
use super::stats::{
    CallStats, METRIC_CALL_SECONDS, METRIC_CALLS, METRIC_FAILURES, METRIC_MEMORY_PEAK,
};
use crate::sync::lock;

/// Warm instances kept per plugin (more run at once are made fresh and dropped after). A
/// transform is called from as many request threads as are busy at once: with 4, a loaded
/// gateway instantiated often enough to lose a tenth of its throughput. A watcher uses one.
/// They count against the engine's pooled instance slots.
const WARM_INSTANCES: usize = 16;
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
                "the component's exports do not match the {world:?} world of epr:plugin@0.2.0: {e:#}"
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
        if let Some(warm) = lock(&self.warm).pop() {
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
    /// trapped; records the time and memory taken (not counted as a call: `describe` uses it).
    fn call_uncounted<R>(
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
                let mut warm_ones = lock(&self.warm);
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

    /// [`Self::call_uncounted`], counted in the metrics and the plugin's stats.
    fn call_counted<R>(
        &self,
        access: Option<HostAccess>,
        call: impl FnOnce(&Bound, &mut Store<Sandbox>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallFailure> {
        let outcome = self.call_uncounted(access, call);
        let plugin = self.name.to_string();
        metrics::counter!(METRIC_CALLS, "plugin" => plugin.clone()).increment(1);
        if outcome.is_err() {
            metrics::counter!(METRIC_FAILURES, "plugin" => plugin).increment(1);
        }
        self.stats
            .count(outcome.as_ref().err().map(|e| e.to_string()));
        outcome
    }

    /// The plugin's manifest.
    pub fn describe(&self) -> Result<wit_types::Manifest, CallFailure> {
        self.call_uncounted(None, |bound, store| match bound {
            Bound::Watcher(w) => w.call_describe(store).map(Ok),
            Bound::Transform(t) => t.call_describe(store).map(Ok),
        })
    }

    /// What a transform makes of `event` (more than [`MAX_TRANSFORM_OUTPUTS`] events fail).
    pub fn transform(
        &self,
        event: &wit_types::Event,
    ) -> Result<Vec<wit_types::Event>, CallFailure> {
        self.call_counted(None, |bound, store| match bound {
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
        self.call_counted(Some(access), |bound, store| match bound {
            Bound::Watcher(w) => w.call_on_event(store, event),
            Bound::Transform(_) => Ok(Err("a transform is not a watcher".into())),
        })
    }
}

/// Epoch ticks covering `budget` (at least one: a deadline of 0 traps at once).
fn ticks(budget: Duration) -> u64 {
    (budget.as_nanos() / EPOCH_TICK.as_nanos()).max(1) as u64
}

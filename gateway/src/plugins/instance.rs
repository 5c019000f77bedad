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
use super::engine::{PluginEngine, EPOCH_TICK};
use super::sandbox::{HostAccess, Sandbox};
use super::{PluginError, METRIC_CALLS, METRIC_CALL_SECONDS, METRIC_FAILURES, METRIC_MEMORY_PEAK};

/// Warm instances kept per plugin (more run at once are made fresh and dropped after).
const WARM_INSTANCES: usize = 4;

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
    warm: Mutex<Vec<Warm>>,
}

impl Loaded {
    /// Links `component` for `world`: fails, saying why, when it imports what the host does
    /// not offer or does not export what the world requires.
    pub fn link(
        engine: &Arc<PluginEngine>,
        name: &str,
        world: World,
        component: &Component,
        memory: usize,
        budget: Duration,
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
            name: name.into(),
            world,
            engine: engine.clone(),
            pre,
            memory,
            budget,
            warm: Mutex::new(Vec::new()),
        })
    }

    /// A warm instance, or a new one.
    fn instance(&self) -> Result<Warm, CallFailure> {
        if let Some(warm) = self.warm.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(warm);
        }
        let sandbox = Sandbox::new(self.name.clone(), self.memory, self.budget);
        let mut store = Store::new(&self.engine.engine, sandbox);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_callback(|ctx| {
            let clock = &ctx.data().clock;
            let used = clock.used();
            if used >= clock.budget {
                return Err(wasmtime::format_err!(
                    "CPU time limit of {} ms exceeded",
                    clock.budget.as_millis()
                ));
            }
            Ok(UpdateDeadline::Continue(ticks(clock.budget - used)))
        });
        store.data_mut().clock.restart();
        store.set_epoch_deadline(ticks(self.budget));
        let bound = match &self.pre {
            Pre::Watcher(pre) => pre.instantiate(&mut store).map(Bound::Watcher),
            Pre::Transform(pre) => pre.instantiate(&mut store).map(Bound::Transform),
        }
        .map_err(|e| CallFailure::Trapped(format!("cannot instantiate: {e:#}")))?;
        Ok(Warm { store, bound })
    }

    /// Runs `call` on an instance with a fresh budget, records the metrics, and keeps the
    /// instance warm unless it trapped.
    fn call<R>(
        &self,
        access: Option<HostAccess>,
        call: impl FnOnce(&Bound, &mut Store<Sandbox>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R, CallFailure> {
        let plugin = self.name.to_string();
        metrics::counter!(METRIC_CALLS, "plugin" => plugin.clone()).increment(1);
        let outcome = self.instance().and_then(|mut warm| {
            warm.store.data_mut().host = access;
            warm.store.data_mut().clock.restart();
            warm.store.set_epoch_deadline(ticks(self.budget));
            let result = call(&warm.bound, &mut warm.store);
            let data = warm.store.data_mut();
            data.host = None;
            metrics::histogram!(METRIC_CALL_SECONDS, "plugin" => plugin.clone())
                .record(data.clock.used().as_secs_f64());
            metrics::gauge!(METRIC_MEMORY_PEAK, "plugin" => plugin.clone())
                .set(data.limiter.peak as f64);
            match result {
                Ok(returned) => {
                    let mut warm_ones = self.warm.lock().unwrap_or_else(|e| e.into_inner());
                    if warm_ones.len() < WARM_INSTANCES {
                        warm_ones.push(warm);
                    }
                    returned.map_err(CallFailure::Returned)
                }
                Err(trap) => Err(CallFailure::Trapped(format!("{trap:#}"))),
            }
        });
        if outcome.is_err() {
            metrics::counter!(METRIC_FAILURES, "plugin" => plugin).increment(1);
        }
        outcome
    }

    /// The plugin's manifest.
    pub fn describe(&self) -> Result<wit_types::Manifest, CallFailure> {
        self.call(None, |bound, store| match bound {
            Bound::Watcher(w) => w.call_describe(store).map(Ok),
            Bound::Transform(t) => t.call_describe(store).map(Ok),
        })
    }

    /// What a transform makes of `event`.
    pub fn transform(
        &self,
        event: &wit_types::Event,
    ) -> Result<Vec<wit_types::Event>, CallFailure> {
        self.call(None, |bound, store| match bound {
            Bound::Transform(t) => t.call_handle(store, event),
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

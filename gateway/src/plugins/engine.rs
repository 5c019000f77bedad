//! The wasmtime engine every plugin runs in, its linkers, and the clock that bounds calls.
//!
//! A precompiled plugin only loads into an engine built with the same settings, so they are
//! made in one place ([`engine_config`]); an artifact that no longer loads is compiled again
//! from the stored component.

use std::sync::{Arc, Weak};
use std::thread;
use std::time::Duration;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::bindings::{transform::Transform, watcher::Watcher};
use super::clocks;
use super::error::PluginError;
use super::limits::MAX_MEMORY_MIB;
use super::sandbox::Sandbox;

/// How often the epoch advances: CPU limits are enforced to about this precision.
pub const EPOCH_TICK: Duration = Duration::from_millis(1);
/// Plugin instances alive at once (warm ones included), across all plugins.
const INSTANCE_SLOTS: u32 = 256;

/// The engine settings with instances allocated by `strategy`; artifacts compiled under other
/// settings do not load (the allocation strategy is not one of them).
fn engine_config(strategy: InstanceAllocationStrategy) -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .concurrency_support(false)
        .allocation_strategy(strategy);
    config
}

/// Instances from a pool of [`INSTANCE_SLOTS`] reserved at start (about 2 TB of address space,
/// which is only reserved, not used): instantiation then costs no system call.
fn pooled() -> InstanceAllocationStrategy {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(INSTANCE_SLOTS)
        .total_core_instances(INSTANCE_SLOTS * 8)
        .total_memories(INSTANCE_SLOTS * 2)
        .total_tables(INSTANCE_SLOTS * 4)
        .max_memory_size(MAX_MEMORY_MIB as usize * 1024 * 1024);
    InstanceAllocationStrategy::Pooling(pool)
}

/// The engine: pooled instances, or, where the pool's address space cannot be reserved (a
/// `ulimit -v`, strict overcommit, valgrind), instances allocated one by one (each plugin's
/// memory stays bounded by its store's limiter either way).
fn new_engine() -> Result<Engine, PluginError> {
    match Engine::new(&engine_config(pooled())) {
        Ok(engine) => Ok(engine),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "cannot reserve the plugin instance pool's address space; plugin instances are allocated one by one instead (each instantiation costs a few system calls more)");
            Engine::new(&engine_config(InstanceAllocationStrategy::OnDemand)).map_err(internal)
        }
    }
}

/// The engine, with one linker per world.
pub struct PluginEngine {
    /// The wasmtime engine.
    pub engine: Engine,
    /// What a watcher may import: WASI (granting nothing, waiting for nothing), `logging`,
    /// `host`.
    pub watcher_linker: Linker<Sandbox>,
    /// What a transform may import: WASI (granting nothing), `logging`.
    pub transform_linker: Linker<Sandbox>,
}

impl PluginEngine {
    /// A new engine, its linkers, and the thread that advances its epoch.
    pub fn new() -> Result<Arc<Self>, PluginError> {
        let engine = new_engine()?;
        let mut watcher_linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut watcher_linker).map_err(internal)?;
        clocks::never_wait(&mut watcher_linker).map_err(internal)?;
        let mut transform_linker = watcher_linker.clone();
        Watcher::add_to_linker::<_, HasSelf<_>>(&mut watcher_linker, |s| s).map_err(internal)?;
        Transform::add_to_linker::<_, HasSelf<_>>(&mut transform_linker, |s| s)
            .map_err(internal)?;
        let shared = Arc::new(PluginEngine {
            engine,
            watcher_linker,
            transform_linker,
        });
        tick_epochs(Arc::downgrade(&shared));
        Ok(shared)
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] while the engine lives.
fn tick_epochs(engine: Weak<PluginEngine>) {
    thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = engine.upgrade() {
                engine.engine.increment_epoch();
                drop(engine);
                thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch thread");
}

fn internal(e: wasmtime::Error) -> PluginError {
    PluginError::Internal(format!("plugin engine: {e:#}"))
}

//! What a plugin instance's store holds: an empty WASI context (no files, env, args or
//! sockets), its memory limiter, the clock of the current call, and, for a watcher, access to
//! the `host` interface within its permissions (see [`super::host`]).

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::wit_types;
use super::grants::Grants;
use super::model::capability_name;
use crate::registry::Registry;

/// What the `host` interface reaches, shared by every watcher.
pub struct Services {
    /// Where emitted events go and plugin state lives.
    pub registry: Arc<Registry>,
    /// The client of `host.http-request` (no redirects: each hop would need its own check).
    pub http: reqwest::Client,
    /// The runtime host calls wait on (watchers run on blocking threads).
    pub runtime: tokio::runtime::Handle,
    /// Keys and bytes each plugin keeps in its key-value store (filled on first use).
    pub kv_usage: Mutex<std::collections::HashMap<String, (usize, usize)>>,
}

/// What one installed watcher may use of the `host` interface: the operator's grants and the
/// capabilities they give it.
#[derive(Debug)]
pub struct Permissions {
    /// The operator's grants.
    pub grants: Grants,
    /// The capabilities it has: asked for by its manifest and given by the grants.
    pub capabilities: Vec<wit_types::Capability>,
}

impl Permissions {
    /// What `grants` give a plugin whose manifest asks for `asked`.
    pub fn new(grants: Grants, asked: &[wit_types::Capability]) -> Self {
        let capabilities = asked
            .iter()
            .copied()
            .filter(|c| grants.gives(capability_name(*c)))
            .collect();
        Permissions {
            grants,
            capabilities,
        }
    }

    /// The WIT names of the capabilities it has.
    pub fn names(&self) -> Vec<&'static str> {
        self.capabilities
            .iter()
            .map(|c| capability_name(*c))
            .collect()
    }
}

/// A watcher's access to the `host` interface during one call.
pub struct HostAccess {
    /// The shared services.
    pub services: Arc<Services>,
    /// What the watcher may use.
    pub permissions: Arc<Permissions>,
    /// The event being handled: what emitted events are caused by.
    pub cause: String,
    /// Events emitted in this call so far.
    pub emitted: u32,
}

/// Memory cap of an instance, and the most it used.
pub struct MemoryLimiter {
    /// Cap in bytes.
    pub max: usize,
    /// Largest memory size reached, in bytes.
    pub peak: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max {
            return Err(wasmtime::format_err!(
                "memory limit of {} MiB exceeded (the plugin asked for {} MiB)",
                self.max >> 20,
                desired >> 20
            ));
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The clocks of the current call, host calls excluded. A watcher's budget is the CPU time of
/// the thread running it: on the watchers' low-priority threads, a plugin waiting for a core is
/// not charged for the wait. A transform's is wall time: it runs at the request path's priority,
/// and reading a thread's CPU time is a system call (about 1 us here) on every call.
pub struct CallClock {
    /// Whether the budget is CPU time (else wall time).
    cpu: bool,
    /// The thread's CPU time when the call started (when `cpu`).
    started_cpu: Duration,
    /// When the call started.
    started: Instant,
    /// Wall time spent in host calls.
    pub(super) in_host: Duration,
    /// The budget.
    pub budget: Duration,
    /// The wall-clock deadline of a call, host calls included.
    pub deadline: Duration,
}

impl CallClock {
    /// A clock with `budget` per call, of CPU time when `cpu`, else of wall time, and a
    /// wall-clock `deadline` covering everything the call does.
    fn new(budget: Duration, cpu: bool, deadline: Duration) -> Self {
        CallClock {
            cpu,
            started_cpu: if cpu { thread_cpu() } else { Duration::ZERO },
            started: Instant::now(),
            in_host: Duration::ZERO,
            budget,
            deadline,
        }
    }

    /// Wall time left before the call's deadline (host calls included).
    pub fn left(&self) -> Duration {
        self.deadline.saturating_sub(self.started.elapsed())
    }

    /// What the plugin itself has used of its budget in this call (host calls excluded, at
    /// their wall time, which is never less than their CPU time).
    pub fn used(&self) -> Duration {
        match self.cpu {
            true => thread_cpu()
                .saturating_sub(self.started_cpu)
                .saturating_sub(self.in_host),
            false => self.duration(),
        }
    }

    /// Wall time of this call so far, host calls excluded.
    pub fn duration(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.in_host)
    }

    /// Starts a new call.
    pub fn restart(&mut self) {
        if self.cpu {
            self.started_cpu = thread_cpu();
        }
        self.started = Instant::now();
        self.in_host = Duration::ZERO;
    }
}

/// CPU time used by the calling thread (a call runs on one thread from start to end).
fn thread_cpu() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime only writes the timespec it is given.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) } == 0;
    match read {
        true => Duration::new(now.tv_sec as u64, now.tv_nsec as u32),
        // not seen on Linux: wall time then, so that the budget still runs out
        false => {
            static ORIGIN: OnceLock<Instant> = OnceLock::new();
            ORIGIN.get_or_init(Instant::now).elapsed()
        }
    }
}

/// The data of a plugin instance's store.
pub struct Sandbox {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The plugin's name, for its log lines.
    pub plugin: Arc<str>,
    /// Memory cap and peak.
    pub limiter: MemoryLimiter,
    /// The current call's budget.
    pub clock: CallClock,
    /// Access to `host` (watchers only).
    pub host: Option<HostAccess>,
    /// Log lines written in the current second, and when that second began.
    pub(super) log_window: (Instant, u32),
    /// Log lines dropped over the rate limit, not yet reported.
    pub(super) logs_dropped: u64,
}

impl Sandbox {
    /// A sandbox for `plugin` with `max_memory` bytes and `budget` per call, of CPU time when
    /// `cpu_budget` (watchers), else of wall time (see [`CallClock`]), within `deadline`.
    pub fn new(
        plugin: Arc<str>,
        max_memory: usize,
        budget: Duration,
        cpu_budget: bool,
        deadline: Duration,
    ) -> Self {
        Sandbox {
            // no preopened directories, env, args, network; stdio goes nowhere
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            plugin,
            limiter: MemoryLimiter {
                max: max_memory,
                peak: 0,
            },
            clock: CallClock::new(budget, cpu_budget, deadline),
            host: None,
            log_window: (Instant::now(), 0),
            logs_dropped: 0,
        }
    }
}

impl WasiView for Sandbox {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

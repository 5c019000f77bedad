//! What a plugin instance's store holds: an empty WASI context (no files, env, args or
//! sockets), its memory limiter, the clock of the current call, and, for a watcher, access to
//! the `host` interface within its grants.

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::value::RawValue;
use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::{wit_host, wit_logging, wit_types};
use super::catalog;
use super::grants::Grants;
use crate::registry::input::NewEvent;
use crate::registry::Registry;

/// Longest key of the plugin key-value store, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest value of the plugin key-value store, in bytes.
pub const MAX_KV_VALUE: usize = 64 * 1024;
/// Largest HTTP response body a plugin gets, in bytes.
pub const MAX_HTTP_BODY: usize = 1024 * 1024;
/// Time limit of one HTTP request made by a plugin.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest log line kept from a plugin, in bytes.
const MAX_LOG_LINE: usize = 4096;

/// What the `host` interface reaches, shared by every watcher.
pub struct Services {
    /// Where emitted events go and plugin state lives.
    pub registry: Arc<Registry>,
    /// The client of `host.http-request` (no redirects: each hop would need its own check).
    pub http: reqwest::Client,
    /// The runtime host calls wait on (watchers run on blocking threads).
    pub runtime: tokio::runtime::Handle,
}

/// What one installed watcher may use of the `host` interface.
#[derive(Debug)]
pub struct Granted {
    /// The operator's grants.
    pub grants: Grants,
    /// The capabilities the plugin's manifest asks for.
    pub capabilities: Vec<wit_types::Capability>,
}

/// A watcher's access to the `host` interface during one call.
pub struct HostAccess {
    /// The shared services.
    pub services: Arc<Services>,
    /// What the watcher may use.
    pub granted: Arc<Granted>,
    /// The event being handled: what emitted events are caused by.
    pub cause: String,
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
    in_host: Duration,
    /// The budget.
    pub budget: Duration,
}

impl CallClock {
    /// A clock with `budget` per call, of CPU time when `cpu`, else of wall time.
    fn new(budget: Duration, cpu: bool) -> Self {
        CallClock {
            cpu,
            started_cpu: if cpu { thread_cpu() } else { Duration::ZERO },
            started: Instant::now(),
            in_host: Duration::ZERO,
            budget,
        }
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
}

impl Sandbox {
    /// A sandbox for `plugin` with `max_memory` bytes and `budget` per call, of CPU time when
    /// `cpu_budget` (watchers), else of wall time (see [`CallClock`]).
    pub fn new(plugin: Arc<str>, max_memory: usize, budget: Duration, cpu_budget: bool) -> Self {
        Sandbox {
            // no preopened directories, env, args, network; stdio goes nowhere
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
            plugin,
            limiter: MemoryLimiter {
                max: max_memory,
                peak: 0,
            },
            clock: CallClock::new(budget, cpu_budget),
            host: None,
        }
    }

    /// The host access, if the manifest asked for `capability`.
    fn granted(&self, capability: wit_types::Capability) -> Result<&HostAccess, String> {
        let access = self
            .host
            .as_ref()
            .ok_or("the host interface is not available here")?;
        if access.granted.capabilities.contains(&capability) {
            Ok(access)
        } else {
            Err(format!(
                "capability {} is not in the plugin's manifest",
                capability_name(capability)
            ))
        }
    }

    /// Waits for `work` on the runtime, counting the time as spent in the host.
    fn wait<T>(&mut self, work: impl Future<Output = T>) -> Result<T, String> {
        let runtime = self
            .host
            .as_ref()
            .ok_or("the host interface is not available here")?
            .services
            .runtime
            .clone();
        let started = Instant::now();
        let out = runtime.block_on(work);
        self.clock.in_host += started.elapsed();
        Ok(out)
    }

    /// The settings key of this plugin's `key`.
    fn kv_key(&self, key: &str) -> String {
        kv_key(&self.plugin, key)
    }
}

/// The settings key under which `plugin` keeps `key`.
pub fn kv_key(plugin: &str, key: &str) -> String {
    format!("{}{key}", kv_prefix(plugin))
}

/// The settings prefix of every key `plugin` keeps.
pub fn kv_prefix(plugin: &str) -> String {
    format!("plugin-kv/{plugin}/")
}

/// The WIT name of a capability.
pub fn capability_name(capability: wit_types::Capability) -> &'static str {
    match capability {
        wit_types::Capability::EmitEvent => "emit-event",
        wit_types::Capability::Http => "http",
        wit_types::Capability::KeyValue => "key-value",
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

impl wit_types::Host for Sandbox {}

impl wit_logging::Host for Sandbox {
    fn log(&mut self, level: wit_logging::Level, mut message: String) {
        if message.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
        }
        let plugin = &*self.plugin;
        match level {
            wit_logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            wit_logging::Level::Info => tracing::info!(plugin, "{message}"),
            wit_logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            wit_logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

impl wit_host::Host for Sandbox {
    fn emit_event(&mut self, event: wit_host::NewEvent) -> Result<String, String> {
        let access = self.granted(wit_types::Capability::EmitEvent)?;
        let registry = access.services.registry.clone();
        let cause = access.cause.clone();
        let payload = RawValue::from_string(event.payload)
            .map_err(|e| format!("the payload is not JSON: {e}"))?;
        let input = NewEvent {
            name: Some(event.nvrpp.name),
            version: Some(event.nvrpp.version),
            release: Some(event.nvrpp.release),
            platform_id: Some(event.nvrpp.platform_id),
            package: Some(event.nvrpp.package),
            description: Some(event.description),
            payload: Some(payload),
            success: Some(event.success),
            event_receiver_id: Some(event.receiver_id),
        };
        self.wait(async move { registry.emit_event(input, &cause).await })?
            .map_err(|e| e.to_string())
    }

    fn http_request(&mut self, request: wit_host::Request) -> Result<wit_host::Response, String> {
        let access = self.granted(wit_types::Capability::Http)?;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| format!("bad URL {:?}: {e}", request.url))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("URL scheme {} is not http or https", url.scheme()));
        }
        let host = url.host_str().ok_or("the URL has no host")?;
        if !access
            .granted
            .grants
            .allows_host(host, url.port_or_known_default())
        {
            return Err(format!(
                "host {host} is not allowed for this plugin (grants: allowed_hosts)"
            ));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| format!("bad HTTP method {:?}", request.method))?;
        let mut builder = access
            .services
            .http
            .request(method, url)
            .timeout(HTTP_TIMEOUT)
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        self.wait(async move {
            let mut response = builder.send().await.map_err(|e| format!("{e}"))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| format!("{e}"))? {
                if body.len() + chunk.len() > MAX_HTTP_BODY {
                    return Err(format!(
                        "the response body is larger than {MAX_HTTP_BODY} bytes"
                    ));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(wit_host::Response {
                status,
                headers,
                body,
            })
        })?
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.host.as_ref()?.granted.grants.config.get(&key).cloned()
    }

    fn kv_get(&mut self, key: String) -> Option<Vec<u8>> {
        let access = self.granted(wit_types::Capability::KeyValue).ok()?;
        let found = access
            .services
            .registry
            .store()
            .settings(&self.kv_key(&key));
        let stored = found
            .ok()?
            .into_iter()
            .find(|(k, _)| *k == self.kv_key(&key))?;
        let text = stored.1.as_str()?.to_owned();
        base64::engine::general_purpose::STANDARD.decode(text).ok()
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.granted(wit_types::Capability::KeyValue)?;
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Err(format!("keys must be 1 to {MAX_KV_KEY} bytes"));
        }
        if value.len() > MAX_KV_VALUE {
            return Err(format!("values must be at most {MAX_KV_VALUE} bytes"));
        }
        let text = base64::engine::general_purpose::STANDARD.encode(value);
        self.put_kv(key, Some(serde_json::Value::String(text)))
    }

    fn kv_delete(&mut self, key: String) {
        if self.granted(wit_types::Capability::KeyValue).is_ok() {
            let _ = self.put_kv(key, None);
        }
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl Sandbox {
    /// Stores (or removes) this plugin's `key`, durably.
    fn put_kv(&mut self, key: String, value: Option<serde_json::Value>) -> Result<(), String> {
        let access = self.granted(wit_types::Capability::KeyValue)?;
        let store = access.services.registry.store().clone();
        let key = self.kv_key(&key);
        self.wait(async move {
            catalog::write(&store, move |txn| txn.put_setting(&key, value.as_ref())).await
        })?
        .map_err(|e| e.to_string())
    }
}

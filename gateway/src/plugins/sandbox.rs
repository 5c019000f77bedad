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
/// Log lines a plugin instance may write per second (beyond: dropped, and counted).
const LOG_LINES_PER_SECOND: u32 = 100;
/// Most keys a plugin may keep in its key-value store.
pub const MAX_KV_KEYS: usize = 10_000;
/// Most bytes (keys and values) a plugin may keep in its key-value store.
pub const MAX_KV_BYTES: usize = 16 * 1024 * 1024;
/// Request headers a plugin may not set: the host sets them from the URL and the body.
const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

/// What the `host` interface reaches, shared by every watcher.
pub struct Services {
    /// Where emitted events go and plugin state lives.
    pub registry: Arc<Registry>,
    /// The client of `host.http-request` (no redirects: each hop would need its own check).
    pub http: reqwest::Client,
    /// The runtime host calls wait on (watchers run on blocking threads).
    pub runtime: tokio::runtime::Handle,
    /// Keys and bytes each plugin keeps in its key-value store (filled on first use).
    pub kv_usage: std::sync::Mutex<std::collections::HashMap<String, (usize, usize)>>,
}

/// What one installed watcher may use of the `host` interface.
#[derive(Debug)]
pub struct Granted {
    /// The operator's grants.
    pub grants: Grants,
    /// The capabilities it has: asked for by its manifest and given by the grants.
    pub capabilities: Vec<wit_types::Capability>,
}

impl Granted {
    /// What `grants` give a plugin whose manifest asks for `asked`.
    pub fn new(grants: Grants, asked: &[wit_types::Capability]) -> Self {
        let capabilities = asked
            .iter()
            .copied()
            .filter(|c| grants.gives(capability_name(*c)))
            .collect();
        Granted {
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
    pub granted: Arc<Granted>,
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
    in_host: Duration,
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
    log_window: (Instant, u32),
    /// Log lines dropped over the rate limit, not yet reported.
    logs_dropped: u64,
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
                "capability {} is not granted (the manifest must ask for it and the operator's grants name it)",
                capability_name(capability)
            ))
        }
    }

    /// Waits for `work` on the runtime, at most until the call's deadline, counting the time
    /// as spent in the host.
    fn wait<T>(&mut self, work: impl Future<Output = T>) -> Result<T, String> {
        let runtime = self
            .host
            .as_ref()
            .ok_or("the host interface is not available here")?
            .services
            .runtime
            .clone();
        let started = Instant::now();
        let left = self.clock.left();
        let out = runtime.block_on(async move { tokio::time::timeout(left, work).await });
        self.clock.in_host += started.elapsed();
        out.map_err(|_| {
            format!(
                "the call's wall-clock deadline of {} ms passed in a host call",
                self.clock.deadline.as_millis()
            )
        })
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
    fn log(&mut self, level: wit_logging::Level, message: String) {
        let now = Instant::now();
        if now.duration_since(self.log_window.0) >= Duration::from_secs(1) {
            if self.logs_dropped > 0 {
                tracing::warn!(
                    plugin = &*self.plugin,
                    dropped = self.logs_dropped,
                    "plugin log lines dropped (more than {LOG_LINES_PER_SECOND} a second)"
                );
                self.logs_dropped = 0;
            }
            self.log_window = (now, 0);
        }
        if self.log_window.1 >= LOG_LINES_PER_SECOND {
            self.logs_dropped += 1;
            return;
        }
        self.log_window.1 += 1;
        let message = log_safe(&message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            wit_logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            wit_logging::Level::Info => tracing::info!(plugin, "{message}"),
            wit_logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            wit_logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// `text` cut to at most `max` bytes (at a character boundary) with control characters
/// escaped, so that a plugin's text cannot forge log lines (CR, LF) or terminal sequences.
pub fn log_safe(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut safe: String = text[..end]
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    if end < text.len() {
        safe.push_str("...");
    }
    safe
}

impl wit_host::Host for Sandbox {
    fn emit_event(&mut self, event: wit_host::NewEvent) -> Result<String, String> {
        let access = self.granted(wit_types::Capability::EmitEvent)?;
        let grants = &access.granted.grants;
        if !grants.may_emit_to(&event.receiver_id) {
            return Err(format!(
                "receiver {:?} is not one this plugin may emit to (grants: emit_receivers)",
                event.receiver_id
            ));
        }
        if access.emitted >= grants.emits_per_call() {
            return Err(format!(
                "at most {} events may be emitted per call (grants: max_emits_per_call)",
                grants.emits_per_call()
            ));
        }
        let registry = access.services.registry.clone();
        let cause = access.cause.clone();
        if let Some(access) = self.host.as_mut() {
            access.emitted += 1;
        }
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
        let default_port = if url.scheme() == "https" { 443 } else { 80 };
        let port = url.port_or_known_default().unwrap_or(default_port);
        if !access.granted.grants.allows_host(host, port, default_port) {
            return Err(format!(
                "host {host} port {port} is not allowed for this plugin (grants: allowed_hosts; a host granted without a port allows its scheme's default port only)"
            ));
        }
        if let Some(ip) = url_address(&url) {
            if !super::addresses::public(ip) && !access.granted.grants.names_address(ip) {
                return Err(format!(
                    "address {ip} is in a private, local or metadata range: grant it by address to reach it"
                ));
            }
        }
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(name, _)| RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        {
            return Err(format!(
                "the header {name} is set by the host, not the plugin"
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
            let mut response = builder
                .send()
                .await
                .map_err(|e| crate::error_chain::error_chain(&e))?;
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
        let stored = access
            .services
            .registry
            .store()
            .setting(&self.kv_key(&key))
            .ok()??;
        base64::engine::general_purpose::STANDARD
            .decode(stored.as_str()?)
            .ok()
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), String> {
        self.granted(wit_types::Capability::KeyValue)?;
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Err(format!("keys must be 1 to {MAX_KV_KEY} bytes"));
        }
        if value.len() > MAX_KV_VALUE {
            return Err(format!("values must be at most {MAX_KV_VALUE} bytes"));
        }
        let old = self.kv_get(key.clone()).map(|v| key.len() + v.len());
        let new = key.len() + value.len();
        self.kv_usage_change(old, Some(new))?;
        let text = base64::engine::general_purpose::STANDARD.encode(value);
        let stored = self.put_kv(key, Some(serde_json::Value::String(text)));
        if stored.is_err() {
            let _ = self.kv_usage_change(Some(new), old);
        }
        stored
    }

    fn kv_delete(&mut self, key: String) {
        if self.granted(wit_types::Capability::KeyValue).is_ok() {
            let old = self.kv_get(key.clone()).map(|v| key.len() + v.len());
            if old.is_some() && self.put_kv(key, None).is_ok() {
                let _ = self.kv_usage_change(old, None);
            }
        }
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl Sandbox {
    /// Accounts for one entry of the key-value store going from `old` to `new` bytes (`None`:
    /// absent); refused, changing nothing, when the plugin would exceed its caps.
    fn kv_usage_change(&mut self, old: Option<usize>, new: Option<usize>) -> Result<(), String> {
        let access = self.granted(wit_types::Capability::KeyValue)?;
        let services = access.services.clone();
        let mut usage = services.kv_usage.lock().unwrap_or_else(|e| e.into_inner());
        let plugin = self.plugin.to_string();
        let current = match usage.get(&plugin) {
            Some(current) => *current,
            None => {
                let entries = services
                    .registry
                    .store()
                    .settings(&kv_prefix(&plugin))
                    .map_err(|e| e.to_string())?;
                let bytes = entries
                    .iter()
                    .map(|(k, v)| {
                        k.len() - kv_prefix(&plugin).len()
                            + v.as_str().map_or(0, |t| t.len() * 3 / 4)
                    })
                    .sum();
                (entries.len(), bytes)
            }
        };
        let keys = current.0 + usize::from(new.is_some()) - usize::from(old.is_some());
        let bytes = (current.1 + new.unwrap_or(0)).saturating_sub(old.unwrap_or(0));
        if new.is_some() && (keys > MAX_KV_KEYS || bytes > MAX_KV_BYTES) {
            return Err(format!(
                "the key-value store is full: at most {MAX_KV_KEYS} keys and {MAX_KV_BYTES} bytes per plugin"
            ));
        }
        usage.insert(plugin, (keys, bytes));
        Ok(())
    }

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

/// The IP address a URL names literally, if it does.
fn url_address(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    url.host_str()?.trim_matches(['[', ']']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_cannot_forge_log_lines_and_is_cut() {
        assert_eq!(
            log_safe("a\r\nFORGED\x1b[31m", 100),
            "a\\r\\nFORGED\\u{1b}[31m"
        );
        assert_eq!(log_safe("ééé", 3), "é...");
        assert_eq!(log_safe("short", 100), "short");
    }
}

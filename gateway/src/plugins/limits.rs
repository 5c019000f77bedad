//! Every limit of the plugin host, in one place: what the operator may grant, the defaults,
//! and the caps of the `host` interface.

use std::time::Duration;

/// Default memory cap of one plugin instance, in MiB.
pub const DEFAULT_MEMORY_MIB: u32 = 64;
/// Largest memory cap the operator can grant, in MiB (the instance pool reserves this much
/// address space per slot).
pub const MAX_MEMORY_MIB: u32 = 1024;
/// Default CPU time of one watcher call, in ms (time spent waiting on the host is not counted).
pub const DEFAULT_WATCHER_CPU_MS: u64 = 1000;
/// Default CPU time of one transform call, in ms: transforms run in the request path.
pub const DEFAULT_TRANSFORM_CPU_MS: u64 = 50;
/// Default number of attempts at one event before it is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 5;
/// Default wall-clock deadline of one watcher call, in ms, host calls (HTTP) included.
pub const DEFAULT_WATCHER_DEADLINE_MS: u64 = 30_000;
/// Default wall-clock deadline of one transform call, in ms.
pub const DEFAULT_TRANSFORM_DEADLINE_MS: u64 = 1_000;
/// Longest wall-clock deadline the operator can grant, in ms.
pub const MAX_DEADLINE_MS: u64 = 300_000;
/// Default number of events a watcher may emit in one call.
pub const DEFAULT_MAX_EMITS: u32 = 10;
/// Most events a watcher may be granted to emit in one call.
pub const MAX_EMITS: u32 = 100;

/// Longest key of the plugin key-value store, in bytes.
pub const MAX_KV_KEY: usize = 256;
/// Largest value of the plugin key-value store, in bytes.
pub const MAX_KV_VALUE: usize = 64 * 1024;
/// Largest HTTP response body a plugin gets, in bytes.
pub const MAX_HTTP_BODY: usize = 1024 * 1024;
/// Time limit of one HTTP request made by a plugin.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest log line kept from a plugin, in bytes.
pub const MAX_LOG_LINE: usize = 4096;
/// Log lines a plugin instance may write per second (beyond: dropped, and counted).
pub const LOG_LINES_PER_SECOND: u32 = 100;
/// Most keys a plugin may keep in its key-value store.
pub const MAX_KV_KEYS: usize = 10_000;
/// Most bytes (keys and values) a plugin may keep in its key-value store.
pub const MAX_KV_BYTES: usize = 16 * 1024 * 1024;
/// Request headers a plugin may not set: the host sets them from the URL and the body.
pub const RESERVED_HEADERS: [&str; 7] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
];

/// Most events a transform can make of one.
pub const MAX_TRANSFORM_OUTPUTS: usize = 100;
/// Longest error a plugin can return, in bytes (longer ones are cut; control characters are
/// escaped): it reaches clients, the API and the log.
pub const MAX_ERROR_BYTES: usize = 1024;

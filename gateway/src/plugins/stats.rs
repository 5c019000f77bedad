//! What the gateway counts about plugin calls: the metric names, and each plugin's calls,
//! failures and last error as the API shows them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::sync::lock;

/// Metric: plugin calls, by plugin.
pub const METRIC_CALLS: &str = "epr_plugin_calls_total";
/// Metric: failed plugin calls (error, trap, limit), by plugin.
pub const METRIC_FAILURES: &str = "epr_plugin_failures_total";
/// Metric: seconds one plugin call took (time in the plugin, not in host calls), by plugin.
pub const METRIC_CALL_SECONDS: &str = "epr_plugin_call_duration_seconds";
/// Metric: largest memory of a plugin's instances, in bytes, by plugin.
pub const METRIC_MEMORY_PEAK: &str = "epr_plugin_memory_peak_bytes";
/// Metric: events a watcher dead-lettered, by plugin.
pub const METRIC_DEAD_LETTERS: &str = "epr_plugin_dead_letters_total";

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
        lock(&self.last_error).clone()
    }

    /// Counts one call, failed with `error` if it did.
    pub fn count(&self, error: Option<String>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if let Some(error) = error {
            self.failures.fetch_add(1, Ordering::Relaxed);
            *lock(&self.last_error) = Some(error);
        }
    }
}

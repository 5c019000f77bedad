//! The runtime watchers run on. Its threads run at a lower CPU priority than those serving
//! requests: under a load that takes every core, watchers fall behind (their cursors are
//! durable, they catch up when the load eases) instead of slowing ingestion down.

use tokio::runtime::{Builder, Handle, Runtime};

use super::error::PluginError;

/// Nice value of the watchers' threads (the request path runs at the process's, usually 0).
pub const NICE: i32 = 19;

/// A tokio runtime of lower-priority threads.
pub struct Background {
    handle: Handle,
    /// Taken when dropped.
    runtime: Option<Runtime>,
}

impl Background {
    /// Starts the runtime (one worker thread per core, and its blocking threads).
    pub fn start() -> Result<Self, PluginError> {
        let runtime = Builder::new_multi_thread()
            .thread_name("epr-watchers")
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .map_err(|e| PluginError::Internal(format!("watcher runtime: {e}")))?;
        Ok(Background {
            handle: runtime.handle().clone(),
            runtime: Some(runtime),
        })
    }

    /// A handle to spawn on and wait on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // dropping a runtime blocks, which is not allowed where the gateway drops this
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Lowers the calling thread's priority to [`NICE`] (Linux applies nice values per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority take no pointers; a failure only leaves the priority.
        let failed = unsafe {
            let thread = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, thread, NICE) != 0
        };
        if failed {
            tracing::debug!("cannot lower the priority of a watcher thread");
        }
    }
}

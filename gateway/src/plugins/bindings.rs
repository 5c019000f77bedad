//! Host bindings of the plugin contract (`wit/plugin.wit`): one module per world; the
//! transform world reuses the watcher world's `types` and `logging`, so one event type and one
//! logging implementation serve both.

/// The `watcher` world: `describe`, `on-event`; imports `logging` and `host`.
#[allow(missing_docs)] // generated; the WIT documents it
pub mod watcher {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "watcher",
    });
}

/// The `transform` world: `describe`, `handle`; imports `logging`.
#[allow(missing_docs)] // generated; the WIT documents it
pub mod transform {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "transform",
        with: {
            "epr:plugin/types": super::watcher::epr::plugin::types,
            "epr:plugin/logging": super::watcher::epr::plugin::logging,
        },
    });
}

pub use watcher::epr::plugin::host as wit_host;
pub use watcher::epr::plugin::logging as wit_logging;
pub use watcher::epr::plugin::types as wit_types;

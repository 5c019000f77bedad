//! Guest SDK for epr-gateway plugins.
//!
//! A watcher implements [`watcher::Guest`] and exports it with `watcher::export_watcher!`; a
//! transform implements [`transform::Guest`] and exports it with
//! `transform::export_transform!`. The types are those of `wit/plugin.wit`, whose doc comments
//! are the manual. Build with `cargo build --release --target wasm32-wasip2` (crate type
//! `cdylib`): the `.wasm` file is the component to upload.
//!
//! ```ignore
//! use epr_plugin_sdk::watcher::{Event, Guest, Manifest};
//!
//! struct Hello;
//!
//! impl Guest for Hello {
//!     fn describe() -> Manifest {
//!         epr_plugin_sdk::manifest("hello", "1.0.0", "logs every event", &[], vec![])
//!     }
//!     fn on_event(event: Event) -> Result<(), String> {
//!         epr_plugin_sdk::watcher::info(&format!("got {}", event.id));
//!         Ok(())
//!     }
//! }
//!
//! epr_plugin_sdk::watcher::export_watcher!(Hello);
//! ```

/// The `watcher` world: runs from the log, may use the `host` interface.
pub mod watcher {
    wit_bindgen::generate!({
        world: "watcher",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_watcher",
        default_bindings_module: "epr_plugin_sdk::watcher",
    });

    pub use epr::plugin::host;
    pub use epr::plugin::host::HostError;
    pub use epr::plugin::logging::{self, Level};
    pub use epr::plugin::types::{Capability, Cloudevent, Nvrpp, Subscription};

    /// Logs `message` at info level.
    pub fn info(message: &str) {
        logging::log(Level::Info, message);
    }
}

/// The WIT name of a capability.
pub fn capability_name(capability: watcher::Capability) -> &'static str {
    match capability {
        watcher::Capability::EmitEvent => "emit-event",
        watcher::Capability::Http => "http",
        watcher::Capability::KeyValue => "key-value",
    }
}

impl watcher::HostError {
    /// What went wrong, in words (its `Display` is the generated debug form).
    pub fn message(&self) -> String {
        match self {
            watcher::HostError::NotGranted(capability) => format!(
                "capability {} is not granted (the manifest must ask for it and the operator's grants name it)",
                capability_name(*capability)
            ),
            watcher::HostError::Forbidden(why)
            | watcher::HostError::Invalid(why)
            | watcher::HostError::Unavailable(why) => why.clone(),
        }
    }

    /// Whether the same call may succeed later (only `unavailable` may).
    pub fn is_transient(&self) -> bool {
        matches!(self, watcher::HostError::Unavailable(_))
    }
}

/// So that `?` on a host call works in a function returning `Result<_, String>` (as
/// `on-event` does): the error's message.
impl From<watcher::HostError> for String {
    fn from(error: watcher::HostError) -> String {
        error.message()
    }
}

/// A manifest subscribing to `types` (globs; empty: every event), asking for `capabilities`.
pub fn manifest(
    name: &str,
    version: &str,
    description: &str,
    types: &[&str],
    capabilities: Vec<watcher::Capability>,
) -> watcher::Manifest {
    watcher::Manifest {
        name: name.into(),
        version: version.into(),
        description: description.into(),
        subscription: watcher::Subscription {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            receivers: Vec::new(),
        },
        capabilities,
    }
}

/// The `transform` world: pure, in the request path.
pub mod transform {
    wit_bindgen::generate!({
        world: "transform",
        path: "../../wit",
        pub_export_macro: true,
        export_macro_name: "export_transform",
        default_bindings_module: "epr_plugin_sdk::transform",
        // the same types as the watcher world's, so that helpers serve both
        with: {
            "epr:plugin/types@0.2.0": crate::watcher::epr::plugin::types,
            "epr:plugin/logging@0.2.0": crate::watcher::epr::plugin::logging,
        },
    });

    pub use crate::watcher::{Cloudevent, Level, Nvrpp, Subscription, logging};
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (as the gateway
/// matches subscriptions).
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

//! Logs failed builds and counts them in the plugin's key-value store.

use epr_plugin_sdk::watcher::{Capability, Event, Guest, Manifest, host, info};

struct FailedBuilds;

impl Guest for FailedBuilds {
    fn describe() -> Manifest {
        epr_plugin_sdk::manifest(
            "failed-builds",
            "1.0.0",
            "counts failed builds",
            &["dev.cdevents.build.*"],
            vec![Capability::KeyValue],
        )
    }

    fn on_event(event: Event) -> Result<(), String> {
        if event.success {
            return Ok(());
        }
        // `?` turns a host error (here: `not-granted(key-value)` without the grant) into text
        let seen = match host::kv_get("count")? {
            Some(bytes) => u64::from_le_bytes(bytes.try_into().unwrap_or_default()),
            None => 0,
        };
        let count = seen + 1;
        host::kv_set("count", &count.to_le_bytes())?;
        info(&format!("{} failed ({count} so far)", event.nvrpp.name));
        Ok(())
    }
}

epr_plugin_sdk::watcher::export_watcher!(FailedBuilds);

//! Where the store keeps what belongs to a plugin: one definition of every key, so that
//! deleting a plugin removes all of it.

/// Settings prefix of every plugin record.
pub const RECORDS: &str = "plugin/";

/// Settings key of plugin `name`'s record.
pub fn record(name: &str) -> String {
    format!("{RECORDS}{name}")
}

/// Blob key of plugin `name`'s component as uploaded.
pub fn component(name: &str) -> String {
    format!("plugin-component/{name}")
}

/// Blob key of plugin `name`'s precompiled component.
pub fn artifact(name: &str) -> String {
    format!("plugin-artifact/{name}")
}

/// Settings key of watcher `name`'s cursor.
pub fn cursor(name: &str) -> String {
    format!("plugin-cursor/{name}")
}

/// The lease under which watcher `name` runs (on one gateway at a time).
pub fn watcher_lease(name: &str) -> String {
    format!("watcher/{name}")
}

/// Settings prefix of watcher `name`'s dead letters.
pub fn dead_letters(name: &str) -> String {
    format!("plugin-dead/{name}/")
}

/// Settings key of watcher `name`'s dead letter for log entry `seq` (keys sort in log order).
pub fn dead_letter(name: &str, seq: u64) -> String {
    format!("{}{seq:020}", dead_letters(name))
}

/// Settings prefix of every key plugin `name` keeps in its key-value store.
pub fn kv_prefix(name: &str) -> String {
    format!("plugin-kv/{name}/")
}

/// Settings key under which plugin `name` keeps `key`.
pub fn kv(name: &str, key: &str) -> String {
    format!("{}{key}", kv_prefix(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_letter_keys_sort_in_log_order() {
        assert!(dead_letter("p", 9) < dead_letter("p", 10));
    }
}

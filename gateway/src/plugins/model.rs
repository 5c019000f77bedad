//! The vocabulary of the plugin host: worlds, manifests, subscriptions and capabilities.

use serde::{Deserialize, Serialize};

use super::bindings::wit_types;

/// The world a plugin targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Runs in the request path.
    Transform,
    /// Runs from the log.
    Watcher,
}

/// What a plugin says about itself (its `describe`), as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Its name, `[a-z0-9-]+`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// One line about it.
    pub description: String,
    /// The events it asks for.
    pub subscription: Subscription,
    /// The capabilities it asks for (`emit-event`, `http`, `key-value`).
    pub capabilities: Vec<String>,
}

impl Manifest {
    /// The capabilities as the contract's enum.
    pub fn wit_capabilities(&self) -> Vec<wit_types::Capability> {
        [
            wit_types::Capability::EmitEvent,
            wit_types::Capability::Http,
            wit_types::Capability::KeyValue,
        ]
        .into_iter()
        .filter(|c| self.capabilities.iter().any(|n| n == capability_name(*c)))
        .collect()
    }
}

/// Which events a plugin gets: an event matches when its receiver type matches one of `types`
/// (globs, `*` matches any run of characters) or its receiver is one of `receivers` (both
/// empty: any receiver), and, for a transform given `paths`, it was posted to a path matching
/// one of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscription {
    /// Receiver type globs.
    #[serde(default)]
    pub types: Vec<String>,
    /// Receiver ids.
    #[serde(default)]
    pub receivers: Vec<String>,
    /// Globs of the paths events are posted to (`/api/v1/events`, `/api/v1/cloudevents`,
    /// `/webhook/<source id>`); empty: any. Transforms only (the log does not keep the path).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
}

impl Subscription {
    /// Whether an event of receiver `receiver_id`, of type `receiver_type`, posted to `path`,
    /// matches.
    pub fn matches(&self, receiver_id: &str, receiver_type: &str, path: &str) -> bool {
        let receiver = (self.types.is_empty() && self.receivers.is_empty())
            || self.receivers.iter().any(|r| r == receiver_id)
            || self.types.iter().any(|t| glob_matches(t, receiver_type));
        receiver && (self.paths.is_empty() || self.paths.iter().any(|p| glob_matches(p, path)))
    }
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters (even none).
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

/// The capabilities of the `host` interface, by their WIT names.
pub const CAPABILITIES: [&str; 3] = ["emit-event", "http", "key-value"];

/// The WIT name of a capability.
pub fn capability_name(capability: wit_types::Capability) -> &'static str {
    match capability {
        wit_types::Capability::EmitEvent => "emit-event",
        wit_types::Capability::Http => "http",
        wit_types::Capability::KeyValue => "key-value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_characters() {
        assert!(glob_matches(
            "dev.cdevents.artifact.*",
            "dev.cdevents.artifact.packaged.0.1.1"
        ));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("a*c*e", "abcde"));
        assert!(glob_matches("exact", "exact"));
        assert!(!glob_matches("exact", "exactly"));
        assert!(!glob_matches("dev.*.finished", "dev.build.started"));
        assert!(!glob_matches("a*aa", "aa"));
    }

    #[test]
    fn empty_subscription_matches_everything() {
        let all = Subscription::default();
        assert!(all.matches("r1", "any.type", ""));
        assert!(all.matches("r1", "any.type", "/webhook/github"));
        let some = Subscription {
            types: vec!["dev.build.*".into()],
            receivers: vec!["r2".into()],
            paths: Vec::new(),
        };
        assert!(some.matches("r1", "dev.build.finished", ""));
        assert!(some.matches("r2", "other", ""));
        assert!(!some.matches("r1", "other", ""));
        let webhooks = Subscription {
            paths: vec!["/webhook/git*".into()],
            ..some
        };
        assert!(webhooks.matches("r1", "dev.build.finished", "/webhook/github"));
        assert!(!webhooks.matches("r1", "dev.build.finished", "/api/v1/events"));
        assert!(!webhooks.matches("r1", "other", "/webhook/github"));
    }
}

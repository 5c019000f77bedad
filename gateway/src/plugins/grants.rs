//! What the operator grants a plugin when uploading it: hosts it may call, configuration,
//! limits, and which events it gets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::instance::World;
use super::PluginError;

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

/// The operator's grants, as sent with an upload (`X-Epr-Grants` header, JSON) or a `PATCH`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grants {
    /// Hosts `host.http-request` may reach: `example.com`, `example.com:8080`, or
    /// `*.example.com`. Empty: no HTTP at all.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Values `host.config-get` returns.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Memory cap of one instance, in MiB (default 64, at most 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u32>,
    /// CPU time of one call, in ms (default 1000 for watchers, 50 for transforms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Attempts at one event before a watcher dead-letters it (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// Which events the plugin gets, instead of what its manifest asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription: Option<Subscription>,
}

impl Grants {
    /// Parses grants from JSON text, saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, PluginError> {
        let grants: Grants =
            serde_json::from_str(text).map_err(|e| PluginError::Invalid(format!("grants: {e}")))?;
        grants.check()?;
        Ok(grants)
    }

    /// Checks the limits are in range.
    pub fn check(&self) -> Result<(), PluginError> {
        if let Some(mib) = self.memory_mib {
            if mib == 0 || mib > MAX_MEMORY_MIB {
                return Err(PluginError::Invalid(format!(
                    "grants: memory_mib must be between 1 and {MAX_MEMORY_MIB}, got {mib}"
                )));
            }
        }
        if self.cpu_ms == Some(0) {
            return Err(PluginError::Invalid(
                "grants: cpu_ms must be at least 1".into(),
            ));
        }
        if self.max_attempts == Some(0) {
            return Err(PluginError::Invalid(
                "grants: max_attempts must be at least 1".into(),
            ));
        }
        if let Some(bad) = self
            .allowed_hosts
            .iter()
            .find(|h| h.is_empty() || h.contains('/') || h.contains('@') || h[1..].contains('*'))
        {
            return Err(PluginError::Invalid(format!(
                "grants: allowed host {bad:?} must be a host name, host:port or *.domain"
            )));
        }
        Ok(())
    }

    /// Checks what only some worlds can use: `subscription.paths` is for transforms.
    pub fn check_for(&self, world: World) -> Result<(), PluginError> {
        let paths = self
            .subscription
            .as_ref()
            .is_some_and(|s| !s.paths.is_empty());
        if paths && world == World::Watcher {
            return Err(PluginError::Invalid(
                "grants: subscription.paths applies to transforms only (a watcher reads the log, which does not keep the path an event was posted to)".into(),
            ));
        }
        Ok(())
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.memory_mib.unwrap_or(DEFAULT_MEMORY_MIB) as usize * 1024 * 1024
    }

    /// CPU time of one call of a plugin of `world`.
    pub fn cpu_budget(&self, world: World) -> Duration {
        let default = match world {
            World::Watcher => DEFAULT_WATCHER_CPU_MS,
            World::Transform => DEFAULT_TRANSFORM_CPU_MS,
        };
        Duration::from_millis(self.cpu_ms.unwrap_or(default))
    }

    /// Attempts at one event before it is dead-lettered.
    pub fn attempts(&self) -> u32 {
        self.max_attempts.unwrap_or(DEFAULT_MAX_ATTEMPTS)
    }

    /// Whether `host` (and `port`, when the URL names one) may be reached.
    pub fn allows_host(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|allowed| {
            let allowed = allowed.to_ascii_lowercase();
            let (name, allowed_port) = match allowed.rsplit_once(':') {
                Some((name, p)) if p.parse::<u16>().is_ok() => (name.to_owned(), p.parse().ok()),
                _ => (allowed.clone(), None),
            };
            let port_ok = allowed_port.is_none() || allowed_port == port;
            let name_ok = match name.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == name,
            };
            port_ok && name_ok
        })
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

    #[test]
    fn hosts_match_by_name_port_and_domain() {
        let grants = Grants {
            allowed_hosts: vec![
                "hooks.example.com".into(),
                "127.0.0.1:8080".into(),
                "*.ci.io".into(),
            ],
            ..Grants::default()
        };
        assert!(grants.allows_host("HOOKS.example.com", Some(443)));
        assert!(grants.allows_host("127.0.0.1", Some(8080)));
        assert!(!grants.allows_host("127.0.0.1", Some(8081)));
        assert!(grants.allows_host("a.ci.io", None));
        assert!(!grants.allows_host("ci.io", None));
        assert!(!grants.allows_host("evil.com", None));
        assert!(!Grants::default().allows_host("hooks.example.com", None));
    }

    #[test]
    fn bad_grants_are_refused_with_the_reason() {
        let e = Grants::parse(r#"{"memory_mib": 4096}"#).unwrap_err();
        assert!(e.to_string().contains("memory_mib"), "{e}");
        let e = Grants::parse(r#"{"alowed_hosts": []}"#).unwrap_err();
        assert!(e.to_string().contains("alowed_hosts"), "{e}");
        let e = Grants::parse(r#"{"allowed_hosts": ["http://x.com/"]}"#).unwrap_err();
        assert!(e.to_string().contains("x.com"), "{e}");
    }
}

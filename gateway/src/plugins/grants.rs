//! What the operator grants a plugin when uploading it: hosts it may call, configuration,
//! limits, and which events it gets.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::error::PluginError;
use super::limits::{
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_EMITS, DEFAULT_MEMORY_MIB, DEFAULT_TRANSFORM_CPU_MS,
    DEFAULT_TRANSFORM_DEADLINE_MS, DEFAULT_WATCHER_CPU_MS, DEFAULT_WATCHER_DEADLINE_MS,
    MAX_DEADLINE_MS, MAX_EMITS, MAX_MEMORY_MIB,
};
use super::model::{CAPABILITIES, Subscription, World};

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
    /// Capabilities of the `host` interface granted (`emit-event`, `key-value`, `http`); a
    /// plugin gets those its manifest asks for and the grants name (`http` is also granted by
    /// a non-empty `allowed_hosts`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    /// Receivers (ids, or `*` for any) a watcher may emit events to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emit_receivers: Vec<String>,
    /// Events a watcher may emit in one call (default 10, at most 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_emits_per_call: Option<u32>,
    /// Wall-clock deadline of one call in ms, host calls included (default 30000 for watchers,
    /// 1000 for transforms; at most 300000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
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
        if let Some(mib) = self.memory_mib
            && (mib == 0 || mib > MAX_MEMORY_MIB)
        {
            return Err(PluginError::Invalid(format!(
                "grants: memory_mib must be between 1 and {MAX_MEMORY_MIB}, got {mib}"
            )));
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
        if let Some(bad) = self.allowed_hosts.iter().find(|h| !valid_host_grant(h)) {
            return Err(PluginError::Invalid(format!(
                "grants: allowed host {bad:?} must be an ASCII host name, IP address, host:port or *.domain"
            )));
        }
        if let Some(bad) = self
            .capabilities
            .iter()
            .find(|c| !CAPABILITIES.contains(&c.as_str()))
        {
            return Err(PluginError::Invalid(format!(
                "grants: unknown capability {bad:?}; the capabilities are {}",
                CAPABILITIES.join(", ")
            )));
        }
        if let Some(n) = self.max_emits_per_call.filter(|n| *n > MAX_EMITS) {
            return Err(PluginError::Invalid(format!(
                "grants: max_emits_per_call must be at most {MAX_EMITS}, got {n}"
            )));
        }
        if let Some(ms) = self
            .deadline_ms
            .filter(|ms| *ms == 0 || *ms > MAX_DEADLINE_MS)
        {
            return Err(PluginError::Invalid(format!(
                "grants: deadline_ms must be between 1 and {MAX_DEADLINE_MS}, got {ms}"
            )));
        }
        Ok(())
    }

    /// Whether the grants give `capability` (a WIT name) to a plugin whose manifest asks for it.
    pub fn gives(&self, capability: &str) -> bool {
        self.capabilities.iter().any(|c| c == capability)
            || (capability == "http" && !self.allowed_hosts.is_empty())
    }

    /// Whether a watcher may emit an event to receiver `receiver_id`.
    pub fn may_emit_to(&self, receiver_id: &str) -> bool {
        self.emit_receivers
            .iter()
            .any(|r| r == "*" || r == receiver_id)
    }

    /// Events a watcher may emit in one call.
    pub fn emits_per_call(&self) -> u32 {
        self.max_emits_per_call.unwrap_or(DEFAULT_MAX_EMITS)
    }

    /// Wall-clock deadline of one call of a plugin of `world`, host calls included.
    pub fn deadline(&self, world: World) -> Duration {
        let default = match world {
            World::Watcher => DEFAULT_WATCHER_DEADLINE_MS,
            World::Transform => DEFAULT_TRANSFORM_DEADLINE_MS,
        };
        Duration::from_millis(self.deadline_ms.unwrap_or(default))
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

    /// Whether `host` on `port` may be reached, `default_port` being the URL scheme's: a grant
    /// without a port allows the default port only.
    pub fn allows_host(&self, host: &str, port: u16, default_port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        let host = host.trim_matches(['[', ']']);
        self.allowed_hosts.iter().any(|allowed| {
            let (name, allowed_port) = split_port(allowed);
            let name = name.to_ascii_lowercase();
            let port_ok = port == allowed_port.unwrap_or(default_port);
            let name_ok = match name.strip_prefix("*.") {
                Some(domain) => host.ends_with(&format!(".{domain}")),
                None => host == name,
            };
            port_ok && name_ok
        })
    }

    /// Whether the grants name `ip` itself (an address in a private or local range is reached
    /// only when granted by address, never through a name).
    pub fn names_address(&self, ip: std::net::IpAddr) -> bool {
        self.allowed_hosts.iter().any(|allowed| {
            split_port(allowed)
                .0
                .parse::<std::net::IpAddr>()
                .is_ok_and(|granted| granted == ip)
        })
    }
}

/// `host:port`, `[v6]:port` or a bare host, as (host, port); the host without brackets.
fn split_port(grant: &str) -> (&str, Option<u16>) {
    if let Some(rest) = grant.strip_prefix('[') {
        let (host, after) = rest.split_once(']').unwrap_or((rest, ""));
        return (host, after.strip_prefix(':').and_then(|p| p.parse().ok()));
    }
    match grant.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => match port.parse() {
            Ok(port) => (name, Some(port)),
            Err(_) => (grant, None),
        },
        // a bare IPv6 address
        _ => (grant, None),
    }
}

/// Whether `grant` is an ASCII host name (or `*.domain`), an IP address, with an optional port.
fn valid_host_grant(grant: &str) -> bool {
    let (host, _) = split_port(grant);
    if host.parse::<std::net::IpAddr>().is_ok() {
        return true;
    }
    let name = host.strip_prefix("*.").unwrap_or(host);
    !name.is_empty()
        && name.is_ascii()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(grants.allows_host("HOOKS.example.com", 443, 443));
        assert!(grants.allows_host("127.0.0.1", 8080, 80));
        assert!(!grants.allows_host("127.0.0.1", 8081, 80));
        assert!(grants.allows_host("a.ci.io", 443, 443));
        assert!(
            !grants.allows_host("a.ci.io", 8443, 443),
            "no port granted: the default only"
        );
        assert!(!grants.allows_host("ci.io", 443, 443));
        assert!(!grants.allows_host("evil.com", 80, 80));
        assert!(!Grants::default().allows_host("hooks.example.com", 443, 443));
        assert!(grants.names_address("127.0.0.1".parse().unwrap()));
        assert!(!grants.names_address("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn non_ascii_and_malformed_host_grants_are_refused_not_panicked_on() {
        for bad in ["é", "*é.com", "a*.com", "x/y", "u@h", "", "*."] {
            let text = serde_json::json!({"allowed_hosts": [bad]}).to_string();
            assert!(Grants::parse(&text).is_err(), "{bad:?}");
        }
        for ok in [
            "[::1]:8080",
            "::1",
            "10.0.0.1:9000",
            "*.ci.io",
            "hooks.example.com:8443",
        ] {
            let text = serde_json::json!({"allowed_hosts": [ok]}).to_string();
            assert!(Grants::parse(&text).is_ok(), "{ok:?}");
        }
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

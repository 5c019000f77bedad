//! The `host`, `logging` and `types` interfaces of `wit/plugin.wit`, as the gateway implements
//! them for a plugin's store: every `host` call checks the capability it needs and waits for
//! its work within the call's deadline, counted as time in the host.

use std::future::Future;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::value::RawValue;

use super::addresses;
use super::bindings::wit_host::HostError;
use super::bindings::{wit_host, wit_logging, wit_types};
use super::catalog;
use super::keys;
use super::limits::{
    HTTP_TIMEOUT, LOG_LINES_PER_SECOND, MAX_HTTP_BODY, MAX_KV_BYTES, MAX_KV_KEY, MAX_KV_KEYS,
    MAX_KV_VALUE, MAX_LOG_LINE, RESERVED_HEADERS,
};
use super::sandbox::{HostAccess, Sandbox};
use crate::registry::error::RegistryError;
use crate::registry::input::NewEvent;
use crate::sync::lock;

impl Sandbox {
    /// The host access, if the plugin has `capability`.
    fn access_for(&self, capability: wit_types::Capability) -> Result<&HostAccess, HostError> {
        let access = self.host.as_ref().ok_or_else(no_host)?;
        if access.permissions.capabilities.contains(&capability) {
            Ok(access)
        } else {
            Err(HostError::NotGranted(capability))
        }
    }

    /// Runs `work` on the host's runtime and blocks the plugin's thread until it is done, at
    /// most until the call's deadline, counting the time as spent in the host.
    fn block_on_host<T>(&mut self, work: impl Future<Output = T>) -> Result<T, HostError> {
        let runtime = self
            .host
            .as_ref()
            .ok_or_else(no_host)?
            .services
            .runtime
            .clone();
        let started = Instant::now();
        let left = self.clock.left();
        let out = runtime.block_on(async move { tokio::time::timeout(left, work).await });
        self.clock.in_host += started.elapsed();
        out.map_err(|_| {
            HostError::Unavailable(format!(
                "the call's wall-clock deadline of {} ms passed in a host call",
                self.clock.deadline.as_millis()
            ))
        })
    }

    /// The settings key of this plugin's `key`; refuses a key no store can hold the same way
    /// (NUL characters: PostgreSQL's text cannot hold them).
    fn kv_key(&self, key: &str) -> Result<String, HostError> {
        if key.contains('\0') {
            return Err(HostError::Invalid(
                "keys cannot contain NUL characters".to_owned(),
            ));
        }
        Ok(keys::kv(&self.plugin, key))
    }
}

impl wit_types::Host for Sandbox {}

impl wit_logging::Host for Sandbox {
    fn log(&mut self, level: wit_logging::Level, message: String) {
        let now = Instant::now();
        if now.duration_since(self.log_window.0) >= Duration::from_secs(1) {
            if self.logs_dropped > 0 {
                tracing::warn!(
                    plugin = &*self.plugin,
                    dropped = self.logs_dropped,
                    "plugin log lines dropped (more than {LOG_LINES_PER_SECOND} a second)"
                );
                self.logs_dropped = 0;
            }
            self.log_window = (now, 0);
        }
        if self.log_window.1 >= LOG_LINES_PER_SECOND {
            self.logs_dropped += 1;
            return;
        }
        self.log_window.1 += 1;
        let message = log_safe(&message, MAX_LOG_LINE);
        let plugin = &*self.plugin;
        match level {
            wit_logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            wit_logging::Level::Info => tracing::info!(plugin, "{message}"),
            wit_logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            wit_logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
    }
}

/// `text` cut to at most `max` bytes (at a character boundary) with control characters
/// escaped, so that a plugin's text cannot forge log lines (CR, LF) or terminal sequences.
pub fn log_safe(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut safe: String = text[..end]
        .chars()
        .flat_map(|c| match c.is_control() {
            true => c.escape_default().collect::<Vec<_>>(),
            false => vec![c],
        })
        .collect();
    if end < text.len() {
        safe.push_str("...");
    }
    safe
}

impl wit_host::Host for Sandbox {
    fn emit_event(&mut self, event: wit_host::NewEvent) -> Result<String, HostError> {
        let access = self.access_for(wit_types::Capability::EmitEvent)?;
        let grants = &access.permissions.grants;
        if !grants.may_emit_to(&event.receiver_id) {
            return Err(HostError::Forbidden(format!(
                "receiver {:?} is not one this plugin may emit to (grants: emit_receivers)",
                event.receiver_id
            )));
        }
        if access.emitted >= grants.emits_per_call() {
            return Err(HostError::Invalid(format!(
                "at most {} events may be emitted per call (grants: max_emits_per_call)",
                grants.emits_per_call()
            )));
        }
        let registry = access.services.registry.clone();
        let cause = access.cause.clone();
        if let Some(access) = self.host.as_mut() {
            access.emitted += 1;
        }
        let payload = RawValue::from_string(event.payload)
            .map_err(|e| HostError::Invalid(format!("the payload is not JSON: {e}")))?;
        let input = NewEvent {
            name: Some(event.nvrpp.name),
            version: Some(event.nvrpp.version),
            release: Some(event.nvrpp.release),
            platform_id: Some(event.nvrpp.platform_id),
            package: Some(event.nvrpp.package),
            description: Some(event.description),
            payload: Some(payload),
            success: Some(event.success),
            event_receiver_id: Some(event.receiver_id),
        };
        self.block_on_host(async move { registry.emit_event(input, &cause).await })?
            .map_err(|e| match e {
                RegistryError::Store(_) => HostError::Unavailable(e.to_string()),
                _ => HostError::Invalid(e.to_string()),
            })
    }

    fn http_request(
        &mut self,
        request: wit_host::Request,
    ) -> Result<wit_host::Response, HostError> {
        let access = self.access_for(wit_types::Capability::Http)?;
        let invalid = HostError::Invalid;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| invalid(format!("bad URL {:?}: {e}", request.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "URL scheme {} is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .ok_or_else(|| invalid("the URL has no host".into()))?;
        let default_port = if url.scheme() == "https" { 443 } else { 80 };
        let port = url.port_or_known_default().unwrap_or(default_port);
        if !access
            .permissions
            .grants
            .allows_host(host, port, default_port)
        {
            return Err(HostError::Forbidden(format!(
                "host {host} port {port} is not allowed for this plugin (grants: allowed_hosts; a host granted without a port allows its scheme's default port only)"
            )));
        }
        if let Some(ip) = url_address(&url)
            && !addresses::public(ip)
            && !access.permissions.grants.names_address(ip)
        {
            return Err(HostError::Forbidden(format!(
                "address {ip} is in a private, local or metadata range: grant it by address to reach it"
            )));
        }
        if let Some((name, _)) = request
            .headers
            .iter()
            .find(|(name, _)| RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()))
        {
            return Err(invalid(format!(
                "the header {name} is set by the host, not the plugin"
            )));
        }
        let method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| invalid(format!("bad HTTP method {:?}", request.method)))?;
        let mut builder = access
            .services
            .http
            .request(method, url)
            .timeout(HTTP_TIMEOUT)
            .body(request.body);
        for (name, value) in request.headers {
            builder = builder.header(name, value);
        }
        self.block_on_host(async move {
            let unavailable = HostError::Unavailable;
            let mut response = builder
                .send()
                .await
                .map_err(|e| unavailable(crate::error_chain::error_chain(&e)))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
                .collect();
            let mut body = Vec::new();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|e| unavailable(e.to_string()))?
            {
                if body.len() + chunk.len() > MAX_HTTP_BODY {
                    return Err(unavailable(format!(
                        "the response body is larger than {MAX_HTTP_BODY} bytes"
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(wit_host::Response {
                status,
                headers,
                body,
            })
        })?
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.host
            .as_ref()?
            .permissions
            .grants
            .config
            .get(&key)
            .cloned()
    }

    fn kv_get(&mut self, key: String) -> Result<Option<Vec<u8>>, HostError> {
        let access = self.access_for(wit_types::Capability::KeyValue)?;
        let registry = access.services.registry.clone();
        let key = self.kv_key(&key)?;
        let stored = self
            .block_on_host(async move { registry.store().setting(&key).await })?
            .map_err(|e| HostError::Unavailable(e.to_string()))?;
        // values are stored as base64 text by kv-set; anything else is not a value of it
        Ok(stored
            .as_ref()
            .and_then(|v| v.as_str())
            .and_then(|text| base64::engine::general_purpose::STANDARD.decode(text).ok()))
    }

    fn kv_set(&mut self, key: String, value: Vec<u8>) -> Result<(), HostError> {
        self.access_for(wit_types::Capability::KeyValue)?;
        if key.is_empty() || key.len() > MAX_KV_KEY {
            return Err(HostError::Invalid(format!(
                "keys must be 1 to {MAX_KV_KEY} bytes"
            )));
        }
        if value.len() > MAX_KV_VALUE {
            return Err(HostError::Invalid(format!(
                "values must be at most {MAX_KV_VALUE} bytes"
            )));
        }
        let old = self.kv_get(key.clone())?.map(|v| key.len() + v.len());
        let new = key.len() + value.len();
        self.kv_usage_change(old, Some(new))?;
        let text = base64::engine::general_purpose::STANDARD.encode(value);
        let stored = self.put_kv(key, Some(serde_json::Value::String(text)));
        if stored.is_err() {
            let _ = self.kv_usage_change(Some(new), old);
        }
        stored
    }

    fn kv_delete(&mut self, key: String) -> Result<(), HostError> {
        let Some(old) = self.kv_get(key.clone())?.map(|v| key.len() + v.len()) else {
            return Ok(());
        };
        self.put_kv(key, None)?;
        self.kv_usage_change(Some(old), None)
    }

    fn now_ms(&mut self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl Sandbox {
    /// Accounts for one entry of the key-value store going from `old` to `new` bytes (`None`:
    /// absent); refused, changing nothing, when the plugin would exceed its caps.
    fn kv_usage_change(&mut self, old: Option<usize>, new: Option<usize>) -> Result<(), HostError> {
        let access = self.access_for(wit_types::Capability::KeyValue)?;
        let services = access.services.clone();
        let mut usage = lock(&services.kv_usage);
        let plugin = self.plugin.to_string();
        let current = match usage.get(&plugin) {
            Some(current) => *current,
            None => {
                let registry = services.registry.clone();
                let prefix = keys::kv_prefix(&plugin);
                let entries = self
                    .block_on_host(async move { registry.store().settings(&prefix).await })?
                    .map_err(|e| HostError::Unavailable(e.to_string()))?;
                let bytes = entries
                    .iter()
                    .map(|(k, v)| {
                        k.len() - keys::kv_prefix(&plugin).len()
                            + v.as_str().map_or(0, |t| t.len() * 3 / 4)
                    })
                    .sum();
                (entries.len(), bytes)
            }
        };
        let keys = current.0 + usize::from(new.is_some()) - usize::from(old.is_some());
        let bytes = (current.1 + new.unwrap_or(0)).saturating_sub(old.unwrap_or(0));
        if new.is_some() && (keys > MAX_KV_KEYS || bytes > MAX_KV_BYTES) {
            return Err(HostError::Invalid(format!(
                "the key-value store is full: at most {MAX_KV_KEYS} keys and {MAX_KV_BYTES} bytes per plugin"
            )));
        }
        usage.insert(plugin, (keys, bytes));
        Ok(())
    }

    /// Stores (or removes) this plugin's `key`, durably.
    fn put_kv(&mut self, key: String, value: Option<serde_json::Value>) -> Result<(), HostError> {
        let access = self.access_for(wit_types::Capability::KeyValue)?;
        let store = access.services.registry.store().clone();
        let key = self.kv_key(&key)?;
        self.block_on_host(async move {
            catalog::write(&store, move |txn| txn.put_setting(&key, value.as_ref())).await
        })?
        .map_err(|e| HostError::Unavailable(e.to_string()))
    }
}

/// The error of a host call made where the host interface is not offered (in `describe`).
fn no_host() -> HostError {
    HostError::Unavailable("the host interface is not available during describe".into())
}

/// The IP address a URL names literally, if it does.
fn url_address(url: &reqwest::Url) -> Option<std::net::IpAddr> {
    url.host_str()?.trim_matches(['[', ']']).parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_text_cannot_forge_log_lines_and_is_cut() {
        assert_eq!(
            log_safe("a\r\nFORGED\x1b[31m", 100),
            "a\\r\\nFORGED\\u{1b}[31m"
        );
        assert_eq!(log_safe("ééé", 3), "é...");
        assert_eq!(log_safe("short", 100), "short");
    }
}

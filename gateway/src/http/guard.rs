//! What a browser must not be able to do to a gateway it can reach (e.g. on 127.0.0.1 from a
//! web page): change state with a request that it sends cross-origin without asking the
//! gateway first (a form, or a `no-cors` fetch), or read answers through DNS rebinding.
//!
//! - A `POST` is refused with 415 when a browser could send it cross-origin unasked: its
//!   `Content-Type` is absent or one a form can send (`text/plain`, form encodings) and it has
//!   no header a page would need the gateway's permission to set (`Authorization`, `ce-*`,
//!   signatures...). `PUT`, `PATCH` and `DELETE` always need that permission, which the
//!   gateway never gives (it answers no CORS preflight).
//! - The `Host` header must name an IP address, `localhost`, the host of `EPR_PUBLIC_URL` or
//!   one of `EPR_ALLOWED_HOSTS` (421 otherwise): a rebinding page's requests name its own host.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::envelope::ApiError;

/// The host names a request may name in `Host`, beyond IP addresses and `localhost`.
#[derive(Debug, Clone, Default)]
pub struct AllowedHosts {
    names: Vec<String>,
    any: bool,
}

impl AllowedHosts {
    /// `names` (`*` allows any), plus the host of `public_url` when given.
    pub fn new(names: &[String], public_url: Option<&str>) -> Self {
        let mut allowed = AllowedHosts::default();
        for name in names.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
            if name == "*" {
                allowed.any = true;
            } else {
                allowed.names.push(name.to_ascii_lowercase());
            }
        }
        if let Some(host) = public_url
            .and_then(|url| url.parse::<axum::http::Uri>().ok())
            .and_then(|uri| uri.host().map(str::to_ascii_lowercase))
        {
            allowed.names.push(host);
        }
        allowed
    }

    /// Whether a request whose `Host` header is `value` may be answered.
    pub fn admits(&self, value: &str) -> bool {
        if self.any {
            return true;
        }
        let host = host_name(value).to_ascii_lowercase();
        host == "localhost"
            || host
                .trim_matches(['[', ']'])
                .parse::<std::net::IpAddr>()
                .is_ok()
            || self.names.contains(&host)
    }
}

/// The host part of a `Host` header value (`name`, `name:port`, `[v6]:port`).
fn host_name(value: &str) -> &str {
    let value = value.trim();
    if let Some(rest) = value.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    value.split(':').next().unwrap_or_default()
}

/// Headers a browser sets itself, or a page may set without the server's permission: their
/// presence proves nothing about where a request comes from.
fn set_by_any_page(name: &str) -> bool {
    const NAMES: [&str; 23] = [
        "accept",
        "accept-language",
        "content-language",
        "content-type",
        "range",
        "host",
        "origin",
        "referer",
        "user-agent",
        "connection",
        "content-length",
        "accept-encoding",
        "accept-charset",
        "cookie",
        "dnt",
        "te",
        "keep-alive",
        "upgrade",
        "via",
        "priority",
        "transfer-encoding",
        "expect",
        "date",
    ];
    NAMES.contains(&name)
        || name.starts_with("sec-")
        || name.starts_with("proxy-")
        || name == "upgrade-insecure-requests"
        || name == "cache-control"
        || name == "pragma"
}

/// Whether a page on another origin could have sent this `POST` without asking the gateway.
pub fn sendable_cross_origin(headers: &HeaderMap) -> bool {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let simple_type = match media.as_deref() {
        None | Some("") => true,
        Some(m) => matches!(
            m,
            "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data"
        ),
    };
    simple_type && headers.keys().all(|name| set_by_any_page(name.as_str()))
}

/// The middleware: refuses what a browser must not do (see the module's documentation).
pub async fn browsers(State(hosts): State<AllowedHosts>, request: Request, next: Next) -> Response {
    if let Some(host) = request.headers().get(header::HOST) {
        let host = String::from_utf8_lossy(host.as_bytes());
        if !host.is_ascii() || !hosts.admits(&host) {
            return ApiError::Status(
                StatusCode::MISDIRECTED_REQUEST,
                format!("misdirected request: this gateway does not answer to host {host:?} (allow it with EPR_ALLOWED_HOSTS or EPR_PUBLIC_URL)"),
            )
            .into_response();
        }
    }
    if request.method() == Method::POST && sendable_cross_origin(request.headers()) {
        return ApiError::Status(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported media type: send the body with Content-Type: application/json (or application/cloudevents+json, application/wasm...); a web page can send this content type from another origin, so the gateway refuses it for any call that changes state".into(),
        )
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn hosts_are_ip_addresses_localhost_or_allowed_names() {
        let hosts = AllowedHosts::new(&["epr.internal".into()], Some("https://epr.example.com/x"));
        for ok in [
            "127.0.0.1:8042",
            "localhost:8042",
            "[::1]:8042",
            "10.1.2.3",
            "EPR.internal:80",
            "epr.example.com",
        ] {
            assert!(hosts.admits(ok), "{ok}");
        }
        for refused in [
            "evil.example:8042",
            "localhost.evil.example",
            "épr.internal",
        ] {
            assert!(!hosts.admits(refused), "{refused}");
        }
        assert!(AllowedHosts::new(&["*".into()], None).admits("any.where"));
    }

    #[test]
    fn forms_and_unasked_fetches_are_told_apart_from_clients() {
        let mut h = HeaderMap::new();
        h.insert("user-agent", HeaderValue::from_static("Mozilla/5.0"));
        h.insert("origin", HeaderValue::from_static("https://evil.example"));
        assert!(sendable_cross_origin(&h), "no content type at all");
        h.insert(
            "content-type",
            HeaderValue::from_static("text/plain;charset=UTF-8"),
        );
        assert!(sendable_cross_origin(&h));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        assert!(!sendable_cross_origin(&h), "JSON needs a preflight");
        h.insert("content-type", HeaderValue::from_static("text/plain"));
        h.insert("ce-specversion", HeaderValue::from_static("1.0"));
        assert!(!sendable_cross_origin(&h), "a ce- header needs a preflight");
    }
}

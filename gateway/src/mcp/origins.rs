//! Which web origins may call `/mcp` (MCP's Streamable HTTP transport requires servers to check
//! `Origin`): requests without one (assistants, command-line clients) pass; a browser page's
//! request passes only from a loopback origin, the gateway's public URL or a configured origin.

use axum::http::{HeaderMap, StatusCode, header};

use crate::http::envelope::ApiError;

/// The origins allowed to call `/mcp`.
#[derive(Debug, Clone, Default)]
pub struct Origins {
    allowed: Vec<String>,
    any: bool,
}

impl Origins {
    /// `configured` origins (`scheme://host[:port]`; `*` allows any), plus the origin of
    /// `public_url` when given; loopback origins are always allowed.
    pub fn new(configured: &[String], public_url: Option<&str>) -> Self {
        let mut origins = Origins::default();
        for origin in configured
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
        {
            match origin {
                "*" => origins.any = true,
                origin => origins.allowed.extend(normalized(origin)),
            }
        }
        origins.allowed.extend(public_url.and_then(normalized));
        origins
    }

    /// Passes a request without `Origin` or from an allowed one; 403 otherwise.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(value) = headers.get(header::ORIGIN) else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(value.as_bytes());
        let origin = normalized(&text);
        let admitted = self.any
            || origin
                .as_deref()
                .is_some_and(|o| is_loopback(o) || self.allowed.iter().any(|allowed| allowed == o));
        match admitted {
            true => Ok(()),
            false => Err(ApiError::Status(
                StatusCode::FORBIDDEN,
                format!(
                    "forbidden: MCP requests from the web origin {text:?} are not allowed (allow it with EPR_MCP_ORIGINS)"
                ),
            )),
        }
    }
}

/// `scheme://host:port` in lower case with the scheme's default port made explicit; `None`
/// when `origin` is not an http(s) origin.
fn normalized(origin: &str) -> Option<String> {
    let uri: axum::http::Uri = origin.trim().parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let host = uri.host()?.to_ascii_lowercase();
    Some(format!(
        "{scheme}://{host}:{}",
        uri.port_u16().unwrap_or(default_port)
    ))
}

/// Whether a normalized origin is on this machine.
fn is_loopback(origin: &str) -> bool {
    let host = origin
        .split_once("://")
        .map(|(_, rest)| rest.rsplit_once(':').map_or(rest, |(host, _)| host))
        .unwrap_or_default();
    host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn from(origin: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        headers
    }

    #[test]
    fn loopback_configured_and_public_origins_pass_others_get_403() {
        let origins = Origins::new(
            &["https://tools.example.com".into()],
            Some("https://epr.example.com/base"),
        );
        for ok in [
            "http://localhost:6274",
            "http://127.0.0.1:3000",
            "http://[::1]:8080",
            "https://tools.example.com:443",
            "HTTPS://EPR.example.com",
        ] {
            assert!(origins.check(&from(ok)).is_ok(), "{ok}");
        }
        assert!(origins.check(&HeaderMap::new()).is_ok(), "no Origin at all");
        for refused in [
            "https://evil.example",
            "http://tools.example.com",
            "https://tools.example.com:8443",
            "http://localhost.evil.example",
            "null",
        ] {
            let (status, message) = origins
                .check(&from(refused))
                .unwrap_err()
                .status_and_message();
            assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
            assert!(message.contains("EPR_MCP_ORIGINS"), "{message}");
        }
        assert!(
            Origins::new(&["*".into()], None)
                .check(&from("https://any.where"))
                .is_ok()
        );
    }
}

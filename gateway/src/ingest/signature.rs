//! Webhook signatures: HMAC-SHA256 over the body, GitHub style (`X-Hub-Signature-256:
//! sha256=<hex>`) or Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).

use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// How far a Standard Webhooks timestamp may be from now, in seconds.
const TOLERANCE_SECS: i64 = 300;
/// Signatures looked at in one `webhook-signature` header (senders rotating keys send two or
/// three); the rest are ignored.
const MAX_SIGNATURES: usize = 8;
/// Longest base64 signature looked at (an HMAC-SHA256 is 44 characters).
const MAX_SIGNATURE_CHARS: usize = 128;

/// The signature a webhook source requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    /// No signature.
    #[default]
    None,
    /// `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, body)>`.
    Github,
    /// Standard Webhooks: `v1,<base64 HMAC-SHA256(key, id.timestamp.body)>`; the secret is
    /// the base64 of the key, optionally prefixed with `whsec_`.
    StandardWebhooks,
}

/// Why a request's signature was refused (401).
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    /// A header the scheme needs is absent.
    #[error("missing signature header {0}")]
    Missing(&'static str),
    /// The signature does not match the body.
    #[error("signature does not match the body")]
    Mismatch,
    /// Standard Webhooks timestamp too far from now.
    #[error("webhook-timestamp is more than {TOLERANCE_SECS} s away from now")]
    Stale,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .ok_or(SignatureError::Missing(name))
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length.
    Hmac::<Sha256>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key"))
}

/// Checks the signature of `body` under `scheme` with `secret`, in constant time.
pub fn verify(
    scheme: Scheme,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SignatureError> {
    match scheme {
        Scheme::None => Ok(()),
        Scheme::Github => {
            let given = header(headers, "x-hub-signature-256")?;
            let hex_sig = given
                .strip_prefix("sha256=")
                .ok_or(SignatureError::Mismatch)?;
            if hex_sig.len() != 64 {
                return Err(SignatureError::Mismatch);
            }
            let bytes = hex::decode(hex_sig).map_err(|_| SignatureError::Mismatch)?;
            let mut mac = mac(secret.as_bytes());
            mac.update(body);
            mac.verify_slice(&bytes)
                .map_err(|_| SignatureError::Mismatch)
        }
        Scheme::StandardWebhooks => {
            let id = header(headers, "webhook-id")?;
            let timestamp = header(headers, "webhook-timestamp")?;
            let signatures = header(headers, "webhook-signature")?;
            let sent: i64 = timestamp.parse().map_err(|_| SignatureError::Mismatch)?;
            if (chrono::Utc::now().timestamp() - sent).abs() > TOLERANCE_SECS {
                return Err(SignatureError::Stale);
            }
            let b64 = base64::engine::general_purpose::STANDARD;
            let key = standard_webhooks_key(secret).map_err(|_| SignatureError::Mismatch)?;
            let mut mac = mac(&key);
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            // computed once; at most MAX_SIGNATURES entries are compared, each in constant time
            let matches = signatures
                .split_whitespace()
                .take(MAX_SIGNATURES)
                .filter_map(|candidate| candidate.strip_prefix("v1,"))
                .filter(|encoded| encoded.len() <= MAX_SIGNATURE_CHARS)
                .filter_map(|encoded| b64.decode(encoded).ok())
                .fold(false, |found, given| {
                    found | bool::from(expected.as_slice().ct_eq(&given))
                });
            if matches {
                Ok(())
            } else {
                Err(SignatureError::Mismatch)
            }
        }
    }
}

/// The key of a Standard Webhooks secret: the base64 after an optional `whsec_` prefix, as the
/// Standard Webhooks reference libraries (and the `webhook-firer` plugin) read it.
pub fn standard_webhooks_key(secret: &str) -> Result<Vec<u8>, base64::DecodeError> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
}

/// The GitHub-style header value for `body` (for clients and tests).
pub fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = mac(secret.as_bytes());
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn github_signatures_are_checked() {
        let body = br#"{"a":1}"#;
        let mut h = HeaderMap::new();
        assert_eq!(
            verify(Scheme::Github, "s3cret", &h, body),
            Err(SignatureError::Missing("x-hub-signature-256"))
        );
        h.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(&github_signature("s3cret", body)).unwrap(),
        );
        assert_eq!(verify(Scheme::Github, "s3cret", &h, body), Ok(()));
        assert_eq!(
            verify(Scheme::Github, "other", &h, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Scheme::Github, "s3cret", &h, b"{}"),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_signatures_are_checked() {
        // Key "test-key", as a whsec_ secret.
        let secret = format!(
            "whsec_{}",
            base64::engine::general_purpose::STANDARD.encode("test-key")
        );
        let body = b"{}";
        let now = chrono::Utc::now().timestamp().to_string();
        let mut mac = mac(b"test-key");
        mac.update(format!("msg_1.{now}.").as_bytes());
        mac.update(body);
        let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_static("msg_1"));
        h.insert("webhook-timestamp", HeaderValue::from_str(&now).unwrap());
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&format!("v1,bm90IGl0 v1,{sig}")).unwrap(),
        );
        assert_eq!(verify(Scheme::StandardWebhooks, &secret, &h, body), Ok(()));
        h.insert("webhook-timestamp", HeaderValue::from_static("1000000000"));
        assert_eq!(
            verify(Scheme::StandardWebhooks, &secret, &h, body),
            Err(SignatureError::Stale)
        );
    }
}

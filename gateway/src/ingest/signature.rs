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
    verify_at(
        scheme,
        secret,
        headers,
        body,
        chrono::Utc::now().timestamp(),
    )
}

/// [`verify`] at Unix time `now` (what a signature's timestamp is checked against).
fn verify_at(
    scheme: Scheme,
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
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
            if (now - sent).abs() > TOLERANCE_SECS {
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn github_signatures_match_githubs_published_example() {
        // docs.github.com, "Validating webhook deliveries": this secret, this payload, this
        // signature
        let secret = "It's a Secret to Everybody";
        let body = b"Hello, World!";
        let published = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        let signed = headers(&[("x-hub-signature-256", published)]);
        assert_eq!(verify(Scheme::Github, secret, &signed, body), Ok(()));
        assert_eq!(
            verify(Scheme::Github, "another secret", &signed, body),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Scheme::Github, secret, &signed, b"Hello, World?"),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Scheme::Github, secret, &HeaderMap::new(), body),
            Err(SignatureError::Missing("x-hub-signature-256"))
        );
        let unprefixed = headers(&[("x-hub-signature-256", &published[7..])]);
        assert_eq!(
            verify(Scheme::Github, secret, &unprefixed, body),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn standard_webhooks_signatures_match_the_specifications_example() {
        // the Standard Webhooks specification's example: this secret, id, timestamp, body and
        // signature
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = br#"{"test": 2432232314}"#;
        let sent = 1_614_265_330;
        let signed = |signatures: &str| {
            headers(&[
                ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
                ("webhook-timestamp", "1614265330"),
                ("webhook-signature", signatures),
            ])
        };
        let published = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let check = |h: &HeaderMap, secret: &str, now: i64| {
            verify_at(Scheme::StandardWebhooks, secret, h, body, now)
        };
        assert_eq!(check(&signed(published), secret, sent), Ok(()));
        // the key is the base64 after whsec_; the prefix is optional
        assert_eq!(check(&signed(published), &secret[6..], sent), Ok(()));
        // one good signature among others (key rotation) is enough
        let rotated = format!("v1,bm90IGl0 {published}");
        assert_eq!(check(&signed(&rotated), secret, sent), Ok(()));
        assert_eq!(
            check(&signed("v1,bm90IGl0"), secret, sent),
            Err(SignatureError::Mismatch)
        );
        // within five minutes of the timestamp only
        assert_eq!(check(&signed(published), secret, sent + 299), Ok(()));
        assert_eq!(
            check(&signed(published), secret, sent + 301),
            Err(SignatureError::Stale)
        );
    }
}

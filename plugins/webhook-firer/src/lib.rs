//! webhook-firer: for each subscribed event, `POST`s its payload to the configured `url` in
//! CloudEvents binary mode (`ce-*` headers), signed as Standard Webhooks do (`webhook-id`,
//! `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256>`) when a `secret`
//! (`whsec_<base64>`) is configured. A status other than 2xx is an error, so the gateway
//! retries and finally dead-letters the event.
//!
//! Configuration: `url` (required), `secret` (optional).

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use epr_plugin_sdk::manifest;
use epr_plugin_sdk::watcher::{Capability, Event, Guest, Manifest, host};
use hmac::{Hmac, Mac};
use sha2::Sha256;

struct WebhookFirer;

impl Guest for WebhookFirer {
    fn describe() -> Manifest {
        manifest(
            "webhook-firer",
            env!("CARGO_PKG_VERSION"),
            "POSTs events to a URL as signed CloudEvents",
            &[],
            vec![Capability::Http],
        )
    }

    fn on_event(event: Event) -> Result<(), String> {
        let url = host::config_get("url").ok_or("no `url` configured")?;
        let body = event.payload.into_bytes();
        let mut headers = vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("ce-specversion".to_owned(), "1.0".to_owned()),
            ("ce-id".to_owned(), event.id.clone()),
            ("ce-source".to_owned(), source(&event.cloudevent)),
            ("ce-type".to_owned(), event.receiver_type),
            ("ce-time".to_owned(), event.created_at),
            ("ce-subject".to_owned(), event.nvrpp.name),
        ];
        if let Some(secret) = host::config_get("secret") {
            let timestamp = (host::now_ms() / 1000).to_string();
            let signature = sign(&secret, &event.id, &timestamp, &body)?;
            headers.extend([
                ("webhook-id".to_owned(), event.id),
                ("webhook-timestamp".to_owned(), timestamp),
                ("webhook-signature".to_owned(), signature),
            ]);
        }
        let response = host::http_request(&host::Request {
            method: "POST".into(),
            url: url.clone(),
            headers,
            body,
        })?;
        if (200..300).contains(&response.status) {
            Ok(())
        } else {
            Err(format!("{url} answered {}", response.status))
        }
    }
}

/// The event's CloudEvent source when it came in as one, else the gateway's.
fn source(cloudevent: &Option<epr_plugin_sdk::watcher::Cloudevent>) -> String {
    cloudevent
        .as_ref()
        .map_or_else(|| "epr-gateway".to_owned(), |ce| ce.source.clone())
}

/// Reads a secret's base64 as the Standard Webhooks libraries do: padding optional.
const SECRET_BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` with the key whose base64 is the
/// secret, after an optional `whsec_` prefix (the rule of the Standard Webhooks libraries and of
/// the gateway's own verifier).
fn sign(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> Result<String, String> {
    let key = SECRET_BASE64
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .map_err(|e| format!("`secret` is not whsec_<base64>: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

epr_plugin_sdk::watcher::export_watcher!(WebhookFirer);

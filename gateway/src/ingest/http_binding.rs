//! The CloudEvents HTTP protocol binding: structured, binary and batch modes.

use axum::http::{HeaderMap, header};
use base64::Engine;
use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};
use thiserror::Error;

use super::cloudevent::{AttributeError, CloudEvent, check};

/// What an HTTP request carried.
#[derive(Debug)]
pub enum Carried {
    /// One event (structured or binary mode), checked.
    Single(CloudEvent),
    /// A batch: each item checked on its own.
    Batch(Vec<Result<CloudEvent, AttributeError>>),
}

/// Why a request is not a CloudEvent.
#[derive(Debug, Error)]
pub enum BindingError {
    /// An event format the gateway does not read (415).
    #[error(
        "unsupported CloudEvents format {0}: send application/cloudevents+json, application/cloudevents-batch+json, or binary mode (ce-* headers)"
    )]
    UnsupportedFormat(String),
    /// The body is not what its content type says (400).
    #[error("invalid CloudEvent: {0}")]
    Body(String),
    /// An attribute breaks the specification (400).
    #[error(transparent)]
    Attribute(#[from] AttributeError),
}

/// The media type of the request, lower-cased, without parameters.
fn media_type(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase(),
    )
}

/// Reads the CloudEvent(s) of a request, in whichever mode it uses.
pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Carried, BindingError> {
    let media = media_type(headers).unwrap_or_default();
    if let Some(format) = media.strip_prefix("application/cloudevents-batch") {
        if format != "+json" {
            return Err(BindingError::UnsupportedFormat(media));
        }
        let items: Vec<Value> = serde_json::from_slice(body)
            .map_err(|e| BindingError::Body(format!("a batch must be a JSON array: {e}")))?;
        let checked = items
            .into_iter()
            .map(|item| match item {
                Value::Object(event) => check(&event).map(|()| event),
                _ => Err(AttributeError {
                    attribute: "(event)".into(),
                    problem: "each item of a batch must be a JSON object".into(),
                }),
            })
            .collect();
        return Ok(Carried::Batch(checked));
    }
    if let Some(format) = media.strip_prefix("application/cloudevents") {
        if format != "+json" {
            return Err(BindingError::UnsupportedFormat(media));
        }
        let event = structured(body)?;
        return Ok(Carried::Single(event));
    }
    let event = binary(headers, media, body)?;
    check(&event)?;
    Ok(Carried::Single(event))
}

/// A structured-mode body, checked.
pub fn structured(body: &[u8]) -> Result<CloudEvent, BindingError> {
    let event: Map<String, Value> = serde_json::from_slice(body).map_err(|e| {
        BindingError::Body(format!("a structured event must be a JSON object: {e}"))
    })?;
    check(&event)?;
    Ok(event)
}

/// Whether the request uses binary mode (has a `ce-specversion` header).
pub fn is_binary(headers: &HeaderMap) -> bool {
    headers.contains_key("ce-specversion")
}

/// Whether the request uses structured mode.
pub fn is_structured(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|m| m.starts_with("application/cloudevents+"))
}

/// A binary-mode request as a structured event (not yet checked): attributes from the
/// percent-decoded `ce-*` headers, `datacontenttype` from `Content-Type`, the body as `data`
/// (JSON when the media type is JSON, or absent and the body is JSON; text for `text/*`; else
/// `data_base64`).
fn binary(headers: &HeaderMap, media: String, body: &[u8]) -> Result<CloudEvent, BindingError> {
    let mut event = Map::new();
    for (name, value) in headers {
        let Some(attribute) = name.as_str().strip_prefix("ce-") else {
            continue;
        };
        let raw = value.to_str().map_err(|_| AttributeError {
            attribute: attribute.to_owned(),
            problem: "header value is not ASCII (percent-encode it)".into(),
        })?;
        let decoded = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| AttributeError {
                attribute: attribute.to_owned(),
                problem: "percent-encoded value is not UTF-8".into(),
            })?;
        event.insert(attribute.to_owned(), Value::String(decoded.into_owned()));
    }
    if let Some(content_type) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    {
        event.insert(
            "datacontenttype".into(),
            Value::String(content_type.to_owned()),
        );
    }
    if body.is_empty() {
        return Ok(event);
    }
    // No Content-Type: JSON if the body parses as JSON (the CloudEvents default), else bytes.
    let untyped_json = media.is_empty() && serde_json::from_slice::<Value>(body).is_ok();
    let is_json = untyped_json || media == "application/json" || media.ends_with("+json");
    let data = if is_json {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            BindingError::Body(format!(
                "the body is not the JSON its Content-Type says: {e}"
            ))
        })?;
        ("data", value)
    } else if media.starts_with("text/") {
        match std::str::from_utf8(body) {
            Ok(text) => ("data", Value::String(text.to_owned())),
            Err(_) => (
                "data_base64",
                Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
            ),
        }
    } else {
        (
            "data_base64",
            Value::String(base64::engine::general_purpose::STANDARD.encode(body)),
        )
    };
    event.insert(data.0.into(), data.1);
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn binary_mode_percent_decodes_and_keeps_json_data() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "42"),
            ("ce-source", "/ci/r%C3%A9pertoire"),
            ("ce-type", "dev.build"),
            ("content-type", "application/json; charset=utf-8"),
        ]);
        let Carried::Single(e) = decode(&h, br#"{"a":1}"#).unwrap() else {
            panic!()
        };
        assert_eq!(e["source"], "/ci/répertoire");
        assert_eq!(e["data"], serde_json::json!({"a": 1}));
        assert_eq!(e["datacontenttype"], "application/json; charset=utf-8");
    }

    #[test]
    fn other_formats_are_unsupported() {
        for media in [
            "application/cloudevents+avro",
            "application/cloudevents-batch+protobuf",
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(media).unwrap());
            assert!(matches!(
                decode(&h, b"{}"),
                Err(BindingError::UnsupportedFormat(_))
            ));
        }
    }

    #[test]
    fn binary_data_that_is_not_json_is_kept_as_base64() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "1"),
            ("ce-source", "s"),
            ("ce-type", "t"),
            ("content-type", "application/octet-stream"),
        ]);
        let Carried::Single(e) = decode(&h, &[0, 159, 146, 150]).unwrap() else {
            panic!()
        };
        assert_eq!(e["data_base64"], "AJ+Slg==");
    }
}

//! What the fuzz targets share: turning fuzzer bytes into an HTTP request's headers and body.

use http::{HeaderMap, HeaderName, HeaderValue};

/// Splits `data` at the first empty line into header lines (`name: value`) and a body, as an
/// HTTP request carries them; header lines that are not valid HTTP are left out, as hyper would
/// refuse them before any handler runs.
pub fn request(data: &[u8]) -> (HeaderMap, &[u8]) {
    let split = data
        .windows(2)
        .position(|w| w == b"\n\n")
        .unwrap_or(data.len());
    let (head, body) = data.split_at(split);
    let body = body.get(2..).unwrap_or_default();
    let mut headers = HeaderMap::new();
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = line.split_at(colon);
        let value = value[1..].trim_ascii();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim_ascii()),
            HeaderValue::from_bytes(value),
        ) {
            headers.append(name, value);
        }
    }
    (headers, body)
}

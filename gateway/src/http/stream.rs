//! `GET /api/v1/stream`: the log as Server-Sent Events, resumable and filterable by type.

use std::convert::Infallible;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::envelope::ApiError;
use super::extract::Params;
use crate::bus::log_stream;
use crate::registry::message::Message;

/// The routes of this module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stream))
}

/// Query of the stream.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct StreamParams {
    /// Only messages whose type starts with this.
    #[serde(rename = "type")]
    type_prefix: Option<String>,
    /// Start after this sequence number (the `Last-Event-ID` header wins).
    after: Option<u64>,
}

/// The log as Server-Sent Events (`id` = sequence number, `event` = message type, `data` = the
/// Kafka message value); resumes after `Last-Event-ID`.
#[utoipa::path(get, path = "/api/v1/stream", tag = "stream",
    params(StreamParams, ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this sequence number")),
    responses((status = 200, description = "The stream: one Server-Sent Event per log message, `id` its log sequence number, `data` EPR's message JSON on one line",
            body = Object, content_type = "text/event-stream"),
        (status = 400, description = "A malformed parameter", body = super::envelope::ErrorBody),
        (status = 503, description = "Too many streams are open (EPR_MAX_STREAMS)", body = super::envelope::ErrorBody)))]
async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Params(params): Params<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let after = match headers.get("last-event-id") {
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .ok_or_else(|| ApiError::invalid("Last-Event-ID must be a log sequence number"))?,
        None => params.after.unwrap_or(0),
    };
    let permit = state.streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::Status(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "service unavailable: {} event streams are open, the most allowed (EPR_MAX_STREAMS); try again later",
                state.limits.max_streams
            ),
        )
    })?;
    let prefix = params.type_prefix.unwrap_or_default();
    let keep = move |message: &Message| message.kind.starts_with(&prefix);
    let messages = log_stream::follow(state.registry.clone(), after, state.shutdown.clone(), keep)
        .map(move |(seq, message)| {
            // held as long as the stream is open
            let _open = &permit;
            let data = serde_json::to_string(&message).unwrap_or_default();
            Ok(Event::default().id(seq.to_string()).data(one_line(data)))
        });
    Ok(Sse::new(messages).keep_alive(KeepAlive::default()))
}

/// The JSON text on one line, so that every message is a single `data:` line. Payloads keep
/// their original whitespace, which may include line breaks; outside strings these are
/// insignificant, and inside strings JSON escapes them, so spaces can replace them.
fn one_line(json: String) -> String {
    if json.contains(['\n', '\r']) {
        json.replace(['\n', '\r'], " ")
    } else {
        json
    }
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[test]
    fn line_breaks_become_spaces_and_the_json_is_unchanged() {
        let text = "{\n  \"a\": \"x\\ny\",\r\n  \"b\": [1,\n2]\n}".to_owned();
        let flat = one_line(text.clone());
        assert!(!flat.contains('\n') && !flat.contains('\r'));
        let before: serde_json::Value = serde_json::from_str(&text).unwrap();
        let after: serde_json::Value = serde_json::from_str(&flat).unwrap();
        assert_eq!(before, after);
    }
}

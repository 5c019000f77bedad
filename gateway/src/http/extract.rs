//! Extractors that answer bad requests in the envelope: JSON bodies, query strings, tokens.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Query, Request};

use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::envelope::ApiError;
use super::{AppState, Tokens};

/// A request body within the size limit (413 in the envelope beyond it) that arrived whole
/// within the body deadline (408 otherwise: a deadline for the whole body, not an idle timer
/// that each byte would reset).
pub struct RawBody(pub Bytes);

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let limit = state.limits.max_body_bytes;
        read_body(req.into_body(), state, limit, "request body too large")
            .await
            .map(RawBody)
    }
}

/// A request's `body`, at most `limit` bytes (413 saying `too_large` and the limit beyond it),
/// arrived whole within the body deadline (408 otherwise).
pub async fn read_body(
    body: Body,
    state: &AppState,
    limit: usize,
    too_large: &str,
) -> Result<Bytes, ApiError> {
    let deadline = state.limits.body_timeout;
    let read = axum::body::to_bytes(body, limit);
    let bytes = tokio::time::timeout(deadline, read).await.map_err(|_| {
        ApiError::Status(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "request timeout: the body did not arrive within {} s",
                deadline.as_secs_f64()
            ),
        )
    })?;
    bytes.map_err(|e| {
        let over_limit = std::error::Error::source(&e)
            .is_some_and(|cause| cause.is::<http_body_util::LengthLimitError>());
        match over_limit {
            true => ApiError::Status(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("{too_large}: the limit is {limit} bytes"),
            ),
            false => ApiError::invalid(format!("cannot read the body: {e}")),
        }
    })
}

/// A JSON request body. Any content type is accepted (EPR's clients do not all send one);
/// too large: 413; empty: `invalid input: EOF`; malformed: 400 with the parser's message.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let RawBody(bytes) = RawBody::from_request(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(ApiError::invalid("EOF"));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(ApiError::invalid)
    }
}

/// Query-string parameters; unknown or malformed parameters are a 400 naming them.
pub struct Params<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(t)| Params(t))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// Proof that the caller may manage receivers, groups and plugins (the admin token, when set).
pub struct AdminAuth;

/// Proof that the caller may post events (the ingest or admin token, when an ingest token is set).
pub struct IngestAuth;

impl FromRequestParts<AppState> for AdminAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .tokens
            .admin_allowed(&parts.headers)
            .map(|_| AdminAuth)
    }
}

impl FromRequestParts<AppState> for IngestAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .tokens
            .ingest_allowed(&parts.headers)
            .map(|_| IngestAuth)
    }
}

impl Tokens {
    /// Whether `headers` carry what managing receivers, groups and plugins needs: nothing
    /// without an admin token, else the admin token.
    pub fn admin_allowed(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match &self.admin {
            None => Ok(()),
            Some(admin) => bearer_matches(headers, &[admin], "the admin token"),
        }
    }

    /// Whether `headers` carry what posting events needs: nothing without an ingest token,
    /// else the ingest (or admin) token.
    pub fn ingest_allowed(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        match (&self.ingest, &self.admin) {
            (None, _) => Ok(()),
            (Some(ingest), None) => bearer_matches(headers, &[ingest], "the ingest token"),
            (Some(ingest), Some(admin)) => {
                bearer_matches(headers, &[ingest, admin], "the ingest token")
            }
        }
    }
}

/// Checks `Authorization: Bearer <token>` against `accepted`, in constant time per token.
fn bearer_matches(headers: &HeaderMap, accepted: &[&String], which: &str) -> Result<(), ApiError> {
    let unauthorized = |msg: String| ApiError::Status(StatusCode::UNAUTHORIZED, msg);
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            unauthorized(format!(
                "unauthorized: this call needs the header 'Authorization: Bearer <token>' with {which}"
            ))
        })?;
    let matched = accepted.iter().fold(false, |m, t| {
        m | bool::from(t.as_bytes().ct_eq(given.trim().as_bytes()))
    });
    if matched {
        Ok(())
    } else {
        Err(unauthorized(format!(
            "unauthorized: the bearer token is not {which}"
        )))
    }
}

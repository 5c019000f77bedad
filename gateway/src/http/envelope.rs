//! EPR's response envelope, `{"data": ..., "errors": [...]}`, and the mapping of errors to it.

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ingest::cdevent::CdEventError;
use crate::ingest::cloudevent::AttributeError;
use crate::ingest::http_binding::BindingError;
use crate::ingest::signature::SignatureError;
use crate::ingest::sources::SourceError;
use crate::plugins::PluginError;
use crate::registry::error::RegistryError;

/// A successful answer: `{"data": ...}`, plus `next` (the cursor of the next page) on searches.
#[derive(Debug, Serialize, ToSchema)]
pub struct Envelope<T> {
    /// The payload of the answer.
    pub data: T,
    /// Cursor of the next page of a search; absent on the last page and on non-searches.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// `{"data": data}` with status 200.
pub fn ok<T: Serialize>(data: T) -> Json<Envelope<T>> {
    Json(Envelope { data, next: None })
}

/// `{"data": id}` with status 201: the answer of a create (EPR answers 200; its clients take
/// any 2xx, and some count only 201 as success).
pub fn created<T: Serialize>(id: T) -> (StatusCode, Json<Envelope<T>>) {
    (StatusCode::CREATED, ok(id))
}

/// A failed answer: a status and the message for `errors`.
#[derive(Debug)]
pub enum ApiError {
    /// A registry error: 400, 404 or 500.
    Registry(RegistryError),
    /// Any other failure, with its status and message.
    Status(StatusCode, String),
}

impl ApiError {
    /// 400 `invalid input: <msg>`.
    pub fn invalid(msg: impl std::fmt::Display) -> Self {
        ApiError::Status(StatusCode::BAD_REQUEST, format!("invalid input: {msg}"))
    }
}

impl From<RegistryError> for ApiError {
    fn from(e: RegistryError) -> Self {
        ApiError::Registry(e)
    }
}

/// A failed answer's body: `{"data": null, "errors": ["<message>"]}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Always null.
    data: Option<()>,
    /// What went wrong.
    errors: [String; 1],
}

impl ApiError {
    /// The status and message the client gets.
    pub fn status_and_message(self) -> (StatusCode, String) {
        match self {
            ApiError::Registry(e @ RegistryError::InvalidInput(_)) => {
                (StatusCode::BAD_REQUEST, e.to_string())
            }
            ApiError::Registry(e @ RegistryError::NotFound { .. }) => {
                (StatusCode::NOT_FOUND, e.to_string())
            }
            ApiError::Registry(e @ RegistryError::Refused { .. }) => {
                (StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
            }
            ApiError::Registry(e @ RegistryError::Conflict(_)) => {
                (StatusCode::CONFLICT, e.to_string())
            }
            ApiError::Registry(RegistryError::Store(e)) if e.unavailable => {
                tracing::warn!(error = %e, "request failed: the store is unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service unavailable: the database cannot be reached; retry later".to_owned(),
                )
            }
            ApiError::Registry(RegistryError::Store(e)) => {
                tracing::error!(error = %e, "request failed in the store");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error".to_owned(),
                )
            }
            ApiError::Status(status, message) => (status, message),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = self.status_and_message();
        let body = Json(ErrorBody {
            data: None,
            errors: [message],
        });
        if status == StatusCode::UNAUTHORIZED {
            return (status, [(header::WWW_AUTHENTICATE, "Bearer")], body).into_response();
        }
        (status, body).into_response()
    }
}

impl From<BindingError> for ApiError {
    fn from(e: BindingError) -> Self {
        match e {
            BindingError::UnsupportedFormat(_) => {
                ApiError::Status(StatusCode::UNSUPPORTED_MEDIA_TYPE, e.to_string())
            }
            e => ApiError::invalid(e),
        }
    }
}

impl From<AttributeError> for ApiError {
    fn from(e: AttributeError) -> Self {
        ApiError::invalid(e)
    }
}

impl From<CdEventError> for ApiError {
    fn from(e: CdEventError) -> Self {
        ApiError::invalid(e)
    }
}

impl From<SignatureError> for ApiError {
    fn from(e: SignatureError) -> Self {
        ApiError::Status(StatusCode::UNAUTHORIZED, format!("unauthorized: {e}"))
    }
}

impl From<SourceError> for ApiError {
    fn from(e: SourceError) -> Self {
        match e {
            SourceError::Invalid(_) => ApiError::invalid(e),
            SourceError::ReadOnly(_) => ApiError::Status(StatusCode::CONFLICT, e.to_string()),
            SourceError::NotFound(_) => ApiError::Status(StatusCode::NOT_FOUND, e.to_string()),
            SourceError::Registry(e) => ApiError::Registry(e),
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        match e {
            PluginError::Invalid(_) => ApiError::invalid(e),
            PluginError::NotFound(_) => ApiError::Status(StatusCode::NOT_FOUND, e.to_string()),
            PluginError::Exists(_) => ApiError::Status(StatusCode::CONFLICT, e.to_string()),
            PluginError::Internal(detail) => {
                tracing::error!(error = %detail, "plugin operation failed");
                ApiError::Status(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal server error".to_owned(),
                )
            }
        }
    }
}

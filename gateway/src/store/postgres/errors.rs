//! PostgreSQL's errors as the registry sees them: "unavailable" (a 503, try again) when the
//! server cannot be reached or asks to be retried, a store failure (a 500) otherwise.

use tokio_postgres::error::SqlState;

use crate::registry::error::StoreError;

/// `e` as a store error; unavailable when the connection is gone or the server says the
/// statement may succeed if retried (connection exceptions, shutdown, too many connections,
/// serialisation failures and deadlocks).
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let retryable = match e.code() {
        None => true,
        Some(code) => {
            let class = &code.code()[..2];
            // 08: connection exception; 57: operator intervention (shutdown, cannot connect
            // now); 53: insufficient resources (too many connections)
            matches!(class, "08" | "57" | "53")
                || *code == SqlState::T_R_SERIALIZATION_FAILURE
                || *code == SqlState::T_R_DEADLOCK_DETECTED
        }
    };
    let message = format!("postgres: {}", error_text(&e));
    match retryable || e.is_closed() {
        true => StoreError::unavailable(message),
        false => StoreError::new(message),
    }
}

/// The error and, for a server error, what the server said (the `Display` of a
/// `tokio_postgres::Error` says only "db error").
fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{e}: {}", db.message()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

/// A connection could not be had from the pool (the server is down or every connection busy).
pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_error(e),
        e => StoreError::unavailable(format!("postgres: no connection: {e}")),
    }
}

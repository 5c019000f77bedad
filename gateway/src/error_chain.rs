//! An error and its causes on one line: what clients and logs need to see when a library's own
//! message leaves the cause out (reqwest's does: "error sending request" without the refused
//! address or the failed lookup).

/// `error: cause: cause of the cause...`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(e) = cause {
        text.push_str(": ");
        text.push_str(&e.to_string());
        cause = e.source();
    }
    text
}

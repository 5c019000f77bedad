//! How deep stored JSON may nest. Whatever is stored must be renderable later by every reader
//! of the log (the Kafka relay, the stream, plugins, GraphQL), and they parse payloads with
//! serde_json, which refuses documents nested deeper than 128 levels. A payload or schema is
//! therefore refused at ingest when it nests deeper than [`MAX_JSON_DEPTH`], with room to spare
//! for the envelopes (message, CloudEvent) that wrap it.

use super::error::RegistryError;

/// Deepest nesting of arrays and objects accepted in a payload or a schema.
pub const MAX_JSON_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in `json`, valid JSON text (strings are skipped,
/// escapes included). Linear in the length, no recursion.
pub fn nesting(json: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let mut bytes = json.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Refuses `json` (the `what` of an event or receiver) when it nests deeper than the limit.
pub fn check(what: &str, json: &str) -> Result<(), RegistryError> {
    let depth = nesting(json);
    if depth > MAX_JSON_DEPTH {
        return Err(RegistryError::invalid(format!(
            "{what} is nested {depth} levels deep: the limit is {MAX_JSON_DEPTH} levels of arrays and objects"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_counts_arrays_and_objects_but_not_strings() {
        assert_eq!(nesting("1"), 0);
        assert_eq!(nesting(r#"{"a":[1,{"b":2}]}"#), 3);
        assert_eq!(nesting(r#"{"a":"[[[[\"{{{"}"#), 1);
        assert_eq!(nesting(r#"[[],[[]]]"#), 3);
    }

    #[test]
    fn the_limit_is_inclusive_and_named() {
        let at = format!(
            "{}{}",
            "[".repeat(MAX_JSON_DEPTH),
            "]".repeat(MAX_JSON_DEPTH)
        );
        assert!(check("payload", &at).is_ok());
        let over = format!("[{at}]");
        let err = check("payload", &over).unwrap_err().to_string();
        assert!(err.contains("payload is nested 65 levels deep"), "{err}");
        assert!(err.contains("limit is 64"), "{err}");
    }
}

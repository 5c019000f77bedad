//! CloudEvents 1.0: the structured JSON form, and the checks of its context attributes.

use base64::Engine;
use serde_json::{Map, Value};
use thiserror::Error;

/// A CloudEvent in its structured JSON form: context attributes, plus `data` or `data_base64`.
pub type CloudEvent = Map<String, Value>;

/// Attributes the specification defines (everything else is an extension).
pub const DEFINED_ATTRIBUTES: [&str; 10] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
    "data",
    "data_base64",
];

/// A CloudEvent that breaks the specification, naming the attribute.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid CloudEvent: attribute {attribute}: {problem}")]
pub struct AttributeError {
    /// The attribute at fault.
    pub attribute: String,
    /// What is wrong with it.
    pub problem: String,
}

fn fault(attribute: &str, problem: impl Into<String>) -> AttributeError {
    AttributeError {
        attribute: attribute.to_owned(),
        problem: problem.into(),
    }
}

/// Checks a structured CloudEvent: `specversion` 1.0; non-empty `id`, `source`, `type`; optional
/// attributes of the right type; `data` and `data_base64` not both; legal extension names
/// (lower-case letters and digits) with string, number or boolean values.
pub fn check(event: &CloudEvent) -> Result<(), AttributeError> {
    match event.get("specversion") {
        Some(Value::String(v)) if v == "1.0" => {}
        Some(Value::String(v)) => {
            return Err(fault(
                "specversion",
                format!("must be \"1.0\", got \"{v}\""),
            ));
        }
        Some(_) => return Err(fault("specversion", "must be the string \"1.0\"")),
        None => return Err(fault("specversion", "is required")),
    }
    for required in ["id", "source", "type"] {
        match event.get(required) {
            Some(Value::String(v)) if !v.is_empty() => {}
            Some(Value::String(_)) => return Err(fault(required, "must not be empty")),
            Some(_) => return Err(fault(required, "must be a string")),
            None => return Err(fault(required, "is required")),
        }
    }
    for optional in ["datacontenttype", "dataschema", "subject", "time"] {
        match event.get(optional) {
            None | Some(Value::String(_)) => {}
            Some(_) => return Err(fault(optional, "must be a string")),
        }
    }
    if let Some(Value::String(time)) = event.get("time") {
        chrono::DateTime::parse_from_rfc3339(time)
            .map_err(|e| fault("time", format!("must be an RFC 3339 timestamp ({e})")))?;
    }
    if event.contains_key("data") && event.contains_key("data_base64") {
        return Err(fault(
            "data_base64",
            "must not be present together with data",
        ));
    }
    if let Some(encoded) = event.get("data_base64") {
        let text = encoded
            .as_str()
            .ok_or_else(|| fault("data_base64", "must be a string"))?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| fault("data_base64", format!("is not base64 ({e})")))?;
    }
    for (name, value) in event {
        if DEFINED_ATTRIBUTES.contains(&name.as_str()) {
            continue;
        }
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(fault(
                name,
                "extension names may only hold lower-case letters a-z and digits 0-9",
            ));
        }
        if !matches!(value, Value::String(_) | Value::Number(_) | Value::Bool(_)) {
            return Err(fault(
                name,
                "extension values must be strings, numbers or booleans",
            ));
        }
    }
    Ok(())
}

/// A string attribute (extensions that are numbers or booleans are given as text).
pub fn attribute(event: &CloudEvent, name: &str) -> Option<String> {
    match event.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(v: Value) -> CloudEvent {
        v.as_object().unwrap().clone()
    }

    fn valid() -> Value {
        json!({"specversion": "1.0", "id": "1", "source": "/ci", "type": "dev.build", "data": {"a": 1}})
    }

    #[test]
    fn a_valid_event_passes() {
        assert_eq!(check(&event(valid())), Ok(()));
    }

    #[test]
    fn each_fault_names_its_attribute() {
        let cases = [
            ("specversion", json!("0.3")),
            ("id", json!("")),
            ("source", json!(5)),
            ("time", json!("yesterday")),
            ("data_base64", json!("AAAA")),
            ("Bad_Name", json!("x")),
            ("ext", json!({"nested": true})),
        ];
        for (attribute, value) in cases {
            let mut e = event(valid());
            e.insert(attribute.into(), value);
            assert_eq!(check(&e).unwrap_err().attribute, attribute);
        }
        for required in ["specversion", "id", "source", "type"] {
            let mut e = event(valid());
            e.remove(required);
            let err = check(&e).unwrap_err();
            assert_eq!(
                (err.attribute.as_str(), err.problem.as_str()),
                (required, "is required")
            );
        }
    }
}

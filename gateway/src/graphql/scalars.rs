//! EPR's two scalars: `JSON` (sent as a string holding JSON text, or as a value; returned as a
//! value) and `Time` (RFC 3339).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;

use crate::registry::message::rfc3339;

/// A JSON document, kept as its text so that its keys stay in the order they were sent.
#[derive(Debug)]
pub struct Json(pub Box<RawValue>);

#[Scalar(name = "JSON")]
impl ScalarType for Json {
    fn parse(value: Value) -> InputValueResult<Self> {
        let text = match value {
            // what EPR's clients send: the JSON text in a string
            Value::String(text) => text,
            other => serde_json::to_string(&other).map_err(InputValueError::custom)?,
        };
        RawValue::from_string(text)
            .map(Json)
            .map_err(|e| InputValueError::custom(format!("not JSON text: {e}")))
    }

    fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).unwrap_or(Value::Null)
    }
}

/// A point in time, RFC 3339 with milliseconds in UTC (as the REST API writes it).
#[derive(Debug, Clone, Copy)]
pub struct Time(pub DateTime<Utc>);

#[Scalar(name = "Time")]
impl ScalarType for Time {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| Time(t.with_timezone(&Utc)))
                .map_err(|e| InputValueError::custom(format!("not an RFC 3339 time: {e}"))),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(rfc3339(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_accepted_as_text_or_as_a_value_and_keeps_its_key_order() {
        let text = Json::parse(Value::String(r#"{"z":1,"a":[true]}"#.into())).unwrap();
        assert_eq!(text.0.get(), r#"{"z":1,"a":[true]}"#);
        let value = Json::parse(serde_json::from_str(r#"{"z":1,"a":[true]}"#).unwrap()).unwrap();
        assert_eq!(value.0.get(), r#"{"z":1,"a":[true]}"#);
        assert_eq!(
            serde_json::to_string(&text.to_value()).unwrap(),
            r#"{"z":1,"a":[true]}"#
        );
        assert!(Json::parse(Value::String("{not json".into())).is_err());
    }
}

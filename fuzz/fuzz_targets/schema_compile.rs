//! Compiling receivers' JSON Schemas and validating with them: no schema may panic, reach the
//! network or a file, or blow the stack.

#![no_main]

use epr_gateway::schema::SchemaCache;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if epr_gateway::registry::depth::check("the schema", text).is_err() {
        return;
    }
    let Ok(schema) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Ok(compiled) = SchemaCache::default().compile(&schema) {
        for instance in [
            schema.clone(),
            Value::Null,
            json!({}),
            json!([1, "a", {"b": null}]),
        ] {
            let _ = compiled.violations(&instance);
        }
    }
});

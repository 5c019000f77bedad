//! JSON Schema: compiling receivers' schemas once, keeping the validators, validating payloads.
//!
//! Drafts 4, 6, 7, 2019-09 and 2020-12 (from `$schema`, 2020-12 when absent), with `format`
//! asserted. A `$ref` to another document resolves only against documents the gateway already
//! holds (other receivers' schemas, by their `$id`); nothing is ever fetched over the network.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ReferencingError, Retrieve, Uri, Validator};
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

use crate::sync::{read, write};

/// Why a schema was refused.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// A `$ref` names a document the gateway does not hold.
    #[error(
        "$ref {0} cannot be resolved: the gateway never fetches schemas over the network, and holds no schema with that $id"
    )]
    UnresolvableRef(String),
    /// The document is not a valid JSON Schema.
    #[error("{0}")]
    Invalid(String),
}

/// Schema documents the gateway holds, by `$id`: the only targets a `$ref` may name.
#[derive(Clone, Default)]
struct KnownDocuments(Arc<RwLock<HashMap<String, Value>>>);

impl KnownDocuments {
    fn key(uri: &str) -> &str {
        uri.trim_end_matches('#')
    }
}

impl Retrieve for KnownDocuments {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        let documents = read(&self.0);
        documents
            .get(Self::key(uri.as_str()))
            .cloned()
            .ok_or_else(|| format!("{} is not held by the gateway", uri.as_str()).into())
    }
}

/// A receiver's compiled schema.
pub struct CompiledSchema {
    validator: Validator,
    /// `{}` or `true`: every payload matches, none needs parsing.
    accepts_everything: bool,
}

impl CompiledSchema {
    /// Every way `instance` violates the schema, one `<JSON pointer>: <what is wrong>` line each.
    pub fn violations(&self, instance: &Value) -> Vec<String> {
        self.validator
            .iter_errors(instance)
            .map(|e| {
                let pointer = e.instance_path().as_str();
                let pointer = if pointer.is_empty() { "/" } else { pointer };
                format!("{pointer}: {e}")
            })
            .collect()
    }

    /// The violations of a payload kept as JSON text (parsed only when the schema constrains it).
    pub fn violations_of_text(&self, payload: &RawValue) -> Result<Vec<String>, serde_json::Error> {
        if self.accepts_everything {
            return Ok(Vec::new());
        }
        Ok(self.violations(&serde_json::from_str(payload.get())?))
    }
}

/// Compiled validators, one per receiver, compiled once and kept for the life of the process.
#[derive(Default)]
pub struct SchemaCache {
    validators: RwLock<HashMap<String, Arc<CompiledSchema>>>,
    documents: KnownDocuments,
}

impl SchemaCache {
    /// Compiles `schema`, refusing invalid schemas and unresolvable `$ref`s.
    pub fn compile(&self, schema: &Value) -> Result<Arc<CompiledSchema>, SchemaError> {
        let accepts_everything =
            matches!(schema, Value::Bool(true)) || schema.as_object().is_some_and(|o| o.is_empty());
        jsonschema::options()
            .should_validate_formats(true)
            .with_retriever(self.documents.clone())
            .build(schema)
            .map(|validator| {
                Arc::new(CompiledSchema {
                    validator,
                    accepts_everything,
                })
            })
            .map_err(|e| match e.kind() {
                ValidationErrorKind::Referencing(ReferencingError::Unretrievable {
                    uri, ..
                }) => SchemaError::UnresolvableRef(uri.clone()),
                _ => SchemaError::Invalid(e.to_string()),
            })
    }

    /// Keeps `validator` for `receiver_id`, and `schema` as a `$ref` target if it has an `$id`.
    pub fn insert(&self, receiver_id: &str, validator: Arc<CompiledSchema>, schema: &Value) {
        self.hold_document(schema);
        let mut validators = write(&self.validators);
        validators.insert(receiver_id.to_owned(), validator);
    }

    /// Makes `schema` a `$ref` target if it has an `$id` (e.g. receivers loaded at start-up).
    pub fn hold_document(&self, schema: &Value) {
        if let Some(id) = schema.get("$id").and_then(Value::as_str) {
            let mut documents = write(&self.documents.0);
            documents.insert(KnownDocuments::key(id).to_owned(), schema.clone());
        }
    }

    /// The validator kept for `receiver_id`.
    pub fn get(&self, receiver_id: &str) -> Option<Arc<CompiledSchema>> {
        let validators = read(&self.validators);
        validators.get(receiver_id).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_violation_is_listed_with_its_pointer() {
        let cache = SchemaCache::default();
        let v = cache
            .compile(&json!({"type":"object","properties":{"a":{"type":"integer"},"b":{"format":"email","type":"string"}},"required":["c"]}))
            .unwrap();
        let mut found = v.violations(&json!({"a":"x","b":"not-an-email"}));
        found.sort();
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("/: "), "{found:?}");
        assert!(found[1].starts_with("/a: "), "{found:?}");
        assert!(found[2].starts_with("/b: "), "{found:?}");
    }

    #[test]
    fn drafts_are_taken_from_dollar_schema() {
        let cache = SchemaCache::default();
        for draft in [
            "http://json-schema.org/draft-04/schema#",
            "http://json-schema.org/draft-06/schema#",
            "http://json-schema.org/draft-07/schema#",
            "https://json-schema.org/draft/2019-09/schema",
            "https://json-schema.org/draft/2020-12/schema",
        ] {
            let v = cache
                .compile(&json!({"$schema": draft, "type": "string"}))
                .unwrap_or_else(|e| panic!("{draft}: {e}"));
            assert!(!v.violations(&json!(1)).is_empty());
        }
    }

    #[test]
    fn remote_refs_are_refused_unless_held() {
        let cache = SchemaCache::default();
        let remote = json!({"$ref": "https://example.com/schemas/unit.json"});
        match cache.compile(&remote) {
            Err(SchemaError::UnresolvableRef(uri)) => {
                assert_eq!(uri, "https://example.com/schemas/unit.json")
            }
            other => panic!("expected an unresolvable $ref, got {:?}", other.map(|_| ())),
        }
        let held = json!({"$id": "https://example.com/schemas/unit.json", "type": "integer"});
        let v = cache.compile(&held).unwrap();
        cache.insert("r1", v, &held);
        let v = cache.compile(&remote).unwrap();
        assert!(v.violations(&json!(1)).is_empty());
        assert!(!v.violations(&json!("x")).is_empty());
    }

    #[test]
    fn invalid_schemas_are_refused() {
        let cache = SchemaCache::default();
        assert!(matches!(
            cache.compile(&json!({"type": 12})),
            Err(SchemaError::Invalid(_))
        ));
    }
}

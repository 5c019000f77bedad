//! What the commands print, and the files `generate` reads.

use std::path::Path;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::Value;

use super::CliError;

/// How JSON is printed (EPR's `--no-indent`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Format {
    /// Print JSON on one line instead of indented.
    #[arg(long)]
    pub no_indent: bool,
}

impl Format {
    /// Prints `value` on stdout as JSON.
    pub fn print(self, value: &impl Serialize) {
        let text = if self.no_indent {
            serde_json::to_string(value)
        } else {
            serde_json::to_string_pretty(value)
        };
        println!("{}", text.unwrap_or_default());
    }
}

/// An object's fields in a chosen order (JSON objects here keep their keys sorted).
#[derive(Debug, PartialEq)]
pub struct Projected(Vec<(String, Value)>);

impl Serialize for Projected {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            map.serialize_entry(key, value)?;
        }
        map.end()
    }
}

/// Keeps only `fields` of each object in `items`, in the order named (EPR's `--fields`: names
/// separated by spaces or commas, or `all` for every field).
pub fn project(items: Vec<Value>, fields: &str) -> Vec<Projected> {
    let wanted: Vec<&str> = fields.split([' ', ',']).filter(|f| !f.is_empty()).collect();
    let every = wanted.is_empty() || wanted == ["all"];
    items
        .into_iter()
        .map(|item| {
            let Value::Object(object) = item else {
                return Projected(Vec::new());
            };
            Projected(match every {
                true => object.into_iter().collect(),
                false => wanted
                    .iter()
                    .filter_map(|f| object.get(*f).map(|v| ((*f).to_owned(), v.clone())))
                    .collect(),
            })
        })
        .collect()
}

/// The bytes of `path`, or an error naming it.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// The text of `path`, or an error naming it.
pub fn read_text(path: &Path) -> Result<String, CliError> {
    String::from_utf8(read(path)?).map_err(|e| CliError::File {
        path: path.display().to_string(),
        reason: format!("not UTF-8 text: {e}"),
    })
}

/// The objects in a JSON or YAML file: an object, or an array of objects.
pub fn objects_in(path: &Path) -> Result<Vec<Value>, CliError> {
    let text = read_text(path)?;
    let unparsable = |reason: String| CliError::File {
        path: path.display().to_string(),
        reason,
    };
    let trimmed = text.trim_start();
    let value: Value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(&text).map_err(|e| unparsable(format!("invalid JSON: {e}")))?
    } else {
        yaml_serde::from_str(&text).map_err(|e| unparsable(format!("invalid YAML: {e}")))?
    };
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(unparsable(
                "expected an object or an array of objects".into(),
            ));
        }
    };
    match items.iter().position(|i| !i.is_object()) {
        Some(n) => Err(unparsable(format!("item {n} is not an object"))),
        None if items.is_empty() => Err(unparsable("the array is empty".into())),
        None => Ok(items),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_keep_the_named_keys_in_the_order_asked() {
        let items = vec![json!({"id": "1", "name": "a", "version": "v"})];
        let text = |fields| serde_json::to_string(&project(items.clone(), fields)).unwrap();
        assert_eq!(text("version,id"), r#"[{"version":"v","id":"1"}]"#);
        assert_eq!(text("all"), r#"[{"id":"1","name":"a","version":"v"}]"#);
        assert_eq!(text("name missing"), r#"[{"name":"a"}]"#);
    }

    #[test]
    fn files_hold_json_or_yaml_objects_or_arrays() {
        let dir = tempfile::tempdir().unwrap();
        let yaml = dir.path().join("r.yaml");
        std::fs::write(&yaml, "- name: a\n  schema: {type: object}\n- name: b\n").unwrap();
        let found = objects_in(&yaml).unwrap();
        assert_eq!(found[0]["schema"], json!({"type": "object"}));
        assert_eq!(found[1]["name"], "b");

        let json = dir.path().join("r.json");
        std::fs::write(&json, r#"{"name": "c"}"#).unwrap();
        assert_eq!(objects_in(&json).unwrap(), [json!({"name": "c"})]);

        std::fs::write(&json, "[1]").unwrap();
        assert!(
            objects_in(&json)
                .unwrap_err()
                .to_string()
                .contains("item 0 is not an object")
        );
        let missing = objects_in(&dir.path().join("none.json")).unwrap_err();
        assert!(missing.to_string().contains("none.json"), "{missing}");
    }
}

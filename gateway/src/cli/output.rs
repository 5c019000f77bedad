//! What the commands print, and the files `generate` reads.

use std::path::Path;

use serde_json::{Map, Value};

use super::CliError;

/// How JSON is printed (EPR's `--no-indent`).
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Format {
    /// Print JSON on one line instead of indented.
    #[arg(long)]
    pub no_indent: bool,
}

impl Format {
    /// Prints `value` on stdout.
    pub fn print(self, value: &Value) {
        let text = if self.no_indent {
            value.to_string()
        } else {
            serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
        };
        println!("{text}");
    }
}

/// Keeps only `fields` of each object in `items` (EPR's `--fields`: names separated by spaces
/// or commas, or `all`).
pub fn project(items: Vec<Value>, fields: &str) -> Vec<Value> {
    let wanted: Vec<&str> = fields.split([' ', ',']).filter(|f| !f.is_empty()).collect();
    if wanted.is_empty() || wanted == ["all"] {
        return items;
    }
    items
        .into_iter()
        .map(|item| {
            let kept: Map<String, Value> = wanted
                .iter()
                .filter_map(|f| item.get(*f).map(|v| ((*f).to_owned(), v.clone())))
                .collect();
            Value::Object(kept)
        })
        .collect()
}

/// The objects in a JSON or YAML file: an object, or an array of objects.
pub fn objects_in(path: &Path) -> Result<Vec<Value>, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
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
            ))
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
    fn fields_keep_only_the_named_keys() {
        let items = vec![json!({"id": "1", "name": "a", "version": "v"})];
        assert_eq!(
            project(items.clone(), "version,id"),
            [json!({"id": "1", "version": "v"})]
        );
        assert_eq!(project(items.clone(), "all"), items);
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
        assert!(objects_in(&json)
            .unwrap_err()
            .to_string()
            .contains("item 0 is not an object"));
        let missing = objects_in(&dir.path().join("none.json")).unwrap_err();
        assert!(missing.to_string().contains("none.json"), "{missing}");
    }
}

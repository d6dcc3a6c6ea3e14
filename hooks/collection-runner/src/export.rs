//! `--export-environment`, `--export-globals` and `--export-collection`: the
//! files newman writes when a run ends (newman's `lib/run/index.js` and
//! `export-file.js`, postman-collection's `VariableScope.toJSON`).
//!
//! A scope is written as newman writes it: the loaded file's `id` (a fresh
//! one when it had none), the file's own `_`-prefixed keys gathered under
//! `_` without their underscore (postman-collection's private properties),
//! `name` (the file's, else `environment` / `globals`), `values` — the
//! file's variables in their order with the values the run left (a
//! disabled one kept with `"disabled": true`, an unset one gone), then the
//! variables the run added — each `{type, value, key}` with `type` `any`,
//! and `_postman_variable_scope`, `_postman_exported_at`,
//! `_postman_exported_using`. JSON with two-space indentation, no final
//! newline. A path that is a directory gets
//! `newman-<item>-<timestamp>0.json` inside it; missing directories are made.
//!
//! The collection is written as loaded (its variables too: newman does not
//! write what the run set), with the same three `_postman_*` fields and
//! `name: "collection"`; newman also rewrites every URL into its object form
//! and adds generated ids, which this does not.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::collection::VariableFile;
use crate::variables::Scope;

/// What is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Export {
    /// `--export-environment`.
    Environment,
    /// `--export-globals`.
    Globals,
    /// `--export-collection`.
    Collection,
}

impl Export {
    /// newman's name for it (`environment`, `globals`, `collection`).
    pub fn item(self) -> &'static str {
        match self {
            Export::Environment => "environment",
            Export::Globals => "globals",
            Export::Collection => "collection",
        }
    }

    /// The file name newman uses when the path is a directory (`newman-environment.json`).
    pub fn default_name(self) -> &'static str {
        match self {
            Export::Environment => "newman-environment.json",
            Export::Globals => "newman-globals.json",
            Export::Collection => "newman-collection.json",
        }
    }
}

/// An export could not be written.
#[derive(Debug, thiserror::Error)]
#[error("error writing file \"{path}\" for {default}: {source}")]
pub struct ExportError {
    path: PathBuf,
    default: String,
    #[source]
    source: std::io::Error,
}

/// JSON whose objects keep the order their keys were written in, as
/// `JSON.stringify` writes them (`serde_json`'s own maps sort their keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// An object, keys in order.
    Object(Vec<(String, Node)>),
    /// An array.
    Array(Vec<Node>),
    /// Anything else, or a value kept as it was read.
    Value(Value),
}

impl Node {
    fn object(entries: impl IntoIterator<Item = (&'static str, Node)>) -> Self {
        Node::Object(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    fn text(text: &str) -> Self {
        Node::Value(Value::from(text))
    }

    /// Its keys, when it is an object.
    pub fn keys(&self) -> Vec<&str> {
        match self {
            Node::Object(entries) => entries.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// As a `serde_json` value (key order lost).
    pub fn to_value(&self) -> Value {
        match self {
            Node::Object(entries) => Value::Object(entries.iter().map(|(k, v)| (k.clone(), v.to_value())).collect()),
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Value(value) => value.clone(),
        }
    }
}

impl serde::Serialize for Node {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Node::Object(entries) => {
                let mut map = serializer.serialize_map(Some(entries.len()))?;
                for (key, value) in entries {
                    map.serialize_entry(key, value)?;
                }
                map.end()
            }
            Node::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            Node::Value(value) => value.serialize(serializer),
        }
    }
}

fn variable(key: &str, value: &Value, disabled: bool) -> Node {
    let mut out = Vec::new();
    if disabled {
        out.push(("disabled", Node::Value(Value::Bool(true))));
    }
    out.extend([
        ("type", Node::text("any")),
        ("value", Node::Value(value.clone())),
        ("key", Node::text(key)),
    ]);
    Node::object(out)
}

/// The `values` newman writes for a scope loaded from `input` and left as `now`.
fn values(input: Option<&VariableFile>, now: &Scope) -> Node {
    let mut out = Vec::new();
    let mut written: Vec<&str> = Vec::new();
    for loaded in input.map(|f| f.values.as_slice()).unwrap_or_default() {
        if written.contains(&loaded.key.as_str()) {
            continue;
        }
        match now.get(&loaded.key) {
            Some(value) => out.push(variable(&loaded.key, value, false)),
            None if loaded.disabled => out.push(variable(&loaded.key, &loaded.value, true)),
            None => continue,
        }
        written.push(&loaded.key);
    }
    for (key, value) in now.entries() {
        if !written.contains(&key.as_str()) {
            out.push(variable(key, value, false));
        }
    }
    Node::Array(out)
}

fn stamp(content: &mut Vec<(String, Node)>, export: Export, at: &str) {
    content.retain(|(k, _)| !k.starts_with("_postman_"));
    for (key, value) in [
        ("_postman_variable_scope", export.item()),
        ("_postman_exported_at", at),
        (
            "_postman_exported_using",
            concat!("collection-runner/", env!("CARGO_PKG_VERSION")),
        ),
    ] {
        content.push((key.to_owned(), Node::text(value)));
    }
}

/// The environment or globals file newman writes: `input` as loaded, `now`
/// as the run left it, `at` the export's time (`toISOString()`).
pub fn scope_file(export: Export, input: Option<&VariableFile>, now: &Scope, at: &str) -> Node {
    let mut content: Vec<(String, Node)> = Vec::new();
    let private: Vec<(String, Node)> = input
        .map(|f| {
            f.rest
                .iter()
                .filter_map(|(k, v)| k.strip_prefix('_').map(|k| (k.to_owned(), Node::Value(v.clone()))))
                .collect()
        })
        .unwrap_or_default();
    if !private.is_empty() {
        content.push((String::from("_"), Node::Object(private)));
    }
    let id = input
        .and_then(|f| f.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    content.push((String::from("id"), Node::text(&id)));
    let name = input.and_then(|f| f.name.clone());
    if let Some(name) = &name {
        content.push((String::from("name"), Node::text(name)));
    }
    content.push((String::from("values"), values(input, now)));
    if name.is_none() {
        content.push((String::from("name"), Node::text(export.item())));
    }
    stamp(&mut content, export, at);
    Node::Object(content)
}

/// The collection file: `raw` as loaded. newman writes the collection's
/// variables as they were loaded, not as the run left them (those live in
/// the run's own scope), each as `{type, value, key}`.
pub fn collection_file(raw: &Value, at: &str) -> Node {
    let object = raw.as_object().cloned().unwrap_or_default();
    let loaded: Vec<crate::collection::Variable> = object
        .get("variable")
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    let variables = loaded.iter().map(|v| variable(&v.key, &v.value, v.disabled)).collect();
    let mut content: Vec<(String, Node)> = object
        .into_iter()
        .filter(|(k, _)| k != "variable")
        .map(|(k, v)| (k, Node::Value(v)))
        .collect();
    content.push((String::from("variable"), Node::Array(variables)));
    if !content.iter().any(|(k, _)| k == "name") {
        content.push((String::from("name"), Node::text("collection")));
    }
    stamp(&mut content, Export::Collection, at);
    Node::Object(content)
}

/// Writes `content` where newman's `export-file.js` would: at `path`; into
/// it when it is a directory, and under `newman/` when there is none, as
/// `<default's stem>-<timestamp>0<default's extension>`; missing
/// directories are made. `at` is the run's end (`toISOString()`).
pub fn write(path: Option<&Path>, default: &str, content: &str, at: &str) -> Result<PathBuf, ExportError> {
    let stamped = || {
        let stamp: String = at.split(|c: char| !c.is_ascii_digit()).collect::<Vec<_>>().join("-");
        let default = Path::new(default);
        let stem = default.file_stem().and_then(|s| s.to_str()).unwrap_or("newman");
        let extension = default.extension().and_then(|e| e.to_str()).unwrap_or("json");
        format!("{stem}-{stamp}0.{extension}")
    };
    let target = match path {
        None => Path::new("newman").join(stamped()),
        Some(dir) if dir.is_dir() => dir.join(stamped()),
        // Node's `path.parse("out/")` is the file `out`: newman writes a file there.
        Some(file) => PathBuf::from(file.to_string_lossy().trim_end_matches('/')),
    };
    let failed = |source| ExportError {
        path: target.clone(),
        default: default.to_owned(),
        source,
    };
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(failed)?;
    }
    std::fs::write(&target, content).map_err(failed)?;
    Ok(target)
}

/// [`write`] for a JSON export: two-space indentation, no final newline, as `JSON.stringify(content, 0, 2)`.
pub fn write_json(path: Option<&Path>, export: Export, content: &Node, at: &str) -> Result<PathBuf, ExportError> {
    let text = serde_json::to_string_pretty(content).unwrap_or_else(|_| json!(null).to_string());
    write(path, export.default_name(), &text, at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collection::Variable;

    fn var(key: &str, value: Value, disabled: bool) -> Variable {
        Variable {
            key: key.to_owned(),
            value,
            disabled,
        }
    }

    #[test]
    fn a_scope_keeps_the_file_order_drops_unset_keeps_disabled_and_appends_new() {
        let input = VariableFile {
            id: Some(String::from("env-1")),
            name: Some(String::from("stage")),
            values: vec![
                var("keep", json!("k"), false),
                var("gone", json!("g"), false),
                var("off", json!("o"), true),
            ],
            rest: serde_json::Map::from_iter([
                (String::from("_postman_variable_scope"), json!("environment")),
                (String::from("other"), json!(1)),
            ]),
        };
        let now = Scope::from_pairs([(String::from("keep"), json!("k2")), (String::from("n"), json!(5))]);
        let file = scope_file(Export::Environment, Some(&input), &now, "2026-12-03T13:49:12.001Z");
        assert_eq!(
            file.keys(),
            [
                "_",
                "id",
                "name",
                "values",
                "_postman_variable_scope",
                "_postman_exported_at",
                "_postman_exported_using"
            ]
        );
        assert_eq!(
            file.to_value(),
            json!({
                "_": {"postman_variable_scope": "environment"},
                "id": "env-1",
                "name": "stage",
                "values": [
                    {"type": "any", "value": "k2", "key": "keep"},
                    {"disabled": true, "type": "any", "value": "o", "key": "off"},
                    {"type": "any", "value": 5, "key": "n"}
                ],
                "_postman_variable_scope": "environment",
                "_postman_exported_at": "2026-12-03T13:49:12.001Z",
                "_postman_exported_using": concat!("collection-runner/", env!("CARGO_PKG_VERSION"))
            })
        );
        let globals = scope_file(Export::Globals, None, &Scope::default(), "t");
        assert_eq!(globals.keys()[..3], ["id", "values", "name"]);
        assert_eq!(globals.to_value()["name"], "globals");
    }

    #[test]
    fn a_directory_gets_newmans_timestamped_name() {
        let dir = std::env::temp_dir().join(format!("export-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let written = write_json(
            Some(&dir),
            Export::Globals,
            &Node::Object(Vec::new()),
            "2026-12-03T13:49:12.001Z",
        )
        .unwrap();
        assert_eq!(
            written.file_name().unwrap(),
            "newman-globals-2026-12-03-13-49-12-001-0.json"
        );
        let report = write(Some(&dir), "newman-run-report.xml", "<x/>", "2026-12-03T13:49:12.001Z").unwrap();
        assert_eq!(
            report.file_name().unwrap(),
            "newman-run-report-2026-12-03-13-49-12-001-0.xml"
        );
        let nested = write_json(
            Some(&dir.join("a/b.json")),
            Export::Globals,
            &Node::object([("x", Node::Value(json!(1)))]),
            "t",
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(nested).unwrap(), "{\n  \"x\": 1\n}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}

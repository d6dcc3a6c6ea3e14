//! The Postman Collection format, v2.1 and v2.0 (which differ in how auth
//! parameters are written), and loading it, environments, globals and
//! iteration data from files with clear errors.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::variables::Scope;

/// Why a file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (the cause is in the message, once).
    #[error("{path}: cannot read: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// A URL where a file is expected: newman fetches it, this runner reads files only.
    #[error(
        "{0}: loading from a URL is not supported: download it first (curl -fsSo file.json '<url>') and pass the file"
    )]
    Url(String),
    /// The bytes start with a UTF-16 byte order mark but are not UTF-16.
    #[error("{path}: starts with a UTF-16 byte order mark but is not UTF-16 text")]
    Encoding {
        /// The file.
        path: PathBuf,
    },
    /// The text is not what the file should hold.
    #[error("{path}: at {at}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where in the file: a JSON path like `item[2].request.url`, or `line 3` for CSV.
        at: String,
        /// What was expected.
        message: String,
    },
}

/// Decodes a file's bytes as newman does: UTF-16 LE (or BE) after its byte
/// order mark, UTF-8 after a UTF-8 BOM (invalid bytes replaced, as Node
/// decodes them) or when the bytes are UTF-8, and
/// ISO-8859-1 otherwise (newman's detector names ISO-8859-1 for such
/// files; this decodes every such file so, where newman would read some
/// as UTF-8 with replacement characters).
pub fn decode(path: &Path, bytes: &[u8]) -> Result<String, LoadError> {
    let utf16 = |bytes: &[u8], little: bool| {
        let units: Vec<u16> = bytes
            .chunks(2)
            .map(|c| {
                let pair = [c[0], c.get(1).copied().unwrap_or(0)];
                if little {
                    u16::from_le_bytes(pair)
                } else {
                    u16::from_be_bytes(pair)
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| LoadError::Encoding { path: path.to_owned() })
    };
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => Ok(String::from_utf8_lossy(rest).into_owned()),
        [0xFF, 0xFE, rest @ ..] => utf16(rest, true),
        [0xFE, 0xFF, rest @ ..] => utf16(rest, false),
        _ => {
            Ok(std::str::from_utf8(bytes)
                .map_or_else(|_| bytes.iter().map(|&b| char::from(b)).collect(), str::to_owned))
        }
    }
}

/// Reads and decodes a text file.
pub fn read_text(path: &Path) -> Result<String, LoadError> {
    let shown = path.to_string_lossy();
    if shown.starts_with("http://") || shown.starts_with("https://") {
        return Err(LoadError::Url(shown.into_owned()));
    }
    let bytes = std::fs::read(path).map_err(|error| LoadError::Read {
        path: path.to_owned(),
        error,
    })?;
    decode(path, &bytes)
}

/// Parses JSON text into `T`, naming the path inside the document on error.
pub fn parse_json<T: serde::de::DeserializeOwned>(path: &Path, text: &str) -> Result<T, LoadError> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let at = err.path().to_string();
        LoadError::Invalid {
            path: path.to_owned(),
            at: if at == "." { String::from("the top level") } else { at },
            message: err.into_inner().to_string(),
        }
    })
}

/// A collection file.
#[derive(Debug, Clone, Deserialize)]
pub struct Collection {
    /// Name and schema.
    pub info: Info,
    /// Top-level items and folders.
    #[serde(default)]
    pub item: Vec<Item>,
    /// Collection-level scripts.
    #[serde(default)]
    pub event: Vec<Event>,
    /// Collection variables.
    #[serde(default)]
    pub variable: Vec<Variable>,
    /// Collection-level auth, inherited by folders and requests.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Collection-level protocol settings (redirects, TLS).
    #[serde(default, rename = "protocolProfileBehavior")]
    pub protocol_profile_behavior: Option<ProtocolProfileBehavior>,
}

/// `info`.
#[derive(Debug, Clone, Deserialize)]
pub struct Info {
    /// The collection's name.
    pub name: String,
    /// Its id.
    #[serde(default, rename = "_postman_id")]
    pub id: Option<String>,
}

/// A request item or a folder.
#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Stable id, if any.
    #[serde(default)]
    pub id: Option<String>,
    /// Children: present for folders.
    #[serde(default)]
    pub item: Option<Vec<Item>>,
    /// The request: present for requests.
    #[serde(default)]
    pub request: Option<RequestSpec>,
    /// Scripts.
    #[serde(default)]
    pub event: Vec<Event>,
    /// Folder-level auth.
    #[serde(default)]
    pub auth: Option<Auth>,
    /// Protocol settings for this item (and, on a folder, its children).
    #[serde(default, rename = "protocolProfileBehavior")]
    pub protocol_profile_behavior: Option<ProtocolProfileBehavior>,
}

/// A request: a bare URL string or the full object.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RequestSpec {
    /// `"request": "https://…"`, a GET.
    Url(String),
    /// The full request.
    Full(Box<Request>),
}

/// A request object.
#[derive(Debug, Clone, Deserialize)]
pub struct Request {
    /// HTTP method; GET when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// The URL.
    #[serde(default)]
    pub url: Option<Url>,
    /// Headers.
    #[serde(default)]
    pub header: Headers,
    /// Body.
    #[serde(default)]
    pub body: Option<Body>,
    /// Request-level auth (`noauth` stops inheritance).
    #[serde(default)]
    pub auth: Option<Auth>,
}

/// Headers: a list, or the v1-style `"Key: value\n…"` string.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Headers {
    /// `[{key, value, disabled}]`.
    List(Vec<KeyValue>),
    /// `"Key: value\nOther: value"`.
    Text(String),
}

impl Default for Headers {
    fn default() -> Self {
        Self::List(Vec::new())
    }
}

impl Headers {
    /// The enabled headers as key/value pairs.
    pub fn enabled(&self) -> Vec<(String, String)> {
        match self {
            Self::List(list) => list
                .iter()
                .filter(|h| !h.disabled)
                .map(|h| (h.key.clone(), h.text()))
                .collect(),
            Self::Text(text) => text
                .lines()
                .filter_map(|line| line.split_once(':'))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .collect(),
        }
    }
}

/// A key/value entry (headers, query, urlencoded and form fields, variables).
#[derive(Debug, Clone, Deserialize)]
pub struct KeyValue {
    /// The key.
    #[serde(default)]
    pub key: String,
    /// The value; `null` for a query key without `=`.
    #[serde(default)]
    pub value: Option<Value>,
    /// Disabled entries are skipped.
    #[serde(default)]
    pub disabled: bool,
    /// For form data: `text` or `file`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For form data files: the path(s) of the file.
    #[serde(default)]
    pub src: Option<Value>,
    /// For form data: an explicit content type.
    #[serde(default, rename = "contentType")]
    pub content_type: Option<String>,
}

impl KeyValue {
    /// The value as text (`""` when absent).
    pub fn text(&self) -> String {
        self.value.as_ref().map(crate::variables::to_text).unwrap_or_default()
    }
}

/// A URL: the raw string or its parts.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Url {
    /// `"https://host/path?q=1"`.
    Raw(String),
    /// The parts (when present they win over `raw`).
    Parts(Box<UrlParts>),
}

/// A URL object.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct UrlParts {
    /// The raw form, used only when there are no parts.
    #[serde(default)]
    pub raw: Option<String>,
    /// `http`, `https`.
    #[serde(default)]
    pub protocol: Option<String>,
    /// Host labels or one string.
    #[serde(default)]
    pub host: Option<StringOrList>,
    /// Port.
    #[serde(default)]
    pub port: Option<Value>,
    /// Path segments or one string.
    #[serde(default)]
    pub path: Option<StringOrList>,
    /// Query parameters.
    #[serde(default)]
    pub query: Vec<KeyValue>,
    /// Path variables (`:id`).
    #[serde(default)]
    pub variable: Vec<KeyValue>,
    /// Fragment.
    #[serde(default)]
    pub hash: Option<String>,
}

/// A string or a list of strings (or segment objects with a `value`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StringOrList {
    /// One string.
    One(String),
    /// Several.
    Many(Vec<Value>),
}

impl StringOrList {
    /// The parts joined with `separator`.
    pub fn join(&self, separator: &str) -> String {
        match self {
            Self::One(s) => s.clone(),
            Self::Many(parts) => parts
                .iter()
                .map(|p| match p {
                    Value::Object(o) => o.get("value").map(crate::variables::to_text).unwrap_or_default(),
                    other => crate::variables::to_text(other),
                })
                .collect::<Vec<_>>()
                .join(separator),
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Body {
    /// `raw`, `urlencoded`, `formdata`, `file`, `graphql`.
    #[serde(default)]
    pub mode: Option<String>,
    /// For `raw`.
    #[serde(default)]
    pub raw: Option<String>,
    /// For `urlencoded`.
    #[serde(default)]
    pub urlencoded: Vec<KeyValue>,
    /// For `formdata`.
    #[serde(default)]
    pub formdata: Vec<KeyValue>,
    /// For `file`: `{src}`.
    #[serde(default)]
    pub file: Option<FileRef>,
    /// For `graphql`: `{query, variables}`.
    #[serde(default)]
    pub graphql: Option<GraphQl>,
    /// `options.raw.language` (`json`, `xml`, `text`, …).
    #[serde(default)]
    pub options: Option<Value>,
    /// A disabled body is not sent.
    #[serde(default)]
    pub disabled: bool,
}

impl Body {
    /// `options.raw.language`, if set.
    pub fn raw_language(&self) -> Option<&str> {
        self.options.as_ref()?.get("raw")?.get("language")?.as_str()
    }
}

/// A file reference.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct FileRef {
    /// Path, relative to the working directory.
    #[serde(default)]
    pub src: Option<String>,
}

/// A GraphQL body.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct GraphQl {
    /// The query.
    #[serde(default)]
    pub query: String,
    /// Variables, as JSON text.
    #[serde(default)]
    pub variables: Option<String>,
}

/// Auth settings: a type and its parameters.
#[derive(Debug, Clone, Deserialize)]
pub struct Auth {
    /// `noauth`, `bearer`, `basic`, `apikey`, `digest`, `oauth1`, `awsv4`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every other field: the parameters of each type.
    #[serde(flatten)]
    pub params: serde_json::Map<String, Value>,
}

impl Auth {
    /// The parameter `key` of this auth's type, in v2.1 (list) or v2.0 (object) form.
    pub fn param(&self, key: &str) -> Option<String> {
        match self.params.get(&self.kind)? {
            Value::Array(list) => list
                .iter()
                .find(|p| p.get("key").and_then(Value::as_str) == Some(key))
                .and_then(|p| p.get("value"))
                .map(crate::variables::to_text),
            Value::Object(map) => map.get(key).map(crate::variables::to_text),
            _ => None,
        }
    }
}

/// A script attached to an item.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `prerequest` or `test`.
    pub listen: String,
    /// The script.
    #[serde(default)]
    pub script: Option<Script>,
    /// Disabled scripts do not run.
    #[serde(default)]
    pub disabled: bool,
}

/// Script source.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct Script {
    /// Lines, or one string.
    #[serde(default)]
    pub exec: Option<StringOrList>,
}

impl Script {
    /// The source text.
    pub fn source(&self) -> String {
        self.exec.as_ref().map(|e| e.join("\n")).unwrap_or_default()
    }
}

/// A variable (collection variables, environment and globals files).
#[derive(Debug, Clone, Deserialize)]
pub struct Variable {
    /// Name (`id` in some v2.0 files).
    #[serde(default, alias = "id")]
    pub key: String,
    /// Value.
    #[serde(default)]
    pub value: Value,
    /// Disabled variables are not defined. (Environment files' `enabled:
    /// false` is not read: newman 6 defines those variables anyway.)
    #[serde(default)]
    pub disabled: bool,
}

/// Variables as a scope, skipping disabled ones.
pub fn scope_of(variables: &[Variable]) -> Scope {
    Scope::from_pairs(
        variables
            .iter()
            .filter(|v| !v.disabled)
            .map(|v| (v.key.clone(), v.value.clone())),
    )
}

/// `protocolProfileBehavior`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolProfileBehavior {
    /// Follow redirects (default true).
    pub follow_redirects: Option<bool>,
    /// At most this many redirects (default 10).
    pub max_redirects: Option<usize>,
    /// Keep the method on 301/302 instead of switching to GET.
    pub follow_original_http_method: Option<bool>,
    /// Keep the `Authorization` header across hosts.
    pub follow_authorization_header: Option<bool>,
    /// Verify TLS certificates (default true).
    #[serde(rename = "strictSSL")]
    pub strict_ssl: Option<bool>,
    /// Send a body with GET too.
    pub disable_body_pruning: Option<bool>,
}

impl ProtocolProfileBehavior {
    /// `self` with unset fields taken from `outer`.
    pub fn over(&self, outer: &Self) -> Self {
        Self {
            follow_redirects: self.follow_redirects.or(outer.follow_redirects),
            max_redirects: self.max_redirects.or(outer.max_redirects),
            follow_original_http_method: self.follow_original_http_method.or(outer.follow_original_http_method),
            follow_authorization_header: self.follow_authorization_header.or(outer.follow_authorization_header),
            strict_ssl: self.strict_ssl.or(outer.strict_ssl),
            disable_body_pruning: self.disable_body_pruning.or(outer.disable_body_pruning),
        }
    }
}

/// An environment or globals file.
#[derive(Debug, Clone, Deserialize)]
pub struct VariableFile {
    /// Its id, kept by exports.
    #[serde(default)]
    pub id: Option<String>,
    /// Its name (`pm.environment.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// The variables.
    #[serde(default)]
    pub values: Vec<Variable>,
    /// Every other key (exports keep the `_`-prefixed ones).
    #[serde(flatten)]
    pub rest: serde_json::Map<String, Value>,
}

/// Loads a collection file.
pub fn load_collection(path: &Path) -> Result<Collection, LoadError> {
    let text = unwrapped(path, read_text(path)?, "collection", "info")?;
    let value: Value = parse_json(path, &text)?;
    if value.get("info").is_none() && value.get("requests").is_some() {
        return Err(LoadError::Invalid {
            path: path.to_owned(),
            at: String::from("the top level"),
            message: String::from("this is a Postman v1 collection; export it as v2.1 from Postman"),
        });
    }
    parse_json(path, &text)
}

/// Loads an environment or globals file.
pub fn load_variables(path: &Path) -> Result<VariableFile, LoadError> {
    let text = read_text(path)?;
    let text = unwrapped(path, text, "environment", "values")?;
    let text = unwrapped(path, text, "globals", "values")?;
    parse_json(path, &text)
}

/// The file's text, or the object under `wrapper` when the file is the
/// Postman API's answer (`{"collection": {…}}`, `{"environment": {…}}`)
/// rather than the thing itself (it has no `own` key), as newman unwraps it.
fn unwrapped(path: &Path, text: String, wrapper: &str, own: &str) -> Result<String, LoadError> {
    let value: Value = parse_json(path, &text)?;
    match value.get(wrapper) {
        Some(inner @ Value::Object(_)) if value.get(own).is_none() => Ok(inner.to_string()),
        _ => Ok(text),
    }
}

/// Loads iteration data as newman does ([`crate::data::rows`]): JSON when
/// the text parses as JSON, whatever the file is called, CSV otherwise.
pub fn load_data(path: &Path) -> Result<Vec<Scope>, LoadError> {
    let text = read_text(path)?;
    let rows = crate::data::rows(&text).map_err(|err| LoadError::Invalid {
        path: path.to_owned(),
        at: err
            .line()
            .map_or_else(|| String::from("the header row"), |line| format!("line {line}")),
        message: err.to_string(),
    })?;
    Ok(rows.into_iter().map(Scope::from_pairs).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn temp(name: &str, bytes: &[u8]) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        (dir, path)
    }

    #[test]
    fn decodes_utf8_with_bom_and_utf16() {
        let p = Path::new("x");
        assert_eq!(decode(p, b"\xEF\xBB\xBF{}").unwrap(), "{}");
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("{\"a\":1}".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        assert_eq!(decode(p, &le).unwrap(), "{\"a\":1}");
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("[]".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(p, &be).unwrap(), "[]");
        assert_eq!(decode(p, b"caf\xE9 \xC3\x28").unwrap(), "caf\u{e9} \u{c3}(");
        assert!(matches!(
            decode(p, b"\xFF\xFE\x00\xD8"),
            Err(LoadError::Encoding { .. })
        ));
    }

    #[test]
    fn malformed_collection_names_file_and_path() {
        let (_dir, path) = temp(
            "c.json",
            br#"{"info": {"name": "x"}, "item": [{"name": "a", "request": {"url": 5}}]}"#,
        );
        let err = load_collection(&path).unwrap_err().to_string();
        assert!(err.contains("c.json") && err.contains("item[0].request"), "{err}");
        let (_dir, path) = temp("c.json", b"{\"info\": ");
        let err = load_collection(&path).unwrap_err().to_string();
        assert!(err.contains("c.json") && err.contains("EOF"), "{err}");
        let (_dir, path) = temp("c.json", br#"{"item": []}"#);
        let err = load_collection(&path).unwrap_err().to_string();
        assert!(err.contains("missing field `info`"), "{err}");
    }

    #[test]
    fn data_files_json_first_then_csv() {
        let (_dir, path) = temp(
            "d.csv",
            "\u{feff}name,note\n\"Smith, J\",\"said \"\"hi\"\"\"\nplain,x\n".as_bytes(),
        );
        let rows = load_data(&path).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].get("name"), Some(&json!("Smith, J")));
        assert_eq!(rows[0].get("note"), Some(&json!("said \"hi\"")));
        let (_dir, path) = temp("d.csv", b"a,b\n1,2\n3\n");
        let rows = load_data(&path).unwrap();
        assert_eq!((rows[1].get("a"), rows[1].get("b")), (Some(&json!(3)), None));
        let (_dir, path) = temp("d.csv", b"a\n\"x\"y\n");
        let err = load_data(&path).unwrap_err().to_string();
        assert!(
            err.contains("d.csv") && err.contains("line 2") && err.contains("Invalid Closing Quote"),
            "{err}"
        );
        let (_dir, path) = temp("d.txt", br#"[{"a": 1}, {"a": "x"}]"#);
        assert_eq!(load_data(&path).unwrap()[1].get("a"), Some(&json!("x")));
    }

    #[test]
    fn auth_params_in_both_versions() {
        let v21: Auth =
            serde_json::from_value(json!({"type": "bearer", "bearer": [{"key": "token", "value": "t"}]})).unwrap();
        let v20: Auth = serde_json::from_value(json!({"type": "bearer", "bearer": {"token": "t"}})).unwrap();
        assert_eq!(v21.param("token").as_deref(), Some("t"));
        assert_eq!(v20.param("token").as_deref(), Some("t"));
    }
}

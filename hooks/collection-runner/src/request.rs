//! Turning an item into the request to send: URL from its parts (or `raw`),
//! variables resolved, headers, body and auth (inherited collection → folder
//! → request, stopped by `noauth`).

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::collection::{Auth, Body, Request, RequestSpec, Url};
use crate::sandbox::{Header, ScriptRequest};
use crate::variables::{Scope, resolve};

/// A body ready to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// No body.
    None,
    /// Bytes, with the content type to add when the request has none.
    Bytes {
        /// The bytes.
        data: Vec<u8>,
        /// Default content type.
        content_type: Option<String>,
    },
    /// `multipart/form-data`.
    Form(Vec<FormPart>),
}

/// One form-data field.
#[derive(Debug, Clone, PartialEq)]
pub struct FormPart {
    /// Field name.
    pub name: String,
    /// Text value, or a file.
    pub value: FormValue,
    /// Explicit content type.
    pub content_type: Option<String>,
}

/// A form field's value.
#[derive(Debug, Clone, PartialEq)]
pub enum FormValue {
    /// Text.
    Text(String),
    /// A file's bytes and name.
    File {
        /// File name.
        name: String,
        /// Contents.
        data: Vec<u8>,
    },
}

/// Why a request could not be built.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum BuildError {
    /// A file the body refers to could not be read.
    #[error("body file {path}: {message}")]
    File {
        /// The path.
        path: String,
        /// The cause.
        message: String,
    },
    /// The auth type is not one this runner implements.
    #[error("auth type {0:?} is not supported")]
    UnsupportedAuth(String),
    /// The auth's parameters cannot be applied.
    #[error("{0}")]
    Auth(String),
}

/// The item's request in the shape scripts see, unresolved (`{{…}}` intact).
pub fn script_request(spec: &RequestSpec, id: &str, name: &str) -> ScriptRequest {
    let (method, url, headers, body) = match spec {
        RequestSpec::Url(url) => (String::from("GET"), url.clone(), Vec::new(), None),
        RequestSpec::Full(request) => (
            request
                .method
                .clone()
                .unwrap_or_else(|| String::from("GET"))
                .to_uppercase(),
            request.url.as_ref().map(url_text).unwrap_or_default(),
            request
                .header
                .enabled()
                .into_iter()
                .map(|(key, value)| Header { key, value })
                .collect(),
            request.body.as_ref().filter(|b| !b.disabled).map(body_json),
        ),
    };
    ScriptRequest {
        id: Some(id.to_owned()),
        name: Some(name.to_owned()),
        method,
        url,
        headers,
        body,
    }
}

fn body_json(body: &Body) -> Value {
    let fields = |list: &[crate::collection::KeyValue]| {
        list.iter()
            .filter(|f| !f.disabled)
            .map(|f| json!({"key": f.key, "value": f.text(), "type": f.kind, "src": f.src}))
            .collect::<Vec<_>>()
    };
    json!({
        "mode": body.mode,
        "raw": body.raw,
        "urlencoded": fields(&body.urlencoded),
        "formdata": fields(&body.formdata),
        "file": body.file.as_ref().map(|f| json!({"src": f.src})),
        "graphql": body.graphql.as_ref().map(|g| json!({"query": g.query, "variables": g.variables})),
        "options": body.options,
    })
}

/// The URL text of a `url` field: parts win over `raw` when present; path
/// variables (`:id`) are substituted from `url.variable`.
pub fn url_text(url: &Url) -> String {
    let parts = match url {
        Url::Raw(raw) => return raw.clone(),
        Url::Parts(parts) => parts,
    };
    if parts.host.is_none() && parts.path.is_none() {
        let raw = parts.raw.clone().unwrap_or_default();
        return substitute_path_variables(&raw, &parts.variable);
    }
    let mut out = String::new();
    if let Some(protocol) = &parts.protocol {
        out.push_str(protocol.trim_end_matches("://"));
        out.push_str("://");
    }
    if let Some(host) = &parts.host {
        out.push_str(&host.join("."));
    }
    if let Some(port) = &parts.port {
        out.push(':');
        out.push_str(&crate::variables::to_text(port));
    }
    if let Some(path) = &parts.path {
        let joined = path.join("/");
        if !joined.is_empty() {
            if !joined.starts_with('/') {
                out.push('/');
            }
            out.push_str(&joined);
        }
    }
    let query: Vec<String> = parts
        .query
        .iter()
        .filter(|q| !q.disabled)
        .map(|q| match &q.value {
            None | Some(Value::Null) => q.key.clone(),
            Some(_) => format!("{}={}", q.key, q.text()),
        })
        .collect();
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query.join("&"));
    }
    if let Some(hash) = &parts.hash {
        out.push('#');
        out.push_str(hash);
    }
    substitute_path_variables(&out, &parts.variable)
}

fn substitute_path_variables(url: &str, variables: &[crate::collection::KeyValue]) -> String {
    if variables.is_empty() {
        return url.to_owned();
    }
    let (base, rest) = match url.find(['?', '#']) {
        Some(at) => url.split_at(at),
        None => (url, ""),
    };
    let replaced: Vec<String> = base
        .split('/')
        .map(|segment| match segment.strip_prefix(':') {
            Some(name) => variables
                .iter()
                .find(|v| v.key == name && !v.disabled)
                .map(|v| v.text())
                .unwrap_or_else(|| segment.to_owned()),
            None => segment.to_owned(),
        })
        .collect();
    format!("{}{rest}", replaced.join("/"))
}

/// A request ready for a transport.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// Method.
    pub method: String,
    /// Full URL (`http://` added when no scheme is given, as newman does).
    pub url: String,
    /// Headers.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub payload: Payload,
    /// What postman-runtime warns about on the console while building it
    /// (a body file it could not read: the request goes without it).
    pub warnings: Vec<String>,
}

/// Where body files are read from (newman's `SecureFS`).
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    /// Relative paths resolve against it (`--working-dir`).
    pub dir: &'a Path,
    /// Whether files outside it may be read (newman's default; off with
    /// `--no-insecure-file-read`).
    pub outside: bool,
}

/// newman's message for a file outside the working directory when that is refused.
pub const OUTSIDE_WORKING_DIR: &str = "PPERM: insecure file access outside working directory";

impl Files<'_> {
    /// The path `src` names, resolved as Node's `path.resolve(dir, src)` does
    /// (lexically: `..` and `.` removed), or an error when it is outside the
    /// working directory and that is refused.
    fn resolve(&self, src: &str) -> Result<PathBuf, BuildError> {
        let normal = |path: &Path| {
            let mut out = PathBuf::new();
            for part in path.components() {
                match part {
                    std::path::Component::ParentDir => {
                        out.pop();
                    }
                    std::path::Component::CurDir => {}
                    other => out.push(other),
                }
            }
            out
        };
        let base = if self.dir.is_absolute() {
            self.dir.to_owned()
        } else {
            std::env::current_dir().unwrap_or_default().join(self.dir)
        };
        let (base, path) = (normal(&base), normal(&base.join(src)));
        if !self.outside && !path.starts_with(&base) {
            return Err(BuildError::File {
                path: path.display().to_string(),
                message: String::from(OUTSIDE_WORKING_DIR),
            });
        }
        Ok(path)
    }
}

/// Resolves the (possibly script-modified) request against `layers` and applies `auth`.
pub fn prepare(
    request: &ScriptRequest,
    original: Option<&Request>,
    auth: Option<&Auth>,
    layers: &[&Scope],
    files: Files<'_>,
) -> Result<Prepared, BuildError> {
    let r = |s: &str| resolve(s, layers);
    let mut url = r(&request.url);
    if !url.contains("://") {
        url = format!("http://{url}");
    }
    let headers: Vec<(String, String)> = request.headers.iter().map(|h| (r(&h.key), r(&h.value))).collect();
    let body = original.and_then(|o| o.body.as_ref()).filter(|b| !b.disabled);
    let mut warnings = Vec::new();
    let payload = match body {
        Some(body) => payload(body, request.body.as_ref(), &r, files, &mut warnings)?,
        None => Payload::None,
    };
    let mut prepared = Prepared {
        method: request.method.clone(),
        url,
        headers,
        payload,
        warnings,
    };
    if let Some(auth) = auth {
        crate::auth::apply(&crate::auth::Params::new(auth, &r), &mut prepared)?;
    }
    Ok(prepared)
}

/// A body file's bytes; the error is the message postman-runtime puts after its warning's prefix.
fn read_file(files: Files<'_>, src: &str) -> Result<Vec<u8>, String> {
    let path = files.resolve(src).map_err(|e| match e {
        BuildError::File { message, .. } => message,
        other => other.to_string(),
    })?;
    std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))
}

fn payload(
    body: &Body,
    script_body: Option<&Value>,
    r: &dyn Fn(&str) -> String,
    files: Files<'_>,
    warnings: &mut Vec<String>,
) -> Result<Payload, BuildError> {
    let raw = script_body
        .and_then(|b| b.get("raw"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| body.raw.clone());
    Ok(match body.mode.as_deref() {
        Some("raw") => {
            let content_type = match body.raw_language() {
                Some("json") => Some("application/json"),
                Some("xml") => Some("application/xml"),
                Some("html") => Some("text/html"),
                Some("javascript") => Some("application/javascript"),
                _ => Some("text/plain"),
            };
            Payload::Bytes {
                data: r(&raw.unwrap_or_default()).into_bytes(),
                content_type: content_type.map(str::to_owned),
            }
        }
        Some("urlencoded") => {
            let pairs: Vec<(String, String)> = body
                .urlencoded
                .iter()
                .filter(|f| !f.disabled)
                .map(|f| (r(&f.key), r(&f.text())))
                .collect();
            let encoded = pairs
                .iter()
                .map(|(k, v)| format!("{}={}", form_encode(k), form_encode(v)))
                .collect::<Vec<_>>()
                .join("&");
            Payload::Bytes {
                data: encoded.into_bytes(),
                content_type: Some(String::from("application/x-www-form-urlencoded")),
            }
        }
        Some("formdata") => {
            let mut parts = Vec::new();
            for field in body.formdata.iter().filter(|f| !f.disabled) {
                let value = if field.kind.as_deref() == Some("file") {
                    let src = field.src.as_ref().map(crate::variables::to_text).unwrap_or_default();
                    let name = Path::new(&src)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    match read_file(files, &src) {
                        Ok(data) => FormValue::File { name, data },
                        // postman-runtime warns and leaves the field out.
                        Err(message) => {
                            warnings.push(format!("Form param `{}`, file load error: {message}", field.key));
                            continue;
                        }
                    }
                } else {
                    FormValue::Text(r(&field.text()))
                };
                parts.push(FormPart {
                    name: r(&field.key),
                    value,
                    content_type: field.content_type.clone(),
                });
            }
            Payload::Form(parts)
        }
        Some("file") => {
            let src = body.file.as_ref().and_then(|f| f.src.clone()).unwrap_or_default();
            match read_file(files, &src) {
                Ok(data) => Payload::Bytes {
                    data,
                    content_type: None,
                },
                // postman-runtime warns and sends the request without a body.
                Err(message) => {
                    warnings.push(format!("Binary file load error: {message}"));
                    Payload::None
                }
            }
        }
        Some("graphql") => {
            let graphql = body.graphql.clone().unwrap_or_default();
            let variables: Value = graphql
                .variables
                .as_deref()
                .map(r)
                .and_then(|v| serde_json::from_str(&v).ok())
                .unwrap_or(Value::Null);
            let mut doc = json!({"query": r(&graphql.query)});
            if !variables.is_null() {
                doc["variables"] = variables;
            }
            Payload::Bytes {
                data: doc.to_string().into_bytes(),
                content_type: Some(String::from("application/json")),
            }
        }
        _ => Payload::None,
    })
}

/// `application/x-www-form-urlencoded` encoding of one key or value.
pub fn form_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(byte as char),
            b' ' => out.push_str("%20"),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// newman's SecureFS: with `--no-insecure-file-read`, a body file outside
    /// the working directory is a warning and the request goes without it.
    #[test]
    fn files_outside_the_working_dir_are_refused_only_when_asked() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
        let body: Body = serde_json::from_value(json!({"mode": "file", "file": {"src": "../../Cargo.toml"}})).unwrap();
        let inside: Body = serde_json::from_value(json!({"mode": "file", "file": {"src": "upload.txt"}})).unwrap();
        let r = |s: &str| s.to_owned();
        for (outside, expected) in [(true, true), (false, false)] {
            let files = Files { dir: &dir, outside };
            let mut warnings = Vec::new();
            let sent = payload(&body, None, &r, files, &mut warnings).unwrap();
            assert_eq!(
                matches!(sent, Payload::Bytes { .. }),
                expected,
                "outside allowed: {outside}"
            );
            assert_eq!(warnings.is_empty(), expected, "{warnings:?}");
            if !expected {
                assert_eq!(warnings, [format!("Binary file load error: {OUTSIDE_WORKING_DIR}")]);
            }
            let mut none = Vec::new();
            assert!(matches!(
                payload(&inside, None, &r, files, &mut none).unwrap(),
                Payload::Bytes { .. }
            ));
            assert!(none.is_empty());
        }
    }

    fn url(value: Value) -> String {
        url_text(&serde_json::from_value(value).unwrap())
    }

    #[test]
    fn url_parts_win_over_raw() {
        assert_eq!(
            url(
                json!({"raw": "ignored", "protocol": "https", "host": ["api", "example", "test"], "port": "8443",
                "path": ["v1", ":id", "items"], "query": [{"key": "a", "value": "1"}, {"key": "b", "value": "2", "disabled": true}, {"key": "flag", "value": null}],
                "variable": [{"key": "id", "value": "42"}]})
            ),
            "https://api.example.test:8443/v1/42/items?a=1&flag"
        );
        assert_eq!(
            url(json!({"raw": "{{base}}/x/:id", "variable": [{"key": "id", "value": "7"}]})),
            "{{base}}/x/7"
        );
        assert_eq!(url(json!("{{base}}/plain")), "{{base}}/plain");
        assert_eq!(url(json!({"host": "{{base}}", "path": "/a/b"})), "{{base}}/a/b");
    }

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}

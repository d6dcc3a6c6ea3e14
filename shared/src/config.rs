//! Typed configuration from SSM Parameter Store.
//!
//! Every parameter under `/{app}/{stage}/{service}/` is read at init with
//! `GetParametersByPath` (recursive, decrypted, every page). The part of a
//! parameter's name after the prefix is its key; `/` nests (`limits/max` is
//! field `max` of field `limits`), `-` reads as `_`. Values are strings parsed
//! into the field's type: numbers, booleans, enums by variant name, and JSON for
//! lists and maps. An environment variable `CONFIG_<KEY>` (upper case, `__` for
//! `/`) overrides one key. A bad configuration fails with one error that lists
//! every missing and invalid key, and never shows a `SecureString` value.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::cache::Cached;
use crate::env;

/// Why configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Parameter Store could not be read.
    #[error("reading SSM parameters under {prefix}: {message}")]
    Ssm {
        /// The path that was read.
        prefix: String,
        /// The SDK's error, with its cause chain.
        message: String,
    },
    /// Keys are missing or do not parse.
    #[error("configuration under {prefix} is invalid: {}", Problems(problems))]
    Invalid {
        /// The path that was read.
        prefix: String,
        /// Every problem found, in field order.
        problems: Vec<Problem>,
    },
}

/// One missing or invalid key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key, `/`-separated for nested fields.
    pub key: String,
    /// What is wrong with it.
    pub kind: ProblemKind,
}

/// What is wrong with a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProblemKind {
    /// No parameter and no override sets it.
    Missing,
    /// Its value does not parse; the reason never quotes a secure value.
    Invalid {
        /// Where the value came from: the SSM parameter or environment variable.
        source: String,
        /// What was expected.
        reason: String,
    },
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            match &problem.kind {
                ProblemKind::Missing => write!(
                    f,
                    "missing key `{}` (set the parameter or {})",
                    problem.key,
                    override_var(&problem.key)
                )?,
                ProblemKind::Invalid { source, reason } => {
                    write!(f, "invalid key `{}` from {source}: {reason}", problem.key)?
                }
            }
        }
        Ok(())
    }
}

/// The environment variable that overrides `key`.
pub fn override_var(key: &str) -> String {
    format!(
        "{}{}",
        env::CONFIG_OVERRIDE_PREFIX,
        key.replace('/', "__").to_uppercase()
    )
}

/// One raw value and where it came from.
#[derive(Debug, Clone)]
pub struct RawValue {
    /// The value as stored.
    pub value: String,
    /// The SSM parameter name or environment variable it came from.
    pub source: String,
    /// A `SecureString`: its value is never quoted in errors.
    pub secure: bool,
}

/// Reads every parameter under `prefix` (every page, decrypted) and applies
/// the `CONFIG_*` environment overrides.
pub async fn fetch_raw(ssm: &aws_sdk_ssm::Client, prefix: &str) -> Result<BTreeMap<String, RawValue>, ConfigError> {
    let mut raw = BTreeMap::new();
    let mut pages = ssm
        .get_parameters_by_path()
        .path(prefix.trim_end_matches('/'))
        .recursive(true)
        .with_decryption(true)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|err| ConfigError::Ssm {
            prefix: prefix.to_owned(),
            message: aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
        })?;
        for parameter in page.parameters.unwrap_or_default() {
            let (Some(name), Some(value)) = (parameter.name, parameter.value) else {
                continue;
            };
            let Some(key) = name.strip_prefix(prefix) else { continue };
            let secure = parameter.r#type == Some(aws_sdk_ssm::types::ParameterType::SecureString);
            raw.insert(
                normalize(key),
                RawValue {
                    value,
                    source: name.clone(),
                    secure,
                },
            );
        }
    }
    raw.extend(overrides());
    Ok(raw)
}

/// The `CONFIG_*` environment overrides alone: what a caller that must
/// start without SSM (the traffic hooks) still honours.
pub fn overrides() -> BTreeMap<String, RawValue> {
    std::env::vars()
        .filter_map(|(var, value)| {
            let key = normalize(
                &var.strip_prefix(env::CONFIG_OVERRIDE_PREFIX)?
                    .to_lowercase()
                    .replace("__", "/"),
            );
            Some((
                key,
                RawValue {
                    value,
                    source: var,
                    secure: false,
                },
            ))
        })
        .collect()
}

fn normalize(key: &str) -> String {
    key.trim_matches('/').replace('-', "_")
}

/// Loads `T` from the parameters under `prefix` (see the module docs).
pub async fn load<T: DeserializeOwned>(ssm: &aws_sdk_ssm::Client, prefix: &str) -> Result<T, ConfigError> {
    let raw = fetch_raw(ssm, prefix).await?;
    from_raw(prefix, &raw)
}

/// Builds `T` from raw key/value pairs, collecting every problem before failing.
pub fn from_raw<T: DeserializeOwned>(prefix: &str, raw: &BTreeMap<String, RawValue>) -> Result<T, ConfigError> {
    let mut tree = Node::Branch(BTreeMap::new());
    let mut problems = Vec::new();
    for (key, value) in raw {
        if let Err(problem) = tree.insert(key, Node::Leaf(value.clone())) {
            problems.push(problem);
        }
    }
    // Each pass either succeeds or names one more bad key, which is then
    // replaced by a placeholder so the next pass can look past it.
    for _ in 0..=raw.len() + 64 {
        match T::deserialize(NodeDe {
            node: &tree,
            path: String::new(),
        }) {
            Ok(value) if problems.is_empty() => return Ok(value),
            Ok(_) => break,
            Err(err) => {
                let key = err.key.clone();
                if problems.iter().any(|p: &Problem| p.key == key) {
                    break;
                }
                let kind = match err.kind {
                    DeErrorKind::Missing => ProblemKind::Missing,
                    DeErrorKind::Invalid(reason) => {
                        let (source, secure) = match tree.get(&key) {
                            Some(Node::Leaf(raw)) => (raw.source.clone(), raw.secure),
                            _ => (String::from("a nested value"), false),
                        };
                        let reason = if secure {
                            String::from("does not parse (SecureString value hidden)")
                        } else {
                            reason
                        };
                        ProblemKind::Invalid { source, reason }
                    }
                };
                problems.push(Problem { key: key.clone(), kind });
                if tree.insert(&key, Node::Placeholder).is_err() {
                    break;
                }
            }
        }
    }
    Err(ConfigError::Invalid {
        prefix: prefix.to_owned(),
        problems,
    })
}

/// Configuration that is reloaded after `max_age`, keeping the last good value
/// when a reload fails; one that could not be loaded at init is loaded on
/// first use and re-read on every use until it loads.
pub struct Refreshing<T> {
    ssm: aws_sdk_ssm::Client,
    prefix: String,
    cache: Cached<T>,
}

impl<T: DeserializeOwned> Refreshing<T> {
    /// Wraps a value loaded at init so that [`Refreshing::get`] reloads it once it is older than `max_age`.
    pub fn new(ssm: aws_sdk_ssm::Client, prefix: String, initial: T, max_age: Duration) -> Self {
        Self {
            ssm,
            prefix,
            cache: Cached::with_value(initial, Some(max_age)),
        }
    }

    /// Configuration not loaded yet (init could not read it): the first
    /// [`Refreshing::get`] loads it, and each call retries until one succeeds.
    pub fn unloaded(ssm: aws_sdk_ssm::Client, prefix: String, max_age: Duration) -> Self {
        Self {
            ssm,
            prefix,
            cache: Cached::new(Some(max_age)),
        }
    }

    /// The current configuration. A failed reload logs a warning and keeps
    /// the values loaded before (trying again after a while); the error is
    /// returned only when nothing was ever loaded.
    pub async fn get(&self) -> Result<Arc<T>, ConfigError> {
        self.read(load::<T>(&self.ssm, &self.prefix)).await
    }

    /// [`Refreshing::get`] with a read that takes longer than `limit`
    /// counted as failed (so the values loaded before are kept).
    pub async fn get_within(&self, limit: Duration) -> Result<Arc<T>, ConfigError> {
        let load = async {
            tokio::time::timeout(limit, load::<T>(&self.ssm, &self.prefix))
                .await
                .unwrap_or_else(|_| {
                    Err(ConfigError::Ssm {
                        prefix: self.prefix.clone(),
                        message: format!("no answer within {} ms", limit.as_millis()),
                    })
                })
        };
        self.read(load).await
    }

    async fn read(&self, load: impl Future<Output = Result<T, ConfigError>>) -> Result<Arc<T>, ConfigError> {
        let warn = |err: &ConfigError| tracing::warn!(error = %err, "config reload failed, keeping the loaded values");
        self.cache.get(|| load, |_| true, warn).await
    }
}

/// The parameters as a tree of keys.
#[derive(Debug)]
enum Node {
    Leaf(RawValue),
    Branch(BTreeMap<String, Node>),
    /// Stands in for a missing or invalid key so that later keys are checked too.
    Placeholder,
}

impl Node {
    fn insert(&mut self, key: &str, node: Node) -> Result<(), Problem> {
        let (head, rest) = match key.split_once('/') {
            Some((head, rest)) => (head, Some(rest)),
            None => (key, None),
        };
        let conflict = || Problem {
            key: key.to_owned(),
            kind: ProblemKind::Invalid {
                source: String::from("parameter names"),
                reason: String::from("is both a value and a folder of values"),
            },
        };
        if let Node::Placeholder = self {
            *self = Node::Branch(BTreeMap::new());
        }
        let Node::Branch(children) = self else {
            return Err(conflict());
        };
        match rest {
            None => {
                if matches!(children.get(head), Some(Node::Branch(_))) && !matches!(node, Node::Placeholder) {
                    return Err(conflict());
                }
                children.insert(head.to_owned(), node);
                Ok(())
            }
            Some(rest) => children
                .entry(head.to_owned())
                .or_insert_with(|| Node::Branch(BTreeMap::new()))
                .insert(rest, node)
                .map_err(|mut p| {
                    p.key = format!("{head}/{}", p.key);
                    p
                }),
        }
    }

    fn get(&self, key: &str) -> Option<&Node> {
        key.split('/').try_fold(self, |node, part| match node {
            Node::Branch(children) => children.get(part),
            _ => None,
        })
    }
}

#[derive(Debug)]
enum DeErrorKind {
    Missing,
    Invalid(String),
}

/// A deserialization error tied to the key it is about.
#[derive(Debug)]
struct DeError {
    key: String,
    kind: DeErrorKind,
    /// Set once the error knows its full key; errors raised by serde's derive
    /// get it from the node that was being read.
    located: bool,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            DeErrorKind::Missing => write!(f, "missing key `{}`", self.key),
            DeErrorKind::Invalid(reason) => write!(f, "invalid key `{}`: {reason}", self.key),
        }
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<M: fmt::Display>(msg: M) -> Self {
        Self {
            key: String::new(),
            kind: DeErrorKind::Invalid(msg.to_string()),
            located: false,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Self {
            key: field.to_owned(),
            kind: DeErrorKind::Missing,
            located: false,
        }
    }
}

const OBJECT: &str = "a JSON object or a folder of parameters";

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}/{key}")
    }
}

/// Deserializes one node; `path` is its key.
struct NodeDe<'a> {
    node: &'a Node,
    path: String,
}

impl NodeDe<'_> {
    /// Gives errors raised while reading this node their key.
    fn locate(&self, mut err: DeError, is_branch: bool) -> DeError {
        if !err.located {
            err.key = match err.kind {
                DeErrorKind::Missing if is_branch => join(&self.path, &err.key),
                _ => self.path.clone(),
            };
            err.located = true;
        }
        err
    }

    fn leaf_error(&self, expected: &str, value: &str) -> DeError {
        DeError {
            key: self.path.clone(),
            kind: DeErrorKind::Invalid(format!("expected {expected}, got {value:?}")),
            located: true,
        }
    }
}

macro_rules! parse_leaf {
    ($($method:ident => $visit:ident : $ty:ty, $expected:literal;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            match self.node {
                Node::Leaf(raw) => match raw.value.trim().parse::<$ty>() {
                    Ok(v) => visitor.$visit(v).map_err(|e| self.locate(e, false)),
                    Err(_) => Err(self.leaf_error($expected, &raw.value)),
                },
                Node::Placeholder => visitor.$visit(<$ty>::default()).map_err(|e| self.locate(e, false)),
                Node::Branch(_) => Err(self.leaf_error($expected, "a folder of parameters")),
            }
        }
    )*};
}

impl<'de> de::Deserializer<'de> for NodeDe<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node {
            Node::Leaf(raw) => visitor.visit_str(&raw.value).map_err(|e| self.locate(e, false)),
            Node::Placeholder => visitor.visit_unit().map_err(|e| self.locate(e, false)),
            Node::Branch(children) => self.visit_branch(children, visitor),
        }
    }

    parse_leaf! {
        deserialize_bool => visit_bool: bool, "true or false";
        deserialize_i8 => visit_i8: i8, "an integer (i8)";
        deserialize_i16 => visit_i16: i16, "an integer (i16)";
        deserialize_i32 => visit_i32: i32, "an integer (i32)";
        deserialize_i64 => visit_i64: i64, "an integer (i64)";
        deserialize_i128 => visit_i128: i128, "an integer (i128)";
        deserialize_u8 => visit_u8: u8, "a non-negative integer (u8)";
        deserialize_u16 => visit_u16: u16, "a non-negative integer (u16)";
        deserialize_u32 => visit_u32: u32, "a non-negative integer (u32)";
        deserialize_u64 => visit_u64: u64, "a non-negative integer (u64)";
        deserialize_u128 => visit_u128: u128, "a non-negative integer (u128)";
        deserialize_f32 => visit_f32: f32, "a number";
        deserialize_f64 => visit_f64: f64, "a number";
        deserialize_char => visit_char: char, "one character";
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node {
            Node::Leaf(raw) => visitor.visit_str(&raw.value).map_err(|e| self.locate(e, false)),
            Node::Placeholder => visitor.visit_str("").map_err(|e| self.locate(e, false)),
            Node::Branch(_) => Err(self.leaf_error("a string", "a folder of parameters")),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node {
            Node::Placeholder => visitor.visit_none(),
            _ => {
                let path = self.path.clone();
                visitor.visit_some(self).map_err(|e| {
                    NodeDe {
                        node: &Node::Placeholder,
                        path,
                    }
                    .locate(e, false)
                })
            }
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value, DeError> {
        let path = self.path.clone();
        visitor.visit_newtype_struct(self).map_err(|e| {
            NodeDe {
                node: &Node::Placeholder,
                path,
            }
            .locate(e, false)
        })
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.json(
            serde_json::json!([]),
            "a JSON list",
            |v, vis| v.deserialize_seq(vis),
            visitor,
        )
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DeError> {
        self.json(
            serde_json::json!([]),
            "a JSON list",
            |v, vis| v.deserialize_tuple(len, vis),
            visitor,
        )
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.json(
            serde_json::json!([]),
            "a JSON list",
            |v, vis| v.deserialize_tuple_struct(name, len, vis),
            visitor,
        )
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.node {
            Node::Branch(children) => self.visit_branch(children, visitor),
            _ => self.json(serde_json::json!({}), OBJECT, |v, vis| v.deserialize_map(vis), visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.node {
            Node::Branch(children) => self.visit_branch(children, visitor),
            // A placeholder struct reads every field as a placeholder, so one
            // missing folder is reported once rather than field by field.
            Node::Placeholder => {
                let children = fields.iter().map(|f| ((*f).to_owned(), Node::Placeholder)).collect();
                self.visit_branch(&children, visitor)
            }
            Node::Leaf(_) => self.json(
                serde_json::json!({}),
                OBJECT,
                |v, vis| v.deserialize_struct(name, fields, vis),
                visitor,
            ),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let variant = match self.node {
            Node::Leaf(raw) => raw.value.trim().to_owned(),
            Node::Placeholder => variants.first().copied().unwrap_or_default().to_owned(),
            Node::Branch(_) => return Err(self.leaf_error("one of the variant names", "a folder of parameters")),
        };
        let de: de::value::StringDeserializer<DeError> = variant.into_deserializer();
        visitor.visit_enum(de).map_err(|e| self.locate(e, false))
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

impl NodeDe<'_> {
    fn visit_branch<'de, V: Visitor<'de>>(
        &self,
        children: &BTreeMap<String, Node>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let access = BranchAccess {
            iter: children.iter(),
            current: None,
            path: &self.path,
        };
        visitor.visit_map(access).map_err(|e| self.locate(e, true))
    }

    /// Reads a leaf holding JSON (lists and maps stored in one parameter);
    /// a placeholder reads as `empty`.
    fn json<'de, V: Visitor<'de>>(
        &self,
        empty: serde_json::Value,
        expected: &str,
        read: impl FnOnce(serde_json::Value, V) -> Result<V::Value, serde_json::Error>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let (value, shown) = match self.node {
            Node::Leaf(raw) => match serde_json::from_str(&raw.value) {
                Ok(value) => (value, raw.value.as_str()),
                Err(err) => return Err(self.leaf_error(&format!("{expected} ({err})"), &raw.value)),
            },
            Node::Placeholder => (empty, "nothing"),
            Node::Branch(_) => return Err(self.leaf_error(expected, "a folder of parameters")),
        };
        read(value, visitor).map_err(|err| self.leaf_error(&format!("{expected} ({err})"), shown))
    }
}

struct BranchAccess<'a, 'p> {
    iter: std::collections::btree_map::Iter<'a, String, Node>,
    current: Option<(&'a String, &'a Node)>,
    path: &'p str,
}

impl<'de> MapAccess<'de> for BranchAccess<'_, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        self.current = self.iter.next();
        match self.current {
            Some((key, _)) => seed
                .deserialize(key.as_str().into_deserializer())
                .map(Some)
                .map_err(|e: DeError| {
                    NodeDe {
                        node: &Node::Placeholder,
                        path: join(self.path, key),
                    }
                    .locate(e, false)
                }),
            None => Ok(None),
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let (key, node) = self.current.take().expect("serde asks for a value after its key");
        let de = NodeDe {
            node,
            path: join(self.path, key),
        };
        let path = de.path.clone();
        seed.deserialize(de).map_err(|e| {
            NodeDe {
                node: &Node::Placeholder,
                path,
            }
            .locate(e, false)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "snake_case")]
    enum Mode {
        Strict,
        Lenient,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Limits {
        max_debit: u64,
        daily: Option<u64>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Config {
        table_name: String,
        page_size: u32,
        enabled: bool,
        mode: Mode,
        currencies: Vec<String>,
        limits: Limits,
        #[serde(default)]
        optional: Option<String>,
    }

    fn raw(pairs: &[(&str, &str)]) -> BTreeMap<String, RawValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                let secure = k.starts_with("secure");
                let value = RawValue {
                    value: (*v).to_owned(),
                    source: format!("/app/dev/svc/{k}"),
                    secure,
                };
                ((*k).to_owned(), value)
            })
            .collect()
    }

    fn check(pairs: &[(&str, &str)], expected: &[(&str, Option<&str>)]) {
        let err = from_raw::<Config>("/app/dev/svc/", &raw(pairs)).unwrap_err();
        let ConfigError::Invalid { problems, .. } = &err else {
            panic!("{err}")
        };
        let got: Vec<(String, Option<String>)> = problems
            .iter()
            .map(|p| match &p.kind {
                ProblemKind::Missing => (p.key.clone(), None),
                ProblemKind::Invalid { reason, .. } => (p.key.clone(), Some(reason.clone())),
            })
            .collect();
        let want: Vec<(String, Option<String>)> = expected
            .iter()
            .map(|(k, r)| ((*k).to_owned(), r.map(str::to_owned)))
            .collect();
        assert_eq!(got, want, "{err}");
    }

    const GOOD: &[(&str, &str)] = &[
        ("table_name", "fintech-dev-accounts"),
        ("page_size", "50"),
        ("enabled", "true"),
        ("mode", "strict"),
        ("currencies", r#"["EUR","USD"]"#),
        ("limits/max_debit", "1000"),
    ];

    #[test]
    fn parses_typed_values_and_nested_keys() {
        let config: Config = from_raw("/p/", &raw(GOOD)).unwrap();
        assert_eq!(config.page_size, 50);
        assert!(config.enabled);
        assert_eq!(config.mode, Mode::Strict);
        assert_eq!(config.currencies, vec!["EUR", "USD"]);
        assert_eq!(
            config.limits,
            Limits {
                max_debit: 1000,
                daily: None
            }
        );
        assert_eq!(config.optional, None);
    }

    #[test]
    fn lists_every_missing_key() {
        check(
            &[("page_size", "5"), ("enabled", "true"), ("currencies", "[]")],
            &[("table_name", None), ("mode", None), ("limits", None)],
        );
    }

    #[test]
    fn lists_every_invalid_key_with_what_was_expected() {
        check(
            &[
                ("table_name", "t"),
                ("page_size", "-3"),
                ("enabled", "yes"),
                ("mode", "wild"),
                ("currencies", "EUR"),
                ("limits/max_debit", "1.5"),
            ],
            &[
                (
                    "currencies",
                    Some("expected a JSON list (expected value at line 1 column 1), got \"EUR\""),
                ),
                ("enabled", Some("expected true or false, got \"yes\"")),
                (
                    "limits/max_debit",
                    Some("expected a non-negative integer (u64), got \"1.5\""),
                ),
                ("mode", Some("unknown variant `wild`, expected `strict` or `lenient`")),
                ("page_size", Some("expected a non-negative integer (u32), got \"-3\"")),
            ],
        );
    }

    #[test]
    fn mixes_missing_and_invalid_and_names_the_override_variable() {
        let pairs = &[
            ("page_size", "x"),
            ("enabled", "true"),
            ("mode", "lenient"),
            ("currencies", "[]"),
            ("limits/max_debit", "1"),
        ];
        check(
            pairs,
            &[
                ("page_size", Some("expected a non-negative integer (u32), got \"x\"")),
                ("table_name", None),
            ],
        );
        let err = from_raw::<Config>("/app/dev/svc/", &raw(pairs))
            .unwrap_err()
            .to_string();
        assert!(err.contains("CONFIG_TABLE_NAME"), "{err}");
        assert!(err.contains("/app/dev/svc/page_size"), "{err}");
    }

    #[test]
    fn never_quotes_a_secure_value() {
        #[derive(Debug, Deserialize)]
        struct WithSecure {
            #[allow(dead_code, reason = "only its parse error matters here")]
            secure_port: u16,
        }
        let err = from_raw::<WithSecure>("/p/", &raw(&[("secure_port", "canary-s3cr3t")]))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("canary-s3cr3t"), "{err}");
        assert!(err.contains("SecureString value hidden"), "{err}");
    }

    #[test]
    fn a_value_that_is_also_a_folder_is_reported() {
        let mut pairs = GOOD.to_vec();
        pairs.push(("limits", "5"));
        let err = from_raw::<Config>("/p/", &raw(&pairs)).unwrap_err().to_string();
        assert!(err.contains("both a value and a folder"), "{err}");
    }

    #[test]
    fn override_variable_names() {
        assert_eq!(override_var("table_name"), "CONFIG_TABLE_NAME");
        assert_eq!(override_var("limits/max_debit"), "CONFIG_LIMITS__MAX_DEBIT");
    }
}

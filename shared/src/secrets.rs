//! Typed Secrets Manager values that never show themselves.
//!
//! A secret's `SecretString` is JSON parsed into `T` and wrapped in
//! [`Secret`], whose `Debug` and `Display` print `[REDACTED]`. Values are
//! cached for a TTL; when a refresh fails transiently (timeout, throttling,
//! 5xx) the stale value is served and a warning logged. Errors name the secret
//! and the field that failed to parse, never a value.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::cache::Cached;

/// A value that must not be printed: `Debug` and `Display` show `[REDACTED]`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// The secret value itself; keep what you take from it out of logs.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Secret<T> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// Why a secret could not be read. No variant carries the secret's value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// Secrets Manager answered with an error or could not be reached.
    #[error("reading secret {id}: {message}")]
    Fetch {
        /// The secret's name or ARN.
        id: String,
        /// The SDK's error with its causes (AWS never echoes the value).
        message: String,
        /// Timeouts, throttling and 5xx: worth serving a stale value for.
        transient: bool,
    },
    /// The secret has no `SecretString` (a binary secret).
    #[error("secret {id} has no SecretString (binary secrets are not supported)")]
    NotString {
        /// The secret's name or ARN.
        id: String,
    },
    /// The `SecretString` does not match the expected shape.
    #[error("secret {id} does not match the expected shape at `{path}`: {category}")]
    Shape {
        /// The secret's name or ARN.
        id: String,
        /// The JSON path of the failing field (`.` for the whole value).
        path: String,
        /// The kind of mismatch, without the value: `syntax`, `data`, `eof`.
        category: &'static str,
    },
}

impl SecretError {
    /// Whether a stale value may be served instead of this error.
    pub fn is_transient(&self) -> bool {
        matches!(self, SecretError::Fetch { transient: true, .. })
    }
}

/// Parses a `SecretString` into `T`; errors name the path, never the value.
pub fn parse<T: DeserializeOwned>(id: &str, secret_string: &str) -> Result<Secret<T>, SecretError> {
    let de = &mut serde_json::Deserializer::from_str(secret_string);
    serde_path_to_error::deserialize(de).map(Secret).map_err(|err| {
        let category = match err.inner().classify() {
            serde_json::error::Category::Io => "io",
            serde_json::error::Category::Syntax => "not valid JSON",
            serde_json::error::Category::Data => "wrong type or missing field",
            serde_json::error::Category::Eof => "truncated JSON",
        };
        SecretError::Shape {
            id: id.to_owned(),
            path: err.path().to_string(),
            category,
        }
    })
}

/// Reads one secret's current value.
pub async fn fetch<T: DeserializeOwned>(
    client: &aws_sdk_secretsmanager::Client,
    id: &str,
) -> Result<Secret<T>, SecretError> {
    let output = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|err| SecretError::Fetch {
            id: id.to_owned(),
            transient: crate::aws::is_transient(&err),
            message: aws_smithy_types::error::display::DisplayErrorContext(err).to_string(),
        })?;
    let string = output
        .secret_string
        .ok_or_else(|| SecretError::NotString { id: id.to_owned() })?;
    parse(id, &string)
}

/// One secret, cached for a TTL and served stale on transient errors.
pub struct SecretStore<T> {
    client: aws_sdk_secretsmanager::Client,
    id: String,
    cache: Cached<Secret<T>>,
}

impl<T: DeserializeOwned> SecretStore<T> {
    /// A store that fetches on first use.
    pub fn new(client: aws_sdk_secretsmanager::Client, id: impl Into<String>, ttl: Duration) -> Self {
        Self {
            client,
            id: id.into(),
            cache: Cached::new(Some(ttl)),
        }
    }

    /// A store holding a value fetched at init (see [`fetch`]), so the first
    /// request does not wait on Secrets Manager.
    pub fn with_value(
        client: aws_sdk_secretsmanager::Client,
        id: impl Into<String>,
        ttl: Duration,
        value: Secret<T>,
    ) -> Self {
        Self {
            client,
            id: id.into(),
            cache: Cached::with_value(value, Some(ttl)),
        }
    }

    /// The secret's name or ARN.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current value: cached while younger than the TTL, refetched after,
    /// and the stale value when the refetch fails transiently.
    pub async fn get(&self) -> Result<Arc<Secret<T>>, SecretError> {
        self.read(fetch(&self.client, &self.id)).await
    }

    /// [`SecretStore::get`] with a read that takes longer than `limit`
    /// counted as a transient failure (so a cached value is served).
    pub async fn get_within(&self, limit: Duration) -> Result<Arc<Secret<T>>, SecretError> {
        let read = async {
            tokio::time::timeout(limit, fetch(&self.client, &self.id))
                .await
                .unwrap_or_else(|_| {
                    Err(SecretError::Fetch {
                        id: self.id.clone(),
                        message: format!("no answer from Secrets Manager within {} ms", limit.as_millis()),
                        transient: true,
                    })
                })
        };
        self.read(read).await
    }

    async fn read(
        &self,
        read: impl Future<Output = Result<Secret<T>, SecretError>>,
    ) -> Result<Arc<Secret<T>>, SecretError> {
        let warn = |err: &SecretError| tracing::warn!(secret = %self.id, error = %err, "secret refresh failed, serving the cached value");
        self.cache.get(|| read, SecretError::is_transient, warn).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct Key {
        api_key: String,
    }

    #[test]
    fn debug_and_display_hide_the_value() {
        let secret = Secret::new(String::from("hunter2"));
        assert_eq!(format!("{secret:?}"), "Secret([REDACTED])");
        assert_eq!(format!("{secret}"), "[REDACTED]");
        assert_eq!(format!("{:?}", Some(&secret)), "Some(Secret([REDACTED]))");
    }

    #[test]
    fn shape_errors_name_the_field_not_the_value() {
        let err = parse::<Key>("svc", r#"{"api_key": 12345678}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("`api_key`"), "{text}");
        assert!(!text.contains("12345678"), "{text}");
        let err = parse::<Key>("svc", "canary-not-json-value").unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
    }

    #[test]
    fn parses_the_expected_shape() {
        let key = parse::<Key>("svc", r#"{"api_key": "k"}"#).unwrap();
        assert_eq!(key.expose().api_key, "k");
    }
}

//! The crate every service shares: the Powertools of Rust.
//!
//! - [`config`]: one typed struct loaded from SSM Parameter Store under
//!   `/{app}/{stage}/{service}/`, with environment overrides and one error that
//!   lists every missing or invalid key.
//! - [`secrets`]: typed Secrets Manager values, cached with a TTL, stale on a
//!   transient error, never printed.
//! - [`telemetry`]: Powertools-style JSON log lines with the invocation's ids.
//! - [`metrics`]: CloudWatch Embedded Metric Format, flushed once per invocation.
//! - [`http`]: RFC 9457 problem responses, a strict JSON extractor, request ids,
//!   `GET /health`, and the middleware that ties telemetry to each request.
//! - [`auth`]: verified bearer tokens (JWT against the issuer's JWKS), the
//!   service key, and each route's access policy in one place.
//! - [`idempotency`]: idempotent handlers with payment APIs' semantics, persisted in DynamoDB.
//! - [`dynamo`]: what every DynamoDB store repeats (errors naming the
//!   operation and attribute, timestamps).
//! - [`runtime`]: one call that serves a router on Lambda or on a local port.
//!
//! A service's `main` is wiring only: config, the service key and the
//! issuer's signing keys fetched at once, every route added with who may
//! use it:
//!
//! ```no_run
//! use std::sync::Arc;
//!
//! use axum::routing::get;
//! use shared::auth::{Access, Gate, IdentitySettings, Routes, Verifier};
//! use shared::secrets::{SecretStore, ServiceKey};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     table_name: String,
//! }
//!
//! const SERVICE: shared::ServiceInfo = shared::ServiceInfo::new("accounts", env!("CARGO_PKG_VERSION"));
//!
//! # async fn example() -> Result<(), shared::runtime::StartError> {
//! shared::runtime::start(&SERVICE, |sdk, deployment| async move {
//!     let identity = IdentitySettings::from_env()?;
//!     let (loaded, verifier) = tokio::join!(
//!         shared::bootstrap::load::<Config, ServiceKey>(&sdk, &deployment, SERVICE.name, shared::secrets::SERVICE_KEY_SECRET),
//!         Verifier::load(identity, reqwest::Client::new())
//!     );
//!     let loaded = loaded?;
//!     # let _ = &loaded.config.table_name;
//!     let key = Arc::new(SecretStore::with_value(
//!         loaded.secrets,
//!         loaded.secret_id,
//!         std::time::Duration::from_secs(300),
//!         loaded.secret,
//!     ));
//!     let routes = Routes::new(Gate::new(Arc::new(verifier), key))
//!         .route("/accounts/{id}", get(|| async { "an account" }), Access::Scope("accounts/read"));
//!     Ok::<_, shared::bootstrap::InitError>((shared::http::service(&SERVICE, routes), loaded.aws_wait))
//! })
//! .await
//! # }
//! ```

pub mod auth;
pub mod aws;
pub mod bootstrap;
mod cache;
pub mod config;
pub mod dynamo;
pub mod env;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod money;
pub mod naming;
pub mod runtime;
pub mod secrets;
pub mod telemetry;
pub mod xray;

/// Who is running: the service's name (its package name, which is also its
/// Lambda function name) and the version it was built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceInfo {
    /// The service's package name, e.g. `accounts`.
    pub name: &'static str,
    /// The crate version the binary was built from (`CARGO_PKG_VERSION`).
    pub version: &'static str,
}

impl ServiceInfo {
    /// Describes a service; pass `env!("CARGO_PKG_NAME")` and `env!("CARGO_PKG_VERSION")`.
    pub const fn new(name: &'static str, version: &'static str) -> Self {
        Self { name, version }
    }
}

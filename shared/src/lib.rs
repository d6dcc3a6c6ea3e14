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
//! - [`auth`]: verified bearer tokens (JWT against the issuer's JWKS) of
//!   customers and of the deployment's services, and each route's access
//!   policy in one place.
//! - [`credentials`]: a service's own machine-client tokens (OAuth 2.0
//!   client credentials) for calling another service.
//! - [`bootstrap`]: init's concurrent fetch of configuration, secret and
//!   signing keys.
//! - [`idempotency`]: idempotent handlers with payment APIs' semantics, persisted in DynamoDB.
//! - [`dynamo`]: what every DynamoDB store repeats (errors naming the
//!   operation and attribute, timestamps).
//! - [`synthetic`]: the records the deployment's own checks write, marked,
//!   expiring, and kept apart from customers'.
//! - [`runtime`]: one call that serves a router on Lambda or on a local port.
//!
//! A service's `main` is wiring only: config and the issuer's signing keys
//! fetched at once, every route added with who may use it:
//!
//! ```no_run
//! use axum::routing::get;
//! use shared::auth::{Access, Gate, Routes};
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
//!     let identity = shared::auth::IdentitySettings::from_env()?;
//!     let loaded = shared::bootstrap::load::<Config>(&sdk, &deployment, SERVICE.name, identity).await?;
//!     # let _ = &loaded.config.table_name;
//!     let routes = Routes::new(Gate::new(loaded.verifier, &SERVICE))
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
pub mod credentials;
pub mod dynamo;
pub mod env;
pub mod http;
pub mod idempotency;
pub mod metrics;
pub mod money;
pub mod naming;
pub mod runtime;
pub mod secrets;
pub mod synthetic;
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

//! Everything that stands in for AWS on one machine, for tests, benches,
//! `cargo xtask dev` and `cargo xtask demo` alike.
//!
//! - [`Moto`]: the `moto_server` process (SSM, Secrets Manager, DynamoDB) on
//!   127.0.0.1, started on a free port and stopped on drop.
//! - [`registry`]: the services and what they need, read from each service's
//!   `[package.metadata.service]` table.
//! - [`seed`]: creates every service's tables, parameters and secrets.
//! - [`identity`]: the stage's user pool (resource servers, the customers'
//!   and the hooks' app clients) and signed-in customers.
//! - [`runtime_api`]: a minimal Lambda Runtime API that runs a real function
//!   binary, for cold-start measurements.
//! - [`faults`]: a proxy that makes a dependency stall, fail, vanish or
//!   throttle, in front of a service or of DynamoDB.
//! - [`process`]: function binaries on local ports, killed and restarted as
//!   Lambda replaces sandboxes.
//! - [`lambda`]: a Lambda endpoint (Invoke, weighted aliases, faults on a
//!   version) in front of real function binaries.
//! - [`codedeploy`]: a CodeDeploy endpoint whose engine runs Lambda
//!   blue/green deployments: hooks, traffic shifts, stops and rollbacks.
//! - [`apigateway`]: a REST API stage in front of a Lambda alias.
//! - [`cloudwatch`]: the rollback alarms' one definition, resolved per service and stage.
//!
//! Processes reach the stack only through the SDK's own variables
//! ([`Moto::env`]), so nothing in the services knows it is local.

pub mod apigateway;
pub mod cloudwatch;
pub mod codedeploy;
pub mod echo;
pub mod faults;
pub mod identity;
pub mod lambda;
pub mod moto;
pub mod oidc;
pub mod process;
pub mod registry;
pub mod runtime_api;
pub mod seed;
pub mod tables;
pub mod xray;

pub use moto::Moto;

use std::path::PathBuf;

/// Why the local stack could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `moto_server` could not be started or never became ready.
    #[error("moto: {0}")]
    Moto(String),
    /// `cargo metadata` failed or a service's registry entry is malformed.
    #[error("service registry: {0}")]
    Registry(String),
    /// An AWS call to the local stack failed.
    #[error("seeding {what}: {message}")]
    Seed {
        /// The resource being created.
        what: String,
        /// The SDK error.
        message: String,
    },
    /// A function process could not be built, started or reached.
    #[error("process: {0}")]
    Process(String),
    /// Local I/O.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Serves `app` on a free loopback port until the returned task is aborted;
/// returns the address.
pub async fn serve_router(app: axum::Router) -> Result<(std::net::SocketAddr, tokio::task::JoinHandle<()>), Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((address, server))
}

/// Gives a stand-in's response the `x-amzn-RequestId` header (a fresh UUID)
/// that AWS's JSON and REST-JSON services send with every answer; use with
/// `axum::middleware::map_response`.
pub async fn with_request_id(mut response: axum::response::Response) -> axum::response::Response {
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(value) = axum::http::HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-amzn-requestid", value);
    }
    response
}

/// An SDK configuration for a local stand-in at `endpoint`: the local
/// region and static local credentials.
pub async fn sdk_config_at(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new(moto::REGION))
        .credentials_provider(aws_sdk_ssm::config::Credentials::new(
            "local",
            "local",
            None,
            None,
            "local-aws",
        ))
        .load()
        .await
}

/// The workspace root (this crate lives one level below it).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("local-aws sits in the workspace")
        .to_path_buf()
}

/// A name no other test run uses, for tables, parameter paths and secrets.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// The local stack's endpoint in a test process started by `cargo xtask
/// test` (`AWS_ENDPOINT_URL`; [`test_sdk_config`] checks it is loopback).
pub fn test_endpoint() -> String {
    std::env::var("AWS_ENDPOINT_URL").unwrap_or_default()
}

/// The SDK configuration of a test process started by `cargo xtask test`.
///
/// Panics with instructions when the stack's variables are missing or point
/// anywhere but loopback, so a test can never reach real AWS.
pub async fn test_sdk_config() -> aws_config::SdkConfig {
    let endpoint = std::env::var("AWS_ENDPOINT_URL").unwrap_or_default();
    assert!(
        endpoint.starts_with("http://127.0.0.1:"),
        "AWS_ENDPOINT_URL={endpoint:?}: integration tests need the local stack; run them with `cargo xtask test`"
    );
    shared::aws::sdk_config().await
}

//! {{project-name | title_case}}: create a record (idempotent by
//! `Idempotency-Key`) and read it back. Money is integer minor units.
//! Owned by {{team}}.
//!
//! `main.rs` wires [`init`] and [`app`] to Lambda; everything else is here:
//! [`domain`] (rules, no AWS), [`store`] (DynamoDB), [`http`] (routes and the
//! translation between HTTP and the domain).

pub mod domain;
pub mod http;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use shared::ServiceInfo;
use shared::auth::{Gate, IdentitySettings, Verifier};
use shared::bootstrap::InitError;
use shared::idempotency::{Idempotency, IdempotencyConfig};
use shared::naming::Deployment;

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

/// Configuration, from SSM under `/{app}/{stage}/{{project-name}}/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The records table (partition key `{{table_key}}`).
    pub table_name: String,
    /// The idempotency table (partition key `id`, TTL on `expiration`).
    pub idempotency_table: String,
    /// The largest `limit_minor` a record may have.
    pub max_amount_minor: u64,
    /// How long a response is replayed for its Idempotency-Key.
    pub idempotency_ttl_seconds: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The records table.
    pub store: store::Store,
    /// The idempotency records.
    pub idempotency: Arc<Idempotency>,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
    /// Checks the tokens of customers and of the deployment's services.
    pub verifier: Arc<Verifier>,
}

/// The router of this service, every route behind its access policy
/// (tokens checked by the state's verifier), wrapped with the shared edge
/// (health, problem fallbacks, request ids, logs and metrics).
pub fn app(state: AppState) -> axum::Router {
    let gate = Gate::new(state.verifier.clone(), &SERVICE);
    shared::http::service(&SERVICE, http::routes(state, gate))
}

/// Loads config and the issuer's signing keys concurrently and builds the
/// state; also returns how long that waited on AWS and the issuer.
pub async fn init(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    identity: IdentitySettings,
) -> Result<(AppState, Duration), InitError> {
    // The DynamoDB client is built while the fetches are in flight: `join!`
    // polls the fetch first, which sends its requests.
    let (loaded, dynamodb) = tokio::join!(
        shared::bootstrap::load::<Config>(sdk, deployment, SERVICE.name, identity),
        async { shared::aws::dynamodb(sdk) }
    );
    let loaded = loaded?;
    let mut idempotency = IdempotencyConfig::new(&loaded.config.idempotency_table, SERVICE.name);
    idempotency.ttl = Duration::from_secs(loaded.config.idempotency_ttl_seconds);
    let state = AppState {
        store: store::Store::new(dynamodb.clone(), &loaded.config.table_name),
        idempotency: Arc::new(Idempotency::new(dynamodb, idempotency)),
        verifier: loaded.verifier,
        config: Arc::new(loaded.config),
    };
    Ok((state, loaded.aws_wait))
}

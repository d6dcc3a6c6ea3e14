//! Accounts: open an account in one currency, credit it, debit it (never below
//! zero), and list its transactions. Money is integer minor units.
//!
//! `main.rs` wires [`init`] and [`app`] to Lambda; everything else is here:
//! [`domain`] (rules, no AWS), [`store`] (DynamoDB, where the ledger's
//! invariants are enforced), [`ledger`] (the invariants, audited over a
//! snapshot), [`http`] (routes and the translation between HTTP and the
//! domain).

pub mod domain;
pub mod http;
pub mod ledger;
pub mod store;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use shared::ServiceInfo;
use shared::auth::{Gate, Verifier};
use shared::bootstrap::InitError;
use shared::naming::Deployment;
use shared::secrets::{SERVICE_KEY_SECRET, SecretStore, ServiceKey};

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

/// Configuration, from SSM under `/{app}/{stage}/accounts/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The DynamoDB table.
    pub table_name: String,
    /// The largest single credit or debit, in minor units.
    pub max_amount_minor: u64,
    /// Transactions per page (and the largest `limit` a caller may ask for).
    pub transactions_page_size: u32,
    /// How long the API key secret is cached before it is read again.
    pub secret_ttl_seconds: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The accounts table.
    pub store: store::Store,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
    /// The service-to-service key.
    pub api_key: Arc<SecretStore<ServiceKey>>,
}

/// The router of this service, wrapped with the shared edge (health, problem
/// fallbacks, request ids, logs and metrics); `verifier` checks customers'
/// tokens, the state's service key the services'.
pub fn app(state: AppState, verifier: Arc<Verifier>) -> axum::Router {
    let gate = Gate::new(verifier, state.api_key.clone());
    shared::http::service(&SERVICE, http::routes(state, gate))
}

/// Loads config and the service key concurrently and builds the state;
/// also returns how long that waited on AWS. (`main` fetches the issuer's
/// signing keys at the same time: see [`app`].)
pub async fn init(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> Result<(AppState, Duration), InitError> {
    // The DynamoDB client is built while the config and secret requests are
    // in flight: `join!` polls the fetch first, which sends both requests.
    let (loaded, dynamodb) = tokio::join!(
        shared::bootstrap::load::<Config, ServiceKey>(sdk, deployment, SERVICE.name, SERVICE_KEY_SECRET),
        async { shared::aws::dynamodb(sdk) }
    );
    let loaded = loaded?;
    let ttl = Duration::from_secs(loaded.config.secret_ttl_seconds);
    let state = AppState {
        store: store::Store::new(
            dynamodb,
            &loaded.config.table_name,
            loaded.config.transactions_page_size,
        ),
        api_key: Arc::new(SecretStore::with_value(
            loaded.secrets,
            loaded.secret_id,
            ttl,
            loaded.secret,
        )),
        config: Arc::new(loaded.config),
    };
    Ok((state, loaded.aws_wait))
}

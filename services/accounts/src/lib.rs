//! Accounts: open an account in one currency, credit it, debit it (never below
//! zero), and list its transactions. Money is integer minor units.
//!
//! `main.rs` wires [`init`] and [`app`] to Lambda; everything else is here:
//! [`domain`] (rules, no AWS), [`store`] (DynamoDB), [`http`] (routes and the
//! translation between HTTP and the domain).

pub mod domain;
pub mod http;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use shared::ServiceInfo;
use shared::naming::Deployment;
use shared::secrets::{Secret, SecretStore};

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

/// The logical name of the secret holding the service-to-service key (see
/// `shared::naming::Deployment::secret_name`); the registry names the same.
pub const API_KEY_SECRET: &str = "service-api-key";

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

/// The service-to-service key, from Secrets Manager.
#[derive(Deserialize)]
pub struct ApiKey {
    /// The bearer token callers present.
    pub api_key: String,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The accounts table.
    pub store: store::Store,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
    /// The service-to-service key.
    pub api_key: Arc<SecretStore<ApiKey>>,
}

/// The router of this service, wrapped with the shared edge (health, problem
/// fallbacks, request ids, logs and metrics).
pub fn app(state: AppState) -> axum::Router {
    shared::http::service(&SERVICE, http::routes(state))
}

/// How long init spent waiting on AWS (config and secret, fetched together).
#[derive(Debug, Clone, Copy)]
pub struct InitTiming {
    /// Wall time of the concurrent config and secret fetch.
    pub aws_wait: Duration,
}

/// Loads config and the API key concurrently and builds the state.
pub async fn init(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> anyhow::Result<(AppState, InitTiming)> {
    use anyhow::Context as _;
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let prefix = deployment.config_prefix(SERVICE.name);
    let secret_id = deployment.secret_name(API_KEY_SECRET);
    let started = Instant::now();
    let (config, key) = tokio::join!(
        shared::config::load::<Config>(&ssm, &prefix),
        shared::secrets::fetch::<ApiKey>(&secrets, &secret_id)
    );
    let timing = InitTiming {
        aws_wait: started.elapsed(),
    };
    let config = config.context("loading configuration")?;
    let key: Secret<ApiKey> = key.context("reading the API key secret")?;
    let ttl = Duration::from_secs(config.secret_ttl_seconds);
    let state = AppState {
        store: store::Store::new(
            aws_sdk_dynamodb::Client::new(sdk),
            &config.table_name,
            config.transactions_page_size,
        ),
        api_key: Arc::new(SecretStore::with_value(secrets, secret_id, ttl, key)),
        config: Arc::new(config),
    };
    Ok((state, timing))
}

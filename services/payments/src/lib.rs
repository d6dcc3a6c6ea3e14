//! Payments: move money from one account to another exactly once.
//!
//! A payment is a saga over the accounts API ([`saga`]): debit the payer,
//! credit the payee, and when the credit cannot be made, void both postings
//! so no money is created or lost. Every step is recorded ([`store`]) before
//! the next, so a crashed run can be resumed. `POST /payments` is idempotent
//! by `Idempotency-Key` (`shared::idempotency`).

pub mod accounts_client;
pub mod domain;
pub mod http;
pub mod saga;
pub mod store;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use shared::ServiceInfo;
use shared::idempotency::{Idempotency, IdempotencyConfig};
use shared::naming::Deployment;
use shared::secrets::{Secret, SecretStore};

use crate::accounts_client::{AccountsClient, ApiKey};

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

/// The logical name of the service-to-service key it presents to accounts.
pub const API_KEY_SECRET: &str = "service-api-key";

/// Configuration, from SSM under `/{app}/{stage}/payments/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The payments table.
    pub table_name: String,
    /// The idempotency table (partition key `id`, TTL on `expiration`).
    pub idempotency_table: String,
    /// The accounts API's base URL.
    pub accounts_url: String,
    /// Per-call timeout to accounts.
    pub accounts_timeout_ms: u64,
    /// Tries per accounts call before its outcome counts as unknown.
    pub accounts_attempts: u32,
    /// The largest payment, in minor units.
    pub max_amount_minor: u64,
    /// How long the service key is cached.
    pub secret_ttl_seconds: u64,
    /// How long a response is replayed for its Idempotency-Key.
    pub idempotency_ttl_seconds: u64,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The payments table.
    pub store: store::Store,
    /// The accounts API.
    pub accounts: AccountsClient,
    /// The idempotency records.
    pub idempotency: Arc<Idempotency>,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
}

impl AppState {
    /// Builds the state from loaded configuration and the service key.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        config: Config,
        secret_id: String,
        key: Secret<ApiKey>,
    ) -> anyhow::Result<Self> {
        let secrets = aws_sdk_secretsmanager::Client::new(sdk);
        let key = Arc::new(SecretStore::with_value(
            secrets,
            secret_id,
            Duration::from_secs(config.secret_ttl_seconds),
            key,
        ));
        let accounts = AccountsClient::new(
            &config.accounts_url,
            Duration::from_millis(config.accounts_timeout_ms),
            config.accounts_attempts,
            key,
        )?;
        let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
        let mut idempotency = IdempotencyConfig::new(&config.idempotency_table, SERVICE.name);
        idempotency.ttl = Duration::from_secs(config.idempotency_ttl_seconds);
        Ok(Self {
            store: store::Store::new(dynamodb.clone(), &config.table_name),
            accounts,
            idempotency: Arc::new(Idempotency::new(dynamodb, idempotency)),
            config: Arc::new(config),
        })
    }
}

/// The router of this service, wrapped with the shared edge.
pub fn app(state: AppState) -> axum::Router {
    shared::http::service(&SERVICE, http::routes(state))
}

/// How long init spent waiting on AWS (config and secret, fetched together).
#[derive(Debug, Clone, Copy)]
pub struct InitTiming {
    /// Wall time of the concurrent config and secret fetch.
    pub aws_wait: Duration,
}

/// Loads config and the service key concurrently and builds the state.
pub async fn init(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> anyhow::Result<(AppState, InitTiming)> {
    use anyhow::Context as _;
    let (config, key, secret_id, timing) = load(sdk, deployment).await?;
    let config = config.context("loading configuration")?;
    let key = key.context("reading the service key secret")?;
    Ok((AppState::new(sdk, config, secret_id, key)?, timing))
}

type Loaded = (
    Result<Config, shared::config::ConfigError>,
    Result<Secret<ApiKey>, shared::secrets::SecretError>,
    String,
    InitTiming,
);

/// Fetches config and the key at once; tests use it to adjust config before building state.
pub async fn load(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> anyhow::Result<Loaded> {
    let ssm = aws_sdk_ssm::Client::new(sdk);
    let secrets = aws_sdk_secretsmanager::Client::new(sdk);
    let prefix = deployment.config_prefix(SERVICE.name);
    let secret_id = deployment.secret_name(API_KEY_SECRET);
    let started = Instant::now();
    let (config, key) = tokio::join!(
        shared::config::load::<Config>(&ssm, &prefix),
        shared::secrets::fetch::<ApiKey>(&secrets, &secret_id)
    );
    Ok((
        config,
        key,
        secret_id,
        InitTiming {
            aws_wait: started.elapsed(),
        },
    ))
}

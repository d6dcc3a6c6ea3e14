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
use std::time::Duration;

use serde::Deserialize;
use shared::ServiceInfo;
use shared::bootstrap::Loaded;
use shared::idempotency::{Idempotency, IdempotencyConfig};
use shared::naming::Deployment;
use shared::secrets::{SERVICE_KEY_SECRET, SecretStore, ServiceKey};

use crate::accounts_client::AccountsClient;

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

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
    /// Builds the state from what init loaded (configuration and the service
    /// key) and the clients it uses.
    pub fn new(loaded: Loaded<Config, ServiceKey>, dynamodb: aws_sdk_dynamodb::Client, http: reqwest::Client) -> Self {
        let Loaded {
            config,
            secret,
            secret_id,
            secrets,
            ..
        } = loaded;
        let ttl = Duration::from_secs(config.secret_ttl_seconds);
        let key = Arc::new(SecretStore::with_value(secrets, secret_id, ttl, secret));
        let accounts = AccountsClient::new(
            http,
            &config.accounts_url,
            Duration::from_millis(config.accounts_timeout_ms),
            config.accounts_attempts,
            key,
        );
        let mut idempotency = IdempotencyConfig::new(&config.idempotency_table, SERVICE.name);
        idempotency.ttl = Duration::from_secs(config.idempotency_ttl_seconds);
        Self {
            store: store::Store::new(dynamodb.clone(), &config.table_name),
            accounts,
            idempotency: Arc::new(Idempotency::new(dynamodb, idempotency)),
            config: Arc::new(config),
        }
    }
}

/// The router of this service, wrapped with the shared edge.
pub fn app(state: AppState) -> axum::Router {
    shared::http::service(&SERVICE, http::routes(state))
}

/// Loads config and the service key concurrently and builds the state;
/// also returns how long that waited on AWS.
pub async fn init(sdk: &aws_config::SdkConfig, deployment: &Deployment) -> anyhow::Result<(AppState, Duration)> {
    // The clients are built while the config and secret requests are in
    // flight: `join!` polls the fetch first, which sends both requests.
    let (loaded, dynamodb, http) = tokio::join!(
        shared::bootstrap::load::<Config, ServiceKey>(sdk, deployment, SERVICE.name, SERVICE_KEY_SECRET),
        async { shared::aws::dynamodb(sdk) },
        async { reqwest::Client::builder().build() }
    );
    let loaded = loaded?;
    let aws_wait = loaded.aws_wait;
    Ok((AppState::new(loaded, dynamodb, http?), aws_wait))
}

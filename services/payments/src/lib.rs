//! Payments: move money from one account to another exactly once.
//!
//! A payment is one transfer in the accounts ledger, which posts both legs
//! in one transaction. [`domain`] is the pure state machine (what to do next
//! given what accounts answered); [`runner`] executes it against the
//! [`accounts_client::Ledger`] port and the [`store`], within the
//! invocation's time; [`sweeper`] finishes, on a schedule, what a request
//! could not. `POST /payments` is idempotent by `Idempotency-Key`
//! (`shared::idempotency`), and the key's resource id is the payment's id.

pub mod accounts_client;
pub mod domain;
pub mod http;
pub mod runner;
pub mod store;
pub mod sweeper;

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use shared::ServiceInfo;
use shared::bootstrap::Loaded;
use shared::idempotency::{Idempotency, IdempotencyConfig};
use shared::naming::Deployment;
use shared::secrets::{SERVICE_KEY_SECRET, SecretStore, ServiceKey};

use crate::accounts_client::AccountsClient;
use crate::domain::Policy;

/// This service.
pub const SERVICE: ServiceInfo = ServiceInfo::new(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));

/// The scheduled function that finishes open payments (binary `payments-sweeper`).
pub const SWEEPER: ServiceInfo = ServiceInfo::new("payments-sweeper", env!("CARGO_PKG_VERSION"));

/// Configuration, from SSM under `/{app}/{stage}/payments/`.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    /// The payments table.
    pub table_name: String,
    /// The idempotency table (partition key `id`, TTL on `expiration`).
    pub idempotency_table: String,
    /// The accounts API's base URL.
    pub accounts_url: String,
    /// The longest one call to accounts may take (less when the invocation has less left).
    pub accounts_timeout_ms: u64,
    /// A payment whose transfer has had no definitive answer this long is cancelled.
    pub give_up_after_seconds: u64,
    /// The wait after the first call without a definitive answer; doubles after each.
    pub retry_base_ms: u64,
    /// The longest wait between calls.
    pub retry_max_ms: u64,
    /// A payment not final this long counts as stuck (`PaymentsStuck`).
    pub stuck_after_seconds: u64,
    /// The largest payment, in minor units.
    pub max_amount_minor: u64,
    /// How long the service key is cached.
    pub secret_ttl_seconds: u64,
    /// How long an Idempotency-Key is kept (and its answer replayed).
    pub idempotency_ttl_seconds: u64,
}

impl Config {
    /// The payment state machine's timing.
    pub fn policy(&self) -> Policy {
        Policy {
            give_up_after: Duration::from_secs(self.give_up_after_seconds),
            retry_base: Duration::from_millis(self.retry_base_ms),
            retry_max: Duration::from_millis(self.retry_max_ms),
        }
    }
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
    /// When to retry and when to give up.
    pub policy: Policy,
    /// The service key: presented to accounts, and accepted from the
    /// services of this deployment.
    pub service_key: Arc<SecretStore<ServiceKey>>,
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
            key.clone(),
        );
        let mut idempotency = IdempotencyConfig::new(&config.idempotency_table, SERVICE.name);
        idempotency.ttl = Duration::from_secs(config.idempotency_ttl_seconds);
        Self {
            store: store::Store::new(dynamodb.clone(), &config.table_name),
            accounts,
            idempotency: Arc::new(Idempotency::new(dynamodb, idempotency)),
            policy: config.policy(),
            service_key: key,
            config: Arc::new(config),
        }
    }
}

impl AppState {
    /// Advances a payment as far as `deadline` allows (see [`runner::advance`]).
    pub async fn advance(
        &self,
        current: store::Versioned,
        deadline: shared::http::Deadline,
        correlation: &str,
    ) -> Result<store::Versioned, store::StoreError> {
        runner::advance(
            &self.store,
            &self.accounts,
            &self.policy,
            current,
            deadline,
            correlation,
        )
        .await
    }
}

/// The router of this service, wrapped with the shared edge; `verifier`
/// checks customers' tokens, the state's service key the services'.
pub fn app(state: AppState, verifier: Arc<shared::auth::Verifier>) -> axum::Router {
    let gate = shared::auth::Gate::new(verifier, state.service_key.clone());
    shared::http::service(&SERVICE, http::routes(state, gate))
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

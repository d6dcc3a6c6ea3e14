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
use shared::auth::{IdentitySettings, Verifier};
use shared::bootstrap::{InitError, Loaded, LoadedSecret};
use shared::credentials::{ClientCredentials, TokenSource};
use shared::idempotency::{Idempotency, IdempotencyConfig};
use shared::naming::Deployment;

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
    /// The user pool's token endpoint, where payments' machine client gets
    /// its tokens for calling accounts.
    pub token_url: String,
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
    /// How long the machine client's secret is cached before it is read
    /// again (a rotated secret is picked up within this).
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
    /// Payments' own tokens for calling accounts.
    pub tokens: Arc<TokenSource>,
    /// Checks the tokens of customers.
    pub verifier: Arc<Verifier>,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
}

impl AppState {
    /// Builds the state from what init loaded (configuration, signing keys
    /// and the machine client) and the DynamoDB client.
    pub fn new(
        loaded: Loaded<Config>,
        client: LoadedSecret<ClientCredentials>,
        dynamodb: aws_sdk_dynamodb::Client,
    ) -> Self {
        let Loaded {
            config, verifier, http, ..
        } = loaded;
        let client = Arc::new(client.into_store(Duration::from_secs(config.secret_ttl_seconds)));
        let tokens = Arc::new(TokenSource::new(
            &config.token_url,
            client,
            vec![shared::auth::service_scope("accounts")],
            http.clone(),
        ));
        let accounts = AccountsClient::new(
            http,
            &config.accounts_url,
            Duration::from_millis(config.accounts_timeout_ms),
            tokens.clone(),
        );
        let mut idempotency = IdempotencyConfig::new(&config.idempotency_table, SERVICE.name);
        idempotency.ttl = Duration::from_secs(config.idempotency_ttl_seconds);
        Self {
            store: store::Store::new(dynamodb.clone(), &config.table_name),
            accounts,
            idempotency: Arc::new(Idempotency::new(dynamodb, idempotency)),
            policy: config.policy(),
            tokens,
            verifier,
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

/// The router of this service, wrapped with the shared edge; every route
/// but `/health` checks its caller's token with the state's verifier.
pub fn app(state: AppState) -> axum::Router {
    let gate = shared::auth::Gate::new(state.verifier.clone(), &SERVICE);
    shared::http::service(&SERVICE, http::routes(state, gate))
}

/// Loads config, the issuer's signing keys and payments' machine client
/// concurrently, builds the state and gets the first token for accounts;
/// also returns how long that waited on AWS and the issuer.
pub async fn init(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    identity: IdentitySettings,
) -> Result<(AppState, Duration), InitError> {
    // The DynamoDB client is built while the fetches are in flight: `join!`
    // polls the fetch first, which sends its requests.
    let secret = shared::credentials::client_secret(SERVICE.name);
    let (loaded, dynamodb) = tokio::join!(
        shared::bootstrap::load_with_secret::<Config, ClientCredentials>(
            sdk,
            deployment,
            SERVICE.name,
            identity,
            &secret
        ),
        async { shared::aws::dynamodb(sdk) }
    );
    let (loaded, client) = loaded?;
    let mut aws_wait = loaded.aws_wait;
    let state = AppState::new(loaded, client, dynamodb);
    // The first payment should not wait for a token: fetch it now. Without
    // one, init still succeeds; the first call to accounts fetches it.
    let started = std::time::Instant::now();
    if let Err(err) = state
        .tokens
        .token(Duration::from_millis(state.config.accounts_timeout_ms))
        .await
    {
        tracing::warn!(error = %err, "no token for accounts at init; the first call fetches one");
    }
    aws_wait += started.elapsed();
    Ok((state, aws_wait))
}

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
use shared::auth::{Gate, IdentitySettings, Verifier};
use shared::bootstrap::InitError;
use shared::naming::Deployment;

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
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The accounts table.
    pub store: store::Store,
    /// The configuration loaded at init.
    pub config: Arc<Config>,
    /// Checks the tokens of customers and of the deployment's services.
    pub verifier: Arc<Verifier>,
}

/// The router of this service, wrapped with the shared edge (health, problem
/// fallbacks, request ids, logs and metrics); every route but `/health`
/// checks its caller's token with the state's verifier.
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
    let state = AppState {
        store: store::Store::new(
            dynamodb,
            &loaded.config.table_name,
            loaded.config.transactions_page_size,
        ),
        verifier: loaded.verifier,
        config: Arc::new(loaded.config),
    };
    Ok((state, loaded.aws_wait))
}

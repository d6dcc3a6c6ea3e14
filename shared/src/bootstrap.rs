//! What every service does at init: fetch its configuration (SSM), its
//! secret (Secrets Manager) when it has one, and the token issuer's signing
//! keys (JWKS) at the same time, so a cold start waits for the slowest of
//! them, not their sum.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::auth::{IdentitySettings, Verifier};
use crate::config::ConfigError;
use crate::naming::Deployment;
use crate::secrets::{Secret, SecretError, SecretStore};

/// What init loaded for a service.
pub struct Loaded<C> {
    /// The typed configuration from `/{app}/{stage}/{service}/`.
    pub config: C,
    /// The stage issuer's token verifier, its keys fetched.
    pub verifier: Arc<Verifier>,
    /// The HTTP client the keys were fetched with, for the service's own
    /// calls (one connection pool).
    pub http: reqwest::Client,
    /// Wall time of the concurrent fetches: what init waited on AWS and the issuer.
    pub aws_wait: Duration,
}

/// A secret as loaded at init.
pub struct LoadedSecret<S> {
    /// The secret's value.
    pub value: Secret<S>,
    /// The secret's full name.
    pub id: String,
    /// The Secrets Manager client that read it.
    pub client: aws_sdk_secretsmanager::Client,
}

impl<S: DeserializeOwned> LoadedSecret<S> {
    /// A cache of the secret that starts with the value read at init and
    /// re-reads it after `ttl` (so a rotated value is picked up).
    pub fn into_store(self, ttl: Duration) -> SecretStore<S> {
        SecretStore::with_value(self.client, self.id, ttl, self.value)
    }
}

/// Why init could not load what the service needs.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// The configuration is unreadable, missing keys or invalid.
    #[error("loading configuration: {0}")]
    Config(#[from] ConfigError),
    /// The secret is unreadable or has the wrong shape.
    #[error("reading the secret: {0}")]
    Secret(#[from] SecretError),
    /// The stage's token issuer is not configured.
    #[error(transparent)]
    Identity(#[from] crate::auth::MissingIdentity),
    /// The HTTP client could not be built.
    #[error("building the HTTP client: {0}")]
    Http(#[source] reqwest::Error),
}

/// Loads `service`'s configuration and the keys of `identity`'s issuer
/// (`IdentitySettings::from_env` in `main`) concurrently.
pub async fn load<C: DeserializeOwned>(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    service: &str,
    identity: IdentitySettings,
) -> Result<Loaded<C>, InitError> {
    let (loaded, ()) = load_beside(sdk, deployment, service, identity, async { Ok(()) }).await?;
    Ok(loaded)
}

/// Loads `service`'s configuration, the logical secret `secret` and the
/// keys of `identity`'s issuer concurrently.
pub async fn load_with_secret<C: DeserializeOwned, S: DeserializeOwned>(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    service: &str,
    identity: IdentitySettings,
    secret: &str,
) -> Result<(Loaded<C>, LoadedSecret<S>), InitError> {
    let id = deployment.secret_name(secret);
    load_beside(sdk, deployment, service, identity, async move {
        let client = crate::aws::secrets_manager(sdk);
        let value = crate::secrets::fetch::<S>(&client, &id).await?;
        Ok(LoadedSecret { value, id, client })
    })
    .await
}

/// The configuration and the issuer's keys, fetched while `beside` runs.
async fn load_beside<C: DeserializeOwned, T>(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    service: &str,
    identity: IdentitySettings,
    beside: impl Future<Output = Result<T, SecretError>>,
) -> Result<(Loaded<C>, T), InitError> {
    let ssm = crate::aws::ssm(sdk);
    let prefix = deployment.config_prefix(service);
    let started = Instant::now();
    // `join!` polls the SSM fetch first, which sends its request; the other
    // clients (the HTTP client's TLS roots included) are built while that
    // request is in flight, and the JWKS request goes out right after.
    let (config, beside, keys) = tokio::join!(crate::config::load::<C>(&ssm, &prefix), beside, async {
        let http = reqwest::Client::builder().build().map_err(InitError::Http)?;
        let verifier = Verifier::load(identity, http.clone()).await;
        Ok::<_, InitError>((verifier, http))
    });
    let aws_wait = started.elapsed();
    let (verifier, http) = keys?;
    Ok((
        Loaded {
            config: config?,
            verifier: Arc::new(verifier),
            http,
            aws_wait,
        },
        beside?,
    ))
}

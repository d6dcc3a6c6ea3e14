//! What every service does at init: fetch its configuration (SSM) and its
//! secret (Secrets Manager) at the same time, so a cold start waits for the
//! slower of the two, not their sum.

use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;

use crate::config::ConfigError;
use crate::naming::Deployment;
use crate::secrets::{Secret, SecretError};

/// A service's configuration and secret, as loaded at init.
pub struct Loaded<C, S> {
    /// The typed configuration from `/{app}/{stage}/{service}/`.
    pub config: C,
    /// The secret's value.
    pub secret: Secret<S>,
    /// The secret's full name, for refreshing it later.
    pub secret_id: String,
    /// Wall time of the two concurrent fetches.
    pub aws_wait: Duration,
    /// The Secrets Manager client that read the secret, for refreshing it.
    pub secrets: aws_sdk_secretsmanager::Client,
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
}

/// Loads `service`'s configuration and the logical secret `secret` concurrently.
pub async fn load<C: DeserializeOwned, S: DeserializeOwned>(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    service: &str,
    secret: &str,
) -> Result<Loaded<C, S>, InitError> {
    let ssm = crate::aws::ssm(sdk);
    let prefix = deployment.config_prefix(service);
    let secret_id = deployment.secret_name(secret);
    let started = Instant::now();
    // `join!` polls the SSM fetch first, which sends its request; the
    // Secrets Manager client is then built while that request is in flight.
    let (config, (secret, secrets)) = tokio::join!(crate::config::load::<C>(&ssm, &prefix), async {
        let secrets = crate::aws::secrets_manager(sdk);
        (crate::secrets::fetch::<S>(&secrets, &secret_id).await, secrets)
    });
    let aws_wait = started.elapsed();
    Ok(Loaded {
        config: config?,
        secret: secret?,
        secret_id,
        aws_wait,
        secrets,
    })
}

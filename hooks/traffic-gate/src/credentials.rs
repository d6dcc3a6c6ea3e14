//! The hooks' own identity: every route but `/health` needs a bearer token,
//! so the checks call the services as a machine client of the stage's user
//! pool (`shared::credentials`: the client credentials grant at the pool's
//! token endpoint; the client's id and secret in Secrets Manager, the token
//! endpoint in the hooks' configuration). The collections get two tokens
//! from it: `access_token`, with the customers' scopes, for the routes a
//! customer uses (the hooks' client is then the customer, owning what it
//! opens), and `service_token`, with the machine scopes (each API's
//! `service` and `back-office`), for the routes only the back office may
//! call (the credits that fund the test accounts, debits, voids).

use std::sync::Arc;
use std::time::{Duration, Instant};

use shared::credentials::{AccessToken, TokenSource};

/// The logical name of the secret holding the hooks' client.
pub fn client_secret() -> String {
    shared::credentials::client_secret(crate::lambda::CONFIG_NAME)
}

/// The collection variable the customer-scoped token is given as.
pub const TOKEN_VARIABLE: &str = "access_token";

/// The collection variable the service-scoped token is given as.
pub const SERVICE_TOKEN_VARIABLE: &str = "service_token";

/// The two tokens the checks run with.
#[derive(Clone)]
pub struct Tokens {
    /// With the customers' scopes.
    pub access: AccessToken,
    /// With the services' scopes.
    pub service: AccessToken,
}

/// How the checks get their tokens.
#[derive(Clone)]
pub enum Credentials {
    /// No token: checks of collections that need none (tests of the gate itself).
    None,
    /// Client-credentials tokens, kept until shortly before they expire.
    ClientCredentials {
        /// Tokens with the customers' scopes.
        customer: Arc<TokenSource>,
        /// Tokens with the services' scopes.
        service: Arc<TokenSource>,
    },
    /// The hooks' identity is configured wrong: the credential check fails
    /// with this, so no release ships on checks that could not run.
    Unusable(String),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::None => f.write_str("None"),
            Credentials::ClientCredentials { .. } => f.write_str("ClientCredentials"),
            Credentials::Unusable(reason) => f.debug_tuple("Unusable").field(reason).finish(),
        }
    }
}

impl Credentials {
    /// The tokens for this invocation, within `timeout` and before `until`;
    /// `Ok(None)` when the checks run without any. The error says what went
    /// wrong without the client's secret.
    pub async fn tokens(&self, timeout: Duration, until: Instant) -> Result<Option<Tokens>, String> {
        let (customer, service) = match self {
            Credentials::None => return Ok(None),
            Credentials::Unusable(reason) => return Err(reason.clone()),
            Credentials::ClientCredentials { customer, service } => (customer, service),
        };
        let budget = timeout.min(until.saturating_duration_since(Instant::now()));
        let (access, service) = tokio::join!(customer.token(budget), service.token(budget));
        Ok(Some(Tokens {
            access: access.map_err(|e| e.to_string())?,
            service: service.map_err(|e| e.to_string())?,
        }))
    }
}

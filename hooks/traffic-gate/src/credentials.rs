//! The hooks' own identity: every route but `/health` needs a bearer token,
//! so the checks call the service as a machine client of the stage's user
//! pool. A token is fetched for each hook invocation (OAuth 2.0 client
//! credentials grant, RFC 6749 §4.4, at the pool's token endpoint) and given
//! to the collections as `access_token`; the client's id and secret live in
//! Secrets Manager, the token endpoint in the hooks' configuration.

use std::time::{Duration, Instant};

use serde::Deserialize;
use shared::secrets::Secret;

/// The logical name of the secret holding the hooks' client
/// (`{"client_id": "...", "client_secret": "..."}`).
pub const CLIENT_SECRET: &str = "traffic-gate-client";

/// The collection variable the token is given to the checks as.
pub const TOKEN_VARIABLE: &str = "access_token";

/// The hooks' app client of the stage's user pool.
#[derive(Clone, Deserialize)]
pub struct Client {
    /// The app client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// How the checks get their token.
#[derive(Clone, Debug)]
pub enum Credentials {
    /// No token: checks of collections that need none (tests of the gate itself).
    None,
    /// A client-credentials token from `token_url`, fetched per invocation.
    ClientCredentials {
        /// The token endpoint (`https://<domain>/oauth2/token` for Cognito).
        token_url: String,
        /// The client.
        client: Secret<Client>,
        /// The HTTP client.
        http: reqwest::Client,
    },
    /// The hooks' identity is configured wrong: the credential check fails
    /// with this, so no release ships on checks that could not run.
    Unusable(String),
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
}

/// The token endpoint's refusal (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Credentials {
    /// A token for this invocation, within `timeout` and before `until`;
    /// `Ok(None)` when the checks run without one. The error says what went
    /// wrong without the client's secret.
    pub async fn token(&self, timeout: Duration, until: Instant) -> Result<Option<String>, String> {
        let (token_url, client, http) = match self {
            Credentials::None => return Ok(None),
            Credentials::Unusable(reason) => return Err(reason.clone()),
            Credentials::ClientCredentials {
                token_url,
                client,
                http,
            } => (token_url, client.expose(), http),
        };
        let budget = timeout.min(until.saturating_duration_since(Instant::now()));
        if budget.is_zero() {
            return Err(String::from("no time left to fetch a token"));
        }
        let response = http
            .post(token_url)
            .timeout(budget)
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| format!("the token endpoint {token_url} could not be reached: {e}"))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("the token endpoint {token_url} answer could not be read: {e}"))?;
        if !status.is_success() {
            let why = serde_json::from_slice::<TokenRefusal>(&body).map_or_else(
                |_| String::from("no OAuth error"),
                |r| match r.error_description {
                    Some(description) => format!("{}: {description}", r.error),
                    None => r.error,
                },
            );
            return Err(format!(
                "the token endpoint {token_url} refused client {} ({status}, {why})",
                client.client_id
            ));
        }
        let token: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| format!("the token endpoint {token_url} answered without an access token: {e}"))?;
        match token.token_type.as_deref() {
            Some(kind) if !kind.eq_ignore_ascii_case("bearer") => Err(format!(
                "the token endpoint {token_url} issued a {kind} token, not a bearer token"
            )),
            _ => Ok(Some(token.access_token)),
        }
    }
}

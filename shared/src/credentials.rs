//! A service's own identity when it calls another service: a machine client
//! of the stage's user pool, which gets access tokens with the OAuth 2.0
//! client credentials grant (RFC 6749 §4.4) at the pool's token endpoint.
//!
//! The client's id and secret live in Secrets Manager ([`ClientCredentials`],
//! cached and re-read like any secret, so a rotated client secret is picked
//! up); the token endpoint is configuration. A [`TokenSource`] keeps the
//! token it was issued until shortly before it expires, fetches one at a
//! time however many callers ask at once, and forgets it when the callee
//! refuses it ([`TokenSource::forget`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::secrets::{Secret, SecretError, SecretStore};

/// The logical name of the secret holding machine client `name`'s id and
/// secret (`payments-client`, `traffic-gate-client`).
pub fn client_secret(name: &str) -> String {
    format!("{name}-client")
}

/// The configuration key of the pool's token endpoint, under the
/// configuration of whoever owns the machine client.
pub const TOKEN_URL_KEY: &str = "token_url";

/// A machine client of the stage's user pool, as kept in Secrets Manager
/// (`{"client_id": "...", "client_secret": "..."}`).
#[derive(Clone, Deserialize)]
pub struct ClientCredentials {
    /// The app client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
}

/// An access token: a credential, never printed.
pub type AccessToken = Arc<Secret<String>>;

/// Why no token could be had; never carries the client's secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The caller's budget ran out before a token was issued.
    #[error("no time left to fetch a token from {url}")]
    NoTime {
        /// The token endpoint.
        url: String,
    },
    /// The client's id and secret could not be read.
    #[error("the machine client's secret is unusable: {0}")]
    Client(#[source] SecretError),
    /// The token endpoint could not be reached or did not answer in time.
    #[error("the token endpoint {url} could not be reached: {source}")]
    Unreachable {
        /// The token endpoint.
        url: String,
        /// What the HTTP client saw.
        #[source]
        source: reqwest::Error,
    },
    /// The token endpoint refused the client (RFC 6749 §5.2).
    #[error("the token endpoint {url} refused client {client_id} ({status}, {error})")]
    Refused {
        /// The token endpoint.
        url: String,
        /// The client it refused.
        client_id: String,
        /// The HTTP status.
        status: u16,
        /// The OAuth error code and description, when it sent one.
        error: String,
    },
    /// The token endpoint is not HTTPS (the client's secret would cross the
    /// network in clear); plain HTTP is taken on the loopback interface only.
    #[error("the token endpoint {url} is not https:// (plain HTTP only to this machine)")]
    Insecure {
        /// The token endpoint.
        url: String,
    },
    /// The answer is not an access token response (RFC 6749 §5.1).
    #[error("the token endpoint {url} answered without a usable access token: {reason}")]
    Unreadable {
        /// The token endpoint.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

/// The token endpoint's answer (RFC 6749 §5.1).
#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// The token endpoint's refusal (RFC 6749 §5.2).
#[derive(Deserialize)]
struct TokenRefusal {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

/// How long a token is kept when the endpoint does not say when it expires.
const UNSTATED_LIFETIME: Duration = Duration::from_secs(300);

/// The longest a token is kept, whatever the endpoint says.
const LONGEST_KEPT: Duration = Duration::from_secs(24 * 60 * 60);

/// A token is renewed this long before it expires (or at half its
/// lifetime, when that is shorter), so no call carries one that expires in flight.
const RENEW_BEFORE: Duration = Duration::from_secs(60);

struct Issued {
    token: AccessToken,
    renew_at: Instant,
}

/// Access tokens for one machine client and one set of scopes.
pub struct TokenSource {
    token_url: String,
    client: Arc<SecretStore<ClientCredentials>>,
    scopes: Vec<String>,
    http: reqwest::Client,
    issued: Mutex<Option<Issued>>,
}

impl TokenSource {
    /// Tokens from `token_url` for `client`, with `scopes` (none: every
    /// scope the client is allowed).
    pub fn new(
        token_url: impl Into<String>,
        client: Arc<SecretStore<ClientCredentials>>,
        scopes: Vec<String>,
        http: reqwest::Client,
    ) -> Self {
        Self {
            token_url: token_url.into(),
            client,
            scopes,
            http,
            issued: Mutex::new(None),
        }
    }

    /// A token valid for at least a minute more, fetched within `budget`
    /// when the one kept is too old or was forgotten.
    pub async fn token(&self, budget: Duration) -> Result<AccessToken, TokenError> {
        let no_time = || TokenError::NoTime {
            url: self.token_url.clone(),
        };
        if budget.is_zero() {
            return Err(no_time());
        }
        tokio::time::timeout(budget, async {
            let mut issued = self.issued.lock().await;
            if let Some(current) = issued.as_ref()
                && Instant::now() < current.renew_at
            {
                return Ok(current.token.clone());
            }
            let fresh = self.fetch(budget).await?;
            let token = fresh.token.clone();
            *issued = Some(fresh);
            Ok(token)
        })
        .await
        .unwrap_or_else(|_| Err(no_time()))
    }

    /// Drops `refused` if it is still the kept token (the callee refused
    /// it: revoked, or signed with a key it no longer trusts), so the next
    /// call fetches a new one; a newer token another caller fetched stays.
    pub async fn forget(&self, refused: &AccessToken) {
        let mut issued = self.issued.lock().await;
        if issued
            .as_ref()
            .is_some_and(|current| Arc::ptr_eq(&current.token, refused))
        {
            *issued = None;
        }
    }

    /// A new token within `budget`: at most half of it for reading the
    /// client's secret (a stalled Secrets Manager then serves the cached
    /// secret, or fails naming the secret), the rest for the token endpoint.
    async fn fetch(&self, budget: Duration) -> Result<Issued, TokenError> {
        let url = &self.token_url;
        if !is_private(url) {
            return Err(TokenError::Insecure { url: url.clone() });
        }
        let client = self.client.get_within(budget / 2).await.map_err(TokenError::Client)?;
        let client = client.expose();
        let mut form = vec![("grant_type", String::from("client_credentials"))];
        if !self.scopes.is_empty() {
            form.push(("scope", self.scopes.join(" ")));
        }
        let requested = Instant::now();
        let unreachable = |source| TokenError::Unreachable {
            url: url.clone(),
            source,
        };
        let response = self
            .http
            .post(url)
            .basic_auth(&client.client_id, Some(&client.client_secret))
            .form(&form)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        let body = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let error = serde_json::from_slice::<TokenRefusal>(&body).map_or_else(
                |_| String::from("no OAuth error"),
                |r| match r.error_description {
                    Some(description) => format!("{}: {description}", r.error),
                    None => r.error,
                },
            );
            return Err(TokenError::Refused {
                url: url.clone(),
                client_id: client.client_id.clone(),
                status: status.as_u16(),
                error,
            });
        }
        let unreadable = |reason: String| TokenError::Unreadable {
            url: url.clone(),
            reason,
        };
        let answer: TokenResponse = serde_json::from_slice(&body).map_err(|e| unreadable(e.to_string()))?;
        if let Some(kind) = answer.token_type.as_deref()
            && !kind.eq_ignore_ascii_case("bearer")
        {
            return Err(unreadable(format!("a {kind} token, not a bearer token")));
        }
        if answer.access_token.is_empty() {
            return Err(unreadable(String::from("an empty access_token")));
        }
        let lifetime = answer
            .expires_in
            .map_or(UNSTATED_LIFETIME, Duration::from_secs)
            .min(LONGEST_KEPT);
        let margin = RENEW_BEFORE.min(lifetime / 2);
        Ok(Issued {
            token: Arc::new(Secret::new(answer.access_token)),
            renew_at: requested + lifetime.saturating_sub(margin),
        })
    }
}

/// Whether `url` keeps a client's secret off the network: `https://`, or
/// plain HTTP to the loopback interface.
fn is_private(url: &str) -> bool {
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return false;
    };
    match parsed.scheme() {
        "https" => true,
        "http" => parsed.host_str().is_some_and(|host| {
            host == "localhost"
                || host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }),
        _ => false,
    }
}

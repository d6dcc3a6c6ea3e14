//! An OpenID Connect issuer under a test's control: its JWKS served over
//! HTTP on a loopback port (swappable, to rotate keys), and RS256 access
//! tokens with whatever claims the test needs, signed with the keys in
//! `oidc/` (generated for these tests, never used anywhere else). It is
//! how a test gets the tokens a real issuer never hands out: expired ones,
//! ones for another audience, ones signed by a stranger.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use shared::auth::IdentitySettings;
use tokio::sync::RwLock;

use crate::Error;

/// The issuer's keys: the one its JWKS publishes, the one it rotates to,
/// and a stranger's (never published).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// Published as `signing`.
    Signing,
    /// Published as `rotated` once the issuer rotates.
    Rotated,
    /// Never published.
    Stranger,
}

impl Key {
    fn pem(self) -> &'static str {
        match self {
            Key::Signing => include_str!("oidc/signing.pem"),
            Key::Rotated => include_str!("oidc/rotated.pem"),
            Key::Stranger => include_str!("oidc/stranger.pem"),
        }
    }
}

/// The issuer's `iss`.
pub const ISSUER: &str = "https://issuer.test/pool";
/// The app client its tokens are for, by default.
pub const CLIENT: &str = "customers-app";
/// A machine client of the deployment's services ([`machine_claims`]).
pub const MACHINE: &str = "services-machine-client";

/// A running issuer on 127.0.0.1.
pub struct Issuer {
    jwks_url: String,
    document: Arc<RwLock<Value>>,
    fetches: Arc<AtomicUsize>,
    _server: tokio::task::JoinHandle<()>,
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

impl Issuer {
    /// Starts the issuer publishing the `signing` key.
    pub async fn start() -> Result<Self, Error> {
        let published: Value =
            serde_json::from_str(include_str!("oidc/jwks.json")).map_err(|e| Error::Process(e.to_string()))?;
        let document = Arc::new(RwLock::new(published));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks.json",
            get(move || {
                let (doc, count) = (doc.clone(), count.clone());
                async move {
                    count.fetch_add(1, Ordering::SeqCst);
                    axum::Json(doc.read().await.clone())
                }
            }),
        );
        let (address, server) = crate::serve_router(app).await?;
        Ok(Self {
            jwks_url: format!("http://{address}/jwks.json"),
            document,
            fetches,
            _server: server,
        })
    }

    /// What a service verifies this issuer's tokens with: [`CLIENT`]'s,
    /// and [`MACHINE`]'s as a machine client of the deployment's services.
    pub fn settings(&self) -> IdentitySettings {
        IdentitySettings {
            issuer: String::from(ISSUER),
            jwks_url: self.jwks_url.clone(),
            client_ids: vec![String::from(CLIENT), String::from(MACHINE)],
            service_client_ids: vec![String::from(MACHINE)],
        }
    }

    /// How often the JWKS was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// Publishes both `signing` and `rotated`, as an issuer mid-rotation does.
    pub async fn rotate(&self) -> Result<(), Error> {
        *self.document.write().await =
            serde_json::from_str(include_str!("oidc/jwks-rotated.json")).map_err(|e| Error::Process(e.to_string()))?;
        Ok(())
    }
}

/// Access-token claims as Cognito writes them, for `subject` with `scopes`,
/// valid for ten minutes.
pub fn claims(subject: &str, scopes: &[&str]) -> Value {
    json!({
        "sub": subject,
        "username": subject,
        "iss": ISSUER,
        "client_id": CLIENT,
        "token_use": "access",
        "scope": scopes.join(" "),
        "iat": now(),
        "exp": now() + 600,
    })
}

/// A client-credentials token's claims as Cognito writes them: [`MACHINE`]
/// is both `sub` and `client_id`, and no user is named.
pub fn machine_claims(scopes: &[&str]) -> Value {
    let mut claims = claims(MACHINE, scopes);
    claims["client_id"] = json!(MACHINE);
    if let Some(fields) = claims.as_object_mut() {
        fields.remove("username");
    }
    claims
}

/// `claims` signed RS256 with `key`, under the key id `kid`.
pub fn sign(key: Key, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    let encoding = EncodingKey::from_rsa_pem(key.pem().as_bytes()).expect("the test keys are PEM");
    jsonwebtoken::encode(&header, claims, &encoding).expect("claims serialize")
}

/// A valid token for `subject` with `scopes`.
pub fn token(subject: &str, scopes: &[&str]) -> String {
    sign(Key::Signing, "signing", &claims(subject, scopes))
}

//! Who is calling, verified: OAuth 2.0 / OpenID Connect bearer tokens (JWT)
//! from the stage's issuer (a Cognito user pool, or any OIDC issuer) — a
//! customer's, or a machine client's of a service of this deployment.
//!
//! - [`Verifier`]: checks a token's signature against the issuer's JWKS
//!   (fetched at init, cached, fetched again once for an unknown `kid` and
//!   never more often than every [`REFETCH_EVERY`]), its `iss`, its `aud` or
//!   `client_id`, `exp` and `nbf` with [`LEEWAY`], `token_use` where the
//!   issuer sets it, and the asymmetric algorithm its key was published for.
//!   `alg: none`, HMAC tokens and keys published as shared secrets are refused.
//! - [`Routes`]: the only way a service adds a route, with its [`Access`]:
//!   public, a scope (`accounts/read`), or the services of this deployment
//!   only. The per-route policy is therefore in one place, and
//!   [`Routes::policy`] lists it for the tests that try every route without
//!   a credential and for the gateway's authorizer scopes.
//! - [`Principal`]: what a handler receives — a customer (subject, client,
//!   scopes); a service of this deployment (a token with the API's
//!   [`SERVICE_SCOPE`]) acting for the customer it names in `X-On-Behalf-Of`,
//!   and for no one else; or the back office (a token with the API's
//!   [`BACK_OFFICE_SCOPE`]), for a customer when it names one, for no one
//!   otherwise. Only the deployment's machine clients are allowed either
//!   scope, and `X-On-Behalf-Of` is honoured for them only.
//!
//! Every refusal is a problem+json 401 (`WWW-Authenticate: Bearer
//! error="invalid_token"`) or 403 (`insufficient_scope`) that says what was
//! wrong and never echoes the token.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use tokio::sync::{Mutex, RwLock};

use crate::ServiceInfo;
use crate::http::Problem;
use crate::synthetic::Records;

/// The header a service of this deployment sets to act for a customer.
pub const ON_BEHALF_OF_HEADER: HeaderName = HeaderName::from_static("x-on-behalf-of");

/// The scope, on each service's resource server (`accounts/service`), that
/// makes a token a service of this deployment: granted to the deployment's
/// machine clients only, never to the customers' app client.
pub const SERVICE_SCOPE: &str = "service";

/// The scope, on each service's resource server (`accounts/back-office`),
/// that lets a machine client of this deployment act for no one: the routes
/// no customer may use for themselves (external credits, debits, voids) and
/// reads of any customer's records. A service that only acts for customers
/// (payments calling accounts) has [`SERVICE_SCOPE`] and not this one.
pub const BACK_OFFICE_SCOPE: &str = "back-office";

/// Whether `name` (a scope of a resource server, without the server's
/// prefix) is one only the deployment's machine clients may be allowed:
/// [`SERVICE_SCOPE`] or [`BACK_OFFICE_SCOPE`]. Customers' app clients are
/// allowed every other scope.
pub fn is_machine_scope(name: &str) -> bool {
    name == SERVICE_SCOPE || name == BACK_OFFICE_SCOPE
}

/// The full service scope of `service`'s API, e.g. `accounts/service`.
pub fn service_scope(service: &str) -> String {
    format!("{service}/{SERVICE_SCOPE}")
}

/// The full back-office scope of `service`'s API, e.g. `accounts/back-office`.
pub fn back_office_scope(service: &str) -> String {
    format!("{service}/{BACK_OFFICE_SCOPE}")
}

/// Clock skew accepted on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// The shortest time between two fetches of the JWKS for unknown keys.
pub const REFETCH_EVERY: Duration = Duration::from_secs(30);

/// How long one JWKS fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// The signature algorithms accepted: asymmetric only.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Where tokens come from and whom they must be for: `AUTH_ISSUER`,
/// `AUTH_JWKS_URL`, `AUTH_CLIENT_IDS` and `AUTH_SERVICE_CLIENT_IDS`, which
/// `infra/` sets from the stage's user pool and the local stack from moto's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySettings {
    /// The exact `iss` of valid tokens.
    pub issuer: String,
    /// The issuer's JWKS document.
    pub jwks_url: String,
    /// The app clients (`client_id` of an access token, or `aud`) accepted.
    pub client_ids: Vec<String>,
    /// The deployment's machine clients among them: a token with a service
    /// scope is a service only when it is one of these clients' own (no
    /// user named in it); any other token with a service scope is refused.
    pub service_client_ids: Vec<String>,
}

/// A variable the identity settings need is missing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not set: every route but /health needs a verified token from the stage's issuer")]
pub struct MissingIdentity(pub &'static str);

impl IdentitySettings {
    /// Reads `AUTH_ISSUER`, `AUTH_JWKS_URL` (default: the issuer's
    /// `/.well-known/jwks.json`), `AUTH_CLIENT_IDS` and
    /// `AUTH_SERVICE_CLIENT_IDS` (comma-separated; the second may be unset
    /// when no service calls this one).
    pub fn from_env() -> Result<Self, MissingIdentity> {
        let issuer = crate::env::var(crate::env::AUTH_ISSUER).ok_or(MissingIdentity(crate::env::AUTH_ISSUER))?;
        let list = |value: String| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let client_ids =
            list(crate::env::var(crate::env::AUTH_CLIENT_IDS).ok_or(MissingIdentity(crate::env::AUTH_CLIENT_IDS))?);
        let service_client_ids = crate::env::var(crate::env::AUTH_SERVICE_CLIENT_IDS)
            .map(list)
            .unwrap_or_default();
        if client_ids.is_empty() {
            return Err(MissingIdentity(crate::env::AUTH_CLIENT_IDS));
        }
        let jwks_url = crate::env::var(crate::env::AUTH_JWKS_URL)
            .unwrap_or_else(|| format!("{}/.well-known/jwks.json", issuer.trim_end_matches('/')));
        Ok(Self {
            issuer,
            jwks_url,
            client_ids,
            service_client_ids,
        })
    }
}

/// Why a credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer …`.
    #[error("send a bearer token: Authorization: Bearer <token>")]
    Missing,
    /// Not a JWT, or not one this verifier can read.
    #[error("the bearer token is not a well-formed JWT")]
    Malformed,
    /// More than one `Authorization` header: which one counts would depend
    /// on who reads it (API Gateway takes the last).
    #[error("send one Authorization header, not several")]
    Duplicate,
    /// A claim every access token must have is missing.
    #[error("the token has no {0} claim")]
    MissingClaim(String),
    /// A service or back-office scope on a token that is not the
    /// client-credentials token of one of the deployment's machine clients.
    #[error("the token carries a service scope but is not a machine token of this deployment's services")]
    NotAService,
    /// A machine client's own token (client credentials: no user named) of a
    /// client that is none of the deployment's services: it stands for no
    /// customer, whatever scopes the pool gave it.
    #[error("the token is a machine client's that is no service of this deployment; a customer's token names a user")]
    NotACustomer,
    /// A user's token (not a client-credentials one) whose subject is the id
    /// of one of the deployment's machine clients, the reserved owners of
    /// synthetic records (see [`crate::synthetic`]).
    #[error("the token's subject is reserved for the deployment's own machine clients")]
    ReservedSubject,
    /// A service that names no customer (no `X-On-Behalf-Of`) without the
    /// back-office scope (the one named): acting for no one is back-office work.
    #[error("a service acting for no one needs scope {0}; name the customer it acts for in X-On-Behalf-Of")]
    ForNoOne(String),
    /// `alg` is not an asymmetric signature algorithm (`none`, HMAC, …).
    #[error("the token's algorithm is not accepted (asymmetric signatures only)")]
    Algorithm,
    /// No key of the issuer has the token's `kid`.
    #[error("the token is signed with a key the issuer does not publish")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the token's signature does not verify")]
    Signature,
    /// Past `exp`.
    #[error("the token has expired")]
    Expired,
    /// Before `nbf`.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Another `iss`.
    #[error("the token is from another issuer")]
    Issuer,
    /// Neither `client_id` nor `aud` is an accepted app client.
    #[error("the token is for another audience")]
    Audience,
    /// `token_use` is not `access` (an ID token sent as an access token).
    #[error("the token is not an access token")]
    TokenUse,
    /// `sub` is not something a service can name a customer by (see
    /// [`is_subject`]): such a customer could not be told apart from no one.
    #[error("the token's subject is not 1 to 256 visible ASCII characters")]
    Subject,
    /// `X-On-Behalf-Of` is present but names no one usable, or is sent twice.
    #[error("X-On-Behalf-Of must be sent once and name a customer: 1 to 256 visible ASCII characters")]
    OnBehalfOf,
    /// The route needs a scope the token lacks (for routes of the
    /// deployment's services, and for `X-On-Behalf-Of`, the service scope).
    #[error("the token lacks scope {0}")]
    Scope(String),
    /// The issuer's keys could not be read.
    #[error("the issuer's signing keys could not be read")]
    Keys,
}

impl From<AuthError> for Problem {
    fn from(err: AuthError) -> Self {
        let detail = err.to_string();
        match err {
            AuthError::Scope(_) | AuthError::ForNoOne(_) => {
                Problem::new(StatusCode::FORBIDDEN, "insufficient-scope", "Insufficient scope")
            }
            AuthError::OnBehalfOf => Problem::new(StatusCode::BAD_REQUEST, "invalid-header", "A header is invalid")
                .field("X-On-Behalf-Of", detail.clone()),
            AuthError::Keys => Problem::unavailable(&err),
            _ => Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized"),
        }
        .detail(detail)
        .before_work()
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let challenge = match &self {
            AuthError::Missing => String::from("Bearer"),
            AuthError::Scope(scope) | AuthError::ForNoOne(scope) => {
                format!(r#"Bearer error="insufficient_scope", scope="{scope}""#)
            }
            AuthError::Keys | AuthError::OnBehalfOf => String::new(),
            other => format!(r#"Bearer error="invalid_token", error_description="{other}""#),
        };
        let mut response = Problem::from(self).into_response();
        if let Ok(value) = HeaderValue::from_str(&challenge)
            && !challenge.is_empty()
        {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    }
}

/// A verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// `sub`: who (a user, or the app client of a machine token).
    pub subject: String,
    /// The app client the token was issued to.
    pub client_id: String,
    /// The token's scopes.
    pub scopes: Vec<String>,
    /// Whether it has the shape of a Cognito client-credentials token: a
    /// `client_id` claim equal to `sub`, `token_use` `access`, and no user
    /// named (`username`, which Cognito sets on every token a user signed
    /// in for). Only such a token of a listed machine client is a service.
    pub machine: bool,
}

/// Who is calling: a request extension on every route that is not public.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A verified bearer token.
    Customer(Customer),
    /// A service of this deployment (a token with the API's service scope)
    /// acting as the customer it names in `X-On-Behalf-Of`.
    Service {
        /// The machine client the token was issued to: which service calls.
        client_id: String,
        /// The customer it acts for.
        on_behalf_of: String,
        /// Synthetic when that customer is one of the deployment's machine clients.
        records: Records,
    },
    /// The back office (a machine client's token with the API's back-office
    /// scope): acting as the customer it names, if it names one.
    BackOffice {
        /// The machine client the token was issued to.
        client_id: String,
        /// The customer it acts for, if any.
        on_behalf_of: Option<String>,
        /// Synthetic when it names one of the deployment's machine clients;
        /// acting for no one, it works on customers' records only.
        records: Records,
    },
}

impl Principal {
    /// Whose records the request reads and writes (see [`crate::synthetic`]):
    /// synthetic when the customer it acts for is one of the deployment's
    /// machine clients (the traffic hooks as the owner of their test
    /// records), customers' otherwise, and for the back office acting for no one.
    pub fn records(&self) -> Records {
        match self {
            Principal::Customer(customer) if customer.machine => Records::Synthetic,
            Principal::Customer(_) => Records::Customers,
            Principal::Service { records, .. } | Principal::BackOffice { records, .. } => *records,
        }
    }

    /// The customer whose data the request may touch: `None` for the back
    /// office acting for no one, which is not limited to one owner.
    pub fn acting_for(&self) -> Option<&str> {
        match self {
            Principal::Customer(customer) => Some(&customer.subject),
            Principal::Service { on_behalf_of, .. } => Some(on_behalf_of),
            Principal::BackOffice { on_behalf_of, .. } => on_behalf_of.as_deref(),
        }
    }

    /// The customer the request acts for, for work only a customer's
    /// request may do (`what`, e.g. "a transfer": opening their records,
    /// moving their money). The back office acting for no one is refused
    /// with a 403 `no-customer` problem, before any work, so no credential
    /// moves money between accounts without naming whose they are.
    pub fn customer(&self, what: &str) -> Result<&str, Problem> {
        self.acting_for().ok_or_else(|| {
            Problem::new(StatusCode::FORBIDDEN, "no-customer", "No customer")
                .detail(format!(
                    "{what} is made by a customer, or by a service on behalf of one (X-On-Behalf-Of)"
                ))
                .before_work()
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Problem> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| Problem::internal(&"a handler asked for the principal of a route with no access policy"))
    }
}

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`GET /health` only).
    Public,
    /// A token with this scope, a service of this deployment acting for a
    /// customer, or the back office.
    Scope(&'static str),
    /// The back office only (a token with the API's back-office scope): work
    /// no customer may do for themselves, nor a service acting for one
    /// (external credits, debits and voids).
    BackOffice,
}

/// What the claims of an access token carry that the verifier reads.
#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    /// One string (the library also takes an array of issuers).
    iss: String,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    token_use: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains(&self, id: &str) -> bool {
        match self {
            Audience::One(one) => one == id,
            Audience::Many(many) => many.iter().any(|a| a == id),
        }
    }
}

/// A public key and the algorithm it was published for.
struct Key {
    key: DecodingKey,
    algorithm: Option<Algorithm>,
}

/// Checks tokens against one issuer.
pub struct Verifier {
    settings: IdentitySettings,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, Arc<Key>>>,
    /// When the keys were last fetched for an unknown `kid`.
    refetched: Mutex<Option<Instant>>,
}

/// The issuer's keys could not be fetched or read.
#[derive(Debug, thiserror::Error)]
#[error("fetching the JWKS at {url}: {message}")]
pub struct JwksError {
    url: String,
    message: String,
}

impl Verifier {
    /// A verifier whose keys are fetched now; when that fails (the issuer
    /// unreachable at a cold start) it starts without keys and fetches them
    /// for the first token, at most every [`REFETCH_EVERY`].
    pub async fn load(settings: IdentitySettings, http: reqwest::Client) -> Self {
        let verifier = Self::new(settings, http);
        match verifier.fetch().await {
            Ok(keys) => *verifier.keys.write().await = keys,
            Err(err) => tracing::warn!(error = %err, "no signing keys at init; fetching them for the first token"),
        }
        verifier
    }

    /// A verifier with no keys yet: they are fetched for the first token.
    pub fn new(settings: IdentitySettings, http: reqwest::Client) -> Self {
        Self {
            settings,
            http,
            keys: RwLock::new(HashMap::new()),
            refetched: Mutex::new(None),
        }
    }

    /// The settings it checks tokens against.
    pub fn settings(&self) -> &IdentitySettings {
        &self.settings
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<Key>>, JwksError> {
        let error = |message: String| JwksError {
            url: self.settings.jwks_url.clone(),
            message,
        };
        let response = self
            .http
            .get(&self.settings.jwks_url)
            .timeout(FETCH_TIMEOUT)
            .send()
            .await
            .map_err(|e| error(e.to_string()))?;
        if !response.status().is_success() {
            return Err(error(format!("status {}", response.status())));
        }
        let set: JwkSet = response.json().await.map_err(|e| error(e.to_string()))?;
        Ok(keys_of(&set))
    }

    async fn key(&self, kid: &str) -> Result<Arc<Key>, AuthError> {
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        // One fetch at a time, and not more often than REFETCH_EVERY: a
        // stream of made-up kids cannot make every request fetch the JWKS.
        let mut refetched = self.refetched.lock().await;
        if let Some(key) = self.keys.read().await.get(kid) {
            return Ok(key.clone());
        }
        if refetched.is_some_and(|at| at.elapsed() < REFETCH_EVERY) {
            return Err(AuthError::UnknownKey);
        }
        *refetched = Some(Instant::now());
        let keys = self.fetch().await.map_err(|err| {
            tracing::warn!(error = %err, "could not refresh the signing keys");
            AuthError::Keys
        })?;
        let found = keys.get(kid).cloned();
        *self.keys.write().await = keys;
        found.ok_or(AuthError::UnknownKey)
    }

    /// Verifies a bearer token and returns who it is for.
    pub async fn verify(&self, token: &str) -> Result<Customer, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| match declared_algorithm(token) {
            // A header that names an algorithm this library does not even
            // know (`none`) is a refused algorithm, not a malformed token.
            Some(_) => AuthError::Algorithm,
            None => AuthError::Malformed,
        })?;
        if !ASYMMETRIC.contains(&header.alg) {
            return Err(AuthError::Algorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.key(&kid).await?;
        if key.algorithm.is_some_and(|published| published != header.alg) {
            return Err(AuthError::Algorithm);
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        let claims = jsonwebtoken::decode::<Claims>(token, &key.key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                    ErrorKind::InvalidIssuer => AuthError::Issuer,
                    ErrorKind::InvalidSignature => AuthError::Signature,
                    ErrorKind::InvalidAlgorithm => AuthError::Algorithm,
                    ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(claim.clone()),
                    _ => AuthError::Malformed,
                }
            })?
            .claims;
        if claims.iss != self.settings.issuer {
            return Err(AuthError::Issuer);
        }
        if claims.token_use.as_deref().is_some_and(|usage| usage != "access") {
            return Err(AuthError::TokenUse);
        }
        let accepted = |id: &str| self.settings.client_ids.iter().any(|c| c == id);
        let client_id = match (&claims.client_id, &claims.aud) {
            (Some(id), _) if accepted(id) => id.clone(),
            (None, Some(aud)) => self
                .settings
                .client_ids
                .iter()
                .find(|c| aud.contains(c))
                .cloned()
                .ok_or(AuthError::Audience)?,
            _ => return Err(AuthError::Audience),
        };
        if !is_subject(&claims.sub) {
            return Err(AuthError::Subject);
        }
        let machine = claims.client_id.as_deref() == Some(claims.sub.as_str())
            && claims.token_use.as_deref() == Some("access")
            && claims.username.is_none();
        Ok(Customer {
            subject: claims.sub,
            client_id,
            // RFC 6749 §3.3: scopes are separated by spaces (0x20) only.
            scopes: claims
                .scope
                .unwrap_or_default()
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            machine,
        })
    }
}

/// The `alg` a token's header declares, read without trusting anything else in it.
fn declared_algorithm(token: &str) -> Option<String> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct Declared {
        alg: String,
    }
    let header = token.split('.').next()?;
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).ok()?;
    serde_json::from_slice::<Declared>(&json).ok().map(|d| d.alg)
}

/// The signing keys of a JWKS: asymmetric keys with a `kid` (a shared
/// secret published as `oct` is no signing key of an issuer's).
fn keys_of(set: &JwkSet) -> HashMap<String, Arc<Key>> {
    let mut keys = HashMap::new();
    for jwk in &set.keys {
        let (Some(kid), false) = (
            jwk.common.key_id.clone(),
            matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_)),
        ) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_jwk(jwk) else { continue };
        let algorithm = jwk
            .common
            .key_algorithm
            .and_then(|a| a.to_string().parse::<Algorithm>().ok());
        keys.insert(kid, Arc::new(Key { key, algorithm }));
    }
    keys
}

/// What the access checks need: the verifier and the API's service and
/// back-office scopes.
pub struct Gate {
    verifier: Arc<Verifier>,
    service_scope: String,
    back_office_scope: String,
}

impl Gate {
    /// A gate over `verifier` for `service`'s API, whose scopes for machine
    /// clients are [`service_scope`] and [`back_office_scope`] of `service.name`.
    pub fn new(verifier: Arc<Verifier>, service: &ServiceInfo) -> Arc<Self> {
        Arc::new(Self {
            verifier,
            service_scope: service_scope(service.name),
            back_office_scope: back_office_scope(service.name),
        })
    }

    /// The scopes any one of which lets a token use a route with `access`
    /// (what the gateway's authorizer is given for its method); none for a
    /// public route.
    pub fn scopes(&self, access: Access) -> Vec<String> {
        match access {
            Access::Public => Vec::new(),
            Access::Scope(scope) => vec![
                scope.to_owned(),
                self.service_scope.clone(),
                self.back_office_scope.clone(),
            ],
            Access::BackOffice => vec![self.back_office_scope.clone()],
        }
    }

    /// Whether `id` is one of the deployment's machine clients.
    fn is_machine_client(&self, id: &str) -> bool {
        self.verifier.settings().service_client_ids.iter().any(|c| c == id)
    }

    /// Who `presented` (the bearer token) is, for `access`; `headers` are
    /// read for `X-On-Behalf-Of` only once the token is verified, so no
    /// stranger learns their rules.
    async fn principal(
        &self,
        presented: &str,
        headers: &http::HeaderMap,
        access: Access,
    ) -> Result<Principal, AuthError> {
        let token = self.verifier.verify(presented).await?;
        let on_behalf_of = on_behalf_of(headers)?.map(str::to_owned);
        let back_office = token.scopes.contains(&self.back_office_scope);
        if back_office || token.scopes.contains(&self.service_scope) {
            // Defence in depth: the pool grants these scopes to machine
            // clients only, and only their own tokens make a service.
            let machine = self.is_machine_client(&token.client_id) && token.machine;
            if !machine {
                return Err(AuthError::NotAService);
            }
            let client_id = token.client_id;
            let records = match &on_behalf_of {
                Some(customer) if self.is_machine_client(customer) => Records::Synthetic,
                _ => Records::Customers,
            };
            return match (back_office, access, on_behalf_of) {
                (true, _, on_behalf_of) => Ok(Principal::BackOffice {
                    client_id,
                    on_behalf_of,
                    records,
                }),
                (false, Access::BackOffice, _) => Err(AuthError::Scope(self.back_office_scope.clone())),
                (false, _, Some(on_behalf_of)) => Ok(Principal::Service {
                    client_id,
                    on_behalf_of,
                    records,
                }),
                (false, _, None) => Err(AuthError::ForNoOne(self.back_office_scope.clone())),
            };
        }
        // A client-credentials token is a customer only for the deployment's
        // own machine clients (the traffic hooks, as the customer of the
        // test accounts they open); any other client is no one's.
        if token.machine && !self.is_machine_client(&token.client_id) {
            return Err(AuthError::NotACustomer);
        }
        // The machine clients' ids are the reserved owners of synthetic
        // records: a user's token naming one would read and write them.
        if !token.machine && self.is_machine_client(&token.subject) {
            return Err(AuthError::ReservedSubject);
        }
        match access {
            // Only a service may name a customer.
            _ if on_behalf_of.is_some() => Err(AuthError::Scope(self.service_scope.clone())),
            Access::Scope(scope) if token.scopes.iter().any(|s| s == scope) => Ok(Principal::Customer(token)),
            Access::Scope(scope) => Err(AuthError::Scope(scope.to_owned())),
            // Public routes never reach the gate.
            Access::BackOffice | Access::Public => Err(AuthError::Scope(self.back_office_scope.clone())),
        }
    }
}

/// Whether `subject` is a customer's name a service can pass on in
/// `X-On-Behalf-Of` unchanged: 1 to 256 visible ASCII characters (Cognito's
/// are UUIDs). Tokens with any other `sub` are refused, so every principal
/// names its customer exactly.
pub fn is_subject(subject: &str) -> bool {
    !subject.is_empty() && subject.len() <= 256 && subject.bytes().all(|b| b.is_ascii_graphic())
}

/// The customer `X-On-Behalf-Of` names: none when the header is absent; an
/// error when it is present but unusable or sent twice, which must never
/// read as "acting for no one".
fn on_behalf_of(headers: &http::HeaderMap) -> Result<Option<&str>, AuthError> {
    let mut values = headers.get_all(&ON_BEHALF_OF_HEADER).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::OnBehalfOf);
    }
    match value.to_str() {
        Ok(value) if is_subject(value) => Ok(Some(value)),
        _ => Err(AuthError::OnBehalfOf),
    }
}

async fn authorize(State((gate, access)): State<(Arc<Gate>, Access)>, mut req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    if req.headers().get_all(header::AUTHORIZATION).iter().nth(1).is_some() {
        return AuthError::Duplicate.into_response();
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(crate::http::bearer_token);
    let Some(presented) = presented else {
        return AuthError::Missing.into_response();
    };
    match gate.principal(presented, req.headers(), access).await {
        Ok(principal) => {
            req.extensions_mut().insert(principal);
            next.run(req).await
        }
        Err(err) => err.into_response(),
    }
}

/// One route and who may use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutePolicy {
    /// The route's path template, e.g. `/accounts/{id}`.
    pub path: &'static str,
    /// Who may use it.
    pub access: Access,
    /// The scopes any one of which admits a token ([`Gate::scopes`]).
    pub scopes: Vec<String>,
}

/// A service's routes, each added with its [`Access`]; there is no other
/// way to add one, so no route ships without a policy.
pub struct Routes<S = ()> {
    router: Router<S>,
    policy: Vec<RoutePolicy>,
    gate: Arc<Gate>,
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// No routes yet; every one added is checked through `gate`.
    pub fn new(gate: Arc<Gate>) -> Self {
        Self {
            router: Router::new(),
            policy: Vec::new(),
            gate,
        }
    }

    /// Adds `path` served by `method`, for `access`.
    pub fn route(mut self, path: &'static str, method: MethodRouter<S>, access: Access) -> Self {
        let check = axum::middleware::from_fn_with_state((self.gate.clone(), access), authorize);
        self.router = self.router.route(path, method.route_layer(check));
        let scopes = self.gate.scopes(access);
        self.policy.push(RoutePolicy { path, access, scopes });
        self
    }

    /// Every route and its access, in the order they were added.
    pub fn policy(&self) -> &[RoutePolicy] {
        &self.policy
    }

    /// The routes with their state.
    pub fn with_state(self, state: S) -> Routes<()> {
        Routes {
            router: self.router.with_state(state),
            policy: self.policy,
            gate: self.gate,
        }
    }
}

impl Routes<()> {
    /// The router (used by [`crate::http::service`]).
    pub(crate) fn into_router(self) -> Router {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> IdentitySettings {
        IdentitySettings {
            issuer: String::from("https://issuer.example"),
            jwks_url: String::from("http://127.0.0.1:9/unused"),
            client_ids: vec![String::from("app")],
            service_client_ids: Vec::new(),
        }
    }

    #[tokio::test]
    async fn alg_none_and_hmac_tokens_are_refused_before_any_key_lookup() {
        let verifier = Verifier::new(settings(), reqwest::Client::new());
        let b64 = |s: &str| base64_url(s.as_bytes());
        let none = format!(
            "{}.{}.",
            b64(r#"{"alg":"none","typ":"JWT"}"#),
            b64(r#"{"sub":"x","iss":"https://issuer.example","exp":9999999999}"#)
        );
        assert_eq!(verifier.verify(&none).await, Err(AuthError::Algorithm));
        let hmac = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"HS256","typ":"JWT","kid":"k"}"#),
            b64(r#"{"sub":"x","iss":"https://issuer.example","exp":9999999999}"#)
        );
        assert_eq!(verifier.verify(&hmac).await, Err(AuthError::Algorithm));
        assert_eq!(verifier.verify("not-a-jwt").await, Err(AuthError::Malformed));
    }

    fn base64_url(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    #[test]
    fn a_shared_secret_in_the_jwks_is_no_signing_key() {
        let set: JwkSet = serde_json::from_str(r#"{"keys":[{"kty":"oct","kid":"s","k":"c2VjcmV0"}]}"#).unwrap();
        assert!(keys_of(&set).is_empty());
    }

    #[test]
    fn refusals_are_problems_that_never_echo_the_token() {
        for err in [
            AuthError::Expired,
            AuthError::Scope(String::from("payments/write")),
            AuthError::Missing,
        ] {
            let response = err.clone().into_response();
            let expected = if matches!(err, AuthError::Scope(_)) { 403 } else { 401 };
            assert_eq!(response.status().as_u16(), expected, "{err}");
            assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        }
    }
}

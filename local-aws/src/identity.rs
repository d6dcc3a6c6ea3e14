//! The stage's issuer on the local stack: a Cognito user pool on moto, made
//! as `infra/` makes one per stage, through the real Cognito API.
//!
//! - a resource server per service with the registry's `scopes`
//!   (`accounts/read`, `payments/write`, …);
//! - an app client for customers (no secret; `USER_PASSWORD_AUTH` here,
//!   managed login on AWS), allowed every scope but the machine clients'
//!   (`<service>/service` and `<service>/back-office`, see
//!   `shared::auth::is_machine_scope`);
//! - a machine client for the traffic hooks (a secret, the
//!   `client_credentials` grant at the pool's token endpoint), allowed every scope;
//! - a machine client for each service that calls others (the registry's
//!   `calls`), allowed the service scope of each service it calls.
//!
//! Each machine client's id and secret are put in Secrets Manager
//! (`shared::credentials::client_secret`) and the token endpoint in its
//! configuration (`token_url`), where the hooks and the services read them.
//!
//! Customers are users of the pool who sign in with `InitiateAuth`; their
//! access tokens carry their client's scopes (`moto_server.py` says why).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, ExplicitAuthFlowsType, MessageActionType, OAuthFlowType, ResourceServerScopeType,
};
use shared::auth::IdentitySettings;
use shared::naming::Deployment;
use std::collections::BTreeMap;

use crate::Error;
use crate::registry::Service;

/// A user pool on the local stack and its clients.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The pool's id.
    pub pool_id: String,
    /// What a service verifies tokens against.
    pub settings: IdentitySettings,
    /// The customers' app client.
    pub customer_client_id: String,
    /// The traffic hooks' machine client.
    pub machine_client_id: String,
    /// Its secret.
    pub machine_client_secret: String,
    /// The machine client of each service that calls others, by service.
    pub service_clients: BTreeMap<String, MachineClient>,
    /// The pool's token endpoint (`client_credentials`).
    pub token_url: String,
    /// Every scope of every service.
    pub scopes: Vec<String>,
    /// The scopes a customer may be given: all but the services' own.
    pub customer_scopes: Vec<String>,
    /// The Cognito API endpoint (the local stack's).
    pub endpoint: String,
}

/// A machine client of the pool.
#[derive(Debug, Clone)]
pub struct MachineClient {
    /// The app client id.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The scopes it is allowed.
    pub scopes: Vec<String>,
}

/// The name the hooks' machine client has and its secret and configuration
/// are kept under (the hooks' configuration name).
pub const HOOKS: &str = "traffic-gate";

/// A customer of the pool, signed in.
#[derive(Debug, Clone)]
pub struct Customer {
    /// The user name.
    pub username: String,
    /// The password it signs in with.
    pub password: String,
    /// `sub`: who its tokens name.
    pub subject: String,
    /// An access token.
    pub access_token: String,
}

fn failed(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |message| Error::Seed {
        what: what.to_owned(),
        message,
    }
}

fn sdk_message<E: std::error::Error + 'static>(err: E) -> String {
    aws_sdk_cognitoidentityprovider::error::DisplayErrorContext(err).to_string()
}

/// Every scope the services declare, as `<service>/<name>`.
pub fn scopes(services: &[Service]) -> Vec<String> {
    services
        .iter()
        .flat_map(|s| s.spec.scopes.keys().map(move |name| format!("{}/{name}", s.name)))
        .collect()
}

/// The scopes a customer's app client is allowed: every scope but the
/// machine clients' (service and back-office), which make a token a
/// service of the deployment.
pub fn customer_scopes(services: &[Service]) -> Vec<String> {
    services
        .iter()
        .flat_map(|s| {
            s.spec
                .scopes
                .keys()
                .filter(|name| !shared::auth::is_machine_scope(name))
                .map(move |name| format!("{}/{name}", s.name))
        })
        .collect()
}

/// The scopes `service`'s machine client is allowed: the service scope of
/// each service it calls that has one.
pub fn caller_scopes(service: &Service, services: &[Service]) -> Vec<String> {
    service
        .spec
        .calls
        .iter()
        .filter(|callee| {
            services
                .iter()
                .any(|s| &&s.name == callee && s.spec.scopes.contains_key(shared::auth::SERVICE_SCOPE))
        })
        .map(|callee| shared::auth::service_scope(callee))
        .collect()
}

/// Creates the deployment's user pool, its resource servers and both app
/// clients on the stack at `endpoint` (moto).
pub async fn seed(
    sdk: &aws_config::SdkConfig,
    endpoint: &str,
    deployment: &Deployment,
    services: &[Service],
) -> Result<Identity, Error> {
    let cognito = Client::new(sdk);
    let pool_name = format!("{}-{}-customers", deployment.app, deployment.stage);
    let pool = cognito
        .create_user_pool()
        .pool_name(&pool_name)
        .send()
        .await
        .map_err(|e| failed(&pool_name)(sdk_message(e)))?;
    let pool_id = pool
        .user_pool
        .and_then(|p| p.id)
        .ok_or_else(|| failed(&pool_name)(String::from("no pool id")))?;
    for service in services.iter().filter(|s| !s.spec.scopes.is_empty()) {
        let mut request = cognito
            .create_resource_server()
            .user_pool_id(&pool_id)
            .identifier(&service.name)
            .name(&service.name);
        for (name, description) in &service.spec.scopes {
            request = request.scopes(
                ResourceServerScopeType::builder()
                    .scope_name(name)
                    .scope_description(description)
                    .build()
                    .map_err(|e| failed(&service.name)(e.to_string()))?,
            );
        }
        request
            .send()
            .await
            .map_err(|e| failed(&service.name)(sdk_message(e)))?;
    }
    let scopes = scopes(services);
    let customers = cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("customers")
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .allowed_o_auth_flows(OAuthFlowType::Code)
        .allowed_o_auth_flows_user_pool_client(true)
        .callback_urls("http://localhost/callback")
        .set_allowed_o_auth_scopes(Some(customer_scopes(services)))
        .send()
        .await
        .map_err(|e| failed("the customers' client")(sdk_message(e)))?
        .user_pool_client
        .ok_or_else(|| failed("the customers' client")(String::from("no client")))?;
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    let token_url = format!("{endpoint}/oauth2/token");
    let hooks = machine_client(sdk, deployment, &pool_id, HOOKS, scopes.clone(), &token_url).await?;
    let mut service_clients = BTreeMap::new();
    for service in services {
        let allowed = caller_scopes(service, services);
        if !allowed.is_empty() {
            let client = machine_client(sdk, deployment, &pool_id, &service.name, allowed, &token_url).await?;
            service_clients.insert(service.name.clone(), client);
        }
    }
    let customer_client_id = customers.client_id.unwrap_or_default();
    let mut service_client_ids = vec![hooks.client_id.clone()];
    service_client_ids.extend(service_clients.values().map(|c| c.client_id.clone()));
    let mut client_ids = vec![customer_client_id.clone()];
    client_ids.extend(service_client_ids.iter().cloned());
    Ok(Identity {
        settings: IdentitySettings {
            issuer: format!("https://cognito-idp.{}.amazonaws.com/{pool_id}", crate::moto::REGION),
            jwks_url: format!("{endpoint}/{pool_id}/.well-known/jwks.json"),
            client_ids,
            service_client_ids,
        },
        pool_id,
        customer_client_id,
        machine_client_secret: hooks.client_secret,
        machine_client_id: hooks.client_id,
        service_clients,
        token_url,
        scopes,
        customer_scopes: customer_scopes(services),
        endpoint,
    })
}

/// Tokens for machine client `client_id` at `token_url` with `scopes`, as a
/// service gets them from its secret (here held in memory, never re-read).
pub fn token_source(
    sdk: &aws_config::SdkConfig,
    token_url: &str,
    client_id: &str,
    client_secret: &str,
    scopes: Vec<String>,
) -> shared::credentials::TokenSource {
    let client = shared::secrets::SecretStore::with_value(
        aws_sdk_secretsmanager::Client::new(sdk),
        "held in memory",
        std::time::Duration::from_secs(24 * 60 * 60),
        shared::secrets::Secret::new(shared::credentials::ClientCredentials {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
        }),
    );
    shared::credentials::TokenSource::new(token_url, std::sync::Arc::new(client), scopes, reqwest::Client::new())
}

/// Creates machine client `name` allowed `scopes`, and puts its id and
/// secret in Secrets Manager and the token endpoint in its configuration.
async fn machine_client(
    sdk: &aws_config::SdkConfig,
    deployment: &Deployment,
    pool_id: &str,
    name: &str,
    scopes: Vec<String>,
    token_url: &str,
) -> Result<MachineClient, Error> {
    let created = Client::new(sdk)
        .create_user_pool_client()
        .user_pool_id(pool_id)
        .client_name(name)
        .generate_secret(true)
        // No user sign-in through a machine client (as infra/ sets it).
        .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
        .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
        .allowed_o_auth_flows_user_pool_client(true)
        .set_allowed_o_auth_scopes(Some(scopes.clone()))
        .send()
        .await
        .map_err(|e| failed(name)(sdk_message(e)))?
        .user_pool_client
        .ok_or_else(|| failed(name)(String::from("no client")))?;
    let client = MachineClient {
        client_id: created.client_id.unwrap_or_default(),
        client_secret: created.client_secret.unwrap_or_default(),
        scopes,
    };
    let value = serde_json::json!({ "client_id": client.client_id, "client_secret": client.client_secret });
    crate::seed::put_secret(
        &aws_sdk_secretsmanager::Client::new(sdk),
        &deployment.secret_name(&shared::credentials::client_secret(name)),
        &value.to_string(),
    )
    .await?;
    crate::seed::put_parameter(
        &aws_sdk_ssm::Client::new(sdk),
        &format!(
            "{}{}",
            deployment.config_prefix(name),
            shared::credentials::TOKEN_URL_KEY
        ),
        token_url,
        false,
    )
    .await?;
    Ok(client)
}

impl Identity {
    /// The variables a service process verifies tokens with.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            (shared::env::AUTH_ISSUER.to_owned(), self.settings.issuer.clone()),
            (shared::env::AUTH_JWKS_URL.to_owned(), self.settings.jwks_url.clone()),
            (
                shared::env::AUTH_CLIENT_IDS.to_owned(),
                self.settings.client_ids.join(","),
            ),
            (
                shared::env::AUTH_SERVICE_CLIENT_IDS.to_owned(),
                self.settings.service_client_ids.join(","),
            ),
        ]
    }

    /// A new customer of the pool (a confirmed user with a permanent
    /// password), signed in with the customers' client.
    pub async fn customer(&self, sdk: &aws_config::SdkConfig, username: &str) -> Result<Customer, Error> {
        let cognito = Client::new(sdk);
        let password = format!("Local-{}-Pw1!", uuid::Uuid::new_v4().simple());
        cognito
            .admin_create_user()
            .user_pool_id(&self.pool_id)
            .username(username)
            .message_action(MessageActionType::Suppress)
            .send()
            .await
            .map_err(|e| failed(username)(sdk_message(e)))?;
        cognito
            .admin_set_user_password()
            .user_pool_id(&self.pool_id)
            .username(username)
            .password(&password)
            .permanent(true)
            .send()
            .await
            .map_err(|e| failed(username)(sdk_message(e)))?;
        self.sign_in(sdk, username, &password).await
    }

    /// Signs `username` in (`InitiateAuth`, `USER_PASSWORD_AUTH`).
    pub async fn sign_in(
        &self,
        sdk: &aws_config::SdkConfig,
        username: &str,
        password: &str,
    ) -> Result<Customer, Error> {
        let cognito = Client::new(sdk);
        let signed_in = cognito
            .initiate_auth()
            .client_id(&self.customer_client_id)
            .auth_flow(AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| failed(username)(sdk_message(e)))?;
        let access_token = signed_in
            .authentication_result
            .and_then(|r| r.access_token)
            .ok_or_else(|| failed(username)(String::from("no access token")))?;
        let user = cognito
            .get_user()
            .access_token(&access_token)
            .send()
            .await
            .map_err(|e| failed(username)(sdk_message(e)))?;
        let subject = user
            .user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .map(str::to_owned)
            .ok_or_else(|| failed(username)(String::from("no sub")))?;
        Ok(Customer {
            username: username.to_owned(),
            password: password.to_owned(),
            subject,
            access_token,
        })
    }

    /// A token for the hooks' machine client with the customers' scopes
    /// (`client_credentials` at the pool's token endpoint), as the traffic
    /// hooks get theirs for calling routes as a customer.
    pub async fn machine_token(&self) -> Result<String, Error> {
        self.hooks_token(&self.customer_scopes).await
    }

    /// A token for the hooks' machine client with every machine scope
    /// (service and back-office), as the hooks get theirs for the back
    /// office's routes (credits that fund their test accounts).
    pub async fn service_token(&self) -> Result<String, Error> {
        self.hooks_token(&self.service_scopes()).await
    }

    /// Every machine scope (`<service>/service`, `<service>/back-office`):
    /// the scopes no customer has.
    pub fn service_scopes(&self) -> Vec<String> {
        self.scopes
            .iter()
            .filter(|s| !self.customer_scopes.contains(s))
            .cloned()
            .collect()
    }

    /// A token for `service`'s machine client, as that service gets its own.
    pub async fn client_token(&self, service: &str) -> Result<String, Error> {
        let client = self
            .service_clients
            .get(service)
            .ok_or_else(|| failed(service)(String::from("no machine client: it calls no service")))?;
        self.token(&client.client_id, &client.client_secret, &[]).await
    }

    async fn hooks_token(&self, scopes: &[String]) -> Result<String, Error> {
        self.token(&self.machine_client_id, &self.machine_client_secret, scopes)
            .await
    }

    async fn token(&self, client_id: &str, client_secret: &str, scopes: &[String]) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
        }
        let response = reqwest::Client::new()
            .post(&self.token_url)
            .basic_auth(client_id, Some(client_secret))
            .form(&[("grant_type", "client_credentials"), ("scope", &scopes.join(" "))])
            .send()
            .await
            .map_err(|e| failed("a machine token")(e.to_string()))?;
        if !response.status().is_success() {
            return Err(failed("a machine token")(format!("status {}", response.status())));
        }
        let token: Token = response
            .json()
            .await
            .map_err(|e| failed("a machine token")(e.to_string()))?;
        Ok(token.access_token)
    }
}

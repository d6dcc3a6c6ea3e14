//! The stage's issuer on the local stack: a Cognito user pool on moto, made
//! as `infra/` makes one per stage, through the real Cognito API.
//!
//! - a resource server per service with the registry's `scopes`
//!   (`accounts/read`, `payments/write`, …);
//! - an app client for customers (no secret; `USER_PASSWORD_AUTH` here,
//!   managed login on AWS), allowed every scope;
//! - a machine client for the traffic hooks (a secret, the
//!   `client_credentials` grant at the pool's token endpoint), allowed every scope.
//!
//! Customers are users of the pool who sign in with `InitiateAuth`; their
//! access tokens carry their client's scopes (`moto_server.py` says why).

use aws_sdk_cognitoidentityprovider::Client;
use aws_sdk_cognitoidentityprovider::types::{
    AuthFlowType, ExplicitAuthFlowsType, MessageActionType, OAuthFlowType, ResourceServerScopeType,
};
use shared::auth::IdentitySettings;
use shared::naming::Deployment;

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
    /// The pool's token endpoint (`client_credentials`).
    pub token_url: String,
    /// Every scope of every service.
    pub scopes: Vec<String>,
    /// The Cognito API endpoint (the local stack's).
    pub endpoint: String,
}

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
        .set_allowed_o_auth_scopes(Some(scopes.clone()))
        .send()
        .await
        .map_err(|e| failed("the customers' client")(sdk_message(e)))?
        .user_pool_client
        .ok_or_else(|| failed("the customers' client")(String::from("no client")))?;
    let machine = cognito
        .create_user_pool_client()
        .user_pool_id(&pool_id)
        .client_name("traffic-gate")
        .generate_secret(true)
        .allowed_o_auth_flows(OAuthFlowType::ClientCredentials)
        .allowed_o_auth_flows_user_pool_client(true)
        .set_allowed_o_auth_scopes(Some(scopes.clone()))
        .send()
        .await
        .map_err(|e| failed("the hooks' client")(sdk_message(e)))?
        .user_pool_client
        .ok_or_else(|| failed("the hooks' client")(String::from("no client")))?;
    let customer_client_id = customers.client_id.unwrap_or_default();
    let machine_client_id = machine.client_id.unwrap_or_default();
    let endpoint = endpoint.trim_end_matches('/').to_owned();
    Ok(Identity {
        settings: IdentitySettings {
            issuer: format!("https://cognito-idp.{}.amazonaws.com/{pool_id}", crate::moto::REGION),
            jwks_url: format!("{endpoint}/{pool_id}/.well-known/jwks.json"),
            client_ids: vec![customer_client_id.clone(), machine_client_id.clone()],
        },
        pool_id,
        customer_client_id,
        machine_client_secret: machine.client_secret.unwrap_or_default(),
        machine_client_id,
        token_url: format!("{endpoint}/oauth2/token"),
        scopes,
        endpoint,
    })
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

    /// A token for the machine client (`client_credentials` at the pool's
    /// token endpoint), as the traffic hooks get theirs.
    pub async fn machine_token(&self) -> Result<String, Error> {
        #[derive(serde::Deserialize)]
        struct Token {
            access_token: String,
        }
        let response = reqwest::Client::new()
            .post(&self.token_url)
            .basic_auth(&self.machine_client_id, Some(&self.machine_client_secret))
            .form(&[("grant_type", "client_credentials")])
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

//! Test support: a fresh deployment of accounts on the local stack (its own
//! table, parameters, secret and user pool, seeded from the registry),
//! initialised through the same `accounts::init` that `main` calls. Calls go
//! in as the back office acting for the fixture's customer (the hooks'
//! machine client's token, scope `accounts/back-office`, and
//! `X-On-Behalf-Of`), unless a test says otherwise.

#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::naming::Deployment;
use tower::ServiceExt;

/// A deployment of accounts that no other test shares.
#[derive(Clone)]
pub struct Fixture {
    pub state: accounts::AppState,
    pub router: axum::Router,
    /// A token of a service of the deployment (payments' machine client's:
    /// `accounts/service`, acting for customers only).
    pub service_token: String,
    /// A back-office token (the hooks' machine client's, every machine scope).
    pub back_office_token: String,
    /// The deployment's user pool.
    pub identity: local_aws::identity::Identity,
    /// The customer calls act for.
    pub customer: local_aws::identity::Customer,
}

pub async fn fixture() -> Fixture {
    // Logs go to stdout, which nextest shows for a failing test.
    shared::telemetry::init(&accounts::SERVICE);
    let sdk = local_aws::test_sdk_config().await;
    let deployment = Deployment::new(local_aws::unique("t"), "test");
    let mut services = local_aws::registry::load().expect("registry");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    services.retain(|s| s.name == "accounts");
    local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
    let (state, _) = accounts::init(&sdk, &deployment, identity.settings.clone())
        .await
        .expect("init");
    let customer = identity.customer(&sdk, "customer").await.expect("a customer");
    let service_token = identity.client_token("payments").await.expect("payments' token");
    let back_office_token = identity.service_token().await.expect("a back-office token");
    Fixture {
        router: accounts::app(state.clone()),
        state,
        service_token,
        back_office_token,
        identity,
        customer,
    }
}

/// A response, read whole.
pub struct Reply {
    pub status: u16,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
    pub raw: String,
}

impl Fixture {
    /// A call as the back office acting for the fixture's customer.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        let on_behalf = [("x-on-behalf-of", self.customer.subject.as_str())];
        self.call_with(method, path, body, &self.back_office_token, &on_behalf)
            .await
    }

    /// A call with bearer `credential` and extra headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        credential: &str,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {credential}"));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(Body::from(body.unwrap_or_default().to_owned())).unwrap();
        read(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// Opens an account and credits it with `balance` minor units.
    pub async fn account_with(&self, currency: &str, balance: u64) -> String {
        let opened = self
            .call(
                "POST",
                "/accounts",
                Some(&format!(r#"{{"holder":"Test","currency":"{currency}"}}"#)),
            )
            .await;
        assert_eq!(opened.status, 201, "{}", opened.raw);
        let id = opened.body["id"].as_str().unwrap().to_owned();
        if balance > 0 {
            let body = format!(r#"{{"amount_minor":{balance},"currency":"{currency}","reference":"seed"}}"#);
            let credited = self.call("POST", &format!("/accounts/{id}/credits"), Some(&body)).await;
            assert_eq!(credited.status, 201, "{}", credited.raw);
        }
        id
    }

    /// The account's balance and transaction count, read from the store.
    pub async fn snapshot(&self, id: &str) -> (u64, usize) {
        let id = accounts::domain::AccountId::parse(id).unwrap();
        let account = self.state.store.get(id).await.unwrap();
        let page = self
            .state
            .store
            .transactions(id, accounts::domain::Scope::CUSTOMERS, Some(1000), None)
            .await
            .unwrap();
        (account.balance_minor, page.items.len())
    }
}

pub async fn read(response: axum::response::Response) -> Reply {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let raw = String::from_utf8_lossy(&bytes).into_owned();
    let body = serde_json::from_str(&raw).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        body,
        raw,
    }
}

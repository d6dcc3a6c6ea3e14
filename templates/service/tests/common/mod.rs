//! Test support: a fresh deployment of {{project-name}} on the local stack
//! (its own tables, parameters and user pool, seeded from the
//! registry), initialised through the same `init` that `main` calls. Calls
//! carry the fixture's customer's access token unless a test says otherwise.

#![allow(dead_code, reason = "each test binary uses a different part of this module")]

use axum::body::Body;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::naming::Deployment;
use tower::ServiceExt;

/// A deployment of {{project-name}} that no other test shares.
pub struct Fixture {
    pub router: axum::Router,
    pub state: {{crate_name}}::AppState,
    pub sdk: aws_config::SdkConfig,
    /// The deployment's user pool.
    pub identity: local_aws::identity::Identity,
    /// The customer calls are made as.
    pub customer: local_aws::identity::Customer,
}

pub async fn fixture() -> Fixture {
    // Logs go to stdout, which nextest shows for a failing test.
    shared::telemetry::init(&{{crate_name}}::SERVICE);
    let sdk = local_aws::test_sdk_config().await;
    let deployment = Deployment::new(local_aws::unique("t"), "test");
    let mut services = local_aws::registry::load().expect("registry");
    let identity = local_aws::identity::seed(&sdk, &local_aws::test_endpoint(), &deployment, &services)
        .await
        .expect("user pool");
    services.retain(|s| s.name == {{crate_name}}::SERVICE.name);
    local_aws::seed::seed(&sdk, &deployment, &services).await.expect("seed");
    let (state, _) = {{crate_name}}::init(&sdk, &deployment, identity.settings.clone())
        .await
        .expect("init");
    let customer = identity.customer(&sdk, "customer").await.expect("a customer");
    Fixture {
        router: {{crate_name}}::app(state.clone()),
        state,
        sdk,
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
    /// Sends a request with the customer's token, unless `headers` (which
    /// replace any header of the same name) carry another `authorization`.
    pub async fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
        let mut request = axum::http::Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", self.customer.access_token))
            .header("content-type", "application/json")
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        for (name, value) in headers {
            request.headers_mut().insert(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                axum::http::HeaderValue::from_str(value).unwrap(),
            );
        }
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let raw = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            headers,
            body: serde_json::from_str(&raw).unwrap_or(Value::Null),
            raw,
        }
    }

    /// `POST /{{project-name}}` with an Idempotency-Key, as the customer.
    pub async fn create(&self, key: &str, body: Value) -> Reply {
        self.send("POST", "/{{project-name}}", &[("idempotency-key", key)], Some(body)).await
    }
}

/// The field a problem+json response names.
pub fn field(reply: &Reply) -> &str {
    reply.body["errors"][0]["field"].as_str().unwrap_or_default()
}

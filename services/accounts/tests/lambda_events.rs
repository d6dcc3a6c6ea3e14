//! Real API Gateway proxy events (REST v1 with a stage, HTTP API v2) go
//! through `lambda_http` and the shared runtime and get the same answers as
//! the same requests over a local port.

use crate::common;

use axum::http::Method;
use tower::ServiceExt;

/// What a response says, with generated ids and timestamps left out.
#[derive(Debug, PartialEq)]
struct Seen {
    status: u16,
    content_type: String,
    body: serde_json::Value,
}

fn normalise(status: u16, content_type: &str, body: &str) -> Seen {
    let mut body: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("JSON body: {body}"));
    if let Some(object) = body.as_object_mut() {
        object.remove("id");
        object.remove("created_at");
    }
    Seen {
        status,
        content_type: content_type.to_owned(),
        body,
    }
}

async fn through_lambda(router: axum::Router, fixture: &str) -> (Seen, Method) {
    let request = lambda_http::request::from_str(fixture).expect("fixture parses as a lambda_http request");
    let method = request.method().clone();
    let response = shared::runtime::on_lambda(router).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let body = match response.body() {
        lambda_http::Body::Text(text) => text.clone(),
        other => panic!("expected a text body, got {other:?}"),
    };
    (normalise(status, &content_type, &body), method)
}

async fn over_local_port(router: axum::Router, method: &Method, path: &str, body: Option<&str>, key: &str) -> Seen {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let mut request = reqwest::Client::new()
        .request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            format!("http://{address}{path}"),
        )
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.header("content-type", "application/json").body(body.to_owned());
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    let text = response.text().await.unwrap();
    server.abort();
    normalise(status, &content_type, &text)
}

/// The fixture's request, sent with a real customer token from the
/// deployment's user pool in place of its `Authorization` example, through
/// Lambda and over a local port.
async fn check(fixture: &str, local_path: &str, local_body: Option<&str>, expected_status: u16) {
    let f = common::fixture().await;
    let token = &f.customer.access_token;
    let event = fixture.replace("test-service-key", token);
    let (lambda, method) = through_lambda(f.router.clone(), &event).await;
    let local = over_local_port(f.router.clone(), &method, local_path, local_body, token).await;
    assert_eq!(lambda.status, expected_status, "{lambda:?}");
    assert_eq!(lambda, local);
}

#[tokio::test]
async fn rest_api_with_stage_health() {
    check(include_str!("data/apigw-rest-get-health.json"), "/health", None, 200).await;
}

#[tokio::test]
async fn rest_api_with_stage_opens_an_account() {
    check(
        include_str!("data/apigw-rest-open-account.json"),
        "/accounts",
        Some(r#"{"holder":"Ada Lovelace","currency":"EUR"}"#),
        201,
    )
    .await;
}

#[tokio::test]
async fn rest_api_with_stage_refuses_a_bad_currency() {
    check(
        include_str!("data/apigw-rest-open-account-bad-currency.json"),
        "/accounts",
        Some(r#"{"holder":"Ada Lovelace","currency":"EURO"}"#),
        422,
    )
    .await;
}

#[tokio::test]
async fn http_api_default_stage_health() {
    check(include_str!("data/apigw-http-get-health.json"), "/health", None, 200).await;
}

#[tokio::test]
async fn http_api_with_stage_opens_an_account() {
    check(
        include_str!("data/apigw-http-open-account.json"),
        "/accounts",
        Some(r#"{"holder":"Ada Lovelace","currency":"EUR"}"#),
        201,
    )
    .await;
}

#[tokio::test]
async fn http_api_with_stage_refuses_a_bad_currency() {
    check(
        include_str!("data/apigw-http-open-account-bad-currency.json"),
        "/accounts",
        Some(r#"{"holder":"Ada Lovelace","currency":"EURO"}"#),
        422,
    )
    .await;
}

#[test]
fn fixtures_round_trip_through_the_event_types() {
    for fixture in [
        include_str!("data/apigw-rest-open-account.json"),
        include_str!("data/apigw-http-open-account.json"),
    ] {
        let request = lambda_http::request::from_str(fixture).unwrap();
        assert_eq!(
            request.uri().path(),
            "/prod/accounts",
            "lambda_http keeps the stage in the path"
        );
    }
}

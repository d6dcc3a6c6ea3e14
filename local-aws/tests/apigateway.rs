//! The REST API stage stand-in in front of a weighted alias of the real
//! `echo_lambda` binary: requests reach the function as API Gateway proxy
//! events (`lambda_http` reads them as it reads API Gateway's), answers come
//! back as HTTP, and API Gateway's own answers (403, 502, 504) stand where
//! it gives them.

use local_aws::apigateway::{ApiGateway, Integration};
use local_aws::lambda::LambdaInvoke;
use serde_json::Value;

async fn stage() -> (LambdaInvoke, ApiGateway) {
    let echo = local_aws::process::build_example("echo_lambda").await.unwrap();
    let lambda = LambdaInvoke::start().await.unwrap();
    for version in ["1", "2"] {
        lambda.publish("echo", version, &echo, &[]).await.unwrap();
    }
    lambda.alias("echo", "live", "1").await;
    let client = aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(lambda.endpoint()).await);
    let integration = Integration {
        api_name: String::from("fintech-local-echo"),
        stage: String::from("local"),
        function: String::from("echo"),
        alias: String::from("live"),
    };
    let gateway = ApiGateway::start(integration, client).await.unwrap();
    (lambda, gateway)
}

#[tokio::test]
async fn requests_reach_the_function_as_proxy_events_and_come_back_as_http() {
    let (_lambda, gateway) = stage().await;
    let http = reqwest::Client::new();
    let answer = http
        .post(format!("{}/echo/a%20b?x=1&x=2&y=z", gateway.url()))
        .header("content-type", "application/json")
        .header("x-custom", "kept")
        .body(r#"{"amount": 100}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let echoed: Value = answer.json().await.unwrap();
    assert_eq!(echoed["method"], "POST");
    assert_eq!(
        echoed["path"], "/echo/a%20b",
        "the stage is not part of the function's path"
    );
    assert_eq!(echoed["args"]["y"], "z");
    assert_eq!(echoed["headers"]["x-custom"], "kept");
    assert_eq!(echoed["json"]["amount"], 100);
    let status = http.get(format!("{}/status/418", gateway.url())).send().await.unwrap();
    assert_eq!(status.status(), 418);
    let types: Vec<_> = status.headers().get_all("content-type").iter().collect();
    assert_eq!(types, ["application/json"], "one content type, the function's");
    let health = http.get(format!("{}/health", gateway.url())).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let served = gateway.served().await;
    assert_eq!(served.len(), 3);
    assert!(served.iter().all(|s| s.version.as_deref() == Some("1")));
    assert_eq!(served.iter().map(|s| s.status).collect::<Vec<_>>(), [200, 418, 200]);
}

#[tokio::test]
async fn api_gateway_answers_for_paths_outside_the_stage_and_for_broken_functions() {
    let (lambda, gateway) = stage().await;
    let http = reqwest::Client::new();
    let base = gateway.url().trim_end_matches("/local").to_owned();
    for path in ["/other/echo/x", "/localx/echo", "/"] {
        let outside = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(outside.status(), 403, "{path}");
        let body: Value = outside.json().await.unwrap();
        assert_eq!(body["message"], "Missing Authentication Token");
    }
    let post_health = http.post(format!("{}/health", gateway.url())).send().await.unwrap();
    assert_eq!(post_health.status(), 403, "/health has GET only");
    lambda.inject("echo", "1", "error:100%".parse().unwrap()).await;
    let failed = http.get(format!("{}/echo/x", gateway.url())).send().await.unwrap();
    assert_eq!(failed.status(), 502);
    let body: Value = failed.json().await.unwrap();
    assert_eq!(body["message"], "Internal server error");
    lambda.clear_faults("echo", "1").await;
    lambda.inject("echo", "1", "http-503:100%".parse().unwrap()).await;
    let unavailable = http.get(format!("{}/echo/x", gateway.url())).send().await.unwrap();
    assert_eq!(unavailable.status(), 503);
    let recorded: Vec<(Option<String>, u16)> = gateway
        .served()
        .await
        .into_iter()
        .map(|s| (s.version, s.status))
        .collect();
    assert_eq!(
        recorded[recorded.len() - 2..],
        [(Some(String::from("1")), 502), (Some(String::from("1")), 503)]
    );
}

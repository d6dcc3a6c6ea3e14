//! The Lambda-invoke transport against real function code: the same
//! collection runs against `local-aws`'s `echo_lambda` example served over
//! HTTP, and invoked through the local Lambda Invoke endpoint with API
//! Gateway REST (v1) and HTTP API (v2) events — every assertion passes all
//! three ways, so scripts see the same `pm.response` either way.

use std::path::Path;

use collection_runner::collection::load_collection;
use collection_runner::runner::{self, Options};
use collection_runner::transport::{Http, LambdaInvoke, PayloadFormat, Transport};
use local_aws::lambda::LambdaInvoke as InvokeEndpoint;
use serde_json::Value;

async fn client(endpoint: &str) -> aws_sdk_lambda::Client {
    aws_sdk_lambda::Client::new(&local_aws::sdk_config_at(endpoint).await)
}

async fn run(transport: &dyn Transport, base: &str) -> collection_runner::report::Summary {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lambda/echo-function.postman_collection.json");
    let collection = load_collection(&file).unwrap();
    let mut options = Options::default();
    options.environment.set("base".into(), Value::String(base.to_owned()));
    runner::run(&collection, &options, transport).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_results_over_http_and_lambda_invoke_v1_and_v2() {
    let binary = local_aws::process::build_example("echo_lambda").await.unwrap();
    let (_server, url) = local_aws::process::serve(&binary, &[], None).await.unwrap();
    let invoke = InvokeEndpoint::start().await.unwrap();
    invoke.publish("echo", "1", &binary, &[]).await.unwrap();
    invoke.alias("echo", "live", "1").await;
    let lambda = client(invoke.endpoint()).await;

    let over_http = run(&Http::new(false), &url).await;
    let v2 = run(
        &LambdaInvoke::new(lambda.clone(), "echo", Some("1"), PayloadFormat::HttpV2),
        "https://api.example.test",
    )
    .await;
    let v1 = run(
        &LambdaInvoke::new(
            lambda.clone(),
            "echo",
            Some("live"),
            PayloadFormat::RestV1 {
                stage: String::from("prod"),
            },
        ),
        "https://api.example.test",
    )
    .await;
    for (name, summary) in [("http", &over_http), ("lambda v2", &v2), ("lambda v1", &v1)] {
        assert!(summary.passed(), "{name}:\n{}", summary.to_cli());
        assert_eq!(summary.executions.len(), 7, "{name}");
    }
    assert_eq!(over_http.outcome(), v2.outcome());
    assert_eq!(over_http.outcome(), v1.outcome());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_errors_and_unknown_functions_are_request_errors() {
    let binary = local_aws::process::build_example("echo_lambda").await.unwrap();
    let invoke = InvokeEndpoint::start().await.unwrap();
    invoke.publish("echo", "3", &binary, &[]).await.unwrap();
    let lambda = client(invoke.endpoint()).await;
    let request = collection_runner::request::Prepared {
        method: String::from("GET"),
        url: String::from("https://api.example.test/panic"),
        headers: Vec::new(),
        payload: collection_runner::request::Payload::None,
        warnings: Vec::new(),
    };
    let behavior = Default::default();
    let panics = LambdaInvoke::new(lambda.clone(), "echo", None, PayloadFormat::HttpV2);
    let err = panics.send(&request, &behavior, None).await.unwrap_err().to_string();
    assert!(err.contains("function error (Unhandled)"), "{err}");
    let missing = LambdaInvoke::new(lambda.clone(), "no-such-function", Some("1"), PayloadFormat::HttpV2);
    let err = missing.send(&request, &behavior, None).await.unwrap_err().to_string();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
    let wrong_alias = LambdaInvoke::new(lambda, "echo", Some("live"), PayloadFormat::HttpV2);
    let err = wrong_alias
        .send(&request, &behavior, None)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("ResourceNotFoundException"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_invokes_the_function_and_sends_other_urls_over_http() {
    use collection_runner::transport::Split;
    let binary = local_aws::process::build_example("echo_lambda").await.unwrap();
    let (_server, url) = local_aws::process::serve(&binary, &[], None).await.unwrap();
    let invoke = InvokeEndpoint::start().await.unwrap();
    invoke.publish("echo", "4", &binary, &[]).await.unwrap();
    let function = LambdaInvoke::new(
        client(invoke.endpoint()).await,
        "echo",
        Some("4"),
        PayloadFormat::HttpV2,
    );
    let split = Split::new(
        "https://echo.lambda.invoke",
        Box::new(function),
        Box::new(Http::new(false)),
    );
    let get = |url: String| collection_runner::request::Prepared {
        method: String::from("GET"),
        url,
        headers: Vec::new(),
        payload: collection_runner::request::Payload::None,
        warnings: Vec::new(),
    };
    let behavior = Default::default();
    let host = |body: &str| {
        serde_json::from_str::<Value>(body).unwrap()["headers"]["host"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    let invoked = split
        .send(&get(String::from("https://echo.lambda.invoke/echo/x")), &behavior, None)
        .await
        .unwrap();
    assert_eq!(host(&invoked.text()), "echo.lambda.invoke");
    let over_http = split
        .send(&get(format!("{url}/echo/y")), &behavior, None)
        .await
        .unwrap();
    assert!(
        host(&over_http.text()).starts_with("127.0.0.1:"),
        "{}",
        over_http.text()
    );
    let lookalike = split
        .send(
            &get(String::from("https://echo.lambda.invoke.example/echo")),
            &behavior,
            None,
        )
        .await;
    assert!(
        lookalike.is_err(),
        "a URL that only shares the prefix is not the function"
    );
}

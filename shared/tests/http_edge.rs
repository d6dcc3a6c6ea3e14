//! The shared HTTP edge, in process: problem+json, the strict JSON extractor,
//! `/health`, request and correlation ids, the invocation log span taken from
//! each request's own Lambda context (also when invocations overlap), and EMF
//! flushed once per invocation.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post};
use http_body_util::BodyExt;
use serde::Deserialize;
use serde_json::Value;
use shared::ServiceInfo;
use shared::auth::{Access, Routes};
use shared::http::{Json, Problem};
use shared::metrics::{InvocationMetrics, MetricsConfig, Unit};
use shared::telemetry::{Capture, JsonLayer};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

const INFO: ServiceInfo = ServiceInfo::new("edge-test", "9.9.9");

/// A gate whose routes here are all public: the edge is under test, not auth.
fn gate() -> Arc<shared::auth::Gate> {
    let verifier = shared::auth::Verifier::new(
        shared::auth::IdentitySettings {
            issuer: String::from("https://issuer.test"),
            jwks_url: String::from("http://127.0.0.1:9/jwks.json"),
            client_ids: vec![String::from("app")],
            service_client_ids: Vec::new(),
        },
        reqwest::Client::new(),
    );
    shared::auth::Gate::new(Arc::new(verifier), &shared::ServiceInfo::new("edge", "0"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Transfer {
    #[allow(dead_code, reason = "only parsing is under test")]
    amount_minor: u64,
    #[allow(dead_code, reason = "only parsing is under test")]
    to: Party,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Party {
    #[allow(dead_code, reason = "only parsing is under test")]
    iban: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Search {
    limit: u32,
}

fn router(emf: Capture) -> Router {
    let routes = Routes::new(gate())
        .route(
            "/transfers",
            post(
                |axum::Extension(m): axum::Extension<InvocationMetrics>, Json(_): Json<Transfer>| async move {
                    m.add("Transfers", Unit::Count, 1.0);
                    m.add("Transfers", Unit::Count, 1.0);
                    tracing::info!("transfer accepted");
                    "ok"
                },
            ),
            Access::Public,
        )
        .route(
            "/boom",
            get(|| async { Problem::internal(&"database password=hunter2 rejected") }),
            Access::Public,
        )
        .route(
            "/items/{id}",
            get(|shared::http::Path(id): shared::http::Path<u32>| async move { format!("item {id}") }),
            Access::Public,
        )
        .route(
            "/search",
            get(|axum::extract::Query(q): axum::extract::Query<Search>| async move { q.limit.to_string() }),
            Access::Public,
        )
        .route(
            "/notes",
            post(|body: String| async move { body.len().to_string() }),
            Access::Public,
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                "too late"
            }),
            Access::Public,
        );
    let metrics = MetricsConfig {
        namespace: String::from("Test"),
        service: String::from("edge-test"),
        function_name: String::from("edge-test-fn"),
        enabled: true,
        sink: Arc::new(emf),
    };
    shared::http::service_with_metrics(&INFO, routes, metrics)
}

async fn send(router: Router, request: axum::http::Request<Body>) -> (u16, axum::http::HeaderMap, Value) {
    let response = router.oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn post_json(body: &str) -> axum::http::Request<Body> {
    axum::http::Request::post("/transfers")
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

/// `check(body, status, field)`: a JSON body is refused naming `field`.
async fn check(body: &str, status: u16, field: Option<&str>) {
    let (got, headers, problem) = send(router(Capture::default()), post_json(body)).await;
    assert_eq!(got, status, "{body}: {problem}");
    assert_eq!(headers["content-type"], "application/problem+json");
    assert_eq!(problem["status"], status);
    match field {
        Some(field) => assert_eq!(problem["errors"][0]["field"], field, "{body}: {problem}"),
        None => assert!(problem.get("errors").is_none(), "{problem}"),
    }
}

#[tokio::test]
async fn json_errors_name_the_field() {
    check(
        r#"{"amount_minor": -1, "to": {"iban": "x"}}"#,
        422,
        Some("amount_minor"),
    )
    .await;
    check(
        r#"{"amount_minor": 1.25, "to": {"iban": "x"}}"#,
        422,
        Some("amount_minor"),
    )
    .await;
    check(
        r#"{"amount_minor": 99999999999999999999, "to": {"iban": "x"}}"#,
        422,
        Some("amount_minor"),
    )
    .await;
    check(r#"{"to": {"iban": "x"}}"#, 422, Some("amount_minor")).await;
    check(r#"{"amount_minor": 1, "to": {}}"#, 422, Some("to.iban")).await;
    check(r#"{"amount_minor": 1, "to": {"iban": 7}}"#, 422, Some("to.iban")).await;
    check(
        r#"{"amount_minor": 1, "to": {"iban": "x", "bic": "y"}}"#,
        422,
        Some("to.bic"),
    )
    .await;
    check(r#"{"amount_minor": 1, "to": {"iban": "x"}"#, 400, None).await;
    check("", 400, None).await;
}

/// A body that is JSON but not an object says so, naming no Rust type.
#[tokio::test]
async fn a_body_that_is_not_an_object_names_no_rust_type() {
    for body in ["[]", "null", "5", r#""text""#] {
        let (status, _, problem) = send(router(Capture::default()), post_json(body)).await;
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(problem["errors"][0]["field"], "body", "{body}: {problem}");
        assert!(!problem.to_string().contains("struct"), "{body}: {problem}");
    }
}

/// RFC 8259: a JSON text is one value. Data after it is refused, not ignored.
#[tokio::test]
async fn data_after_the_json_value_is_refused() {
    let ok = r#"{"amount_minor": 1, "to": {"iban": "x"}}"#;
    for tail in ["GARBAGE", " {}", "[]", "}", "\u{0}"] {
        check(&format!("{ok}{tail}"), 400, None).await;
    }
    let (status, _, _) = send(router(Capture::default()), post_json(&format!("{ok} \n\t"))).await;
    assert_eq!(status, 200, "trailing whitespace is part of JSON");
}

/// Every error response is problem+json: extractor rejections of paths,
/// queries and bodies included, with the status they mean.
#[tokio::test]
async fn every_rejection_is_a_problem() {
    let get = |uri: &str| axum::http::Request::get(uri).body(Body::empty()).unwrap();
    let big = axum::http::Request::post("/notes")
        .header("content-type", "text/plain")
        .body(Body::from("x".repeat(3 * 1024 * 1024)))
        .unwrap();
    let big_json = axum::http::Request::post("/transfers")
        .header("content-type", "application/json")
        .body(Body::from(format!(r#"{{"pad": "{}"}}"#, "x".repeat(3 * 1024 * 1024))))
        .unwrap();
    for (request, status) in [
        (get("/items/not-a-number"), 400),
        (get("/search?limit=x"), 400),
        (get("/search?limit=1&other=2"), 400),
        (big, 413),
        (big_json, 413),
    ] {
        let uri = request.uri().clone();
        let (got, headers, problem) = send(router(Capture::default()), request).await;
        assert_eq!(got, status, "{uri}: {problem}");
        assert_eq!(headers["content-type"], "application/problem+json", "{uri}");
        assert_eq!(problem["status"], status, "{uri}: {problem}");
        assert!(
            problem["type"].as_str().is_some_and(|t| t.starts_with("urn:problem:")),
            "{problem}"
        );
    }
    let (status, _, _) = send(router(Capture::default()), get("/items/7")).await;
    assert_eq!(status, 200);
}

/// No request outlives its invocation: at the deadline the edge answers 503
/// (retry) instead of the handler running on until Lambda kills it.
#[tokio::test]
async fn a_request_past_its_deadline_is_answered_in_time() {
    let mut request = axum::http::Request::get("/slow").body(Body::empty()).unwrap();
    request
        .extensions_mut()
        .insert(shared::http::Deadline::after(std::time::Duration::from_millis(400)));
    let answered = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        send(router(Capture::default()), request),
    )
    .await
    .expect("answered before the handler finished");
    let (status, headers, problem) = answered;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(problem["type"], "urn:problem:timeout");
    assert_eq!(headers["retry-after"], "1");
}

#[test]
fn bearer_schemes_are_case_insensitive() {
    use shared::http::bearer_token;
    for value in ["Bearer k", "bearer k", "BEARER k", "Bearer   k"] {
        assert_eq!(bearer_token(value), Some("k"), "{value}");
    }
    for value in ["Basic k", "Bearer", "Bearer ", "Bearerk", ""] {
        assert_eq!(bearer_token(value), None, "{value}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_json_is_415() {
    let request = axum::http::Request::post("/transfers")
        .header("content-type", "text/plain")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, problem) = send(router(Capture::default()), request).await;
    assert_eq!(status, 415, "{problem}");
}

#[tokio::test]
async fn internal_errors_leak_nothing() {
    let (status, headers, problem) = send(
        router(Capture::default()),
        axum::http::Request::get("/boom").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, 500);
    assert!(!problem.to_string().contains("hunter2"), "{problem}");
    assert!(headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let (status, headers, _) = send(
        router(Capture::default()),
        axum::http::Request::get("/nope").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(
        (status, headers["content-type"].to_str().unwrap()),
        (404, "application/problem+json")
    );
    let (status, _, _) = send(
        router(Capture::default()),
        axum::http::Request::delete("/transfers").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, 405);
}

#[tokio::test]
async fn health_reports_name_and_version_and_ids_are_echoed() {
    let request = axum::http::Request::get("/health")
        .header("x-correlation-id", "corr-42")
        .body(Body::empty())
        .unwrap();
    let (status, headers, health) = send(router(Capture::default()), request).await;
    assert_eq!(status, 200);
    assert_eq!(health["service"], "edge-test");
    assert_eq!(health["version"], "9.9.9");
    assert_eq!(health["status"], "ok");
    assert_eq!(headers["x-correlation-id"], "corr-42");
    assert_eq!(
        headers["x-request-id"].to_str().unwrap().len(),
        36,
        "a generated UUID locally"
    );
}

fn lambda_request(request_id: &str, trace: &str) -> lambda_http::Request {
    let event = include_str!("data/apigw-http-post-transfers.json");
    let mut request = lambda_http::request::from_str(event).unwrap();
    let mut context = lambda_http::Context::default();
    context.request_id = request_id.to_owned();
    context.xray_trace_id = Some(trace.to_owned());
    context.invoked_function_arn = String::from("arn:aws:lambda:eu-west-1:123456789012:function:edge-test:live");
    request.extensions_mut().insert(context);
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_invocations_log_their_own_ids_and_flush_metrics_once_each() {
    let logs = Capture::default();
    let emf = Capture::default();
    let subscriber = tracing_subscriber::registry().with(JsonLayer::new(&INFO, logs.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    let service = shared::runtime::on_lambda(router(emf.clone()));
    let calls = (0..8).map(|i| {
        let service = service.clone();
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        tokio::spawn(tracing::instrument::WithSubscriber::with_subscriber(
            async move {
                let response = service
                    .oneshot(lambda_request(&format!("req-{i}"), &format!("Root=1-{i}")))
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                assert_eq!(response.headers()["x-request-id"], format!("req-{i}").as_str());
            },
            dispatch,
        ))
    });
    for call in calls.collect::<Vec<_>>() {
        call.await.unwrap();
    }
    let accepted: Vec<Value> = logs
        .json()
        .into_iter()
        .filter(|l| l["message"] == "transfer accepted")
        .collect();
    assert_eq!(accepted.len(), 8);
    for line in &accepted {
        let id = line["function_request_id"].as_str().unwrap();
        let n = id.strip_prefix("req-").unwrap();
        assert_eq!(line["xray_trace_id"], format!("Root=1-{n}"), "{line}");
        assert_eq!(
            line["correlation_id"], "apigw-request-id",
            "API Gateway's request id: {line}"
        );
        assert_eq!(
            line["function_arn"],
            "arn:aws:lambda:eu-west-1:123456789012:function:edge-test:live"
        );
    }
    let emf = emf.json();
    let transfers: Vec<&Value> = emf.iter().filter(|o| o.get("Transfers").is_some()).collect();
    assert_eq!(transfers.len(), 8, "one flush per invocation: {emf:?}");
    assert!(
        transfers
            .iter()
            .all(|o| o["Transfers"] == serde_json::json!([1.0, 1.0]))
    );
    let cold: Vec<&Value> = emf.iter().filter(|o| o.get("ColdStart").is_some()).collect();
    assert_eq!(cold.len(), 1, "ColdStart once per process");
    assert_eq!(cold[0]["function_name"], "edge-test-fn");
}

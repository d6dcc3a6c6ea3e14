//! A function that answers with what it received, served by the product's own
//! `shared::runtime::run`: through the Lambda Runtime API when
//! `AWS_LAMBDA_RUNTIME_API` is set, on a local port otherwise. The collection
//! runner's tests send the same collection to it both ways (HTTP, and Lambda
//! Invoke with API Gateway v1 and v2 payloads) and expect the same results.
//!
//! Routes: `/health` (like the services': name, version, function version),
//! `/echo/…` (`local_aws::echo::anything`: what it received, as JSON),
//! `/status/{code}`, `/binary` (bytes that are not UTF-8), `/cookies` (two
//! `set-cookie` headers), `/panic` (the handler panics).
//!
//! Faults for the traffic hooks' tests, from the environment: `ECHO_HEALTH_STATUS`
//! (the status `/health` answers), `ECHO_HEALTH_DELAY_MS` (how long it waits
//! first), `ECHO_FIRST_HEALTH_DELAY_MS` (how much longer the first `/health`
//! of the process waits: a cold start paid by the first request, since the
//! local Lambda endpoint starts a version when it is published),
//! `ECHO_HEALTH_PANIC=1` (it panics: a function error on Lambda),
//! `ECHO_HEALTH_FUNCTION_VERSION` (the JSON value reported as
//! `function_version` instead of the running version, e.g. `2` as a number;
//! `-` leaves the field out, as a service not built on `shared::http` would).

use axum::Router;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::json;

/// Whether a `/health` request has been answered by this process.
static ANSWERED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

async fn health() -> Response {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let millis = |name: &str| var(name).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let first = !ANSWERED.swap(true, std::sync::atomic::Ordering::SeqCst);
    let delay = millis("ECHO_HEALTH_DELAY_MS") + if first { millis("ECHO_FIRST_HEALTH_DELAY_MS") } else { 0 };
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if var("ECHO_HEALTH_PANIC").is_some() {
        panic!("echo_lambda: ECHO_HEALTH_PANIC is set");
    }
    let code = var("ECHO_HEALTH_STATUS")
        .and_then(|v| v.parse().ok())
        .and_then(|c| StatusCode::from_u16(c).ok());
    let mut body = json!({
        "service": FUNCTION.name,
        "version": FUNCTION.version,
        "function_version": var("AWS_LAMBDA_FUNCTION_VERSION"),
    });
    if let Some(reported) = var("ECHO_HEALTH_FUNCTION_VERSION")
        && let Some(fields) = body.as_object_mut()
    {
        match serde_json::from_str(&reported) {
            Ok(value) => fields.insert(String::from("function_version"), value),
            Err(_) => fields.remove("function_version"),
        };
    }
    (code.unwrap_or(StatusCode::OK), axum::Json(body)).into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, axum::Json(json!({"status": code.as_u16()}))).into_response()
}

async fn binary() -> Response {
    (
        [("content-type", "application/octet-stream")],
        vec![0u8, 159, 146, 150, 255],
    )
        .into_response()
}

async fn cookies() -> Response {
    let mut response = axum::Json(json!({"cookies": 2})).into_response();
    let headers = response.headers_mut();
    headers.append("set-cookie", "a=1; Path=/".parse().expect("header value"));
    headers.append("set-cookie", "b=2; Path=/".parse().expect("header value"));
    response
}

async fn panics() -> Response {
    panic!("echo_lambda: /panic was requested");
}

const FUNCTION: shared::ServiceInfo = shared::ServiceInfo::new("echo_lambda", env!("CARGO_PKG_VERSION"));

#[tokio::main]
async fn main() -> Result<(), shared::runtime::RunError> {
    shared::telemetry::init(&FUNCTION);
    let app = Router::new()
        .route("/health", get(health))
        .route("/echo", any(local_aws::echo::anything))
        .route("/echo/{*rest}", any(local_aws::echo::anything))
        .route("/status/{code}", any(status))
        .route("/binary", get(binary))
        .route("/cookies", get(cookies))
        .route("/panic", get(panics));
    shared::runtime::run(app).await
}

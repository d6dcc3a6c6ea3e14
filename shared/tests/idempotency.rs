//! The idempotency layer against DynamoDB (moto), on a small router whose
//! handler can be slowed down or made to fail.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use http_body_util::BodyExt;
use shared::http::Problem;
use shared::idempotency::{Idempotency, IdempotencyConfig, Key};
use tower::ServiceExt;

#[derive(Clone)]
struct Handler {
    runs: Arc<AtomicU32>,
    /// Notified once the handler runs, i.e. once its request holds the key.
    started: Arc<tokio::sync::Notify>,
    /// When set, the handler waits for it before answering.
    hold: Option<Arc<tokio::sync::Notify>>,
    fail_first: bool,
}

async fn app(handler: Handler) -> Router {
    let sdk = local_aws::test_sdk_config().await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    let table = local_aws::unique("idem");
    let spec = local_aws::registry::TableSpec {
        partition_key: String::from("id"),
        sort_key: None,
        ttl_attribute: Some(String::from("expiration")),
        indexes: Default::default(),
        seed: None,
    };
    local_aws::seed::create_table(&dynamodb, &table, &spec).await.unwrap();
    let store = Arc::new(Idempotency::new(dynamodb, IdempotencyConfig::new(table, "test")));
    let route = post(move |axum::Extension(key): axum::Extension<Key>, body: String| {
        let handler = handler.clone();
        async move {
            let run = handler.runs.fetch_add(1, Ordering::SeqCst) + 1;
            handler.started.notify_one();
            if let Some(hold) = &handler.hold {
                hold.notified().await;
            }
            if body.contains("invalid") {
                return Problem::invalid_field("a", "refused before any work")
                    .before_work()
                    .into_response();
            }
            if handler.fail_first && run == 1 {
                return (StatusCode::BAD_GATEWAY, String::from("upstream down")).into_response();
            }
            let id = key.resource_id();
            (
                StatusCode::CREATED,
                format!("{{\"run\":{run},\"id\":\"{id}\",\"echo\":{body}}}"),
            )
                .into_response()
        }
    })
    .layer(axum::middleware::from_fn_with_state(
        store,
        shared::idempotency::middleware,
    ));
    Router::new().route("/things", route)
}

async fn call(app: &Router, key: Option<&str>, body: &str) -> (u16, Option<String>, String) {
    let mut request = axum::http::Request::post("/things").header("content-type", "application/json");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let replayed = response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, replayed, String::from_utf8(bytes.to_vec()).unwrap())
}

fn handler(fail_first: bool) -> Handler {
    Handler {
        runs: Arc::new(AtomicU32::new(0)),
        started: Arc::new(tokio::sync::Notify::new()),
        hold: None,
        fail_first,
    }
}

#[tokio::test]
async fn replays_the_stored_response_byte_for_byte() {
    let h = handler(false);
    let app = app(h.clone()).await;
    let first = call(&app, Some("k"), r#"{"a": 1, "b": 2}"#).await;
    assert_eq!((first.0, first.1.as_deref()), (201, None));
    let again = call(&app, Some("k"), r#"{"b":2,"a":1}"#).await;
    assert_eq!(again.0, 201);
    assert_eq!(again.1.as_deref(), Some("true"));
    assert_eq!(again.2, first.2, "byte-identical");
    assert_eq!(h.runs.load(Ordering::SeqCst), 1, "the handler ran once");
}

#[tokio::test]
async fn same_key_different_body_is_422_and_missing_key_is_400() {
    let app = app(handler(false)).await;
    assert_eq!(call(&app, Some("k"), r#"{"a": 1}"#).await.0, 201);
    let (status, _, body) = call(&app, Some("k"), r#"{"a": 2}"#).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Idempotency-Key"), "{body}");
    assert_eq!(call(&app, None, r#"{"a": 1}"#).await.0, 400);
    let (status, _, body) = call(&app, Some(&"x".repeat(256)), r#"{"a": 1}"#).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("Idempotency-Key invalid"),
        "a key that is there is not 'required': {body}"
    );
}

#[tokio::test]
async fn a_request_while_the_first_runs_is_409() {
    let hold = Arc::new(tokio::sync::Notify::new());
    let h = Handler {
        hold: Some(hold.clone()),
        ..handler(false)
    };
    let app = app(h.clone()).await;
    let first = tokio::spawn({
        let app = app.clone();
        async move { call(&app, Some("slow"), "{}").await }
    });
    h.started.notified().await;
    let (status, _, body) = call(&app, Some("slow"), "{}").await;
    assert_eq!(status, 409, "{body}");
    hold.notify_one();
    assert_eq!(first.await.unwrap().0, 201);
    assert_eq!(call(&app, Some("slow"), "{}").await.1.as_deref(), Some("true"));
    assert_eq!(h.runs.load(Ordering::SeqCst), 1);
}

/// A 5xx may mean work started: the key stays bound to its request. A retry
/// with the same body runs the handler again, with the same resource id (so
/// it continues the work), and a different body is refused.
#[tokio::test]
async fn a_server_error_keeps_the_key_bound_to_its_request() {
    let h = handler(true);
    let app = app(h.clone()).await;
    assert_eq!(call(&app, Some("retry"), r#"{"n":1}"#).await.0, 502);
    let (status, _, body) = call(&app, Some("retry"), r#"{"n":2}"#).await;
    assert_eq!(status, 422, "another request under the key: {body}");
    let (status, replayed, body) = call(&app, Some("retry"), r#"{"n":1}"#).await;
    assert_eq!((status, replayed), (201, None), "{body}");
    assert!(body.contains("\"run\":2"), "{body}");
    let (_, replayed, again) = call(&app, Some("retry"), r#"{"n":1}"#).await;
    assert_eq!((replayed.as_deref(), again.as_str()), (Some("true"), body.as_str()));
}

#[tokio::test]
async fn every_request_with_one_key_gets_one_resource_id() {
    let app = app(handler(true)).await;
    assert_eq!(call(&app, Some("id"), "{}").await.0, 502);
    let (_, _, first) = call(&app, Some("id"), "{}").await;
    let (_, _, other) = call(&app, Some("other-key"), "{}").await;
    let id = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap()["id"].clone();
    assert!(id(&first).is_string(), "{first}");
    assert_ne!(id(&first), id(&other));
    assert_eq!(call(&app, Some("id"), "{}").await.2, first);
}

/// Stripe's rule: a request refused before any work started is not kept,
/// so the corrected request may use the same key.
#[tokio::test]
async fn a_refusal_before_any_work_keeps_nothing() {
    let h = handler(false);
    let app = app(h.clone()).await;
    let (status, _, body) = call(&app, Some("fix"), r#"{"invalid": true}"#).await;
    assert_eq!(status, 422, "{body}");
    let (status, replayed, body) = call(&app, Some("fix"), r#"{"valid": true}"#).await;
    assert_eq!((status, replayed), (201, None), "{body}");
}

/// The middleware reads the body as the handler's `Json` does: data after
/// the JSON value is refused before the key is claimed.
#[tokio::test]
async fn a_body_the_handler_would_refuse_is_refused_before_the_claim() {
    let h = handler(false);
    let app = app(h.clone()).await;
    for bad in [r#"{"a":1}GARBAGE"#, "{", r#"{"a":1} {"a":2}"#] {
        let (status, _, body) = call(&app, Some("strict"), bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("urn:problem:malformed-json"), "{body}");
    }
    assert_eq!(h.runs.load(Ordering::SeqCst), 0, "the handler never ran");
    assert_eq!(call(&app, Some("strict"), r#"{"a":1}"#).await.0, 201, "the key is free");
}

/// A body that breaks off (a bad chunk, fewer bytes than promised) is a 400,
/// not the 413 of a body that is too large; neither claims the key.
#[tokio::test]
async fn a_broken_body_is_400_and_a_large_one_413() {
    struct Broken;
    impl http_body::Body for Broken {
        type Data = axum::body::Bytes;
        type Error = std::io::Error;
        fn poll_frame(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            std::task::Poll::Ready(Some(Err(std::io::Error::other("connection reset"))))
        }
    }
    let h = handler(false);
    let app = app(h.clone()).await;
    let send = |body: Body| {
        let request = axum::http::Request::post("/things")
            .header("content-type", "application/json")
            .header("idempotency-key", "broken")
            .body(body)
            .unwrap();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, body) = send(Body::new(Broken)).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("urn:problem:unreadable-body") && !body.contains("connection reset"),
        "{body}"
    );
    let (status, body) = send(Body::from(vec![b' '; 3 * 1024 * 1024])).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(h.runs.load(Ordering::SeqCst), 0);
    assert_eq!(call(&app, Some("broken"), "{}").await.0, 201, "the key is free");
}

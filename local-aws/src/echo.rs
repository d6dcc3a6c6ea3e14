//! A postman-echo-like HTTP server on 127.0.0.1: it echoes what it received
//! (`/get`, `/post`, `/anything`…), answers any status (`/status/{code}`),
//! redirects, sets headers, checks basic auth, waits and serves XML and text,
//! so collections can assert on it. Used by the collection runner's
//! differential tests and by `cargo xtask bench runner`.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use serde_json::{Value, json};

fn echo(method: &Method, uri: &Uri, headers: &HeaderMap, query: &BTreeMap<String, String>, body: &Bytes) -> Value {
    let text = String::from_utf8_lossy(body).into_owned();
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let json_body: Value = if content_type.contains("json") {
        serde_json::from_str(&text).unwrap_or(Value::Null)
    } else {
        Value::Null
    };
    let form: BTreeMap<String, String> = if content_type.starts_with("application/x-www-form-urlencoded") {
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode(k), decode(v))
            })
            .collect()
    } else {
        BTreeMap::new()
    };
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    json!({"method": method.as_str(), "url": uri.to_string(), "args": query, "headers": headers, "data": text, "json": json_body, "form": form})
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn anything(
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    axum::Json(echo(&method, &uri, &headers, &query, &body)).into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, axum::Json(json!({"status": code.as_u16()}))).into_response()
}

async fn redirect(Path(n): Path<u32>) -> Response {
    let location = if n <= 1 {
        String::from("/get")
    } else {
        format!("/redirect/{}", n - 1)
    };
    (StatusCode::FOUND, [("location", location)]).into_response()
}

async fn response_headers(Query(query): Query<BTreeMap<String, String>>) -> Response {
    let mut response = axum::Json(json!(query)).into_response();
    for (k, v) in &query {
        if let (Ok(name), Ok(value)) = (
            axum::http::HeaderName::try_from(k.as_str()),
            axum::http::HeaderValue::from_str(v),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

async fn basic_auth(Path((user, pass)): Path<(String, String)>, headers: HeaderMap) -> Response {
    use base64::Engine;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
    );
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str());
    let code = if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
    (code, axum::Json(json!({"authenticated": ok}))).into_response()
}

async fn delay(Path(ms): Path<u64>) -> Response {
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    axum::Json(json!({"delay": ms})).into_response()
}

async fn xml() -> Response {
    (
        [("content-type", "application/xml")],
        r#"<?xml version="1.0"?><order id="7"><item>a</item><item>b</item><total currency="EUR">12</total></order>"#,
    )
        .into_response()
}

async fn text() -> Response {
    ([("content-type", "text/plain")], "plain text body").into_response()
}

/// Starts the server on a free loopback port; returns its base URL.
pub async fn start() -> String {
    let app = Router::new()
        .route("/get", any(anything))
        .route("/post", any(anything))
        .route("/put", any(anything))
        .route("/patch", any(anything))
        .route("/delete", any(anything))
        .route("/anything", any(anything))
        .route("/anything/{*rest}", any(anything))
        .route("/status/{code}", any(status))
        .route("/redirect/{n}", get(redirect))
        .route("/response-headers", get(response_headers))
        .route("/basic-auth/{user}/{pass}", get(basic_auth))
        .route("/delay/{ms}", get(delay))
        .route("/xml", get(xml))
        .route("/text", get(text));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind 127.0.0.1");
    let address = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("echo server") });
    format!("http://{address}")
}

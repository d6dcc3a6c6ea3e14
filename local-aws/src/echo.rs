//! A postman-echo-like HTTP server on 127.0.0.1: it echoes what it received
//! (`/get`, `/post`, `/anything`…), answers any status (`/status/{code}`),
//! redirects, sets headers, checks basic auth, waits and serves XML and text,
//! so collections can assert on it. Used by the collection runner's
//! differential tests and by `cargo xtask bench runner`.

use std::collections::BTreeMap;

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
        form_urlencoded::parse(text.as_bytes()).into_owned().collect()
    } else {
        BTreeMap::new()
    };
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    json!({
        "method": method.as_str(), "url": uri.to_string(), "path": uri.path(), "args": query, "headers": headers,
        "data": text, "json": json_body, "form": form,
    })
}

/// Answers with what it received: method, URL, path, query arguments,
/// headers, the body as text, as JSON (for JSON content types) and as form
/// fields (for urlencoded bodies).
pub async fn anything(
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

/// `?url=…&status_code=…`: redirects any method there (302 by default).
async fn redirect_to(Query(query): Query<BTreeMap<String, String>>) -> Response {
    let code = query
        .get("status_code")
        .and_then(|c| c.parse().ok())
        .and_then(|c| StatusCode::from_u16(c).ok());
    let location = query.get("url").cloned().unwrap_or_else(|| String::from("/get"));
    (code.unwrap_or(StatusCode::FOUND), [("location", location)]).into_response()
}

/// The cookies the request carried.
async fn cookies(headers: HeaderMap) -> Response {
    let cookies: BTreeMap<String, String> = headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split("; "))
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    axum::Json(json!({"cookies": cookies})).into_response()
}

/// `?name=value…`: sets each as a cookie (path `/`).
async fn set_cookies(Query(query): Query<BTreeMap<String, String>>) -> Response {
    let mut response = axum::Json(json!({"set": query})).into_response();
    for (name, value) in &query {
        if let Ok(header) = axum::http::HeaderValue::from_str(&format!("{name}={value}; Path=/")) {
            response.headers_mut().append("set-cookie", header);
        }
    }
    response
}

/// The realm, nonce and opaque of the digest challenge.
const DIGEST_REALM: &str = "echo@127.0.0.1";
const DIGEST_NONCE: &str = "dcd98b7102dd2f0e8b11d0f600bfb0c093";
const DIGEST_OPAQUE: &str = "5ccc069c403ebaf9f0171e9517f40e41";

fn md5_hex(text: &str) -> String {
    use md5::Digest;
    md5::Md5::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `key="value", key=value` pairs of an `Authorization: Digest …` header.
fn digest_fields(header: &str) -> BTreeMap<String, String> {
    header
        .trim_start_matches("Digest")
        .split(',')
        .filter_map(|part| part.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
        .collect()
}

/// HTTP digest auth (RFC 7616, MD5, qop=auth): a 401 challenge, then 200
/// when the answer is right for `user`/`pass`.
async fn digest_auth(
    Path((user, pass)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("Digest"));
    if let Some(answer) = answer {
        let f = digest_fields(answer);
        let get = |k: &str| f.get(k).cloned().unwrap_or_default();
        let ha1 = md5_hex(&format!("{user}:{DIGEST_REALM}:{pass}"));
        let ha2 = md5_hex(&format!(
            "{}:{}",
            method.as_str(),
            uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
        ));
        let expected = md5_hex(&format!(
            "{ha1}:{DIGEST_NONCE}:{}:{}:{}:{ha2}",
            get("nc"),
            get("cnonce"),
            get("qop")
        ));
        let ok = get("username") == user && get("nonce") == DIGEST_NONCE && get("response") == expected;
        let code = if ok { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        return (code, axum::Json(json!({"authenticated": ok}))).into_response();
    }
    let challenge =
        format!(r#"Digest realm="{DIGEST_REALM}", qop="auth", nonce="{DIGEST_NONCE}", opaque="{DIGEST_OPAQUE}""#);
    (
        StatusCode::UNAUTHORIZED,
        [("www-authenticate", challenge)],
        axum::Json(json!({"authenticated": false})),
    )
        .into_response()
}

/// The secret key `/aws-sigv4` verifies signatures with (access key `AKIDECHO`).
pub const SIGV4_SECRET: &str = "echo-secret";

/// AWS Signature Version 4 verification, as API Gateway's IAM auth does it:
/// the request is signed again with the known secret, the same date and the
/// same signed headers (by `aws-sigv4`), and the signatures must match.
async fn aws_sigv4(method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let verdict = verify_sigv4(&method, &uri, &headers, &body);
    let code = if verdict.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::FORBIDDEN
    };
    (
        code,
        axum::Json(json!({"authenticated": verdict.is_ok(), "error": verdict.err()})),
    )
        .into_response()
}

fn verify_sigv4(method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let authorization = header("authorization").ok_or("no Authorization header")?;
    let rest = authorization
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let field = |name: &str| {
        rest.split(", ")
            .find_map(|part| part.strip_prefix(name).and_then(|p| p.strip_prefix('=')))
            .map(str::to_owned)
            .ok_or(format!("no {name} in Authorization"))
    };
    let credential = field("Credential")?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key, _date, region, service, _terminator] = scope[..] else {
        return Err(format!("credential scope {credential:?}"));
    };
    if access_key != "AKIDECHO" {
        return Err(format!("unknown access key {access_key}"));
    }
    let signed_headers = field("SignedHeaders")?;
    let signature = field("Signature")?;
    let amz_date = header("x-amz-date").ok_or("no X-Amz-Date")?;
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let at = time::PrimitiveDateTime::parse(&amz_date, &format)
        .map_err(|e| format!("X-Amz-Date {amz_date:?}: {e}"))?
        .assume_utc();
    let token = header("x-amz-security-token");
    let identity = aws_credential_types::Credentials::new(access_key, SIGV4_SECRET, token, None, "echo").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(at.into())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let host = header("host").unwrap_or_default();
    let url = format!(
        "http://{host}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let signed: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    let values: Vec<(String, String)> = signed
        .iter()
        .filter(|name| !matches!(name.as_str(), "x-amz-date" | "x-amz-security-token"))
        .map(|name| (name.clone(), header(name).unwrap_or_default()))
        .collect();
    let signable = SignableRequest::new(
        method.as_str(),
        url,
        values.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let (instructions, expected) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    drop(instructions);
    if expected == signature {
        Ok(())
    } else {
        Err(String::from("signature does not match"))
    }
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
        .route("/text", get(text))
        .route("/digest-auth/{user}/{pass}", get(digest_auth))
        .route("/redirect-to", any(redirect_to))
        .route("/cookies", get(cookies))
        .route("/cookies/set", get(set_cookies))
        .route("/aws-sigv4", any(aws_sigv4))
        .route("/aws-sigv4/{*rest}", any(aws_sigv4));
    // The server lives as long as the process: tests and benches start it once.
    let (address, _server) = crate::serve_router(app).await.expect("echo server on 127.0.0.1");
    format!("http://{address}")
}

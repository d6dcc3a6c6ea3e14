//! Sending a prepared request and getting the response scripts see.

use std::time::{Duration, Instant};

use crate::collection::ProtocolProfileBehavior;
use crate::request::{FormValue, Payload, Prepared};
use crate::sandbox::{Header, ScriptResponse};

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The URL or a header is not valid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Connecting, TLS, a timeout or the transfer failed.
    #[error("{0}")]
    Failed(String),
}

/// Where requests go: over HTTP, or (in the hooks) through Lambda Invoke.
#[async_trait::async_trait]
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the response.
    async fn send(
        &self,
        request: &Prepared,
        behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError>;

    /// The cookies held for `url` (`pm.cookies` in test scripts); none by default.
    fn cookies(&self, _url: &str) -> Vec<(String, String)> {
        Vec::new()
    }
}

/// HTTP(S) with rustls. Redirects are followed here, not by the client, to
/// apply Postman's rules (`followRedirects`, `maxRedirects`,
/// `followOriginalHttpMethod`, `followAuthorizationHeader`); one cookie jar
/// serves the whole run, as newman's does.
#[derive(Debug)]
pub struct Http {
    jar: std::sync::Arc<reqwest::cookie::Jar>,
    verifying: reqwest::Client,
    insecure: reqwest::Client,
    insecure_always: bool,
}

/// A run's TLS settings (`-k`, `--ssl-client-cert`/`--ssl-client-key`, `--ssl-extra-ca-certs`).
#[derive(Debug, Clone, Default)]
pub struct Tls {
    /// No certificate checks for any request.
    pub insecure: bool,
    /// A client certificate and its unencrypted private key, PEM, sent to every server that asks.
    pub identity: Option<Vec<u8>>,
    /// CA certificates (PEM) trusted besides the built-in roots.
    pub extra_roots: Option<Vec<u8>>,
}

/// A TLS setting could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The client certificate or key is not PEM this runner can read.
    #[error("--ssl-client-cert/--ssl-client-key: {0}")]
    Identity(#[source] reqwest::Error),
    /// The extra CA file holds no readable PEM certificate.
    #[error("--ssl-extra-ca-certs: {0}")]
    Roots(#[source] reqwest::Error),
    /// The HTTP client could not be built with them.
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
}

impl Http {
    /// A transport; `insecure` turns off certificate checks for every request (`--insecure`).
    pub fn new(insecure: bool) -> Self {
        let tls = Tls {
            insecure,
            ..Tls::default()
        };
        Self::with_tls(&tls)
            .unwrap_or_else(|_| Self::from_clients(reqwest::Client::default(), reqwest::Client::default(), insecure))
    }

    /// A transport with `tls`.
    pub fn with_tls(tls: &Tls) -> Result<Self, TlsError> {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let identity = tls
            .identity
            .as_deref()
            .map(reqwest::Identity::from_pem)
            .transpose()
            .map_err(TlsError::Identity)?;
        let roots = tls
            .extra_roots
            .as_deref()
            .map(reqwest::Certificate::from_pem_bundle)
            .transpose()
            .map_err(TlsError::Roots)?
            .unwrap_or_default();
        let client = |accept_invalid: bool| {
            let mut builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .cookie_provider(jar.clone())
                .danger_accept_invalid_certs(accept_invalid);
            if let Some(identity) = &identity {
                builder = builder.identity(identity.clone());
            }
            for root in &roots {
                builder = builder.add_root_certificate(root.clone());
            }
            builder.build().map_err(TlsError::Client)
        };
        let mut http = Self::from_clients(client(false)?, client(true)?, tls.insecure);
        http.jar = jar;
        Ok(http)
    }

    fn from_clients(verifying: reqwest::Client, insecure: reqwest::Client, insecure_always: bool) -> Self {
        Self {
            jar: std::sync::Arc::new(reqwest::cookie::Jar::default()),
            verifying,
            insecure,
            insecure_always,
        }
    }
}

fn build(
    client: &reqwest::Client,
    method: &reqwest::Method,
    url: reqwest::Url,
    headers: &[(String, String)],
    payload: &Payload,
    behavior: &ProtocolProfileBehavior,
    timeout: Option<Duration>,
) -> Result<reqwest::RequestBuilder, TransportError> {
    let mut builder = client.request(method.clone(), url);
    let has_content_type = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"));
    for (key, value) in headers {
        builder = builder.header(key.as_str(), value.as_str());
    }
    builder = builder.header("user-agent", concat!("collection-runner/", env!("CARGO_PKG_VERSION")));
    let prune = *method == reqwest::Method::GET && !behavior.disable_body_pruning.unwrap_or(false);
    match payload {
        Payload::None => {}
        _ if prune => {}
        Payload::Bytes { data, content_type } => {
            if let (false, Some(ct)) = (has_content_type, content_type) {
                builder = builder.header("content-type", ct.as_str());
            }
            builder = builder.body(data.clone());
        }
        Payload::Form(parts) => {
            let mut form = reqwest::multipart::Form::new();
            for part in parts {
                let mut p = match &part.value {
                    FormValue::Text(text) => reqwest::multipart::Part::text(text.clone()),
                    FormValue::File { name, data } => {
                        reqwest::multipart::Part::bytes(data.clone()).file_name(name.clone())
                    }
                };
                if let Some(ct) = &part.content_type {
                    p = p
                        .mime_str(ct)
                        .map_err(|e| TransportError::Invalid(format!("content type {ct:?}: {e}")))?;
                }
                form = form.part(part.name.clone(), p);
            }
            builder = builder.multipart(form);
        }
    }
    if let Some(timeout) = timeout {
        builder = builder.timeout(timeout);
    }
    Ok(builder)
}

#[async_trait::async_trait]
impl Transport for Http {
    async fn send(
        &self,
        request: &Prepared,
        behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError> {
        let client = if self.insecure_always || behavior.strict_ssl == Some(false) {
            &self.insecure
        } else {
            &self.verifying
        };
        let mut method = reqwest::Method::from_bytes(request.method.as_bytes())
            .map_err(|_| TransportError::Invalid(format!("method {:?}", request.method)))?;
        let mut url = reqwest::Url::parse(&request.url)
            .map_err(|e| TransportError::Invalid(format!("url {:?}: {e}", request.url)))?;
        let mut headers = request.headers.clone();
        let mut payload = request.payload.clone();
        let follow = behavior.follow_redirects.unwrap_or(true);
        let max = behavior.max_redirects.unwrap_or(10);
        let started = Instant::now();
        let mut redirects = 0;
        let response = loop {
            let builder = build(client, &method, url.clone(), &headers, &payload, behavior, timeout)?;
            let response = builder.send().await.map_err(|e| TransportError::Failed(describe(&e)))?;
            let status = response.status();
            let location = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let Some(location) = location.filter(|_| follow && status.is_redirection()) else {
                break response;
            };
            if redirects == max {
                return Err(TransportError::Failed(format!(
                    "Exceeded maxRedirects ({max}). Probably stuck in a redirect loop {url}"
                )));
            }
            redirects += 1;
            let next = url
                .join(&location)
                .map_err(|e| TransportError::Failed(format!("redirect to {location:?}: {e}")))?;
            // As newman: 307/308 keep the method; 301/302/303 switch to GET
            // unless `followOriginalHttpMethod` (which newman applies to 303 too).
            let keep_method =
                matches!(status.as_u16(), 307 | 308) || behavior.follow_original_http_method.unwrap_or(false);
            if !keep_method && method != reqwest::Method::HEAD {
                method = reqwest::Method::GET;
                payload = Payload::None;
                headers.retain(|(k, _)| {
                    !k.eq_ignore_ascii_case("content-type") && !k.eq_ignore_ascii_case("content-length")
                });
            }
            if next.host_str() != url.host_str() && !behavior.follow_authorization_header.unwrap_or(false) {
                headers.retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
            }
            url = next;
        };
        let status = response.status();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| Header {
                key: k.as_str().to_owned(),
                value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            })
            .collect();
        let body = response
            .bytes()
            .await
            .map_err(|e| TransportError::Failed(describe(&e)))?;
        Ok(ScriptResponse {
            code: status.as_u16(),
            status: status.canonical_reason().unwrap_or("").to_owned(),
            headers,
            response_size: body.len(),
            body: body.to_vec(),
            response_time: started.elapsed().as_millis() as u64,
        })
    }

    fn cookies(&self, url: &str) -> Vec<(String, String)> {
        use reqwest::cookie::CookieStore;
        let Ok(url) = reqwest::Url::parse(url) else {
            return Vec::new();
        };
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
            .map(|text| {
                text.split("; ")
                    .filter_map(|pair| pair.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    if err.is_timeout() {
        format!("ETIMEDOUT: {text}")
    } else {
        text
    }
}

/// The API Gateway payload a function receives from [`LambdaInvoke`].
#[derive(Debug, Clone, PartialEq)]
pub enum PayloadFormat {
    /// REST API proxy integration (payload 1.0), with the stage it is deployed on.
    RestV1 {
        /// The stage name (`prod`), put in `requestContext.stage` and `requestContext.path`.
        stage: String,
    },
    /// HTTP API (payload 2.0), `$default` stage.
    HttpV2,
}

/// Requests as API Gateway proxy events, sent straight to a function version
/// with Lambda Invoke (`aws-sdk-lambda`): how the deployment hooks test a new
/// version before any traffic reaches it. The URL's host is ignored; its
/// path, query, the headers and the body make the event, and the function's
/// proxy response (status, headers and multi-value headers, cookies, base64
/// bodies) becomes the response scripts see. A function error
/// (`X-Amz-Function-Error`) is a request error.
#[derive(Debug, Clone)]
pub struct LambdaInvoke {
    client: aws_sdk_lambda::Client,
    function: String,
    qualifier: Option<String>,
    format: PayloadFormat,
}

impl LambdaInvoke {
    /// Invokes `function` (name or ARN) at `qualifier` (a version or alias;
    /// `None` for `$LATEST`), sending `format` events.
    pub fn new(client: aws_sdk_lambda::Client, function: &str, qualifier: Option<&str>, format: PayloadFormat) -> Self {
        Self {
            client,
            function: function.to_owned(),
            qualifier: qualifier.map(str::to_owned),
            format,
        }
    }

    /// The API Gateway event for `request`.
    pub fn event(&self, request: &Prepared) -> Result<serde_json::Value, TransportError> {
        use base64::Engine;
        use serde_json::json;
        let url = reqwest::Url::parse(&request.url)
            .map_err(|e| TransportError::Invalid(format!("url {:?}: {e}", request.url)))?;
        let mut headers = request.headers.clone();
        let (body, binary) = match &request.payload {
            Payload::None => (None, false),
            Payload::Bytes { data, content_type } => {
                if let Some(ct) = content_type
                    && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type"))
                {
                    headers.push((String::from("content-type"), ct.clone()));
                }
                match std::str::from_utf8(data) {
                    Ok(text) => (Some(text.to_owned()), false),
                    Err(_) => (Some(base64::engine::general_purpose::STANDARD.encode(data)), true),
                }
            }
            Payload::Form(_) => {
                return Err(TransportError::Invalid(String::from(
                    "multipart form bodies cannot be sent through Lambda invoke; use raw, urlencoded or file bodies",
                )));
            }
        };
        let host = url.host_str().unwrap_or("lambda.local").to_owned();
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
            headers.push((String::from("host"), host.clone()));
        }
        let user_agent = concat!("collection-runner/", env!("CARGO_PKG_VERSION"));
        let path = url.path().to_owned();
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let request_id = uuid::Uuid::new_v4().to_string();
        let event = match &self.format {
            PayloadFormat::HttpV2 => {
                let cookies: Vec<String> = headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("cookie"))
                    .flat_map(|(_, v)| v.split(';').map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()))
                    .collect();
                let joined = comma_joined(
                    headers
                        .iter()
                        .filter(|(k, _)| !k.eq_ignore_ascii_case("cookie"))
                        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone())),
                );
                let query = comma_joined(pairs.iter().cloned());
                json!({
                    "version": "2.0",
                    "routeKey": "$default",
                    "rawPath": path,
                    "rawQueryString": url.query().unwrap_or(""),
                    "cookies": if cookies.is_empty() { None } else { Some(cookies) },
                    "headers": joined,
                    "queryStringParameters": if query.as_object().is_some_and(serde_json::Map::is_empty) { serde_json::Value::Null } else { query },
                    "requestContext": {
                        "accountId": "000000000000", "apiId": "collection-runner", "domainName": host,
                        "domainPrefix": "collection-runner",
                        "http": {"method": request.method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": user_agent},
                        "requestId": request_id, "routeKey": "$default", "stage": "$default",
                        "time": "", "timeEpoch": now.as_millis() as u64
                    },
                    "body": body,
                    "isBase64Encoded": binary,
                })
            }
            PayloadFormat::RestV1 { stage } => {
                let (single, multi) = single_and_multi(&headers);
                let (query_single, query_multi) = single_and_multi(&pairs);
                json!({
                    "resource": "/{proxy+}",
                    "path": path,
                    "httpMethod": request.method,
                    "headers": single,
                    "multiValueHeaders": multi,
                    "queryStringParameters": query_single,
                    "multiValueQueryStringParameters": query_multi,
                    "pathParameters": {"proxy": path.trim_start_matches('/')},
                    "stageVariables": null,
                    "requestContext": {
                        "accountId": "000000000000", "apiId": "collection-runner", "resourceId": "proxy",
                        "resourcePath": "/{proxy+}", "httpMethod": request.method, "path": format!("/{stage}{path}"),
                        "stage": stage, "requestId": request_id, "protocol": "HTTP/1.1", "domainName": host,
                        "identity": {"sourceIp": "127.0.0.1", "userAgent": user_agent},
                        "requestTimeEpoch": now.as_millis() as u64
                    },
                    "body": body,
                    "isBase64Encoded": binary,
                })
            }
        };
        Ok(event)
    }
}

/// Payload 2.0 style: one entry per name, repeated values joined with commas.
fn comma_joined(pairs: impl Iterator<Item = (String, String)>) -> serde_json::Value {
    let mut map = serde_json::Map::new();
    for (key, value) in pairs {
        let joined = match map.get(&key).and_then(serde_json::Value::as_str) {
            Some(previous) => format!("{previous},{value}"),
            None => value,
        };
        map.insert(key, serde_json::Value::String(joined));
    }
    serde_json::Value::Object(map)
}

/// Payload 1.0 style: the last value per name, and every value per name;
/// `null` for both when there are none.
fn single_and_multi(pairs: &[(String, String)]) -> (serde_json::Value, serde_json::Value) {
    if pairs.is_empty() {
        return (serde_json::Value::Null, serde_json::Value::Null);
    }
    let mut single = serde_json::Map::new();
    let mut multi: serde_json::Map<String, serde_json::Value> = serde_json::Map::new();
    for (key, value) in pairs {
        single.insert(key.clone(), serde_json::Value::String(value.clone()));
        let entry = multi
            .entry(key.clone())
            .or_insert_with(|| serde_json::Value::Array(Vec::new()));
        if let serde_json::Value::Array(values) = entry {
            values.push(serde_json::Value::String(value.clone()));
        }
    }
    (serde_json::Value::Object(single), serde_json::Value::Object(multi))
}

/// Maps a function's API Gateway proxy response (v1 or v2) to a response.
pub fn proxy_response(payload: &[u8], response_time: u64) -> Result<ScriptResponse, TransportError> {
    use base64::Engine;
    let value: serde_json::Value = serde_json::from_slice(payload)
        .map_err(|e| TransportError::Failed(format!("function response is not JSON: {e}")))?;
    let Some(code) = value.get("statusCode").and_then(serde_json::Value::as_u64) else {
        // HTTP API accepts a bare JSON result: 200 with it as the body.
        return Ok(ScriptResponse {
            code: 200,
            status: String::from("OK"),
            headers: vec![Header {
                key: String::from("content-type"),
                value: String::from("application/json"),
            }],
            response_size: payload.len(),
            body: payload.to_vec(),
            response_time,
        });
    };
    let code = u16::try_from(code).map_err(|_| TransportError::Failed(format!("statusCode {code} out of range")))?;
    let mut headers: Vec<Header> = Vec::new();
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
    if let Some(multi) = value.get("multiValueHeaders").and_then(serde_json::Value::as_object) {
        for (key, values) in multi {
            for v in values.as_array().map(Vec::as_slice).unwrap_or_default() {
                headers.push(Header {
                    key: key.clone(),
                    value: text(v),
                });
            }
        }
    }
    if let Some(single) = value.get("headers").and_then(serde_json::Value::as_object) {
        for (key, v) in single {
            if !headers.iter().any(|h| h.key.eq_ignore_ascii_case(key)) {
                headers.push(Header {
                    key: key.clone(),
                    value: text(v),
                });
            }
        }
    }
    for cookie in value
        .get("cookies")
        .and_then(serde_json::Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        headers.push(Header {
            key: String::from("set-cookie"),
            value: text(cookie),
        });
    }
    let raw = value
        .get("body")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let bytes = if value
        .get("isBase64Encoded")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false)
    {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .map_err(|e| TransportError::Failed(format!("function body is not valid base64: {e}")))?
    } else {
        raw.as_bytes().to_vec()
    };
    let status = http::StatusCode::from_u16(code)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
        .to_owned();
    Ok(ScriptResponse {
        code,
        status,
        headers,
        response_size: bytes.len(),
        body: bytes.to_vec(),
        response_time,
    })
}

#[async_trait::async_trait]
impl Transport for LambdaInvoke {
    async fn send(
        &self,
        request: &Prepared,
        _behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError> {
        let event = self.event(request)?;
        let started = Instant::now();
        let call = self
            .client
            .invoke()
            .function_name(&self.function)
            .set_qualifier(self.qualifier.clone())
            .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
            .send();
        let output = match timeout {
            Some(limit) => tokio::time::timeout(limit, call).await.map_err(|_| {
                TransportError::Failed(format!(
                    "ETIMEDOUT: no answer from {} within {} ms",
                    self.function,
                    limit.as_millis()
                ))
            })?,
            None => call.await,
        }
        .map_err(|e| {
            TransportError::Failed(format!(
                "invoke {}: {}",
                self.function,
                aws_sdk_lambda::error::DisplayErrorContext(&e)
            ))
        })?;
        let payload = output.payload().map(|b| b.as_ref().to_vec()).unwrap_or_default();
        if let Some(kind) = output.function_error() {
            return Err(TransportError::Failed(format!(
                "function error ({kind}) from {}: {}",
                self.function,
                String::from_utf8_lossy(&payload)
            )));
        }
        proxy_response(&payload, started.elapsed().as_millis() as u64)
    }
}

/// Sends requests under one base URL through one transport and all others
/// through another: a collection checking a function through Lambda Invoke
/// may still call other services (or set up data) over HTTP.
pub struct Split {
    base: String,
    matching: Box<dyn Transport>,
    other: Box<dyn Transport>,
}

impl Split {
    /// Requests whose URL starts with `base` go to `matching`, the rest to `other`.
    pub fn new(base: &str, matching: Box<dyn Transport>, other: Box<dyn Transport>) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            matching,
            other,
        }
    }

    fn pick(&self, url: &str) -> &dyn Transport {
        let under = url
            .strip_prefix(&self.base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?', '#']));
        if under {
            self.matching.as_ref()
        } else {
            self.other.as_ref()
        }
    }
}

#[async_trait::async_trait]
impl Transport for Split {
    async fn send(
        &self,
        request: &Prepared,
        behavior: &ProtocolProfileBehavior,
        timeout: Option<Duration>,
    ) -> Result<ScriptResponse, TransportError> {
        self.pick(&request.url).send(request, behavior, timeout).await
    }

    fn cookies(&self, url: &str) -> Vec<(String, String)> {
        self.pick(url).cookies(url)
    }
}

//! An API Gateway REST API stage in front of a Lambda alias, as `infra/`
//! deploys one per service (`LambdaRestApi`: `ANY /`, `ANY /{proxy+}`,
//! `GET /health`, a Lambda proxy integration on the alias `live`): HTTP on
//! a loopback port, `/<stage>/…` → an API Gateway proxy event (REST, v1)
//! → `Invoke` of the alias through the Lambda endpoint with
//! `aws-sdk-lambda` → the proxy response as HTTP. So synthetic customer
//! traffic takes the path customers' requests take, and each answer is
//! recorded with the version that served it (`X-Amz-Executed-Version`).
//!
//! As API Gateway does: a path outside the stage answers 403 `Missing
//! Authentication Token`; a function error or a response that is not a
//! proxy response answers 502 `Internal server error`; an invocation that
//! outlives the integration timeout (29 s) answers 504 `Endpoint request
//! timed out`; a body over 10 MB answers 413. The Cognito authorizer is not
//! run here: the services verify every token themselves.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayProxyResponse};
use aws_lambda_events::encodings::Body;
use aws_sdk_lambda::primitives::Blob;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use tokio::sync::Mutex;

use crate::Error;

/// API Gateway's integration timeout.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);

/// API Gateway's payload limit.
const MAX_BODY: usize = 10 * 1024 * 1024;

/// One request the stage answered.
#[derive(Debug, Clone, PartialEq)]
pub struct Served {
    /// When it arrived.
    pub at: SystemTime,
    /// The version that ran it, when the function was invoked.
    pub version: Option<String>,
    /// The status the caller got.
    pub status: u16,
    /// How long the caller waited.
    pub latency: Duration,
}

/// Where the stage sends requests.
#[derive(Debug, Clone)]
pub struct Integration {
    /// The REST API's name (`<app>-<stage>-<service>`, as `infra/` names
    /// it): the `ApiName` dimension of its metrics.
    pub api_name: String,
    /// The stage name, the first path segment (`local`, `prod`).
    pub stage: String,
    /// The function.
    pub function: String,
    /// The alias invoked (`live`).
    pub alias: String,
}

struct Shared {
    integration: Integration,
    lambda: aws_sdk_lambda::Client,
    served: Mutex<Vec<Served>>,
    metrics: std::sync::OnceLock<Arc<crate::cloudwatch::store::Store>>,
}

/// A running REST API stage on 127.0.0.1.
pub struct ApiGateway {
    url: String,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl ApiGateway {
    /// Starts the stage on a free loopback port, invoking through `lambda`.
    pub async fn start(integration: Integration, lambda: aws_sdk_lambda::Client) -> Result<Self, Error> {
        let shared = Arc::new(Shared {
            integration,
            lambda,
            served: Mutex::new(Vec::new()),
            metrics: std::sync::OnceLock::new(),
        });
        let app = Router::new()
            .fallback(proxy)
            .with_state(shared.clone())
            .layer(axum::extract::DefaultBodyLimit::disable());
        let (address, server) = crate::serve_router(app).await?;
        Ok(Self {
            url: format!("http://{address}/{}", shared.integration.stage),
            shared,
            server,
        })
    }

    /// The stage's invoke URL (`http://127.0.0.1:<port>/<stage>`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Every request answered so far, in order.
    pub async fn served(&self) -> Vec<Served> {
        self.shared.served.lock().await.clone()
    }

    /// From now on, every answer's metrics (`Count`, `4XXError`,
    /// `5XXError`, `Latency`) also go to `store`, as API Gateway publishes
    /// them to CloudWatch; a store set before stays.
    pub fn publish_metrics(&self, store: Arc<crate::cloudwatch::store::Store>) {
        let _ = self.shared.metrics.set(store);
    }
}

impl Drop for ApiGateway {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// API Gateway's own answers (`{"message": …}`), where it gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GatewayAnswer {
    /// No resource or method matches: 403 `Missing Authentication Token`.
    MissingToken,
    /// The body is over the payload limit: 413.
    TooLarge,
    /// The integration could not be called: 500.
    Internal,
    /// A function error, or a response that is not a proxy response: 502.
    BadGateway,
    /// The integration timeout passed: 504.
    Timeout,
}

impl IntoResponse for GatewayAnswer {
    fn into_response(self) -> Response {
        let (status, kind, message) = match self {
            Self::MissingToken => (
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            Self::TooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "RequestTooLarge", "Request Too Long"),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerErrorException",
                "Internal server error",
            ),
            Self::BadGateway => (
                StatusCode::BAD_GATEWAY,
                "InternalServerErrorException",
                "Internal server error",
            ),
            Self::Timeout => (
                StatusCode::GATEWAY_TIMEOUT,
                "IntegrationTimeout",
                "Endpoint request timed out",
            ),
        };
        (
            status,
            [("content-type", "application/json"), ("x-amzn-errortype", kind)],
            serde_json::json!({"message": message}).to_string(),
        )
            .into_response()
    }
}

/// A request as it arrived.
struct Incoming {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// The API's resource a request matched.
struct Matched {
    /// `/`, `/health` or `/{proxy+}`.
    resource: &'static str,
    /// The `proxy` path parameter.
    proxy: Option<String>,
    /// The path after the stage.
    rest: String,
}

/// The resource a path under the stage matches, and its `proxy` parameter.
fn resource(method: &Method, rest: &str) -> Option<Matched> {
    let (resource, proxy) = match rest {
        "" | "/" => ("/", None),
        "/health" if method == Method::GET => ("/health", None),
        "/health" => return None,
        _ => ("/{proxy+}", Some(rest.trim_start_matches('/').to_owned())),
    };
    Some(Matched {
        resource,
        proxy,
        rest: rest.to_owned(),
    })
}

fn event(integration: &Integration, request: &Incoming, matched: Matched) -> ApiGatewayProxyRequest {
    let Incoming {
        method,
        uri,
        headers,
        body,
    } = request;
    let Matched { resource, proxy, rest } = matched;
    let method = method.clone();
    let query = uri.query().unwrap_or_default();
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(resource.to_owned());
    event.path = Some(rest.clone());
    event.http_method = method.clone();
    event.headers = headers.clone();
    event.multi_value_headers = headers.clone();
    event.query_string_parameters = query.parse().unwrap_or_default();
    event.multi_value_query_string_parameters = query.parse().unwrap_or_default();
    event.path_parameters = proxy
        .map(|p| HashMap::from([(String::from("proxy"), p)]))
        .unwrap_or_default();
    if !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                event.is_base64_encoded = true;
            }
        }
    }
    let context = &mut event.request_context;
    context.account_id = Some(String::from(crate::lambda::ACCOUNT));
    context.resource_id = Some(String::from("local"));
    context.stage = Some(integration.stage.clone());
    context.request_id = Some(uuid::Uuid::new_v4().to_string());
    context.protocol = Some(String::from("HTTP/1.1"));
    context.resource_path = Some(resource.to_owned());
    context.path = Some(format!("/{}{rest}", integration.stage));
    context.http_method = method;
    context.apiid = Some(String::from("local"));
    context.identity.source_ip = Some(String::from("127.0.0.1"));
    context.identity.user_agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    context.request_time_epoch = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    event
}

/// A proxy response as HTTP; `None` when it is not one API Gateway accepts.
fn http_response(payload: &[u8]) -> Option<Response> {
    let proxied: ApiGatewayProxyResponse = serde_json::from_slice(payload).ok()?;
    let status = u16::try_from(proxied.status_code)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())?;
    let body = match proxied.body {
        None => Vec::new(),
        Some(Body::Text(text)) if proxied.is_base64_encoded => {
            base64::engine::general_purpose::STANDARD.decode(text).ok()?
        }
        Some(Body::Text(text)) => text.into_bytes(),
        Some(Body::Binary(bytes)) => bytes,
        Some(Body::Empty) => Vec::new(),
        Some(_) => return None,
    };
    let mut response = Response::new(axum::body::Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    for (name, value) in proxied.multi_value_headers.iter() {
        headers.append(name, value.clone());
    }
    for (name, value) in proxied.headers.iter() {
        if !headers.contains_key(name) {
            headers.insert(name, value.clone());
        }
    }
    // What API Gateway sends when the function names no content type.
    if !headers.contains_key(axum::http::header::CONTENT_TYPE) {
        headers.insert(
            axum::http::header::CONTENT_TYPE,
            axum::http::HeaderValue::from_static("application/json"),
        );
    }
    Some(response)
}

async fn proxy(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let at = SystemTime::now();
    let incoming = Incoming {
        method,
        uri,
        headers,
        body,
    };
    let (response, version) = answer(&shared, &incoming).await;
    let served = Served {
        at,
        version,
        status: response.status().as_u16(),
        latency: started.elapsed(),
    };
    if let Some(store) = shared.metrics.get() {
        store.put(crate::cloudwatch::store::api(
            &shared.integration.api_name,
            &shared.integration.stage,
            &served,
        ));
    }
    shared.served.lock().await.push(served);
    response
}

async fn answer(shared: &Shared, request: &Incoming) -> (Response, Option<String>) {
    match invoke(shared, request).await {
        Ok((response, version)) => (response, version),
        Err((answer, version)) => (answer.into_response(), version),
    }
}

/// The function's answer, or API Gateway's own with the version that ran, if any.
async fn invoke(
    shared: &Shared,
    request: &Incoming,
) -> Result<(Response, Option<String>), (GatewayAnswer, Option<String>)> {
    let integration = &shared.integration;
    let prefix = format!("/{}", integration.stage);
    let rest = match request.uri.path().strip_prefix(&prefix) {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => rest.to_owned(),
        _ => return Err((GatewayAnswer::MissingToken, None)),
    };
    let matched = resource(&request.method, &rest).ok_or((GatewayAnswer::MissingToken, None))?;
    if request.body.len() > MAX_BODY {
        return Err((GatewayAnswer::TooLarge, None));
    }
    let payload =
        serde_json::to_vec(&event(integration, request, matched)).map_err(|_| (GatewayAnswer::Internal, None))?;
    let output = tokio::time::timeout(
        INTEGRATION_TIMEOUT,
        shared
            .lambda
            .invoke()
            .function_name(&integration.function)
            .qualifier(&integration.alias)
            .payload(Blob::new(payload))
            .send(),
    )
    .await
    .map_err(|_| (GatewayAnswer::Timeout, None))?
    .map_err(|_| (GatewayAnswer::Internal, None))?;
    let version = output.executed_version.clone();
    if output.function_error.is_some() {
        return Err((GatewayAnswer::BadGateway, version));
    }
    let payload = output.payload.map(Blob::into_inner).unwrap_or_default();
    match http_response(&payload) {
        Some(response) => Ok((response, version)),
        None => Err((GatewayAnswer::BadGateway, version)),
    }
}

//! The HTTP edge every service shares.
//!
//! - [`Problem`]: RFC 9457 `application/problem+json` errors that name the
//!   offending field and leak nothing internal.
//! - [`Json`]: a strict JSON body extractor whose errors say which field is
//!   wrong and what was expected.
//! - [`service`]: wraps a service's routes with `GET /health`, problem
//!   fallbacks, and the per-invocation middleware (request and correlation
//!   ids, the `invocation` log span, cold start, EMF metrics flushed once).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{FromRequest, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use lambda_http::request::RequestContext;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::ServiceInfo;
use crate::auth::Routes;
use crate::metrics::{InvocationMetrics, MetricsConfig, Unit};
use crate::telemetry::Stdout;

/// Response header carrying the invocation's request id.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");
/// Request and response header carrying the correlation id across services.
pub const CORRELATION_ID_HEADER: HeaderName = HeaderName::from_static("x-correlation-id");
/// The problem+json media type.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One field that failed validation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// The field's path in the request, e.g. `amount_minor` or `items[0].sku`.
    pub field: String,
    /// What was expected of it.
    pub message: String,
}

/// An RFC 9457 problem: rendered as `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The problem type's slug; serialized as `type: "urn:problem:{slug}"`.
    #[serde(rename = "type", serialize_with = "problem_type")]
    pub slug: &'static str,
    /// A short summary that does not change between occurrences.
    pub title: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The resource this occurrence is about, e.g. `/payments/{id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The fields at fault, when the request was invalid. (A boxed slice
    /// keeps `Problem` small enough to be an `Err` everywhere.)
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: Box<[FieldError]>,
    /// The error behind a 5xx, for the trace only (never sent): see [`Problem::internal`].
    #[serde(skip)]
    cause: Option<Box<str>>,
    /// Set when the request was refused before any work started (see [`Problem::before_work`]).
    #[serde(skip)]
    before_work: bool,
}

/// How an idempotency layer treats a response (a response extension set by
/// the handler; `shared::idempotency` reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// The operation's result is final: store it and replay it for the key.
    Final,
    /// Work started and is not finished (e.g. 202 for a payment still
    /// moving): the key stays bound to this request, and a retry with it runs
    /// the handler again, which continues the same work.
    Pending,
    /// Refused before any work started (validation, authentication): nothing
    /// is stored, so a corrected request may reuse the key.
    NotStarted,
}

impl Disposition {
    /// The disposition of `response`: its extension, else `Final` for
    /// anything below 500 and `Pending` for a 5xx (work may have started and
    /// the key must not be handed to a different request).
    pub fn of<B>(response: &http::Response<B>) -> Self {
        match response.extensions().get::<Disposition>() {
            Some(disposition) => *disposition,
            None if response.status().is_server_error() => Disposition::Pending,
            None => Disposition::Final,
        }
    }
}

fn problem_type<S: serde::Serializer>(slug: &&'static str, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&format_args!("urn:problem:{slug}"))
}

impl Problem {
    /// A problem with a status, a type slug (made into `urn:problem:{slug}`) and a title.
    pub fn new(status: StatusCode, slug: &'static str, title: &'static str) -> Self {
        Self {
            slug,
            title,
            status: status.as_u16(),
            detail: None,
            instance: None,
            errors: Box::default(),
            cause: None,
            before_work: false,
        }
    }

    /// Marks the request as refused before any work started, so an
    /// idempotency layer stores nothing against its key
    /// ([`Disposition::NotStarted`]). Validation and authentication refusals are.
    pub fn before_work(mut self) -> Self {
        self.before_work = true;
        self
    }

    /// Adds the detail of this occurrence.
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// Names the resource this occurrence is about.
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// Names a field at fault.
    pub fn field(mut self, field: impl Into<String>, message: impl Into<String>) -> Self {
        let mut errors = std::mem::take(&mut self.errors).into_vec();
        errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
        self.errors = errors.into_boxed_slice();
        self
    }

    /// A 422: the request was well-formed but a field's value is not acceptable.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", "A field is invalid")
            .detail(format!("{field}: {message}"))
            .field(field, message)
    }

    /// A 404 for a resource that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(format!("{what} does not exist"))
    }

    /// A 500 that logs `error` inside the request's span, makes it the
    /// cause in the trace, and shows the client nothing of it.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "internal error");
        let mut problem = Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error")
            .detail("the request could not be completed; quote the x-request-id header when reporting it");
        problem.cause = Some(error.to_string().into());
        problem
    }

    /// A 503 for a dependency that is down or busy; the client may retry. The
    /// error is logged and becomes the cause in the trace.
    pub fn unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(error = %error, "dependency unavailable");
        let mut problem = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable")
            .detail("a dependency is unavailable; retry with the same request");
        problem.cause = Some(error.to_string().into());
        problem
    }

    /// The HTTP status.
    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Problem {
    /// The problem+json response. A 5xx also becomes the cause of the fault
    /// in the trace ([`crate::xray::cause`]): the error behind it when
    /// [`Problem::internal`] or [`Problem::unavailable`] made it, else its
    /// detail (or title).
    fn into_response(self) -> Response {
        if self.status >= 500 {
            let cause = self.cause.as_deref().or(self.detail.as_deref()).unwrap_or(self.title);
            crate::xray::cause(&tracing::Span::current(), &cause);
        }
        let body = serde_json::to_vec(&self).unwrap_or_default();
        let mut response = (self.status_code(), [(header::CONTENT_TYPE, PROBLEM_JSON)], body).into_response();
        if self.before_work {
            response.extensions_mut().insert(Disposition::NotStarted);
        }
        response
    }
}

/// A JSON request body, parsed strictly: the content type must be JSON and a
/// parse failure names the field and what was expected (use
/// `#[serde(deny_unknown_fields)]` on `T` to reject unknown fields).
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            )
            .detail("send the body as application/json")
            .before_work());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| body_problem(e.status()))?;
        parse_json(&bytes).map(Json)
    }
}

/// The token of an `Authorization: Bearer <token>` value. The scheme is
/// case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER` and `Bearer` are one
/// scheme) and may be followed by more than one space.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start_matches(' ');
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Whether the request says its body is JSON (`application/json` or any
/// `+json` type, parameters ignored).
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            let v = v.trim();
            v.eq_ignore_ascii_case("application/json") || v.to_ascii_lowercase().ends_with("+json")
        })
}

/// The largest request body the edge reads (axum's default limit).
pub const MAX_BODY: usize = 2 * 1024 * 1024;

/// The problem for a body that could not be read: 413 when it is larger
/// than the limit, else 400 (a broken chunk, a body shorter than its
/// `Content-Length`). The detail is ours, not the HTTP library's.
pub fn body_problem(status: StatusCode) -> Problem {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body-too-large", "Body too large")
            .detail(format!("request bodies are limited to {MAX_BODY} bytes"))
            .before_work()
    } else {
        Problem::new(StatusCode::BAD_REQUEST, "unreadable-body", "Unreadable body")
            .detail("the request body could not be read whole (a broken chunk, or fewer bytes than Content-Length)")
            .before_work()
    }
}

/// A path parameter extractor whose rejection is a problem naming the
/// parameter, like [`Json`]'s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Path<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut http::request::Parts, state: &S) -> Result<Self, Problem> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| Path(value))
            .map_err(|e| {
                Problem::new(StatusCode::BAD_REQUEST, "invalid-path", "Invalid path parameter")
                    .detail(e.body_text())
                    .before_work()
            })
    }
}

/// A query string extractor whose rejection is a problem naming the
/// parameter and what was expected, like [`Json`]'s (`?limit=abc` is a 422
/// with `errors[0].field = "limit"`; use `#[serde(deny_unknown_fields)]` on
/// `T` to refuse unknown parameters, which are then named too).
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Problem> {
        parse_query(parts.uri.query().unwrap_or_default()).map(Query)
    }
}

/// Parses a query string (`a=1&b=x`), turning errors into a problem that
/// names the parameter. Every refusal is [`Problem::before_work`].
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, Problem> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = if path == "." { "query" } else { path.as_str() };
        Problem::invalid_field(field, message).before_work()
    })
}

/// Parses a JSON body, turning errors into a problem that names the field.
/// Anything but whitespace after the value is refused, as a JSON text is one
/// value (RFC 8259): `{"amount_minor":5}GARBAGE` is malformed, not accepted.
/// Every refusal is [`Problem::before_work`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Problem> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let message = strip_position(&inner.to_string());
                // At the root, serde names the Rust type it wanted ("expected
                // struct PaymentRequest"): say what the client must send instead.
                let message = if path == "." && message.contains("expected struct") {
                    String::from("expected a JSON object")
                } else {
                    message
                };
                // serde reports a missing field at its parent's path; an
                // unknown field's path already ends with its name.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                let field = match (missing, path.as_str()) {
                    (Some(name), ".") => name.to_owned(),
                    (Some(name), parent) => format!("{parent}.{name}"),
                    (None, ".") => String::from("body"),
                    (None, path) => path.to_owned(),
                };
                Problem::invalid_field(&field, message).before_work()
            }
            _ => malformed(&inner),
        }
    })?;
    de.end().map_err(|e| malformed(&e))?;
    Ok(value)
}

fn malformed(err: &serde_json::Error) -> Problem {
    Problem::new(StatusCode::BAD_REQUEST, "malformed-json", "Malformed JSON")
        .detail(format!("the body is not valid JSON: {err}"))
        .before_work()
}

/// serde_json appends " at line L column C"; for a field error the field says where.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The request id of the current invocation, available to handlers as an extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(pub String);

/// The correlation id of the current request, to pass on to the services it calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

static COLD_START: AtomicBool = AtomicBool::new(true);

/// The health report of `GET /health`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Health {
    /// Always `ok` when the service answers.
    pub status: String,
    /// The service's name.
    pub service: String,
    /// The crate version it was built from.
    pub version: String,
    /// The Lambda function version serving (`$LATEST` or a number), when on Lambda.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_version: Option<String>,
}

/// Wraps a service's routes (each with its access policy, see
/// [`crate::auth::Routes`]) into the router it runs: adds `GET /health`
/// (the one public route), problem+json for unknown routes and methods, and
/// the per-invocation middleware. Metrics go to stdout.
pub fn service(info: &ServiceInfo, routes: Routes) -> Router {
    let metrics = MetricsConfig::from_env(info.name, Arc::new(Stdout));
    service_with_metrics(info, routes, metrics)
}

/// As [`service`], with metrics written where `metrics` says.
pub fn service_with_metrics(info: &ServiceInfo, routes: Routes, metrics: MetricsConfig) -> Router {
    let health = Health {
        status: String::from("ok"),
        service: info.name.to_owned(),
        version: info.version.to_owned(),
        function_version: crate::env::var(crate::env::AWS_LAMBDA_FUNCTION_VERSION),
    };
    let metrics = Arc::new(metrics);
    routes
        .into_router()
        .route("/health", get(move || async move { axum::Json(health) }))
        .fallback(|| async {
            Problem::new(StatusCode::NOT_FOUND, "no-route", "No such route").detail("no route matches this path")
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            )
            .detail("this route does not accept this method")
        })
        .route_layer(axum::middleware::from_fn(record_route))
        .layer(axum::middleware::from_fn(problems_only))
        .layer(axum::middleware::from_fn_with_state(
            Edge {
                metrics,
                local_timeout: local_invocation_timeout(),
            },
            invocation,
        ))
}

/// Time kept back before an invocation's deadline to answer a request (or
/// end a scheduled run) that ran out of time.
pub const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// What the per-invocation middleware needs.
#[derive(Clone)]
struct Edge {
    metrics: Arc<MetricsConfig>,
    /// The [`Deadline`] of a request that did not come through Lambda.
    local_timeout: Duration,
}

/// How long an invocation that did not come through Lambda may take (a
/// request served on a local port, a scheduled run started by the local
/// loop): `LOCAL_INVOCATION_TIMEOUT_MS`, the function's timeout, which the
/// stack sets from the registry; else the deployed functions' 15 s.
pub(crate) fn local_invocation_timeout() -> Duration {
    crate::env::var(crate::env::LOCAL_INVOCATION_TIMEOUT_MS)
        .and_then(|v| v.parse().ok())
        .map_or(Duration::from_secs(15), Duration::from_millis)
}

/// When the current invocation must have answered: the Lambda context's
/// deadline, or (served locally) the request's arrival plus
/// `LOCAL_INVOCATION_TIMEOUT_MS`. Every outbound call takes its budget from
/// it, so no request outlives its function. An extension on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    at: Instant,
    epoch: Duration,
}

impl Deadline {
    /// The deadline `after` from now.
    pub fn after(after: Duration) -> Self {
        Self {
            at: Instant::now() + after,
            epoch: epoch_now() + after,
        }
    }

    /// The deadline at `epoch_ms` milliseconds since the Unix epoch (Lambda's `Context::deadline`).
    pub fn at_epoch_millis(epoch_ms: u64) -> Self {
        let epoch = Duration::from_millis(epoch_ms);
        Self {
            at: Instant::now() + epoch.saturating_sub(epoch_now()),
            epoch,
        }
    }

    /// Time left; zero once passed.
    pub fn remaining(&self) -> Duration {
        self.at.saturating_duration_since(Instant::now())
    }

    /// The deadline as time since the Unix epoch (for records that outlive the process).
    pub fn since_epoch(&self) -> Duration {
        self.epoch
    }
}

fn epoch_now() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Makes every error response problem+json: an extractor's plain-text
/// rejection (a query string, a body limit, a path) becomes a problem with
/// the same status, its text as the detail, refused before any work.
async fn problems_only(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_JSON.as_bytes()));
    if status.as_u16() < 400 || is_problem {
        return response;
    }
    let disposition = response.extensions().get::<Disposition>().copied();
    let (parts, body) = response.into_parts();
    let text = match axum::body::to_bytes(body, 4096).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_owned(),
        Err(_) => String::new(),
    };
    let (slug, title) = status_problem(status);
    let mut problem = Problem::new(status, slug, title);
    if !text.is_empty() {
        problem = problem.detail(text);
    }
    if status.is_client_error() && disposition.is_none() {
        problem = problem.before_work();
    }
    let mut converted = problem.into_response();
    for (name, value) in parts
        .headers
        .iter()
        .filter(|(n, _)| !matches!(*n, &header::CONTENT_TYPE | &header::CONTENT_LENGTH))
    {
        converted.headers_mut().insert(name.clone(), value.clone());
    }
    if let Some(disposition) = disposition {
        converted.extensions_mut().insert(disposition);
    }
    converted
}

/// The problem type and title for a bare status.
fn status_problem(status: StatusCode) -> (&'static str, &'static str) {
    match status {
        StatusCode::BAD_REQUEST => ("bad-request", "Bad request"),
        StatusCode::UNAUTHORIZED => ("unauthorized", "Unauthorized"),
        StatusCode::FORBIDDEN => ("forbidden", "Forbidden"),
        StatusCode::NOT_FOUND => ("not-found", "Not found"),
        StatusCode::METHOD_NOT_ALLOWED => ("method-not-allowed", "Method not allowed"),
        StatusCode::CONFLICT => ("conflict", "Conflict"),
        StatusCode::PAYLOAD_TOO_LARGE => ("body-too-large", "Body too large"),
        StatusCode::URI_TOO_LONG => ("uri-too-long", "URI too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ("unsupported-media-type", "Unsupported media type"),
        StatusCode::UNPROCESSABLE_ENTITY => ("invalid", "Invalid request"),
        StatusCode::TOO_MANY_REQUESTS => ("throttled", "Too many requests"),
        StatusCode::SERVICE_UNAVAILABLE => ("unavailable", "Service unavailable"),
        s if s.is_client_error() => ("client-error", "Client error"),
        _ => ("internal", "Internal error"),
    }
}

/// Puts the matched route template (`/accounts/{id}`, not the raw path) on
/// the invocation's span, for the trace.
async fn record_route(req: Request, next: Next) -> Response {
    if let Some(route) = req.extensions().get::<MatchedPath>() {
        tracing::Span::current().record("annotation.route", route.as_str());
    }
    next.run(req).await
}

/// A correlation id a client may set: short and printable, else ignored.
fn client_id(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let value = headers.get(name)?.to_str().ok()?;
    let ok = !value.is_empty() && value.len() <= 128 && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
}

async fn invocation(State(edge): State<Edge>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let config = &edge.metrics;
    let lambda = req.extensions().get::<lambda_http::Context>().cloned();
    // A deadline already on the request (a caller running the router in
    // process sets one) is kept; else Lambda's, else the local timeout's.
    let deadline = req.extensions().get::<Deadline>().copied().unwrap_or_else(|| {
        lambda.as_ref().map_or_else(
            || Deadline::after(edge.local_timeout),
            |ctx| Deadline::at_epoch_millis(ctx.deadline),
        )
    });
    let gateway_request_id = match req.extensions().get::<RequestContext>() {
        Some(RequestContext::ApiGatewayV1(ctx)) => ctx.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.clone(),
        _ => None,
    };
    let request_id = lambda
        .as_ref()
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), |c| c.request_id.clone());
    let correlation_id = client_id(req.headers(), &CORRELATION_ID_HEADER)
        .or(gateway_request_id)
        .unwrap_or_else(|| request_id.clone());
    let cold_start = COLD_START.swap(false, Ordering::Relaxed);
    let method = req.method().clone();
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "invocation",
        cold_start,
        function_request_id = %request_id,
        correlation_id = %correlation_id,
        function_arn = tracing::field::Empty,
        xray_trace_id = tracing::field::Empty,
        otel.name = config.service.as_str(),
        otel.status_code = tracing::field::Empty,
        annotation.service = config.service.as_str(),
        annotation.cold_start = cold_start,
        annotation.route = tracing::field::Empty,
        http.request.method = method.as_str(),
        http.response.status_code = tracing::field::Empty,
    );
    // The parent segment: the Lambda facade from the invocation's context; a
    // request that came over HTTP (a local run) names its caller in the header.
    let trace_header = match &lambda {
        Some(ctx) => ctx.xray_trace_id.clone(),
        None => req
            .headers()
            .get(crate::xray::TRACE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    crate::xray::adopt(&span, trace_header.as_deref());
    if let Some(ctx) = &lambda {
        span.record("function_arn", ctx.invoked_function_arn.as_str());
        if let Some(trace) = &ctx.xray_trace_id {
            span.record("xray_trace_id", trace.as_str());
        }
    }
    let metrics = InvocationMetrics::default();
    req.extensions_mut().insert(metrics.clone());
    req.extensions_mut().insert(deadline);
    req.extensions_mut().insert(RequestId(request_id.clone()));
    req.extensions_mut().insert(CorrelationId(correlation_id.clone()));
    // No request outlives its invocation: whatever the handler still waits
    // on (a slow dependency, a queue in front of DynamoDB) is abandoned just
    // before the deadline, with an answer the client can act on, instead of
    // Lambda killing the sandbox mid-request.
    let budget = deadline.remaining().saturating_sub(DEADLINE_MARGIN);
    let mut response = match tokio::time::timeout(budget, next.run(req).instrument(span.clone())).await {
        Ok(response) => response,
        Err(_) => span.in_scope(|| {
            tracing::error!(budget_ms = budget.as_millis() as u64, "request abandoned at its deadline");
            let mut response = (
                [(header::RETRY_AFTER, "1")],
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "Out of time")
                    .detail("the request ran out of time before it could finish; retry it (with the same Idempotency-Key, if it had one)"),
            )
                .into_response();
            // Work may have started: an idempotency key stays bound to it.
            response.extensions_mut().insert(Disposition::Pending);
            response
        }),
    };
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    if status >= 400 {
        span.record("otel.status_code", "error");
    }
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        tracing::info!(method = %method, route = route.as_deref().unwrap_or("-"), status, latency_ms, "request completed")
    });
    if cold_start {
        crate::metrics::emit_cold_start(config);
    }
    if status >= 500 {
        metrics.add("ServerErrors", Unit::Count, 1.0);
    }
    metrics.flush(config);
    let headers = response.headers_mut();
    for (name, value) in [(REQUEST_ID_HEADER, request_id), (CORRELATION_ID_HEADER, correlation_id)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    response
}
